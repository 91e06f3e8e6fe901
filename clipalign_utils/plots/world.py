"""Grids of example images (the embedded world, cue-conflict images, noisy images)."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .common import plt


def image_grid(images: np.ndarray, titles: Sequence[str] | None = None, columns: int = 8,
               scale: float = 1.2, suptitle: str | None = None):
    """A figure with one small panel per image (uint8 or float in [0, 1]); fewer images than ``columns``
    take one row of that many panels."""
    n = len(images)
    columns = max(1, min(columns, n))  # a short row would leave blank panels beside it
    rows = int(np.ceil(n / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(columns * scale, rows * (scale + (0.3 if titles else 0))),
                             squeeze=False)
    for k, ax in enumerate(axes.flat):
        if k >= n:  # the last row's cells past the last image: no empty axes left in the figure
            fig.delaxes(ax)
            continue
        ax.axis("off")
        ax.imshow(images[k], interpolation="nearest")
        if titles is not None:
            ax.set_title(titles[k], fontsize=7)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig
