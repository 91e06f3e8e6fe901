"""Robustness to additive Gaussian noise: accuracy per noise level and its drop relative to clean images."""

from __future__ import annotations

import numpy as np
import pandas as pd

from clipalign_utils.errors import ParameterError
from clipalign_utils.metrics.stats import bootstrap_mean_ci, percentile_interval, resampled_rows


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


def drop_intervals(correct_by_sigma: dict, n_boot: int = 1000, seed: int = 0,
                   level: float = 0.95) -> tuple[dict[float, tuple[float, float]], tuple[float, float]]:
    """Percentile bootstrap intervals of the normalized drop, paired over images: each replicate resamples
    the images once and takes every level's accuracy on that one resample (the noisy copies are of the same
    images), so the clean and noisy accuracies move together as they do in the drop. The draws are
    :func:`accuracy_with_ci`'s (same ``n_boot`` and ``seed``): its intervals and these come from one set of
    replicates.

    Returns ({sigma: (lo, hi)} for every level, the clean one (0, 0) or nan; (lo, hi) of the mean drop over
    the noisy levels). A replicate whose clean accuracy is 0 has no drop; the interval is nan where fewer
    than half have one (:func:`~clipalign_utils.metrics.stats.percentile_interval`), and all are nan when the
    levels do not hold the same number of images."""
    sigmas, correct, accuracies = _accuracy_replicates(correct_by_sigma, n_boot, seed)
    nan = (float("nan"), float("nan"))
    if accuracies is None:
        return {sigma: nan for sigma in sigmas}, nan
    drops = normalized_drop(accuracies[:, :1], accuracies)
    per_sigma = {sigma: percentile_interval(drops[:, j], level) for j, sigma in enumerate(sigmas)}
    clean_accuracy = correct[0].mean()
    per_sigma[0.0] = (0.0, 0.0) if clean_accuracy > 0 else nan
    mean = percentile_interval(drops[:, 1:].mean(axis=1), level) if len(sigmas) > 1 else nan
    return per_sigma, mean


def _accuracy_replicates(correct_by_sigma: dict, n_boot: int, seed: int):
    """(the levels in order, clean first; their correctness stacked, (levels, images); the accuracy of every
    level on each of ``n_boot`` resamples of the images, (replicates, levels), the same resample for every level),
    the last two None when the clean level is missing or the levels do not hold the same (non-zero) number of
    images. The draws are :func:`accuracy_with_ci`'s (same ``n_boot`` and ``seed``) and depend on the images'
    count alone: replicate r of every checkpoint is over the same resample."""
    by_sigma = {float(s): np.asarray(c, dtype=bool).ravel() for s, c in correct_by_sigma.items()}
    sigmas = sorted(by_sigma)
    sizes = {c.size for c in by_sigma.values()}
    if 0.0 not in by_sigma or len(sizes) != 1 or 0 in sizes:
        return sigmas, None, None
    correct = np.stack([by_sigma[sigma] for sigma in sigmas])  # (levels, images), clean first
    accuracies = np.concatenate([correct[:, rows].mean(axis=2).T  # (replicates, levels)
                                 for rows in resampled_rows(correct.shape[1], n_boot, seed)])
    return sigmas, correct, accuracies


def mean_drop_replicates(correct_by_sigma: dict, n_boot: int = 1000, seed: int = 0,
                         chance: float = float("nan")) -> dict[str, np.ndarray]:
    """The ``n_boot`` paired bootstrap replicates of a checkpoint's mean drops over the noisy levels, as the
    synthesis names them: {"noise_drop": the mean normalized drop (:func:`drop_intervals`' draws: its interval's
    replicates), "chance_corrected_drop": the mean chance-corrected drop (nan where a replicate's clean accuracy
    is not above ``chance``)}; all nan where :func:`drop_intervals` has no interval. Replicate r of every
    checkpoint is over the same resample of the images (``metrics.trend``)."""
    _, _, accuracies = _accuracy_replicates(correct_by_sigma, n_boot, seed)
    if accuracies is None or accuracies.shape[1] < 2:
        return {"noise_drop": np.full(int(n_boot), np.nan), "chance_corrected_drop": np.full(int(n_boot), np.nan)}
    clean, noisy = accuracies[:, :1], accuracies[:, 1:]
    return {"noise_drop": normalized_drop(clean, noisy).mean(axis=1),
            "chance_corrected_drop": chance_corrected_drop(clean, noisy, chance).mean(axis=1)}


def noise_table(correct_by_sigma: dict, n_boot: int = 1000, seed: int = 0, chance: float = float("nan")) -> pd.DataFrame:
    """One row per noise level, sorted by sigma: sigma, accuracy, lo, hi, normalized_drop,
    chance_corrected_drop (nan without ``chance``), n_images, normalized_drop_lo/_hi (the level's drop,
    paired bootstrap over images: :func:`drop_intervals`) and mean_normalized_drop_lo/_hi (the interval of
    the mean drop over the noisy levels, the checkpoint's, the same on every row).

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
    per_sigma, mean = drop_intervals(by_sigma, n_boot=n_boot, seed=seed)
    table["normalized_drop_lo"] = [per_sigma[sigma][0] for sigma in sigmas]
    table["normalized_drop_hi"] = [per_sigma[sigma][1] for sigma in sigmas]
    table["mean_normalized_drop_lo"], table["mean_normalized_drop_hi"] = mean
    return table[["sigma", "accuracy", "lo", "hi", "normalized_drop", "chance_corrected_drop", "n_images",
                  *DROP_INTERVALS]]


# noise_table's interval columns, after DESIGN's (a table written before them lacks them).
DROP_INTERVALS = ("normalized_drop_lo", "normalized_drop_hi", "mean_normalized_drop_lo", "mean_normalized_drop_hi")


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


def at_chance_of_drops(drops) -> pd.Series:
    """Which models were at chance on the noise set, read back from their mean normalized drops: :func:`mean_drops`
    leaves a drop nan exactly there (for a noise table with its ``clean_at_chance``, which every table since the
    drop was left undefined at chance has), so a table that kept the drops but not the flag can be given it."""
    drops = pd.Series(drops)
    return pd.Series(~np.isfinite(drops.to_numpy(dtype=float)), index=drops.index)


def checkpoint_summary(noise: pd.DataFrame, chance: float) -> pd.DataFrame:
    """One row per checkpoint of a stacked noise table (checkpoint, epoch, sigma, accuracy, lo, hi,
    normalized_drop[, chance_corrected_drop]): epoch, clean_accuracy with clean_lo/clean_hi,
    mean_normalized_drop (with mean_normalized_drop_lo/_hi where the table has them, :func:`noise_table`)
    and mean_chance_corrected_drop over the noisy sigmas (``mean_drops``: nan where the checkpoint is at
    chance), chance, and clean_at_chance = the clean CI reaches chance; the
    per-sigma rows of ``noise`` keep their arithmetic."""
    clean = noise[noise["sigma"] == 0].set_index("checkpoint", drop=False)
    at_chance = clean["lo"] <= chance
    drops = mean_drops(noise, at_chance).reindex(clean.index)
    summary = pd.DataFrame({
        "checkpoint": clean["checkpoint"].to_numpy(), "epoch": clean["epoch"].to_numpy(),
        "clean_accuracy": clean["accuracy"].to_numpy(),
        "mean_normalized_drop": drops["normalized_drop"].to_numpy(),
        "mean_chance_corrected_drop": drops["chance_corrected_drop"].to_numpy(),
        "clean_lo": clean["lo"].to_numpy(), "clean_hi": clean["hi"].to_numpy(), "chance": chance,
        "clean_at_chance": at_chance.to_numpy(),
    })
    bounds = mean_drop_interval(clean, at_chance)
    if bounds is not None:
        summary.insert(4, "mean_normalized_drop_lo", bounds[0].to_numpy())
        summary.insert(5, "mean_normalized_drop_hi", bounds[1].to_numpy())
    return summary


def mean_drop_interval(clean: pd.DataFrame, at_chance: pd.Series | None) -> tuple[pd.Series, pd.Series] | None:
    """(lo, hi) of the mean normalized drop per checkpoint, from the clean rows (indexed by checkpoint) of a
    noise table, nan where ``at_chance`` marks the checkpoint (its drop is nan there, :func:`mean_drops`);
    None for a table written before it had the interval."""
    if "mean_normalized_drop_lo" not in clean.columns:
        return None
    keep = (~at_chance.reindex(clean.index).fillna(False).astype(bool) if at_chance is not None
            else pd.Series(True, index=clean.index))
    return (clean["mean_normalized_drop_lo"].where(keep).astype(float),
            clean["mean_normalized_drop_hi"].where(keep).astype(float))


# noise_summary's mean drops by the names the synthesis and its trend claims give them (noise_trend's measure)
TREND_MEASURES = {"mean_normalized_drop": "noise_drop", "mean_chance_corrected_drop": "chance_corrected_drop"}


def drop_trend(summary: pd.DataFrame, trends: pd.DataFrame, column: str = "mean_normalized_drop") -> dict:
    """Does the mean drop (``column`` of noise_summary: mean_normalized_drop or mean_chance_corrected_drop)
    shrink over the run's training, over the checkpoints above chance?

    Keys: n (checkpoints above chance), early_epochs / late_epochs and early_drop / late_drop (the
    earlier and later half of them and their mean drop; nan under 2 checkpoints), rho, lo and hi (the step's
    paired trend test, ``trends``: noise_trend, ``metrics.trend``: Spearman of epoch vs drop, its interval
    resampling the images at every checkpoint alike; nan under 3), and direction: 'shrinks' / 'grows' when the
    interval lies below / above 0, 'flat' otherwise (also without an interval), 'undetermined' when rho is nan."""
    informative = summary[~summary["clean_at_chance"].astype(bool)]
    half = len(informative) // 2
    early, late = informative.iloc[:half], informative.iloc[len(informative) - half:]
    trend = trends[trends["measure"] == TREND_MEASURES[column]]
    rho, lo, hi = (float(trend[key].iloc[0]) if len(trend) else float("nan") for key in ("spearman", "lo", "hi"))
    direction = "shrinks" if hi < 0 else "grows" if lo > 0 else "flat"  # (a nan interval: neither)
    return {"n": len(informative),
            "early_epochs": list(early["epoch"]), "late_epochs": list(late["epoch"]),
            "early_drop": float(early[column].mean()) if half else float("nan"),
            "late_drop": float(late[column].mean()) if half else float("nan"),
            "rho": rho, "lo": lo, "hi": hi,
            "direction": direction if np.isfinite(rho) else "undetermined"}
