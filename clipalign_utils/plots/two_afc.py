"""2AFC similarity figures: the score over training per subset, and example triplets."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from .common import epoch_axis, plt

ALL_COLOUR = "black"


def score_curve(table: pd.DataFrame, ceiling: float | None = None, log_x: bool = True,
                title: str = "2AFC agreement with the judges", ceiling_label: str = "ceiling (judges' majority)"):
    """2AFC score vs epoch: one line per subset, ``all`` in black with its bootstrap band; chance
    (0.5) and, if given, the ceiling mean(max(p, 1 − p)) as horizontal lines."""
    table = table.sort_values("epoch")
    fig, ax = plt.subplots(figsize=(6.8, 3.8))
    subsets = [s for s in dict.fromkeys(table["subset"]) if s != "all"]
    colours = plt.get_cmap("tab10")
    for k, subset in enumerate(subsets):
        rows = table[table["subset"] == subset]
        ax.plot(rows["epoch"], rows["score"], marker=".", ms=4, lw=1.1, color=colours(k % 10),
                label=f"{subset.replace('_', ' ')} (n = {int(rows['n_triplets'].iloc[-1])})")
    overall = table[table["subset"] == "all"]
    if len(overall):
        ax.fill_between(overall["epoch"], overall["score_lo"], overall["score_hi"], color=ALL_COLOUR, alpha=0.12,
                        lw=0, label="all: 95 % bootstrap CI (triplets resampled)")
        ax.plot(overall["epoch"], overall["score"], "o-", color=ALL_COLOUR, ms=4,
                label=f"all (n = {int(overall['n_triplets'].iloc[-1])})")
    ax.axhline(0.5, color="grey", lw=0.8, ls="--", label="chance")
    top = 1.0
    if ceiling is not None and np.isfinite(ceiling):
        ax.axhline(ceiling, color="tab:red", lw=1.0, ls=":", label=f"{ceiling_label}: {ceiling:.3f}")
    epochs = table["epoch"].drop_duplicates().tolist()
    epoch_axis(ax, epochs, log_x)
    low = np.nanmin(table[["score", "score_lo"]].to_numpy(dtype=float)) if len(table) else 0.4
    ax.set(ylim=(min(0.4, low - 0.03) if np.isfinite(low) else 0.4, top),
           ylabel="2AFC score\n(share of judges agreed with)", title=title)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    fig.tight_layout()
    return fig


def triplet_examples(ref: np.ndarray, p0: np.ndarray, p1: np.ndarray, row_titles: Sequence[str],
                     suptitle: str | None = None, scale: float = 1.5):
    """One row per triplet (reference, p0, p1); ``row_titles`` label the rows (e.g. p, distances)."""
    n = len(ref)
    fig, axes = plt.subplots(max(n, 1), 3, figsize=(3 * scale + 2.6, max(n, 1) * (scale + 0.25)), squeeze=False)
    for row in range(max(n, 1)):
        for col, (images, name) in enumerate(((ref, "reference"), (p0, "p0"), (p1, "p1"))):
            ax = axes[row, col]
            ax.set_xticks([])
            ax.set_yticks([])
            if row < n:
                ax.imshow(images[row], interpolation="nearest")
                if row == 0:
                    ax.set_title(name, fontsize=8)
            else:
                ax.axis("off")
        if row < n:
            axes[row, 2].text(1.06, 0.5, row_titles[row], transform=axes[row, 2].transAxes, fontsize=7,
                              va="center", ha="left")
    if suptitle:
        fig.suptitle(suptitle, fontsize=9)
    fig.tight_layout()
    return fig
