"""Noise-robustness step: dataset glue, the noise itself, the drop formula, the notebook end to end."""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from fixtures_real import cifar100_fine_names, make_cifar100

from helpers import assert_same_table, fake_run
from clipalign_utils import config, registry
from clipalign_utils.data import world
from clipalign_utils.data.noise import (
    ClassificationSet,
    add_gaussian_noise,
    balanced_subset,
    load_noise_dataset,
    noisy_image_sets,
)
from clipalign_utils.errors import DatasetError, ParameterError
from clipalign_utils.metrics.noise import mean_normalized_drop, noise_table, normalized_drop
from clipalign_utils.orchestration.pipeline import run_step

NOISE_COLUMNS = list(registry.table("noise").columns)  # the contract, defined once
SUMMARY_COLUMNS = ["checkpoint", "epoch", "dataset", "clean_accuracy", "mean_normalized_drop"]


# --- datasets ------------------------------------------------------------------


@pytest.mark.parametrize("as_parent", [True, False])
def test_cifar100_through_load_noise_dataset(tmp_path, as_parent):
    parent = make_cifar100(tmp_path, n=10)
    root = parent if as_parent else parent / "cifar-100-python"
    data = load_noise_dataset("cifar100", str(root), config.resolve("smoke"))
    # 10 images of 10 distinct classes ((7k) % 100): every class has fewer than test_per_class=16.
    assert data.name == "cifar100" and len(data) == 10
    assert data.images.dtype == np.uint8 and data.images.shape == (10, 32, 32, 3)
    assert data.labels.tolist() == [(7 * k) % 100 for k in range(10)]
    assert data.classnames == tuple(n.replace("_", " ") for n in cifar100_fine_names())
    assert data.classnames[5] == "maple tree"
    # Image k is R=k, G=100+k, B=200-k, except pixel (1, 2) of image 0.
    assert data.images[3, 0, 0].tolist() == [3, 103, 197]
    assert data.images[0, 1, 2].tolist() == [11, 22, 33]


def test_cifar100_subset_is_balanced_and_seeded(tmp_path):
    # Labels (7k) % 100 for k < 150: classes (7k) % 100 for k < 50 hold 2 images, the other 50 hold 1.
    root = make_cifar100(tmp_path, n=150)
    params = config.resolve("smoke", test_per_class=1)
    a = load_noise_dataset("cifar100", root, params)
    b = load_noise_dataset("cifar100", root, params)
    assert len(a) == 100
    assert np.bincount(a.labels, minlength=100).tolist() == [1] * 100
    assert np.array_equal(a.images, b.images) and np.array_equal(a.labels, b.labels)
    other = load_noise_dataset("cifar100", root, config.resolve("smoke", test_per_class=1, eval_seed=1))
    assert not np.array_equal(a.images, other.images)
    # As many per class as the largest class holds (100 in the release): the whole set, in order.
    full = load_noise_dataset("cifar100", root, config.resolve("smoke", test_per_class=2))
    assert full.labels.tolist() == [(7 * k) % 100 for k in range(150)]
    assert full.images[:, 0, 0, 0].tolist() == list(range(150))  # R plane of image k is k


def test_balanced_subset_by_hand():
    labels = np.array([0, 0, 0, 1, 1, 2])
    keep = balanced_subset(labels, 2, seed=0)
    assert np.all(np.diff(keep) > 0)
    assert np.bincount(labels[keep]).tolist() == [2, 2, 1]
    assert balanced_subset(labels, 3, seed=0).tolist() == [0, 1, 2, 3, 4, 5]


@pytest.mark.parametrize("root", ["", "  "])
def test_cifar100_without_root_names_noise_root(root):
    with pytest.raises(DatasetError, match="noise_root"):
        load_noise_dataset("cifar100", root, config.resolve("smoke"))


def test_cifar100_missing_or_empty_root_names_noise_root(tmp_path):
    with pytest.raises(DatasetError, match="noise_root"):
        load_noise_dataset("cifar100", tmp_path / "nowhere", config.resolve("smoke"))
    with pytest.raises(DatasetError, match="noise_root"):
        load_noise_dataset("cifar100", tmp_path, config.resolve("smoke"))  # exists, but empty


def test_embedded_is_the_balanced_world_test_set():
    params = config.resolve("smoke", test_per_class=3)
    data = load_noise_dataset("embedded", "", params)
    expected = world.make_test_set(3, params["seed"], world.WorldConfig(32, 0.8, 1.0))
    assert data.classnames == world.SHAPES and data.name == "embedded"
    assert np.array_equal(data.images, expected.images)
    assert np.array_equal(data.labels, expected.shape_labels)
    assert np.bincount(data.labels).tolist() == [3] * 8


def test_unknown_dataset_is_a_parameter_error():
    with pytest.raises(ParameterError, match="noise_dataset"):
        load_noise_dataset("imagenet", "", config.resolve("smoke"))


# --- the noise -----------------------------------------------------------------


def test_noise_is_deterministic_per_seed_and_sigma():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(4, 8, 8, 3), dtype=np.uint8)
    a = add_gaussian_noise(images, 0.1, seed=7)
    assert a.dtype == np.float32 and a.shape == images.shape
    assert np.array_equal(a, add_gaussian_noise(images, 0.1, seed=7))
    assert not np.array_equal(a, add_gaussian_noise(images, 0.1, seed=8))
    b = add_gaussian_noise(images, 0.05, seed=7)
    assert not np.array_equal(a, b)
    # A different sigma is a different draw, not the same noise rescaled.
    clean = images.astype(np.float32) / 255
    inside = (a > 0) & (a < 1) & (b > 0) & (b < 1)
    assert not np.allclose((a - clean)[inside], 2 * (b - clean)[inside], atol=1e-4)


def test_noise_zero_is_the_clean_image_and_output_is_clipped():
    images = np.array([[[[0, 128, 255]]]], dtype=np.uint8).repeat(50, axis=1)
    assert np.array_equal(add_gaussian_noise(images, 0.0, 3), images.astype(np.float32) / 255)
    noisy = add_gaussian_noise(images, 0.5, 3)
    assert noisy.min() == 0.0 and noisy.max() == 1.0  # black and white pixels clip at the bounds
    assert np.all((noisy >= 0) & (noisy <= 1))


def test_noise_std_is_sigma_on_mid_grey():
    # Mid-grey (128/255 = 0.502) sits 10 sigma from either bound at sigma 0.05: no clipping,
    # so the pixels' std is sigma and their mean the grey level (500k draws: within ~0.2 %).
    grey = np.full((50, 100, 100, 3), 128, dtype=np.uint8)
    noisy = add_gaussian_noise(grey, 0.05, seed=1234)
    assert noisy.std() == pytest.approx(0.05, rel=0.01)
    assert noisy.mean() == pytest.approx(128 / 255, abs=1e-3)


def test_noise_rejects_bad_input():
    with pytest.raises(ParameterError, match="uint8"):
        add_gaussian_noise(np.zeros((1, 2, 2, 3), np.float32), 0.1, 0)
    with pytest.raises(ParameterError, match="sigma"):
        add_gaussian_noise(np.zeros((1, 2, 2, 3), np.uint8), -0.1, 0)


def test_noisy_image_sets_add_clean_and_share_content_across_calls():
    data = ClassificationSet(np.full((2, 4, 4, 3), 100, np.uint8), np.array([0, 1]), ("a", "b"), "toy")
    sets = noisy_image_sets(data, (0.1, 0.02), seed=5)
    assert list(sets) == [0.0, 0.02, 0.1]
    assert sets[0.0].images.dtype == np.uint8 and sets[0.1].images.dtype == np.float32
    assert sets[0.1].name == "toy-sigma0.1"
    # Same content → same cache identity, so each noisy set is encoded once per checkpoint.
    assert noisy_image_sets(data, (0.1,), seed=5)[0.1].identity == sets[0.1].identity


# --- the drop ------------------------------------------------------------------


def test_normalized_drop_by_hand():
    assert normalized_drop(0.8, 0.6) == pytest.approx(0.25)
    assert normalized_drop(0.5, 0.5) == 0.0
    assert normalized_drop(0.4, 0.5) == pytest.approx(-0.25)  # noise helped
    assert np.isnan(normalized_drop(0.0, 0.0))
    table = noise_table({0: [1, 1, 1, 1, 0], 0.1: [1, 1, 0, 0, 0], 0.2: [0, 0, 0, 0, 0]}, n_boot=20)
    assert table["accuracy"].tolist() == pytest.approx([0.8, 0.4, 0.0])
    assert table["normalized_drop"].tolist() == pytest.approx([0.0, 0.5, 1.0])
    assert mean_normalized_drop(table) == pytest.approx(0.75)
    # A clean accuracy of 0 leaves the drop undefined at every level, the clean row's too (0/0, not 0).
    at_zero = noise_table({0: [0, 0, 0, 0], 1: [0, 0, 0, 0]}, n_boot=20, chance=0.25)
    assert at_zero["normalized_drop"].isna().all() and at_zero["chance_corrected_drop"].isna().all()


# --- the notebook --------------------------------------------------------------


def _check_noise_outputs(run_dir, dataset, n_checkpoints):
    sigmas = config.resolve("smoke")["sigmas"]
    noise = pd.read_csv(run_dir / "metrics" / "noise.csv")
    assert list(noise.columns[: len(NOISE_COLUMNS)]) == NOISE_COLUMNS
    assert len(noise) == n_checkpoints * (1 + len(sigmas))
    for _, rows in noise.groupby("checkpoint"):
        assert sorted(rows["sigma"]) == pytest.approx([0.0, *sigmas])
    assert (noise["dataset"] == dataset).all()
    clean = noise[noise["sigma"] == 0]
    # 0 on the clean row, NaN where a checkpoint classifies no clean image (0/0)
    assert (clean["normalized_drop"] == 0).equals(clean["accuracy"] > 0)
    assert clean.loc[clean["accuracy"] == 0, "normalized_drop"].isna().all()
    assert np.isfinite(noise["accuracy"]).all() and noise["accuracy"].between(0, 1).all()
    assert (noise["lo"] <= noise["accuracy"]).all() and (noise["accuracy"] <= noise["hi"]).all()
    summary = pd.read_csv(run_dir / "metrics" / "noise_summary.csv")
    assert list(summary.columns[: len(SUMMARY_COLUMNS)]) == SUMMARY_COLUMNS
    assert len(summary) == n_checkpoints
    assert summary["clean_accuracy"].tolist() == clean["accuracy"].tolist()
    for name in ("noise_examples", "noise_accuracy", "noise_normalized_drop"):
        assert (run_dir / "figures" / f"{name}.png").stat().st_size > 0
    assert (run_dir / "notebooks" / "04_noise_robustness.ipynb").exists()
    return noise, summary


def test_notebook_smoke_embedded(smoke_run_copy, smoke_pipeline):
    run_step("noise", smoke_run_copy, "smoke", {}, progress=False)
    assert_same_table(smoke_run_copy, smoke_pipeline, "noise")
    n_checkpoints = len(list((smoke_run_copy / "checkpoints").glob("epoch_*.pt")))
    noise, summary = _check_noise_outputs(smoke_run_copy, "embedded", n_checkpoints)
    assert (noise["n_images"] == 16 * 8).all()
    # The mean drop is the mean of the noisy rows, undefined (nan) where at_chance flags a clean CI that
    # reaches 1/8.
    assert (summary["clean_at_chance"] == (summary["clean_lo"] <= 1 / 8)).all()
    noisy_mean = noise[noise["sigma"] > 0].groupby("checkpoint")["normalized_drop"].mean()
    noisy_mean[summary.set_index("checkpoint")["clean_at_chance"].reindex(noisy_mean.index)] = np.nan
    assert summary.set_index("checkpoint")["mean_normalized_drop"].to_dict() == pytest.approx(noisy_mean.to_dict(),
                                                                                              nan_ok=True)
    # chance-corrected drop = (clean − noisy) / (clean − chance), nan where clean ≤ chance
    clean = noise[noise["sigma"] == 0].set_index("checkpoint")["accuracy"]
    noisy = noise[noise["sigma"] > 0]
    expected = (noisy["checkpoint"].map(clean) - noisy["accuracy"]) / (noisy["checkpoint"].map(clean) - 1 / 8)
    expected[noisy["checkpoint"].map(clean) <= 1 / 8] = np.nan
    np.testing.assert_allclose(noisy["chance_corrected_drop"], expected, equal_nan=True)
    assert (noise["noise_at"] == "native").all()


def test_notebook_cifar100_fixture(smoke_run_copy, tmp_path):
    root = make_cifar100(tmp_path / "cifar", n=10)
    run_step("noise", smoke_run_copy, "smoke", {"noise_dataset": "cifar100", "noise_root": str(root)},
             progress=False)
    n_checkpoints = len(list((smoke_run_copy / "checkpoints").glob("epoch_*.pt")))
    noise, summary = _check_noise_outputs(smoke_run_copy, "cifar100", n_checkpoints)
    assert (noise["n_images"] == 10).all() and (noise["n_classes"] == 100).all()
    assert (summary["chance"] == 0.01).all()


def _noise_rows(checkpoint, epoch, clean_lo, drops):
    rows = [{"checkpoint": checkpoint, "epoch": epoch, "sigma": 0.0, "accuracy": clean_lo + 0.1, "lo": clean_lo,
             "hi": clean_lo + 0.2, "normalized_drop": 0.0}]
    rows += [{"checkpoint": checkpoint, "epoch": epoch, "sigma": s, "accuracy": 0.3, "lo": 0.2, "hi": 0.4,
              "normalized_drop": d} for s, d in zip((0.1, 0.2), drops)]
    return rows


def _trends(rho=-1.0, lo=-1.0, hi=-0.5, corrected=(np.nan, np.nan, np.nan)) -> pd.DataFrame:
    """A noise_trend table: the normalized drop's test (rho, lo, hi), the chance-corrected one's (``corrected``)."""
    return pd.DataFrame({"measure": ["noise_drop", "chance_corrected_drop"], "spearman": [rho, corrected[0]],
                         "lo": [lo, corrected[1]], "hi": [hi, corrected[2]], "n_checkpoints": [3, 3]})


def test_checkpoint_summary_and_drop_trend_by_hand():
    from clipalign_utils.metrics.noise import checkpoint_summary, drop_trend

    noise = pd.DataFrame(_noise_rows("a", 0.0, 0.05, (0.5, 0.5)) + _noise_rows("b", 1.0, 0.5, (0.2, 0.4))
                         + _noise_rows("c", 2.0, 0.5, (0.1, 0.3)) + _noise_rows("d", 3.0, 0.5, (0.0, 0.2)))
    summary = checkpoint_summary(noise, chance=0.125)
    assert list(summary["checkpoint"]) == ["a", "b", "c", "d"]
    assert list(summary["clean_at_chance"]) == [True, False, False, False]  # a's clean CI reaches 0.125
    # a's drops are 0.5 but it is at chance: undefined, not 0.5 (nor the 0 an at-chance model shows)
    assert summary["mean_normalized_drop"].tolist() == pytest.approx([np.nan, 0.3, 0.2, 0.1], nan_ok=True)
    trend = drop_trend(summary, _trends(-1.0, -1.0, -0.5))
    # b, c, d: halves of one checkpoint each; the step's test read as it is, its interval below 0
    assert (trend["n"], trend["early_epochs"], trend["late_epochs"]) == (3, [1.0], [3.0])
    assert (trend["early_drop"], trend["late_drop"], trend["rho"], trend["lo"], trend["hi"]) == pytest.approx(
        (0.3, 0.1, -1.0, -1.0, -0.5))
    assert trend["direction"] == "shrinks"
    assert drop_trend(summary, _trends(0.5, 0.1, 1.0))["direction"] == "grows"
    assert drop_trend(summary, _trends(-0.5, -1.0, 0.5))["direction"] == "flat"
    assert drop_trend(summary, _trends(-0.5, np.nan, np.nan))["direction"] == "flat"  # no interval: no direction
    assert drop_trend(summary, _trends(np.nan, np.nan, np.nan))["direction"] == "undetermined"
    # the chance-corrected drop reads its own row
    corrected = drop_trend(summary, _trends(corrected=(0.5, 0.2, 0.8)), column="mean_chance_corrected_drop")
    assert (corrected["rho"], corrected["direction"]) == (0.5, "grows")


def test_the_noise_step_tests_each_drops_trend_on_its_replicates_leaving_chance_out():
    """noise_trend: ρ of epoch and each mean drop over the checkpoints above chance (noise_summary's drops are nan
    at chance), its interval from the replicates of those checkpoints alone, by hand."""
    from clipalign_utils.steps.noise.analysis import drop_trends

    summary = pd.DataFrame({"epoch": [0.0, 1.0, 2.0, 3.0], "mean_normalized_drop": [np.nan, 0.3, 0.2, 0.1],
                            "mean_chance_corrected_drop": [np.nan, 0.4, 0.5, 0.6]})
    # replicate 0 and 1 fall (ρ −1), replicate 2 ranks 0.2 < 0.25 > 0.1 (ρ −0.5); the at-chance row's 9s are
    # never read (with it, replicate 2 would be ρ −0.8)
    drop = np.array([[9, 9, 9], [0.3, 0.4, 0.2], [0.2, 0.3, 0.25], [0.1, 0.2, 0.1]])
    replicates = [{"noise_drop": row, "chance_corrected_drop": -row} for row in drop]
    trends = drop_trends(summary, replicates)
    assert list(trends.columns) == ["measure", "spearman", "lo", "hi", "n_checkpoints"]
    assert list(trends["measure"]) == ["noise_drop", "chance_corrected_drop"]
    normalized, corrected = trends.iloc[0], trends.iloc[1]
    assert (normalized["spearman"], normalized["n_checkpoints"]) == (-1.0, 3)
    # the 2.5 % and 97.5 % points of [−1, −1, −0.5] (numpy's linear): positions 0.05 and 1.95 → −1 and
    # −1 + 0.95 · 0.5 = −0.525
    assert (normalized["lo"], normalized["hi"]) == pytest.approx((-1.0, -0.525))
    # the chance-corrected drop rises; its replicates (the negated drops) are ρ +1, +1, +0.5
    assert corrected["spearman"] == 1.0 and (corrected["lo"], corrected["hi"]) == pytest.approx((0.525, 1.0))


def test_noise_summary_and_the_synthesis_leave_the_same_checkpoints_undefined():
    """noise_summary.csv and the synthesis's noise_drop read one rule (metrics.noise.mean_drops)."""
    from clipalign_utils.metrics.noise import checkpoint_summary
    from clipalign_utils.steps.noise.analysis import summary_columns

    noise = pd.DataFrame(_noise_rows("b", 1.0, 0.5, (0.2, 0.4)) + _noise_rows("a", 0.0, 0.05, (0.5, 0.5))
                         + _noise_rows("c", 2.0, 0.1, (0.1, 0.3)))
    noise["chance_corrected_drop"] = noise["normalized_drop"] * 2
    noise["dataset"] = "toy"
    summary = checkpoint_summary(noise, chance=0.125).set_index("checkpoint")
    noise["clean_at_chance"] = noise["checkpoint"].map(summary["clean_at_chance"])
    synthesis = summary_columns(noise, None, "noise").set_index("checkpoint")
    # a (lo 0.05) and c (lo 0.1) reach chance 0.125; b's mean drop is (0.2 + 0.4) / 2.
    for table, drop, corrected in ((summary, "mean_normalized_drop", "mean_chance_corrected_drop"),
                                   (synthesis, "noise_drop", "chance_corrected_drop")):
        assert table.loc[["a", "b", "c"], drop].tolist() == pytest.approx([np.nan, 0.3, np.nan], nan_ok=True)
        assert table.loc[["a", "b", "c"], corrected].tolist() == pytest.approx([np.nan, 0.6, np.nan], nan_ok=True)
    assert synthesis.loc[["a", "b", "c"], "at_chance"].tolist() == [True, False, True]
    # An older noise.csv without clean_at_chance: every checkpoint keeps its drop.
    older = summary_columns(noise.drop(columns="clean_at_chance"), None, "noise").set_index("checkpoint")
    assert older.loc[["a", "b", "c"], "noise_drop"].tolist() == pytest.approx([0.5, 0.3, 0.2])
    # Nor any interval (a table written before the drop had one): none is made up.
    assert not {"noise_drop_lo", "noise_drop_hi"} & set(synthesis.columns)
    assert "mean_normalized_drop_lo" not in summary.columns
    # With the mean drop's interval (the checkpoint's, on each of its rows): undefined where the drop is.
    noise["mean_normalized_drop_lo"] = noise["checkpoint"].map({"a": 0.4, "b": 0.25, "c": 0.15})
    noise["mean_normalized_drop_hi"] = noise["mean_normalized_drop_lo"] + 0.1
    synthesis = summary_columns(noise, None, "noise").set_index("checkpoint")
    summary = checkpoint_summary(noise, chance=0.125).set_index("checkpoint")
    for table, drop in ((synthesis, "noise_drop"), (summary, "mean_normalized_drop")):
        assert table.loc[["a", "b", "c"], f"{drop}_lo"].tolist() == pytest.approx([np.nan, 0.25, np.nan], nan_ok=True)
        assert table.loc[["a", "b", "c"], f"{drop}_hi"].tolist() == pytest.approx([np.nan, 0.35, np.nan], nan_ok=True)
    older = summary_columns(noise.drop(columns="clean_at_chance"), None, "noise").set_index("checkpoint")
    assert older.loc[["a", "b", "c"], "noise_drop_lo"].tolist() == pytest.approx([0.4, 0.25, 0.15])

# --- the step module: load's data, measure's tables, the page's sentences and figure by hand ------

def _toy_data(n=2, sigmas=(0.1, 0.02)):
    from clipalign_utils.steps.noise.analysis import NoiseData

    dataset = ClassificationSet(np.full((n, 4, 4, 3), 100, np.uint8), np.arange(n) % 4,
                                ("apple", "bee", "cat", "dog"), "toy")
    return NoiseData(dataset, noisy_image_sets(dataset, sigmas, seed=5), ("a {}.",))


def test_the_data_sentence_names_the_embedded_set_and_a_real_one_by_its_display_name():
    from clipalign_utils.steps.noise.page import data_sentences

    data = _toy_data(n=4)
    for name, said in (("embedded", "from the embedded set;"), ("cifar100", "from CIFAR-100;")):
        renamed = type(data)(dataclasses.replace(data.dataset, name=name), data.image_sets, data.templates)
        assert said in data_sentences(renamed)[0]


def test_data_sentences_and_examples_by_hand():
    from clipalign_utils.steps.noise.page import data_sentences, examples_figure

    data = _toy_data()
    assert data.chance == 0.25
    # two of the four classes have images: the choice is still 4-way (a partial copy of a dataset)
    assert data_sentences(data) == ["2 images of 2 of its 4 classes (a 4-way choice) from toy; chance = 0.250",
                                    "noise levels σ: 0, 0.02, 0.1; 1 prompt template"]
    assert data_sentences(_toy_data(n=6))[0] == "6 images of 4 classes from toy; chance = 0.250"
    two = type(data)(data.dataset, data.image_sets, ("a {}.", "a photo of a {}."))
    assert data_sentences(two)[1] == "noise levels σ: 0, 0.02, 0.1; 2 prompt templates"
    # Fewer images than the four examples: every image, one row each, a column per σ.
    titles = [ax.get_title() for ax in examples_figure(data).axes if ax.get_title()]
    assert titles == ["apple (clean)", "σ = 0.02", "σ = 0.1", "bee (clean)", "σ = 0.02", "σ = 0.1"]
    assert len([ax for ax in examples_figure(_toy_data(n=6)).axes if ax.get_title()]) == 4 * 3


def test_load_follows_the_parameters():
    from types import SimpleNamespace

    from clipalign_utils.steps.noise.analysis import load

    params = config.resolve("smoke", test_per_class=2, sigmas=(0.2,), prompt_templates="single")
    data = load(SimpleNamespace(image_size=32), params)
    assert len(data.dataset) == 16 and data.dataset.name == "embedded" and data.chance == 1 / 8
    assert list(data.image_sets) == [0.0, 0.2] and len(data.templates) == 1


def test_noise_at_input_on_a_run_without_a_recorded_size_is_at_its_models_input(tmp_path):
    """A run without params.txt (or open_clip_train's without force_image_size) records no input size: the
    noise goes on at the model's own (an audit found ViT-B-32's "input" noise put on CIFAR's 32 px)."""
    from types import SimpleNamespace

    from clipalign_utils.steps.noise.analysis import load

    root = make_cifar100(tmp_path / "cifar", n=8)
    params = config.resolve("smoke", noise_dataset="cifar100", noise_root=str(root), sigmas=(0.1,),
                            prompt_templates="single", noise_at="input")
    at_input = load(SimpleNamespace(image_size=None, model_name="ViT-B-32"), params).image_sets
    assert {sigma: images.images.shape[1:3] for sigma, images in at_input.items()} == {0.0: (224, 224),
                                                                                       0.1: (224, 224)}
    forced = load(SimpleNamespace(image_size=64, model_name="ViT-B-32"), params).image_sets
    assert forced[0.1].images.shape[1:3] == (64, 64)  # params.txt's force_image_size wins
    with pytest.raises(ParameterError, match="parameter noise_at='input' needs the model's input size"):
        load(SimpleNamespace(image_size=None, model_name="my-own-config"), params)
    native = load(SimpleNamespace(image_size=None, model_name="my-own-config"), {**params, "noise_at": "native"})
    assert native.image_sets[0.1].images.shape[1:3] == (32, 32)
    # the command refuses it before any folder is made (the step's check_run), not when the page loads
    check_run = registry.get("noise").check_run
    with pytest.raises(ParameterError, match="parameter noise_at='input' needs the model's input size"):
        check_run(SimpleNamespace(image_size=None, model_name="my-own-config"), params, ("noise",))
    check_run(SimpleNamespace(image_size=None, model_name="ViT-B-32"), params, ("noise",))


def test_measure_with_a_stub_encoder(monkeypatch, tmp_path):
    from types import SimpleNamespace

    from clipalign_utils.steps.noise import analysis as noise_step

    data = _toy_data(n=4, sigmas=(0.1,))  # labels 0, 1, 2, 3
    run = fake_run(tmp_path, epochs=(0, 1), image_size=None)
    # epoch_0 always answers class 0 (1 of 4 right: chance); epoch_1 is right on every clean image and
    # on half the noisy ones.
    answers = {("epoch_0", 0.0): [0, 0, 0, 0], ("epoch_0", 0.1): [0, 0, 0, 0],
               ("epoch_1", 0.0): [0, 1, 2, 3], ("epoch_1", 0.1): [0, 1, 0, 0]}
    sigma_of = {images.identity: sigma for sigma, images in data.image_sets.items()}

    def encoder(checkpoint):
        return SimpleNamespace(zero_shot_weights=lambda classnames, templates: np.eye(4),
                               encode_images=lambda images: np.eye(4)[answers[checkpoint.name,
                                                                              sigma_of[images.identity]]])

    def stub_encoders(run_, device, batch_size, cache_dir=None, progress=True):
        assert cache_dir == tmp_path / "cache"
        return ((checkpoint, encoder(checkpoint)) for checkpoint in run_.checkpoints)

    monkeypatch.setattr(noise_step, "run_encoders", stub_encoders)
    params = {"device": "cpu", "eval_batch_size": 8, "n_boot": 50, "eval_seed": 0, "noise_dataset": "toy",
              "noise_at": "native"}
    tables = noise_step.measure(run, params, data)
    assert list(tables) == ["noise", "noise_summary", "noise_trend"]
    noise, summary = tables["noise"], tables["noise_summary"]
    # one checkpoint above chance: no trend to test, for either drop
    trends = tables["noise_trend"]
    assert trends["n_checkpoints"].tolist() == [1, 1] and trends[["spearman", "lo", "hi"]].isna().all().all()
    assert list(noise.columns[:len(NOISE_COLUMNS)]) == NOISE_COLUMNS
    assert noise["accuracy"].tolist() == [0.25, 0.25, 1.0, 0.5]
    assert noise["normalized_drop"].tolist() == [0.0, 0.0, 0.0, 0.5]
    assert (noise["n_classes"] == 4).all() and (noise["noise_at"] == "native").all()
    assert list(summary.columns[:len(SUMMARY_COLUMNS)]) == SUMMARY_COLUMNS
    assert summary["clean_at_chance"].tolist() == [True, False] == noise["clean_at_chance"].tolist()[::2]
    # epoch_0 at chance: no mean drop, so no interval, in noise.csv as in noise_summary.csv (a reader found
    # [0, 0] in the one beside nan in the other); epoch_1's drop 0.5 lies inside its own
    for table, prefix in ((noise.drop_duplicates("checkpoint"), "mean_normalized_drop"),
                          (summary, "mean_normalized_drop")):
        bounds = table[[f"{prefix}_lo", f"{prefix}_hi"]].to_numpy(float)
        assert np.isnan(bounds[0]).all() and bounds[1, 0] <= 0.5 <= bounds[1, 1]


def test_the_mean_drops_replicates_are_the_intervals_own_and_leave_no_competence_undefined():
    """mean_drop_replicates gives the draws behind drop_intervals' interval of the mean drop (the trend's interval
    and the checkpoint's come from one set), and the chance-corrected mean by hand on each replicate."""
    from clipalign_utils.metrics.noise import drop_intervals, mean_drop_replicates
    from clipalign_utils.metrics.stats import percentile_interval, resampled_rows

    rng = np.random.default_rng(3)
    correct = {0.0: rng.random(40) < 0.8, 0.1: rng.random(40) < 0.6, 0.2: rng.random(40) < 0.4}
    replicates = mean_drop_replicates(correct, n_boot=200, seed=5, chance=0.25)
    _, mean = drop_intervals(correct, n_boot=200, seed=5)
    assert percentile_interval(replicates["noise_drop"]) == mean
    rows = next(resampled_rows(40, 200, 5))  # one block: every replicate
    clean, noisy = correct[0.0][rows].mean(axis=1), [correct[s][rows].mean(axis=1) for s in (0.1, 0.2)]
    expected = np.mean([(clean - n) / (clean - 0.25) for n in noisy], axis=0)
    assert replicates["chance_corrected_drop"] == pytest.approx(expected)
    # a replicate whose clean accuracy is not above chance has no chance-corrected drop (nan, not a number)
    guessing = mean_drop_replicates({0.0: np.array([1, 0, 0, 0], bool), 0.1: np.zeros(4, bool)}, n_boot=50,
                                    seed=0, chance=0.25)["chance_corrected_drop"]
    assert np.isnan(guessing).any() and np.isfinite(guessing).any()
    # no clean level: no replicates
    assert np.isnan(mean_drop_replicates({0.1: correct[0.1]}, n_boot=5)["noise_drop"]).all()


def _summary():
    from clipalign_utils.metrics.noise import checkpoint_summary

    noise = pd.DataFrame(_noise_rows("a", 0.0, 0.05, (0.5, 0.5)) + _noise_rows("b", 1.0, 0.5, (0.2, 0.4))
                         + _noise_rows("c", 2.0, 0.5, (0.1, 0.3)) + _noise_rows("d", 3.0, 0.5, (0.0, 0.2)))
    return checkpoint_summary(noise, chance=0.125)


def test_clean_sentences_by_hand():
    from clipalign_utils.steps.noise.page import clean_sentences

    # Clean accuracy is clean_lo + 0.1: 0.15 at epoch 0, 0.6 at epoch 3; a's clean CI reaches chance.
    assert clean_sentences(_summary()) == [
        "clean accuracy: 0.150 at epoch 0 → 0.600 at epoch 3 (chance 0.125)",
        "1 of 4 checkpoints at chance on clean images (drop undefined: nothing to lose; left out below): epoch 0"]
    assert clean_sentences(_summary().iloc[1:])[1:] == ["every checkpoint is above chance on clean images"]
    two = _summary().assign(clean_at_chance=[True, True, False, False])
    assert clean_sentences(two)[1] == ("2 of 4 checkpoints at chance on clean images (drop undefined: nothing to "
                                       "lose; left out below): epochs 0, 1")


def test_trend_sentences_by_hand():
    from clipalign_utils.steps.noise.page import trend_sentences

    summary = _summary()
    # b, c, d above chance: halves b (0.3) and d (0.1); the step's test (ρ −1, interval [−1, −0.6]) said as
    # it is; these rows have no chance-corrected drop, so that test is undetermined and not said.
    assert trend_sentences(summary, _trends(-1.0, -1.0, -0.6)) == [
        "mean normalized drop, earlier half of them (epoch 1): 0.300; later half (epoch 3): 0.100",
        "over 3 checkpoints above chance the mean normalized drop shrinks with training: Spearman ρ(epoch, drop) = "
        "-1.00 [-1.00, -0.60], the interval resampling the images alike at every checkpoint (this run's course; "
        "training's own noise needs seeds)"]
    assert trend_sentences(summary.iloc[:3], _trends(np.nan, np.nan, np.nan)) == [
        "mean normalized drop, earlier half of them (epoch 1): 0.300; later half (epoch 2): 0.200",
        "too few checkpoints above chance (2) to tell whether the drop shrinks with training"]
    assert trend_sentences(summary, _trends(-0.5, -1.0, 0.5))[-1].startswith(
        "over 3 checkpoints above chance the mean normalized drop shows no clear trend (it leans towards: shrinks): "
        "Spearman ρ(epoch, drop) = -0.50 [-1.00, 0.50]")
    # ρ exactly 0 leans nowhere (an audit found it said to lean towards "grows")
    assert trend_sentences(summary, _trends(0.0, -0.5, 0.5))[-1].startswith(
        "over 3 checkpoints above chance the mean normalized drop shows no clear trend: Spearman ρ(epoch, "
        "drop) = 0.00 [-0.50, 0.50]")
    assert trend_sentences(summary, _trends(-0.5, np.nan, np.nan))[-1].startswith(
        "over 3 checkpoints above chance the mean normalized drop shows no clear trend (it leans towards: shrinks): "
        "Spearman ρ(epoch, drop) = -0.50 (no interval: the resampled images rarely define ρ)")
    falling = pd.DataFrame({"epoch": np.arange(7.0), "mean_normalized_drop": np.linspace(0.6, 0.0, 7),
                            "mean_chance_corrected_drop": np.linspace(0.9, 0.3, 7), "clean_at_chance": False})
    lines = trend_sentences(falling, _trends(-1.0, -1.0, -0.9, corrected=(-0.96, -1.0, -0.8)))
    assert lines[0] == ("mean normalized drop, earlier half of them (epochs 0, 1, 2): 0.500; later half "
                        "(epochs 4, 5, 6): 0.100")
    assert lines[1].startswith("over 7 checkpoints above chance the mean normalized drop shrinks with training: "
                               "Spearman ρ(epoch, drop) = -1.00 [-1.00, -0.90]")
    assert lines[2] == ("chance-corrected drop: 0.800 (earlier half) → 0.400 (later half); Spearman ρ(epoch, drop) = "
                        "-0.96 [-1.00, -0.80] (shrinks)")
    # With the mean drop's interval: the first and the last checkpoint above chance, each with its own.
    with_interval = summary.assign(mean_normalized_drop_lo=summary["mean_normalized_drop"] - 0.05,
                                   mean_normalized_drop_hi=summary["mean_normalized_drop"] + 0.04)
    assert trend_sentences(with_interval, _trends())[1] == (
        "mean normalized drop with its 95% bootstrap interval over images: 0.300 [0.250, 0.340] at epoch 1 "
        "(the first checkpoint above chance), 0.100 [0.050, 0.140] at epoch 3 (the last)")


def test_the_last_drop_with_its_interval_is_the_last_checkpoint_above_chance():
    """The interval sentence's "(the last)" is the last checkpoint above chance on clean images, as its words
    say, not the table's last row when that one guesses (mutation audit: summary.iloc[-1] went unnoticed)."""
    from clipalign_utils.steps.noise.page import trend_sentences

    summary = _summary()
    late_chance = summary.assign(clean_at_chance=[True, False, False, True],
                                 mean_normalized_drop=[np.nan, 0.3, 0.2, np.nan])
    late_chance = late_chance.assign(mean_normalized_drop_lo=late_chance["mean_normalized_drop"] - 0.05,
                                     mean_normalized_drop_hi=late_chance["mean_normalized_drop"] + 0.04)
    lines = trend_sentences(late_chance, _trends(np.nan, np.nan, np.nan))
    assert lines[1] == ("mean normalized drop with its 95% bootstrap interval over images: 0.300 [0.250, 0.340] at "
                        "epoch 1 (the first checkpoint above chance), 0.200 [0.150, 0.240] at epoch 2 (the last)")


def test_measure_scores_each_image_against_the_classifier_column_of_its_own_class(monkeypatch, tmp_path):
    """The stub's classifier has one column per class *name*, in the order it is given the names: a
    checkpoint that maps every image to its class's direction is right only if the columns are read in
    dataset.classnames order (reversed names would put class 3's weights in column 0)."""
    from types import SimpleNamespace

    from clipalign_utils.steps.noise import analysis as noise_step

    data = _toy_data(n=4, sigmas=(0.1,))  # labels 0, 1, 2, 3 = apple, bee, cat, dog
    direction = {"apple": [1, 0, 0, 0], "bee": [0, 1, 0, 0], "cat": [0, 0, 1, 0], "dog": [0, 0, 0, 1]}
    run = fake_run(tmp_path, epochs=(0,), image_size=None)
    encoder = SimpleNamespace(
        zero_shot_weights=lambda classnames, templates: np.array([direction[c] for c in classnames], float).T,
        encode_images=lambda images: 3.0 * np.eye(4)[data.dataset.labels])  # every image points at its class
    monkeypatch.setattr(noise_step, "run_encoders", lambda run_, *a, **k: ((c, encoder) for c in run_.checkpoints))
    params = {"device": "cpu", "eval_batch_size": 8, "n_boot": 20, "eval_seed": 0, "noise_dataset": "toy",
              "noise_at": "native"}
    noise = noise_step.measure(run, params, data)["noise"]
    assert noise["accuracy"].tolist() == [1.0, 1.0]
