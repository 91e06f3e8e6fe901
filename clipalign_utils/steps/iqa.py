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

import pandas as pd

from ..record import records_evaluation_sets
from ..config import bootstrap_seed
from ..checkpoints import Run
from ..data.iqa import IQAData, load_iqa
from ..encoder import Encoder, run_encoders
from ..layout import RunDir
from ..metrics.families import mark_seen, within_family_alignment
from ..metrics.iqa import (DISTANCES, EARLY_FRACTION, alignment_scores, early_peak_test, iqa_table, pair_distances,
                           peak_summary)
from ..plots.families import family_curves
from ..plots.iqa import alignment_curve, distance_quality_scatter, iqa_examples

IQA_COLUMNS = ["checkpoint", "epoch", "dataset", "distance", "distortion", "srcc", "srcc_lo", "srcc_hi", "krcc",
               "plcc", "n_pairs", "iqa_resize"]
PAIR_COLUMNS = ["checkpoint", "epoch", "reference", "distortion", "level", "quality", "model_distance"]
SCORES = ("srcc", "krcc", "plcc")
# iqa_families columns: (column, what its sentence calls it)
FAMILY_CURVES = [("within_seen_srcc", "seen families"), ("within_unseen_srcc", "unseen families"),
                 ("within_family_srcc", "all families"), ("overall_srcc", "all pairs (overall)")]


def _distances(reference_features, distorted_features, data: IQAData, distance: str):
    return pair_distances(reference_features, distorted_features, data.pairs["reference_index"],
                          data.pairs["distorted_index"], distance, data.patches_per_image)


def _encoders(run: Run, params: dict):
    return run_encoders(run, params["device"], params["eval_batch_size"], cache_dir=run.layout.cache, progress=False)


@records_evaluation_sets("iqa")  # the run's record keeps a content hash of what was loaded
def load(run: Run, params: dict) -> IQAData:
    """The step's evaluation data: params' IQA set (iqa_dataset, iqa_root, iqa_resize) at the run's input size."""
    return load_iqa(params["iqa_dataset"], params["iqa_root"], params, image_size=run.image_size,
                    resize=params["iqa_resize"])


def measure(run: Run, params: dict, data: IQAData | None = None) -> dict[str, pd.DataFrame]:
    """Every table of the step, {name: table} for ``io.write_tables``: "iqa" (one row per checkpoint ×
    distortion, ``all`` = every pair), "iqa_pairs" (every pair's distance per checkpoint), "iqa_peak" (the
    paired early-peak test, ``early_peak_test``), "iqa_families" (within-family alignment, seen and unseen in
    training: :func:`family_alignment`) and, with ``params["layers"] == "all"``, "iqa_layers"
    (:func:`measure_layers`), for params' distance, n_boot and seed. ``data``: default :func:`load`."""
    data = load(run, params) if data is None else data
    rows, pair_rows = [], []
    for checkpoint, encoder in _encoders(run, params):
        scored = data.pairs.assign(model_distance=_distances(
            encoder.encode_images(data.references), encoder.encode_images(data.distorted), data, params["distance"]))
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
        tables["iqa_layers"] = measure_layers(run, params, data)
    return tables


def compare_distances(run: Run, params: dict, data: IQAData) -> pd.DataFrame:
    """Alignment of the run's last checkpoint under each distance (cosine, euclidean, normalized_euclidean):
    columns distance, srcc, krcc, plcc. Cheap: the embeddings come from the cache."""
    encoder = Encoder(run.checkpoints[-1], run.model_name, run.image_size, params["device"], params["eval_batch_size"],
                      cache_dir=run.layout.cache)
    references, distorted = encoder.encode_images(data.references), encoder.encode_images(data.distorted)
    quality = data.pairs["quality"].to_numpy()
    return pd.DataFrame([{"distance": kind, **alignment_scores(_distances(references, distorted, data, kind), quality)}
                         for kind in DISTANCES])


def measure_layers(run: Run, params: dict, data: IQAData) -> pd.DataFrame:
    """One row per checkpoint × vision block (and ``final``, the embedding): the alignment of the block's
    output compared location by location (``metrics.iqa.location_distance``)."""
    rows = []
    quality = data.pairs["quality"].to_numpy()
    for checkpoint, encoder in _encoders(run, params):
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

def describe_data(run: Run, data: IQAData, params: dict) -> list[str]:
    """What is scored: the run's checkpoints, the set's pairs, references, distortion types and levels, the
    distance and how images meet the model's input (and a note when they are shrunk a lot)."""
    pairs = data.pairs
    line = (f"{len(run.checkpoints)} checkpoints of {run.model_name}; dataset {data.name}: "
            f"{len(data)} distorted images of {len(data.references) // data.patches_per_image} references, "
            f"{pairs['distortion'].nunique()} distortion types, "
            f"levels {', '.join(map(str, sorted(pairs['level'].unique())))}; distance: {params['distance']}; "
            f"iqa_resize: {data.resize_mode} ({data.patches_per_image} patch(es) per image, "
            f"downsampling {data.downsampling:g}×)")
    return [line] + ([data.downsampling_note] if data.downsampling_note else [])


def ground_truth_sentences(data: IQAData) -> list[str]:
    """Who scored the pairs; for a reference observer, how well it agrees with people, and its source."""
    lines = [f"quality scores: {data.ground_truth}"]
    if data.observer is not None:
        lines += [f"reference observer: {data.observer}, a human-calibrated full-reference metric; "
                  f"published SRCC with TID2013's human MOS: {data.observer_srcc_tid2013:.3f}",
                  f"source: {data.observer_source}",
                  "its scores are not human judgments: an SRCC here measures agreement with this observer, "
                  "which itself agrees with people only as far as the value above says"]
    return lines


def examples_figure(data: IQAData, reference: int = 0):
    """Reference ``reference`` and one distorted version of it per distortion type (its middle level), each
    titled with its distortion, level and quality."""
    pairs = data.example_pairs(reference)
    titles = [f"{d.replace('_', ' ')}\nlevel {lv}, quality {q:.2f}"
              for d, lv, q in zip(pairs["distortion"], pairs["level"], pairs["quality"])]
    return iqa_examples(data.reference_image(reference), data.distorted_images(pairs["distorted_index"]), titles,
                        reference_title=f"reference: {pairs['reference'].iloc[0]}")


def _by_level(values: pd.Series, levels: pd.Series, fmt: str) -> str:
    return ", ".join(f"level {level}: {median:{fmt}}" for level, median in values.groupby(levels).median().items())


def level_sentences(data: IQAData) -> list[str]:
    """The median quality at each distortion level."""
    return ["quality by level (median over all references and distortions): "
            + _by_level(data.pairs["quality"], data.pairs["level"], ".3f")]


def overall(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The iqa table's ``all`` rows (every pair pooled), one per checkpoint in table order."""
    iqa = tables["iqa"]
    return iqa[iqa["distortion"] == "all"].reset_index(drop=True)


def checkpoint_table(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The overall alignment of every checkpoint, for display (rounded to 3 decimals)."""
    return overall(tables).drop(columns=["dataset", "distance", "distortion"]).round(3)


def alignment_figure(tables: dict[str, pd.DataFrame], data: IQAData, params: dict):
    """SRCC (with its bootstrap band), KRCC and PLCC against epoch, on a log axis past the first checkpoint."""
    return alignment_curve(tables["iqa"], log_x=True,
                           title=f"alignment with {data.name} quality ({params['distance']} distance)")


def peak_table(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """``peak_summary`` of the overall SRCC, KRCC and PLCC: one row each."""
    rows = overall(tables)
    return pd.DataFrame({score: peak_summary(rows["epoch"], rows[score]) for score in SCORES}).T


def _peak_and_final(tables: dict[str, pd.DataFrame]) -> tuple[pd.Series, pd.Series]:
    """The overall rows of the SRCC's peak checkpoint (the earliest on a tie) and of the last checkpoint."""
    rows = overall(tables)
    peak = peak_summary(rows["epoch"], rows["srcc"])
    return rows[rows["epoch"] == peak["peak_epoch"]].iloc[0], rows.iloc[-1]


def peak_sentences(tables: dict[str, pd.DataFrame]) -> list[str]:
    """The overall SRCC at the first checkpoint, at its peak and at the last (with intervals), the drop from
    peak to final, where the peak lies, and whether the final interval reaches the peak value."""
    rows = overall(tables)
    peak = peak_summary(rows["epoch"], rows["srcc"])
    at_peak, final = _peak_and_final(tables)
    where = ("inside training (neither the first nor the last checkpoint)" if peak["peak_is_interior"]
             else "at an end of training")
    return [f"SRCC at the first checkpoint (epoch {rows['epoch'].iloc[0]:g}): {rows['srcc'].iloc[0]:.3f}",
            f"SRCC peaks at epoch {peak['peak_epoch']:g}: {peak['peak_value']:.3f} "
            f"[{at_peak['srcc_lo']:.3f}, {at_peak['srcc_hi']:.3f}]",
            f"final checkpoint (epoch {peak['final_epoch']:g}): {peak['final_value']:.3f} "
            f"[{final['srcc_lo']:.3f}, {final['srcc_hi']:.3f}]",
            f"drop from peak to final: {peak['drop_from_peak']:.3f}; the peak is {where}",
            f"the final checkpoint's interval {'excludes' if final['srcc_hi'] < peak['peak_value'] else 'includes'} "
            "the peak value"]


def early_peak_sentences(tables: dict[str, pd.DataFrame]) -> list[str]:
    """The early window and, when it holds checkpoints, the paired early-peak test (iqa_peak) with its verdict."""
    test = tables["iqa_peak"].iloc[0]
    lines = [f"early window: 0 < epoch ≤ {EARLY_FRACTION:.3g} × {test['final_epoch']:g} = "
             f"{test['early_end']:g} ({int(test['n_early'])} checkpoints)"]
    if int(test["n_early"]):
        verdict = ("above 0 — an early peak and a decline" if test["lo"] > 0 else
                   "below 0 — the final checkpoint is better aligned than any early one" if test["hi"] < 0 else
                   "includes 0 — no clear early peak")
        lines.append(f"best early SRCC {test['early_peak_srcc']:.3f} (epoch {test['early_peak_epoch']:g}) − final "
                     f"{test['final_srcc']:.3f} = {test['early_drop']:.3f}, paired 95 % interval "
                     f"[{test['lo']:.3f}, {test['hi']:.3f}] over {int(test['n_references'])} references: " + verdict)
    return lines


def distortion_sentences(tables: dict[str, pd.DataFrame]) -> list[str]:
    """The worst and best aligned distortion type at the peak checkpoint and at the last one."""
    iqa = tables["iqa"]
    per_type = iqa[iqa["distortion"] != "all"]
    lines = []
    for row, label in zip(_peak_and_final(tables), ("peak", "final")):
        ranked = per_type[per_type["checkpoint"] == row["checkpoint"]].sort_values("srcc")
        lines.append(f"{label} checkpoint (epoch {ranked['epoch'].iloc[0]:g}): worst aligned "
                     f"{ranked['distortion'].iloc[0]} ({ranked['srcc'].iloc[0]:.3f}), "
                     f"best {ranked['distortion'].iloc[-1]} ({ranked['srcc'].iloc[-1]:.3f})")
    return lines


def families_figure(tables: dict[str, pd.DataFrame], run: Run):
    """Each family's SRCC (red: seen in training, blue: unseen) and the within-family means (iqa_families)."""
    return family_curves(mark_seen(tables["iqa"], seen_families(run.run_dir)), tables["iqa_families"])


def family_sentences(tables: dict[str, pd.DataFrame], run: Run) -> list[str]:
    """The families seen in training, then the peak and final value of each within-family mean and the overall
    SRCC (those defined)."""
    seen = seen_families(run.run_dir)
    lines = [f"families seen in training: {', '.join(seen) if seen else 'none (a clean training world)'}"]
    for column, label in FAMILY_CURVES:
        curve = tables["iqa_families"].dropna(subset=[column])
        if len(curve):
            top = peak_summary(curve["epoch"], curve[column])
            lines.append(f"{label}: peak {top['peak_value']:.3f} at epoch {top['peak_epoch']:g}, final "
                         f"{top['final_value']:.3f} at epoch {top['final_epoch']:g} "
                         f"(drop from peak {top['drop_from_peak']:.3f})")
    return lines


def scatter_figure(tables: dict[str, pd.DataFrame], data: IQAData, params: dict):
    """Distance against quality for every pair at the SRCC's peak checkpoint and the last one (one panel when
    they coincide), each titled with its epoch and SRCC."""
    at_peak, final = _peak_and_final(tables)
    shown = list(dict.fromkeys([at_peak["checkpoint"], final["checkpoint"]]))
    rows = overall(tables).set_index("checkpoint").loc[shown]
    labels = [f"{'peak' if c == at_peak['checkpoint'] else 'last'}{' = last' if len(shown) == 1 else ''}, "
              f"epoch {e:g}" for c, e in rows["epoch"].items()]
    return distance_quality_scatter(tables["iqa_pairs"], shown, labels, scores=rows["srcc"].tolist(),
                                    quality_label=f"quality ({data.name}; higher = better)",
                                    distance_label=f"{params['distance']} distance")


def distance_sentences(tables: dict[str, pd.DataFrame], params: dict) -> list[str]:
    """The last checkpoint's median distance at each distortion level."""
    pairs = tables["iqa_pairs"]
    last = pairs[pairs["checkpoint"] == overall(tables)["checkpoint"].iloc[-1]]
    return [f"last checkpoint, median {params['distance']} distance by level: "
            + _by_level(last["model_distance"], last["level"], ".4f")]


def layer_sentences(tables: dict[str, pd.DataFrame]) -> list[str]:
    """The most aligned vision block at each checkpoint (iqa_layers), or that only the embedding was scored."""
    if "iqa_layers" not in tables:
        return ["layers='final': only the image embedding was scored (run with -p layers=all for every block)"]
    layers = tables["iqa_layers"]
    best = layers.loc[layers.groupby("checkpoint", sort=False)["srcc"].idxmax()]
    return [f"epoch {row['epoch']:g}: most aligned layer {row['layer']} (SRCC {row['srcc']:.3f})"
            for _, row in best.iterrows()]
