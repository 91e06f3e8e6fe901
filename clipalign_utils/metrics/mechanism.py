"""What causes the trade-off? The quality-variation experiment's predictions, judged over seeds.

Input: one row per run × checkpoint with columns setting, seed, epoch and the measures (iqa_srcc,
within_seen_srcc, within_unseen_srcc, within_family_srcc, texture_bias, noise_drop, at_chance, shape_at_chance, …;
the chance flags as ``tradeoff.at_chance`` reads them).
Every statistic is computed per run (seed) first; a setting's value is the mean over its seeds with a
Student-t interval over seeds (``tradeoff.t_interval``; for a correlation, cut to [−1, 1]), so the seeds
are the replicates.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from clipalign_utils.metrics.iqa import early_window
from clipalign_utils.metrics.stats import spearman
from clipalign_utils.metrics.tradeoff import (correlation_interval, held_out_by_run, measured_rows, net_of_time,
                                               t_interval)


def early_decline(epochs, values) -> float:
    """max over the early window (0 < epoch ≤ a third of the run) of the curve − its final value;
    nan when the window or the final value is empty. Positive = the curve ended below its early best."""
    epochs = np.asarray(epochs, dtype=float)
    values = np.asarray(values, dtype=float)
    keep = np.isfinite(epochs) & np.isfinite(values)
    epochs, values = epochs[keep], values[keep]
    if values.size == 0:
        return float("nan")
    order = np.argsort(epochs, kind="stable")
    epochs, values = epochs[order], values[order]
    early = values[early_window(epochs)]
    return float(early.max() - values[-1]) if early.size else float("nan")


def per_seed(table: pd.DataFrame, statistic, column: str, other: str | None = None) -> pd.DataFrame:
    """One row per setting × seed: ``statistic`` of that run's curve(s) (rows sorted by epoch;
    checkpoints at chance left out of classification measures). columns setting, seed, value."""
    rows = []
    for (setting, seed), run in table.groupby(["setting", "seed"], sort=False):
        run = measured_rows(measured_rows(run.sort_values("epoch"), column), other or column)
        value = statistic(run["epoch"], run[column]) if other is None else statistic(run["epoch"], run[column],
                                                                                       run[other])
        rows.append({"setting": setting, "seed": seed, "value": value})
    return pd.DataFrame(rows, columns=["setting", "seed", "value"])


def held_out_declines(table: pd.DataFrame, column: str) -> pd.DataFrame:
    """:func:`per_seed` of :func:`early_decline` with each seed's early checkpoint chosen on the other seeds of
    its setting (``peak.held_out_drops``): a seed's own early maximum is pushed up by its own noise, so a mean of
    them leans toward a decline. A setting of one seed keeps its own maximum (and has no interval over seeds).
    Columns setting, seed, value, in first-seen order."""
    parts = []
    for _, runs in table.groupby("setting", sort=False):
        runs = runs[np.isfinite(runs["epoch"].astype(float)) & np.isfinite(runs[column].astype(float))]
        seeds = list(dict.fromkeys(runs["seed"]))
        if len(seeds) < 2:
            parts.append(per_seed(runs, early_decline, column))
            continue
        drops = held_out_by_run(runs, "seed", column)
        parts.append(pd.DataFrame({"setting": runs["setting"].iloc[0], "seed": seeds, "value": drops.to_numpy()}))
    return (pd.concat(parts, ignore_index=True) if parts else
            pd.DataFrame(columns=["setting", "seed", "value"]))


def epoch_trend(epochs, values) -> float:
    """Spearman's ρ of a run's curve against epoch (its sign: rises or falls)."""
    return spearman(np.asarray(epochs, dtype=float), np.asarray(values, dtype=float))


def partial_relation(epochs, x, y) -> float:
    """Partial Spearman of x and y given log training time (``tradeoff.net_of_time``)."""
    return net_of_time(epochs, x, y)["partial_spearman"]


def over_seeds(values: pd.DataFrame, correlation: bool = False) -> pd.DataFrame:
    """Per setting: mean of ``value`` over seeds, its t-interval (lo, hi) and n_seeds, in first-seen order.
    ``correlation``: the values are correlations (ρ per seed): the interval cut to [−1, 1]
    (``tradeoff.correlation_interval``)."""
    rows = []
    interval = correlation_interval if correlation else t_interval
    for setting, group in values.groupby("setting", sort=False):
        mean, lo, hi, n = interval(group["value"])
        rows.append({"setting": setting, "mean": mean, "lo": lo, "hi": hi, "n_seeds": n})
    return pd.DataFrame(rows, columns=["setting", "mean", "lo", "hi", "n_seeds"])


def paired_difference(a: pd.DataFrame, b: pd.DataFrame) -> tuple[float, float, float, int]:
    """(mean, lo, hi, n) over seeds of a.value − b.value, matching seeds (a paired comparison)."""
    merged = a.merge(b, on="seed", suffixes=("_a", "_b"))
    return t_interval(merged["value_a"] - merged["value_b"])


def welch_difference(a: pd.DataFrame, b: pd.DataFrame, confidence: float = 0.95) -> tuple[float, float, float]:
    """(mean(a) − mean(b), lo, hi): Welch's t-interval for the difference of two settings' seed means."""
    from scipy import stats

    x = a["value"].dropna().to_numpy(float)
    y = b["value"].dropna().to_numpy(float)
    diff = float(x.mean() - y.mean()) if x.size and y.size else float("nan")
    if x.size < 2 or y.size < 2:
        return diff, float("nan"), float("nan")
    vx, vy = x.var(ddof=1) / x.size, y.var(ddof=1) / y.size
    se = np.sqrt(vx + vy)
    if se == 0:
        return diff, diff, diff
    dof = (vx + vy) ** 2 / (vx**2 / (x.size - 1) + vy**2 / (y.size - 1))
    half = float(stats.t.ppf(0.5 + confidence / 2, dof) * se)
    return diff, diff - half, diff + half
