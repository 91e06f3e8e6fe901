"""Sweep figures: each summary measure against each swept factor, and shape bias against noise drop."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..metrics.sweep import numeric_values
from .common import plt
from .tradeoff import group_colors

# The measures of setting_summary drawn by factor_panels: a short panel title, and the smallest y range
# a panel shows, so that differences far below what matters do not fill the panel.
PANEL_MEASURES = {
    "early_texture_bias": ("texture bias, first epoch (max)", 0.2),
    "iqa_peak_srcc": ("IQA alignment at its peak", 0.1),
    "iqa_peak_epoch": ("epoch of the IQA peak", 4.0),
    "iqa_decline": ("IQA alignment lost after the peak", 0.1),
    "noise_drop_final": ("normalized noise drop, last checkpoint", 0.2),
}


def factor_panels(summaries: dict[str, pd.DataFrame], measures: dict | None = None):
    """One row per factor (``summaries`` maps a factor to the setting_summary rows that vary it, with a
    column of that name), one panel per measure (``measures`` like PANEL_MEASURES): the measure at each
    value of the factor. A panel whose measure no setting has says so; an epoch's (``…_epoch``) starts at 0."""
    measures = measures or PANEL_MEASURES
    fig, axes = plt.subplots(len(summaries), len(measures), figsize=(3.3 * len(measures), 2.7 * len(summaries)),
                             squeeze=False)
    for row, (factor, summary) in zip(axes, summaries.items()):
        table = summary.assign(_x=numeric_values(summary[factor])).sort_values("_x", kind="stable")
        for ax, measure in zip(row, measures):
            # an epoch measure's marker at 0 sits on the axis' floor (below): unclipped, it shows whole
            ax.plot(np.arange(len(table)), table[measure].astype(float), marker="o",
                    clip_on=not measure.endswith("_epoch"))
            ax.set_xticks(np.arange(len(table)), [str(v) for v in table[factor]], fontsize=7,
                          rotation=30 if len(str(table[factor].iloc[0])) > 6 else 0)
            ax.set_xlabel(factor, fontsize=8)
            title, min_span = measures[measure]
            ax.set_title(title, fontsize=9)
            values = table[measure].astype(float)
            low, high = values.min(), values.max()
            if not np.isfinite(low):  # an empty panel would read as a figure that failed to draw
                ax.text(0.5, 0.5, "no setting has this measure defined", transform=ax.transAxes, ha="center",
                        va="center", fontsize=8, color="grey")
                ax.set_yticks([])  # a scale of nothing, its grid line through the note
            elif high - low < min_span:
                middle = (low + high) / 2
                ax.set_ylim(middle - min_span * 0.6, middle + min_span * 0.6)
            bottom, top = ax.get_ylim()
            if measure.endswith("_epoch") and bottom < 0:  # min_span around early epochs reached to −1
                ax.set_ylim(0, top - bottom)
            ax.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    return fig


def shape_vs_noise(table: pd.DataFrame, group: str = "setting", left_out: pd.Series | None = None):
    """Every checkpoint of every setting (seed means): shape bias against normalized noise drop, one colour
    per setting, the last checkpoint of each outlined. ``left_out`` (a boolean per row): checkpoints the
    page's pooled correlation leaves out (most seeds at chance: it leaves each seed's at-chance checkpoints out),
    drawn as hollow points off the line; the ring marks the last checkpoint on the line. A setting with no
    point is listed as such."""
    left_out = pd.Series(False, index=table.index) if left_out is None else left_out.reindex(table.index).fillna(False)
    settings = list(dict.fromkeys(table[group]))
    colors = group_colors(settings)
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for setting in settings:
        rows = table[table[group] == setting].sort_values("epoch")
        out = left_out.loc[rows.index].astype(bool)
        kept = rows[~out]
        drawn = np.isfinite(rows[["shape_bias", "noise_drop"]].to_numpy(dtype=float)).all(axis=1).any()
        if not drawn:  # listed as if drawn, the reader hunted for its points (a seed mean's drop is nan at chance)
            why = "at chance at every checkpoint" if out.all() else "no checkpoint has both measures"
            ax.plot([], [], ls="none", label=f"{setting}: no point ({why})")
        filled = np.isfinite(kept[["shape_bias", "noise_drop"]].to_numpy(dtype=float)).all(axis=1).any()
        if drawn and not filled:  # its line's filled marker named a setting drawn only hollow: a hollow entry
            ax.plot([], [], ls="none", marker="o", ms=4, markerfacecolor="none", markeredgecolor=colors[setting],
                    label=f"{setting}: every point at chance (hollow)")
        ax.plot(kept["shape_bias"], kept["noise_drop"], marker="o", ms=4, lw=0.8, color=colors[setting],
                label=setting if filled else "_nolegend_")
        ax.scatter(rows.loc[out, "shape_bias"], rows.loc[out, "noise_drop"], s=16, facecolor="none",
                   edgecolor=colors[setting], linewidths=0.8)
        last = kept.dropna(subset=["noise_drop"]).tail(1)
        ax.scatter(last["shape_bias"], last["noise_drop"], s=120, facecolor="none", edgecolor=colors[setting])
    hollow = "; hollow: most seeds at chance" if left_out.any() else ""
    ax.set(xlabel="shape bias", ylabel="normalized noise drop (mean over σ)",
           title=f"does noise robustness follow shape bias? (ring: last checkpoint above chance{hollow})")
    # Beside the axes: inside, a sweep's many settings hid its points.
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    fig.tight_layout()
    return fig
