"""Robustness to additive Gaussian noise: accuracy per noise level and its drop relative to clean images."""

from __future__ import annotations

import numpy as np
import pandas as pd

from clipalign_utils.errors import ParameterError
from clipalign_utils.metrics.stats import bootstrap_mean_ci
from clipalign_utils.metrics.tradeoff import monotone_trend


def accuracy_with_ci(correct: np.ndarray, n_boot: int = 1000, seed: int = 0) -> tuple[float, float, float]:
    """(accuracy, lo, hi): the mean of ``correct`` and its percentile bootstrap CI over images."""
    correct = np.asarray(correct, dtype=bool).ravel()
    if correct.size == 0:
        raise ParameterError("correct must hold at least one decision; got an empty array.")
    lo, hi = bootstrap_mean_ci(correct, n_boot=n_boot, seed=seed)
    return float(correct.mean()), lo, hi


def normalized_drop(acc_clean, acc_noisy):
    """(acc_clean − acc_noisy) / acc_clean, elementwise; nan where acc_clean == 0."""
    acc_clean = np.asarray(acc_clean, dtype=float)
    acc_noisy = np.asarray(acc_noisy, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        drop = np.where(acc_clean != 0, (acc_clean - acc_noisy) / acc_clean, np.nan)
    return float(drop) if drop.ndim == 0 else drop


def chance_corrected_drop(acc_clean, acc_noisy, chance: float):
    """(acc_clean − acc_noisy) / (acc_clean − chance), elementwise: the share of the above-chance
    competence that noise takes away. Unlike the normalized drop, whose ceiling 1 − chance/acc_clean
    is low for weak checkpoints, it reaches 1 whenever noise sends accuracy to chance. nan where
    acc_clean <= chance (no competence to lose)."""
    acc_clean = np.asarray(acc_clean, dtype=float)
    acc_noisy = np.asarray(acc_noisy, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        drop = np.where(acc_clean > chance, (acc_clean - acc_noisy) / (acc_clean - chance), np.nan)
    return float(drop) if drop.ndim == 0 else drop


def noise_table(correct_by_sigma: dict, n_boot: int = 1000, seed: int = 0, chance: float = float("nan")) -> pd.DataFrame:
    """One row per noise level, sorted by sigma: sigma, accuracy, lo, hi, normalized_drop,
    chance_corrected_drop (nan without ``chance``), n_images.

    ``correct_by_sigma`` maps sigma → per-image correctness; sigma 0 (clean) must be present, as the
    drop of every level is relative to it (and is 0 for sigma 0 itself, NaN where it is undefined at every level:
    a clean accuracy of 0 for the normalized drop, at or below chance for the chance-corrected one).
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
    table["chance_corrected_drop"] = chance_corrected_drop(clean, table["accuracy"].to_numpy(), chance)
    clean_row = table["sigma"] == 0.0
    table.loc[clean_row, "normalized_drop"] = 0.0 if clean > 0 else float("nan")
    table.loc[clean_row, "chance_corrected_drop"] = 0.0 if clean > chance else float("nan")
    return table[["sigma", "accuracy", "lo", "hi", "normalized_drop", "chance_corrected_drop", "n_images"]]


def mean_normalized_drop(table: pd.DataFrame) -> float:
    """Mean of normalized_drop over the noisy rows (sigma > 0) of a noise_table; nan if there are none."""
    noisy = table.loc[table["sigma"] > 0, "normalized_drop"]
    return float(noisy.mean()) if len(noisy) else float("nan")


def mean_drops(noise: pd.DataFrame, at_chance: pd.Series | None = None) -> pd.DataFrame:
    """Per checkpoint (the index, sorted): normalized_drop and chance_corrected_drop, each the mean over
    the noisy sigmas of a stacked noise table. Both are nan at a checkpoint that ``at_chance`` (a boolean
    Series by checkpoint) marks: it has no competence for noise to take away, so its drop is undefined,
    not zero. The one place that rule lives (noise_summary.csv and the synthesis's noise_drop)."""
    noisy = noise[noise["sigma"] > 0]
    checkpoints = sorted(noisy["checkpoint"].unique())
    if at_chance is not None:
        # Left out before grouping, not masked after: pandas' grouped mean can move in the last bit with
        # the other groups' NaNs.
        noisy = noisy[~noisy["checkpoint"].map(at_chance).fillna(False).astype(bool).to_numpy()]
    grouped = noisy.groupby("checkpoint")
    means = pd.DataFrame({"normalized_drop": grouped["normalized_drop"].mean()}).reindex(checkpoints)
    means["chance_corrected_drop"] = (grouped["chance_corrected_drop"].mean() if "chance_corrected_drop" in noise.columns
                                      else float("nan"))
    return means


def checkpoint_summary(noise: pd.DataFrame, chance: float) -> pd.DataFrame:
    """One row per checkpoint of a stacked noise table (checkpoint, epoch, sigma, accuracy, lo, hi,
    normalized_drop[, chance_corrected_drop]): epoch, clean_accuracy with clean_lo/clean_hi,
    mean_normalized_drop and mean_chance_corrected_drop over the noisy sigmas (``mean_drops``: nan where
    the checkpoint is at chance), chance, and clean_at_chance = the clean CI reaches chance; the
    per-sigma rows of ``noise`` keep their arithmetic."""
    clean = noise[noise["sigma"] == 0].set_index("checkpoint", drop=False)
    at_chance = clean["lo"] <= chance
    drops = mean_drops(noise, at_chance).reindex(clean.index)
    return pd.DataFrame({
        "checkpoint": clean["checkpoint"].to_numpy(), "epoch": clean["epoch"].to_numpy(),
        "clean_accuracy": clean["accuracy"].to_numpy(),
        "mean_normalized_drop": drops["normalized_drop"].to_numpy(),
        "mean_chance_corrected_drop": drops["chance_corrected_drop"].to_numpy(),
        "clean_lo": clean["lo"].to_numpy(), "clean_hi": clean["hi"].to_numpy(), "chance": chance,
        "clean_at_chance": at_chance.to_numpy(),
    })


def drop_trend(summary: pd.DataFrame, n_perm: int = 10000, seed: int = 0, alpha: float = 0.05,
               column: str = "mean_normalized_drop") -> dict:
    """Does the mean drop (``column``: mean_normalized_drop or mean_chance_corrected_drop) shrink with
    training, over the checkpoints above chance?

    Keys: n (checkpoints above chance), early_epochs / late_epochs and early_drop / late_drop (the
    earlier and later half of them and their mean drop; nan under 2 checkpoints), rho and p_value
    (permutation Spearman of epoch vs drop; nan under 3), and direction: 'shrinks' / 'grows' when
    p < alpha, 'flat' otherwise, 'undetermined' when rho is nan."""
    informative = summary[~summary["clean_at_chance"].astype(bool)]
    half = len(informative) // 2
    early, late = informative.iloc[:half], informative.iloc[len(informative) - half:]
    trend = monotone_trend(informative["epoch"], informative[column], n_perm=n_perm, seed=seed, alpha=alpha)
    direction = {"falls": "shrinks", "rises": "grows", "flat": "flat"}[trend["direction"]]
    return {"n": len(informative),
            "early_epochs": list(early["epoch"]), "late_epochs": list(late["epoch"]),
            "early_drop": float(early[column].mean()) if half else float("nan"),
            "late_drop": float(late[column].mean()) if half else float("nan"),
            "rho": trend["rho"], "p_value": trend["p_value"],
            "direction": direction if np.isfinite(trend["rho"]) else "undetermined"}
