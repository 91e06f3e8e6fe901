"""Scale-out path: a run written by open_clip's own trainer (open_clip_train) is analysed as is."""
from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from clipalign_utils import checkpoints
from clipalign_utils.data.export import export_world_csv, export_world_shards
from clipalign_utils.data.world import WorldConfig
from clipalign_utils.orchestration.pipeline import run_step


@pytest.mark.slow
def test_open_clip_train_run_is_discovered_and_analysed(tmp_path):
    csv = export_world_csv(tmp_path / "data", 128, 0, WorldConfig())
    logs = tmp_path / "logs"
    command = [sys.executable, "-m", "clipalign_utils.openclip_train",
               "--model", "clipalign-tiny", "--force-image-size", "32",
               "--train-data", str(csv), "--dataset-type", "csv", "--csv-separator", ",",
               "--csv-img-key", "filepath", "--csv-caption-key", "title",
               "--batch-size", "32", "--epochs", "2", "--warmup", "2", "--lr", "1e-3", "--workers", "0",
               "--device", "cpu", "--precision", "fp32", "--save-frequency", "1", "--seed", "0",
               "--logs", str(logs), "--name", "octrain", "--report-to", ""]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]

    run_dir = logs / "octrain"
    run = checkpoints.discover_run(run_dir)
    assert [c.epoch for c in run.checkpoints] == [1.0, 2.0]
    assert run.model_name == "clipalign-tiny" and run.image_size == 32

    run_step("iqa", run_dir, "smoke", {}, progress=False)
    iqa = pd.read_csv(run_dir / "metrics" / "iqa.csv")
    overall = iqa[iqa["distortion"] == "all"]
    assert list(overall["checkpoint"]) == ["epoch_1", "epoch_2"]
    assert overall["srcc"].notna().all()


@pytest.mark.slow
def test_open_clip_train_reads_the_worlds_webdataset_shards(tmp_path):
    """open_clip_train's usual input, tar shards through webdataset (the version open_clip_train's own range
    allows: webdataset 1.x ends each shard with a marker its reader fails on, KeyError 'fname'); the run
    is analysed as is."""
    shards = export_world_shards(tmp_path / "shards", 96, 0, WorldConfig(), per_shard=64)
    assert shards.endswith("shard-{000000..000001}.tar")
    logs = tmp_path / "logs"
    command = [sys.executable, "-m", "clipalign_utils.openclip_train",
               "--model", "clipalign-tiny", "--force-image-size", "32",
               "--train-data", shards, "--dataset-type", "webdataset", "--train-num-samples", "96",
               "--batch-size", "32", "--epochs", "2", "--warmup", "2", "--lr", "1e-3", "--workers", "0",
               "--device", "cpu", "--precision", "fp32", "--save-frequency", "1", "--seed", "0",
               "--logs", str(logs), "--name", "wds", "--report-to", ""]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    run = checkpoints.discover_run(logs / "wds")
    assert [c.epoch for c in run.checkpoints] == [1.0, 2.0]
    run_step("iqa", logs / "wds", "smoke", {}, progress=False)
    assert pd.read_csv(logs / "wds" / "metrics" / "iqa.csv").query("distortion == 'all'")["srcc"].notna().all()


def test_the_wrapper_registers_the_models_and_hands_open_clip_train_its_arguments(monkeypatch):
    import open_clip
    import open_clip_train.main

    from clipalign_utils import openclip_train

    assert {"clipalign-tiny", "clipalign-small"} <= set(open_clip.list_models())
    given = []
    monkeypatch.setattr(open_clip_train.main, "main", given.append)
    openclip_train.main(["--model", "clipalign-tiny"])
    monkeypatch.setattr(sys, "argv", ["openclip_train.py", "--epochs", "2"])
    openclip_train.main()
    assert given == [["--model", "clipalign-tiny"], ["--epochs", "2"]]
