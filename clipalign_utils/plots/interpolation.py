"""Weight-interpolation figures: the interpolation path beside the checkpoints' own path in the
alignment–robustness plane (robustness = 1 − normalized noise drop, as in the synthesis' plane)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..metrics.tradeoff import at_chance
from ..prose import counted
from .common import plt
from .tradeoff import hollow, placed

# Why a point has no place in the plane: a model at chance on the noise set has no competence for noise to
# take away (no drop); an IQA SRCC is undefined where the model's distances do not vary.
NO_DROP = "at chance on the noise set (no drop), not drawn"
NO_SRCC = "without an IQA SRCC (undefined), not drawn"


def _finite(values: pd.Series) -> pd.Series:
    return pd.Series(np.isfinite(values.to_numpy(dtype=float)), index=values.index)


def _unplaced(frame: pd.DataFrame) -> list[tuple[pd.Series, str]]:
    """(rows, why) for each reason a row has no place in the plane, those it holds (a row lacking both
    coordinates is in both)."""
    reasons = [(~_finite(frame["iqa_srcc"]), NO_SRCC), (~_finite(frame["noise_drop"]), NO_DROP)]
    return [(rows, why) for rows, why in reasons if rows.any()]


def _alphas(alphas) -> str:
    return ", ".join(f"{a:g}" for a in alphas)


def _checkpoints(ax, path: pd.DataFrame) -> None:
    on_plane = placed(path)
    drawn = path[on_plane]
    if len(drawn):
        # the whole path, broken where a checkpoint has no place (not joined across it)
        ax.plot(path["iqa_srcc"], 1 - path["noise_drop"], color="0.6", lw=1, zorder=1)
        # the colours span the run's epochs, not those of the points drawn (one point spanned 1.8–2.2)
        points = ax.scatter(drawn["iqa_srcc"], 1 - drawn["noise_drop"], c=drawn["epoch"], cmap="viridis", s=30,
                            vmin=path["epoch"].min(), vmax=path["epoch"].max(), zorder=2,
                            label="checkpoints (colour: epoch)")
        ax.figure.colorbar(points, ax=ax, label="epoch")
    # nothing to place, but the reader is told they exist, and why
    for rows, why in _unplaced(path):
        ax.plot([], [], ls="none", label=f"{rows.sum()} of {counted(len(path), 'checkpoint')} {why}")


def _interpolation(ax, rows: pd.DataFrame, with_intervals: bool) -> None:
    rows = rows.sort_values("alpha")
    on_plane = placed(rows)
    drawn = rows[on_plane]
    # every α in order, nan where a point has no place: the line breaks there, not joining its neighbours across it
    x, y = rows["iqa_srcc"].where(on_plane), (1 - rows["noise_drop"]).where(on_plane)
    if with_intervals and len(drawn):
        ax.errorbar(x, y, xerr=[x - rows["iqa_srcc_lo"], rows["iqa_srcc_hi"] - x],
                    yerr=[rows["noise_drop_hi"] - rows["noise_drop"], rows["noise_drop"] - rows["noise_drop_lo"]],
                    color="crimson", ls="--", marker="s", ms=5, capsize=2, zorder=3, label="θ(α), mean ± 95 % t interval")
    elif len(drawn):
        ax.plot(x, y, color="crimson", ls="--", marker="s", ms=5, zorder=3, label="θ(α)")
    for alpha, xi, yi in zip(drawn["alpha"], x[on_plane], y[on_plane]):
        ax.annotate(f"α={alpha:g}", (xi, yi), textcoords="offset points", xytext=(5, 4), fontsize=8, color="crimson")
    for left_out, why in _unplaced(rows):
        where = "every α" if left_out.all() else f"α = {_alphas(rows.loc[left_out, 'alpha'])}"
        ax.plot([], [], ls="none", label=f"θ(α), {where}: {why}")


def interpolation_plane(path: pd.DataFrame, rows: pd.DataFrame, title: str, with_intervals: bool = False):
    """The checkpoints' path (``path``: epoch, iqa_srcc, noise_drop) and the interpolation path (``rows``:
    alpha, iqa_srcc, noise_drop, with their _lo/_hi when ``with_intervals``) in one plane; a checkpoint or α
    without a drop (at chance on the noise set) or without an IQA SRCC is not drawn (θ(α)'s line breaks there),
    and the legend counts it by its reason."""
    fig, ax = plt.subplots(figsize=(7, 5))
    _checkpoints(ax, path)
    _interpolation(ax, rows, with_intervals)
    ax.set(xlabel="IQA alignment (SRCC)", ylabel="robustness (1 − normalized noise drop)", title=title)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return fig


# Each panel's measure, its axis label, and why it can be undefined at an α.
MEASURES = (("iqa_srcc", "IQA alignment (SRCC)", "no SRCC"),
            ("shape_bias", "shape bias", "no cue-conflict decision"),
            ("noise_drop", "normalized noise drop", "clean accuracy at chance: no drop"))


def measures_vs_alpha(rows: pd.DataFrame, title: str):
    """IQA SRCC, shape bias and normalized noise drop against α, each with its interval where it has one. As
    on the synthesis' page, a classification measure of a model at chance on its own set (``shape_at_chance``,
    ``at_chance`` when ``rows`` has them) is a hollow point left out of the trend; an undefined value is said
    in its panel. The trend joins its neighbours across an at-chance α, as the synthesis' trends do (the hollow
    point beside it shows what it skips); it breaks at an α whose value is undefined (nothing drawn there)."""
    rows = rows.sort_values("alpha")
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    for ax, (column, label, undefined_because) in zip(axes, MEASURES):
        values = rows[column].astype(float)
        chance, defined = at_chance(rows, column), _finite(values)
        # the at-chance points apart (hollow), the undefined ones kept as nan: the line and band break there
        trend = ~(defined & chance)
        if (trend & defined).any():
            ax.plot(rows.loc[trend, "alpha"], values[trend], marker="o", color="crimson")
            if f"{column}_lo" in rows.columns and rows.loc[trend, f"{column}_lo"].notna().any():
                ax.fill_between(rows.loc[trend, "alpha"], rows.loc[trend, f"{column}_lo"].astype(float),
                                rows.loc[trend, f"{column}_hi"].astype(float), alpha=0.2, color="crimson")
        if (defined & chance).any():
            ax.scatter(rows.loc[defined & chance, "alpha"], values[defined & chance], s=30,
                       **hollow("crimson", "at chance (left out of the trend)"))
            ax.legend(fontsize=7)
        if not defined.any():  # an empty panel would read as a figure that failed to draw
            ax.text(0.5, 0.5, f"undefined at every α\n({undefined_because})", transform=ax.transAxes, ha="center",
                    va="center", fontsize=8, color="grey")
            ax.set_yticks([])  # a scale of nothing
        elif not defined.all():
            ax.text(0.02, 0.02, f"undefined at α = {_alphas(rows.loc[~defined, 'alpha'])} ({undefined_because})",
                    transform=ax.transAxes, fontsize=7, color="grey")
        ax.set(xlabel="α (0 = from, 1 = to)", ylabel=label, xlim=(-0.05, 1.05))
    fig.suptitle(title)
    fig.tight_layout()
    return fig
