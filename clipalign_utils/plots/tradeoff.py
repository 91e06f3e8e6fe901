"""Synthesis figures: the paper's Fig. 1 layout, the alignment–robustness plane, pairwise relations."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .. import registry
from ..metrics.tradeoff import at_chance
from ..prose import counted
from .common import epoch_axis, legend_below, plt


# From this many groups on, an interval is its outline: a sweep's ten translucent fills stacked where the settings'
# curves coincide (every setting at chance at epoch 0, the sigmas settings' clean accuracy the base run's) into dark
# bands of mixed colour that no setting's interval is.
OUTLINED_GROUPS = 4


def _interval(ax, x, lo, hi, color, outlined: bool, alpha: float = 0.2):
    """An interval band: filled, or (``outlined``) its edge alone, which does not darken where bands overlap."""
    if outlined:
        ax.fill_between(x, lo, hi, facecolor="none", edgecolor=color, lw=0.6, alpha=0.6)
    else:
        ax.fill_between(x, lo, hi, alpha=alpha, color=color)


def _band(ax, x, y, lo, hi, label, color=None, outlined: bool = False):
    line, = ax.plot(x, y, marker="o", ms=3, label=label, color=color)
    if lo is not None:
        _interval(ax, x, lo, hi, line.get_color(), outlined)


def extra_panels() -> list[tuple[str, str, str]]:
    """The panels after the paper's four, (column, y label, title): one per registered step whose summary
    has a ``panel`` (the similarity and saliency steps), lettered (e), (f), … in step order."""
    panels = [(summary.column, *summary.panel) for _, summary in registry.summaries() if summary.panel]
    return [(column, ylabel, f"({chr(ord('e') + i)}) {title}") for i, (column, ylabel, title) in enumerate(panels)]


def _extra_panels(table: pd.DataFrame) -> list[tuple[str, str, str]]:
    """The extra panels whose column ``table`` has with a finite value."""
    return [panel for panel in extra_panels()
            if panel[0] in table.columns and np.isfinite(table[panel[0]].to_numpy(dtype=float)).any()]


# The relations' axes, named as the summary figure's panels name them.
MEASURE_LABELS = {"iqa_srcc": "IQA alignment (SRCC)", "texture_bias": "texture bias (1 − shape bias)",
                  "noise_drop": "normalized noise drop (mean over σ)"}


def hollow(color="grey", label="clean accuracy at chance (left out)") -> dict:
    """The markers of at-chance checkpoints, which every trend of a classification measure leaves out."""
    return dict(facecolors="none", edgecolors=color, lw=1.2, label=label)


def group_handles(groups, hollow_label: str | None = None) -> list:
    """Legend entries of a figure-wide legend: a line per (colour, label) of ``groups`` and, with ``hollow_label``,
    the hollow point of the at-chance checkpoints (:func:`hollow`)."""
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=color, marker="o", ms=3, label=label) for color, label in groups]
    if hollow_label:
        handles.append(Line2D([], [], ls="none", marker="o", markerfacecolor="none", markeredgecolor="grey",
                              label=hollow_label))
    return handles


def placed(frame: pd.DataFrame) -> pd.Series:
    """The rows with a place in the alignment–robustness plane: both iqa_srcc and noise_drop defined."""
    both = np.isfinite(frame[["iqa_srcc", "noise_drop"]].to_numpy(dtype=float)).all(axis=1)
    return pd.Series(both, index=frame.index)


def _draw_plane(fig, ax, table: pd.DataFrame, on_front: np.ndarray, selected=None, title="alignment–robustness plane"):
    left_out = at_chance(table)
    weighed = table[~left_out]
    points = ax.scatter(weighed["iqa_srcc"], 1 - weighed["noise_drop"], c=weighed["epoch"], cmap="viridis", s=40,
                        vmin=table["epoch"].min(), vmax=table["epoch"].max(), zorder=3)
    if placed(weighed).any():
        fig.colorbar(points, ax=ax, label="epoch")  # (a scale of no point's colour, else)
    drawable = left_out & np.isfinite(table["noise_drop"].astype(float))  # a seed mean may hold the others' drop
    if drawable.any():
        ax.scatter(table.loc[drawable, "iqa_srcc"], 1 - table.loc[drawable, "noise_drop"], s=40, zorder=3,
                   **hollow())
    undefined = int((left_out & ~drawable).sum())
    if undefined:  # nothing to place on the robustness axis, but the reader is told they exist
        ax.plot([], [], ls="none", label=f"{counted(undefined, 'checkpoint')} at chance: "
                                         "no drop, not drawn")
    front = table[on_front].sort_values("iqa_srcc")
    # a front of one checkpoint draws no line: no legend entry for it (the page's sentence names it)
    ax.plot(front["iqa_srcc"], 1 - front["noise_drop"], color="crimson", lw=1.5, zorder=2,
            label="Pareto front" if len(front) > 1 else "_nolegend_")
    if selected is not None:
        row = table.loc[selected]
        ax.scatter([row["iqa_srcc"]], [1 - row["noise_drop"]], marker="*", s=300, facecolor="none",
                   edgecolor="black", label=f"selected: {row['checkpoint']}", zorder=4)
    ax.set(xlabel="IQA alignment (SRCC)", ylabel="robustness (1 − normalized noise drop)", title=title)
    if not placed(table).any():
        _nothing_drawn(ax, "no checkpoint to place:\nnone has both an SRCC and a drop")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)


def _nothing_drawn(ax, why: str) -> None:
    """An empty panel would read as a figure that failed to draw: it says why it is empty."""
    ax.text(0.5, 0.5, why, transform=ax.transAxes, ha="center", va="center", fontsize=8, color="grey")


def alignment_robustness_plane(means: pd.DataFrame, on_front: np.ndarray, selected: dict, by: str = "scale"):
    """IQA alignment vs robustness (1 − normalized drop), checkpoints coloured by epoch, the Pareto front
    joined and the selected checkpoint starred: one panel per group (``by``) of the per-epoch seed means;
    ``selected`` maps a group to its selected row label. A title says where a drawn drop is a mean over fewer
    seeds than the group's (those above chance alone)."""
    scales = list(dict.fromkeys(means[by]))
    fig, axes = plt.subplots(1, len(scales), figsize=(6 * len(scales), 4.5), squeeze=False)
    for ax, scale in zip(axes.flat, scales):
        rows = means[by] == scale
        n_seeds = int(means.loc[rows, "n_seeds"].max())
        title = f"{scale}: mean over {n_seeds} seeds" if n_seeds > 1 else f"{scale}: one run"
        if n_seeds > 1 and _drop_over_fewer_seeds(means[rows]):
            title += "\n(the drop over fewer where some are at chance)"
        _draw_plane(fig, ax, means[rows], np.asarray(on_front)[rows.to_numpy()], selected.get(scale), title=title)
    fig.tight_layout()
    return fig


def _drop_over_fewer_seeds(means: pd.DataFrame) -> bool:
    """Whether a drawn point's drop (a finite one) is a mean over fewer seeds than the group holds: seed_means
    averages a drop over the seeds above chance alone (n_above_chance)."""
    if "n_above_chance" not in means.columns:
        return False
    drawn = np.isfinite(means["noise_drop"].to_numpy(dtype=float))
    return bool((means.loc[drawn, "n_above_chance"] < means.loc[drawn, "n_seeds"]).any())


def group_colors(scales) -> dict:
    palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    return {scale: palette[i % len(palette)] for i, scale in enumerate(scales)}


def summary_figure(means: pd.DataFrame, noise_means: pd.DataFrame, by: str = "scale", log_x: bool = True,
                   clean_only: bool = False):
    """Four panels vs epoch, as in the paper's Fig. 1: (a) clean and noisy zero-shot accuracy,
    (b) IQA alignment, (c) texture bias, (d) normalized noise drop; then, when the table has them,
    (e) the overall 2AFC similarity score and (f) saliency shuffled AUC, each with its interval band.

    ``means`` and ``noise_means`` are per-epoch seed means (``metrics.tradeoff.seed_means``) grouped by the
    column ``by`` (``scale``, a sweep's ``setting``): one colour per group, each band its 95 % t-interval
    over seeds; one run is a group of one and keeps its own intervals. In (a) the line style tells the
    noise level; ``clean_only`` draws clean accuracy alone, for many groups. In (c) and (d) the checkpoints
    at chance for the panel's measure (``shape_at_chance``, ``at_chance``: ``metrics.tradeoff.at_chance``),
    which the trends leave out, are hollow points off the line; in (d), where a drop is undefined (a clean
    accuracy at chance), a cross on 0, as page 4 marks it, or in a row of its own below the drops where a drawn
    drop of about 0 lies at its epoch (``_undefined_row``), beneath any defined point."""
    if clean_only:
        noise_means = noise_means[noise_means["sigma"] == 0]
    scales = list(dict.fromkeys(means[by]))
    colors = group_colors(scales)
    styles = ["-", "--", ":", "-.", (0, (5, 1, 1, 1, 1, 1)), (0, (1, 3))]
    extra = _extra_panels(means)
    fig, axes = plt.subplots(1, 4 + len(extra), figsize=(17 + 4.2 * len(extra), 3.8))
    sigma_styles = {sigma: styles[i % len(styles)] for i, sigma in enumerate(sorted(noise_means["sigma"].unique()))}
    scale_labels, drew_at_chance, drew_undefined = {}, False, False
    outlined = len(scales) >= OUTLINED_GROUPS
    undefined_row = _undefined_row(means)
    for scale in scales:
        color = colors[scale]
        n_seeds = int(means.loc[means[by] == scale, "n_seeds"].max())
        label = scale_labels[scale] = f"{scale} ({counted(n_seeds, 'seed')})"
        for sigma, rows in noise_means[noise_means[by] == scale].groupby("sigma"):
            rows = rows.sort_values("epoch")
            axes[0].plot(rows["epoch"], rows["accuracy"], ls=sigma_styles[sigma], marker="o", ms=2, color=color,
                         label=f"{scale}, " + ("clean" if sigma == 0 else f"σ={sigma:g}"))
            # an accuracy lies in [0, 1]: a t-interval over two seeds can reach far past either end
            _interval(axes[0], rows["epoch"], rows["accuracy_lo"].clip(0, 1), rows["accuracy_hi"].clip(0, 1), color,
                      outlined, alpha=0.12)
        rows = means[means[by] == scale].sort_values("epoch")
        _band(axes[1], rows["epoch"], rows["iqa_srcc"], rows["iqa_srcc_lo"], rows["iqa_srcc_hi"], label, color,
              outlined)
        # The classification measures: the trend's checkpoints joined, the at-chance ones apart and hollow.
        # (each by its own classifier's chance: the cue-conflict decisions, the clean accuracy)
        for ax, measure, values, lo, hi in ((axes[2], "texture_bias", 1 - rows["shape_bias"], 1 - rows["shape_bias_hi"],
                                             1 - rows["shape_bias_lo"]),
                                            (axes[3], "noise_drop", rows["noise_drop"], rows["noise_drop_lo"],
                                             rows["noise_drop_hi"])):
            chance = at_chance(rows, measure)
            _band(ax, rows.loc[~chance, "epoch"], values[~chance], lo[~chance], hi[~chance], label, color, outlined)
            defined = chance & np.isfinite(values.astype(float))
            if defined.any():
                drew_at_chance = True
                ax.scatter(rows.loc[defined, "epoch"], values[defined], s=16,
                           **hollow(color, f"{scale}: at chance (left out)"))
            if measure == "noise_drop" and (chance & ~defined).any():  # no drop (an accuracy at chance has
                drew_undefined = True                                     # none to lose): a cross (_undefined_row)
                # beneath every defined point, hollow ones (zorder 1) included, above the grid (0.5)
                ax.scatter(rows.loc[chance & ~defined, "epoch"], np.full(int((chance & ~defined).sum()), undefined_row),
                           s=30, marker="x", color=color, lw=1.2, zorder=0.9)
        for ax, (column, _, _) in zip(axes[4:], extra):
            _band(ax, rows["epoch"], rows[column], rows[f"{column}_lo"], rows[f"{column}_hi"], label, color,
                  outlined)
    axes[0].set(ylabel="zero-shot accuracy",
                title="(a) clean accuracy" if clean_only else "(a) accuracy, clean and noisy")
    axes[1].set(ylabel="SRCC with quality judgments", title="(b) IQA alignment")
    axes[2].set(ylabel="texture bias (1 − shape bias)", title="(c) texture bias", ylim=(0, 1))
    axes[3].set(ylabel=MEASURE_LABELS["noise_drop"], title="(d) accuracy drop under noise")
    for ax, (_, ylabel, title) in zip(axes[4:], extra):
        ax.set(ylabel=ylabel, title=title)
    chances = {}  # chance level → the extra panels drawn with it (the step's Summary.chance), for the legend
    for ax, (column, _, title) in zip(axes[4:], extra):
        summary = registry.summary_of(column)
        if summary is not None and summary.chance is not None:
            ax.axhline(summary.chance, color="grey", ls="--", lw=0.8, zorder=0.8)
            chances.setdefault(summary.chance, []).append(title.split(" ")[0])
    epochs = np.unique(means["epoch"].to_numpy(dtype=float))
    for ax in axes:  # every run's epochs: the same range on every panel, whatever a panel lacks
        epoch_axis(ax, epochs, log_x)
    if drew_undefined and undefined_row < 0:
        _no_ticks_below(axes[3], _drawn_drops(means).min())
    if means["n_seeds"].max() > 1:
        fig.suptitle("mean over seeds, band: 95 % t-interval over seeds (a single seed: its own intervals)",
                     fontsize=9)
    _legend_below(fig, axes, [(colors[scale], scale_labels[scale]) for scale in scales],
                  [] if clean_only else [(style, "clean" if sigma == 0 else f"σ={sigma:g}")
                                         for sigma, style in sigma_styles.items()],
                  hollow=drew_at_chance, crossed=drew_undefined, crosses_at=undefined_row, chances=chances)
    return fig


def _undefined_row(means: pd.DataFrame) -> float:
    """Where (d)'s crosses go: on 0, as page 4 draws them, unless a drawn drop (a line's point or a hollow one) of
    about 0 lies at a cross's epoch (an at-chance drop of another group, with nothing left to lose: the two read
    as one blot); then in a row below every drawn drop and interval bound, by a twelfth of their span (a row
    below 0 where nothing needed it read as drops of −0.05)."""
    values = means["noise_drop"].to_numpy(dtype=float)
    defined = np.isfinite(values)
    undefined_at = set(means.loc[at_chance(means, "noise_drop").to_numpy() & ~defined, "epoch"])
    drawn = _drawn_drops(means)
    span = drawn.max() - drawn.min()
    near_0 = np.abs(values) <= span / 50  # (span 0: exactly 0)
    if not (defined & near_0 & means["epoch"].isin(undefined_at).to_numpy()).any():
        return 0.0
    return float(drawn.min() - (span / 12 if span > 0 else 0.05))


def _drawn_drops(means: pd.DataFrame) -> np.ndarray:
    """(d)'s drawn values: every defined drop and interval bound, and 0."""
    drawn = means[["noise_drop", "noise_drop_lo", "noise_drop_hi"]].to_numpy(dtype=float)
    return np.append(drawn[np.isfinite(drawn)], 0.0)


def _no_ticks_below(ax, lowest: float) -> None:
    """No tick label below ``lowest`` (the crosses' row beneath the drops is no value: a smoke sweep's crosses on
    its one tick below 0, −0.05, read as drops of −0.05); the limits stay."""
    bottom, top = ax.get_ylim()
    span = top - bottom
    ax.set_yticks([tick for tick in ax.get_yticks() if tick >= lowest - 1e-9 * max(span, 1.0)])
    ax.set_ylim(bottom, top)


def _legend_below(fig, axes, groups: list[tuple], styles: list[tuple], hollow: bool, crossed: bool = False,
                  crosses_at: float = 0.0, chances: dict | None = None) -> None:
    """One legend for every panel, under them: a many-group figure's per-panel legends hid its curves.
    ``groups``: (colour, label); ``styles``: (line style, noise level) of panel (a); ``hollow``: whether any
    at-chance point is drawn; ``crossed``: whether any checkpoint without a drop is marked on (d), at
    ``crosses_at`` (0, or a row below the drops); ``chances``: chance level → the panels ("(e)") with its dashed
    line."""
    from matplotlib.lines import Line2D

    handles = group_handles(groups)
    handles += [Line2D([], [], color="grey", ls=style, label=f"(a) {label}") for style, label in styles]
    if hollow:
        handles += group_handles([], "(c), (d): at chance, left out of the trend")
    if crossed:
        handles.append(Line2D([], [], ls="none", marker="x", color="grey",
                              label=f"(d) {'on 0' if crosses_at == 0 else 'below the drops'}: clean accuracy at "
                                    "chance, drop undefined"))
    handles += [Line2D([], [], color="grey", ls="--", lw=0.8, label=f"{', '.join(panels)}: chance ({chance:g})")
                for chance, panels in (chances or {}).items()]
    legend_below(fig, handles, max_columns=max(1, len(axes)))


def relation_panels(means: pd.DataFrame, relations: pd.DataFrame, by: str = "scale"):
    """One scatter per pair of per-checkpoint measures on the per-epoch seed means, one colour per group
    (``by``), each group's Spearman rho and p in the title; where a pair has a classification measure, the
    at-chance checkpoints its rho leaves out are drawn hollow."""
    scales = list(dict.fromkeys(means[by]))
    colors = group_colors(scales)
    pairs = list(dict.fromkeys(zip(relations["x"], relations["y"])))
    fig, axes = plt.subplots(1, len(pairs), figsize=(5 * len(pairs), 3.8), squeeze=False)
    data = means.assign(texture_bias=1 - means["shape_bias"])
    for ax, (x, y) in zip(axes.flat, pairs):
        titles = []
        for scale in scales:
            rows = data[data[by] == scale]
            left_out = at_chance(rows, x) | at_chance(rows, y)  # a measure's own classifier at chance
            # a point needs both measures (an at-chance drop is undefined): a legend entry only for what is drawn
            placed = np.isfinite(rows[[x, y]].to_numpy(dtype=float)).all(axis=1)
            if (placed & ~left_out).any():
                ax.scatter(rows.loc[placed & ~left_out, x], rows.loc[placed & ~left_out, y], s=25,
                           color=colors[scale], label=scale)
            if (placed & left_out).any():
                ax.scatter(rows.loc[placed & left_out, x], rows.loc[placed & left_out, y], s=25,
                           **hollow(colors[scale], f"{scale}: at chance (left out)"))
            rel = relations[(relations[by] == scale) & (relations["x"] == x) & (relations["y"] == y)].iloc[0]
            titles.append(f"{scale}: ρ={rel['spearman']:.2f}, p={rel['p_value']:.3f}" if np.isfinite(rel["spearman"])
                          else f"{scale}: ρ undefined ({counted(int(rel['n']), 'checkpoint')})")
        ax.set(xlabel=MEASURE_LABELS.get(x, x), ylabel=MEASURE_LABELS.get(y, y))
        ax.set_title("\n".join(titles), fontsize=8)
        if not ax.collections:
            _nothing_drawn(ax, "no checkpoint has both measures")
        if ax.get_legend_handles_labels()[0]:  # a panel with no point has nothing to name
            ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
