"""Weight-interpolation figures: the interpolation path beside the checkpoints' own path in the
alignment–robustness plane (robustness = 1 − normalized noise drop, as in the synthesis' plane)."""
from __future__ import annotations

import pandas as pd

from .common import plt


def _checkpoints(ax, path: pd.DataFrame) -> None:
    ax.plot(path["iqa_srcc"], 1 - path["noise_drop"], color="0.6", lw=1, zorder=1)
    points = ax.scatter(path["iqa_srcc"], 1 - path["noise_drop"], c=path["epoch"], cmap="viridis", s=30, zorder=2,
                        label="checkpoints (colour: epoch)")
    ax.figure.colorbar(points, ax=ax, label="epoch")


def _interpolation(ax, rows: pd.DataFrame, with_intervals: bool) -> None:
    rows = rows.sort_values("alpha")
    x, y = rows["iqa_srcc"], 1 - rows["noise_drop"]
    if with_intervals:
        ax.errorbar(x, y, xerr=[x - rows["iqa_srcc_lo"], rows["iqa_srcc_hi"] - x],
                    yerr=[rows["noise_drop_hi"] - rows["noise_drop"], rows["noise_drop"] - rows["noise_drop_lo"]],
                    color="crimson", ls="--", marker="s", ms=5, capsize=2, zorder=3, label="θ(α), mean ± 95 % t interval")
    else:
        ax.plot(x, y, color="crimson", ls="--", marker="s", ms=5, zorder=3, label="θ(α)")
    for alpha, xi, yi in zip(rows["alpha"], x, y):
        ax.annotate(f"α={alpha:g}", (xi, yi), textcoords="offset points", xytext=(5, 4), fontsize=8, color="crimson")


def interpolation_plane(path: pd.DataFrame, rows: pd.DataFrame, title: str, with_intervals: bool = False):
    """The checkpoints' path (``path``: epoch, iqa_srcc, noise_drop) and the interpolation path (``rows``:
    alpha, iqa_srcc, noise_drop, with their _lo/_hi when ``with_intervals``) in one plane."""
    fig, ax = plt.subplots(figsize=(7, 5))
    _checkpoints(ax, path)
    _interpolation(ax, rows, with_intervals)
    ax.set(xlabel="IQA alignment (SRCC)", ylabel="robustness (1 − normalized noise drop)", title=title)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return fig


def measures_vs_alpha(rows: pd.DataFrame, title: str):
    """IQA SRCC, shape bias and normalized noise drop against α, each with its interval where it has one."""
    rows = rows.sort_values("alpha")
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    for ax, (column, label) in zip(axes, (("iqa_srcc", "IQA alignment (SRCC)"), ("shape_bias", "shape bias"),
                                          ("noise_drop", "normalized noise drop"))):
        ax.plot(rows["alpha"], rows[column], marker="o", color="crimson")
        if f"{column}_lo" in rows.columns and rows[f"{column}_lo"].notna().any():
            ax.fill_between(rows["alpha"], rows[f"{column}_lo"], rows[f"{column}_hi"], alpha=0.2, color="crimson")
        ax.set(xlabel="α (0 = from, 1 = to)", ylabel=label)
    fig.suptitle(title)
    fig.tight_layout()
    return fig
