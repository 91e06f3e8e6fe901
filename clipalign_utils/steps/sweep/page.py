"""The sentences and figures of the sweep page (its measurement: :mod:`.analysis`)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ...config import bootstrap_seed
from ...metrics import sweep as sweep_metrics
from ...metrics import tradeoff
from ...plots.sweep import factor_panels, shape_vs_noise
from ...plots.tradeoff import summary_figure
from ...prose import counted

from .analysis import TEXTURE_MEASURES, comparable_settings, factor_slices, seed_means, verdict_grid


def intro_sentence(run_dirs: list[Path], data: dict) -> str:
    return (f"{counted(len(run_dirs), 'run')}, {counted(len(data['settings']), 'setting')}; they differ in: "
            f"{', '.join(data['factors']) or 'nothing'}")


def curves_figure(data: dict):
    """Every measure's seed-mean curve per setting (clean accuracy only in the accuracy panel)."""
    noise_means = tradeoff.seed_means(data["noise"], {"accuracy": ("lo", "hi")}, by=("setting", "sigma", "epoch"))
    return summary_figure(seed_means(data), noise_means, by="setting", clean_only=True)


def factor_figure(tables: dict, data: dict):
    """One panel per parameter varied alone; None when none is."""
    slices = factor_slices(tables["sweep_summary"], data)
    return factor_panels(slices) if slices else None


def texture_correlation_sentences(effects: pd.DataFrame) -> list[str]:
    """How the early texture bias and the IQA peak move as texture_correlation varies alone."""
    if effects.empty or "texture_correlation" not in set(effects["factor"]):
        return ["this sweep does not vary texture_correlation alone; run one that does, e.g. "
                "`clipalign sweep -p texture_correlation=0.5,0.8,0.95 --out runs/texture_correlation`"]
    lines = []
    for measure_name in TEXTURE_MEASURES:
        row = effects[(effects["factor"] == "texture_correlation") & (effects["measure"] == measure_name)].iloc[0]
        lines.append(f"as texture_correlation goes {row['values']}, {sweep_metrics.SUMMARY_MEASURES[measure_name]} "
                     f"{row['direction']} ({row['measured']})")
    return lines


def shape_noise_figure(data: dict):
    """The seed means of the comparable settings; the epochs where most seeds are at chance on clean images or on
    the cue-conflict decisions drawn apart, as the pooled correlation (:func:`shape_noise_sentences`) leaves
    such checkpoints out."""
    means = seed_means(data)
    means = means[means["setting"].isin(comparable_settings(data))]
    at_chance = tradeoff.at_chance(means, "noise_drop") | tradeoff.at_chance(means, "shape_bias")
    return shape_vs_noise(means, left_out=at_chance)


# Both measures move with training, so a pooled correlation over checkpoints is partly time's.
_TIME = ("; both measures move with training time, so this is not a link net of time (the synthesis, page 5, "
         "judges that per run)")


def shape_noise_sentences(tables: dict, data: dict, params: dict) -> list[str]:
    """Do shape bias and the noise drop go together: across settings' last checkpoints, and pooled over
    every checkpoint (a permutation test, descriptive)."""
    comparable = comparable_settings(data)
    left_out = [s for s in data["settings"]["setting"] if s not in comparable]
    # "; ": a setting's label can hold commas (sigmas=0.01,0.02,0.05; a grid's "sigmas=…, epochs=12")
    lines = [f"left out (noise drop measured at other sigmas): {'; '.join(left_out)}"] if left_out else []
    summary, table = tables["sweep_summary"], tables["sweep_checkpoints"]
    # (a last checkpoint at chance has no final texture bias or noise drop: out of the count too)
    final = summary[summary["setting"].isin(comparable)].dropna(subset=["noise_drop_final", "final_texture_bias"])
    across = sweep_metrics.settings_spearman(1 - final["final_texture_bias"], final["noise_drop_final"])
    pooled = sweep_metrics.pooled_relation(table[table["setting"].isin(comparable)], n_perm=params["n_perm"],
                                           seed=bootstrap_seed(params))
    across_text = (f"{across:.2f}" if np.isfinite(across) else
                   "undefined (it needs 3 settings or more, each measure varying across them)")
    lines += [f"across settings, last checkpoints: Spearman(shape bias, noise drop) = {across_text} "
              f"over {len(final)} settings",
              "pooled over every checkpoint of every run: Spearman(shape bias, noise drop) = "
              + (f"{pooled['spearman']:.2f} (permutation p = {pooled['p_value']:.3g}, "
                 if np.isfinite(pooled["spearman"]) else "undefined (")
              + f"n = {pooled['n']}; descriptive: checkpoints of a run are not independent)"]
    if pooled["n"] < 3:
        lines.append("undetermined: fewer than 3 checkpoints are above chance both on clean images and on the "
                     "cue-conflict decisions")
    elif pooled["spearman"] < 0 and pooled["p_value"] < 0.05:
        lines.append("pooled, checkpoints with more shape bias lose less under noise (the paper's direction)" + _TIME)
    elif pooled["spearman"] > 0 and pooled["p_value"] < 0.05:
        lines.append("pooled, checkpoints with more shape bias lose more under noise (against the paper's direction)"
                     + _TIME)
    else:
        lines.append("no clear link: shape bias and the noise drop are not significantly related across checkpoints")
    return lines


def claims_sentences(verdicts: pd.DataFrame, data: dict) -> list[str]:
    """Per setting: how many of the claims it reproduces, and which."""
    lines = []
    for setting, row in verdict_grid(verdicts, data).iterrows():
        reproduced = [claim for claim, verdict in row.items() if verdict == tradeoff.REPRODUCED]
        lines.append(f"{setting}: reproduces {len(reproduced)} of {len(row)} claims"
                     + (f" ({'; '.join(reproduced)})" if reproduced else ""))
    return lines
