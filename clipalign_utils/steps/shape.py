"""The shape step: every checkpoint classifies the cue-conflict images; shape bias per checkpoint and
per class (``metrics.shape_bias``), the sentences the page says about them and the figures it shows."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..record import records_evaluation_sets
from ..config import bootstrap_seed
from ..checkpoints import Run
from ..data.cue_conflict import HUMAN_SHAPE_BIAS, HUMAN_SHAPE_BIAS_SOURCE, CueConflictSet, load_cue_conflict
from ..data.prompts import resolve_templates
from ..encoder import run_encoders
from ..metrics.shape_bias import per_class_shape_bias, shape_bias_summary, texture_then_shape
from ..plots.shape_bias import cue_conflict_examples, decision_titles, per_class_panel, shape_bias_curve

PER_CLASS_COLUMNS = ["checkpoint", "epoch", "class", "shape_bias", "n_images", "dataset"]
PREDICTION_COLUMNS = ["checkpoint", "image", "predicted"]
N_EXAMPLES = 12


@dataclass
class ShapeData:
    """The step's evaluation data: the cue-conflict images and the prompt templates of the classifier."""

    cue: CueConflictSet
    templates: tuple[str, ...]


@records_evaluation_sets("shape")  # the run's record keeps a content hash of what was loaded
def load(run: Run, params: dict) -> ShapeData:
    """The cue-conflict set of params' cue_conflict_dataset (at the run's input size) and its prompt templates."""
    cue = load_cue_conflict(params["cue_conflict_dataset"], params["cue_conflict_root"], params,
                            image_size=run.image_size)
    return ShapeData(cue, resolve_templates(params["prompt_templates"], cue.name))


def data_sentences(run: Run, data: ShapeData) -> list[str]:
    """What the page evaluates: the run's checkpoints, the images and the templates."""
    cue = data.cue
    return [f"{len(run.checkpoints)} checkpoints of {run.model_name}; dataset {cue.name}: {len(cue)} images, "
            f"{cue.n_conflicting} with conflicting cues, {len(cue.classnames)} classes, "
            f"{len(data.templates)} prompt templates"]


def measure(run: Run, params: dict, data: ShapeData | None = None) -> dict[str, pd.DataFrame]:
    """Zero-shot classify the cue-conflict images (``data``, default ``load(run, params)``) at every
    checkpoint of ``run``: {"shape_bias": one row per checkpoint (the shape bias with its bootstrap
    interval for params' n_boot and seed, its three decision fractions), "shape_bias_per_class":
    checkpoint × shape class, "shape_predictions": checkpoint × image, the predicted class index}."""
    data = load(run, params) if data is None else data
    cue, templates = data.cue, data.templates
    rows, class_rows, prediction_rows = [], [], []
    for checkpoint, encoder in run_encoders(run, params["device"], params["eval_batch_size"],
                                            cache_dir=run.layout.cache, progress=False):
        predicted = encoder.classify(cue.images, cue.classnames, templates)
        prediction_rows.append(pd.DataFrame({"checkpoint": checkpoint.name, "image": np.arange(len(predicted)),
                                             "predicted": predicted}))
        summary = shape_bias_summary(predicted, cue.shape_labels, cue.texture_labels,
                                     n_boot=params["n_boot"], seed=bootstrap_seed(params))
        rows.append({"checkpoint": checkpoint.name, "epoch": checkpoint.epoch, "dataset": cue.name, **summary,
                     "model": run.model_name, "n_templates": len(templates)})
        per_class = per_class_shape_bias(predicted, cue.shape_labels, cue.texture_labels)
        per_class["class"] = [cue.classnames[c] for c in per_class["class"]]
        class_rows.append(per_class.assign(checkpoint=checkpoint.name, epoch=checkpoint.epoch, dataset=cue.name))
    return {"shape_bias": pd.DataFrame(rows),
            "shape_bias_per_class": pd.concat(class_rows, ignore_index=True)[PER_CLASS_COLUMNS],
            "shape_predictions": pd.concat(prediction_rows, ignore_index=True)[PREDICTION_COLUMNS]}


def predictions(tables: dict[str, pd.DataFrame], checkpoint: str) -> np.ndarray:
    """The class ``checkpoint`` predicted for each image, in image order (from ``shape_predictions``)."""
    table = tables["shape_predictions"]
    return table[table["checkpoint"] == checkpoint].sort_values("image")["predicted"].to_numpy()


# --- the human reference -----------------------------------------------------------------------

def human_label(data: ShapeData) -> str:
    """The legend of the human line: a measurement on Geirhos' stimuli, only a mark elsewhere."""
    return ("humans, Geirhos et al. 2019" if data.cue.name == "geirhos"
            else "humans on Geirhos' stimuli (not this world)")


def curve_figure(data: ShapeData, tables: dict[str, pd.DataFrame]):
    """Shape bias over training with its bootstrap band and the human reference."""
    return shape_bias_curve(tables["shape_bias"], HUMAN_SHAPE_BIAS, human_label(data), log_x=True)


def reference_sentences() -> list[str]:
    """Where the human reference comes from."""
    return [f"human reference: {HUMAN_SHAPE_BIAS:g} — literature value ({HUMAN_SHAPE_BIAS_SOURCE}), "
            "not computed here"]


# --- the texture-then-shape shift --------------------------------------------------------------

def shift_sentences(shape_bias: pd.DataFrame) -> list[str]:
    """The first checkpoint, the texture phase (lowest shape bias before the last checkpoint) and the
    last one, the three conditions of ``texture_then_shape`` and the verdict, and the last checkpoint
    against the human reference."""
    shift = texture_then_shape(shape_bias)
    first, early, last = shift["first"], shift["texture_phase"], shift["last"]
    return [
        f"first checkpoint (epoch {first['epoch']:g}): shape bias {first['shape_bias']:.3f}",
        f"lowest before the end: epoch {early['epoch']:g}, shape bias {early['shape_bias']:.3f} "
        f"[{early['lo']:.3f}, {early['hi']:.3f}]",
        f"last checkpoint (epoch {last['epoch']:g}): shape bias {last['shape_bias']:.3f} "
        f"[{last['lo']:.3f}, {last['hi']:.3f}]",
        f"texture phase (lowest < 0.5): {shift['texture_phase_leans_texture']}; shape at the end (last > 0.5): "
        f"{shift['last_leans_shape']}; intervals separated: {shift['separated']}",
        f"texture-then-shape shift shows: {'yes' if shift['shift_shows'] else 'no'}",
        f"last checkpoint vs the human reference: {last['shape_bias'] - HUMAN_SHAPE_BIAS:+.3f}",
    ]


def fraction_sentences(shape_bias: pd.DataFrame) -> list[str]:
    """Shape, texture and neither fractions of the first, texture-phase and last checkpoints (each once)."""
    shift = texture_then_shape(shape_bias)
    rows = {row.name: row for row in (shift["first"], shift["texture_phase"], shift["last"])}
    return [f"epoch {row['epoch']:g}: shape {row['shape_fraction']:.3f}, texture {row['texture_fraction']:.3f}, "
            f"neither {row['neither_fraction']:.3f}" for row in rows.values()]


def _early_and_last(shape_bias: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """The texture-phase checkpoint's row and the last checkpoint's."""
    shift = texture_then_shape(shape_bias)
    return shift["texture_phase"], shift["last"]


# --- per class ---------------------------------------------------------------------------------

def per_class_figure(data: ShapeData, tables: dict[str, pd.DataFrame]):
    """The per-class panel of the texture-phase checkpoint and the last one, with the human reference."""
    shape_bias = tables["shape_bias"]
    early, last = _early_and_last(shape_bias)
    panel_checkpoints = list(dict.fromkeys([early["checkpoint"], last["checkpoint"]]))
    epochs = shape_bias.set_index("checkpoint")["epoch"]
    return per_class_panel(tables["shape_bias_per_class"], shape_bias, panel_checkpoints,
                           [f"epoch {epochs.loc[c]:g}" for c in panel_checkpoints], HUMAN_SHAPE_BIAS,
                           human_label(data))


def per_class_sentences(tables: dict[str, pd.DataFrame]) -> list[str]:
    """How many classes the last checkpoint classifies by shape more often than by texture."""
    _, last = _early_and_last(tables["shape_bias"])
    per_class = tables["shape_bias_per_class"]
    final_classes = per_class[per_class["checkpoint"] == last["checkpoint"]]
    return [f"last checkpoint: classes with shape bias > 0.5: {(final_classes['shape_bias'] > 0.5).sum()} "
            f"of {final_classes['shape_bias'].notna().sum()} with cue decisions"]


# --- examples ----------------------------------------------------------------------------------

def conflicting(data: ShapeData) -> np.ndarray:
    """The indices of the images whose shape and texture differ."""
    return np.flatnonzero(data.cue.shape_labels != data.cue.texture_labels)


def example_indices(data: ShapeData, n: int = N_EXAMPLES) -> np.ndarray:
    """``n`` conflicting images evenly spaced through the set (fewer when the set holds fewer)."""
    among = conflicting(data)
    return among[np.unique(np.linspace(0, len(among) - 1, n).round().astype(int))]


def examples_figure(data: ShapeData, tables: dict[str, pd.DataFrame]):
    """Evenly spaced conflicting images titled with their cues and the decisions of the texture-phase
    checkpoint and the last one."""
    early, last = _early_and_last(tables["shape_bias"])
    cue, picked = data.cue, example_indices(data)
    titles = decision_titles(cue.shape_labels[picked], cue.texture_labels[picked],
                             [predictions(tables, early["checkpoint"])[picked],
                              predictions(tables, last["checkpoint"])[picked]],
                             cue.classnames, cue.texture_names)
    return cue_conflict_examples(cue.example_images(picked), titles,
                                 suptitle=f"shape·texture → epoch {early['epoch']:g} | epoch {last['epoch']:g}")


def agreement_sentences(data: ShapeData, tables: dict[str, pd.DataFrame]) -> list[str]:
    """How often the texture-phase checkpoint and the last one give the same answer."""
    early, last = _early_and_last(tables["shape_bias"])
    agree = (predictions(tables, early["checkpoint"]) == predictions(tables, last["checkpoint"]))[conflicting(data)]
    return [f"the two checkpoints give the same answer on {agree.mean():.0%} of the conflicting images"]
