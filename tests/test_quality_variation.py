"""Quality variation in the training world: degraded fraction and families, determinism, clean evaluation
sets, the unchanged world at 0, bad values, `-p` coercion and sweeps, training resume; and the
seen/unseen family metrics (hand-computed)."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest
from helpers import train_interrupted_after
import torch

from clipalign_utils import cli, config, record, train

from clipalign_utils.orchestration import sweep
from clipalign_utils.data import world
from clipalign_utils.data.distortions import DISTORTIONS
from clipalign_utils.errors import CheckpointError, ParameterError
from clipalign_utils.metrics.families import mark_seen, within_family_alignment
from clipalign_utils.orchestration.pipeline import notebook_parameters
from clipalign_utils.orchestration.sweep import plan, split_overrides, trained_by

TWO = ("gaussian_blur", "impulse_noise")


def _degradations(n, config, seed=0, epoch=0):
    return [world.training_degradation(i, seed, epoch, config) for i in range(n)]


# ------------------------------------------------------------------------------ the world
def test_families_are_the_embedded_iqa_families_everywhere():
    assert world.QUALITY_FAMILIES == tuple(DISTORTIONS) == config.PRESETS["default"]["quality_families"]
    assert world.WorldConfig().quality_families == world.QUALITY_FAMILIES
    assert config.PRESETS["smoke"]["quality_variation"] == 0.0


def test_stated_fraction_is_degraded_by_the_stated_families_only():
    n, fraction = 2000, 0.3
    drawn = _degradations(n, world.WorldConfig(quality_variation=fraction, quality_families=TWO))
    degraded = [d for d in drawn if d is not None]
    # Binomial(2000, 0.3): sd 20.5; 4 sd either side.
    assert abs(len(degraded) - n * fraction) < 4 * np.sqrt(n * fraction * (1 - fraction))
    families = pd.Series([family for family, _ in degraded]).value_counts()
    assert set(families.index) == set(TWO)
    assert abs(families["gaussian_blur"] - len(degraded) / 2) < 4 * np.sqrt(len(degraded) / 4)
    assert {level for _, level in degraded} == {1, 2, 3, 4, 5}
    assert all(d is not None for d in _degradations(200, world.WorldConfig(quality_variation=1.0)))
    assert len({d[0] for d in _degradations(400, world.WorldConfig(quality_variation=1.0))}) == 8


def test_degraded_images_change_and_clean_ones_do_not():
    config = world.WorldConfig(quality_variation=0.5, quality_families=TWO)
    sample, clean = world.make_pairs(120, 0, config), world.make_pairs(120, 0, world.WorldConfig())
    assert sample.degradations == _degradations(120, config)
    assert sample.captions == clean.captions  # captions never mention quality
    assert np.array_equal(sample.shape_labels, clean.shape_labels)
    is_degraded = np.array([d is not None for d in sample.degradations])
    changed = (sample.images != clean.images).any(axis=(1, 2, 3))
    assert not changed[~is_degraded].any()
    assert changed[is_degraded].all()  # blur and salt-and-pepper always touch a 32 px image


def test_degradation_is_deterministic_per_seed_index_and_epoch():
    config = world.WorldConfig(quality_variation=0.6)
    a = world.make_pairs(40, 3, config, epoch=2)
    b = world.make_pairs(20, 3, config, epoch=2, start=20)  # another range, made in another order
    assert np.array_equal(a.images[20:], b.images) and a.degradations[20:] == b.degradations
    image, *_ = world.make_pair(7, 3, config, epoch=2)
    assert np.array_equal(image, a.images[7])
    assert _degradations(200, config, epoch=1) != _degradations(200, config, epoch=2)
    assert _degradations(200, config, seed=1) != _degradations(200, config, seed=2)


def test_a_larger_quality_variation_degrades_a_superset():
    low = _degradations(500, world.WorldConfig(quality_variation=0.3))
    high = _degradations(500, world.WorldConfig(quality_variation=0.6))
    assert all(h == d for d, h in zip(low, high) if d is not None)
    assert sum(d is not None for d in high) > sum(d is not None for d in low)


def test_evaluation_sets_stay_clean():
    clean, degraded = world.WorldConfig(), world.WorldConfig(quality_variation=1.0)
    assert np.array_equal(world.make_test_set(4, 0, clean).images, world.make_test_set(4, 0, degraded).images)
    assert np.array_equal(world.make_cue_conflict(1, 0, clean).images, world.make_cue_conflict(1, 0, degraded).images)
    for split in ("test", "cue_conflict", "iqa"):
        sample = world.make_pairs(16, 0, degraded, split=split)
        assert np.array_equal(sample.images, world.make_pairs(16, 0, clean, split=split).images)
        assert sample.degradations is None


def test_zero_quality_variation_is_todays_world():
    default = world.make_pairs(64, 0, world.WorldConfig(object_placement="centred"))
    zero = world.make_pairs(64, 0, world.WorldConfig(quality_variation=0.0, quality_families=TWO,
                                                     object_placement="centred"))
    assert np.array_equal(default.images, zero.images) and default.captions == zero.captions
    assert zero.degradations == [None] * 64
    # Training pairs 0..63 (seed 0, the centred world, the default then) as the generator made them before
    # quality variation existed (main 4d00724): turning the feature off must not move a single byte, nor
    # did adding object_placement to the centred world.
    assert hashlib.sha256(default.images.tobytes()).hexdigest() == \
        "3fc4d0e622ec7bd57f123cb226012cea8e8173b7a6d1dbee077562d28fd4e4b8"


@pytest.mark.parametrize("kwargs, message", [
    ({"quality_variation": 1.5}, r"quality_variation must lie in \[0, 1\], got 1.5"),
    ({"quality_variation": -0.1}, "quality_variation must lie in"),
    ({"quality_variation": True}, "quality_variation must lie in"),
    ({"quality_families": ("gaussian_blur", "blur")}, "quality_families: unknown family 'blur'; choose from "
                                                      "additive_gaussian_noise, gaussian_blur"),
    ({"quality_families": ()}, "quality_families: no family given"),
    ({"quality_families": ("mean_shift", "mean_shift")}, "quality_families: a family is repeated"),
])
def test_bad_world_values_name_the_parameter(kwargs, message):
    with pytest.raises(ParameterError, match=message):
        world.WorldConfig(**kwargs)


def test_world_config_takes_a_list_or_a_comma_separated_string():
    assert world.WorldConfig(quality_families=["gaussian_blur", "impulse_noise"]).quality_families == TWO
    assert world.WorldConfig(quality_families="gaussian_blur, impulse_noise").quality_families == TWO


# ------------------------------------------------------------------------- parameters and sweeps
def test_resolve_coerces_command_line_strings():
    params = config.resolve("smoke", quality_variation="0.6", quality_families="additive_gaussian_noise,gaussian_blur")
    assert params["quality_variation"] == 0.6
    assert params["quality_families"] == ("additive_gaussian_noise", "gaussian_blur")
    assert config.resolve("smoke", quality_families="gaussian_blur, impulse_noise")["quality_families"] == TWO


@pytest.mark.parametrize("overrides, message", [
    ({"quality_variation": "1.2"}, "quality_variation must lie in"),
    ({"quality_variation": "lots"}, "quality_variation='lots' has the wrong type"),
    ({"quality_families": "gaussian_blur,jpeg"}, "quality_families: unknown family 'jpeg'; choose from"),
    ({"quality_families": ","}, "quality_families: no family given"),
])
def test_resolve_rejects_bad_values_naming_the_parameter(overrides, message):
    with pytest.raises(ParameterError, match=message):
        config.resolve("smoke", **overrides)


def test_the_training_notebook_declares_both_parameters():
    declared = notebook_parameters("train")
    assert declared["quality_variation"]["default"] == "None" and declared["quality_families"]["default"] == "None"


def test_sweep_plans_quality_variation_as_two_trainings():
    fixed, swept = split_overrides({"quality_variation": "0,0.6"}, "smoke")
    assert swept == {"quality_variation": [0.0, 0.6]} and fixed == {}
    settings = plan("smoke", fixed, swept)
    assert [s.name for s in settings] == ["quality_variation-0", "quality_variation-0.6"]
    assert trained_by("smoke", fixed, settings) == ["quality_variation-0", "quality_variation-0.6"]


def test_sweep_takes_lists_of_families_separated_by_semicolons():
    _, swept = split_overrides({"quality_families": "impulse_noise,gaussian_blur;jpeg_compression"}, "smoke")
    assert swept == {"quality_families": [("impulse_noise", "gaussian_blur"), ("jpeg_compression",)]}
    settings = plan("smoke", {}, swept)
    assert [s.name for s in settings] == ["quality_families-impulse_noise+gaussian_blur",
                                          "quality_families-jpeg_compression"]
    assert config.format_value(settings[0].values["quality_families"]) == "impulse_noise,gaussian_blur"
    with pytest.raises(ParameterError, match="quality_families: unknown family 'blur'"):
        split_overrides({"quality_families": "impulse_noise;blur"}, "smoke")


def test_cli_sweep_bad_quality_value_is_one_line(tmp_path, capsys):
    argv = ["sweep", "--preset", "smoke", "--out", str(tmp_path / "s"), "--no-book", "-p", "quality_variation=0,1.5"]
    assert cli.main(argv) == 2
    error = capsys.readouterr().err.strip()
    assert "quality_variation must lie in [0, 1]" in error and "\n" not in error
    assert not (tmp_path / "s").exists()


@pytest.mark.slow
def test_cli_sweep_trains_each_setting_through_the_notebook_and_resumes(tmp_path, capsys, monkeypatch):
    # The train step only (the analyses are other tests' business): two short trainings via papermill.
    monkeypatch.setattr(sweep, "available_steps", lambda: ["train"])
    monkeypatch.setattr(sweep, "run_page", lambda *args, **kwargs: None)  # no comparison notebook
    out = tmp_path / "sweep"
    argv = ["sweep", "--preset", "smoke", "--no-book", "--out", str(out), "-p", "quality_variation=0,0.6",
            "-p", "quality_families=impulse_noise,gaussian_blur", "-p", "epochs=1", "-p", "samples_per_epoch=128",
            "-p", "early_checkpoints=0.5"]
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert "[sweep 1/2 quality_variation-0] [1/1] train" in printed
    assert "[sweep 2/2 quality_variation-0.6] [1/1] train" in printed
    record = json.loads((out / "quality_variation-0.6" / "train_params.json").read_text())
    assert record["quality_variation"] == 0.6 and record["quality_families"] == ["impulse_noise", "gaussian_blur"]
    assert "quality_variation: 0.6\n" in (out / "quality_variation-0.6" / "params.txt").read_text()
    executed = (out / "quality_variation-0.6" / "notebooks" / "01_train.ipynb").read_text()
    assert "training images per epoch are degraded" in executed
    assert (out / "quality_variation-0.6" / "figures" / "world_degraded_pairs.png").exists()
    assert "every training image is clean" in (out / "quality_variation-0" / "notebooks" / "01_train.ipynb").read_text()

    assert cli.main(argv) == 0  # the same command again: nothing to do
    assert capsys.readouterr().out.count("skip: complete") == 2


# ------------------------------------------------------------------------------ training
def _tiny(**overrides):
    return config.resolve("smoke", **{"epochs": 2, "samples_per_epoch": 128, "early_checkpoints": (0.5,),
                                      "fresh_data": True, "quality_variation": 0.6, "device": "cpu", **overrides})


def _state(path):
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


@pytest.mark.slow
def test_training_with_quality_variation_resumes_to_identical_weights(tmp_path, monkeypatch):
    params = _tiny()
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    train.train(whole, params, progress=False)
    train_interrupted_after(cut, params, 1, monkeypatch)  # dies writing the checkpoint after epoch 1
    train.train(cut, params, progress=False)
    a, b = _state(whole / "checkpoints" / "epoch_2.pt"), _state(cut / "checkpoints" / "epoch_2.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)
    record = json.loads((whole / "train_params.json").read_text())
    assert record["quality_variation"] == 0.6 and record["quality_families"] == list(world.QUALITY_FAMILIES)

    # Another quality setting is another run: resuming into this directory is refused, naming it.
    with pytest.raises(CheckpointError, match="quality_variation: 0.6 -> 0.3"):
        train.train(cut, _tiny(quality_variation=0.3), progress=False)
    with pytest.raises(CheckpointError, match="quality_families"):
        train.train(cut, _tiny(quality_families="gaussian_blur"), progress=False)


def test_a_record_from_before_quality_variation_means_clean_images(tmp_path):
    run_dir = tmp_path / "old"
    (run_dir / "checkpoints").mkdir(parents=True)
    torch.save({"step": 3}, run_dir / "checkpoints" / "epoch_1.pt")
    params = _tiny(quality_variation=0.0)
    old = {k: record.jsonable(params[k]) for k in train.TRAIN_KEYS if not k.startswith("quality_")}
    (run_dir / "train_params.json").write_text(json.dumps(old))
    assert train._resume_point(run_dir / "checkpoints", params)[1] == 3
    with pytest.raises(CheckpointError, match="quality_variation: 0.0 -> 0.6"):
        train._resume_point(run_dir / "checkpoints", _tiny())


# ------------------------------------------------------------------------------ metrics
def _iqa(checkpoint, epoch, srcc):
    names = ["all", "additive_gaussian_noise", "gaussian_blur", "jpeg_compression", "mean_shift"]
    return pd.DataFrame({"checkpoint": checkpoint, "epoch": epoch, "dataset": "embedded", "distance": "cosine",
                         "distortion": names, "srcc": srcc, "srcc_lo": 0.0, "srcc_hi": 1.0, "krcc": 0.0,
                         "plcc": 0.0, "n_pairs": 30})


def test_mark_seen_flags_families_and_leaves_the_overall_row_empty():
    marked = mark_seen(_iqa("epoch_0", 0.0, [0.5, 0.2, 0.4, 0.6, 0.8]), ["gaussian_blur", "mean_shift"])
    assert marked["seen_in_training"].tolist() == [None, False, True, False, True]
    assert "seen_in_training" not in _iqa("epoch_0", 0.0, [0.5] * 5).columns  # a copy, input untouched


def test_within_family_alignment_hand_computed(tmp_path):
    iqa = pd.concat([_iqa("epoch_0", 0.0, [0.5, 0.2, 0.4, 0.6, 0.8]),
                     _iqa("epoch_1", 1.0, [0.7, 0.1, np.nan, 0.3, 0.9])], ignore_index=True)
    table = within_family_alignment(iqa, ["gaussian_blur", "mean_shift"]).set_index("checkpoint")
    first = table.loc["epoch_0"]
    # families 0.2, 0.4, 0.6, 0.8: mean 0.5; seen (blur, mean shift) (0.4 + 0.8) / 2; unseen (0.2 + 0.6) / 2
    assert (first["within_family_srcc"], first["within_seen_srcc"], first["within_unseen_srcc"],
            first["overall_srcc"]) == pytest.approx((0.5, 0.6, 0.4, 0.5))
    assert (first["n_families"], first["n_seen"], first["n_unseen"], first["epoch"]) == (4, 2, 2, 0.0)
    second = table.loc["epoch_1"]
    # blur's srcc is undefined: left out of the means. families (0.1 + 0.3 + 0.9) / 3; seen 0.9 alone
    assert (second["within_family_srcc"], second["within_seen_srcc"], second["within_unseen_srcc"],
            second["overall_srcc"]) == pytest.approx((1.3 / 3, 0.9, 0.2, 0.7))
    # Nothing seen (a clean run): the seen mean is NaN; a table read back from CSV gives the same.
    clean = within_family_alignment(iqa, [])
    assert clean["within_seen_srcc"].isna().all()
    assert clean["within_unseen_srcc"].tolist() == pytest.approx(clean["within_family_srcc"].tolist())
    mark_seen(iqa, ["gaussian_blur", "mean_shift"]).to_csv(tmp_path / "iqa.csv", index=False)
    again = within_family_alignment(pd.read_csv(tmp_path / "iqa.csv")).set_index("checkpoint")
    assert again["within_seen_srcc"].tolist() == pytest.approx([0.6, 0.9])
    with pytest.raises(ParameterError, match="needs seen_families"):
        within_family_alignment(iqa)
