"""The shape step: every checkpoint classifies the cue-conflict images; shape bias per checkpoint and
per class (``metrics.shape_bias``), the sentences the page says about them and the figures it shows.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ...record import records_evaluation_sets
from ...config import bootstrap_seed
from ...checkpoints import Run
from ...data.cue_conflict import CueConflictSet, load_cue_conflict
from ...data.geirhos import IMAGENET_INDICES
from ...data.prompts import imagenet_classnames, resolve_templates
from ...encoder import run_encoders
from ...metrics.shape_bias import (imagenet_category_decisions, per_class_shape_bias, shape_bias_replicates,
                                   shape_bias_summary, texture_then_shape)
from ...metrics.trend import TREND_COLUMNS, trend_test

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


def measure(run: Run, params: dict, data: ShapeData | None = None) -> dict[str, pd.DataFrame]:
    """Zero-shot classify the cue-conflict images (``data``, default ``load(run, params)``) at every
    checkpoint of ``run``: {"shape_bias": one row per checkpoint (the shape bias with its bootstrap
    interval for params' n_boot and seed, its three decision fractions), "shape_bias_per_class":
    checkpoint × shape class, "shape_predictions": checkpoint × image, the predicted class index, "shape_trend":
    the texture bias' trend over the run with its paired interval over images (:func:`texture_bias_trend`)}."""
    data = load(run, params) if data is None else data
    cue, templates = data.cue, data.templates
    rows, class_rows, prediction_rows, replicates = [], [], [], []
    for checkpoint, encoder in run_encoders(run, params["device"], params["eval_batch_size"],
                                            cache_dir=run.layout.cache, progress=True):
        predicted = decisions(encoder, cue, templates, params["shape_classifier"])
        prediction_rows.append(pd.DataFrame({"checkpoint": checkpoint.name, "image": np.arange(len(predicted)),
                                             "predicted": predicted}))
        resampling = dict(n_boot=params["n_boot"], seed=bootstrap_seed(params), shape_sources=cue.shape_sources,
                          texture_sources=cue.texture_sources)
        summary = shape_bias_summary(predicted, cue.shape_labels, cue.texture_labels,
                                     n_classes=len(cue.classnames), **resampling)
        replicates.append(shape_bias_replicates(predicted, cue.shape_labels, cue.texture_labels, **resampling))
        rows.append({"checkpoint": checkpoint.name, "epoch": checkpoint.epoch, "dataset": cue.name, **summary,
                     "model": run.model_name, "n_templates": len(templates),
                     "classifier": params["shape_classifier"]})
        per_class = per_class_shape_bias(predicted, cue.shape_labels, cue.texture_labels)
        per_class["class"] = [cue.classnames[c] for c in per_class["class"]]
        class_rows.append(per_class.assign(checkpoint=checkpoint.name, epoch=checkpoint.epoch, dataset=cue.name))
    shape_bias = pd.DataFrame(rows)
    return {"shape_bias": shape_bias,
            "shape_bias_per_class": pd.concat(class_rows, ignore_index=True)[PER_CLASS_COLUMNS],
            "shape_predictions": pd.concat(prediction_rows, ignore_index=True)[PREDICTION_COLUMNS],
            "shape_trend": texture_bias_trend(shape_bias, np.stack(replicates))}


def texture_bias_trend(shape_bias: pd.DataFrame, replicates: np.ndarray) -> pd.DataFrame:
    """The texture bias' trend over the run (``metrics.trend.trend_test``): Spearman ρ of epoch and
    1 − shape bias over the checkpoints deciding for a cue above chance (``shape_at_chance``: a guessing
    checkpoint's shape bias is noise, as the synthesis leaves it out), with its interval from ``replicates``
    (one row per checkpoint of ``shape_bias``: :func:`shape_bias_replicates`). One row (``TREND_COLUMNS``)."""
    guessing = shape_bias["shape_at_chance"].astype(bool).to_numpy()
    texture_bias = np.where(guessing, np.nan, 1.0 - shape_bias["shape_bias"].to_numpy(float))
    trend = trend_test(shape_bias["epoch"], texture_bias, 1.0 - replicates)
    return pd.DataFrame([{"measure": "texture_bias", **trend}], columns=TREND_COLUMNS)


def decisions(encoder, cue: CueConflictSet, templates, classifier: str) -> np.ndarray:
    """Each image's decision, an index into ``cue.classnames``: zero-shot over those names (``direct``), or
    model-vs-human's for CLIP (``imagenet``: a zero-shot head over ImageNet's 1,000 classes with the same
    templates, its probabilities averaged into each category's ImageNet classes, :data:`IMAGENET_INDICES`)."""
    if classifier == "direct":
        return encoder.classify(cue.images, cue.classnames, templates)
    logits = encoder.zero_shot_logits(cue.images, imagenet_classnames(), templates)
    return imagenet_category_decisions(logits, [IMAGENET_INDICES[name] for name in cue.classnames])


def predictions(tables: dict[str, pd.DataFrame], checkpoint: str) -> np.ndarray:
    """The class ``checkpoint`` predicted for each image, in image order (from ``shape_predictions``)."""
    table = tables["shape_predictions"]
    return table[table["checkpoint"] == checkpoint].sort_values("image")["predicted"].to_numpy()


# --- the human reference -----------------------------------------------------------------------

def every_at_chance(shape_bias: pd.DataFrame) -> bool:
    """Whether every checkpoint decides for a cue at chance (``shape_at_chance``): no shift to read then."""
    return len(texture_then_shape(shape_bias)["left_out"]) == len(shape_bias)


def _early_and_last(shape_bias: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """The texture-phase checkpoint's row and the last checkpoint's, of those above chance where the table says
    (``texture_then_shape``); the first and the last when every checkpoint is at chance."""
    shift = texture_then_shape(shape_bias)
    # the lowest shape bias of guessing is no texture phase: nothing picks a checkpoint but its place
    return (shift["first"] if every_at_chance(shape_bias) else shift["texture_phase"]), shift["last"]


# --- per class ---------------------------------------------------------------------------------

def conflicting(data: ShapeData) -> np.ndarray:
    """The indices of the images whose shape and texture differ."""
    return np.flatnonzero(data.cue.shape_labels != data.cue.texture_labels)


def example_indices(data: ShapeData, n: int = N_EXAMPLES) -> np.ndarray:
    """``n`` conflicting images evenly spaced through the set (fewer when the set holds fewer)."""
    among = conflicting(data)
    return among[np.unique(np.linspace(0, len(among) - 1, n).round().astype(int))]


# --- What the synthesis reads (registry.Summary). ---

def summary_columns(table: pd.DataFrame, distance: str | None, path) -> pd.DataFrame:
    """Per checkpoint: cue_conflict_dataset, shape_bias with shape_bias_lo/_hi, and shape_at_chance (its
    cue decisions are not above chance; a table written before the step judged that has none, and the
    synthesis then reads the noise step's at_chance for it)."""
    table = table.rename(columns={"lo": "shape_bias_lo", "hi": "shape_bias_hi", "dataset": "cue_conflict_dataset"})
    flag = ["shape_at_chance"] if "shape_at_chance" in table.columns else []
    return table[["checkpoint", "cue_conflict_dataset", "shape_bias", "shape_bias_lo", "shape_bias_hi", *flag]]
