"""Training resumes after an interruption and ends exactly where an uninterrupted run ends."""
from __future__ import annotations

import shutil

import pytest
import torch

from clipalign_utils import config, train
from clipalign_utils.errors import CheckpointError


def _state(path):
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


def test_interrupted_run_resumes_to_identical_weights(smoke_run, tmp_path):
    params = config.resolve("smoke")
    run_dir = tmp_path / "run"
    shutil.copytree(smoke_run, run_dir)
    # Simulate a crash after the checkpoint at epoch 0.5: later checkpoints never got written.
    for path in (run_dir / "checkpoints").glob("epoch_*.pt"):
        if float(path.stem.split("_")[1]) > 0.5:
            path.unlink()
    (run_dir / "cache").exists() and shutil.rmtree(run_dir / "cache")
    train.train(run_dir, params, progress=False)
    final = f"epoch_{params['epochs']}.pt"
    resumed, uninterrupted = _state(run_dir / "checkpoints" / final), _state(smoke_run / "checkpoints" / final)
    for name, tensor in uninterrupted.items():
        assert torch.equal(resumed[name], tensor), name
    assert (run_dir / "train_log.csv").read_text() == (smoke_run / "train_log.csv").read_text()


def test_same_seed_trains_identical_weights(smoke_run, tmp_path):
    train.train(tmp_path / "again", config.resolve("smoke"), progress=False)
    for path in sorted((smoke_run / "checkpoints").glob("epoch_*.pt")):
        a, b = _state(tmp_path / "again" / "checkpoints" / path.name), _state(path)
        assert all(torch.equal(a[k], b[k]) for k in a), path.name


def test_resume_refuses_a_run_with_other_parameters(smoke_run, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(smoke_run, run_dir)
    with pytest.raises(CheckpointError, match="lr: 0.001 -> 0.002"):
        train.train(run_dir, config.resolve("smoke", lr=0.002), progress=False)

