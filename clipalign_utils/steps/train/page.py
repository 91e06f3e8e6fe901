"""The ``train`` step's page: what the training world looks like and how training went. The training
itself is ``clipalign_utils.train`` (model code apart from this page's story)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ...checkpoints import Run, run_files
from ...data import world
from ...layout import RunDir
from ...plots.training import loss_curve
from ...plots.world import image_grid
from ...prose import counted
from ...schedule import checkpoint_schedule, early_step, epoch_steps, format_epoch, set_of_epoch


def world_sample_figure(params: dict, n: int = 32):
    """``n`` training pairs of the first epoch training draws, titled caption class / texture family."""
    sample = world.make_pairs(n, params["seed"], world.training_world(params), epoch=set_of_epoch(params, 1))
    return image_grid(sample.images, [f"{world.SHAPES[s]}/{world.TEXTURES[t]}"
                                      for s, t in zip(sample.shape_labels, sample.texture_labels)])


def canonical_texture_sentence(params: dict, n: int = 2000) -> str:
    """The fraction of ``n`` training images (of the first epoch training draws) that wear their class's canonical
    texture."""
    pairs = world.make_pairs(n, params["seed"], world.training_world(params), epoch=set_of_epoch(params, 1))
    return (f"fraction of training images with their class's canonical texture: "
            f"{(pairs.shape_labels == pairs.texture_labels).mean():.3f} "
            f"(texture_correlation = {params['texture_correlation']})")


def degradations(params: dict) -> pd.DataFrame:
    """The training images of the first epoch training draws that carry a degradation: index, family,
    level (empty for a clean world)."""
    config, first_epoch = world.training_world(params), set_of_epoch(params, 1)
    rows = [(i, *drawn) for i in range(params["samples_per_epoch"])
            if (drawn := world.training_degradation(i, params["seed"], first_epoch, config)) is not None]
    return pd.DataFrame(rows, columns=["index", "family", "level"])


def quality_variation_sentences(params: dict, degraded: pd.DataFrame) -> list[str]:
    if params["quality_variation"] <= 0:
        return ["quality_variation = 0: every training image is clean"]
    counts = degraded["family"].value_counts()
    return [f"{len(degraded)} of {params['samples_per_epoch']} training images per epoch are degraded "
            f"(quality_variation = {params['quality_variation']}; "
            f"{'new draws every epoch' if params['fresh_data'] else 'the same images every epoch'}); by family: "
            + ", ".join(f"{family} {count}" for family, count in counts.items())]


def degraded_figure(params: dict, degraded: pd.DataFrame, n: int = 12):
    """The first ``n`` degraded training images (``degradations``) titled family / level."""
    shown = degraded.head(n)
    config, epoch = world.training_world(params), set_of_epoch(params, 1)
    images = np.stack([world.make_pair(i, params["seed"], config, epoch=epoch)[0] for i in shown["index"]])
    return image_grid(images, [f"{f}\nlevel {lv}" for f, lv in zip(shown["family"], shown["level"])],
                      columns=6, scale=1.6)


def checkpoint_table(run: Run) -> pd.DataFrame:
    return pd.DataFrame({"checkpoint": [c.name for c in run.checkpoints], "epoch": [c.epoch for c in run.checkpoints]})


def training_log(run: Run) -> pd.DataFrame:
    return pd.read_csv(run.layout.train_log)


def loss_figure(run: Run):
    return loss_curve(training_log(run), [c.epoch for c in run.checkpoints])


def checkpoints_sentence(run: Run) -> str:
    return f"{counted(len(run.checkpoints), 'checkpoint')} of {run.model_name} in {run.layout.checkpoints}"


def early_checkpoints_sentences(params: dict) -> list[str]:
    """Where an early fraction asked for falls between two optimiser steps, the checkpoint is the nearest step's,
    named by its own epoch (0.125 of a 100-step epoch: step 12, epoch_0.12); one that rounds to the epoch's
    start or end is the untrained model's or the epoch's. Nothing when every fraction is a step."""
    steps = epoch_steps(params)
    saved = checkpoint_schedule(steps, 1, tuple(params["early_checkpoints"]))
    moved = []
    for fraction in params["early_checkpoints"]:
        step = early_step(fraction, steps)
        epoch = saved.get(step) if 0 < step < steps else None
        if epoch is None:
            moved.append(f"{fraction:g} is step {step}, {'the untrained model' if step <= 0 else 'the epoch end'}")
        elif epoch != fraction:
            moved.append(f"{fraction:g} is saved at step {step}, as epoch_{format_epoch(epoch)}")
    if not moved:
        return []
    return [f"an epoch is {steps} optimiser steps, so an early checkpoint is saved at the step nearest the "
            f"fraction asked for: {'; '.join(moved)}"]


def threads_sentences(run: Run) -> list[str]:
    """How many threads per process (and processes) trained the run, from what each checkpoint records of the
    process that trained up to it: their count sets the order of the reductions, so another count gives other
    last bits. Where it changed (a run resumed on another machine), that the weights are no uninterrupted run's.
    Nothing for checkpoints that record none (trained before they did)."""
    import torch

    trained = []  # (epoch, threads, processes) per checkpoint after the untrained one
    for checkpoint in run.checkpoints[1:]:
        state = torch.load(checkpoint.path, map_location="cpu", weights_only=True, mmap=True)
        if "threads" in state:
            trained.append((checkpoint.epoch, state["threads"], state.get("processes", 1)))
    counts = list(dict.fromkeys((threads, processes) for _, threads, processes in trained))

    def said(threads: int, processes: int) -> str:
        return (f"{counted(threads, 'thread')} per process"
                + (f", {processes} processes" if processes > 1 else ""))

    if len(counts) == 1:
        return [f"trained with {said(*counts[0])}: the tables reproduce bit for bit with the same count on the same "
                f"kind of CPU (another count orders the sums otherwise, and the weights' last bits differ)"]
    if len(counts) > 1:
        spans = []
        for threads, processes in counts:
            epochs = [f"{epoch:g}" for epoch, t, p in trained if (t, p) == (threads, processes)]
            spans.append(f"{said(threads, processes)} for epochs {', '.join(epochs)}")
        return [f"the thread count changed as training resumed ({'; '.join(spans)}): the weights are not those of an "
                f"uninterrupted run on either count, bit for bit"]
    return []


def loss_sentence(run: Run) -> str:
    log = training_log(run)
    return f"loss: first step {log['loss'].iloc[0]:.3f}, last step {log['loss'].iloc[-1]:.3f}"


# What open_clip_train's params.txt says of a training, where it says it (a streamed run's params.txt holds
# the model's construction only).
TRAINED_ELSEWHERE_KEYS = ("model", "pretrained", "epochs", "train_num_samples", "batch_size", "lr", "wd", "warmup",
                          "precision", "seed", "force_image_size")


def trained_elsewhere_page(run_dir: str | Path, model: str | None = None) -> str:
    """Page 1 (Markdown) of a book whose run clipalign did not train: open_clip_train's logs analysed in place,
    or a trajectory streamed with ``--checkpoints``. What the run's params.txt and source say, and the
    checkpoints the other pages measure; the training itself is not this project's to show."""
    layout = RunDir(run_dir)
    checkpoints, params, name, streamed = run_files(Path(run_dir), model)
    manifest = layout.source_manifest() or {}
    where = (f"a trajectory streamed from `{manifest['source']}` (`clipalign run --checkpoints`)" if streamed
             else f"open_clip_train's run `{layout.path.name}`, analysed where it lies")
    lines = ["# 1. Training", "",
             f"clipalign did not train this run: its checkpoints are {where}, so this page has no training "
             f"world, loss curve or training parameters of its own to show; the trainer that wrote them "
             f"logged its training. The pages that follow measure these checkpoints with every step's code.", "",
             f"**{counted(len(checkpoints), 'checkpoint')} of {name}**, at epochs "
             f"{', '.join(f'{c.epoch:g}' for c in checkpoints)}.", ""]
    said = [(key, params[key]) for key in TRAINED_ELSEWHERE_KEYS if params.get(key) not in (None, "", "None")]
    if said:
        # a streamed run's params.txt is clipalign's: its model the source's own, or the one -p model gave
        given = streamed and manifest.get("architecture", manifest["model"]) != manifest["model"]
        written = " (clipalign wrote it, the model as given with `-p model`)" if given else ""
        lines += [f"What the run's `params.txt` says{written}:", "", "| parameter | value |", "|---|---|"]
        lines += [f"| `{key}` | `{value}` |" for key, value in said] + [""]
    lines += ["A run of this project's own (`clipalign run --preset default`) shows its training world and loss "
              "here."]
    return "\n".join(lines) + "\n"
