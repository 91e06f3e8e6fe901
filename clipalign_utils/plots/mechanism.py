"""The quality-variation experiment: each measure against epoch, one line per setting, seed bands."""
from __future__ import annotations

import pandas as pd

from .common import epoch_axis, plt
from .tradeoff import group_colors

PANELS = [("iqa_srcc", "overall SRCC (all pairs)"), ("within_seen_srcc", "within-family SRCC, seen families"),
          ("within_unseen_srcc", "within-family SRCC, unseen families"), ("texture_bias", "texture bias"),
          ("noise_drop", "normalized noise drop"), ("chance_corrected_drop", "chance-corrected noise drop")]


def setting_curves(means: pd.DataFrame, log_x: bool = True) -> plt.Figure:
    """``means``: tradeoff.seed_means by (setting, epoch) with the PANELS columns (and _lo/_hi); a panel
    per measure, a line per setting (mean over seeds) with its 95 % t-band over seeds."""
    panels = [(c, t) for c, t in PANELS if c in means.columns and means[c].notna().any()]
    fig, axes = plt.subplots(2, (len(panels) + 1) // 2, figsize=(5.2 * ((len(panels) + 1) // 2), 7.5), squeeze=False)
    colors = group_colors(list(dict.fromkeys(means["setting"])))
    for ax, (column, title) in zip(axes.flat, panels):
        for setting, rows in means.groupby("setting", sort=False):
            rows = rows.dropna(subset=[column]).sort_values("epoch")
            if rows.empty:
                continue
            ax.plot(rows["epoch"], rows[column], marker="o", ms=3, color=colors[setting], label=setting)
            ax.fill_between(rows["epoch"], rows[f"{column}_lo"], rows[f"{column}_hi"], color=colors[setting],
                            alpha=0.15)
        ax.set_title(title, fontsize=10)
        epoch_axis(ax, means["epoch"].unique(), log_x)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    return fig
