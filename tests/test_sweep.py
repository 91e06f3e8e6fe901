"""Sweeps: value parsing and planning, the comparison metrics (hand-computed), run labels, bad input,
and `clipalign sweep` end to end on the smoke preset, resumed, with its book."""
from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from browser import CHROMIUM, check_pages
from helpers import notebook_outputs, steps_that_only_mark_done

from clipalign_utils import cli, record, registry, results
from clipalign_utils.errors import ParameterError
from clipalign_utils.layout import RunDir
from clipalign_utils.registry import REPO_ROOT, SWEEP_PAGE
from clipalign_utils.metrics import sweep as sweep_metrics
from clipalign_utils.orchestration.sweep import (Setting, plan, split_overrides, time_left, time_left_during,
                                                 trained_by)
from clipalign_utils.orchestration import multirun


def test_values_split_on_commas_and_list_values_on_semicolons():
    fixed, swept = split_overrides({"texture_correlation": "0.5, 0.95", "sigmas": "0.01,0.02;0.1,0.2,0.3",
                                    "epochs": "3", "fresh_data": "false,true"}, "smoke")
    assert fixed == {"epochs": "3"}
    assert swept == {"texture_correlation": [0.5, 0.95], "sigmas": [(0.01, 0.02), (0.1, 0.2, 0.3)],
                     "fresh_data": [False, True]}


def test_every_parameter_the_issue_names_is_sweepable():
    _, swept = split_overrides({"model": "tiny,small", "image_size": "32,48", "lr": "1e-3,3e-3",
                                "texture_scale": "0.5,2"}, "default")
    assert swept == {"model": ["tiny", "small"], "image_size": [32, 48], "lr": [0.001, 0.003],
                     "texture_scale": [0.5, 2.0]}
    assert [s.name for s in plan("default", {}, {"lr": [0.001, 0.003]})] == ["lr-0.001", "lr-0.003"]


@pytest.mark.parametrize("overrides, message", [
    ({"texture_correlation": "0.5,abc"}, "texture_correlation='abc' has the wrong type"),
    ({"lr": "0.1,0.1"}, "repeats a value"),
    ({"distance": "cosine,manhattan"}, "distance='manhattan': choose one of"),
])
def test_bad_sweep_values_name_the_parameter(overrides, message):
    with pytest.raises(ParameterError, match=message):
        split_overrides(overrides, "smoke")


def test_the_time_left_weighs_the_runs_to_go_by_their_epochs():
    # Two 5-epoch runs took 100 and 140 s: 24 s an epoch. A 24-epoch run and a 5-epoch one to go, and one
    # skipped (0): 29 epochs, 696 s. A mean per run would say 2 × 120 = 240 s.
    assert time_left([(100.0, 5, True), (140.0, 5, True)], [(24, True), (0, True), (5, True)]) == pytest.approx(696.0)
    assert time_left([(60.0, 12, True)], []) == 0


def test_the_time_left_during_a_run_counts_down_what_it_has_spent():
    """An audit: every step line of a sweep's run said the same time left, from its first step to its last."""
    executed = [(100.0, 5, True)]  # 20 s an epoch
    assert time_left_during(executed, [(5, True), (5, True)], 30.0) == pytest.approx(170.0)
    assert time_left_during(executed, [(5, True), (5, True)], 400.0) == pytest.approx(100.0)  # overdue: the rest
    assert time_left_during(executed, [(5, True)], 0.0) == time_left(executed, [(5, True)])


def test_the_time_left_weighs_a_shared_training_at_its_own_pace():
    # A 5-epoch run that trained took 100 s (20 s an epoch), one that shared its training 30 s (6 s an epoch).
    executed = [(100.0, 5, True), (30.0, 5, False)]
    # To go: a 12-epoch run that trains (240 s) and two 5-epoch ones that share (60 s): 300 s, where one
    # pace for all (13 s an epoch) would say 22 × 13 = 286 s.
    assert time_left(executed, [(12, True), (5, False), (5, False)]) == pytest.approx(300.0)
    # Until a run of its kind has run, a run is weighed at the pace of those that have (20, then 6 s an epoch).
    assert time_left(executed[:1], [(5, False)]) == pytest.approx(100.0)
    assert time_left(executed[1:], [(10, True)]) == pytest.approx(60.0)


def test_plan_grid_and_one_at_a_time():
    swept = {"texture_correlation": [0.5, 0.8], "model": ["tiny", "small"]}
    grid = plan("smoke", {}, swept)
    assert [s.name for s in grid] == ["texture_correlation-0.5__model-tiny", "texture_correlation-0.5__model-small",
                                      "texture_correlation-0.8__model-tiny", "texture_correlation-0.8__model-small"]
    assert grid[1].values == {"texture_correlation": 0.5, "model": "small"}
    # One at a time: the preset's values (texture_correlation 0.8, model tiny) are the shared base run.
    assert plan("smoke", {}, swept, one_at_a_time=True) == [
        Setting("base", {}), Setting("texture_correlation-0.5", {"texture_correlation": 0.5}),
        Setting("model-small", {"model": "small"})]
    with pytest.raises(ParameterError, match="needs at least one"):
        plan("smoke", {"epochs": "3"}, {})


def test_full_preset_runs_the_drivers_sweep_one_at_a_time(tmp_path):
    from clipalign_utils.config import SWEEP_PRESETS

    fixed, swept = split_overrides(SWEEP_PRESETS["full"], "full")
    settings = plan("full", fixed, swept, one_at_a_time=True)
    names = [s.name for s in settings]
    assert names == ["base", "texture_correlation-0.5", "texture_correlation-0.95", "texture_scale-0.5",
                     "texture_scale-2", "fresh_data-true", "epochs-12", "epochs-24", "sigmas-0.01+0.02+0.05",
                     "sigmas-0.1+0.2+0.4"]  # the base trains 5 epochs: 12 and 24 are both longer
    # Noise levels are an analysis parameter: those runs re-analyse the base run's checkpoints.
    assert trained_by("full", fixed, settings) == names[:8] + ["base", "base"]
    # Its base run is the multi-run's tiny-seed0 when that one is complete: linked, not trained again.
    (tmp_path / "tiny-seed0" / "notebooks").mkdir(parents=True)
    multirun.link_base_run(tmp_path, "full", {})
    assert not (tmp_path / "drivers" / "base").exists()
    run = RunDir(tmp_path / "tiny-seed0")
    for step in registry.per_run_steps()[:-1]:
        run.executed(step.notebook).write_text("{}")
    multirun.link_base_run(tmp_path, "full", {})
    assert not (tmp_path / "drivers" / "base").exists()  # complete = every per-run step of the registry
    run.executed(registry.per_run_steps()[-1].notebook).write_text("{}")
    multirun.link_base_run(tmp_path, "full", {})
    assert (tmp_path / "drivers" / "base").resolve() == (tmp_path / "tiny-seed0").resolve()


def _means(setting, epochs, shape, iqa, drop, clean):
    return pd.DataFrame({"setting": setting, "epoch": epochs, "shape_bias": shape, "iqa_srcc": iqa,
                         "iqa_srcc_lo": [v - 0.05 for v in iqa], "iqa_srcc_hi": [v + 0.05 for v in iqa],
                         "noise_drop": drop, "clean_accuracy": clean, "n_seeds": 2})


def test_setting_summary_hand_computed():
    means = pd.concat([
        _means("a", [0, 0.5, 1, 2, 4], [0.5, 0.2, 0.4, 0.7, 0.9], [0.2, 0.5, 0.6, 0.4, 0.3],
               [np.nan, np.nan, 0.4, 0.3, 0.2], [0.1, 0.3, 0.5, 0.6, 0.7]),
        _means("b", [0, 0.5, 1], [0.5, 0.5, 0.5], [0.1, 0.2, 0.3], [np.nan] * 3, [0.1] * 3),
    ], ignore_index=True)
    summary = sweep_metrics.setting_summary(means, n_perm=200).set_index("setting")
    a = summary.loc["a"]
    # texture bias 0.5, 0.8, 0.6, 0.3, 0.1: strongest in the first epoch 0.8 (epoch 0.5), last 0.1
    assert (a["early_texture_bias"], a["early_texture_epoch"], a["final_texture_bias"]) == pytest.approx((0.8, 0.5, 0.1))
    assert (a["iqa_peak_srcc"], a["iqa_peak_epoch"], a["iqa_final_srcc"], a["iqa_decline"]) == \
        pytest.approx((0.6, 1.0, 0.3, 0.3))
    assert a["iqa_peak_ci_separated"]  # 0.55 > 0.35 and the peak is inside the run
    assert (a["noise_drop_first"], a["noise_drop_first_epoch"], a["noise_drop_final"]) == pytest.approx((0.4, 1.0, 0.2))
    assert a["noise_drop_rho"] == pytest.approx(-1.0)
    assert a["final_clean_accuracy"] == pytest.approx(0.7) and a["n_seeds"] == 2
    b = summary.loc["b"]
    assert b["iqa_peak_epoch"] == 1.0 and b["iqa_decline"] == 0 and not b["iqa_peak_ci_separated"]
    assert np.isnan(b["noise_drop_first"]) and np.isnan(b["noise_drop_rho"])
    # At-chance checkpoints (most seeds at chance) give no classification measure, as in the verdicts: an audit
    # found a sweep's texture effects and first noise drop read at checkpoints the verdicts left out.
    chance = means.assign(at_chance=[True, True, False, False, False, True, True, True],
                          noise_drop=[0.6, 0.5, 0.4, 0.3, 0.2, 0.5, 0.5, 0.5])
    summary = sweep_metrics.setting_summary(chance, n_perm=200).set_index("setting")
    a, b = summary.loc["a"], summary.loc["b"]
    # a: texture 0.5, 0.8 at chance; above chance 0.6 (epoch 1), 0.3, 0.1
    assert (a["early_texture_bias"], a["early_texture_epoch"], a["final_texture_bias"]) == pytest.approx((0.6, 1.0, 0.1))
    assert (a["noise_drop_first"], a["noise_drop_first_epoch"], a["noise_drop_final"]) == pytest.approx((0.4, 1.0, 0.2))
    assert a["noise_drop_rho"] == pytest.approx(-1.0)
    assert np.isnan([b["early_texture_bias"], b["final_texture_bias"], b["noise_drop_first"],
                     b["noise_drop_final"], b["noise_drop_rho"]]).all()
    assert b["iqa_peak_epoch"] == 1.0  # IQA needs no classifier: read at every checkpoint


def test_factor_effects_order_settings_by_value():
    summary = pd.DataFrame({"setting": ["x", "y", "z"], "texture_correlation": ["0.95", "0.5", "0.8"],
                            "early_texture_bias": [0.9, 0.6, 0.7], "iqa_peak_epoch": [0.3, 0.1, 0.5]})
    effects = sweep_metrics.factor_effects(summary, "texture_correlation",
                                           ["early_texture_bias", "iqa_peak_epoch"]).set_index("measure")
    assert effects.loc["early_texture_bias", "values"] == "0.5 → 0.8 → 0.95"
    assert effects.loc["early_texture_bias", "measured"] == "0.600 → 0.700 → 0.900"
    assert effects.loc["iqa_peak_epoch", "measured"] == "0.1 → 0.5 → 0.3"  # epochs as the book writes them
    assert effects.loc["early_texture_bias", "direction"] == "increases"
    assert effects.loc["early_texture_bias", "spearman"] == pytest.approx(1.0)
    # 0.1, 0.5, 0.3 by value: up then down; ranks (1, 2, 3) vs (1, 3, 2) give rho = 1 - 6*2/(3*8) = 0.5
    assert effects.loc["iqa_peak_epoch", "direction"] == "not monotone"
    assert effects.loc["iqa_peak_epoch", "spearman"] == pytest.approx(0.5)
    assert sweep_metrics.direction([1, 2], [0.3, 0.3]) == "constant"
    # ties one way are said as such (an audit read "0 → 0 → 0.13, not monotone")
    assert sweep_metrics.direction([0.05, 0.1, 0.2], [0.0, 0.0, 0.13]) == "never falls"
    assert sweep_metrics.direction([3, 1, 2], [0.1, 0.5, 0.1]) == "never rises"
    assert sweep_metrics.direction([1, 2, 3], [0.1, 0.5, 0.2]) == "not monotone"
    flat = summary.assign(iqa_peak_epoch=0.5)  # a measure the factor does not move: nan, said without a warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        effects = sweep_metrics.factor_effects(flat, "texture_correlation", ["iqa_peak_epoch"]).set_index("measure")
    assert np.isnan(effects.loc["iqa_peak_epoch", "spearman"]) and effects.loc["iqa_peak_epoch", "direction"] == "constant"
    assert sweep_metrics.direction([1, 2], [np.nan, 0.3]) == "undetermined"
    # a setting without a value is left out, not bridged: 1, 2, (nan), 0 goes up then down (an audit found
    # "increases" from the two finite steps either side of the gap, beside a Spearman of −0.5)
    assert sweep_metrics.direction([1, 2, 3, 4], [1.0, 2.0, np.nan, 0.0]) == "not monotone"
    assert sweep_metrics.direction([1, 2, 3, 4], [1.0, 2.0, np.nan, 3.0]) == "increases"
    gap = sweep_metrics.factor_effects(pd.DataFrame({"setting": list("abcd"), "x": [1, 2, 3, 4],
                                                     "m": [1.0, 2.0, np.nan, 0.0]}), "x", ["m"]).iloc[0]
    assert (gap["direction"], gap["spearman"]) == ("not monotone", pytest.approx(-0.5))
    assert gap["measured"] == "1.000 → 2.000 → undefined → 0.000"  # said, not printed as nan (a review)
    # the precision of the page's tables (3 decimals) for every value: an audit read "0.000198 → 0 → 0.0208"
    # beside the summary table's 0.000, and "0 → 0.00953" beside "0.0492 → 0.196"
    small = sweep_metrics.factor_effects(pd.DataFrame({"setting": list("abc"), "x": [1, 2, 3],
                                                       "iqa_decline": [0.000198, 0.0, 0.0208]}), "x", ["iqa_decline"])
    assert small["measured"].iloc[0] == "0.000 → 0.000 → 0.021"
    assert small["direction"].iloc[0] == "never falls"  # as shown: a fall of 0.000198 read "not monotone"
    assert list(sweep_metrics.numeric_values(pd.Series(["false", "true"]))) == [0.0, 1.0]


def test_factor_slices_hold_the_other_factors_at_the_reference():
    summary = pd.DataFrame({"setting": ["base", "a2", "by"], "a": ["1", "2", "1"], "b": ["x", "x", "y"]})
    slices = sweep_metrics.factor_slices(summary, ["a", "b"], {"a": "1", "b": "x"})
    assert list(slices["a"]["setting"]) == ["base", "a2"]
    assert list(slices["b"]["setting"]) == ["base", "by"]


def _fake_run(path, preset, **parameters):
    """A run whose record (record.json) holds its training step's resolved parameters."""
    path.mkdir(parents=True)
    record.write_entry(path, "train", record.resolve(None, preset, parameters))
    return path


def test_setting_labels_one_at_a_time_and_grid(tmp_path):
    runs = [_fake_run(tmp_path / "base", preset="smoke"),
            _fake_run(tmp_path / "tc", preset="smoke", texture_correlation="0.5"),
            _fake_run(tmp_path / "sig", preset="smoke", sigmas="0.1,0.3")]
    assert results.setting_labels(runs) == (["base", "texture_correlation=0.5", "sigmas=0.1,0.3"],
                                            ["texture_correlation", "sigmas"])
    # Seeds are replicates, not settings; a single factor is always named with its value.
    grid = [_fake_run(tmp_path / f"g{i}", preset="smoke", texture_correlation=tc, seed=seed)
            for i, (tc, seed) in enumerate([("0.5", 0), ("0.8", 0), ("0.5", 1)])]
    assert results.setting_labels(grid) == (
        ["texture_correlation=0.5", "texture_correlation=0.8", "texture_correlation=0.5"], ["texture_correlation"])
    seeds = [_fake_run(tmp_path / f"s{seed}", preset="smoke", seed=seed) for seed in (0, 1)]
    assert results.setting_labels(seeds) == (["all runs", "all runs"], [])


@pytest.mark.parametrize("params, message", [
    (["-p", "texture_correlation=0.5,abc"], "texture_correlation='abc'"),
    (["-p", "epochs=3"], "needs at least one -p NAME=V1,V2"),
    (["-p", "colour=red,blue"], "unknown parameter colour"),
    # every setting would be the same run: a sweep runs no interpolation step
    (["-p", "interpolation_to=epoch_1,epoch_2"], "-p interpolation_to: no page a sweep runs reads it (step "
                                                "interpolation does, which a sweep does not run: clipalign run --only "
                                                "interpolation on a run instead); every setting would be the same run"),
])
def test_cli_sweep_bad_input_one_line(params, message, tmp_path, capsys):
    assert cli.main(["sweep", "--preset", "smoke", "--out", str(tmp_path / "s"), "--no-book", *params]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("clipalign: error:") and message in error and "\n" not in error
    assert not (tmp_path / "s").exists()


def test_cli_sweep_end_to_end_resumed_with_its_book(smoke_pipeline, tmp_path, capsys):
    out = tmp_path / "sweep"
    out.mkdir()
    # The smoke preset's own values are the session's pipeline run: put it in place as the finished base run,
    # so the sweep trains and analyses texture_correlation 0.5, and re-analyses the base's checkpoints
    # with other noise levels (sigmas is not a training parameter: no second training). Hard-linked, not
    # linked whole: the setting that shares the base's training writes into the base's embedding cache.
    shutil.copytree(smoke_pipeline, out / "base", ignore=shutil.ignore_patterns("book"), copy_function=os.link)
    argv = ["sweep", "--preset", "smoke", "--one-at-a-time", "-p", "texture_correlation=0.8,0.5",
            "-p", "sigmas=0.02,0.05,0.1,0.2;0.1,0.3", "--out", str(out)]
    assert cli.main(argv + ["--no-book"]) == 0
    printed = capsys.readouterr().out
    assert "[sweep 1/3 base] skip: complete" in printed
    n = len(registry.per_run_steps()) + 1  # the optional steps are not run
    assert f"[sweep 2/3 texture_correlation-0.5] [1/{n}] train" in printed
    assert f"[sweep 3/3 sigmas-0.1+0.3] [1/{n}] train: shared with base" in printed
    assert "about" in printed and "left" in printed  # a time estimate after the first run it executed
    record = json.loads((out / "sweep.json").read_text())
    assert [r["name"] for r in record["runs"]] == ["base", "texture_correlation-0.5", "sigmas-0.1+0.3"]
    assert [r["trained_by"] for r in record["runs"]] == ["base", "texture_correlation-0.5", "base"]
    for name in ("texture_correlation-0.5", "sigmas-0.1+0.3"):
        assert (out / name / "notebooks" / "05_tradeoff_synthesis.ipynb").exists()
    assert json.loads((out / "texture_correlation-0.5" / "train_params.json").read_text())["texture_correlation"] == 0.5
    assert (out / "sigmas-0.1+0.3" / "checkpoints").resolve() == (out / "base" / "checkpoints").resolve()
    noise = pd.read_csv(out / "sigmas-0.1+0.3" / "metrics" / "noise.csv")
    assert sorted(noise["sigma"].unique()) == [0.0, 0.1, 0.3]

    # The comparison table: one row per setting, labelled by what it changes.
    summary = pd.read_csv(out / "metrics" / "sweep_summary.csv")
    assert list(summary["setting"]) == ["base", "texture_correlation=0.5", "sigmas=0.1,0.3"]
    assert set(summary.columns) >= set(sweep_metrics.SUMMARY_MEASURES)
    verdicts = pd.read_csv(out / "metrics" / "sweep_verdicts.csv")
    assert set(verdicts["setting"]) == set(summary["setting"])
    # Every setting is judged on the same claims: the paper's four, the chance-corrected drop, and the
    # second version's similarity and saliency claims (the smoke pipeline runs those steps).
    claims = verdicts.groupby("setting")["claim"].apply(tuple)
    assert claims.nunique() == 1 and len(claims.iloc[0]) == 7
    assert {"IQA alignment peaks early then declines", "texture bias falls during training",
            "normalized noise drop falls during training",
            "IQA alignment co-varies with texture bias and noise drop"} <= set(claims.iloc[0])
    effects = pd.read_csv(out / "metrics" / "sweep_effects.csv")
    assert set(effects["factor"]) == {"texture_correlation", "sigmas"}
    base = pd.read_csv(smoke_pipeline / "metrics" / "tradeoff.csv")
    table = pd.read_csv(out / "metrics" / "sweep_checkpoints.csv")
    assert np.allclose(table.loc[table["setting"] == "base", "iqa_srcc"].to_numpy(), base["iqa_srcc"].to_numpy())

    # Recorded for the book (book/recorded/06_sweep): the records and summary tables alone give the page the
    # same comparison tables and the same outputs as the whole sweep (checkpoints, caches, per-image tables).
    from clipalign_utils.orchestration import recorded

    target = recorded.record_page(SWEEP_PAGE, out, ["clipalign sweep …"], "abc1234", root=tmp_path / "recorded")
    folder = target / recorded.FOLDER
    assert not list(folder.rglob("*.pt")) and not list(folder.rglob("*per_triplet.csv"))
    assert not (folder / "notebooks").exists() and (folder / "base" / "record.json").exists()
    for table in ("sweep_checkpoints", "sweep_summary", "sweep_verdicts", "sweep_effects"):
        assert (folder / "metrics" / f"{table}.csv").read_bytes() == (out / "metrics" / f"{table}.csv").read_bytes()
    own = json.loads((out / "notebooks" / f"{SWEEP_PAGE}.ipynb").read_text())
    shown = json.loads((target / f"{SWEEP_PAGE}.ipynb").read_text())
    assert notebook_outputs(shown, {os.path.relpath(folder, REPO_ROOT): "SWEEP"}) == \
        notebook_outputs(own, {str(out): "SWEEP"})
    assert str(out) not in json.dumps(shown) and ".06_sweep-" not in json.dumps(shown)  # paths as shown from the record

    # The same command again: every run is skipped, the comparison re-runs, the book is built.
    trained = (out / "texture_correlation-0.5" / "train_params.json").stat().st_mtime
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert printed.count("skip: complete") == 3, printed
    assert (out / "texture_correlation-0.5" / "train_params.json").stat().st_mtime == trained
    html = out / "book" / "_build" / "html"
    page = (html / "notebooks" / "06_sweep.html").read_text()
    assert "What drives the trade-off?" in page and "texture_correlation=0.5" in page
    assert "Page 6 compares the runs of the sweep" in (out / "book" / "_generated" / "run.md").read_text()
    if CHROMIUM:
        check_pages([html / "notebooks" / "06_sweep.html"])

    # Another plan in the same directory is refused before anything runs.
    assert cli.main(["sweep", "--preset", "smoke", "-p", "lr=0.001,0.01", "--out", str(out), "--no-book"]) == 2
    assert "records another sweep" in capsys.readouterr().err


def test_a_sweep_over_a_parameter_whose_check_reads_another_given_beside_it():
    """Each swept value was checked alone against the preset: shape_classifier=imagenet beside a given
    cue_conflict_dataset=geirhos was refused as if the set were the embedded one (a review found it)."""
    from clipalign_utils.orchestration.sweep import split_overrides

    fixed, swept = split_overrides({"shape_classifier": "direct,imagenet", "cue_conflict_dataset": "geirhos",
                                    "cue_conflict_root": "/data/geirhos"}, "smoke")
    assert swept == {"shape_classifier": ["direct", "imagenet"]} and fixed["cue_conflict_dataset"] == "geirhos"



def test_shape_and_noise_leave_out_checkpoints_at_chance_and_count_what_they_use():
    """The sweep page's shape-bias/noise-drop link: a checkpoint guessing on the cue-conflict images (or on clean
    ones) is left out of the pooled test, as every trend of a classification measure leaves it out; a setting
    whose last texture bias is undefined (at chance) is not counted among the settings compared (an audit found
    ρ over 2 settings printed as "over 3")."""
    from clipalign_utils.metrics import sweep as sweep_metrics
    from clipalign_utils.metrics.stats import permutation_spearman
    from clipalign_utils.steps.sweep import page as sweep_page

    table = pd.DataFrame({"setting": ["a"] * 6, "shape_bias": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
                          "noise_drop": [0.9, 0.1, 0.7, 0.3, 0.5, 0.2],
                          "shape_at_chance": [True, False, False, True, False, False], "at_chance": False})
    kept = table[~table["shape_at_chance"]]
    rho, p_value = permutation_spearman(kept["shape_bias"].to_numpy(), kept["noise_drop"].to_numpy(), n_perm=200,
                                        seed=3)
    assert sweep_metrics.pooled_relation(table, n_perm=200, seed=3) == {
        "x": "shape_bias", "y": "noise_drop", "spearman": rho, "p_value": p_value, "n": 4}
    settings = pd.DataFrame({"setting": ["a", "b", "c"], "sigmas": "0.1"})
    summary = pd.DataFrame({"setting": ["a", "b", "c"], "final_texture_bias": [0.6, np.nan, 0.4],
                            "noise_drop_final": [0.5, 0.4, 0.3]})
    lines = sweep_page.shape_noise_sentences(
        {"sweep_summary": summary, "sweep_checkpoints": table.assign(setting="a")},
        {"settings": settings, "factors": [], "reference": {}}, {"n_perm": 200, "eval_seed": 0})
    assert lines[0] == ("across settings, last checkpoints: Spearman(shape bias, noise drop) = undefined (it needs "
                        "3 settings or more, each measure varying across them) over 2 settings")
    assert "n = 4;" in lines[1]
    # no checkpoint above chance on both: the pooled rho is undefined, and says so (it printed "nan (p = nan")
    none = sweep_page.shape_noise_sentences(
        {"sweep_summary": summary, "sweep_checkpoints": table.assign(setting="a", shape_at_chance=True)},
        {"settings": settings, "factors": [], "reference": {}}, {"n_perm": 200, "eval_seed": 0})
    assert none[1] == ("pooled over every checkpoint of every run: Spearman(shape bias, noise drop) = undefined "
                       "(n = 0; descriptive: checkpoints of a run are not independent)")


def test_shape_noise_and_claims_sentences_by_hand():
    """Page 6's numbers: shape bias is 1 − texture bias, so settings whose texture bias falls as their drop
    rises read ρ = −1; a significant negative pooled ρ is the paper's direction; each setting's count is out of
    its own claims (mutation audit: the sign, the direction and the count went unnoticed)."""
    from clipalign_utils.steps.sweep import page as sweep_page

    settings = pd.DataFrame({"setting": ["a", "b", "c"], "sigmas": "0.1"})
    summary = pd.DataFrame({"setting": ["a", "b", "c"], "final_texture_bias": [0.6, 0.5, 0.4],
                            "noise_drop_final": [0.5, 0.4, 0.3]})
    table = pd.DataFrame({"setting": ["a", "b", "c"] * 4, "shape_bias": np.linspace(0.1, 0.9, 12),
                          "noise_drop": np.linspace(0.9, 0.1, 12), "shape_at_chance": False, "at_chance": False})
    data = {"settings": settings, "factors": [], "reference": {}}
    lines = sweep_page.shape_noise_sentences({"sweep_summary": summary, "sweep_checkpoints": table}, data,
                                             {"n_perm": 200, "eval_seed": 0})
    assert lines[0] == "across settings, last checkpoints: Spearman(shape bias, noise drop) = -1.00 over 3 settings"
    assert lines[1].startswith("pooled over every checkpoint of every run: Spearman(shape bias, noise drop) = -1.00 "
                               "(permutation p = ") and "n = 12;" in lines[1]
    assert lines[2].startswith("pooled, checkpoints with more shape bias lose less under noise (the paper's direction)")
    rising = sweep_page.shape_noise_sentences(
        {"sweep_summary": summary, "sweep_checkpoints": table.assign(noise_drop=np.linspace(0.1, 0.9, 12))}, data,
        {"n_perm": 200, "eval_seed": 0})
    assert rising[2].startswith("pooled, checkpoints with more shape bias lose more under noise (against the paper's")
    verdicts = pd.DataFrame({"setting": ["a"] * 3 + ["b"] * 3 + ["c"] * 3, "claim": ["x", "y", "z"] * 3,
                             "verdict": ["reproduced", "inconclusive", "reproduced", "not reproduced", "inconclusive",
                                         "inconclusive", "reproduced", "reproduced", "reproduced"]})
    assert sweep_page.claims_sentences(verdicts, data) == ["a: reproduces 2 of 3 claims (x; z)",
                                                           "b: reproduces 0 of 3 claims",
                                                           "c: reproduces 3 of 3 claims (x; y; z)"]


def test_the_shape_noise_figure_draws_the_checkpoints_its_correlation_leaves_out_apart():
    """Page 6's scatter: the seed-mean epochs at chance (on clean images or on the cue-conflict decisions) are
    hollow points off the setting's line, as the pooled correlation beside it leaves them out."""
    import matplotlib.pyplot as plt

    from clipalign_utils.steps.sweep import page as sweep_page

    table = pd.DataFrame({"setting": "a", "seed": 0, "epoch": [0.0, 1.0, 2.0, 3.0], "iqa_srcc": 0.5,
                          "shape_bias": [0.5, 0.2, 0.3, 0.4], "clean_accuracy": 0.5,
                          "noise_drop": [0.05, 0.1, 0.7, 0.3], "at_chance": [True, False, False, False],
                          "shape_at_chance": [False, True, False, False], "checkpoint": "c"})
    data = {"table": table, "settings": pd.DataFrame({"setting": ["a"], "sigmas": "0.1"}), "factors": [],
            "reference": {}}
    fig = sweep_page.shape_noise_figure(data)
    ax = fig.axes[0]
    line, = ax.get_lines()
    # at chance: epoch 0 on clean images (its drop is nan in the mean), epoch 1 on the cue-conflict decisions
    assert list(line.get_xdata()) == [0.3, 0.4] and list(line.get_ydata()) == [0.7, 0.3]
    hollow = ax.collections[0].get_offsets()
    assert np.allclose(np.asarray(hollow)[1], [0.2, 0.1]) and "hollow: most seeds at chance" in ax.get_title()
    plt.close(fig)


def test_a_grid_given_in_another_order_is_not_taken_for_the_same_sweep(tmp_path):
    """The swept parameters' order names a grid's runs: the same values in another order passed the record's
    check and trained every run again in new folders beside the first (an audit)."""
    from clipalign_utils.errors import ParameterError
    from clipalign_utils.orchestration import sweep

    record = {"preset": "smoke", "fixed": {}, "one_at_a_time": False, "runs": [],
              "swept": {"texture_correlation": ["0.5", "0.95"], "n_boot": ["50", "60"]}}
    (tmp_path / "sweep.json").write_text(json.dumps(record))
    sweep._check_record(tmp_path, record)  # the same plan: resumes
    reordered = {**record, "swept": {"n_boot": ["50", "60"], "texture_correlation": ["0.5", "0.95"]}}
    with pytest.raises(ParameterError, match=r"in that order\): give the same -p values in the same order"):
        sweep._check_record(tmp_path, reordered)
    # one at a time, runs are named by value alone: any order resumes
    (tmp_path / "sweep.json").write_text(json.dumps({**record, "one_at_a_time": True}))
    sweep._check_record(tmp_path, {**reordered, "one_at_a_time": True})


def test_list_values_are_ordered_element_wise():
    """A sweep of sigmas lists was drawn and described in its settings' order (0.02,… before 0.01,…)."""
    values = pd.Series(["0.02,0.05,0.1,0.2", "0.01,0.02,0.05", "0.1+0.2+0.4"])
    assert list(sweep_metrics.numeric_values(values)) == [1.0, 0.0, 2.0]
    assert list(sweep_metrics.numeric_values(pd.Series(["x", "a,b"]))) == [0.0, 1.0]  # not numbers: as given


def test_a_sweep_resumes_with_its_values_written_another_way(tmp_path):
    """Fixed values were recorded and compared as typed: a sweep run with -p lr=0.001 refused to resume with
    -p lr=1e-3, the same value."""
    from clipalign_utils import config
    from clipalign_utils.errors import ParameterError
    from clipalign_utils.orchestration import sweep

    def plan_record(fixed: dict, swept: dict) -> dict:
        return {"preset": "smoke", "fixed": {k: sweep.canonical(k, v, "smoke") for k, v in fixed.items()},
                "swept": {k: [config.format_value(v) for v in sweep.parse_values(k, raw, "smoke")]
                          for k, raw in swept.items()}, "one_at_a_time": False, "runs": []}

    first = plan_record({"lr": "0.001", "seed": "1"}, {"texture_scale": "1.0,0.5"})
    assert first["fixed"] == {"lr": "0.001", "seed": "1"} and first["swept"] == {"texture_scale": ["1", "0.5"]}
    (tmp_path / "sweep.json").write_text(json.dumps(first))
    sweep._check_record(tmp_path, plan_record({"lr": "1e-3", "seed": " 1"}, {"texture_scale": "1,0.50"}))
    # a record written before values were canonical (fixed as typed, swept floats as repr): resumes too
    (tmp_path / "sweep.json").write_text(json.dumps({**first, "fixed": {"lr": "1E-3", "seed": "1"},
                                                     "swept": {"texture_scale": ["1.0", "0.5"]}}))
    sweep._check_record(tmp_path, plan_record({"lr": "0.001", "seed": "1"}, {"texture_scale": "1,0.5"}))
    with pytest.raises(ParameterError, match="records another sweep"):
        sweep._check_record(tmp_path, plan_record({"lr": "0.002", "seed": "1"}, {"texture_scale": "1,0.5"}))
    assert sweep.canonical("sigmas", "0.1, 0.2; 0.05", "smoke") == "0.1,0.2;0.05"
    assert sweep.canonical("fresh_data", "True", "smoke") == "True"
    assert sweep.canonical("lr", "fast", "smoke") == "fast"  # unreadable: kept as written (compares unequal)


def test_a_sweep_resumes_each_run_where_it_stopped_and_refuses_other_fixed_values(tmp_path, monkeypatch, capsys):
    """Resuming a sweep on hand-made runs: a complete setting is skipped whole, one with only its training done
    (its own, or shared) runs its analyses and not its training; the same sweep with another fixed value is
    refused, nothing run."""
    from pathlib import Path

    from clipalign_utils import registry
    from clipalign_utils.errors import ParameterError
    from clipalign_utils.layout import RunDir
    from clipalign_utils.orchestration import pipeline, sweep

    calls = steps_that_only_mark_done(monkeypatch)
    monkeypatch.setattr(sweep, "run_page", lambda name, out, *a, **k: calls.append((Path(out).name, name)))
    overrides = {"n_boot": "50,60,70", "distance": "cosine"}  # one training, the first setting's, shared
    sweep.run_sweep(tmp_path, "smoke", dict(overrides), progress=False, only=[])  # the plan recorded, nothing run
    runs = json.loads((tmp_path / "sweep.json").read_text())["runs"]
    first, second, third = (run["name"] for run in runs)
    assert [run["trained_by"] for run in runs] == [first] * 3
    steps = pipeline.available_steps()
    for name, done in ((first, ["train"]), (second, steps), (third, ["train"])):
        run = RunDir(tmp_path / name)
        run.notebooks.mkdir(parents=True, exist_ok=True)
        for step in done:
            run.executed(registry.get(step).notebook).write_text("{}")
    calls.clear()
    sweep.run_sweep(tmp_path, "smoke", dict(overrides), progress=False)
    assert calls == ([(first, step) for step in steps[1:]] + [(third, step) for step in steps[1:]]
                     + [(tmp_path.name, sweep.SWEEP_NOTEBOOK)])
    assert f"{second}] skip: complete" in capsys.readouterr().out
    calls.clear()
    with pytest.raises(ParameterError, match="records another sweep"):
        sweep.run_sweep(tmp_path, "smoke", {**overrides, "distance": "euclidean"}, progress=False)
    assert calls == []


def test_a_fixed_value_no_page_reads_is_said_once_per_command(tmp_path, capsys):
    """A sweep's or an experiment's -p that no page it runs reads is said, as for clipalign run, and once: the full
    preset plans runs, a sweep and an experiment in one command."""
    from clipalign_utils.orchestration import experiment, pipeline, sweep

    note = ("note: no page this command runs reads -p interpolation_from (read by step interpolation: --only "
            "interpolation)")
    pipeline.forget_notes()
    sweep.run_sweep(tmp_path / "s", "smoke", {"n_boot": "50,60", "interpolation_from": "x"}, progress=False, only=[],
                    compare=False)
    assert capsys.readouterr().out.splitlines() == [note]
    sweep.run_sweep(tmp_path / "s", "smoke", {"n_boot": "50,60", "interpolation_from": "x"}, progress=False, only=[],
                    compare=False)
    assert capsys.readouterr().out == ""  # the same command says it once
    pipeline.forget_notes()
    experiment.prepare(tmp_path / "e", "quality", "smoke", {"seed": "0,1", "interpolation_from": "x"})
    assert capsys.readouterr().out.splitlines() == [note]
    pipeline.forget_notes()
    sweep.run_sweep(tmp_path / "s2", "smoke", {"n_boot": "50,60", "interpolation_from": "x"}, progress=False,
                    only=["x"], compare=False)
    assert capsys.readouterr().out == ""  # a launcher's job: the command that planned it said any note


def test_a_value_names_its_run_folder_in_one_part():
    """A run's folder is named by its values as one path component: numbers as written short (2.0 is 2), lists
    joined by +, booleans in lower case, and a path's separators made underscores (else the run would land in
    a sub-folder of another name)."""
    from clipalign_utils.orchestration.sweep import value_label

    assert [value_label(v) for v in (0.5, 2.0, 1e-3, 3, True, (0.01, 0.02), ("jpeg_compression",))] == \
        ["0.5", "2", "0.001", "3", "true", "0.01+0.02", "jpeg_compression"]
    assert value_label(f"data{os.sep}geirhos") == "data_geirhos"
    names = [s.name for s in plan("smoke", {}, {"cue_conflict_root": [f"a{os.sep}x", f"b{os.sep}x"]})]
    assert names == ["cue_conflict_root-a_x", "cue_conflict_root-b_x"]
    # values that six significant digits cannot tell apart keep their digits (an audit: both were lr-0.001, one
    # folder for two settings); names that still collide are refused before any folder is made
    fixed, swept = split_overrides({"lr": "0.0010000001,0.0010000002"}, "smoke")
    assert [s.name for s in plan("smoke", fixed, swept)] == ["lr-0.0010000001", "lr-0.0010000002"]
    with pytest.raises(ParameterError, match=r"share the run folder 'cue_conflict_root-a_x'; give values that"):
        plan("smoke", {}, {"cue_conflict_root": [f"a{os.sep}x", "a_x"]})


def test_settings_share_a_training_under_the_fixed_values_given_beside_them():
    """trained_by resolves each setting with the sweep's fixed values: shape_classifier=imagenet is valid only
    beside the cue_conflict_dataset given once, and, an analysis parameter, shares the first setting's training."""
    fixed, swept = split_overrides({"shape_classifier": "direct,imagenet", "cue_conflict_dataset": "geirhos",
                                    "cue_conflict_root": "/data/geirhos"}, "smoke")
    settings = plan("smoke", fixed, swept)
    assert trained_by("smoke", fixed, settings) == ["shape_classifier-direct"] * 2


def test_a_sweep_of_another_kind_or_preset_is_not_taken_for_the_same_sweep(tmp_path):
    """The same values swept as a grid and one at a time, or on another preset, are other runs: resuming the one
    with the other would mix both in one folder and one comparison."""
    from clipalign_utils.orchestration import sweep

    record = {"preset": "smoke", "fixed": {}, "one_at_a_time": False, "runs": [],
              "swept": {"texture_correlation": ["0.5", "0.95"]}}
    (tmp_path / "sweep.json").write_text(json.dumps(record))
    sweep._check_record(tmp_path, record)
    with pytest.raises(ParameterError, match="records another sweep"):
        sweep._check_record(tmp_path, {**record, "one_at_a_time": True})
    with pytest.raises(ParameterError, match=r"records another sweep \(preset 'smoke'"):
        sweep._check_record(tmp_path, {**record, "preset": "default"})


def test_a_one_at_a_time_plan_records_its_runs_their_values_and_trainings_in_order(tmp_path, monkeypatch):
    """sweep.json of a one-at-a-time sweep: base first, then each other value of each parameter in the order
    given (the preset's 0.8 is the base's), each run's values as format_value writes them and the run whose
    training it shares (sigmas is an analysis parameter: the base's); the run folders and a launcher's jobs
    (one per training) read it in that order."""
    from clipalign_utils.orchestration import sweep

    steps_that_only_mark_done(monkeypatch)
    sweep.run_sweep(tmp_path, "smoke", {"texture_correlation": "0.8,0.5", "sigmas": "0.1,0.3;0.05,0.2",
                                        "n_boot": "60"}, one_at_a_time=True, progress=False, only=[], compare=False)
    plan_record = json.loads((tmp_path / "sweep.json").read_text())
    names = ["base", "texture_correlation-0.5", "sigmas-0.1+0.3", "sigmas-0.05+0.2"]
    assert plan_record["runs"] == [
        {"name": "base", "setting": {}, "trained_by": "base"},
        {"name": names[1], "setting": {"texture_correlation": "0.5"}, "trained_by": names[1]},
        {"name": names[2], "setting": {"sigmas": "0.1,0.3"}, "trained_by": "base"},
        {"name": names[3], "setting": {"sigmas": "0.05,0.2"}, "trained_by": "base"}]
    assert (plan_record["preset"], plan_record["fixed"], plan_record["one_at_a_time"]) == \
        ("smoke", {"n_boot": "60"}, True)
    assert plan_record["swept"] == {"texture_correlation": ["0.8", "0.5"], "sigmas": ["0.1,0.3", "0.05,0.2"]}
    assert sweep.sweep_run_dirs(tmp_path) == [tmp_path / name for name in names]
    assert sweep.training_groups(tmp_path) == [["base", names[2], names[3]], [names[1]]]


def test_a_factor_varied_alone_in_a_single_setting_has_no_effect_row():
    """An incomplete grid (one of its runs missing): the only setting with b changed also changes a, so b has no
    slice of two settings at a's reference, and no effect of b is reported."""
    summary = pd.DataFrame({"setting": ["base", "a2", "a2by"], "a": ["1", "2", "2"], "b": ["x", "x", "y"],
                            "early_texture_bias": [0.5, 0.6, 0.7]})
    slices = sweep_metrics.factor_slices(summary, ["a", "b"], {"a": "1", "b": "x"})
    assert list(slices) == ["a"] and list(slices["a"]["setting"]) == ["base", "a2"]


def test_the_reference_of_a_factor_is_the_presets_value_when_a_run_has_it(tmp_path, monkeypatch):
    """Each factor is compared at the preset's value where a run has it (it need not be the first run's), else
    at the first run's value."""
    from clipalign_utils.results import settings as settings_module

    tables = lambda run_dirs, *args: pd.DataFrame({"run": results.run_labels(run_dirs)})  # noqa: E731
    monkeypatch.setattr(settings_module, "checkpoint_tables", tables)
    monkeypatch.setattr(settings_module, "noise_curves_of", tables)
    runs = [_fake_run(tmp_path / name, preset="smoke", texture_correlation=tc, texture_scale=scale)
            for name, tc, scale in [("a", "0.5", "2"), ("b", "0.8", "2"), ("c", "0.5", "3"), ("d", "0.8", "3")]]
    data = results.sweep_tables(runs)
    assert data["factors"] == ["texture_correlation", "texture_scale"]
    assert data["reference"] == {"texture_correlation": "0.8", "texture_scale": "2"}  # 1 (the preset's) not run


def test_a_sweep_over_the_distance_reads_each_run_at_its_own(tmp_path, monkeypatch):
    """An audit: `clipalign sweep -p distance=cosine,euclidean` ran every setting, then its comparison failed (the
    page's one distance, the preset's, was asked of every run's iqa.csv, each holding its own), again on resume."""
    from clipalign_utils.results import checkpoints as checkpoints_module
    from clipalign_utils.results import settings as settings_module

    read_at = {}

    def table(run_dir, distance=None):
        read_at[Path(run_dir).name] = distance
        return pd.DataFrame({"checkpoint": ["epoch_1"], "epoch": [1.0]})

    monkeypatch.setattr(checkpoints_module, "checkpoint_table", table)
    monkeypatch.setattr(settings_module, "noise_curves_of",
                        lambda run_dirs: pd.DataFrame({"run": results.run_labels(run_dirs)}))
    runs = [_fake_run(tmp_path / name, preset="smoke", distance=distance)
            for name, distance in [("a", "cosine"), ("b", "euclidean")]]
    data = results.sweep_tables(runs, "normalized_euclidean")
    assert data["factors"] == ["distance"] and read_at == {"a": "cosine", "b": "euclidean"}
    assert data["table"]["setting"].tolist() == ["distance=cosine", "distance=euclidean"]
    same = [_fake_run(tmp_path / name, preset="smoke", texture_correlation=tc) for name, tc in [("c", "0.5"), ("d", "1")]]
    results.sweep_tables(same, "cosine")  # not swept: the page's distance, for every run
    assert read_at == {"a": "cosine", "b": "euclidean", "c": "cosine", "d": "cosine"}


def test_a_swept_parameter_the_sweep_page_declares_is_left_out_of_its_table(tmp_path, capsys):
    """A sweep over the distance showed `distance  normalized_euclidean  preset default` in page 6's table of
    parameters (and the book's introduction), a value no setting was read at: each setting's is its own."""
    import json

    from clipalign_utils import registry
    from clipalign_utils.layout import RunDir
    from clipalign_utils.orchestration import step_page

    runs = [_fake_run(tmp_path / "sweep" / name, preset="smoke", distance=distance)
            for name, distance in [("a", "cosine"), ("b", "euclidean")]]
    namespace = {"run_dir": str(tmp_path / "out"), "run_dirs": ",".join(map(str, runs)), "preset": "smoke",
                 "eval_seed": None, "distance": None, "n_perm": None}
    assert step_page.open_sweep(namespace)[0] == runs
    shown = capsys.readouterr().out
    assert "n_perm" in shown and "distance" not in shown.split("left out")[0]
    assert "left out (swept: each setting's own value, in the tables below): distance" in shown
    # the book's introduction asks for the runs the sweep's record lists
    resolved = record.resolve(None, "smoke", {})
    assert step_page.not_the_runs_parameters(tmp_path / "sweep", registry.SWEEP_PAGE, resolved) == (set(), "")
    RunDir(tmp_path / "sweep").record("sweep").write_text(json.dumps({"runs": [{"name": "a"}, {"name": "b"}]}))
    assert step_page.not_the_runs_parameters(tmp_path / "sweep", registry.SWEEP_PAGE, resolved)[0] == {"distance"}
    same = [_fake_run(tmp_path / name, preset="smoke", texture_correlation=tc) for name, tc in [("c", "0.5"), ("d", "1")]]
    assert step_page.open_sweep({**namespace, "run_dirs": ",".join(map(str, same))})[0] == same
    assert "distance" in capsys.readouterr().out  # not swept: the page's one value, shown


def test_only_the_settings_measured_at_the_reference_noise_levels_are_compared():
    from clipalign_utils.steps.sweep import analysis as sweep_analysis

    settings = pd.DataFrame({"setting": ["base", "sigmas=0.1,0.3", "texture_correlation=0.5"],
                             "sigmas": ["0.02,0.05", "0.1,0.3", "0.02,0.05"],
                             "texture_correlation": ["0.8", "0.8", "0.5"]})
    data = {"settings": settings, "factors": ["sigmas", "texture_correlation"],
            "reference": {"sigmas": "0.02,0.05", "texture_correlation": "0.8"}}
    assert sweep_analysis.comparable_settings(data) == ["base", "texture_correlation=0.5"]
    assert sweep_analysis.comparable_settings({**data, "factors": ["texture_correlation"]}) == list(settings["setting"])


def test_a_settings_seed_count_is_its_most_seeds_at_any_checkpoint():
    """A seed whose run stopped early leaves its setting's last checkpoints with fewer seeds: the setting still
    counts every seed it ran."""
    means = _means("a", [0, 0.5, 1, 2], [0.5, 0.4, 0.3, 0.2], [0.2, 0.3, 0.4, 0.3], [0.4, 0.3, 0.2, 0.1],
                   [0.2, 0.3, 0.4, 0.5]).assign(n_seeds=[3, 3, 3, 2])
    assert sweep_metrics.setting_summary(means, n_perm=50).iloc[0]["n_seeds"] == 3


def test_the_sweep_comparison_judges_each_setting_over_its_seeds():
    """sweep_verdicts and sweep_summary have one row set per setting, its seeds pooled (a grid over seeds is
    replicates), and the effects vary the factor across the settings."""
    from helpers import checkpoint_table

    from clipalign_utils.steps.sweep import analysis as sweep_analysis

    epochs = (0.0, 1.0, 2.0, 3.0, 4.0)
    falling, rising = [0.9, 0.7, 0.5, 0.3, 0.1], [0.1, 0.3, 0.5, 0.7, 0.9]
    table = pd.concat([checkpoint_table(
        epochs, setting=f"texture_correlation={tc}", texture_correlation=tc, seed=seed, run=f"tc{tc}-seed{seed}",
        iqa_srcc=[0.1, 0.5, 0.4, 0.3, 0.2], iqa_srcc_lo=0.0, iqa_srcc_hi=0.6, shape_bias=rising,
        shape_bias_lo=0.0, shape_bias_hi=1.0, clean_accuracy=np.linspace(0.5, 0.9, 5),
        noise_drop=[v + 0.01 * seed for v in falling]) for tc in ("0.5", "0.8") for seed in (0, 1)],
        ignore_index=True)
    settings = pd.DataFrame({"setting": ["texture_correlation=0.5", "texture_correlation=0.8"],
                             "texture_correlation": ["0.5", "0.8"], "n_runs": [2, 2]})
    data = {"table": table, "noise": pd.DataFrame(), "settings": settings, "factors": ["texture_correlation"],
            "reference": {"texture_correlation": "0.8"}}
    tables = sweep_analysis.measure([], {"n_perm": 200, "eval_seed": 0}, data=data)
    verdicts = tables["sweep_verdicts"]
    assert set(verdicts["setting"]) == set(settings["setting"]) and (verdicts["n_seeds"] == 2).all()
    summary = tables["sweep_summary"].set_index("setting")
    assert list(summary.index) == list(settings["setting"]) and (summary["n_seeds"] == 2).all()
    # the seeds' mean noise drop: 0.905 at the first checkpoint, 0.105 at the last
    assert summary["noise_drop_first"].tolist() == pytest.approx([0.905, 0.905])
    assert summary["final_texture_bias"].tolist() == pytest.approx([0.1, 0.1])
    assert set(tables["sweep_effects"]["factor"]) == {"texture_correlation"}


def test_a_notebook_only_value_is_never_swept_and_an_empty_value_is_refused():
    # A name outside the preset (a page's path, say) is one value whatever its commas; -p n= gives no value at all.
    from clipalign_utils.orchestration.sweep import parse_values

    assert parse_values("a_page_path", "a,b;c", "smoke") == ["a,b;c"]
    with pytest.raises(ParameterError, match=r"^-p lr='' gives no value$"):
        parse_values("lr", "", "smoke")
    with pytest.raises(ParameterError, match=r"^-p sigmas=' ; ' gives no value$"):
        parse_values("sigmas", " ; ", "smoke")


def test_a_sweep_recorded_under_a_preset_this_install_lacks_is_compared_as_written(tmp_path):
    # No preset to read its values by: the same words resume it, the same values written another way do not.
    from clipalign_utils.orchestration import sweep

    old = {"preset": "retired", "fixed": {"lr": "1e-3"}, "swept": {"seed": ["0", "1"]}, "one_at_a_time": False}
    (tmp_path / "sweep.json").write_text(json.dumps(old))
    sweep._check_record(tmp_path, dict(old))
    with pytest.raises(ParameterError, match="records another sweep"):
        sweep._check_record(tmp_path, {**old, "fixed": {"lr": "0.001"}})


def _trained_source(path):
    """A run folder with its training's outputs: checkpoints, records, figures and the executed train page."""
    source = RunDir(path)
    (source.checkpoints).mkdir(parents=True)
    (source.checkpoints / "epoch_1.pt").write_text("weights")
    for name in ("train_params.json", "params.txt"):  # no train log: a file the source lacks is not made
        (source.path / name).write_text(name)
    source.figures.mkdir()
    (source.figures / "training_loss.png").write_text("png")
    (source.figures / "iqa.png").write_text("an analysis's figure, not the training's")
    source.notebooks.mkdir()
    source.executed(registry.get("train").notebook).write_text('{"train": 1}')
    return source


def test_sharing_a_training_links_its_weights_and_cache_and_copies_its_records_and_page(tmp_path):
    # The target's checkpoints and cache are relative links into the source; records, the training's figures and
    # the executed train page (which marks the step done) are copies; an analysis's figure is not the training's.
    from clipalign_utils.orchestration import sweep

    source, target = _trained_source(tmp_path / "a"), RunDir(tmp_path / "b")
    sweep.share_training(source.path, target.path)
    assert os.readlink(target.checkpoints) == os.path.join("..", "a", "checkpoints")
    assert os.readlink(target.cache) == os.path.join("..", "a", source.cache.name) and source.cache.is_dir()
    assert (target.checkpoints / "epoch_1.pt").read_text() == "weights"
    assert sorted(p.name for p in target.path.iterdir() if p.is_file()) == ["params.txt", "train_params.json"]
    assert [p.name for p in target.figures.iterdir()] == ["training_loss.png"]
    assert target.done("train") and target.executed(registry.get("train").notebook).read_text() == '{"train": 1}'
    assert not target.figures.is_symlink() and not target.notebooks.is_symlink()
    sweep.share_training(source.path, target.path)  # again (a resumed sweep): the links there are kept
    assert os.readlink(target.checkpoints) == os.path.join("..", "a", "checkpoints")


def test_a_setting_of_the_same_training_shares_it_rather_than_training_again(tmp_path, monkeypatch, capsys):
    # The second setting differs in an analysis parameter only: its train step is the first's, shared and said.
    from clipalign_utils.orchestration import pipeline, sweep

    calls = steps_that_only_mark_done(monkeypatch)
    shared = []
    monkeypatch.setattr(sweep, "share_training", lambda source, run_dir: shared.append((source.name, run_dir.name)))
    sweep.run_sweep(tmp_path, "smoke", {"n_boot": "50,60"}, progress=False, compare=False)
    steps = pipeline.available_steps()
    assert calls == [("n_boot-50", step) for step in steps] + [("n_boot-60", step) for step in steps[1:]]
    assert shared == [("n_boot-50", "n_boot-60")]
    out = capsys.readouterr().out
    assert "[sweep 2/2 n_boot-60] [1/" in out and "] train: shared with n_boot-50 (same training parameters)\n" in out
    assert "train: shared with" not in out.split("[sweep 2/2")[0]


def test_the_runs_of_a_folder_that_is_no_sweep_are_one_line(tmp_path):
    from clipalign_utils.orchestration.sweep import sweep_run_dirs

    with pytest.raises(ParameterError, match=rf"^{tmp_path / 'sweep.json'} is missing: {tmp_path} is not a sweep "
                                             rf"directory \(clipalign sweep … --out {tmp_path}\), or pass run_dirs$"):
        sweep_run_dirs(tmp_path)


def test_the_verdict_grid_reads_settings_in_the_sweeps_order_and_claims_in_the_papers():
    """The recorded sweep's verdicts: rows as the sweep declares its runs (base, then each value in the order given,
    epochs 12 before 24), columns as the page states the claims (the pivot sorted both by name)."""
    from clipalign_utils.config import coerce, format_value, PRESETS
    from clipalign_utils.steps.sweep import analysis as sweep_step

    folder = REPO_ROOT / "book" / "recorded" / "06_sweep" / "folder"
    verdicts = pd.read_csv(folder / "metrics" / "sweep_verdicts.csv")
    sweep = json.loads((folder / "sweep.json").read_text())
    preset = PRESETS[sweep["preset"]]
    declared = ["=".join((k, format_value(coerce(k, v, preset[k])))) for run in sweep["runs"]
                for k, v in run["setting"].items()]
    order = ["base"] + declared
    shuffled = verdicts.sample(frac=1, random_state=0)  # the grid's order is not the table's
    grid = sweep_step.verdict_grid(shuffled, {"settings": pd.DataFrame({"setting": order})})
    assert grid.index.tolist() == order
    assert order.index("epochs=12") < order.index("epochs=24")
    assert grid.columns.tolist()[:3] == ["IQA alignment peaks early then declines",
                                         "texture bias falls during training",
                                         "normalized noise drop falls during training"]
    assert grid.columns.tolist() == list(dict.fromkeys(verdicts["claim"]))  # as the page's long table lists them
    assert grid.loc["texture_correlation=0.5", "texture bias falls during training"] == "reproduced"
