"""Shared figure helpers: one style, atomic saving into RUN_DIR/figures."""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import seaborn as sns

from ..io import atomic_write
from ..layout import RunDir

sns.set_theme(context="notebook", style="whitegrid")


def save_figure(fig: plt.Figure, run_dir: str | Path, name: str) -> None:
    """Save `fig` as RUN_DIR/figures/<name>.png (written under a temporary name, then renamed).

    Returns nothing, so a notebook cell ending in this call shows the figure, not a path."""
    atomic_write(RunDir(run_dir).figure(name), lambda tmp: fig.savefig(tmp, dpi=120, bbox_inches="tight"))


def epoch_axis(ax: plt.Axes, epochs, log_x: bool = False) -> None:
    """Epoch x-axis; with log_x, a symlog scale that keeps epoch 0 and spreads the first pass."""
    ax.set_xlabel("epoch")
    if log_x:
        ax.set_xscale("symlog", linthresh=min([e for e in epochs if e > 0], default=1.0))
