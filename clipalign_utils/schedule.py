"""When training saves a checkpoint and what the file is named (``checkpoints/epoch_<E>.pt``). No torch here:
the training step's parameters are checked with these before anything is imported or made."""
from __future__ import annotations

import re

import numpy as np

# A checkpoint file of a run or a trajectory, epoch_<E>.pt (open_clip_train's name, with fractions for early ones).
CHECKPOINT_FILE = re.compile(r"^epoch_(\d+(?:\.\d+)?)\.pt$")


def epoch_text(epoch: float) -> str:
    """2.0 -> '2', 0.25 -> '0.25', 1e6 -> '1000000', 0.1234567 -> '0.1234567': every digit the number holds and
    no exponent, as a file name or a URL of a trajectory writes it (``:g`` made 1e6 '1e+06', 0.1234567 '0.123457')."""
    return np.format_float_positional(float(epoch), trim="-")


def format_epoch(epoch: float) -> str:
    """0 -> '0', 0.25 -> '0.25', 3.0 -> '3' (the file-name form of an epoch training saves)."""
    return epoch_text(round(epoch, 4))


def checkpoint_file(epoch: float) -> str:
    """The file training saves the checkpoint of ``epoch`` in: epoch_0.pt, epoch_0.25.pt, epoch_3.pt."""
    return f"epoch_{format_epoch(epoch)}.pt"


def epoch_steps(params) -> int:
    """Optimiser steps in an epoch (the last partial batch dropped)."""
    return params["samples_per_epoch"] // params["batch_size"]


def early_step(fraction: float, steps_per_epoch: int) -> int:
    """The step an early checkpoint asked at ``fraction`` of the first epoch is saved at: the nearest."""
    return int(round(fraction * steps_per_epoch))


def checkpoint_schedule(steps_per_epoch: int, epochs: int, early: tuple[float, ...]) -> dict[int, float]:
    """{step: epoch} at which to save: the untrained model, the early fractions, every epoch end."""
    schedule = {0: 0.0}
    for fraction in early:
        step = early_step(fraction, steps_per_epoch)
        if 0 < step < steps_per_epoch:
            schedule[step] = round(step / steps_per_epoch, 4)
    for epoch in range(1, epochs + 1):
        schedule[epoch * steps_per_epoch] = float(epoch)
    return dict(sorted(schedule.items()))
