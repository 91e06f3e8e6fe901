"""Synthesis figures: the paper's Fig. 1 layout, the alignment–robustness plane, pairwise relations."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .common import epoch_axis, plt


def _band(ax, x, y, lo, hi, label, color=None):
    line, = ax.plot(x, y, marker="o", ms=3, label=label, color=color)
    if lo is not None:
        ax.fill_between(x, lo, hi, alpha=0.2, color=line.get_color())


def summary_figure(table: pd.DataFrame, noise: pd.DataFrame, log_x: bool = True):
    """Four panels vs epoch, as in the paper's Fig. 1: (a) clean and noisy zero-shot accuracy,
    (b) IQA alignment, (c) texture bias, (d) normalized noise drop."""
    table = table.sort_values("epoch")
    epochs = table["epoch"].to_numpy()
    fig, axes = plt.subplots(1, 4, figsize=(17, 3.6))
    ax = axes[0]
    for sigma, rows in noise.sort_values("epoch").groupby("sigma"):
        _band(ax, rows["epoch"], rows["accuracy"], rows["lo"], rows["hi"],
              "clean" if sigma == 0 else f"σ={sigma:g}")
    ax.set(ylabel="zero-shot accuracy", title="(a) accuracy, clean and noisy")
    ax.legend(fontsize=7)
    _band(axes[1], epochs, table["iqa_srcc"], table["iqa_srcc_lo"], table["iqa_srcc_hi"], "SRCC")
    axes[1].set(ylabel="SRCC with quality judgments", title="(b) IQA alignment")
    _band(axes[2], epochs, 1 - table["shape_bias"], 1 - table["shape_bias_hi"], 1 - table["shape_bias_lo"],
          "texture bias")
    axes[2].set(ylabel="texture bias (1 − shape bias)", title="(c) texture bias", ylim=(0, 1))
    _band(axes[3], epochs, table["noise_drop"], None, None, "mean over σ")
    axes[3].set(ylabel="normalized drop", title="(d) accuracy drop under noise")
    for ax in axes:
        epoch_axis(ax, epochs, log_x)
    fig.tight_layout()
    return fig


def alignment_robustness_plane(table: pd.DataFrame, on_front: np.ndarray, selected=None):
    """IQA alignment vs robustness (1 − normalized drop), checkpoints coloured by epoch,
    the Pareto front joined, and the selected checkpoint starred."""
    fig, ax = plt.subplots(figsize=(6, 4.5))
    robustness = 1 - table["noise_drop"]
    points = ax.scatter(table["iqa_srcc"], robustness, c=table["epoch"], cmap="viridis", s=40, zorder=3)
    fig.colorbar(points, ax=ax, label="epoch")
    front = table[on_front].sort_values("iqa_srcc")
    ax.plot(front["iqa_srcc"], 1 - front["noise_drop"], color="crimson", lw=1.5, label="Pareto front", zorder=2)
    if selected is not None:
        row = table.loc[selected]
        ax.scatter([row["iqa_srcc"]], [1 - row["noise_drop"]], marker="*", s=300, facecolor="none",
                   edgecolor="black", label=f"selected: {row['checkpoint']}", zorder=4)
    ax.set(xlabel="IQA alignment (SRCC)", ylabel="robustness (1 − normalized drop)",
           title="alignment–robustness plane")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def relation_panels(table: pd.DataFrame, relations: pd.DataFrame):
    """One scatter per pair of per-checkpoint measures, titled with Spearman's rho and its p."""
    fig, axes = plt.subplots(1, len(relations), figsize=(5 * len(relations), 3.8), squeeze=False)
    data = table.assign(texture_bias=1 - table["shape_bias"])
    for ax, (_, rel) in zip(axes.flat, relations.iterrows()):
        points = ax.scatter(data[rel["x"]], data[rel["y"]], c=data["epoch"], cmap="viridis", s=30)
        ax.set(xlabel=rel["x"], ylabel=rel["y"],
               title=f"ρ = {rel['spearman']:.2f}, permutation p = {rel['p_value']:.3f}")
    fig.colorbar(points, ax=axes.ravel().tolist(), label="epoch")
    return fig
