"""Training curves: contrastive loss and learning rate per step, checkpoints marked."""
from __future__ import annotations

import pandas as pd

from .common import plt


def loss_curve(log: pd.DataFrame, checkpoint_epochs):
    """Loss vs epoch (steps/steps per epoch), with a tick at every saved checkpoint."""
    fig, (ax, ax_lr) = plt.subplots(1, 2, figsize=(10, 3.2))
    ax.plot(log["epoch"], log["loss"], lw=1)
    for epoch in checkpoint_epochs:
        ax.axvline(epoch, color="grey", lw=0.5, alpha=0.5)
    ax.set(xlabel="epoch", ylabel="contrastive loss", title="training loss (grey: checkpoints)")
    ax_lr.plot(log["epoch"], log["lr"], lw=1)
    ax_lr.set(xlabel="epoch", ylabel="learning rate", title="schedule (warm-up, cosine)")
    fig.tight_layout()
    return fig
