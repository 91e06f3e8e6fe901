"""The shape step: every checkpoint classifies the cue-conflict images; shape bias per checkpoint and
per class (``metrics.shape_bias``)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..checkpoints import Run
from ..data.cue_conflict import CueConflictSet
from ..encoder import run_encoders
from ..metrics.shape_bias import per_class_shape_bias, shape_bias_summary

PER_CLASS_COLUMNS = ["checkpoint", "epoch", "class", "shape_bias", "n_images", "dataset"]


@dataclass
class ShapeResults:
    shape_bias: pd.DataFrame  # metrics/shape_bias.csv: one row per checkpoint
    per_class: pd.DataFrame  # metrics/shape_bias_per_class.csv: checkpoint × shape class
    predictions: dict[str, np.ndarray]  # checkpoint name -> predicted class per image


def measure(run: Run, cue: CueConflictSet, templates, params: dict, cache_dir: str | Path | None = None) -> ShapeResults:
    """Zero-shot classify ``cue``'s images at every checkpoint of ``run`` (prompt ``templates``); the shape
    bias with its bootstrap interval (``n_boot``, ``seed``), its three decision fractions, and per class."""
    rows, class_rows, predictions = [], [], {}
    for checkpoint, encoder in run_encoders(run, params["device"], params["eval_batch_size"],
                                            cache_dir=cache_dir, progress=False):
        predicted = encoder.classify(cue.images, cue.classnames, templates)
        predictions[checkpoint.name] = predicted
        summary = shape_bias_summary(predicted, cue.shape_labels, cue.texture_labels,
                                     n_boot=params["n_boot"], seed=params["seed"])
        rows.append({"checkpoint": checkpoint.name, "epoch": checkpoint.epoch, "dataset": cue.name, **summary,
                     "model": run.model_name, "n_templates": len(templates)})
        per_class = per_class_shape_bias(predicted, cue.shape_labels, cue.texture_labels)
        per_class["class"] = [cue.classnames[c] for c in per_class["class"]]
        class_rows.append(per_class.assign(checkpoint=checkpoint.name, epoch=checkpoint.epoch, dataset=cue.name))
    return ShapeResults(pd.DataFrame(rows), pd.concat(class_rows, ignore_index=True)[PER_CLASS_COLUMNS],
                        predictions)
