"""The quality-variation experiment: each measure against epoch, one line per setting, seed bands."""
from __future__ import annotations

import pandas as pd

from ..metrics.tradeoff import at_chance
from .common import epoch_axis, legend_below, plt
from .tradeoff import group_colors, group_handles, hollow

PANELS = [("iqa_srcc", "overall SRCC (all pairs)"), ("within_seen_srcc", "within-family SRCC, seen families"),
          ("within_unseen_srcc", "within-family SRCC, unseen families"), ("texture_bias", "texture bias"),
          ("noise_drop", "normalized noise drop"), ("chance_corrected_drop", "chance-corrected noise drop")]


def setting_curves(means: pd.DataFrame, log_x: bool = True) -> plt.Figure:
    """``means``: tradeoff.seed_means by (setting, epoch) with the PANELS columns (and _lo/_hi); a panel
    per measure, a line per setting (mean over seeds) with its 95 % t-band over seeds. In a classification
    measure's panel (texture bias, the drops) the checkpoints at chance for it (``metrics.tradeoff.at_chance``),
    which the verdicts leave out, are hollow points off the line, as the trade-off figure draws them. One legend
    under the panels names the settings (and the hollow points)."""
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
            ax.plot(rows["epoch"], rows[column], marker="o", ms=3, color=colors[setting], label=setting)
            ax.fill_between(rows["epoch"], rows[f"{column}_lo"], rows[f"{column}_hi"], color=colors[setting],
                            alpha=0.15)
        ax.set_title(title, fontsize=10)
        epoch_axis(ax, means["epoch"].unique(), log_x)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    # one legend under the panels: in the first it covered the curves and their bands
    handles = group_handles([(color, setting) for setting, color in colors.items()],
                            "at chance (left out)" if drew_at_chance else None)
    legend_below(fig, handles, max_columns=4)
    return fig
