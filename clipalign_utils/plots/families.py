"""Alignment per distortion family, seen or unseen in training (quality variation)."""
from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from .common import epoch_axis

SEEN_COLOURS = {True: "tab:red", False: "tab:blue"}
UNKNOWN_COLOUR = "tab:grey"  # a run trained elsewhere: which families its training saw is not known
LABEL_SIZE = 7  # points, the end-of-line labels
LABEL_GAP = 1.3 * LABEL_SIZE  # points between two end labels' centres: one line of text


def family_curves(marked: pd.DataFrame, within: pd.DataFrame, log_x: bool = True,
                  seen_known: bool = True) -> plt.Figure:
    """Left: SRCC of each distortion family against epoch, red = seen in training, blue = unseen, each labelled
    at its end (labels spread apart where curves end close together).
    Right: the mean over seen families, over unseen families, over all families, and the overall SRCC; where
    every family is seen, or every one unseen (``seen_in_training`` of ``marked``), the mean over all families is
    that group's, drawn once. ``seen_known`` False (a run trained elsewhere: its training data unknown): every
    family in one colour, and the mean over all families alone."""
    # 13.5 wide: a panel needs 5.4 in to label each of six epochs up to 2 at the theme's tick font (at 12, 0.75
    # went); a default run's ten fit on one line only at 17 in, which shrinks every label on the page, or at an
    # 8 pt tick font, unlike the other curve figures: a label that would touch goes a line lower (label_rows)
    fig, (left, right) = plt.subplots(1, 2, figsize=(13.5, 4.2), sharey=True)
    families = marked[marked["distortion"] != "all"]
    labels = []
    seen_flags = set()
    for family, rows in families.groupby("distortion", sort=True):
        seen = str(rows["seen_in_training"].iloc[0]).lower() == "true"
        seen_flags.add(seen)
        colour = SEEN_COLOURS[seen] if seen_known else UNKNOWN_COLOUR
        left.plot(rows["epoch"], rows["srcc"], marker=".", color=colour, alpha=0.7)
        end = (rows["epoch"].iloc[-1], rows["srcc"].iloc[-1])
        labels.append(left.annotate(family.replace("_", " "), end, fontsize=LABEL_SIZE, color=colour,
                                    xytext=(3, 0), textcoords="offset points", va="center",
                                    arrowprops=dict(arrowstyle="-", lw=0.5, color=colour, shrinkA=0,
                                                    shrinkB=0)))
    left.set_title("per family (red: seen in training, blue: unseen)" if seen_known
                   else "per family (seen in training: unknown, a run trained elsewhere)")
    left.set_ylabel("SRCC within the family")
    means = [("within_seen_srcc", "mean over seen families", dict(color="tab:red")),
             ("within_unseen_srcc", "mean over unseen families", dict(color="tab:blue")),
             ("within_family_srcc", "mean over all families", dict(color="black"))]
    if not seen_known:
        means = [("within_family_srcc", "mean over all families", dict(color="black"))]
    elif len(seen_flags) == 1:  # one group is every family: its mean is the mean over all, the same curve
        everyone = "seen" if seen_flags.pop() else "unseen"
        means = [("within_family_srcc", f"mean over all families (all {everyone} in training)", dict(color="black"))]
    for column, label, style in means + [("overall_srcc", "overall (all pairs)", dict(color="grey", linestyle="--"))]:
        if within[column].notna().any():
            right.plot(within["epoch"], within[column], marker="o", label=label, **style)
    right.set_title("within-family alignment and the overall SRCC")
    right.legend(fontsize=8)
    for ax in (left, right):
        epoch_axis(ax, marked["epoch"].unique(), log_x, label_rows=2)
    fig.tight_layout()
    _spread_labels(left, labels)
    return fig


def _spread_labels(ax: plt.Axes, labels: list) -> None:
    """Move end-of-line labels apart vertically, at least LABEL_GAP points between neighbours: in order of the
    value they label, each at least a gap above the one below; those pushed past the top come back down in
    order. Needs ``ax``'s final size and limits (after the layout)."""
    labels = [label for label in labels if pd.notna(label.xy[1])]
    if not labels:
        return
    bottom, top = ax.get_ylim()
    height = ax.get_position().height * ax.figure.get_figheight() * 72  # points
    at = {label: (label.xy[1] - bottom) / (top - bottom) * height for label in labels}
    ordered = sorted(labels, key=lambda label: at[label])
    placed = [at[ordered[0]]]
    for label in ordered[1:]:
        placed.append(max(at[label], placed[-1] + LABEL_GAP))
    ceiling = max(height, at[ordered[-1]])
    for k in range(len(placed) - 1, -1, -1):
        placed[k] = min(placed[k], ceiling if k == len(placed) - 1 else placed[k + 1] - LABEL_GAP)
    for label, y in zip(ordered, placed):
        label.xyann = (3, y - at[label])
