"""Shared figure helpers: one style, atomic saving into RUN_DIR/figures."""
from __future__ import annotations

import base64
import functools
import io
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import matplotlib.textpath
import matplotlib.ticker
import numpy as np
import seaborn as sns

from ..io import atomic_write
from ..layout import RunDir

SAVED_DPI = 120  # the figures' files (the book shows them at the notebook's size)

# Titles sit at the top of their axes (axes.titley 1.0). matplotlib's automatic position (titley None)
# measures every axis's tick labels at each draw to clear what sits on top: a fifth of a page's drawing
# time, for figures that have nothing there. The axes that do get a top axis ask for it (top_axis).
sns.set_theme(context="notebook", style="whitegrid", rc={"axes.titley": 1.0})


def save_figure(fig: plt.Figure, run_dir: str | Path, name: str) -> None:
    """Save `fig` as RUN_DIR/figures/<name>.png (written under a temporary name, then renamed).

    Returns nothing, so a notebook cell ending in this call shows the figure, not a path. A streamed
    trajectory whose source counts samples per epoch (``RUN_DIR/source.json``) gets samples seen on top of
    every epoch axis (:func:`samples_axis`).
    In a notebook (matplotlib's inline backend) the figure is shown from the same PNG and closed, so it is
    drawn once rather than a second time by the backend at the end of the cell; it keeps the size the
    backend would show it at."""
    manifest = RunDir(run_dir).source_manifest()
    if manifest and manifest.get("samples_per_epoch"):
        samples_axis(fig, float(manifest["samples_per_epoch"]))
    png = png_bytes(fig)
    atomic_write(RunDir(run_dir).figure(name), lambda tmp: tmp.write_bytes(png))
    if "inline" in matplotlib.get_backend():
        from IPython.display import display

        width = round(_png_width(png) * fig.dpi / SAVED_DPI)
        # base64, as the notebook format stores a PNG
        display({"image/png": base64.b64encode(png).decode("ascii"), "text/plain": repr(fig)}, raw=True,
                metadata={"image/png": {"width": width}})
        plt.close(fig)


def png_bytes(fig: plt.Figure) -> bytes:
    """``fig`` as the book's figure files are written: PNG at SAVED_DPI, cropped to what is drawn."""
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=SAVED_DPI, bbox_inches="tight")
    return png.getvalue()


def _png_width(png: bytes) -> int:
    return int.from_bytes(png[16:20], "big")  # the IHDR chunk's width


def samples_axis(fig: plt.Figure, samples_per_epoch: float) -> None:
    """A second x-axis, samples seen (billions), on top of each of ``fig``'s axes whose x-axis is the epoch
    (a public trajectory's epoch is a fixed number of samples)."""
    per_epoch = samples_per_epoch / 1e9
    for ax in fig.axes:
        if ax.get_xlabel() == "epoch" and not getattr(ax, "_samples_axis", False):
            top = top_axis(ax, (lambda e: e * per_epoch, lambda s: s / per_epoch))
            top.set_xlabel("samples seen (billions)")
            ax._samples_axis = True


def top_axis(ax: plt.Axes, functions) -> plt.Axes:
    """A secondary x-axis on top of ``ax`` (``functions``: forward and inverse), with ``ax``'s title placed
    above it (the theme fixes titles at the top of the axes; this one is measured again at each draw)."""
    ax._autotitlepos = True  # matplotlib's own flag for "position the title automatically"
    return ax.secondary_xaxis("top", functions=functions)


def legend_below(fig: plt.Figure, handles: list, max_columns: int) -> None:
    """One legend for all of ``fig``'s panels, under them, where it covers none of their data; the figure grows
    by the legend's height and its panels are laid out above it."""
    if not handles:  # nothing to name: the panels keep the whole figure
        fig.tight_layout()
        return
    columns = min(len(handles), max_columns)
    legend_height = 0.22 * -(-len(handles) // columns) + 0.15  # inches: a line of entries each, and a margin
    height = fig.get_figheight()
    fig.set_figheight(height + legend_height)
    fig.legend(handles=handles, loc="lower center", ncol=columns, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, legend_height / (height + legend_height), 1, 1))


MANY_EPOCHS = 12  # distinct epochs past which an epoch axis ticks log-style rather than at each epoch


def epoch_axis(ax: plt.Axes, epochs, log_x: bool = False, label_rows: int = 1) -> None:
    """Epoch x-axis; with log_x, a symlog scale that keeps epoch 0 and spreads the first pass, limited to
    ``epochs`` (every epoch the figure shows) so that no axis reaches into negative epochs.

    The symlog axis labels epochs plainly ("0", "0.25", "2"), not as powers of ten: up to MANY_EPOCHS distinct
    epochs, one tick at each; past that, decades, the first and the last epoch, then 2 and 5 times a decade.
    A label that would touch one already placed (first, last and whole epochs are placed first) is left out
    (:class:`_EpochTicks`), its epoch keeping a minor tick; with ``label_rows`` 2 (up to MANY_EPOCHS epochs), it
    goes a line lower where it clears that line's labels."""
    ax.set_xlabel("epoch")
    if not log_x:
        return
    epochs = np.asarray(list(epochs), dtype=float)
    epochs = np.unique(epochs[np.isfinite(epochs)])
    positive = epochs[epochs > 0]
    unit = positive.min() if positive.size else 1.0
    ax.set_xscale("symlog", linthresh=unit)
    if not epochs.size:
        return
    # symlog's autoscaled margin, taken in the scaled space, can open a stretch of negative epochs (a "−10⁻¹"
    # tick); a sliver left of the first epoch instead (fixed limits: later plotting keeps them). Epoch 0 alone
    # reaches to epoch 1 (the linear stretch).
    ax.set_xlim(epochs[0] - 0.15 * unit, epochs[-1] * 1.25 if positive.size else unit)
    # past MANY_EPOCHS the candidates are a log axis' choice, not every epoch: thinned, not stacked
    locator = _EpochTicks(_tick_candidates(epochs), label_rows if len(epochs) <= MANY_EPOCHS else 1)
    ax.xaxis.set_major_locator(locator)
    # a label on a lower row: leading line breaks (the label hangs from its tick)
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(
        lambda epoch, _: "\n" * locator.rows.get(epoch, 0) + epoch_label(epoch)))
    if len(epochs) <= MANY_EPOCHS:
        ax.xaxis.set_minor_locator(matplotlib.ticker.FixedLocator(epochs))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())


def epoch_label(epoch: float) -> str:
    """An epoch as its tick reads: plain, to three significant digits ("0", "0.125", "2.67", "32")."""
    return f"{epoch + 0.0:.0f}" if epoch == round(epoch) else f"{epoch:.3g}"  # + 0.0: no "-0"


def _tick_candidates(epochs: np.ndarray) -> list[float]:
    """Where the epoch axis (``epochs``: sorted, distinct) may have a labelled tick, most wanted first: the first
    and the last epoch, then decades; then whole epochs and the rest (a few epochs), or the first positive epoch
    and 2 and 5 times a decade (many)."""
    first, last = epochs[0], epochs[-1]
    positive = epochs[epochs > 0]
    decades = []
    if positive.size:
        powers = np.arange(np.floor(np.log10(positive[0])), np.ceil(np.log10(last)) + 1)
        decades = [float(d) for d in 10.0 ** powers]  # covering the epochs' logarithmic stretch
    if len(epochs) <= MANY_EPOCHS:
        ordered = [first, last, *[d for d in decades if d in epochs], *[e for e in epochs if e == round(e)], *epochs]
    else:
        def within(values):  # the logarithmic stretch only: below the first positive epoch the axis is linear
            return [v for v in values if positive[0] <= v <= last]

        ordered = [first, last, *within(decades), positive[0], *within([m * d for m in (2, 5) for d in decades])]
    return [float(e) for e in dict.fromkeys(ordered)]  # each once, in order


@functools.lru_cache(maxsize=1024)  # asked at every draw of every axis (32 times a figure): measured once
def _label_width(label: str, font) -> float:
    """``label``'s width in points in ``font`` (a FontProperties: hashed by its properties)."""
    return matplotlib.textpath.text_to_path.get_text_width_height_descent(label, font, False)[0]


class _EpochTicks(matplotlib.ticker.Locator):
    """Major ticks at ``candidates`` (most wanted first), each kept where its label clears those already kept
    on one of ``label_rows`` lines (the first that has room) by half a character; ``rows`` maps a kept tick to
    its line, for the formatter. Measured at each draw, so at the width the axes are laid out at."""

    def __init__(self, candidates: list[float], label_rows: int = 1):
        self.candidates = candidates
        self.label_rows = label_rows
        self.rows: dict[float, int] = {}

    def __call__(self):
        return self.tick_values(*self.axis.get_view_interval())

    def tick_values(self, vmin, vmax):
        low, high = sorted((vmin, vmax))
        shown = [e for e in self.candidates if low <= e <= high]
        if self.axis is None or not shown:
            return sorted(shown)
        font = self.axis.get_major_ticks(1)[0].label1.get_fontproperties()
        points_to_pixels = self.axis.figure.dpi / 72
        gap = 0.5 * font.get_size_in_points()  # points between two labels, at least
        centres = self.axis.axes.transData.transform([(e, 0) for e in shown])[:, 0]
        extents = [[] for _ in range(self.label_rows)]
        self.rows = {}
        for epoch, centre in zip(shown, centres):
            half = (_label_width(epoch_label(epoch), font) + gap) / 2 * points_to_pixels
            for row, placed in enumerate(extents):
                if all(centre + half <= left or centre - half >= right for left, right in placed):
                    self.rows[epoch] = row
                    placed.append((centre - half, centre + half))
                    break
        return sorted(self.rows)
