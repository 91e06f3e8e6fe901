"""The quality-variation experiment's statistics, on hand-made curves over seeds."""

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from clipalign_utils.metrics import mechanism as m, tradeoff
from clipalign_utils.steps.quality_experiment import analysis as experiment, page as experiment_page

EPOCHS = np.array([0.0, 0.25, 0.5, 1.0, 2.0, 3.0, 6.0])  # early window: 0 < epoch ≤ 2


def test_early_decline_by_hand():
    assert m.early_decline(EPOCHS, [0.2, 0.5, 0.7, 0.6, 0.65, 0.5, 0.4]) == pytest.approx(0.3)  # 0.7 − 0.4
    assert m.early_decline(EPOCHS, [0.2, 0.3, 0.3, 0.4, 0.4, 0.6, 0.8]) == pytest.approx(-0.4)  # 0.4 − 0.8
    assert np.isnan(m.early_decline([0.0, 6.0], [0.1, 0.2]))  # no early checkpoint


def test_welch_difference_by_hand():
    a = pd.DataFrame({"value": [1.0, 2.0, 3.0]})
    b = pd.DataFrame({"value": [0.0, 0.0, 0.0, 0.0]})
    diff, lo, hi = m.welch_difference(a, b)
    # var(a)/3 = 1/3, var(b) = 0: dof = 2, half-width t(0.975, 2)·sqrt(1/3)
    from scipy import stats
    half = stats.t.ppf(0.975, 2) * np.sqrt(1 / 3)
    assert diff == pytest.approx(2.0) and lo == pytest.approx(2 - half) and hi == pytest.approx(2 + half)


def test_outcomes_follow_the_interval():
    assert tradeoff.above_zero(0.1, 0.3) == "reproduced" and tradeoff.above_zero(-0.3, -0.1) == "not reproduced"
    assert tradeoff.above_zero(-0.1, 0.1) == "inconclusive"
    assert tradeoff.above_zero(float("nan"), float("nan")) == "inconclusive"
    assert tradeoff.below_zero(-0.3, -0.1) == "reproduced" and tradeoff.below_zero(0.1, 0.3) == "not reproduced"


def _table():
    """Two settings × 3 seeds: with variation the seen families peak early and decline, the noise drop
    falls; in the clean world neither happens."""
    rows = []
    for setting, variation in [("clean", 0.0), ("variation 0.6, held out: impulse_noise", 0.6)]:
        for seed in range(3):
            jitter = 0.01 * seed
            for k, epoch in enumerate(EPOCHS):
                seen = [0.5, 0.7, 0.8, 0.75, 0.7, 0.65, 0.6][k] + jitter if variation else np.nan
                unseen = 0.6 + 0.02 * k + jitter
                rows.append({"setting": setting, "seed": seed, "epoch": epoch, "checkpoint": f"epoch_{epoch:g}",
                             "iqa_srcc": 0.4 + 0.01 * k + jitter, "within_seen_srcc": seen,
                             "within_unseen_srcc": unseen, "within_family_srcc": unseen if not variation else seen,
                             "texture_bias": 0.8 - 0.05 * k + jitter,
                             "noise_drop": (0.5 - 0.05 * k if variation else 0.2 + 0.01 * k) + jitter,
                             "at_chance": k == 0})
    table = pd.DataFrame(rows)
    settings = pd.DataFrame({"setting": ["clean", "variation 0.6, held out: impulse_noise"],
                             "quality_variation": [0.0, 0.6],
                             "quality_families": ["", "additive_gaussian_noise, gaussian_blur"],
                             "texture_correlation": [0.8, 0.8], "n_seeds": [3, 3]})
    return table, settings


def test_predictions_on_hand_made_curves():
    table, settings = _table()
    predicted = experiment.predictions(table, settings).set_index(["prediction", "setting"])
    held_out = "variation 0.6, held out: impulse_noise"
    seen = predicted.loc[("1a within-family alignment declines for seen families", held_out)]
    assert seen["mean"] == pytest.approx(0.2) and seen["outcome"] == "reproduced"  # 0.8 − 0.6 in every seed
    versus = predicted.loc[("1b seen families decline more than unseen ones", held_out)]
    # unseen rises 0.6 → 0.72 with the early best 0.68 (epoch 2): decline −0.04; seen − unseen = 0.24
    assert versus["mean"] == pytest.approx(0.24) and versus["outcome"] == "reproduced"
    assert predicted.loc[("2 the normalized noise drop falls", held_out), "outcome"] == "reproduced"
    assert predicted.loc[("2 the normalized noise drop falls", "clean"), "outcome"] == "not reproduced"
    # "falls" as predicted where noise was seen; not reproduced (it rises) as predicted where none was
    assert predicted.loc[("2 the normalized noise drop falls", held_out), "as_predicted"] == "yes"
    assert predicted.loc[("2 the normalized noise drop falls", "clean"), "as_predicted"] == "yes"
    assert predicted.loc[("1a within-family alignment declines for seen families", held_out), "as_predicted"] == "yes"
    assert experiment.as_predicted("2 the normalized noise drop falls", "clean", "reproduced", {"clean": False}) == "no"
    assert experiment.as_predicted("2 the normalized noise drop falls", "x", "inconclusive", {"x": True}) == "unsettled"
    # an inconclusive trend settles nothing, where noise was held out too (3 seeds' wide intervals would pass it)
    assert experiment.as_predicted("2 the normalized noise drop falls", "x", "inconclusive", {}) == "unsettled"
    assert experiment.as_predicted("2 the normalized noise drop falls", "x", "not reproduced", {}) == "yes"
    assert experiment.as_predicted("3 alignment and texture bias move together", "x", "not reproduced", {}) == "no"
    # the texture control: expected to fall where shape is the more reliable cue; with equal cues, a question
    assert experiment.as_predicted("control: texture bias falls", "x", "not reproduced", {}) == "no"
    for outcome in ("reproduced", "not reproduced", "inconclusive"):
        assert experiment.as_predicted("control: texture bias falls", "x", outcome, {}, {"x"}) == "not predicted"
    assert experiment.as_predicted("2 the normalized noise drop falls", "x", "reproduced", {"x": True}, {"x"}) == "yes"
    equal = experiment.predictions(table, settings.assign(texture_correlation=[1.0, 0.8])).set_index(
        ["prediction", "setting"])
    assert equal.loc[("control: texture bias falls", "clean"), "as_predicted"] == "not predicted"
    assert equal.loc[("control: texture bias falls", held_out), "as_predicted"] == "yes"
    assert predicted.loc[("control: texture bias falls", "clean"), "mean"] == -1.0  # every seed ranks perfectly
    lines = experiment_page.sentences(predicted.reset_index(), settings)
    assert any("falls — as predicted (noise seen in training: expected to fall)" in line for line in lines)
    assert any("rises — as predicted (noise not seen in training: not expected to fall)" in line for line in lines)
    assert not any("as reliable as shape" in line for line in lines)  # no control setting in this table


def test_texture_control_sentence_reads_the_outcome():
    table, settings = _table()
    control = table[table["setting"] == "clean"].assign(setting="clean, texture_correlation=1")
    control["texture_bias"] = 0.4 + 0.05 * control["epoch"].rank(method="dense")  # rises: no shift to shape
    table = pd.concat([table, control], ignore_index=True)
    settings = pd.concat([settings, settings.iloc[:1].assign(setting="clean, texture_correlation=1",
                                                             texture_correlation=1.0)], ignore_index=True)
    lines = experiment_page.sentences(experiment.predictions(table, settings), settings)
    control_line = [line for line in lines if "control" in line and "texture_correlation=1" in line]
    assert len(control_line) == 1 and "**not reproduced — with texture as reliable as shape the shift towards " \
        "shape does not appear" in control_line[0]
    # ... and names where it does appear (clean among them: texture bias falls in every seed); an interval that does not
    # settle it says so, and draws no conclusion about the world's design
    assert ": where it does appear (*clean*, " in control_line[0] and "it follows from the world's design" in control_line[0]
    assert experiment_page._control_reading("inconclusive", ["clean"]) == \
        "the seeds do not settle whether the shift towards shape remains"


def test_the_chapters_list_of_predictions_names_every_prediction_the_table_reports():
    # the table and sentences report the texture control; the chapter's numbered list left it out
    import re
    from pathlib import Path

    source = (Path(__file__).parents[1] / "notebooks" / "09_quality_experiment.py").read_text()
    intro = source[source.index("**Predictions**"):source.index("Every number below")]
    items = [item.group(1) for item in re.finditer(r"^# \d+\. (.*)$", intro, re.MULTILINE)]
    assert len(items) > 1
    table, settings = _table()
    for prediction in dict.fromkeys(experiment.predictions(table, settings)["prediction"]):
        label = prediction.split()[0]
        if not label[0].isdigit():  # a prediction without a number is named by its statement in the list
            assert any(item.startswith(prediction) for item in items), prediction


def test_settings_are_named_by_their_world(tmp_path):
    for name, record in [("a", {"seed": 0, "quality_variation": 0.0}),
                         ("b", {"seed": 1, "quality_variation": 0.6,
                                "quality_families": ["jpeg_compression", "contrast_change", "mean_shift",
                                                     "change_of_color_saturation", "quantization_noise"]}),
                         ("c", {"seed": 0, "quality_variation": 0.0, "texture_correlation": 1.0})]:
        (tmp_path / "sweep" / name / "metrics").mkdir(parents=True)
        (tmp_path / "sweep" / name / "train_params.json").write_text(json.dumps(record))
        (tmp_path / "sweep" / name / "metrics" / "noise.csv").write_text("")
    (tmp_path / "sweep" / "unfinished").mkdir()
    (tmp_path / "sweep" / "unfinished" / "train_params.json").write_text("{}")
    runs = experiment.expand_run_dirs([tmp_path])
    assert [r.name for r in runs] == ["a", "b", "c"]
    labels = [experiment.setting_label(experiment.world_of(r)) for r in runs]
    assert labels == ["clean", "variation 0.6, held out: additive_gaussian_noise, gaussian_blur, impulse_noise",
                      "clean, texture_correlation=1"]


def test_an_experiments_sweeps_are_read_in_the_order_its_record_declares(tmp_path):
    """The chapter's settings, its tables' and its grid's rows, follow the experiment's plan (clean and varied
    first, the controls last), not its folders' names (heldout, partial, texture_control, variation)."""
    (tmp_path / "experiment.json").write_text(json.dumps({"sweeps": {"variation": {}, "partial": {},
                                                                     "heldout": {}}}))
    for sweep in ("heldout", "partial", "variation", "extra"):
        (tmp_path / sweep / "run" / "metrics").mkdir(parents=True)
        (tmp_path / sweep / "run" / "train_params.json").write_text("{}")
        (tmp_path / sweep / "run" / "metrics" / "noise.csv").write_text("")
    assert [r.parent.name for r in experiment.expand_run_dirs([tmp_path])] == ["variation", "partial", "heldout",
                                                                               "extra"]


def test_experiment_plan_applies_fixed_values_and_overrides():
    from clipalign_utils.errors import ParameterError
    from clipalign_utils.orchestration.experiment import plan

    sweeps = plan("quality", {"epochs": "6"})
    assert list(sweeps) == ["variation", "partial", "heldout", "texture_control"]
    assert sweeps["variation"] == {"seed": "0,1,2", "epochs": "6", "n_boot": "300", "test_per_class": "50",
                                   "n_perm": "2000", "quality_variation": "0,0.6"}
    held_out = sweeps["heldout"]["quality_families"].split(",")
    assert not {"additive_gaussian_noise", "impulse_noise", "gaussian_blur"} & set(held_out) and len(held_out) == 5
    assert list(plan("quality", {}, only=["heldout"])) == ["heldout"]
    with pytest.raises(ParameterError, match="only-sweeps nope"):
        plan("quality", {}, only=["nope"])
    with pytest.raises(ParameterError, match="unknown experiment"):
        plan("other", {})


def test_an_experiment_without_seeds_of_its_own_asks_for_them(monkeypatch):
    """An audit: an experiment that fixes no seeds passed its two-seed check on a fallback its plan then lacked."""
    from clipalign_utils.errors import ParameterError
    from clipalign_utils.orchestration import experiment

    fixed = {k: v for k, v in experiment.EXPERIMENT_FIXED["quality"].items() if k != "seed"}
    monkeypatch.setitem(experiment.EXPERIMENT_FIXED, "quality", fixed)
    with pytest.raises(ParameterError, match=r"^no -p seed: the quality experiment's seeds are its replicates"):
        experiment.plan("quality", {})
    assert all(arm["seed"] == "0,1" for arm in experiment.plan("quality", {"seed": "0,1"}).values())


def test_an_experiment_keeps_its_arms_alike_and_checks_every_sweep_before_its_folder(tmp_path, capsys):
    """An audit: arms added by a second command with another -p epochs were compared in one chapter with the first
    command's, experiment.json then listing only the second's; a bad -p left experiment.json behind; one seed
    failed with a sweep's message."""
    from clipalign_utils import cli
    from clipalign_utils.errors import ParameterError
    from clipalign_utils.orchestration.experiment import plan, prepare

    with pytest.raises(ParameterError, match=r"-p seed=0: the quality experiment's seeds are its replicates"):
        plan("quality", {"seed": "0"})
    out = tmp_path / "E"
    out.mkdir()
    first = plan("quality", {"seed": "0,1", "epochs": "1"}, only=["partial"])
    (out / "experiment.json").write_text(json.dumps({"experiment": "quality", "preset": "smoke", "sweeps": first}))
    with pytest.raises(ParameterError, match=r"holds the quality experiment's arms run with epochs=1; this command "
                                             r"gives epochs=2: give the same -p values"):
        prepare(out, "quality", "smoke", {"seed": "0,1", "epochs": "2"}, only=["texture_control"])
    with pytest.raises(ParameterError, match=r"run with epochs=1; this command gives epochs=6"):
        prepare(out, "quality", "smoke", {"seed": "0,1"}, only=["texture_control"])
    with pytest.raises(ParameterError, match=r"run with --preset smoke; this command gives --preset default"):
        prepare(out, "quality", "default", {"seed": "0,1", "epochs": "1"}, only=["texture_control"])
    prepare(out, "quality", "smoke", {"seed": "0, 1", "epochs": "1"}, only=["texture_control"])  # "0, 1" is "0,1"
    assert list(json.loads((out / "experiment.json").read_text())["sweeps"]) == ["partial", "texture_control"]
    # a value written another way is the same value (it was compared as typed)
    lr = tmp_path / "lr"
    lr.mkdir()
    (lr / "experiment.json").write_text(json.dumps({"experiment": "quality", "preset": "smoke", "sweeps": plan(
        "quality", {"seed": "0,1", "epochs": "1", "lr": "0.001"}, only=["partial"])}))
    prepare(lr, "quality", "smoke", {"seed": "0,1", "epochs": "1", "lr": "1e-3"}, only=["texture_control"])
    with pytest.raises(ParameterError, match=r"run with lr=0.001; this command gives lr=0.002"):
        prepare(lr, "quality", "smoke", {"seed": "0,1", "epochs": "1", "lr": "0.002"}, only=["texture_control"])
    bad = tmp_path / "bad"
    assert cli.main(["experiment", "quality", "--preset", "smoke", "-p", "seed=0,1", "-p", "model=nosuchmodel",
                     "--only-sweeps", "partial", "--out", str(bad)]) == 2
    assert "unknown model 'nosuchmodel'" in capsys.readouterr().err and not bad.exists()


def test_joint_sentence_says_only_what_the_settings_can():
    from clipalign_utils.steps.quality_experiment import page as qe_page

    joint = experiment.joint_picture(pd.concat([
        _verdict_rows("clean", ["inconclusive", "reproduced", "inconclusive", "inconclusive", "inconclusive"]),
        _verdict_rows("variation 0.6", ["inconclusive", "reproduced", "reproduced", "inconclusive", "inconclusive"]),
    ], ignore_index=True))
    settings = pd.DataFrame({"setting": ["clean", "variation 0.6"], "quality_variation": [0.0, 0.6]})
    text = qe_page.joint_sentence(joint, settings)
    assert text.startswith("**No setting reproduces the paper's joint picture.** Claims reproduced per setting: "
                           "*clean*: 1 of 4 testable; *variation 0.6*: 2 of 4 testable.")
    assert "With quality variation the most is 2 (*variation 0.6*: texture bias falls" in text
    assert ", against 1 for *clean*." in text and "so they do not show it absent" in text
    # clean runs alone cannot speak about quality variation
    clean_only = qe_page.joint_sentence(joint.iloc[:1], settings.iloc[:1])
    assert "not sufficient" not in clean_only and "None of these runs trained with quality variation" in clean_only
    # a setting with every claim reproduced is named
    joint.loc[1, "n_reproduced"] = 4
    assert qe_page.joint_sentence(joint, settings) == ("**variation 0.6** reproduces all 4 of the paper's claims over its "
                                                  "seeds.")


def test_fixed_sentences_say_how_the_experiment_differs_from_its_preset(tmp_path):
    import json

    assert experiment_page.fixed_sentences(tmp_path) == []  # not an experiment's folder
    (tmp_path / "experiment.json").write_text(json.dumps({"experiment": "quality", "preset": "default", "sweeps": {
        "a": {"seed": "0,1,2", "epochs": "6", "n_boot": "1000", "texture_scale": "1.0", "quality_variation": "0,0.6"},
        "b": {"seed": "0,1,2", "epochs": "6", "n_boot": "1000", "texture_scale": "1.0", "quality_variation": "0.3"}}}))
    # epochs fixed alike and not the preset's 5; n_boot fixed alike but the preset's (texture_scale too, as "1.0":
    # compared as a number); quality_variation varies
    assert experiment_page.fixed_sentences(tmp_path) == [
        "Every run here differs from the `default` preset's (the runs of pages 1–5 in its own book) in "
        "`epochs=6` (there 5): "
        "*clean* is the default world's training images, not those runs."]


def test_fixed_sentences_say_the_page_judges_its_verdicts_with_its_own_n_perm(tmp_path):
    """The runs' n_perm (the experiment's fixed value) judged their own verdicts; the chapter's verdicts use the
    page's parameter, which its table shows: the page said "n_perm=2000" beside a table of 500."""
    from clipalign_utils import config
    from clipalign_utils.orchestration.pipeline import declared_parameters

    fixed = config.EXPERIMENT_FIXED["quality"]
    (tmp_path / "experiment.json").write_text(json.dumps({"experiment": "quality", "preset": "smoke", "sweeps": {
        "a": {**fixed, "quality_variation": "0,0.6"}, "b": {**fixed, "quality_variation": "0.3"}}}))
    page_n_perm = config.PRESETS["smoke"]["n_perm"]
    assert page_n_perm != int(fixed["n_perm"])
    lines = experiment_page.fixed_sentences(tmp_path, {**config.PRESETS["smoke"], "preset": "smoke"})
    assert f"`n_perm={fixed['n_perm']}` (there {page_n_perm})" in lines[0]
    assert lines[1] == (f"The runs' `n_perm` served their own pages; this page's verdicts use its own, "
                        f"`n_perm={page_n_perm}` (the parameters above).")
    # given the runs' value, the page's verdicts use it: nothing more to say
    same = {**config.PRESETS["smoke"], "n_perm": int(fixed["n_perm"])}
    assert len(experiment_page.fixed_sentences(tmp_path, same)) == 1
    # the parameters the page reads itself are those its parameters cell declares (its table's rows)
    declared = set(declared_parameters("09_quality_experiment")) & set(config.PRESETS["default"])
    assert declared == set(experiment.PAGE_PARAMETERS)


def test_an_experiment_given_a_relative_folder_hands_its_chapter_the_folder_itself(tmp_path, monkeypatch):
    """The chapter's kernel runs in the repository: `--out runs/quality` given elsewhere reached it as a path
    relative to the wrong folder, and the chapter found no runs (a whole experiment's work, then a failure)."""
    from clipalign_utils.orchestration import experiment as command

    calls = {"sweeps": [], "page": []}
    monkeypatch.setattr(command, "run_sweep", lambda out, *args, **kwargs: calls["sweeps"].append(out))
    monkeypatch.setattr(command, "run_page", lambda name, out, *args, **kwargs: calls["page"].append(out))
    monkeypatch.chdir(tmp_path)
    assert command.run_experiment("runs/quality", "quality", "smoke", progress=False) == tmp_path / "runs" / "quality"
    assert calls["page"] == [tmp_path / "runs" / "quality"] and calls["page"][0].is_absolute()
    assert calls["sweeps"][0] == tmp_path / "runs" / "quality" / "variation"
    assert json.loads((tmp_path / "runs" / "quality" / "experiment.json").read_text())["preset"] == "smoke"


def test_held_out_declines_choose_each_seeds_early_checkpoint_on_the_other_seeds():
    # epochs 0, 1, 2, 6: the early window (0 < epoch <= 2) holds epochs 1 and 2.
    curves = {0: [0.0, 0.6, 0.5, 0.4], 1: [0.0, 0.5, 0.7, 0.4], 2: [0.0, 0.4, 0.6, 0.5]}
    table = pd.concat([pd.DataFrame({"setting": "s", "seed": seed, "epoch": [0.0, 1.0, 2.0, 6.0], "iqa_srcc": curve})
                       for seed, curve in curves.items()] +
                      [pd.DataFrame({"setting": "one", "seed": 0, "epoch": [0.0, 1.0, 2.0, 6.0],
                                     "iqa_srcc": [0.0, 0.6, 0.5, 0.4]})], ignore_index=True)
    declines = m.held_out_declines(table, "iqa_srcc")
    # seed 0: the others' means at epochs 1, 2 are 0.45, 0.65 → epoch 2: 0.5 − 0.4 = 0.1 (its own best early,
    # 0.6 at epoch 1, would give 0.2); seed 1: 0.5, 0.55 → 0.7 − 0.4 = 0.3; seed 2: 0.55, 0.6 → 0.6 − 0.5 = 0.1.
    # A setting of one seed keeps its own maximum: 0.6 − 0.4.
    assert declines["setting"].tolist() == ["s", "s", "s", "one"] and declines["seed"].tolist() == [0, 1, 2, 0]
    assert declines["value"].to_numpy() == pytest.approx([0.1, 0.3, 0.1, 0.2])
    mean = m.over_seeds(declines).set_index("setting").loc["s", "mean"]
    assert mean == pytest.approx(0.5 / 3)  # the seeds' own maxima would average 0.6 / 3
    # the predictions' statistic says which: the one-seed setting's is its own maximum
    rows = pd.DataFrame(experiment._summary_rows("1c", experiment.HELD_OUT + ", overall SRCC", declines,
                                                 tradeoff.above_zero))
    assert rows["statistic"].tolist() == ["held-out early − final, overall SRCC", "max early − final, overall SRCC"]


def test_above_zero_needs_the_interval_strictly_above_zero():
    from clipalign_utils.metrics.tradeoff import INCONCLUSIVE, above_zero

    assert above_zero(0.0, 1.0) == INCONCLUSIVE


def test_paired_difference_matches_seeds():
    a = pd.DataFrame({"seed": [0, 1, 2], "value": [1.0, 2.0, 4.0]})
    b = pd.DataFrame({"seed": [2, 0, 1], "value": [3.0, 0.5, 1.0]})
    # per seed: 0.5, 1.0, 1.0 -> mean 2.5/3, sd sqrt(1/12)
    half = stats.t.ppf(0.975, 2) * np.sqrt(1 / 12) / np.sqrt(3)
    assert m.paired_difference(a, b) == pytest.approx((2.5 / 3, 2.5 / 3 - half, 2.5 / 3 + half, 3))


def test_a_setting_that_saw_every_family_is_compared_with_the_clean_world_not_the_texture_control():
    """Prediction 1b where nothing is unseen: the setting's seen decline minus the clean world's (quality_variation
    0 at the default texture_correlation 0.8) within-family decline, Welch over seeds; the texture control (also
    quality_variation 0, listed first here) is not that reference."""
    rows = []
    for setting, seen, family in [
            ("clean, texture_correlation=1", None, [0.5, 0.55, 0.6, 0.6, 0.6, 0.6, 0.3]),  # declines 0.3 + 0.01k
            ("clean", None, [0.5, 0.55, 0.6, 0.6, 0.6, 0.6, 0.6]),                       # declines 0.01k
            ("variation 0.6", [0.5, 0.7, 0.8, 0.75, 0.7, 0.65, 0.6], None)]:             # declines 0.2 + 0.02k
        for seed in range(3):
            for k, epoch in enumerate(EPOCHS):
                last = k == len(EPOCHS) - 1
                seen_value = np.nan if seen is None else seen[k] - (0.02 * seed if last else 0)
                family_value = seen_value if family is None else family[k] - (0.01 * seed if last else 0)
                rows.append({"setting": setting, "seed": seed, "epoch": epoch, "checkpoint": f"epoch_{epoch:g}",
                             "iqa_srcc": 0.4 + 0.01 * k, "within_seen_srcc": seen_value,
                             "within_unseen_srcc": np.nan, "within_family_srcc": family_value,
                             "texture_bias": 0.8 - 0.05 * k, "noise_drop": 0.5 - 0.05 * k, "at_chance": False})
    settings = pd.DataFrame({"setting": ["clean, texture_correlation=1", "clean", "variation 0.6"],
                             "quality_variation": [0.0, 0.0, 0.6],
                             "quality_families": ["additive_gaussian_noise, gaussian_blur"] * 3,
                             "texture_correlation": [1.0, 0.8, 0.8], "n_seeds": [3, 3, 3]})
    predicted = experiment.predictions(pd.DataFrame(rows), settings).set_index(["prediction", "setting"])
    versus = predicted.loc[("1b seen families decline more than unseen ones", "variation 0.6")]
    assert versus["statistic"] == "seen decline − within-family decline of 'clean' (Welch)"
    # seen 0.2, 0.22, 0.24 (mean 0.22, var 4e-4) against clean 0, 0.01, 0.02 (mean 0.01, var 1e-4)
    vx, vy = 4e-4 / 3, 1e-4 / 3
    half = stats.t.ppf(0.975, (vx + vy) ** 2 / (vx ** 2 / 2 + vy ** 2 / 2)) * np.sqrt(vx + vy)
    assert (versus["mean"], versus["lo"], versus["hi"]) == pytest.approx((0.21, 0.21 - half, 0.21 + half))
    assert versus["n_seeds"] == 3 and versus["outcome"] == "reproduced"


def test_noise_is_seen_only_where_training_degraded_images_with_it():
    """A clean world lists every family (its record's default) but degrades no image: noise is not seen there."""
    settings = pd.DataFrame({"setting": ["clean", "variation 0.6", "heldout"], "quality_variation": [0.0, 0.6, 0.6],
                             "quality_families": ["additive_gaussian_noise, gaussian_blur, impulse_noise",
                                                  "additive_gaussian_noise, gaussian_blur, impulse_noise",
                                                  "jpeg_compression, contrast_change"]})
    assert experiment.noise_is_seen(settings) == {"clean": False, "variation 0.6": True, "heldout": False}


def test_the_settings_table_shows_no_families_where_training_degraded_nothing(tmp_path):
    """A clean world's record lists every family (the preset's default), but none applies: nothing is degraded."""
    for name, record in [("clean", {"seed": 0, "quality_variation": 0.0}),
                         ("control", {"seed": 0, "quality_variation": 0.0, "texture_correlation": 1.0}),
                         ("varied", {"seed": 0, "quality_variation": 0.6,
                                     "quality_families": ["jpeg_compression", "gaussian_blur"]})]:
        (tmp_path / name / "metrics").mkdir(parents=True)
        (tmp_path / name / "train_params.json").write_text(json.dumps(record))
    worlds = [experiment.world_of(tmp_path / name) for name in ("clean", "control", "varied")]
    settings = experiment.settings_table(worlds, [experiment.setting_label(w) for w in worlds])
    assert settings["quality_families"].tolist() == ["—", "—", "jpeg_compression, gaussian_blur"]
    assert experiment.noise_is_seen(settings) == dict.fromkeys(settings["setting"], False)


def test_a_correlations_interval_over_seeds_is_cut_to_its_range():
    values = pd.DataFrame({"setting": ["a"] * 3, "seed": [0, 1, 2], "value": [-1.0, -1.0, -0.9]})
    # mean −0.29/3, sd 0.1/√3: half-width t(0.975, 2)·0.1/3 ≈ 0.143 reaches below −1
    half = stats.t.ppf(0.975, 2) * 0.1 / 3
    row = m.over_seeds(values, correlation=True).iloc[0]
    assert (row["mean"], row["lo"], row["hi"], row["n_seeds"]) == pytest.approx((-2.9 / 3, -1.0, -2.9 / 3 + half, 3))
    assert m.over_seeds(values).iloc[0]["lo"] == pytest.approx(-2.9 / 3 - half)


T1 = 12.706204736174707  # Student t(0.975) on 1 degree of freedom


def test_a_setting_of_two_seeds_is_read_held_out_one_seed_on_its_own_maximum():
    declines = pd.DataFrame({"setting": ["two", "two", "one"], "seed": [0, 1, 0], "value": [0.1, 0.3, 0.2]})
    rows = pd.DataFrame(experiment._summary_rows("1c", experiment.HELD_OUT + ", overall SRCC", declines,
                                                 tradeoff.above_zero))
    assert rows["statistic"].tolist() == ["held-out early − final, overall SRCC", "max early − final, overall SRCC"]
    # two seeds: 0.2 ± t(1) · 0.1414… / √2 = 0.2 ± t(1) · 0.1 (holds 0); one seed: no interval
    assert rows["mean"].tolist() == pytest.approx([0.2, 0.2])
    assert (rows["lo"].iloc[0], rows["hi"].iloc[0]) == pytest.approx((0.2 - T1 * 0.1, 0.2 + T1 * 0.1))
    assert rows["outcome"].tolist() == ["inconclusive", "inconclusive"] and np.isnan(rows["lo"].iloc[1])


def test_a_relation_per_seed_leaves_out_the_checkpoints_either_measure_is_at_chance_on():
    # seed 0: epoch 0's cue-conflict decisions at chance (its texture bias is noise); seed 1: none
    table = pd.DataFrame({"setting": "s", "seed": [0, 0, 0, 0, 1, 1, 1, 1], "epoch": [0.0, 1, 2, 3] * 2,
                          "iqa_srcc": 0.5, "texture_bias": 0.5,
                          "shape_at_chance": [True, False, False, False] + [False] * 4})
    rows = lambda epochs, x, y: len(epochs)  # noqa: E731
    for column, other in (("iqa_srcc", "texture_bias"), ("texture_bias", "iqa_srcc")):
        assert m.per_seed(table, rows, column, other)["value"].tolist() == [3, 4]


def _verdict_rows(setting, verdicts, values=None, seeds_agree=1.0):
    claims = list(experiment.PAPER_CLAIMS) + ["chance-corrected noise drop falls during training"]
    return pd.DataFrame({"setting": setting, "claim": claims, "verdict": verdicts,
                         "value": 0.5 if values is None else values, "seeds_agree": seeds_agree, "n_seeds": 3})


def test_joint_picture_counts_only_reproduced_paper_claims():
    verdicts = pd.concat([
        _verdict_rows("clean", ["reproduced", "inconclusive", "not reproduced", "inconclusive", "reproduced"]),
        _verdict_rows("variation 0.6", ["inconclusive", "reproduced", "reproduced", "not reproduced", "reproduced"]),
    ], ignore_index=True)
    joint = experiment.joint_picture(verdicts)
    assert joint["n_reproduced"].tolist() == [1, 2] and joint["n_claims"].tolist() == [4, 4]
    assert joint["reproduced"].tolist() == [
        "IQA alignment peaks early then declines",
        "texture bias falls during training; normalized noise drop falls during training"]


def test_joint_sentence_names_the_varied_setting_that_reproduces_most():
    claims = list(experiment.PAPER_CLAIMS)
    joint = experiment.joint_picture(pd.concat([
        _verdict_rows("clean", ["reproduced"] + ["inconclusive"] * 4),
        _verdict_rows("variation 0.3", ["inconclusive"] * 5),
        _verdict_rows("variation 0.6", ["reproduced"] * 3 + ["inconclusive"] * 2)], ignore_index=True))
    settings = pd.DataFrame({"setting": joint["setting"], "quality_variation": [0.0, 0.3, 0.6]})
    text = experiment_page.joint_sentence(joint, settings)
    agree = "; ".join(f"{claim}: 100% of 3 seeds agree" for claim in claims[:3])
    assert f"With quality variation the most is 3 (*variation 0.6*: {agree}; most seeds agree on each), against " \
           "1 for *clean*." in text


def test_joint_picture_counts_untestable_claims_apart_and_the_sentence_follows_the_verdicts():
    # every checkpoint at chance: the classification claims have no value, only the peak claim is tested
    untestable = [0.1, np.nan, np.nan, np.nan, np.nan]
    verdicts = pd.concat([_verdict_rows(setting, ["inconclusive"] * 5, untestable)
                          for setting in ("clean", "variation 0.6")], ignore_index=True)
    joint = experiment.joint_picture(verdicts)
    assert joint["n_testable"].tolist() == [1, 1] and joint["n_reproduced"].tolist() == [0, 0]
    assert joint["undefined"].iloc[0] == "; ".join(experiment.PAPER_CLAIMS[1:])
    settings = pd.DataFrame({"setting": ["clean", "variation 0.6"], "quality_variation": [0.0, 0.6]})
    predictions = pd.DataFrame({"as_predicted": ["unsettled", "unsettled", "not predicted"]})
    text = experiment_page.joint_sentence(joint, settings, predictions)
    undefined = ", ".join(experiment.PAPER_CLAIMS[1:])
    assert f"*clean*: 0 of 1 testable, 3 undefined ({undefined}); *variation 0.6*: 0 of 1 testable" in text
    assert "/4" not in text and "What it does change" not in text
    assert "(in the settings with quality variation 3 of 4 claims could not be tested)" in text
    assert "no claim is contradicted where training had quality variation" in text
    assert text.endswith("the seeds settle none of their 2 outcomes (each inconclusive or undefined).")
    # nothing testable anywhere: nothing said of quality variation either way
    nothing = experiment.joint_picture(verdicts.assign(value=np.nan))
    assert "No claim could be tested in any setting, so these runs say nothing" in experiment_page.joint_sentence(
        nothing, settings)
    # a claim contradicted where training varied quality is said so, not "not shown absent"; settled predictions
    contradicted = pd.concat([_verdict_rows("clean", ["inconclusive"] * 5),
                              _verdict_rows("variation 0.6", ["not reproduced"] + ["inconclusive"] * 4)],
                             ignore_index=True)
    settled = pd.DataFrame({"as_predicted": ["yes", "no", "unsettled"]})
    text = experiment_page.joint_sentence(experiment.joint_picture(contradicted), settings, settled)
    assert "where training had quality variation 1 claim is contradicted" in text and "absent either" not in text
    assert text.endswith("The seeds settle 2 of the 3 outcomes of the predictions above (1 as predicted, 1 against "
                         "the prediction); the rest are inconclusive or undefined.")


def test_joint_sentence_says_how_many_seeds_agree_with_a_claim_reproduced_on_the_seed_mean():
    verdicts = pd.concat([
        _verdict_rows("clean", ["inconclusive"] * 5),
        _verdict_rows("variation 0.6", ["inconclusive", "reproduced", "reproduced", "inconclusive", "reproduced"],
                      seeds_agree=[1.0, 2 / 3, 1 / 3, 1.0, 1.0])], ignore_index=True)
    joint = experiment.joint_picture(verdicts)
    assert joint["n_held_by_most_seeds"].tolist() == [0, 1]
    settings = pd.DataFrame({"setting": ["clean", "variation 0.6"], "quality_variation": [0.0, 0.6]})
    text = experiment_page.joint_sentence(joint, settings)
    assert ("the most is 2 (*variation 0.6*: texture bias falls during training: 67% of 3 seeds agree; normalized "
            "noise drop falls during training: 33% of 3 seeds agree; most seeds agree on 1 of them)") in text


def test_a_prediction_no_seed_gives_a_value_is_said_undefined_not_unsettled():
    # every seed's noise drop at chance but one checkpoint: no trend in any seed (mean nan over 0 seeds)
    table, settings = _table()
    table["at_chance"] = table["epoch"] > 0.25
    predicted = experiment.predictions(table, settings)
    noise = predicted[predicted["prediction"].str.startswith("2 ")]
    assert noise["n_seeds"].tolist() == [0, 0] and noise["mean"].isna().all()
    lines = [line for line in experiment_page.sentences(predicted, settings) if "**2 the normalized" in line]
    assert len(lines) == 2 and not any("nan" in line or "not settled by the seeds" in line for line in lines)
    assert lines[0].endswith(": spearman(epoch, noise drop) per seed **undefined**: none of its 3 seeds gives a "
                             "value: too few of its checkpoints are above chance for the measure, or they do not "
                             "vary (those at chance are left out, as in the verdicts above) — not tested.")
    # a single seed's value has no interval over seeds: said so, not "[+nan, +nan]"
    one = predicted.assign(lo=np.nan, hi=np.nan, n_seeds=1).iloc[:1]
    assert "over 1 seed, no interval" in experiment_page.sentences(one, settings)[0]


def test_joint_sentence_counts_no_seeds_of_a_setting_of_one_seed():
    # a setting of one seed (the page reads its own maximum, OWN_MAX): its one run is the seed-mean curve, and the
    # sentence read "texture bias falls during training: 100% of 1 seeds agree; most seeds agree on each"
    verdicts = pd.concat([
        _verdict_rows("clean", ["inconclusive"] * 5),
        _verdict_rows("variation 0.6", ["inconclusive", "reproduced", "inconclusive", "inconclusive", "inconclusive"]
                      ).assign(n_seeds=1)], ignore_index=True)
    joint = experiment.joint_picture(verdicts)
    settings = pd.DataFrame({"setting": ["clean", "variation 0.6"], "quality_variation": [0.0, 0.6]})
    text = experiment_page.joint_sentence(joint, settings)
    assert "the most is 1 (*variation 0.6*: texture bias falls during training, its one seed), against" in text
    assert "1 seeds" not in text and "most seeds" not in text


def _clean_at_chance_after(epoch: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The recorded experiment's clean setting, its model at chance on the noise set's clean images after ``epoch``
    in every seed (no drop there), and its settings row."""
    from clipalign_utils.registry import REPO_ROOT

    table = pd.read_csv(REPO_ROOT / "book" / "recorded" / "09_quality_experiment" / "folder" / "metrics"
                        / "quality_checkpoints.csv")
    table = table[table["setting"] == "clean"].copy()
    late = table["epoch"] > epoch
    table.loc[late, "at_chance"] = True
    table.loc[late, ["noise_drop", "chance_corrected_drop"]] = np.nan
    settings = pd.DataFrame({"setting": ["clean"], "quality_variation": [0.0], "quality_families": ["—"],
                             "texture_correlation": [0.8], "n_seeds": [3]})
    return table, settings


def test_the_tables_mark_a_noise_drop_trend_without_a_value_at_chance():
    """A model at chance on the noise set's clean images has no drop: a trend over too few drops is undefined, and
    the verdicts' and the predictions' tables say why in its cell rather than leave NaN."""
    table, settings = _clean_at_chance_after(0.5)  # most seeds have a drop at epoch 0.5 alone
    verdicts = tradeoff.verdicts(table, n_perm=50, by="setting")
    shown = experiment_page.shown_verdicts(verdicts).set_index("claim")["value"]
    # over seeds, each seed's own trend: none has 3 drops above chance, so there is no interval over seeds
    with_drop = {seed: int((~tradeoff.at_chance(run, "noise_drop")).sum()) for seed, run in table.groupby("seed")}
    assert with_drop == {0: 2, 1: 1, 2: 1}
    left_out = int(tradeoff.at_chance(table, "noise_drop").sum())
    assert shown["normalized noise drop falls during training"] == (
        "undefined: noise_drop: ρ per seed (0: undefined (2 checkpoints with a value above chance: a trend needs 3); "
        "1: undefined (1 checkpoint with a value above chance: a trend needs 3); 2: undefined (1 checkpoint with a "
        "value above chance: a trend needs 3)): an interval over seeds needs 2 seeds with a trend; "
        f"{left_out} at-chance checkpoints left out over the seeds")
    assert shown["chance-corrected noise drop falls during training"].startswith(
        "undefined: chance_corrected_drop: ρ per seed (0: undefined (2 checkpoints")
    assert isinstance(shown["IQA alignment peaks early then declines"], float)  # a value keeps its number
    predicted = experiment_page.shown_predictions(experiment.predictions(table, settings), settings)
    drop = predicted[predicted["prediction"].str.startswith("2 ")]["mean"].tolist()
    assert drop == ["undefined: none of its 3 seeds gives a value: too few of its checkpoints are above chance for "
                    "the measure, or they do not vary (those at chance are left out, as in the verdicts above)"]


def test_the_chapters_verdicts_and_predictions_judge_each_trend_over_seeds_alike():
    """Page 9 showed "texture bias falls: reproduced" (a permutation test over the seed-mean curve's checkpoints)
    above the control prediction "inconclusive" for the same setting (the seeds' own ρ, [−1, 0.096]): one
    question, two answers. Over seeds both now rest on each seed's own ρ and its t interval over seeds."""
    from clipalign_utils.registry import REPO_ROOT

    table, settings = experiment.load([REPO_ROOT / "book" / "recorded" / "09_quality_experiment" / "folder"])
    verdicts = tradeoff.verdicts(table, n_perm=50, by="setting").set_index(["claim", "setting"])
    predicted = experiment.predictions(table, settings).set_index(["prediction", "setting"])
    pairs = {"normalized noise drop falls during training": "2 the normalized noise drop falls",
             "texture bias falls during training": "control: texture bias falls"}
    compared = 0
    for claim, prediction in pairs.items():
        for setting in table["setting"].unique():
            verdict, outcome = verdicts.loc[(claim, setting)], predicted.loc[(prediction, setting)]
            assert (verdict["value"], verdict["ci_lo"], verdict["ci_hi"]) == pytest.approx(
                (outcome["mean"], outcome["lo"], outcome["hi"]), abs=1e-12), (claim, setting)
            assert verdict["verdict"] == outcome["outcome"], (claim, setting)
            compared += 1
    assert compared == 10
    # claim 4's relation of alignment with texture bias is prediction 3's: each seed's partial ρ net of log time
    from clipalign_utils.prose import fixed
    for setting in table["setting"].unique():
        outcome = predicted.loc[("3 alignment and texture bias move together net of time", setting)]
        texture_part = verdicts.loc[(tradeoff.COVARIES_CLAIM, setting), "detail"].split("; noise_drop:")[0]
        interval = f"mean {fixed(outcome['mean'])} [{fixed(outcome['lo'])}, {fixed(outcome['hi'])}]"
        assert texture_part.startswith("texture_bias: net of log time ρ per seed (") and \
            f"), {interval}, first differences ρ mean " in texture_part, setting
    held_out = verdicts.loc[("texture bias falls during training",
                             "variation 0.6, held out: additive_gaussian_noise, gaussian_blur, impulse_noise")]
    assert held_out["verdict"] == tradeoff.INCONCLUSIVE and held_out["ci_lo"] < 0 < held_out["ci_hi"]
