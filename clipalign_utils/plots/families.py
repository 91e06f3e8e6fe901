"""Alignment per distortion family, seen or unseen in training (quality variation)."""
from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from .common import epoch_axis

SEEN_COLOURS = {True: "tab:red", False: "tab:blue"}


def family_curves(marked: pd.DataFrame, within: pd.DataFrame, log_x: bool = True) -> plt.Figure:
    """Left: SRCC of each distortion family against epoch, red = seen in training, blue = unseen.
    Right: the mean over seen families, over unseen families, over all families, and the overall SRCC."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.2), sharey=True)
    families = marked[marked["distortion"] != "all"]
    for family, rows in families.groupby("distortion", sort=True):
        seen = str(rows["seen_in_training"].iloc[0]).lower() == "true"
        left.plot(rows["epoch"], rows["srcc"], marker=".", color=SEEN_COLOURS[seen], alpha=0.7)
        left.annotate(family.replace("_", " "), (rows["epoch"].iloc[-1], rows["srcc"].iloc[-1]), fontsize=7,
                      xytext=(3, 0), textcoords="offset points", va="center")
    left.set_title("per family (red: seen in training, blue: unseen)")
    left.set_ylabel("SRCC within the family")
    for column, label, style in [("within_seen_srcc", "mean over seen families", dict(color="tab:red")),
                                 ("within_unseen_srcc", "mean over unseen families", dict(color="tab:blue")),
                                 ("within_family_srcc", "mean over all families", dict(color="black")),
                                 ("overall_srcc", "overall (all pairs)", dict(color="grey", linestyle="--"))]:
        if within[column].notna().any():
            right.plot(within["epoch"], within[column], marker="o", label=label, **style)
    right.set_title("within-family alignment and the overall SRCC")
    right.legend(fontsize=8)
    for ax in (left, right):
        epoch_axis(ax, marked["epoch"].unique(), log_x)
    fig.tight_layout()
    return fig
