"""Synthesis figures: the paper's Fig. 1 layout, the alignment–robustness plane, pairwise relations."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .common import epoch_axis, plt


def _band(ax, x, y, lo, hi, label, color=None):
    line, = ax.plot(x, y, marker="o", ms=3, label=label, color=color)
    if lo is not None:
        ax.fill_between(x, lo, hi, alpha=0.2, color=line.get_color())


# Optional panels after the paper's four, when the table has the column (the similarity and saliency steps):
# (column, y label, title).
EXTRA_PANELS = [
    ("two_afc_score", "2AFC score (agreement with judges)", "(e) 2AFC similarity"),
    ("saliency_cc", "CC with fixation density", "(f) saliency correspondence"),
]


def _extra_panels(table: pd.DataFrame) -> list[tuple[str, str, str]]:
    return [panel for panel in EXTRA_PANELS
            if panel[0] in table.columns and np.isfinite(table[panel[0]].to_numpy(dtype=float)).any()]


def summary_figure(table: pd.DataFrame, noise: pd.DataFrame, log_x: bool = True, by: str | None = None,
                   clean_only: bool = False):
    """Four panels vs epoch, as in the paper's Fig. 1: (a) clean and noisy zero-shot accuracy,
    (b) IQA alignment, (c) texture bias, (d) normalized noise drop; then, when the table has them,
    (e) the overall 2AFC similarity score and (f) saliency CC, each with its interval band.

    ``by`` None: one run's checkpoint table and noise curves. ``by`` a column (``scale``, a sweep's
    ``setting``): ``table`` and ``noise`` are per-epoch seed means (``metrics.tradeoff.seed_means``), one
    colour per group, each band its 95 % t-interval over seeds (a group of one seed: its own intervals);
    ``clean_only`` draws clean accuracy alone in (a), for many groups."""
    if by is not None:
        return _summary_by(table, noise, log_x, by, clean_only)
    table = table.sort_values("epoch")
    epochs = table["epoch"].to_numpy()
    extra = _extra_panels(table)
    fig, axes = plt.subplots(1, 4 + len(extra), figsize=(17 + 4.2 * len(extra), 3.6))
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
    for ax, (column, ylabel, title) in zip(axes[4:], extra):
        _band(ax, epochs, table[column], table[f"{column}_lo"], table[f"{column}_hi"], column)
        ax.set(ylabel=ylabel, title=title)
    for ax in axes:
        epoch_axis(ax, epochs, log_x)
    fig.tight_layout()
    return fig


def _draw_plane(fig, ax, table: pd.DataFrame, on_front: np.ndarray, selected=None, title="alignment–robustness plane"):
    robustness = 1 - table["noise_drop"]
    points = ax.scatter(table["iqa_srcc"], robustness, c=table["epoch"], cmap="viridis", s=40, zorder=3)
    fig.colorbar(points, ax=ax, label="epoch")
    front = table[on_front].sort_values("iqa_srcc")
    ax.plot(front["iqa_srcc"], 1 - front["noise_drop"], color="crimson", lw=1.5, label="Pareto front", zorder=2)
    if selected is not None:
        row = table.loc[selected]
        ax.scatter([row["iqa_srcc"]], [1 - row["noise_drop"]], marker="*", s=300, facecolor="none",
                   edgecolor="black", label=f"selected: {row['checkpoint']}", zorder=4)
    ax.set(xlabel="IQA alignment (SRCC)", ylabel="robustness (1 − normalized drop)", title=title)
    ax.legend(fontsize=8)


def alignment_robustness_plane(table: pd.DataFrame, on_front: np.ndarray, selected=None, by: str | None = None):
    """IQA alignment vs robustness (1 − normalized drop), checkpoints coloured by epoch,
    the Pareto front joined, and the selected checkpoint starred.

    ``by`` a column (``scale``): one panel per group of ``table``'s per-epoch seed means; ``selected``
    then maps a group to its selected row label."""
    if by is not None:
        return _plane_by(table, on_front, selected or {}, by)
    fig, ax = plt.subplots(figsize=(6, 4.5))
    _draw_plane(fig, ax, table, on_front, selected)
    fig.tight_layout()
    return fig


def _plane_by(means: pd.DataFrame, on_front: np.ndarray, selected: dict, by: str):
    scales = list(dict.fromkeys(means[by]))
    fig, axes = plt.subplots(1, len(scales), figsize=(6 * len(scales), 4.5), squeeze=False)
    for ax, scale in zip(axes.flat, scales):
        rows = means[by] == scale
        n_seeds = int(means.loc[rows, "n_seeds"].max())
        _draw_plane(fig, ax, means[rows], np.asarray(on_front)[rows.to_numpy()], selected.get(scale),
                    title=f"{scale}: mean over {n_seeds} seeds" if n_seeds > 1 else f"{scale}: one run")
    fig.tight_layout()
    return fig


def relation_panels(table: pd.DataFrame, relations: pd.DataFrame, by: str | None = None):
    """One scatter per pair of per-checkpoint measures, titled with Spearman's rho and its p. ``by`` a
    column (``scale``): ``table`` holds per-epoch seed means, one colour per group, each group's rho in the title."""
    if by is not None:
        return _relations_by(table, relations, by)
    fig, axes = plt.subplots(1, len(relations), figsize=(5 * len(relations), 3.8), squeeze=False)
    data = table.assign(texture_bias=1 - table["shape_bias"])
    for ax, (_, rel) in zip(axes.flat, relations.iterrows()):
        points = ax.scatter(data[rel["x"]], data[rel["y"]], c=data["epoch"], cmap="viridis", s=30)
        ax.set(xlabel=rel["x"], ylabel=rel["y"],
               title=f"ρ = {rel['spearman']:.2f}, permutation p = {rel['p_value']:.3f}")
    fig.colorbar(points, ax=axes.ravel().tolist(), label="epoch")
    return fig


def group_colors(scales) -> dict:
    palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    return {scale: palette[i % len(palette)] for i, scale in enumerate(scales)}


def _summary_by(means: pd.DataFrame, noise_means: pd.DataFrame, log_x: bool, group: str, clean_only: bool):
    """summary_figure over groups of runs; in (a) the line style tells the noise level."""
    if clean_only:
        noise_means = noise_means[noise_means["sigma"] == 0]
    scales = list(dict.fromkeys(means[group]))
    colors = group_colors(scales)
    styles = ["-", "--", ":", "-.", (0, (5, 1, 1, 1, 1, 1)), (0, (1, 3))]
    extra = _extra_panels(means)
    fig, axes = plt.subplots(1, 4 + len(extra), figsize=(17 + 4.2 * len(extra), 3.8))
    for scale in scales:
        color = colors[scale]
        n_seeds = int(means.loc[means[group] == scale, "n_seeds"].max())
        label = f"{scale} ({n_seeds} seed{'s' if n_seeds != 1 else ''})"
        for i, (sigma, rows) in enumerate(noise_means[noise_means[group] == scale].groupby("sigma")):
            rows = rows.sort_values("epoch")
            line, = axes[0].plot(rows["epoch"], rows["accuracy"], ls=styles[i % len(styles)], marker="o", ms=2,
                                 color=color, label=f"{scale}, " + ("clean" if sigma == 0 else f"σ={sigma:g}"))
            axes[0].fill_between(rows["epoch"], rows["accuracy_lo"], rows["accuracy_hi"], alpha=0.12, color=color)
        rows = means[means[group] == scale].sort_values("epoch")
        _band(axes[1], rows["epoch"], rows["iqa_srcc"], rows["iqa_srcc_lo"], rows["iqa_srcc_hi"], label, color)
        _band(axes[2], rows["epoch"], 1 - rows["shape_bias"], 1 - rows["shape_bias_hi"], 1 - rows["shape_bias_lo"],
              label, color)
        _band(axes[3], rows["epoch"], rows["noise_drop"], rows["noise_drop_lo"], rows["noise_drop_hi"], label, color)
        for ax, (column, _, _) in zip(axes[4:], extra):
            _band(ax, rows["epoch"], rows[column], rows[f"{column}_lo"], rows[f"{column}_hi"], label, color)
    axes[0].set(ylabel="zero-shot accuracy",
                title="(a) clean accuracy" if clean_only else "(a) accuracy, clean and noisy")
    axes[1].set(ylabel="SRCC with quality judgments", title="(b) IQA alignment")
    axes[2].set(ylabel="texture bias (1 − shape bias)", title="(c) texture bias", ylim=(0, 1))
    axes[3].set(ylabel="normalized drop (mean over σ)", title="(d) accuracy drop under noise")
    for ax, (_, ylabel, title) in zip(axes[4:], extra):
        ax.set(ylabel=ylabel, title=title)
    if not clean_only:
        axes[0].legend(fontsize=6)
    for ax in axes[0 if clean_only else 1:]:
        ax.legend(fontsize=7)
    epochs = np.unique(means["epoch"].to_numpy(dtype=float))
    positive = epochs[epochs > 0]
    for ax in axes:
        epoch_axis(ax, epochs, log_x)
        if log_x and positive.size:  # the same epoch range on every panel, whatever a panel lacks
            ax.set_xlim(epochs.min() - 0.1 * positive.min(), epochs.max() * 1.15)
    if means["n_seeds"].max() > 1:
        fig.suptitle("mean over seeds, band: 95 % t-interval over seeds (a single seed: its own intervals)",
                     fontsize=9)
    fig.tight_layout()
    return fig


def _relations_by(means: pd.DataFrame, relations: pd.DataFrame, by: str):
    scales = list(dict.fromkeys(means[by]))
    colors = group_colors(scales)
    pairs = list(dict.fromkeys(zip(relations["x"], relations["y"])))
    fig, axes = plt.subplots(1, len(pairs), figsize=(5 * len(pairs), 3.8), squeeze=False)
    data = means.assign(texture_bias=1 - means["shape_bias"])
    for ax, (x, y) in zip(axes.flat, pairs):
        titles = []
        for scale in scales:
            rows = data[data[by] == scale]
            ax.scatter(rows[x], rows[y], s=25, color=colors[scale], label=scale)
            rel = relations[(relations[by] == scale) & (relations["x"] == x) & (relations["y"] == y)].iloc[0]
            titles.append(f"{scale}: ρ={rel['spearman']:.2f}, p={rel['p_value']:.3f}")
        ax.set(xlabel=x, ylabel=y)
        ax.set_title("\n".join(titles), fontsize=8)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
