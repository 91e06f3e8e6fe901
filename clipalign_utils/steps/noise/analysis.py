"""The noise step: zero-shot accuracy of every checkpoint on clean and noisy copies of a labelled set,
the normalized and chance-corrected drops (``metrics.noise``), which checkpoints sit at chance, and
the sentences the page says about them.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ...record import records_evaluation_sets
from ...config import bootstrap_seed, derived_seed
from ...checkpoints import Run
from ...data.noise import ClassificationSet, load_noise_dataset, noisy_image_sets
from ...data.prompts import resolve_templates
from ...encoder import run_encoders
from . import input_size
from ...metrics.noise import (TREND_MEASURES, checkpoint_summary, mean_drop_interval, mean_drop_replicates,
                              mean_drops, noise_table)
from ...metrics.trend import TREND_COLUMNS, trend_test

N_EXAMPLES = 4


@dataclass
class NoiseData:
    """The step's evaluation data: the labelled clean set, its image set per σ (0 = clean) and the
    prompt templates of the classifier."""

    dataset: ClassificationSet
    image_sets: dict  # sigma -> image set, ascending, 0 first
    templates: tuple[str, ...]

    @property
    def chance(self) -> float:
        return 1 / len(self.dataset.classnames)


@records_evaluation_sets("noise")  # the run's record keeps a content hash of what was loaded
def load(run: Run, params: dict) -> NoiseData:
    """params' noise_dataset, its noisy copies (sigmas, noise_at; ``input`` at the run's input size; the
    noise drawn from eval_seed's ``noise`` stream) and its prompt templates."""
    dataset = load_noise_dataset(params["noise_dataset"], params["noise_root"], params)
    image_sets = noisy_image_sets(dataset, params["sigmas"], derived_seed(params, "noise"), params["noise_at"],
                                  input_size(run, params["noise_at"]))
    return NoiseData(dataset, image_sets, resolve_templates(params["prompt_templates"], params["noise_dataset"]))


def measure(run: Run, params: dict, data: NoiseData | None = None) -> dict[str, pd.DataFrame]:
    """{"noise": one row per checkpoint × σ (accuracy with its bootstrap interval over images, normalized
    drop with its interval (normalized_drop_lo/_hi) and the interval of its mean over σ
    (mean_normalized_drop_lo/_hi), chance-corrected drop; n_classes, noise_at and clean_at_chance appended),
    "noise_summary": one row per checkpoint (the mean normalized drop with that interval), "noise_trend": the two
    mean drops' trends over the run with their paired intervals over images (:func:`drop_trends`)} on ``data`` (default
    ``load(run, params)``). A checkpoint whose clean interval reaches chance has no competence for noise to take
    away: flagged."""
    data = load(run, params) if data is None else data
    dataset, chance = data.dataset, data.chance
    tables, replicates = [], []
    for checkpoint, encoder in run_encoders(run, params["device"], params["eval_batch_size"],
                                            cache_dir=run.layout.cache, progress=True):
        weights = encoder.zero_shot_weights(dataset.classnames, data.templates)
        correct = {sigma: (encoder.encode_images(images) @ weights).argmax(axis=1) == dataset.labels
                   for sigma, images in data.image_sets.items()}
        table = noise_table(correct, n_boot=params["n_boot"], seed=bootstrap_seed(params), chance=chance)
        replicates.append(mean_drop_replicates(correct, n_boot=params["n_boot"], seed=bootstrap_seed(params),
                                               chance=chance))
        table.insert(0, "checkpoint", checkpoint.name)
        table.insert(1, "epoch", checkpoint.epoch)
        table.insert(2, "dataset", params["noise_dataset"])
        tables.append(table)
    noise = pd.concat(tables, ignore_index=True)
    summary = checkpoint_summary(noise, chance)
    summary.insert(2, "dataset", params["noise_dataset"])
    noise["n_classes"] = len(dataset.classnames)
    noise["noise_at"] = params["noise_at"]
    noise["clean_at_chance"] = noise["checkpoint"].map(summary.set_index("checkpoint")["clean_at_chance"])
    # The mean drop is undefined at chance (noise_summary's is nan): so is its interval, the checkpoint's.
    noise.loc[noise["clean_at_chance"].astype(bool),
              ["mean_normalized_drop_lo", "mean_normalized_drop_hi"]] = float("nan")
    return {"noise": noise, "noise_summary": summary, "noise_trend": drop_trends(summary, replicates)}


def drop_trends(summary: pd.DataFrame, replicates: list[dict]) -> pd.DataFrame:
    """The trends of the two mean drops over the run (``metrics.trend.trend_test``), one row each
    (``TREND_COLUMNS``, measure = the synthesis' name): Spearman ρ of epoch and the drop over the checkpoints
    above chance (``summary``: noise_summary, whose drops are nan at chance), with its interval from
    ``replicates`` (per checkpoint of ``summary``, :func:`~clipalign_utils.metrics.noise.mean_drop_replicates`)."""
    rows = [{"measure": measure, **trend_test(summary["epoch"], summary[column],
                                              np.stack([r[measure] for r in replicates]))}
            for column, measure in TREND_MEASURES.items()]
    return pd.DataFrame(rows, columns=TREND_COLUMNS)


# --- What the synthesis reads (registry.Summary). ---

def summary_columns(noise: pd.DataFrame, distance: str | None, path) -> pd.DataFrame:
    """Per checkpoint: noise_dataset, clean_accuracy, noise_drop = the mean normalized drop over the noisy
    sigmas with noise_drop_lo/_hi (its paired bootstrap interval over images; a table written before it had
    one gives none), chance_corrected_drop likewise (all nan at a checkpoint at chance), at_chance (its
    clean accuracy is not above chance)."""
    clean = noise[noise["sigma"] == 0].set_index("checkpoint")
    # noise.csv's clean_at_chance (older tables lack it: then every checkpoint counts).
    at_chance = clean["clean_at_chance"].astype(bool) if "clean_at_chance" in clean.columns else None
    drops = mean_drops(noise, at_chance)
    columns = {"noise_dataset": clean["dataset"], "clean_accuracy": clean["accuracy"],
               "noise_drop": drops["normalized_drop"]}
    bounds = mean_drop_interval(clean, at_chance)
    if bounds is not None:
        columns["noise_drop_lo"], columns["noise_drop_hi"] = bounds
    return pd.DataFrame({**columns, "chance_corrected_drop": drops["chance_corrected_drop"],
                         "at_chance": at_chance if at_chance is not None else False}).reset_index()
