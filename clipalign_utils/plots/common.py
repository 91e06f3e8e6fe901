"""Shared figure helpers: one style, atomic saving into RUN_DIR/figures."""
from __future__ import annotations

import base64
import io
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
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
    columns = min(len(handles), max_columns)
    legend_height = 0.22 * -(-len(handles) // columns) + 0.15  # inches: a line of entries each, and a margin
    height = fig.get_figheight()
    fig.set_figheight(height + legend_height)
    fig.legend(handles=handles, loc="lower center", ncol=columns, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, legend_height / (height + legend_height), 1, 1))


def epoch_axis(ax: plt.Axes, epochs, log_x: bool = False) -> None:
    """Epoch x-axis; with log_x, a symlog scale that keeps epoch 0 and spreads the first pass, limited to
    ``epochs`` (every epoch the figure shows) so that no axis reaches into negative epochs."""
    ax.set_xlabel("epoch")
    if not log_x:
        return
    epochs = np.asarray(list(epochs), dtype=float)
    epochs = epochs[np.isfinite(epochs)]
    positive = epochs[epochs > 0]
    ax.set_xscale("symlog", linthresh=positive.min() if positive.size else 1.0)
    if positive.size:
        # symlog's autoscaled margin, taken in the scaled space, can open a stretch of negative epochs (a
        # "−10⁻¹" tick); a sliver left of the first epoch instead (fixed limits: later plotting keeps them)
        ax.set_xlim(epochs.min() - 0.15 * positive.min(), epochs.max() * 1.25)
