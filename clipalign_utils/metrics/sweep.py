"""Comparing the settings of a sweep: what each setting's curves show, and how that moves with a factor.

Input is ``seed_means`` over settings (one row per setting × epoch, columns epoch, iqa_srcc with its
interval, shape_bias, clean_accuracy, noise_drop, n_seeds) or, for the pooled relation, the stacked
checkpoint table. texture_bias = 1 − shape_bias.
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

from clipalign_utils.metrics.stats import permutation_spearman
from clipalign_utils.metrics.tradeoff import above_chance, at_chance, monotone_trend, rises_then_falls

# The "texture phase": checkpoints inside the first pass over the data (epoch 0 < e <= 1).
EARLY_EPOCH = 1.0

SUMMARY_MEASURES = {
    "early_texture_bias": "strongest texture bias in the first epoch",
    "final_texture_bias": "texture bias at the last checkpoint",
    "iqa_peak_srcc": "highest IQA alignment (SRCC)",
    "iqa_peak_epoch": "epoch of the highest IQA alignment",
    "iqa_decline": "IQA alignment lost from peak to last checkpoint",
    "noise_drop_first": "normalized noise drop at the first checkpoint above chance",
    "noise_drop_final": "normalized noise drop at the last checkpoint",
    "final_clean_accuracy": "clean zero-shot accuracy at the last checkpoint",
}


def _finite(curve: pd.DataFrame, column: str) -> pd.DataFrame:
    return curve[np.isfinite(curve[column].astype(float))]


def setting_summary(means: pd.DataFrame, group: str = "setting", n_perm: int = 10000, seed: int = 0) -> pd.DataFrame:
    """One row per setting: the SUMMARY_MEASURES of its seed-mean curve, their epochs, n_seeds, and
    noise_drop_rho / noise_drop_p = Spearman(epoch, noise drop) over its checkpoints above chance. The
    classification measures (texture bias, noise drop) are read at checkpoints above chance only (``at_chance``
    and ``shape_at_chance`` of ``seed_means``: most seeds at chance), as the synthesis' verdicts read them: at chance they describe
    noise; the last checkpoint's is nan when it is at chance."""
    rows = []
    for key, curve in means.groupby(group, sort=False):
        curve = curve.sort_values("epoch")
        curve = curve.assign(texture_bias=1 - curve["shape_bias"].astype(float))
        texture = above_chance(curve, "texture_bias")
        early = _finite(texture[(texture["epoch"] > 0) & (texture["epoch"] <= EARLY_EPOCH)], "texture_bias")
        strongest = early.loc[early["texture_bias"].idxmax()] if len(early) else None
        last = curve.iloc[-1]
        # each measure by its own classifier's chance (the cue-conflict decisions, the clean accuracy)
        last_shape_above_chance = not at_chance(curve, "texture_bias").iloc[-1]
        last_above_chance = not at_chance(curve, "noise_drop").iloc[-1]
        iqa = _finite(curve, "iqa_srcc")
        peak = rises_then_falls(iqa["epoch"], iqa["iqa_srcc"], iqa["iqa_srcc_lo"], iqa["iqa_srcc_hi"])
        drops = _finite(above_chance(curve, "noise_drop"), "noise_drop")
        trend = (monotone_trend(drops["epoch"], drops["noise_drop"], n_perm=n_perm, seed=seed)
                 if len(drops) >= 3 else {"rho": np.nan, "p_value": np.nan})
        rows.append({
            group: key,
            "n_seeds": int(curve["n_seeds"].max()) if "n_seeds" in curve else 1,
            "early_texture_bias": strongest["texture_bias"] if strongest is not None else np.nan,
            "early_texture_epoch": strongest["epoch"] if strongest is not None else np.nan,
            "final_texture_bias": last["texture_bias"] if last_shape_above_chance else np.nan,
            "iqa_peak_srcc": peak["peak_value"],
            "iqa_peak_epoch": peak["peak_epoch"],
            "iqa_final_srcc": peak["final_value"],
            "iqa_decline": peak["peak_value"] - peak["final_value"],
            "iqa_peak_ci_separated": peak["verdict"],
            "noise_drop_first": drops["noise_drop"].iloc[0] if len(drops) else np.nan,
            "noise_drop_first_epoch": drops["epoch"].iloc[0] if len(drops) else np.nan,
            "noise_drop_final": float(last["noise_drop"]) if last_above_chance else np.nan,
            "noise_drop_rho": trend["rho"],
            "noise_drop_p": trend["p_value"],
            "final_clean_accuracy": curve["clean_accuracy"].iloc[-1],
        })
    return pd.DataFrame(rows)


def numeric_values(values: pd.Series) -> pd.Series:
    """Values as numbers where they all are (0.5, 2, True); lists of numbers (``sigmas`` 0.01,0.02 or
    0.01+0.02) as their rank in element-wise order; else their order of appearance."""
    lowered = values.astype(str).str.lower().replace({"true": "1", "false": "0"})
    numbers = pd.to_numeric(lowered, errors="coerce")
    if numbers.notna().all():
        return numbers
    try:
        lists = [tuple(float(x) for x in re.split(r"[,+]", value)) for value in lowered]
    except ValueError:
        return pd.Series(np.arange(len(values)), index=values.index, dtype=float)
    ranks = {value: rank for rank, value in enumerate(sorted(set(lists)))}
    return pd.Series([float(ranks[value]) for value in lists], index=values.index)


def direction(xs, ys) -> str:
    """'increases' / 'decreases' when ys, ordered by xs, move strictly one way; 'never falls' / 'never rises'
    when they move one way with ties (0 → 0 → 0.13); 'constant'; else 'not monotone'; over the settings
    whose ys is finite (a nan setting is left out, and its neighbours compared: 1, 2, nan, 0 is not
    monotone, as 1, 2, 0 is). With a handful of settings this is a description, not a test."""
    xs, ys = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
    finite = np.isfinite(ys)
    order = np.argsort(xs[finite], kind="stable")
    steps = np.diff(ys[finite][order])
    if steps.size == 0:
        return "undetermined"
    if np.all(steps > 0):
        return "increases"
    if np.all(steps < 0):
        return "decreases"
    if np.all(steps == 0):
        return "constant"
    if np.all(steps >= 0):
        return "never falls"
    if np.all(steps <= 0):
        return "never rises"
    return "not monotone"


def settings_spearman(xs, ys) -> float:
    """Spearman's rho over settings; nan under 3 settings, and where either side does not vary (undefined:
    said, not warned about, since a flat measure is a finding, "constant" in its direction)."""
    xs, ys = np.asarray(xs, float), np.asarray(ys, float)
    if len(xs) < 3 or np.ptp(xs) == 0 or np.ptp(ys) == 0:
        return np.nan
    return float(pd.Series(xs).corr(pd.Series(ys), method="spearman"))


def shown(measure: str, value: float) -> str:
    """A summary measure's value as the page's tables show it: 3 decimals ("0.000", not "0.000198" beside a
    table's 0.000), an epoch as the book writes one ("0.75"), "undefined" for nan."""
    if not np.isfinite(value):
        return "undefined"
    return f"{value:g}" if measure.endswith("_epoch") else f"{value:.3f}"


def factor_effects(summary: pd.DataFrame, factor: str, measures=None) -> pd.DataFrame:
    """How each measure moves as ``factor`` goes up, over the settings in ``summary`` (a column ``factor``
    holds each setting's value). Columns: factor, measure, values (low to high), measured (the measure at
    those values, :func:`shown`), direction (``direction``, of the values as shown), spearman (nan under 3
    settings), n_settings."""
    measures = list(measures or SUMMARY_MEASURES)
    table = summary.assign(_x=numeric_values(summary[factor])).sort_values("_x", kind="stable")
    rows = []
    for measure in measures:
        xs, ys = table["_x"].to_numpy(float), table[measure].to_numpy(float)
        keep = np.isfinite(ys)
        rho = settings_spearman(xs[keep], ys[keep])
        rows.append({"factor": factor, "measure": measure,
                     "values": " → ".join(map(str, table[factor])),
                     "measured": " → ".join(shown(measure, y) for y in ys),
                     # the direction of the values shown: a difference below their precision (0.000198 → 0 →
                     # 0.0208 shown as 0.000 → 0.000 → 0.021) read "not monotone" beside them
                     "direction": direction(xs, ys if measure.endswith("_epoch") else np.round(ys, 3)),
                     "spearman": rho, "n_settings": int(keep.sum())})
    return pd.DataFrame(rows)


def pooled_relation(table: pd.DataFrame, x: str = "shape_bias", y: str = "noise_drop",
                    n_perm: int = 10000, seed: int = 0) -> dict:
    """Spearman(x, y) over every checkpoint of every setting, with a permutation p (descriptive: the
    checkpoints of one run are not independent) and n, the checkpoints with both finite. A checkpoint whose
    classifier is at chance for either measure (``tradeoff.above_chance``: shape bias on the cue-conflict
    decisions, the noise drop on clean images) is left out, as every trend of a classification measure does."""
    table = above_chance(table, x, y)
    xs, ys = table[x].to_numpy(float), table[y].to_numpy(float)
    rho, p_value = permutation_spearman(xs, ys, n_perm=n_perm, seed=seed)
    return {"x": x, "y": y, "spearman": rho, "p_value": p_value, "n": int(np.sum(np.isfinite(xs) & np.isfinite(ys)))}


def factor_slices(summary: pd.DataFrame, factors: list[str], reference: dict) -> dict[str, pd.DataFrame]:
    """Per factor, the settings that vary it alone: every other factor at its ``reference`` value (in a
    one-at-a-time sweep, the base run and the runs that change that factor). Factors with fewer than two
    such settings are left out."""
    slices = {}
    for factor in factors:
        others = [k for k in factors if k != factor]
        keep = np.ones(len(summary), dtype=bool)
        for k in others:
            keep &= (summary[k] == reference[k]).to_numpy()
        if keep.sum() >= 2:
            slices[factor] = summary[keep]
    return slices
