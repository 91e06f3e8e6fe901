"""IQA-alignment figures: alignment over training with its CI band, a distortion × epoch
heatmap of SRCC, distance-vs-quality scatters at chosen checkpoints, and example pairs."""
from __future__ import annotations

from typing import Sequence

import matplotlib.ticker
import numpy as np
import pandas as pd
import seaborn as sns

from .common import epoch_axis, plt
from .world import image_grid

SRCC_COLOUR = "tab:blue"
EXTRA_STYLES = {"krcc": dict(color="tab:orange", ls="--", label="KRCC"),
                "plcc": dict(color="tab:green", ls=":", label="PLCC (after logistic fit)")}


def alignment_curve(table: pd.DataFrame, log_x: bool = True, extra: Sequence[str] = ("krcc", "plcc"),
                    title: str = "alignment with quality judgments"):
    """SRCC vs epoch with its bootstrap CI band (the ``all`` rows of iqa.csv), plus KRCC / PLCC lines.

    Every score is signed so that higher = better alignment; 0 = no relation.
    """
    overall = table[table["distortion"] == "all"].sort_values("epoch")
    fig, ax = plt.subplots(figsize=(6.8, 3.8))
    ax.fill_between(overall["epoch"], overall["srcc_lo"], overall["srcc_hi"], color=SRCC_COLOUR, alpha=0.2, lw=0,
                    label="SRCC 95 % bootstrap CI (references resampled)")
    ax.plot(overall["epoch"], overall["srcc"], "o-", color=SRCC_COLOUR, ms=4, label="SRCC")
    for column in extra:
        ax.plot(overall["epoch"], overall[column], marker=".", ms=4, lw=1.2, **EXTRA_STYLES[column])
    ax.axhline(0, color="grey", lw=0.8)
    epochs = overall["epoch"].tolist()
    epoch_axis(ax, epochs, log_x)
    lows = overall[["srcc_lo", *extra]].min().min()
    ax.set(ylim=(min(-0.05, lows - 0.05) if np.isfinite(lows) else -0.05, 1.0),
           ylabel="correlation with quality\n(higher = better aligned)", title=title)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return fig


def epoch_heatmap(table: pd.DataFrame, rows: str, value: str = "srcc", annotate: bool | None = None,
                  title: str | None = None, row_order=None, scale: tuple[float, float, float] = (-1, 1, 0),
                  label: str | None = None):
    """``rows`` (e.g. distortion type, layer) × checkpoints (columns, by epoch) coloured by ``value`` on
    ``scale`` (lowest, highest, neutral: a correlation's −1, 1 and 0), its colour bar named ``label``."""
    grid = table.pivot_table(index=rows, columns="epoch", values=value, dropna=False)
    grid = grid.sort_index(axis=1)
    if row_order is not None:
        grid = grid.reindex(row_order)
    grid.columns = [f"{epoch:g}" for epoch in grid.columns]
    grid.index = [str(name).replace("_", " ") for name in grid.index]
    if annotate is None:
        annotate = grid.shape[1] <= 20
    fig, ax = plt.subplots(figsize=(3.6 + 0.62 * grid.shape[1], 1.2 + 0.4 * grid.shape[0]))
    label = label or value.upper()
    sns.heatmap(grid, ax=ax, cmap="RdBu", vmin=scale[0], vmax=scale[1], center=scale[2], annot=annotate, fmt=".2f",
                annot_kws={"fontsize": 7}, linewidths=0.4, cbar_kws={"label": label, "shrink": 0.8})
    ax.tick_params(axis="x", labelrotation=0)
    ax.set(xlabel="epoch", ylabel="", title=title or f"{label} per {rows} over training")
    fig.tight_layout()
    return fig


def distortion_heatmap(table: pd.DataFrame, value: str = "srcc", annotate: bool | None = None):
    """Distortion types (rows) × checkpoints (columns, by epoch) coloured by ``value``, −1 … 1."""
    return epoch_heatmap(table[table["distortion"] != "all"], "distortion", value, annotate,
                         title=f"{value.upper()} per distortion type over training")


def layer_heatmap(table: pd.DataFrame, value: str = "srcc", scale: tuple[float, float, float] = (-1, 1, 0),
                  label: str | None = None):
    """Vision blocks (rows, input to output) × checkpoints coloured by ``value`` (``epoch_heatmap``'s scale
    and label)."""
    order = list(dict.fromkeys(table["layer"]))
    return epoch_heatmap(table, "layer", value, row_order=order, scale=scale, label=label,
                         title=f"{label or value.upper()} of each vision block's output over training")


def distance_quality_scatter(pairs: pd.DataFrame, checkpoints: Sequence[str], labels: Sequence[str],
                             scores: Sequence[float] | None = None, quality_label: str = "quality",
                             distance_label: str = "model distance", log_y: bool = True):
    """One panel per checkpoint: model distance (y) against quality (x), coloured by distortion.

    ``pairs``: iqa_pairs.csv rows (checkpoint, distortion, quality, model_distance). An aligned
    model puts the best-quality pairs (right) at the smallest distances (bottom). ``log_y``: a log
    y axis, since most distorted images sit very close to their reference and a few far away (a linear one
    where the distances span less than a decade); where a distance is 0, a symlog one, linear below the 10th
    percentile of the shown positive distances (the same on every panel). The axis label says which.
    """
    hue_order = sorted(pairs["distortion"].unique())
    palette = dict(zip(hue_order, sns.color_palette("tab10" if len(hue_order) <= 10 else "husl", len(hue_order))))
    fig, axes = plt.subplots(1, len(checkpoints), figsize=(4.2 * len(checkpoints) + 2.2, 3.8), squeeze=False)
    distances = pairs.loc[pairs["checkpoint"].isin(checkpoints), "model_distance"]
    positive = distances[distances > 0]
    # within a decade a log axis has no decade to label (0.7–1.6 read "10⁰, 9×10⁻¹, 8×10⁻¹", none above 1)
    log_y = log_y and not (len(positive) and positive.max() < 10 * positive.min())
    if log_y and len(positive) == len(distances):
        scale, distance_label = dict(value="log"), f"{distance_label} (log scale)"
    elif log_y and len(positive):
        linthresh = float(np.quantile(positive, 0.1))
        scale = dict(value="symlog", linthresh=linthresh)
        distance_label = f"{distance_label}\n(log scale; linear below {linthresh:.2g})"
    else:
        scale = None
    for k, (ax, checkpoint, label) in enumerate(zip(axes.flat, checkpoints, labels)):
        rows = pairs[pairs["checkpoint"] == checkpoint]
        sns.scatterplot(rows, x="quality", y="model_distance", hue="distortion", hue_order=hue_order,
                        palette=palette, s=18, alpha=0.8, edgecolor="none", ax=ax, legend=k == len(checkpoints) - 1)
        if scale is not None and len(rows):
            ax.set_yscale(**scale)
            if scale["value"] == "symlog":  # matplotlib's symlog places no minor ticks of its own
                ax.yaxis.set_minor_locator(matplotlib.ticker.SymmetricalLogLocator(
                    ax.yaxis.get_transform(), subs=np.arange(2, 10)))
            _fit_y_to_points(ax, rows["model_distance"])
            # the decades alone were too few to read a distance by: a fainter line at each of their multiples
            ax.grid(True, which="minor", axis="y", lw=0.5, alpha=0.5)
        title = label if scores is None else f"{label}: SRCC {scores[k]:.3f}"
        ax.set(title=title, xlabel=quality_label, ylabel=distance_label if k == 0 else "")
    last = axes.flat[len(checkpoints) - 1]
    if last.get_legend() is not None:
        sns.move_legend(last, "upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, title="distortion",
                        title_fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


def _fit_y_to_points(ax, values: pd.Series, margin: float = 0.05) -> None:
    """The y limits around ``values`` with ``margin`` of their span on the axis' own scale: a symlog axis from
    0 drew the points in its top corner when every distance lay far above 0."""
    scale = ax.yaxis.get_transform()
    low, high = scale.transform(np.array([values.min(), values.max()], dtype=float))
    pad = margin * (high - low) if high > low else max(abs(low) * margin, 1e-12)
    ax.set_ylim(*scale.inverted().transform(np.array([low - pad, high + pad])))


def iqa_examples(reference: np.ndarray, distorted: np.ndarray, titles: Sequence[str], reference_title: str,
                 columns: int = 6):
    """A reference image followed by distorted versions of it, each titled (e.g. with its quality)."""
    images = np.concatenate([reference[None], distorted])
    return image_grid(images, [reference_title, *titles], columns=columns, scale=1.6)
