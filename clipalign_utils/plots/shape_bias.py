"""Shape-bias figures: bias over training, shape/texture/neither fractions, a per-class panel in
the manner of model-vs-human's shape-bias plot, and cue-conflict examples titled with decisions."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from ..metrics.tradeoff import at_chance
from .common import epoch_axis, legend_below, plt, top_axis
from .world import image_grid

HUMAN_COLOUR = (165 / 255, 30 / 255, 55 / 255)  # model-vs-human's colour for human observers
EARLY_COLOUR, LAST_COLOUR = "tab:orange", "tab:blue"


def _human_line(ax, human_reference: float | None, label: str, vertical: bool = False) -> None:
    if human_reference is None:
        return
    draw = ax.axvline if vertical else ax.axhline
    draw(human_reference, color=HUMAN_COLOUR, ls="--", lw=1.2, label=label)


def shape_bias_curve(table: pd.DataFrame, human_reference: float | None = None,
                     human_label: str = "humans (literature)", log_x: bool = True):
    """Shape bias vs epoch with its bootstrap CI band; 0.5 = no preference; optional human line. Checkpoints
    whose cue-conflict decisions are at chance (``shape_at_chance``), which the shift and the synthesis' trend
    leave out, are hollow points off the line, as the synthesis draws them."""
    table = table.sort_values("epoch")
    chance = at_chance(table, "shape_bias")
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    above = table[~chance]
    if len(above):  # every checkpoint at chance: no curve, and no legend entry for one
        ax.fill_between(above["epoch"], above["lo"], above["hi"], alpha=0.25, color=LAST_COLOUR, lw=0,
                        label="95 % bootstrap CI")
        ax.plot(above["epoch"], above["shape_bias"], "o-", color=LAST_COLOUR, ms=4, label="model")
    if chance.any():
        ax.scatter(table.loc[chance, "epoch"], table.loc[chance, "shape_bias"], s=22, facecolors="none",
                   edgecolors=LAST_COLOUR, lw=1.2, zorder=3, label="at chance on the cue-conflict images (left out)")
    ax.axhline(0.5, color="grey", lw=0.8, ls=":", label="no preference")
    _human_line(ax, human_reference, human_label)
    epoch_axis(ax, table["epoch"].tolist(), log_x)
    ax.set(ylim=(-0.02, 1.02), ylabel="shape bias\n(← texture · shape →)",
           title="shape bias on cue-conflict images")
    # under the axes: inside, it hid the human line; beside, it took half the figure's width from the curve
    legend_below(fig, ax.get_legend_handles_labels()[0], max_columns=2)
    return fig


def decision_fractions(table: pd.DataFrame, log_x: bool = True):
    """Stacked fractions of conflicting images classified by shape, by texture, or as neither."""
    table = table.sort_values("epoch")
    fig, ax = plt.subplots(figsize=(6.4, 3.2))
    ax.stackplot(table["epoch"], table["shape_fraction"], table["texture_fraction"], table["neither_fraction"],
                 labels=["shape", "texture", "neither"], colors=[LAST_COLOUR, EARLY_COLOUR, "lightgrey"], alpha=0.85)
    epoch_axis(ax, table["epoch"].tolist(), log_x)
    ax.set(ylim=(0, 1), xlim=(table["epoch"].min(), table["epoch"].max()), ylabel="fraction of decisions",
           title="what the conflicting images are classified as")
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    return fig


def per_class_panel(per_class: pd.DataFrame, overall: pd.DataFrame, checkpoints: Sequence[str],
                    labels: Sequence[str], human_reference: float | None = None,
                    human_label: str = "humans (literature)"):
    """Classes on the y axis, shape bias on the x axis (0 = texture end, 1 = shape end); one marker
    per class for each of `checkpoints`, a vertical line at its overall shape bias (in the legend with its
    value, each checkpoint's line in its own dash so that coinciding lines both show), and the human line.
    A checkpoint at chance on the cue-conflict images (``shape_at_chance`` of ``overall``) is drawn hollow
    and named so, as the curve figure draws it.

    As in model-vs-human, the top axis reads the same position as the fraction of 'texture'
    decisions among cue decisions. Classes are sorted by the last checkpoint's shape bias.
    """
    wide = per_class.pivot_table(index="class", columns="checkpoint", values="shape_bias", dropna=False)
    order = wide[checkpoints[-1]].sort_values(na_position="first").index.tolist()
    guessing = dict(zip(overall["checkpoint"], at_chance(overall, "shape_bias")))
    fig, ax = plt.subplots(figsize=(7.2, 1.2 + 0.38 * len(order)))
    markers, colours = ["o", "s", "^", "D"], [EARLY_COLOUR, LAST_COLOUR, "tab:green", "tab:purple"]
    dashes = ["-", (0, (5, 2, 1, 2)), (0, (1, 2)), (0, (2, 2))]  # none the human line's dashes
    for k, (checkpoint, label) in enumerate(zip(checkpoints, labels)):
        colour = colours[k % len(colours)]
        hollow = guessing.get(checkpoint, False)
        ax.scatter(wide.loc[order, checkpoint], range(len(order)), marker=markers[k % len(markers)], s=60,
                   facecolors="none" if hollow else colour, edgecolors=colour if hollow else (0.3, 0.3, 0.3, 0.3),
                   lw=1.2 if hollow else 1.0, zorder=3, clip_on=False,
                   label=label + (" (at chance on the cue-conflict images)" if hollow else ""))
        bias = float(overall.loc[overall["checkpoint"] == checkpoint, "shape_bias"].iloc[0])
        ax.axvline(bias, color=colour, lw=1.2, ls=dashes[k % len(dashes)], label=f"{label}: overall {bias:.3f}")
    _human_line(ax, human_reference, human_label, vertical=True)
    for y in np.arange(len(order) - 1) + 0.5:
        ax.axhline(y, color="grey", ls=":", alpha=0.4, lw=0.8)
    ax.grid(False)
    ax.set_yticks(range(len(order)), order)
    # a margin beyond 0 and 1: a marker there sat half on the axes' edge
    ax.set(xlim=(-0.04, 1.04), ylim=(-0.5, len(order) - 0.5), xticks=np.linspace(0, 1, 6),
           xlabel="← texture    fraction of 'shape' decisions (shape bias)    shape →", ylabel="shape class")
    top = top_axis(ax, (lambda x: 1 - x, lambda x: 1 - x))
    top.set_xticks(np.linspace(0, 1, 6))
    top.set_xlabel("fraction of 'texture' decisions")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig


def decision_name(predicted: int, shape: int, texture: int, classnames: Sequence[str],
                  texture_names: Sequence[str]) -> str:
    """A decision as a reader sees it: the texture's name for a texture hit (“dots”), the class
    for a shape hit, and the class in parentheses when it matches neither cue."""
    if predicted == texture:
        return texture_names[texture]
    if predicted == shape:
        return classnames[shape]
    return f"({classnames[predicted]})"


def decision_titles(shape_labels, texture_labels, predictions: Sequence[np.ndarray],
                    classnames: Sequence[str], texture_names: Sequence[str]) -> list[str]:
    """'shape·texture → decision | decision …' per image, one decision per predictions array."""
    titles = []
    for k, (shape, texture) in enumerate(zip(shape_labels, texture_labels)):
        decisions = " | ".join(decision_name(p[k], shape, texture, classnames, texture_names) for p in predictions)
        titles.append(f"{classnames[shape]}·{texture_names[texture]}\n→ {decisions}")
    return titles


def cue_conflict_examples(images: np.ndarray, titles: Sequence[str], columns: int = 6, suptitle: str | None = None):
    """A grid of cue-conflict images titled with their cues and the models' decisions."""
    scale = 1.6
    fig = image_grid(images, titles, columns=columns, scale=scale, suptitle=suptitle)
    # image_grid leaves room for one title line; ours have two.
    rows = int(np.ceil(len(images) / columns))
    fig.set_figheight(rows * (scale + 0.6) + (0.4 if suptitle else 0))
    fig.tight_layout()
    return fig
