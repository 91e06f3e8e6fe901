"""The ``iqa`` step: image-quality alignment of every checkpoint of a run.

For each checkpoint the reference and distorted images are embedded once (cached), every pair gets
the model's distance (per patch and averaged when images are tiled, per location for block outputs),
and the distances are rank-correlated with the ground-truth quality.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ..checkpoints import Run
from ..data.iqa import IQAData
from ..encoder import Encoder, run_encoders
from ..metrics.families import mark_seen, within_family_alignment
from ..metrics.iqa import DISTANCES, alignment_scores, early_peak_test, iqa_table, pair_distances

IQA_COLUMNS = ["checkpoint", "epoch", "dataset", "distance", "distortion", "srcc", "srcc_lo", "srcc_hi", "krcc",
               "plcc", "n_pairs", "iqa_resize"]
PAIR_COLUMNS = ["checkpoint", "epoch", "reference", "distortion", "level", "quality", "model_distance"]


def _distances(reference_features, distorted_features, data: IQAData, distance: str):
    return pair_distances(reference_features, distorted_features, data.pairs["reference_index"],
                          data.pairs["distorted_index"], distance, data.patches_per_image)


def _encoders(run: Run, params: dict, cache_dir: Path):
    return run_encoders(run, params["device"], params["eval_batch_size"], cache_dir=cache_dir, progress=False)


def measure(run: Run, data: IQAData, params: dict, cache_dir: Path) -> dict[str, pd.DataFrame]:
    """{"iqa": one row per checkpoint × distortion (``all`` = every pair), "iqa_pairs": every pair's
    distance per checkpoint, "iqa_peak": the paired early-peak test (``early_peak_test``)} for
    params' distance, n_boot and seed."""
    rows, pair_rows = [], []
    for checkpoint, encoder in _encoders(run, params, cache_dir):
        scored = data.pairs.assign(model_distance=_distances(
            encoder.encode_images(data.references), encoder.encode_images(data.distorted), data, params["distance"]))
        table = iqa_table(scored, distance_col="model_distance", n_boot=params["n_boot"], seed=params["seed"])
        rows.append(table.assign(checkpoint=checkpoint.name, epoch=checkpoint.epoch, dataset=data.name,
                                 distance=params["distance"], iqa_resize=data.resize_mode))
        pair_rows.append(scored.assign(checkpoint=checkpoint.name, epoch=checkpoint.epoch))
    iqa = pd.concat(rows, ignore_index=True)[IQA_COLUMNS]
    pairs = pd.concat(pair_rows, ignore_index=True)[PAIR_COLUMNS]
    peak = early_peak_test(pairs, n_boot=params["n_boot"], seed=params["seed"])
    peak_table = pd.DataFrame([{"dataset": data.name, "distance": params["distance"], **peak}])
    return {"iqa": iqa, "iqa_pairs": pairs, "iqa_peak": peak_table}


def compare_distances(encoder: Encoder, data: IQAData) -> pd.DataFrame:
    """Alignment of one checkpoint under each distance (cosine, euclidean, normalized_euclidean):
    columns distance, srcc, krcc, plcc. Cheap: the embeddings come from the cache."""
    references, distorted = encoder.encode_images(data.references), encoder.encode_images(data.distorted)
    quality = data.pairs["quality"].to_numpy()
    return pd.DataFrame([{"distance": kind, **alignment_scores(_distances(references, distorted, data, kind), quality)}
                         for kind in DISTANCES])


def measure_layers(run: Run, data: IQAData, params: dict, cache_dir: Path) -> pd.DataFrame:
    """One row per checkpoint × vision block (and ``final``, the embedding): the alignment of the block's
    output compared location by location (``metrics.iqa.location_distance``)."""
    rows = []
    quality = data.pairs["quality"].to_numpy()
    for checkpoint, encoder in _encoders(run, params, cache_dir):
        references, distorted = encoder.encode_layers(data.references), encoder.encode_layers(data.distorted)
        for layer in references:
            distances = _distances(references[layer], distorted[layer], data, params["distance"])
            rows.append({"checkpoint": checkpoint.name, "epoch": checkpoint.epoch, "dataset": data.name,
                         "distance": params["distance"], "layer": layer, **alignment_scores(distances, quality),
                         "n_pairs": len(distances)})
    return pd.DataFrame(rows)


def seen_families(run_dir: str | Path) -> tuple[str, ...]:
    """The distortion families the run's training images carried: train_params.json's quality_families
    when its quality_variation > 0; () for a clean world or a run without that record (open_clip_train's)."""
    record = Path(run_dir) / "train_params.json"
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
