"""Figures of the saliency step: metrics vs epoch, maps at chosen checkpoints, contour vs interior."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from .common import epoch_axis, legend_below, plt

METRIC_TITLES = {"cc": "CC ↑", "nss": "NSS ↑", "sim": "SIM ↑", "kld": "KLD ↓", "auc_judd": "AUC-Judd ↑",
                 "sauc": "shuffled AUC ↑", "auc_borji": "AUC-Borji ↑"}
# The baselines' rows (steps.saliency.BASELINES), each drawn as its own horizontal line.
BASELINE_STYLES = {"centre_bias": ("0.3", "--", "centre bias"), "object_silhouette": ("C2", "-.", "object silhouette"),
                   "shuffled_silhouette": ("C3", ":", "shuffled silhouette")}


def metrics_vs_epoch(table: pd.DataFrame, log_x: bool = True):
    """One panel per metric: the model's value per checkpoint with its bootstrap interval, and each
    baseline the table has as a horizontal line with its interval shaded."""
    metrics = [m for m in METRIC_TITLES if m in set(table["metric"])]
    fig, axes = plt.subplots(2, (len(metrics) + 1) // 2, figsize=(3.4 * ((len(metrics) + 1) // 2), 5.6),
                             squeeze=False)
    model_rows = table[~table["checkpoint"].isin(BASELINE_STYLES)]
    for ax, metric in zip(axes.flat, metrics):
        rows = model_rows[model_rows["metric"] == metric].sort_values("epoch")
        ax.plot(rows["epoch"], rows["value"], marker="o", color="C0", label="model")
        ax.fill_between(rows["epoch"], rows["value_lo"], rows["value_hi"], color="C0", alpha=0.2)
        for name, (colour, style, label) in BASELINE_STYLES.items():
            base = table[(table["checkpoint"] == name) & (table["metric"] == metric)]
            if not base.empty:
                ax.axhline(base["value"].iloc[0], color=colour, ls=style, label=label)
                ax.axhspan(base["value_lo"].iloc[0], base["value_hi"].iloc[0], color=colour, alpha=0.1)
        if metric in ("auc_judd", "sauc", "auc_borji"):
            ax.axhline(0.5, color="0.6", lw=0.8, ls=":")
        ax.set_title(METRIC_TITLES[metric])
        epoch_axis(ax, rows["epoch"], log_x=log_x, label_rows=2)  # (3.4 in a panel: 0.5 and 0.75 touched)
    for ax in list(axes.flat)[len(metrics):]:
        ax.set_visible(False)
    # one legend under the panels (in the first it covered a baseline's line): every entry any panel drew
    handles = {label: handle for ax in axes.flat for handle, label in zip(*ax.get_legend_handles_labels())}
    legend_below(fig, list(handles.values()), max_columns=4)
    return fig


def saliency_maps_grid(images: np.ndarray, densities: Sequence[np.ndarray], maps_by_checkpoint: dict[str, Sequence[np.ndarray]],
                       scale: float = 1.6):
    """Rows = images; columns = the image, the ground-truth density, then one map per checkpoint.

    Every panel of a row is drawn at the aspect ratio of its density, which keeps the photograph's own (a
    16:9 CAT2000 stimulus): the image and the maps are square, as the model sees them, and are stretched back.
    """
    n, columns = len(images), 2 + len(maps_by_checkpoint)
    ratios = [np.shape(densities[i])[0] / np.shape(densities[i])[1] for i in range(n)]  # height / width
    fig, axes = plt.subplots(n, columns, figsize=(scale * columns, scale * sum(ratios)), squeeze=False,
                             gridspec_kw={"height_ratios": ratios})
    for i in range(n):
        panels = [(images[i], "image"), (densities[i], "ground truth (density)")] + \
                 [(maps[i], name) for name, maps in maps_by_checkpoint.items()]
        for ax, (panel, title) in zip(axes[i], panels):
            # imshow's aspect is a pixel's height over its width: this one draws the panel ratios[i] high per unit wide
            ax.imshow(panel, cmap=None if np.ndim(panel) == 3 else "magma",
                      aspect=ratios[i] * np.shape(panel)[1] / np.shape(panel)[0])
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(title, fontsize=8)
    fig.tight_layout()
    return fig


def region_set_name(name: str) -> str:
    """A region table's set as the figure titles it and the page's sentences name it ("saliency_cue_conflict"
    → "cue conflict")."""
    return name.replace("saliency_", "").replace("_", " ")


def region_share_vs_epoch(summary: pd.DataFrame, regions: Sequence[str] = ("contour", "interior"), log_x: bool = True):
    """Share of saliency on the silhouette's contour and interior per checkpoint (one panel per set),
    each against its share of the area (dotted: what a uniform map would give)."""
    sets = list(dict.fromkeys(summary["set"]))
    fig, axes = plt.subplots(1, len(sets), figsize=(4.2 * len(sets), 3.4), squeeze=False)
    for ax, name in zip(axes[0], sets):
        for k, region in enumerate(regions):
            rows = summary[(summary["set"] == name) & (summary["region"] == region)].sort_values("epoch")
            ax.plot(rows["epoch"], rows["share"], marker="o", color=f"C{k}", label=region)
            ax.fill_between(rows["epoch"], rows["share_lo"], rows["share_hi"], color=f"C{k}", alpha=0.2)
            ax.axhline(rows["area"].mean(), color=f"C{k}", ls=":", lw=1)
        ax.set_title(region_set_name(name))
        ax.set_ylabel("share of saliency")
        epoch_axis(ax, summary["epoch"], log_x=log_x)
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    return fig
