"""The shape step: cue-conflict dataset glue, decisions by hand, and the notebook end to end."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
import pytest
from fixtures_real import make_geirhos

from helpers import assert_same_table, fake_run
from clipalign_utils import checkpoints, config
from clipalign_utils.data import world
from clipalign_utils.data.cue_conflict import HUMAN_SHAPE_BIAS, load_cue_conflict
from clipalign_utils.data.geirhos import GEIRHOS_CLASSES, IMAGENET_INDICES
from clipalign_utils.errors import DatasetError
from clipalign_utils.metrics.shape_bias import per_class_shape_bias, shape_bias_summary
from clipalign_utils.orchestration.pipeline import run_step
from clipalign_utils.plots.shape_bias import decision_name, decision_titles

CONTRACT_COLUMNS = ["checkpoint", "epoch", "dataset", "shape_bias", "lo", "hi", "shape_fraction",
                    "texture_fraction", "neither_fraction", "n_images"]
PER_CLASS_COLUMNS = ["checkpoint", "epoch", "class", "shape_bias", "n_images"]


# --- dataset glue ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def embedded():
    params = config.resolve("smoke", cue_conflict_per_pair=2)
    return load_cue_conflict("embedded", "", params)


def test_embedded_set_follows_eval_seed_not_the_training_seed():
    def images(**seeds):
        params = config.resolve("smoke", cue_conflict_per_pair=1, **seeds)
        return load_cue_conflict("embedded", "", params).images.images
    base = images(seed=0, eval_seed=0)
    assert np.array_equal(images(seed=5, eval_seed=0), base)  # every training seed is scored on one set
    assert not np.array_equal(images(seed=0, eval_seed=3), base)
    assert np.array_equal(base, world.make_cue_conflict(1, 0, world.WorldConfig(object_placement="varied")).images)


def test_embedded_labels_conflict_and_balance(embedded):
    n_classes = len(world.SHAPES)
    assert embedded.shape_sources is None and embedded.texture_sources is None  # every image drawn on its own
    assert embedded.name == "embedded"
    assert embedded.classnames == world.SHAPES and embedded.texture_names == world.TEXTURES
    assert len(embedded) == n_classes * (n_classes - 1) * 2 == embedded.n_conflicting
    assert np.all(embedded.shape_labels != embedded.texture_labels)
    pairs = Counter(zip(embedded.shape_labels.tolist(), embedded.texture_labels.tolist()))
    assert len(pairs) == 56 and set(pairs.values()) == {2}
    assert embedded.example_images([0, 5]).shape == (2, 32, 32, 3)


def test_embedded_set_is_reproducible(embedded):
    again = load_cue_conflict("embedded", "", config.resolve("smoke", cue_conflict_per_pair=2))
    assert again.images.identity == embedded.images.identity


def test_geirhos_through_load_cue_conflict(tmp_path):
    root = make_geirhos(tmp_path)  # 3 classes x 3 images; image 1 of each class has shape == texture
    cue = load_cue_conflict("geirhos", str(root), config.resolve("smoke"), image_size=32)
    assert cue.name == "geirhos" and cue.classnames == GEIRHOS_CLASSES and len(cue.classnames) == 16
    assert len(cue) == 9 and cue.n_conflicting == 6  # shape == texture images are kept in the set
    airplane, bear, cat = (GEIRHOS_CLASSES.index(c) for c in ("airplane", "bear", "cat"))
    # sorted by path: airplane1-airplane10, airplane2-bear11, airplane3-cat12, bear1-bear10, ...
    assert cue.shape_labels.tolist() == [airplane] * 3 + [bear] * 3 + [cat] * 3
    assert cue.texture_labels.tolist() == [airplane, bear, cat, bear, cat, airplane, cat, airplane, bear]
    assert cue.example_images([0, 8]).shape == (2, 32, 32, 3)
    # each image's two source images, which the shape bias' interval resamples (the embedded set has none)
    assert cue.shape_sources.tolist() == [f"{c}{i}" for c in ("airplane", "bear", "cat") for i in (1, 2, 3)]
    assert cue.texture_sources.tolist() == ["airplane10", "bear11", "cat12", "bear10", "cat11", "airplane12",
                                            "cat10", "airplane11", "bear12"]
    from clipalign_utils.steps.shape import analysis as shape_step, page as shape_page

    one_checkpoint = fake_run(tmp_path, epochs=(0,), model="toy")
    assert shape_page.data_sentences(one_checkpoint, shape_step.ShapeData(cue, ("a {}.",))) == [
        "1 checkpoint of toy; dataset Geirhos cue-conflict: 9 images, 6 with conflicting cues, 16 classes, "
        "1 prompt template",
        "the images reuse 9 objects and 9 texture images: the shape bias' interval resamples those, not the images "
        "(images that share one are decided alike)"]

    # ... and dropped by the formula: predicting the shape everywhere counts 6 shape hits, not 9.
    summary = shape_bias_summary(cue.shape_labels, cue.shape_labels, cue.texture_labels, n_boot=20)
    assert summary["shape_bias"] == 1.0 and summary["n_images"] == 6


def test_geirhos_default_input_size_is_224(tmp_path):
    cue = load_cue_conflict("geirhos", str(make_geirhos(tmp_path)), config.resolve("smoke"))
    assert cue.images.batch(0, 1).shape == (1, 224, 224, 3)


@pytest.mark.parametrize("root", ["", "   ", "does/not/exist", "empty"])
def test_geirhos_bad_root_names_the_parameter(tmp_path, monkeypatch, root):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="cue_conflict_root"):
        load_cue_conflict("geirhos", root, config.resolve("smoke"))


def test_human_reference_is_the_literature_value():
    assert HUMAN_SHAPE_BIAS == 0.96


# --- decisions by hand -------------------------------------------------------------------------

def test_formula_on_hand_made_decisions():
    # 6 conflicting images of world classes (shape, texture) and a model's answers:
    # shape hits: images 0, 3, 4; texture hits: 1; neither: 2, 5.
    shape = np.array([0, 0, 1, 1, 2, 2])
    texture = np.array([1, 2, 0, 2, 0, 1])
    predicted = np.array([0, 2, 3, 1, 2, 7])
    s = shape_bias_summary(predicted, shape, texture, n_boot=200, seed=3)
    assert s["shape_bias"] == pytest.approx(3 / 4)
    assert (s["shape_fraction"], s["texture_fraction"], s["neither_fraction"]) == pytest.approx((3 / 6, 1 / 6, 2 / 6))
    assert s["shape_fraction"] + s["texture_fraction"] + s["neither_fraction"] == pytest.approx(1.0)
    per_class = per_class_shape_bias(predicted, shape, texture).set_index("class")["shape_bias"]
    assert per_class.to_dict() == pytest.approx({0: 1 / 2, 1: 1.0, 2: 1.0})


def test_decision_titles_name_what_the_model_followed():
    names, textures = world.SHAPES, world.TEXTURES
    star, triangle, circle = names.index("star"), names.index("triangle"), names.index("circle")
    # a star wearing the triangle's canonical texture (dots)
    assert decision_name(triangle, star, triangle, names, textures) == "dots"
    assert decision_name(star, star, triangle, names, textures) == "star"
    assert decision_name(circle, star, triangle, names, textures) == "(circle)"
    titles = decision_titles([star], [triangle], [np.array([triangle]), np.array([star])], names, textures)
    assert titles == ["star·dots\n→ dots | star"]


# --- the notebook end to end -------------------------------------------------------------------

def _check_tables(run_dir, dataset: str, n_images: int):
    table = pd.read_csv(run_dir / "metrics" / "shape_bias.csv")
    assert list(table.columns[: len(CONTRACT_COLUMNS)]) == CONTRACT_COLUMNS
    run = checkpoints.discover_run(run_dir)
    assert table["checkpoint"].tolist() == [c.name for c in run.checkpoints]
    assert table["epoch"].tolist() == [c.epoch for c in run.checkpoints]
    assert (table["dataset"] == dataset).all() and (table["n_images"] == n_images).all()
    fractions = table[["shape_fraction", "texture_fraction", "neither_fraction"]]
    assert ((fractions >= 0) & (fractions <= 1)).all().all()
    np.testing.assert_allclose(fractions.sum(axis=1), 1.0, atol=1e-9)
    cue_hits = table["shape_fraction"] + table["texture_fraction"] > 0
    # finite where the model made a cue decision; nan exactly where it made none
    assert np.isfinite(table.loc[cue_hits, "shape_bias"]).all()
    assert table.loc[~cue_hits, "shape_bias"].isna().all()
    assert table["shape_bias"].between(0, 1).where(cue_hits, True).all()
    np.testing.assert_allclose(table.loc[cue_hits, "shape_bias"],
                               table.loc[cue_hits, "shape_fraction"] / fractions[cue_hits].iloc[:, :2].sum(axis=1))
    per_class = pd.read_csv(run_dir / "metrics" / "shape_bias_per_class.csv")
    assert list(per_class.columns[: len(PER_CLASS_COLUMNS)]) == PER_CLASS_COLUMNS
    assert set(per_class["checkpoint"]) == set(table["checkpoint"])
    assert per_class.groupby("checkpoint")["n_images"].sum().eq(n_images).all()
    return table, per_class


def test_notebook_smoke_embedded(smoke_run_copy, smoke_pipeline):
    run_step("shape", smoke_run_copy, "smoke", {}, progress=False)
    assert_same_table(smoke_run_copy, smoke_pipeline, "shape_bias")
    table, per_class = _check_tables(smoke_run_copy, "embedded", n_images=56)
    assert set(per_class["class"]) <= set(world.SHAPES)
    for name in ("shape_bias_vs_epoch", "shape_bias_fractions", "shape_bias_per_class", "cue_conflict_examples"):
        assert (smoke_run_copy / "figures" / f"{name}.png").stat().st_size > 0
    assert (smoke_run_copy / "notebooks" / "03_shape_texture_bias.ipynb").exists()


def test_notebook_smoke_geirhos(smoke_run_copy, tmp_path):
    root = make_geirhos(tmp_path / "geirhos")
    run_step("shape", smoke_run_copy, "smoke",
             {"cue_conflict_dataset": "geirhos", "cue_conflict_root": str(root)}, progress=False)
    table, per_class = _check_tables(smoke_run_copy, "geirhos", n_images=6)
    assert set(per_class["class"]) == {"airplane", "bear", "cat"}


def test_texture_then_shape_on_constructed_curves():
    from clipalign_utils.metrics.shape_bias import texture_then_shape

    epochs = [0, 0.5, 1, 2, 4]
    shifted = pd.DataFrame({"epoch": epochs, "shape_bias": [0.5, 0.2, 0.4, 0.8, 0.95],
                            "lo": [0.4, 0.1, 0.3, 0.7, 0.9], "hi": [0.6, 0.3, 0.5, 0.9, 1.0]})
    result = texture_then_shape(shifted)
    assert result["shift_shows"] and result["texture_phase"]["epoch"] == 0.5
    # Shape-biased from the start: no texture phase.
    flat = shifted.assign(shape_bias=[0.7, 0.7, 0.8, 0.9, 0.95], lo=[0.6] * 5, hi=[0.99] * 5)
    assert not texture_then_shape(flat)["shift_shows"]
    # Texture phase, but intervals overlap the end: not shown.
    overlapping = shifted.assign(hi=[0.6, 0.95, 0.5, 0.9, 1.0])
    assert not texture_then_shape(overlapping)["shift_shows"]


def test_texture_then_shape_leaves_out_checkpoints_at_chance():
    from clipalign_utils.metrics.shape_bias import texture_then_shape

    table = _shape_bias_table().assign(shape_at_chance=[True, True, False, False, False])
    # The guessing epoch 0.5 (0.2) no longer makes the texture phase: epoch 1 (0.4) does.
    result = texture_then_shape(table)
    assert result["first"]["epoch"] == 1 and result["texture_phase"]["epoch"] == 1
    assert result["left_out"]["epoch"].tolist() == [0, 0.5] and result["shift_shows"]
    assert not texture_then_shape(table.assign(shape_at_chance=True))["shift_shows"]


# --- the step module: measure's tables, the page's sentences and figures by hand ------------------

def _shape_bias_table():
    """Five checkpoints: a texture phase at epoch 0.5 (0.2 [0.1, 0.3]) and shape at the end (0.95)."""
    return pd.DataFrame({
        "checkpoint": [f"epoch_{e}" for e in ("0", "0.5", "1", "2", "4")], "epoch": [0, 0.5, 1, 2, 4],
        "dataset": "embedded", "shape_bias": [0.5, 0.2, 0.4, 0.8, 0.95], "lo": [0.4, 0.1, 0.3, 0.7, 0.9],
        "hi": [0.6, 0.3, 0.5, 0.9, 1.0], "shape_fraction": [0.05, 0.1, 0.2, 0.4, 0.5],
        "texture_fraction": [0.05, 0.4, 0.3, 0.1, 0.025], "neither_fraction": [0.9, 0.5, 0.5, 0.5, 0.475]})


def _tables(shape_predictions=None):
    per_class = pd.DataFrame({"checkpoint": ["epoch_0.5"] * 3 + ["epoch_4"] * 3, "epoch": [0.5] * 3 + [4] * 3,
                              "class": ["star", "circle", "square"] * 2,
                              "shape_bias": [0.0, 0.5, np.nan, 1.0, 0.75, np.nan], "n_images": 7,
                              "dataset": "embedded"})
    return {"shape_bias": _shape_bias_table(), "shape_bias_per_class": per_class,
            "shape_predictions": shape_predictions}


def test_shift_sentences_by_hand():
    from clipalign_utils.steps.shape.page import shift_sentences

    assert shift_sentences(_shape_bias_table()) == [
        "first checkpoint (epoch 0): shape bias 0.500",
        "lowest before the end: epoch 0.5, shape bias 0.200 [0.100, 0.300]",
        "last checkpoint (epoch 4): shape bias 0.950 [0.900, 1.000]",
        "the lowest leans towards texture (below 0.5); the last leans towards shape (above 0.5); their intervals "
        "are separated",
        "texture-then-shape shift shows: yes",
        "last checkpoint's shape bias minus the human reference's (0.96): -0.010"]
    flat = _shape_bias_table().assign(shape_bias=[0.7, 0.7, 0.8, 0.9, 0.98], hi=0.99)
    assert shift_sentences(flat)[3:] == [
        "the lowest does not lean towards texture (below 0.5); the last leans towards shape (above 0.5); their "
        "intervals are not separated",
        "texture-then-shape shift shows: no", "last checkpoint's shape bias minus the human reference's (0.96): +0.020"]


def test_chance_and_shift_sentences_say_the_cue_decisions_and_leave_out_guessing():
    from clipalign_utils.steps.shape.page import NO_SHIFT, chance_sentences, shift_sentences

    table = _shape_bias_table().assign(n_images=40, n_cue_decisions=[4, 20, 20, 20, 1], cue_chance=0.25,
                                       shape_at_chance=[True, False, False, False, False],
                                       cue_fraction_lo=[0.2, 0.3, 0.35, 0.4, 0.3])
    assert chance_sentences(table) == [
        "at chance on the cue-conflict images (the lower end of the interval of the share decided for the shape or "
        "the texture class does not lie above 0.250, two of 8 classes): epoch 0 (lower end 0.200); their shape bias "
        "describes guessing, and the shift below and the synthesis' trend leave them out"]
    said = shift_sentences(table)
    assert said[0] == "first checkpoint above chance (epoch 0.5): shape bias 0.200 over 20 cue decisions of 40 images"
    assert said[2] == ("last checkpoint (epoch 4): shape bias 0.950 [0.900, 1.000] over 1 cue decision of 40 images")
    assert said[-1] == "last checkpoint's shape bias minus the human reference's (0.96): -0.010"
    late = shift_sentences(table.assign(shape_at_chance=[False, False, False, False, True]))
    assert late[0].startswith("first checkpoint (epoch 0)") and late[2].startswith("last checkpoint above chance (epoch 2)")
    assert late[-1].startswith("last checkpoint above chance: its shape bias minus the human reference's")
    assert chance_sentences(table.assign(shape_at_chance=False)) == [
        "every checkpoint decides for a cue above chance (the interval of the share of images decided for the shape "
        "or the texture class lies above 0.250, two of 8 classes; its lowest lower end 0.200)"]
    guessing = shift_sentences(table.assign(shape_at_chance=True))
    assert guessing == [NO_SHIFT]  # no checkpoint's numbers read as a texture phase or a last reading
    assert chance_sentences(table.assign(shape_at_chance=True))[0].endswith("have no checkpoint left to read")
    assert chance_sentences(_shape_bias_table()) == []  # a table written before the judgement


def test_the_at_chance_sentence_names_the_lower_end_it_rests_on_where_the_shares_lie_above_chance():
    # the page's table shows shape + texture fractions (0.34 at epoch 4) above chance: the verdict reads the
    # interval's lower end (not shown there), which the sentence gives
    from clipalign_utils.steps.shape.page import chance_sentences

    table = _shape_bias_table().assign(cue_chance=0.25, shape_at_chance=[False, False, False, False, True],
                                       shape_fraction=[0.2, 0.2, 0.2, 0.2, 0.16], texture_fraction=0.18,
                                       cue_fraction_lo=[0.3, 0.3, 0.3, 0.3, 0.25])
    said, = chance_sentences(table)
    assert "the lower end of the interval of the share" in said and "epoch 4 (lower end 0.250);" in said


def test_the_per_class_and_agreement_sentences_name_the_checkpoint_above_chance_they_read():
    from clipalign_utils.steps.shape.page import agreement_sentences, per_class_sentences

    tables = _tables()
    tables["shape_bias"] = tables["shape_bias"].assign(shape_at_chance=[False, False, False, False, True])
    tables["shape_bias_per_class"] = tables["shape_bias_per_class"].assign(
        checkpoint=["epoch_0.5"] * 3 + ["epoch_2"] * 3, epoch=[0.5] * 3 + [2] * 3)
    assert per_class_sentences(tables)[0] == ("last checkpoint above chance (epoch 2): classes with shape bias > 0.5: "
                                              "2 of 2 with cue decisions")
    alone = _tables()
    alone["shape_bias"] = alone["shape_bias"].assign(shape_at_chance=[True, True, False, True, True])
    assert agreement_sentences(None, alone) == ["one checkpoint to show (epoch_1): the others are at chance or "
                                                "there is no other"]


def test_fraction_sentences_name_each_checkpoint_once():
    from clipalign_utils.steps.shape.page import fraction_sentences

    assert fraction_sentences(_shape_bias_table()) == [
        "epoch 0: shape 0.050, texture 0.050, neither 0.900",
        "epoch 0.5: shape 0.100, texture 0.400, neither 0.500",
        "epoch 4: shape 0.500, texture 0.025, neither 0.475"]
    # The first checkpoint is the texture phase: said once.
    assert fraction_sentences(_shape_bias_table().iloc[1:]) == [
        "epoch 0.5: shape 0.100, texture 0.400, neither 0.500",
        "epoch 4: shape 0.500, texture 0.025, neither 0.475"]


def test_reference_and_per_class_sentences_by_hand():
    from clipalign_utils.steps.shape.page import per_class_sentences, reference_sentences

    assert reference_sentences() == ["human reference: 0.96 — literature value (Geirhos et al. 2019, model-vs-human "
                                     "cue-conflict subjects 1–10 (mean)), not computed here"]
    # Last checkpoint (epoch 4): star 1.0 and circle 0.75 lean to shape; square made no cue decision, at the
    # texture-phase checkpoint (epoch 0.5) either: the figure's empty row is said (a reader review)
    assert per_class_sentences(_tables()) == [
        "last checkpoint: classes with shape bias > 0.5: 2 of 2 with cue decisions",
        "epoch 0.5: no cue decision for square (every answer matched neither cue), so its row has no epoch 0.5 marker",
        "epoch 4: no cue decision for square (every answer matched neither cue), so its row has no epoch 4 marker"]
    tables = _tables()
    tables["shape_bias_per_class"]["shape_bias"] = [np.nan, np.nan, 0.2, 1.0, 0.75, 0.5]
    assert per_class_sentences(tables)[1:] == [
        "epoch 0.5: no cue decision for star, circle (every answer matched neither cue), so their rows have no "
        "epoch 0.5 marker"]


def test_a_class_at_exactly_one_half_does_not_lean_to_shape():
    """"classes with shape bias > 0.5" counts strictly above: a class deciding as often by shape as by texture
    leans to neither (mutation audit: >= went unnoticed)."""
    from clipalign_utils.steps.shape.page import per_class_sentences

    tables = _tables()
    tables["shape_bias_per_class"]["shape_bias"] = [0.0, 0.5, np.nan, 0.5, 0.75, np.nan]
    assert per_class_sentences(tables)[0] == "last checkpoint: classes with shape bias > 0.5: 1 of 2 with cue decisions"


def test_per_class_and_curve_figures_pick_the_texture_phase_and_the_last_checkpoint(embedded):
    from clipalign_utils.steps.shape.analysis import ShapeData
    from clipalign_utils.steps.shape.page import curve_figure, human_label, per_class_figure

    data = ShapeData(embedded, ("a {}.",))
    assert human_label(data) == "humans on Geirhos' stimuli (not this world)"
    fig = per_class_figure(data, _tables())
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert labels == ["epoch 0.5", "epoch 0.5: overall 0.200", "epoch 4", "epoch 4: overall 0.950",
                      "humans on Geirhos' stimuli (not this world)"]
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["square", "circle", "star"]
    fig = curve_figure(data, _tables())
    assert "humans on Geirhos' stimuli (not this world)" in fig.axes[0].get_legend_handles_labels()[1]


def test_with_every_checkpoint_at_chance_the_per_class_figure_shows_the_ends_and_says_they_guess(embedded):
    # the lowest shape bias of guessing (epoch 0.5) is no texture phase: the first and the last are shown
    from clipalign_utils.steps.shape.analysis import ShapeData
    from clipalign_utils.steps.shape.page import fraction_sentences, per_class_figure, per_class_sentences

    tables = _tables()
    tables["shape_bias"] = tables["shape_bias"].assign(shape_at_chance=True)
    tables["shape_bias_per_class"] = tables["shape_bias_per_class"].assign(
        checkpoint=["epoch_0"] * 3 + ["epoch_4"] * 3, epoch=[0] * 3 + [4] * 3)
    labels = per_class_figure(ShapeData(embedded, ("a {}.",)), tables).axes[0].get_legend_handles_labels()[1]
    assert labels[0] == "epoch 0 (at chance on the cue-conflict images)"
    assert labels[2] == "epoch 4 (at chance on the cue-conflict images)"
    assert per_class_sentences(tables)[0] == (
        "every checkpoint is at chance on the cue-conflict images: the figure shows the first and the last (epoch 0 "
        "and 4), no texture phase, and their classes' shape biases describe guessing")
    assert [line.split(":")[0] for line in fraction_sentences(tables["shape_bias"])] == ["epoch 0", "epoch 4"]
    one = {name: table[table["checkpoint"] == "epoch_4"] for name, table in tables.items()  # a run of one
           if table is not None}
    assert per_class_sentences(one)[0] == (
        "every checkpoint is at chance on the cue-conflict images: the figure shows the one checkpoint (epoch 4), "
        "no texture phase, and its classes' shape biases describe guessing")


def _predictions_table(embedded, last_wrong: int):
    """epoch_0.5 answers every texture; epoch_4 every shape but the first ``last_wrong`` images' (their texture)."""
    shape, texture = embedded.shape_labels, embedded.texture_labels
    last = np.where(np.arange(len(shape)) < last_wrong, texture, shape)
    n = len(shape)
    # rows out of image order: the lookup sorts them
    return pd.DataFrame({"checkpoint": ["epoch_4"] * n + ["epoch_0.5"] * n,
                         "image": np.r_[np.arange(n)[::-1], np.arange(n)],
                         "predicted": np.r_[last[::-1], texture]})


def test_examples_are_evenly_spaced_and_titled_with_both_decisions(embedded):
    from clipalign_utils.steps.shape.analysis import ShapeData, example_indices
    from clipalign_utils.steps.shape.page import agreement_sentences, examples_figure

    data = ShapeData(embedded, ("a {}.",))
    picked = [0, 10, 20, 30, 40, 50, 61, 71, 81, 91, 101, 111]  # 12 of the 112 conflicting images
    assert example_indices(data).tolist() == picked
    assert example_indices(data, n=3).tolist() == [0, 56, 111]
    tables = _tables(_predictions_table(embedded, last_wrong=28))
    fig = examples_figure(data, tables)
    assert fig._suptitle.get_text() == "shape·texture → epoch 0.5 | epoch 4"
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert len(titles) == 12
    names, textures = world.SHAPES, world.TEXTURES
    for title, k in zip(titles, picked):
        shape, texture = names[embedded.shape_labels[k]], textures[embedded.texture_labels[k]]
        assert title == f"{shape}·{texture}\n→ {texture} | {texture if k < 28 else shape}"
    # Both answer the texture on the first 28 of 112 images.
    assert agreement_sentences(data, tables) == ["the two checkpoints give the same answer on 25% of the "
                                                 "conflicting images"]
    # every checkpoint at chance: the first and the last are shown, and what they share is guesses (an audit read
    # "the two checkpoints give the same answer on 0% of the conflicting images" as data on such a page)
    guessing = _tables(_predictions_table(embedded, last_wrong=28).replace({"checkpoint": {"epoch_0.5": "epoch_0"}}))
    guessing["shape_bias"] = guessing["shape_bias"].assign(shape_at_chance=True)
    assert agreement_sentences(data, guessing) == [
        "every checkpoint is at chance on the cue-conflict images: the first and the last (epoch 0 and 4) give the "
        "same answer on 25% of the conflicting images, which describes guessing, not a cue they share"]


def test_data_sentences_and_measure_with_a_stub_encoder(embedded, monkeypatch, tmp_path):
    from types import SimpleNamespace

    from clipalign_utils.steps.shape import analysis as shape_step, page as shape_page

    run = fake_run(tmp_path, epochs=(0, 1), model="toy")
    data = shape_step.ShapeData(embedded, ("a {}.", "a photo of a {}."))
    assert shape_page.data_sentences(run, data) == [
        "2 checkpoints of toy; the embedded set: 112 images, 112 with conflicting cues, 8 classes, 2 prompt templates"]
    # one template is one (an audit read "16 classes, 1 prompt templates")
    assert shape_page.data_sentences(run, shape_step.ShapeData(embedded, ("a {}.",))) == [
        "2 checkpoints of toy; the embedded set: 112 images, 112 with conflicting cues, 8 classes, 1 prompt template"]

    answers = {"epoch_0": embedded.texture_labels, "epoch_1": embedded.shape_labels}
    seen = []

    def stub_encoders(run_, device, batch_size, cache_dir=None, progress=True):
        seen.append(cache_dir)
        for checkpoint in run_.checkpoints:
            yield checkpoint, SimpleNamespace(classify=lambda images, classnames, templates, c=checkpoint: answers[c.name])

    monkeypatch.setattr(shape_step, "run_encoders", stub_encoders)
    params = {"device": "cpu", "eval_batch_size": 8, "n_boot": 20, "eval_seed": 0, "shape_classifier": "direct"}
    tables = shape_step.measure(run, params, data)
    assert seen == [tmp_path / "cache"]
    assert list(tables) == ["shape_bias", "shape_bias_per_class", "shape_predictions", "shape_trend"]
    assert tables["shape_bias"]["shape_bias"].tolist() == [0.0, 1.0]
    # two checkpoints: no trend to test
    assert tables["shape_trend"].iloc[0][["measure", "n_checkpoints"]].tolist() == ["texture_bias", 2]
    assert tables["shape_trend"][["spearman", "lo", "hi"]].isna().all().all()
    assert tables["shape_bias"][["model", "n_templates"]].values.tolist() == [["toy", 2], ["toy", 2]]
    assert list(tables["shape_bias_per_class"].columns) == shape_step.PER_CLASS_COLUMNS
    assert list(tables["shape_predictions"].columns) == ["checkpoint", "image", "predicted"]
    assert np.array_equal(shape_step.predictions(tables, "epoch_0"), embedded.texture_labels)


def _model_vs_human_16_class_mapping(probabilities):
    """model-vs-human's ImageNetProbabilitiesTo16ClassesMapping.__call__ (datasets/decision_mappings.py),
    transcribed: each category's mean probability, categories sorted by it, highest first."""
    from clipalign_utils.data.geirhos import IMAGENET_INDICES

    categories = sorted(IMAGENET_INDICES)  # get_human_object_recognition_categories: alphabetical
    aggregated = np.transpose([np.mean(np.take(probabilities, IMAGENET_INDICES[c], axis=-1), axis=-1)
                               for c in categories])
    return np.take(categories, np.flip(np.argsort(aggregated, axis=-1), axis=-1), axis=-1)


def test_imagenet_decisions_are_model_vs_humans_clip_decisions():
    from clipalign_utils.metrics.shape_bias import imagenet_category_decisions

    indices = [IMAGENET_INDICES[name] for name in GEIRHOS_CLASSES]
    # By hand: one dog class at cosine 0.30 and the one knife class at 0.28. Direct argmax says dog; averaged
    # over dog's 118 ImageNet classes the dog's probability is (e^30 + 117) / 118 / Z against knife's e^28 / Z.
    logits = np.zeros((2, 1000))
    logits[0, 404] = 0.2  # airplane
    logits[1, 152], logits[1, 499] = 0.30, 0.28
    assert [GEIRHOS_CLASSES[k] for k in imagenet_category_decisions(logits, indices)] == ["airplane", "knife"]
    # Against model-vs-human's own mapping on CLIP's logits (100 × cosine, softmax), for random images.
    cosine = np.random.default_rng(0).uniform(-0.1, 0.35, size=(64, 1000))
    scaled = 100 * cosine
    probabilities = np.exp(scaled - scaled.max(axis=1, keepdims=True))
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    theirs = _model_vs_human_16_class_mapping(probabilities)[:, 0]
    assert [GEIRHOS_CLASSES[k] for k in imagenet_category_decisions(cosine, indices)] == theirs.tolist()
    assert len({name for group in theirs for name in [group]}) > 3  # the random images do not all agree


def test_shape_step_with_the_imagenet_classifier_and_its_refusal_elsewhere(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from clipalign_utils import registry
    from clipalign_utils.errors import ParameterError
    from clipalign_utils.steps.shape import analysis as shape_step

    root = make_geirhos(tmp_path / "geirhos", classes=("airplane", "knife", "dog"), per_class=2)
    params = config.resolve("smoke", cue_conflict_dataset="geirhos", cue_conflict_root=str(root),
                            shape_classifier="imagenet")
    registry.get("shape").check(params)
    with pytest.raises(ParameterError, match="parameter shape_classifier='imagenet' maps ImageNet's classes onto"):
        registry.get("shape").check({**params, "cue_conflict_dataset": "embedded"})
    data = shape_step.load(fake_run(tmp_path, epochs=(0,), image_size=32), params)
    asked = []

    def logits(images, classnames, templates):  # every image: knife a little above one dog class
        asked.append((len(classnames), len(templates)))
        out = np.zeros((len(images), 1000))
        out[:, 152], out[:, 499] = 0.30, 0.28
        return out

    stub = SimpleNamespace(zero_shot_logits=logits, classify=None)
    monkeypatch.setattr(shape_step, "run_encoders", lambda run, *a, **k: iter([(run.checkpoints[0], stub)]))
    tables = shape_step.measure(fake_run(tmp_path, epochs=(0,)), params, data)
    knife = data.cue.classnames.index("knife")
    assert (shape_step.predictions(tables, "epoch_0") == knife).all()
    assert asked == [(1000, 80)] and tables["shape_bias"]["classifier"].tolist() == ["imagenet"]


def test_texture_phase_is_chosen_before_the_last_checkpoint():
    """The texture phase is the lowest shape bias *before* the last checkpoint, even where the last is lowest."""
    from clipalign_utils.metrics.shape_bias import texture_then_shape

    table = pd.DataFrame({"epoch": [0, 1, 2, 4], "shape_bias": [0.6, 0.55, 0.7, 0.3],
                          "lo": [0.5, 0.45, 0.6, 0.2], "hi": [0.7, 0.65, 0.8, 0.4]})
    result = texture_then_shape(table)
    # min over epochs 0, 1, 2 is 0.55 at epoch 1 (not the last checkpoint's 0.3)
    assert result["texture_phase"]["epoch"] == 1
    assert result["texture_phase_leans_texture"] is False
    assert result["shift_shows"] is False


def test_texture_then_shape_needs_the_intervals_apart_not_touching():
    from clipalign_utils.metrics.shape_bias import texture_then_shape

    # texture phase at epoch 1 (0.2, interval up to 0.6), last at 0.9 with its interval from 0.6: they touch
    touching = pd.DataFrame({"epoch": [0, 1, 2], "shape_bias": [0.4, 0.2, 0.9], "lo": [0.3, 0.1, 0.6],
                             "hi": [0.5, 0.6, 1.0]})
    result = texture_then_shape(touching)
    assert result["texture_phase_leans_texture"] and result["last_leans_shape"]
    assert not result["separated"] and not result["shift_shows"]
    assert texture_then_shape(touching.assign(hi=[0.5, 0.59, 1.0]))["shift_shows"]


def test_summary_columns_name_the_interval_bounds_of_the_shape_bias():
    from clipalign_utils.steps.shape.analysis import summary_columns

    table = pd.DataFrame({"checkpoint": ["a", "b"], "dataset": "embedded", "shape_bias": [0.3, 0.7],
                          "lo": [0.2, 0.6], "hi": [0.4, 0.8], "shape_at_chance": [True, False]})
    read = summary_columns(table, None, "shape_bias")
    assert read.values.tolist() == [["a", "embedded", 0.3, 0.2, 0.4, True], ["b", "embedded", 0.7, 0.6, 0.8, False]]
    assert list(read.columns) == ["checkpoint", "cue_conflict_dataset", "shape_bias", "shape_bias_lo",
                                  "shape_bias_hi", "shape_at_chance"]


def test_per_class_rows_are_named_after_their_shape_class(monkeypatch, tmp_path):
    """A stub checkpoint that follows the shape of the cat images and the texture of every other: the per-class
    table gives cat a shape bias of 1 and the other classes 0, under their own names."""
    from types import SimpleNamespace

    from clipalign_utils.steps.shape import analysis as shape_step

    shape = np.array([0, 0, 1, 1, 2, 2])     # cat, cat, dog, dog, car, car
    texture = np.array([1, 2, 0, 2, 0, 1])
    answers = np.where(shape == 0, shape, texture)
    cue = SimpleNamespace(images=None, shape_labels=shape, texture_labels=texture, classnames=("cat", "dog", "car"),
                          name="toy", shape_sources=None, texture_sources=None)
    encoder = SimpleNamespace(classify=lambda images, classnames, templates: answers)
    monkeypatch.setattr(shape_step, "run_encoders", lambda run_, *a, **k: ((c, encoder) for c in run_.checkpoints))
    run = fake_run(tmp_path, epochs=(0,), model="toy")
    params = {"device": "cpu", "eval_batch_size": 8, "n_boot": 20, "eval_seed": 0, "shape_classifier": "direct"}
    tables = shape_step.measure(run, params, shape_step.ShapeData(cue, ("a {}.",)))
    per_class = tables["shape_bias_per_class"].set_index("class")
    assert per_class["shape_bias"].to_dict() == {"car": 0.0, "cat": 1.0, "dog": 0.0}
    assert per_class["n_images"].to_dict() == {"car": 2, "cat": 2, "dog": 2}
    assert tables["shape_bias"]["shape_bias"].tolist() == [pytest.approx(1 / 3)]


def test_the_shape_bias_replicates_are_the_intervals_own_paired_over_checkpoints(embedded):
    """shape_bias_replicates: the draws behind shape_bias_summary's interval (images or sources), the same
    resample for every checkpoint's decisions (a checkpoint deciding as another does has its replicates)."""
    from clipalign_utils.metrics.shape_bias import shape_bias_replicates
    from clipalign_utils.metrics.stats import percentile_interval

    rng = np.random.default_rng(2)
    shape, texture = embedded.shape_labels, embedded.texture_labels
    decided = np.where(rng.random(shape.size) < 0.5, shape, texture)
    replicates = shape_bias_replicates(decided, shape, texture, n_boot=300, seed=4)
    summary = shape_bias_summary(decided, shape, texture, n_boot=300, seed=4)
    assert percentile_interval(replicates) == (summary["lo"], summary["hi"])
    # replicate r is over one resample: the decisions' shape hits counted over it by hand
    rows = np.random.default_rng(4).integers(0, shape.size, size=shape.size)
    hits = (decided == shape)[rows]
    assert replicates[0] == hits.sum() / (hits.sum() + (decided == texture)[rows].sum())
    sources = {"shape_sources": np.arange(shape.size) // 4, "texture_sources": np.arange(shape.size) % 6}
    crossed = shape_bias_replicates(decided, shape, texture, n_boot=300, seed=4, **sources)
    assert percentile_interval(crossed) == tuple(shape_bias_summary(decided, shape, texture, n_boot=300, seed=4,
                                                                    **sources)[k] for k in ("lo", "hi"))


def test_the_texture_bias_trend_leaves_guessing_checkpoints_out_by_hand():
    from clipalign_utils.steps.shape.analysis import texture_bias_trend

    shape_bias = pd.DataFrame({"epoch": [0.0, 1.0, 2.0, 3.0], "shape_bias": [0.9, 0.2, 0.4, 0.7],
                               "shape_at_chance": [True, False, False, False]})
    # replicates of the shape bias: the first guessing (never read), then two rising and one not
    replicates = np.array([[0.0, 0.0, 0.0], [0.2, 0.3, 0.5], [0.4, 0.4, 0.4], [0.7, 0.6, 0.3]])
    trend = texture_bias_trend(shape_bias, replicates).iloc[0]
    # texture bias 0.8, 0.6, 0.3 over epochs 1–3: ρ −1; the replicates' texture biases: [0.8, 0.6, 0.3] → −1,
    # [0.7, 0.6, 0.4] → −1, [0.5, 0.6, 0.7] → +1. Percentiles of [−1, −1, 1]: −1 and −1 + 0.95 · 2 = 0.9
    assert trend[["measure", "n_checkpoints"]].tolist() == ["texture_bias", 3]
    assert trend[["spearman", "lo", "hi"]].tolist() == pytest.approx([-1.0, -1.0, 0.9])


def test_the_shape_pages_trend_sentence_by_hand(embedded):
    from clipalign_utils.steps.shape import analysis as shape_step, page as shape_page

    data = shape_step.ShapeData(embedded, ("a {}.",))

    def trend(rho, lo, hi, n=4):
        return pd.DataFrame([{"measure": "texture_bias", "spearman": rho, "lo": lo, "hi": hi, "n_checkpoints": n}])

    assert shape_page.trend_sentences(data, trend(-0.8, -1.0, -0.4)) == [
        "texture bias over 4 checkpoints above chance falls: Spearman ρ(epoch, texture bias) = -0.80 [-1.00, -0.40], "
        "the interval resampling the images alike at every checkpoint (this run's course; training's own noise "
        "needs seeds)"]
    assert shape_page.trend_sentences(data, trend(0.8, 0.2, 1.0))[0].startswith(
        "texture bias over 4 checkpoints above chance rises: ")
    assert shape_page.trend_sentences(data, trend(-0.4, -1.0, 0.4))[0].startswith(
        "texture bias over 4 checkpoints above chance shows no clear trend: ")
    assert shape_page.trend_sentences(data, trend(np.nan, np.nan, np.nan, n=1)) == [
        "texture bias over training: no trend to read over 1 checkpoint above chance (a trend needs 3, and a texture "
        "bias that changes)"]
    assert shape_page.trend_sentences(data, trend(-0.4, np.nan, np.nan))[0].endswith(
        "= -0.40, no interval (the resampled images rarely define ρ)")
