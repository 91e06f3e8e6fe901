"""The ``iqa`` step: image-quality alignment of every checkpoint of a run.

For each checkpoint the reference and distorted images are embedded once (cached), every pair gets
the model's distance (per patch and averaged when images are tiled, per location for block outputs),
and the distances are rank-correlated with the ground-truth quality.

The notebook (``02_iqa_alignment``) calls, in page order: :func:`load`, :func:`measure` (every table),
then one sentence function (a list of strings, for ``prose.say``) or figure function per section. Every
function that reads results takes ``tables``, what :func:`measure` returns (or the run's metrics read back).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ...results.tables import pick_distance
from ...record import records_evaluation_sets
from ...config import bootstrap_seed
from ...checkpoints import Run
from ...data.iqa import IQAData, load_iqa
from ...encoder import run_encoder, run_encoders
from ...layout import RunDir
from ...metrics.families import mark_seen, within_family_alignment
from ...metrics.iqa import (DISTANCES, SCORED_PAIRS_COLUMNS, alignment_scores, block_distance, early_peak_test,
                            iqa_table, pair_distances, pair_rows, peak_summary, per_pair, scored_pairs)
from ...metrics.peak import best_block_columns, best_block_test
from ...metrics.stats import spearman_replicates_grouped

IQA_COLUMNS = ["checkpoint", "epoch", "dataset", "distance", "distortion", "srcc", "srcc_lo", "srcc_hi", "krcc",
               "plcc", "pearson", "n_pairs", "iqa_resize"]
PAIR_COLUMNS = ["checkpoint", "epoch", "reference", "distortion", "level", "quality", "model_distance"]
LAYER_COLUMNS = ["checkpoint", "epoch", "dataset", "distance", "layer", *SCORED_PAIRS_COLUMNS]
SCORES = ("srcc", "krcc", "plcc", "pearson")
# iqa_best_block.csv (layers="all" only): is the best block's SRCC above the embedding's (metrics.peak.best_block_test)
BEST_BLOCK_COLUMNS = ["checkpoint", "epoch", "dataset", "distance", *best_block_columns("srcc")]
OPTIONAL_TABLES = ("iqa_layers", "iqa_best_block")  # layers="all" only (io.write_tables removes them left from before)
# iqa_families columns: (column, what its sentence calls it)
FAMILY_CURVES = [("within_seen_srcc", "seen families"), ("within_unseen_srcc", "unseen families"),
                 ("within_family_srcc", "all families"), ("overall_srcc", "all pairs (overall)")]
SPLIT_BY_TRAINING = ("within_seen_srcc", "within_unseen_srcc")  # the curves that need what training saw


def _distances(reference_features, distorted_features, data: IQAData, distance: str):
    return pair_distances(reference_features, distorted_features, data.pairs["reference_index"],
                          data.pairs["distorted_index"], distance, data.patches_per_image)


def _encoders(run: Run, params: dict):
    return run_encoders(run, params["device"], params["eval_batch_size"], cache_dir=run.layout.cache, progress=True)


@records_evaluation_sets("iqa")  # the run's record keeps a content hash of what was loaded
def load(run: Run, params: dict) -> IQAData:
    """The step's evaluation data: params' IQA set (iqa_dataset, iqa_root, iqa_resize) at the run's input size."""
    return load_iqa(params["iqa_dataset"], params["iqa_root"], params, image_size=run.image_size,
                    resize=params["iqa_resize"])


def measure(run: Run, params: dict, data: IQAData | None = None) -> dict[str, pd.DataFrame]:
    """Every table of the step, {name: table} for ``io.write_tables``: "iqa" (one row per checkpoint ×
    distortion, ``all`` = every pair), "iqa_pairs" (every pair's distance per checkpoint), "iqa_peak" (the
    paired early-peak test, ``early_peak_test``), "iqa_families" (within-family alignment, seen and unseen in
    training: :func:`family_alignment`) and, with ``params["layers"] == "all"``, "iqa_layers" and
    "iqa_best_block" (:func:`layer_scores`), for params' distance, n_boot and seed. ``data``: default :func:`load`."""
    data = load(run, params) if data is None else data
    rows, pair_rows, layer_rows, best_rows = [], [], [], []
    for checkpoint, encoder in _encoders(run, params):
        scored = data.pairs.assign(model_distance=_distances(
            encoder.encode_images(data.references), encoder.encode_images(data.distorted), data, params["distance"]))
        if params["layers"] == "all":
            rows_of_layers, best = layer_scores(checkpoint, encoder, data, params, scored["model_distance"].to_numpy())
            layer_rows += rows_of_layers
            best_rows.append(best)
        table = iqa_table(scored, distance_col="model_distance", n_boot=params["n_boot"], seed=bootstrap_seed(params))
        rows.append(table.assign(checkpoint=checkpoint.name, epoch=checkpoint.epoch, dataset=data.name,
                                 distance=params["distance"], iqa_resize=data.resize_mode))
        pair_rows.append(scored.assign(checkpoint=checkpoint.name, epoch=checkpoint.epoch))
    iqa = pd.concat(rows, ignore_index=True)[IQA_COLUMNS]
    pairs = pd.concat(pair_rows, ignore_index=True)[PAIR_COLUMNS]
    peak = early_peak_test(pairs, n_boot=params["n_boot"], seed=bootstrap_seed(params))
    peak_table = pd.DataFrame([{"dataset": data.name, "distance": params["distance"], **peak}])
    tables = {"iqa": iqa, "iqa_pairs": pairs, "iqa_peak": peak_table,
              "iqa_families": family_alignment(iqa, run.run_dir)[1]}
    if params["layers"] == "all":
        tables["iqa_layers"] = pd.DataFrame(layer_rows, columns=LAYER_COLUMNS)
        tables["iqa_best_block"] = pd.DataFrame(best_rows, columns=BEST_BLOCK_COLUMNS)
    return tables


def compare_distances(run: Run, params: dict, data: IQAData) -> pd.DataFrame:
    """Alignment of the run's last checkpoint under each distance (cosine, euclidean, normalized_euclidean):
    columns distance, srcc, krcc, plcc, pearson. Cheap: the embeddings come from the cache."""
    encoder = run_encoder(run, run.checkpoints[-1], params["device"], params["eval_batch_size"], run.layout.cache)
    references, distorted = encoder.encode_images(data.references), encoder.encode_images(data.distorted)
    quality = data.pairs["quality"].to_numpy()
    return pd.DataFrame([{"distance": kind, **alignment_scores(_distances(references, distorted, data, kind), quality)}
                         for kind in DISTANCES])


def layer_scores(checkpoint, encoder, data: IQAData, params: dict, final: np.ndarray) -> tuple[list[dict], dict]:
    """(iqa_layers.csv's rows of one checkpoint, its iqa_best_block.csv row). The rows: per vision block, and
    ``final`` (the embedding, whose pair distances iqa.csv scored: ``final``), the alignment of the block's output
    compared location by location (``metrics.iqa.block_distance``), its pairs reduced as the encoder streams the
    distorted images (``Encoder.encode_block_pairs``). The row: whether the best block's SRCC is above the
    embedding's (``metrics.peak.best_block_test``, resampling reference images)."""
    quality = data.pairs["quality"].to_numpy()
    reference_rows, distorted_rows = pair_rows(data.pairs["reference_index"], data.pairs["distorted_index"],
                                               data.patches_per_image)
    blocks = encoder.encode_block_pairs(data.references, data.distorted, reference_rows, distorted_rows)
    layers = {layer: per_pair(block_distance(statistics, params["distance"]), data.patches_per_image)
              for layer, statistics in blocks.items()}
    layers["final"] = final
    # each layer scored as iqa.csv's `all` row is (its interval resampling reference images, the same draws for
    # every layer: the best block's test compares them resample by resample)
    references = data.pairs["reference"].to_numpy()
    replicates = {layer: spearman_replicates_grouped(-distances, quality, references, params["n_boot"],
                                                     bootstrap_seed(params)) for layer, distances in layers.items()}
    where = {"checkpoint": checkpoint.name, "epoch": checkpoint.epoch, "dataset": data.name,
             "distance": params["distance"]}
    rows = [{**where, "layer": layer, **scored_pairs(distances, quality, references, replicates=replicates[layer])}
            for layer, distances in layers.items()]
    best = best_block_test(list(layers), [row["srcc"] for row in rows], list(replicates.values()), score="srcc")
    return rows, {**where, **best}


def seen_families(run_dir: str | Path) -> tuple[str, ...]:
    """The distortion families the run's training images carried: train_params.json's quality_families
    when its quality_variation > 0; () for a clean world or a run without that record (open_clip_train's)."""
    record = RunDir(run_dir).train_record
    if not record.exists():
        return ()
    params = json.loads(record.read_text())
    if float(params.get("quality_variation", 0.0)) <= 0:
        return ()
    return tuple(params.get("quality_families", ()))


def family_alignment(iqa: pd.DataFrame, run_dir: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(iqa with ``seen_in_training`` per distortion family, one row per checkpoint of within-family
    alignment: the mean of the per-family SRCCs over all, seen and unseen families, beside the overall SRCC)."""
    marked = mark_seen(iqa, seen_families(run_dir))
    return marked, within_family_alignment(marked)


# --- the page: sentences (lists of strings for prose.say) and figures, in page order -------------------------

def overall(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The iqa table's ``all`` rows (every pair pooled), one per checkpoint in table order."""
    iqa = tables["iqa"]
    return iqa[iqa["distortion"] == "all"].reset_index(drop=True)


def checkpoint_table(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The overall alignment of every checkpoint, for display (rounded to 3 decimals)."""
    return overall(tables).drop(columns=["dataset", "distance", "distortion"]).round(3)


def peak_table(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """``peak_summary`` of the overall SRCC, KRCC, PLCC and plain Pearson: one row each."""
    rows = overall(tables)
    # (a table written before `pearson` existed lacks it)
    return pd.DataFrame({score: peak_summary(rows["epoch"], rows[score]) for score in SCORES
                         if score in rows.columns}).T


# --- What the synthesis reads (registry.Summary). ---

def summary_columns(table: pd.DataFrame, distance: str | None, path: Path) -> pd.DataFrame:
    """Per checkpoint: epoch, iqa_dataset, distance, iqa_srcc with iqa_srcc_lo/_hi — the overall SRCC
    (distortion ``all``) at ``distance`` (None: the table's only one)."""
    table = table[table["distortion"] == "all"]
    table = table[table["distance"] == pick_distance(table, distance, path)].rename(
        columns={"srcc": "iqa_srcc", "srcc_lo": "iqa_srcc_lo", "srcc_hi": "iqa_srcc_hi", "dataset": "iqa_dataset"})
    return table[["checkpoint", "epoch", "iqa_dataset", "distance", "iqa_srcc", "iqa_srcc_lo", "iqa_srcc_hi"]]
