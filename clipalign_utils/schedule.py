"""When training saves a checkpoint and what the file is named (``checkpoints/epoch_<E>.pt``). No torch here:
the training step's parameters are checked with these before anything is imported or made."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

# A checkpoint file of a run or a trajectory, epoch_<E>.pt (open_clip_train's name, with fractions for early ones).
CHECKPOINT_FILE = re.compile(r"^epoch_(\d+(?:\.\d+)?)\.pt$")


def epoch_text(epoch: float) -> str:
    """2.0 -> '2', 0.25 -> '0.25', 1e6 -> '1000000', 0.1234567 -> '0.1234567': every digit the number holds and
    no exponent, as a file name or a URL of a trajectory writes it (``:g`` made 1e6 '1e+06', 0.1234567 '0.123457')."""
    return np.format_float_positional(float(epoch) + 0.0, trim="-")  # + 0.0: -0.0 is '0', not '-0'


def format_epoch(epoch: float) -> str:
    """0 -> '0', 0.25 -> '0.25', 3.0 -> '3' (the file-name form of an epoch training saves)."""
    return epoch_text(round(epoch, 4))


def epoch_files(folder: Path) -> list[tuple[float, Path]]:
    """(epoch, path) of each ``epoch_<E>.pt`` in ``folder``, in epoch order (none if it is missing): a file of
    another name (open_clip_train's ``epoch_latest.pt``) is no checkpoint of an epoch, and 10 comes after 9."""
    if not folder.is_dir():
        return []
    return sorted((float(m.group(1)), p) for p in folder.iterdir() if (m := CHECKPOINT_FILE.match(p.name)))


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


def set_of_epoch(params: dict, epoch: int) -> int:
    """The ``epoch`` of :func:`~clipalign_utils.data.world.make_pairs` whose set training's epoch ``epoch``
    trains on: one fixed set (0) repeated, or with ``fresh_data`` a new set each epoch."""
    return epoch if params["fresh_data"] else 0
