"""The train step's page (steps/train/page.py): its sentences and tables against hand-computed values."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from clipalign_utils import config
from clipalign_utils.checkpoints import Checkpoint, Run
from clipalign_utils.data import world
from clipalign_utils.steps.train import page as training


def _params(**changes):
    return {**config.resolve("smoke"), "samples_per_epoch": 200, **changes}


def test_a_clean_world_has_no_degradations():
    params = _params()
    degraded = training.degradations(params)
    assert degraded.empty and list(degraded.columns) == ["index", "family", "level"]
    assert training.quality_variation_sentences(params, degraded) == ["quality_variation = 0: every training image is clean"]


def test_degradations_are_the_worlds_draws_and_the_sentence_counts_them():
    params = _params(quality_variation=0.5, quality_families=("gaussian_blur", "jpeg_compression"))
    degraded = training.degradations(params)
    config_ = world.training_world(params)
    expected = [i for i in range(200) if world.training_degradation(i, params["seed"], 0, config_) is not None]
    assert degraded["index"].tolist() == expected and 60 < len(expected) < 140
    assert set(degraded["family"]) <= {"gaussian_blur", "jpeg_compression"} and degraded["level"].between(1, 5).all()
    blur = int((degraded["family"] == "gaussian_blur").sum())
    (sentence,) = training.quality_variation_sentences(params, degraded)
    assert sentence.startswith(f"{len(expected)} of 200 training images per epoch are degraded (quality_variation = 0.5; "
                               "the same images every epoch); by family: ")
    assert f"gaussian_blur {blur}" in sentence


@pytest.mark.parametrize("fresh_data", [False, True])
def test_canonical_texture_fraction(fresh_data):
    params = _params(texture_correlation=0.8, fresh_data=fresh_data)
    # the images of the first epoch training draws (data epoch 1 with fresh_data)
    pairs = world.make_pairs(2000, params["seed"], world.training_world(params), epoch=int(fresh_data))
    fraction = (pairs.shape_labels == pairs.texture_labels).mean()
    assert training.canonical_texture_sentence(params) == (
        f"fraction of training images with their class's canonical texture: {fraction:.3f} (texture_correlation = 0.8)")
    assert abs(fraction - 0.8) < 0.05


def test_checkpoint_table_and_loss_sentences(tmp_path):
    run = Run(tmp_path, "clipalign-tiny", 32, [Checkpoint(Path("epoch_0.pt"), 0.0), Checkpoint(Path("epoch_0.5.pt"), 0.5)])
    pd.DataFrame({"step": [1, 2, 3], "epoch": [0.25, 0.5, 0.75], "loss": [4.1591, 3.0, 2.71828],
                  "lr": [1e-4, 2e-4, 1e-4]}).to_csv(tmp_path / "train_log.csv", index=False)
    assert training.checkpoint_table(run).to_dict("list") == {"checkpoint": ["epoch_0", "epoch_0.5"], "epoch": [0.0, 0.5]}
    assert training.checkpoints_sentence(run) == f"2 checkpoints of clipalign-tiny in {tmp_path / 'checkpoints'}"
    assert training.loss_sentence(run) == "loss: first step 4.159, last step 2.718"


def test_training_world_adds_quality_variation_to_the_evaluation_world():
    params = _params(quality_variation=0.3, texture_scale=2.0)
    assert world.evaluation_world(params) == world.WorldConfig(32, params["texture_correlation"], 2.0)
    assert world.training_world(params).quality_variation == 0.3
    assert world.evaluation_world(params).quality_variation == 0.0
    with pytest.raises(Exception, match="image_size must be an integer"):
        world.evaluation_world({**params, "image_size": 12.5})
    assert np.isfinite(world.training_world(params).texture_period)


def test_an_early_fraction_between_two_steps_is_said_where_it_was_saved():
    """The default asks for 0.125 of a 100-step epoch: saved at step 12 as epoch_0.12 (a reader asked why page 1
    lists epoch_0.12); fractions that are steps say nothing; one that rounds to the epoch's start or end is
    named as such."""
    from clipalign_utils.steps.train.page import early_checkpoints_sentences

    default = {"samples_per_epoch": 12800, "batch_size": 128, "early_checkpoints": (0.125, 0.25, 0.5, 0.75)}
    assert early_checkpoints_sentences(default) == [
        "an epoch is 100 optimiser steps, so an early checkpoint is saved at the step nearest the fraction asked "
        "for: 0.125 is saved at step 12, as epoch_0.12"]
    assert early_checkpoints_sentences({**default, "early_checkpoints": (0.25, 0.5)}) == []
    two_steps = {"samples_per_epoch": 1024, "batch_size": 512, "early_checkpoints": (0.1, 0.5, 0.9)}
    assert early_checkpoints_sentences(two_steps)[0].endswith(
        "0.1 is step 0, the untrained model; 0.9 is step 2, the epoch end")


def test_the_thread_count_each_checkpoint_was_trained_with_is_said_and_where_it_changed(tmp_path):
    """An audit: the thread count sets the weights' last bits, and a run resumed on another count ended as neither
    uninterrupted run, with nothing in its record to say so."""
    import torch

    def run_of(counts: list) -> Run:
        saved = []
        for epoch, count in zip([0.0, 0.5, 1.0, 2.0], counts):
            path = tmp_path / f"epoch_{epoch:g}.pt"
            state = {"epoch": epoch, "step": 0, "state_dict": {}}
            torch.save(state if count is None else {**state, "threads": count[0], "processes": count[1]}, path)
            saved.append(Checkpoint(path, epoch))
        return Run(tmp_path, "clipalign-tiny", 32, saved)

    assert training.threads_sentences(run_of([(2, 1)] * 4)) == [
        "trained with 2 threads per process: the tables reproduce bit for bit with the same count on the same kind of "
        "CPU (another count orders the sums otherwise, and the weights' last bits differ)"]
    # the untrained checkpoint's count is no training's
    assert training.threads_sentences(run_of([(8, 1), (1, 2), (1, 2), (1, 2)]))[0].startswith(
        "trained with 1 thread per process, 2 processes: ")
    assert training.threads_sentences(run_of([(2, 1), (2, 1), (1, 1), (1, 1)])) == [
        "the thread count changed as training resumed (2 threads per process for epochs 0.5; 1 thread per process for "
        "epochs 1, 2): the weights are not those of an uninterrupted run on either count, bit for bit"]
    assert training.threads_sentences(run_of([None] * 4)) == []  # trained before checkpoints recorded it


def test_a_trained_checkpoint_records_the_threads_that_trained_it(smoke_run):
    import torch

    from clipalign_utils.checkpoints import discover_run

    run = discover_run(smoke_run)
    state = torch.load(run.checkpoints[-1].path, map_location="cpu", weights_only=True, mmap=True)
    assert state["processes"] == 1 and isinstance(state["threads"], int) and state["threads"] >= 1
    assert set(state) == {"epoch", "step", "name", "state_dict", "optimizer", "threads", "processes"}
    # and the training record, the preset its steps resolve against (record.json may be gone)
    assert json.loads((smoke_run / "train_params.json").read_text())["preset"] == "smoke"


def test_a_checkpoint_deleted_by_hand_is_named(smoke_run_copy, capsys):
    """An audit deleted epoch_1.pt: the IQA step measured five checkpoints, beside steps that had measured six, and
    the synthesis mixed them; --only train said done."""
    from clipalign_utils import cli
    from clipalign_utils.checkpoints import discover_run

    (smoke_run_copy / "checkpoints" / "epoch_1.pt").unlink()  # (hard-linked to the shared run's: unlinked only)
    assert cli.main(["run", "--out", str(smoke_run_copy), "--only", "iqa"]) == 2
    (error,) = capsys.readouterr().err.strip().splitlines()
    assert error == (f"clipalign: error: {smoke_run_copy / 'checkpoints'} lacks epoch_1.pt, which its training "
                     f"saved (train_params.json): a step would measure the run without it, beside steps that measured "
                     f"it; put it back, or delete {smoke_run_copy / 'checkpoints'} and train the run again")
    with pytest.raises(Exception, match="lacks epoch_1.pt"):
        discover_run(smoke_run_copy)
