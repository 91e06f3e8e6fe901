"""The quality-variation experiment: each measure against epoch, one line per setting, seed bands."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..metrics.tradeoff import at_chance
from .common import epoch_axis, legend_below, plt
from .tradeoff import group_colors, group_handles, hollow

# The seeds a classification measure's seed mean is over (seed_means: those above chance for it alone).
SEEDS_OF = {"texture_bias": "n_shape_above_chance", "noise_drop": "n_above_chance",
            "chance_corrected_drop": "n_above_chance"}
PANELS = [("iqa_srcc", "overall SRCC (all pairs)"), ("within_seen_srcc", "within-family SRCC, seen families"),
          ("within_unseen_srcc", "within-family SRCC, unseen families"), ("texture_bias", "texture bias"),
          ("noise_drop", "normalized noise drop"), ("chance_corrected_drop", "chance-corrected noise drop")]


def setting_curves(means: pd.DataFrame, log_x: bool = True) -> plt.Figure:
    """``means``: tradeoff.seed_means by (setting, epoch) with the PANELS columns (and _lo/_hi); a panel
    per measure, a line per setting (mean over seeds) with its 95 % t-band over seeds. In a classification
    measure's panel (texture bias, the drops) the checkpoints at chance for it (``metrics.tradeoff.at_chance``),
    which the verdicts leave out, are hollow points off the line, as the trade-off figure draws them. A checkpoint
    whose interval has none beside it to join is an error bar (a band over one point is invisible, yet set the
    panel's limits); a classification measure on the line whose mean is over fewer seeds than its setting's (those
    above chance for it: ``SEEDS_OF``) is labelled "k/n seeds" beside its point (a hollow point's is over fewer
    than half). One legend under the panels names the settings (and the hollow points)."""
    panels = [(c, t) for c, t in PANELS if c in means.columns and means[c].notna().any()]
    fig, axes = plt.subplots(2, (len(panels) + 1) // 2, figsize=(5.2 * ((len(panels) + 1) // 2), 7.5), squeeze=False)
    colors = group_colors(list(dict.fromkeys(means["setting"])))
    drew_at_chance = False
    for ax, (column, title) in zip(axes.flat, panels):
        for setting, rows in means.groupby("setting", sort=False):
            rows = rows.dropna(subset=[column]).sort_values("epoch")
            if rows.empty:
                continue
            chance = at_chance(rows, column)  # all False for a measure that is not a classifier's
            if chance.any():
                ax.scatter(rows.loc[chance, "epoch"], rows.loc[chance, column], s=16,
                           **hollow(colors[setting], "_at chance"))
                drew_at_chance = True
            rows = rows[~chance]
            _label_fewer_seeds(ax, rows, column, colors[setting], list(colors).index(setting))
            ax.plot(rows["epoch"], rows[column], marker="o", ms=3, color=colors[setting], label=setting)
            _interval(ax, rows, column, colors[setting])
        ax.set_title(title, fontsize=10)
        epoch_axis(ax, means["epoch"].unique(), log_x)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    # one legend under the panels: in the first it covered the curves and their bands
    handles = group_handles([(color, setting) for setting, color in colors.items()],
                            "at chance (left out)" if drew_at_chance else None)
    legend_below(fig, handles, max_columns=4)
    return fig


def _interval(ax, rows: pd.DataFrame, column: str, color) -> None:
    """``column``'s interval over seeds: a band where neighbouring checkpoints have one, an error bar at a
    checkpoint whose neighbours have none (a band of one point draws nothing, yet set the panel's limits)."""
    lo, hi = rows[f"{column}_lo"], rows[f"{column}_hi"]
    has = (lo.notna() & hi.notna()).to_numpy()
    beside = np.zeros_like(has)
    beside[1:] |= has[:-1]
    beside[:-1] |= has[1:]
    alone = has & ~beside
    ax.fill_between(rows["epoch"], lo.where(~alone), hi.where(~alone), color=color, alpha=0.15)
    if alone.any():
        values = rows.loc[alone, column]
        below, above = (values - lo[alone]).clip(lower=0), (hi[alone] - values).clip(lower=0)
        ax.errorbar(rows.loc[alone, "epoch"], values, yerr=[below, above], fmt="none", ecolor=color, alpha=0.5,
                    capsize=3)


def _label_fewer_seeds(ax, rows: pd.DataFrame, column: str, color, order: int) -> None:
    """"k/n seeds" beside each point of ``column`` whose mean is over fewer seeds than its setting has, raised by
    the setting's ``order``: settings' points at one epoch lie close, and their labels would overlap."""
    if SEEDS_OF.get(column) not in rows.columns or "n_seeds" not in rows.columns:
        return
    fewer = rows[rows[SEEDS_OF[column]] < rows["n_seeds"]]
    for row in fewer.itertuples():
        last = row.epoch == rows["epoch"].max()  # left of the last point: on its right it would leave the panel
        ax.annotate(f"{getattr(row, SEEDS_OF[column])}/{row.n_seeds} seeds", (row.epoch, getattr(row, column)),
                    textcoords="offset points", xytext=(-4 if last else 4, 4 + 8 * order),
                    ha="right" if last else "left", fontsize=7, color=color)
