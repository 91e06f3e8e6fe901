"""The ``train`` step: the run's model trained, its checkpoints kept (``clipalign_utils.train``); its page's
sentences and figures are in :mod:`.page`."""
from ... import model_names
from ...errors import ParameterError
from ...registry import Step, register
from ...schedule import checkpoint_file, checkpoint_schedule, epoch_steps


def _check(params: dict) -> None:
    for name in ("epochs", "samples_per_epoch", "batch_size"):
        if params[name] <= 0:
            raise ParameterError(f"parameter {name} must be positive, got {params[name]!r}")
    if params["batch_size"] < 2:  # the contrastive loss needs another pair in the batch, batch norm two images
        raise ParameterError(f"parameter batch_size must be at least 2 (a contrastive batch needs negatives), "
                             f"got {params['batch_size']!r}")
    problem = model_names.input_size_problem(params["model"], params["image_size"])
    if problem:
        raise ParameterError(problem)
    if params["samples_per_epoch"] < params["batch_size"]:
        raise ParameterError(f"samples_per_epoch={params['samples_per_epoch']} is smaller than batch_size="
                             f"{params['batch_size']}: an epoch would have no step")
    if not params["lr"] > 0:
        raise ParameterError(f"parameter lr must be positive, got {params['lr']!r}")
    for name in ("weight_decay", "warmup"):
        if params[name] < 0:
            raise ParameterError(f"parameter {name} must be >= 0, got {params[name]!r}")
    if any(not 0 < f < 1 for f in params["early_checkpoints"]):
        raise ParameterError("early_checkpoints are fractions of the first epoch, each in (0, 1)")
    # A checkpoint's name keeps its epoch to 4 decimals: with more than 20,000 steps an epoch, two early steps (or
    # step 1 and the untrained model's epoch_0) could share one file, the later overwriting the earlier.
    steps = epoch_steps(params)
    named: dict[str, int] = {}
    for step, epoch in checkpoint_schedule(steps, 1, tuple(params["early_checkpoints"])).items():
        name = checkpoint_file(epoch)
        if named.setdefault(name, step) != step:
            asked = ",".join(map(str, params["early_checkpoints"]))
            raise ParameterError(
                f"early_checkpoints={asked}: with {steps} optimiser steps an epoch, steps {named[name]} and {step} "
                f"would both be saved as {name} (a name keeps 4 decimals): give fractions at least "
                f"0.0001 apart, and from 0 and 1")


STEP = register(Step(
    "train", "01_train", title="train the model, keep checkpoints", module="clipalign_utils.train",
    parameters={
        "batch_size": 128,
        # 5 epochs, three seeds: the texture-to-shape shift and the early IQA bump show by then (the quality
        # experiment's clean arm, 6 epochs x 3 seeds, is the comparison), and the book's run (three seeds,
        # six steps each, the synthesis and the book) stays under 10 minutes on 2 CPU cores; the drivers
        # sweep tries 12 and 24.
        "epochs": 5,
        "samples_per_epoch": 12800,  # 100 steps of 128: early checkpoints at round fractions
        "lr": 1e-3,
        "weight_decay": 0.1,
        "warmup": 50,
        "fresh_data": False,
        "early_checkpoints": (0.125, 0.25, 0.5, 0.75),
    },
    presets={"smoke": {"epochs": 2, "samples_per_epoch": 1024, "batch_size": 64, "warmup": 4,
                       "early_checkpoints": (0.25, 0.5, 0.75)}},
    check=_check))
