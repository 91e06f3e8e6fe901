"""Noise-robustness figures: accuracy and normalized drop per noise level across training, example images."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from .common import epoch_axis, plt
from .world import image_grid


def _sigma_colors(sigmas) -> dict[float, tuple]:
    """Clean in black, noise levels from light to dark as sigma grows."""
    noisy = [s for s in sigmas if s > 0]
    palette = plt.get_cmap("viridis_r")(np.linspace(0.25, 0.9, max(len(noisy), 1)))
    return {0.0: (0, 0, 0, 1), **{s: tuple(c) for s, c in zip(noisy, palette)}}


def accuracy_vs_epoch(table: pd.DataFrame, chance: float, log_x: bool = True):
    """Zero-shot accuracy vs epoch, one line per sigma (0 = clean) with its bootstrap CI band.

    ``table``: noise.csv rows (epoch, sigma, accuracy, lo, hi) of one dataset.
    """
    sigmas = sorted(table["sigma"].unique())
    colors = _sigma_colors(sigmas)
    fig, ax = plt.subplots(figsize=(7, 4))
    for sigma in sigmas:
        rows = table[table["sigma"] == sigma].sort_values("epoch")
        label = "clean" if sigma == 0 else f"σ = {sigma:g}"
        ax.plot(rows["epoch"], rows["accuracy"], marker="o", ms=3, color=colors[sigma], label=label)
        ax.fill_between(rows["epoch"], rows["lo"], rows["hi"], color=colors[sigma], alpha=0.15, lw=0)
    ax.axhline(chance, color="grey", ls="--", lw=1, label=f"chance (1/{round(1 / chance)})")
    epoch_axis(ax, table["epoch"].unique(), log_x)
    ax.set(ylabel="zero-shot accuracy", ylim=(0, 1.02), title="zero-shot accuracy under Gaussian noise (95% CI)")
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return fig


def drop_vs_epoch(table: pd.DataFrame, summary: pd.DataFrame, log_x: bool = True):
    """Normalized drop vs epoch per noise level, and its mean over levels (black).

    ``summary``: noise_summary.csv rows (epoch, mean_normalized_drop[, its _lo/_hi], clean_at_chance): the
    mean's interval drawn as a band. A checkpoint whose
    clean accuracy is at chance has no drop (nothing to lose): no point, a grey cross on the zero line.
    """
    noisy = table[table["sigma"] > 0]
    if "clean_at_chance" in noisy.columns:
        noisy = noisy[~noisy["clean_at_chance"].astype(bool)]
    sigmas = sorted(noisy["sigma"].unique())
    colors = _sigma_colors(sigmas)
    fig, ax = plt.subplots(figsize=(7, 4))
    for sigma in sigmas:
        rows = noisy[noisy["sigma"] == sigma].sort_values("epoch")
        ax.plot(rows["epoch"], rows["normalized_drop"], marker="o", ms=3, lw=1, color=colors[sigma],
                label=f"σ = {sigma:g}")
    summary = summary.sort_values("epoch").reset_index(drop=True)
    # the legend names only what is drawn: every checkpoint at chance leaves no mean; a band needs two
    # neighbouring checkpoints with an interval (a table written before the interval has none)
    banded = pd.Series(False, index=summary.index)
    if "mean_normalized_drop_lo" in summary.columns:
        banded = summary["mean_normalized_drop_lo"].notna() & summary["mean_normalized_drop_hi"].notna()
        ax.fill_between(summary["epoch"], summary["mean_normalized_drop_lo"], summary["mean_normalized_drop_hi"],
                        color="black", alpha=0.12, lw=0)
    if summary["mean_normalized_drop"].notna().any():
        band_drawn = (banded & banded.shift(fill_value=False)).any()
        ax.plot(summary["epoch"], summary["mean_normalized_drop"], color="black", lw=2.2, marker="o", ms=4,
                label="mean over σ" + (" (95% CI)" if band_drawn else ""))
    at_chance = summary[summary["clean_at_chance"].astype(bool)]
    if len(at_chance):
        ax.scatter(at_chance["epoch"], np.zeros(len(at_chance)), marker="x", s=60, color="grey", lw=1.5, zorder=3,
                   label="clean accuracy at chance (drop undefined)")
    ax.axhline(0, color="grey", lw=0.8)
    epoch_axis(ax, table["epoch"].unique(), log_x)
    ax.set(ylabel="normalized drop  (clean − noisy) / clean", title="accuracy lost to noise, relative to clean")
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return fig


def noise_examples(images_by_sigma: dict[float, np.ndarray], names: Sequence[str], scale: float = 1.3):
    """A grid: one row per image, one column per sigma (0 = clean, titled with the image's class)."""
    sigmas = sorted(images_by_sigma)
    panels, titles = [], []
    for k, name in enumerate(names):
        for sigma in sigmas:
            image = images_by_sigma[sigma][k]
            panels.append(image.astype(np.float32) / 255 if image.dtype == np.uint8 else image)
            titles.append(f"{name} (clean)" if sigma == 0 else f"σ = {sigma:g}")
    return image_grid(np.stack(panels), titles, columns=len(sigmas), scale=scale)
