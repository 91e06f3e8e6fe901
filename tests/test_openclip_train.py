"""Scale-out path: a run written by open_clip's own trainer (open_clip_train) is analysed as is."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
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


def test_the_exported_csv_names_each_image_file_beside_its_own_caption(tmp_path):
    # open_clip_train --dataset-type csv reads filepath and title: each row must pair an image with its caption.
    from PIL import Image

    from clipalign_utils.data.world import make_pairs

    config = WorldConfig(image_size=16)
    csv = export_world_csv(tmp_path / "data", 5, 3, config)
    sample = make_pairs(5, 3, config)
    table = pd.read_csv(csv)
    assert csv == tmp_path / "data" / "pairs.csv" and list(table.columns) == ["filepath", "title"]
    assert [p.split("/")[-1] for p in table["filepath"]] == [f"{i:06d}.png" for i in range(5)]
    assert all(p.startswith("/") for p in table["filepath"])  # absolute: the trainer runs from anywhere
    assert table["title"].tolist() == list(sample.captions)
    for path, image in zip(table["filepath"], sample.images):
        assert np.array_equal(np.asarray(Image.open(path)), image)


def test_the_exported_shards_hold_each_image_and_its_caption_and_name_their_range(tmp_path):
    # --dataset-type webdataset: <key>.png and <key>.txt pairs, per_shard to a shard, the brace pattern naming them all.
    import io
    import tarfile

    from PIL import Image

    from clipalign_utils.data.world import make_pairs

    config = WorldConfig(image_size=16)
    sample = make_pairs(5, 3, config)
    pattern = export_world_shards(tmp_path, 5, 3, config, per_shard=2)
    assert pattern == str(tmp_path / "shard-{000000..000002}.tar")
    keys = []
    for k in range(3):
        with tarfile.open(tmp_path / f"shard-{k:06d}.tar") as tar:
            names = tar.getnames()
            for i in range(2 * k, min(2 * k + 2, 5)):
                assert names[2 * (i - 2 * k):2 * (i - 2 * k) + 2] == [f"{i:06d}.png", f"{i:06d}.txt"]
                png = Image.open(io.BytesIO(tar.extractfile(f"{i:06d}.png").read()))
                assert png.format == "PNG" and np.array_equal(np.asarray(png), sample.images[i])
                assert tar.extractfile(f"{i:06d}.txt").read().decode() == sample.captions[i]
            keys += names
    assert len(keys) == 10
    assert export_world_shards(tmp_path / "two", 4, 3, config, per_shard=2).endswith("shard-{000000..000001}.tar")
    one = export_world_shards(tmp_path / "one", 2, 3, config, per_shard=2)
    assert one == str(tmp_path / "one" / "shard-000000.tar")
    with pytest.raises(ValueError, match="n=0, per_shard=2"):  # no pattern naming no shard, no folder made
        export_world_shards(tmp_path / "none", 0, 3, config, per_shard=2)
    assert not (tmp_path / "none").exists()
