"""Robustness to additive Gaussian noise: accuracy per noise level and its drop relative to clean images."""

from __future__ import annotations

import numpy as np
import pandas as pd

from clipalign_utils.errors import ParameterError
from clipalign_utils.metrics.stats import bootstrap_ci


def accuracy_with_ci(correct: np.ndarray, n_boot: int = 1000, seed: int = 0) -> tuple[float, float, float]:
    """(accuracy, lo, hi): the mean of ``correct`` and its percentile bootstrap CI over images."""
    correct = np.asarray(correct, dtype=bool).ravel()
    if correct.size == 0:
        raise ParameterError("correct must hold at least one decision; got an empty array.")
    lo, hi = bootstrap_ci(correct.size, lambda idx: correct[idx].mean(), n_boot=n_boot, seed=seed)
    return float(correct.mean()), lo, hi


def normalized_drop(acc_clean, acc_noisy):
    """(acc_clean − acc_noisy) / acc_clean, elementwise; nan where acc_clean == 0."""
    acc_clean = np.asarray(acc_clean, dtype=float)
    acc_noisy = np.asarray(acc_noisy, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        drop = np.where(acc_clean != 0, (acc_clean - acc_noisy) / acc_clean, np.nan)
    return float(drop) if drop.ndim == 0 else drop


def noise_table(correct_by_sigma: dict, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """One row per noise level, sorted by sigma: sigma, accuracy, lo, hi, normalized_drop, n_images.

    ``correct_by_sigma`` maps sigma → per-image correctness; sigma 0 (clean) must be present, as the
    drop of every level is relative to it (and is 0 for sigma 0 itself).
    """
    by_sigma = {float(s): c for s, c in correct_by_sigma.items()}
    sigmas = sorted(by_sigma)
    if 0.0 not in by_sigma:
        raise ParameterError(f"sigmas must include 0 (the clean images); got {sigmas}.")
    rows = []
    for sigma in sigmas:
        acc, lo, hi = accuracy_with_ci(by_sigma[sigma], n_boot=n_boot, seed=seed)
        rows.append({"sigma": sigma, "accuracy": acc, "lo": lo, "hi": hi, "n_images": int(np.size(by_sigma[sigma]))})
    table = pd.DataFrame(rows)
    clean = table.loc[table["sigma"] == 0.0, "accuracy"].iloc[0]
    table["normalized_drop"] = normalized_drop(clean, table["accuracy"].to_numpy())
    table.loc[table["sigma"] == 0.0, "normalized_drop"] = 0.0
    return table[["sigma", "accuracy", "lo", "hi", "normalized_drop", "n_images"]]


def mean_normalized_drop(table: pd.DataFrame) -> float:
    """Mean of normalized_drop over the noisy rows (sigma > 0) of a noise_table; nan if there are none."""
    noisy = table.loc[table["sigma"] > 0, "normalized_drop"]
    return float(noisy.mean()) if len(noisy) else float("nan")
