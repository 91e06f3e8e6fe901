"""Library functions the notebook pages call that the fast tier otherwise reaches only through a page's kernel
(an audit of the lines the slow tests alone ran): each on tiny hand-made tables or run folders, its numbers
and sentences checked against values worked out by hand."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from clipalign_utils.checkpoints import Checkpoint, Run
from clipalign_utils.layout import RunDir
from clipalign_utils.models import create_model
from clipalign_utils.steps.interpolation import analysis as interpolation


def _write(run_dir, name, frame):
    (run_dir / "metrics").mkdir(parents=True, exist_ok=True)
    frame.to_csv(run_dir / "metrics" / f"{name}.csv", index=False)


def _iqa(checkpoints, epochs, srcc, distance="cosine", other=None):
    """iqa.csv: the overall rows at ``distance`` (srcc), a per-family row and, given ``other``, the overall rows
    at another distance, which the summary must not read."""
    rows = [{"checkpoint": c, "epoch": e, "dataset": "embedded", "distance": distance, "distortion": "all",
             "srcc": s, "srcc_lo": s - 0.1, "srcc_hi": s + 0.1} for c, e, s in zip(checkpoints, epochs, srcc)]
    rows += [{**row, "distortion": "blur", "srcc": -1.0} for row in rows]
    if other is not None:
        rows += [{**row, "distance": "euclidean", "srcc": s} for row, s in zip(rows, other)]
    return pd.DataFrame(rows)


def _noise(checkpoints, epochs, drops):
    """noise.csv: clean accuracy 0.8 and, per checkpoint, the normalized drops at sigma 0.1 and 0.2 (``drops``:
    one pair per checkpoint)."""
    rows = []
    for c, e, pair in zip(checkpoints, epochs, drops):
        rows.append({"checkpoint": c, "epoch": e, "dataset": "embedded", "sigma": 0.0, "accuracy": 0.8, "lo": 0.7,
                     "hi": 0.9, "normalized_drop": 0.0})
        rows += [{"checkpoint": c, "epoch": e, "dataset": "embedded", "sigma": s, "accuracy": 0.8 * (1 - d),
                  "lo": 0.0, "hi": 1.0, "normalized_drop": d} for s, d in zip((0.1, 0.2), pair)]
    return pd.DataFrame(rows)


# --- interpolation: the weights written --------------------------------------------------------------------------

def test_an_interpolated_checkpoint_holds_the_hand_average_under_its_alpha_in_full(tmp_path):
    # θ(α) is written as open_clip loads it: name, α and (1 − α)·start + α·end, the file named by α in full
    model = create_model("tiny", seed=0)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    end = create_model("tiny", seed=2).state_dict()
    path = interpolation.write_interpolated(model, start, end, 0.1 + 0.2, "tiny", tmp_path, None)
    assert path.name == "alpha_0.30000000000000004.pt"
    saved = torch.load(path, weights_only=True)
    assert saved["name"] == "tiny" and saved["alpha"] == 0.1 + 0.2
    expected = interpolation.interpolate_state(start, end, 0.1 + 0.2)
    assert saved["state_dict"].keys() == expected.keys()
    for key, value in expected.items():  # BatchNorm statistics too: no batches, nothing re-estimated
        assert torch.equal(saved["state_dict"][key], value), key


def test_an_interpolated_checkpoint_given_batches_has_their_batchnorm_statistics(tmp_path):
    # the stem's first BatchNorm then holds the mean of conv1's batch statistics at θ(α), every weight θ(α)'s
    model = create_model("tiny", seed=0)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    end = create_model("tiny", seed=2).state_dict()
    batches = [torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(i)) for i in range(2)]
    path = interpolation.write_interpolated(model, start, end, 0.5, "tiny", tmp_path, batches)
    saved = torch.load(path, weights_only=True)["state_dict"]
    expected = interpolation.interpolate_state(start, end, 0.5)
    with torch.no_grad():  # conv1 holds θ(0.5)'s weights (checked below): its outputs are what bn1 saw
        inputs = [model.visual.conv1(b) for b in batches]
    mean = torch.stack([x.mean((0, 2, 3)) for x in inputs]).mean(0)
    torch.testing.assert_close(saved["visual.bn1.running_mean"], mean, rtol=1e-5, atol=1e-6)
    assert not torch.equal(saved["visual.bn1.running_mean"], expected["visual.bn1.running_mean"])
    assert torch.equal(saved["visual.conv1.weight"], expected["visual.conv1.weight"])
    assert not model.training



def test_measured_models_are_one_row_each_in_their_order_with_the_steps_summary_columns(tmp_path, monkeypatch):
    # the IQA summary at params' distance, the shape and noise summaries merged by checkpoint (no epoch column),
    # in the order given; the embeddings cached in the scratch folder when one is given, else the run's cache
    names, epochs = ["alpha_0.5", "alpha_0.25"], [0.5, 0.25]
    seen = []

    def step(table):
        def measure(run, params, data):
            seen.append((data, [c.name for c in run.checkpoints], run.layout.cache))
            return table
        return measure

    monkeypatch.setattr(interpolation.iqa_step, "measure", step(
        {"iqa": _iqa(names[::-1], epochs[::-1], [0.3, 0.6], other=[0.9, 0.9])}))
    monkeypatch.setattr(interpolation.shape_step, "measure", step({"shape_bias": pd.DataFrame(
        {"checkpoint": names, "epoch": epochs, "dataset": "embedded", "shape_bias": [0.4, 0.2], "lo": 0.1,
         "hi": 0.7})}))
    monkeypatch.setattr(interpolation.noise_step, "measure", step(
        {"noise": _noise(names, epochs, [(0.2, 0.4), (0.1, 0.0)])}))
    run = Run(tmp_path, "tiny", 32, [Checkpoint(tmp_path / "epoch_1.pt", 1.0)], {})
    models = [Checkpoint(tmp_path / f"{n}.pt", e) for n, e in zip(names, epochs)]
    data = interpolation.InterpolationData("iqa data", "shape data", "noise data")
    rows = interpolation.measure_models(run, models, {"distance": "cosine"}, data, tmp_path / "scratch")
    assert rows["checkpoint"].tolist() == names and "epoch" not in rows.columns
    # cosine is the iqa table's distance per checkpoint: 0.6 at alpha_0.5, 0.3 at alpha_0.25 (euclidean's 0.9 unread)
    assert rows["iqa_srcc"].tolist() == [0.6, 0.3] and rows["iqa_srcc_lo"].tolist() == pytest.approx([0.5, 0.2])
    assert rows["shape_bias"].tolist() == [0.4, 0.2]
    assert rows["noise_drop"].tolist() == pytest.approx([0.3, 0.05])  # the mean of the two noisy sigmas' drops
    assert rows["clean_accuracy"].tolist() == [0.8, 0.8]
    assert seen == [(d, names, tmp_path / "scratch") for d in ("iqa data", "shape data", "noise data")]
    seen.clear()
    interpolation.measure_models(run, models, {"distance": "cosine"}, data)
    assert seen == [(d, names, RunDir(tmp_path).cache) for d in ("iqa data", "shape data", "noise data")]
    assert run.checkpoints == [Checkpoint(tmp_path / "epoch_1.pt", 1.0)]  # the run itself is left as it was


# --- interpolation: the checkpoints' own path and the runs of a folder ------------------------------------------

def _interpolation_table(srcc, drop, start="epoch_1", end="epoch_3"):
    alphas = [0.0, 0.5, 1.0]
    return pd.DataFrame({"alpha": alphas, "from_checkpoint": start, "to_checkpoint": end, "iqa_srcc": srcc,
                         "iqa_srcc_lo": np.nan, "iqa_srcc_hi": np.nan, "shape_bias": 0.5, "shape_bias_lo": 0.4,
                         "shape_bias_hi": 0.6, "noise_drop": drop, "noise_drop_lo": np.nan, "noise_drop_hi": np.nan,
                         "clean_accuracy": 0.8, "chance_corrected_drop": drop, "from_epoch": 1.0, "to_epoch": 3.0,
                         "bn_statistics": "reestimate", "has_batchnorm": True})


def test_a_runs_checkpoint_path_is_its_overall_srcc_and_mean_drop_in_epoch_order(tmp_path):
    # the checkpoints written out of epoch order; the IQA rows of the asked distance, over all distortions
    names, epochs = ["epoch_3", "epoch_0", "epoch_1"], [3.0, 0.0, 1.0]
    _write(tmp_path, "iqa", _iqa(names, epochs, [0.2, 0.1, 0.5], other=[0.7, 0.8, 0.9]))
    _write(tmp_path, "noise", _noise(names, epochs, [(0.1, 0.3), (0.5, 0.5), (0.0, 0.4)]))
    path = interpolation.checkpoint_path(tmp_path, "cosine")
    assert path.columns.tolist() == ["checkpoint", "epoch", "iqa_srcc", "noise_drop"]
    assert path["checkpoint"].tolist() == ["epoch_0", "epoch_1", "epoch_3"]
    assert path["iqa_srcc"].tolist() == [0.1, 0.5, 0.2]
    assert path["noise_drop"].tolist() == pytest.approx([0.5, 0.2, 0.2])
    assert interpolation.checkpoint_path(tmp_path, "euclidean")["iqa_srcc"].tolist() == [0.8, 0.9, 0.7]


def test_the_mean_path_over_runs_averages_each_epoch_over_the_runs_that_have_it():
    a = pd.DataFrame({"checkpoint": ["epoch_0", "epoch_1"], "epoch": [0.0, 1.0], "iqa_srcc": [0.1, 0.5],
                      "noise_drop": [0.2, 0.4]})
    b = pd.DataFrame({"checkpoint": ["epoch_0", "epoch_1", "epoch_2"], "epoch": [0.0, 1.0, 2.0],
                      "iqa_srcc": [0.3, 0.2, 0.6], "noise_drop": [0.4, np.nan, 0.1]})
    c = pd.DataFrame({"checkpoint": ["epoch_0"], "epoch": [0.0], "iqa_srcc": [0.8], "noise_drop": [1.2]})
    path = interpolation.seed_path({"a": a, "b": b, "c": c})
    assert path.columns.tolist() == ["epoch", "iqa_srcc", "noise_drop", "n_runs"]
    assert path["epoch"].tolist() == [0.0, 1.0, 2.0] and path["n_runs"].tolist() == [3, 2, 1]
    assert path["iqa_srcc"].tolist() == pytest.approx([0.4, 0.35, 0.6])
    assert path["noise_drop"].tolist() == pytest.approx([0.6, 0.4, 0.1])  # an undefined drop is not a 0


def test_over_runs_reads_each_runs_line_and_path_under_its_folder_name(tmp_path):
    lines = {"seed0": ([0.40, 0.50, 0.30], [0.20, 0.10, 0.15]), "seed1": ([0.42, 0.47, 0.44], [0.25, 0.20, 0.22])}
    for name, (srcc, drop) in lines.items():
        _write(tmp_path / name, "interpolation", _interpolation_table(srcc, drop))
        _write(tmp_path / name, "iqa", _iqa(["epoch_1", "epoch_3"], [1.0, 3.0], [srcc[0], srcc[2]]))
        _write(tmp_path / name, "noise", _noise(["epoch_1", "epoch_3"], [1.0, 3.0], [(drop[0],) * 2, (drop[2],) * 2]))
    over = interpolation.over_runs([tmp_path / "seed0", str(tmp_path / "seed1")], None)
    assert over.runs == ["seed0", "seed1"]
    # (tables without the chance flag, as written before it: read with it, from their drops)
    pd.testing.assert_frame_equal(over.seeds, interpolation.seed_table(
        {name: _interpolation_table(*values).assign(at_chance=False) for name, values in lines.items()}))
    # α = 0.5: 0.50 − 0.40 and 0.47 − 0.44 above the better end in SRCC; 0.15 − 0.10 and 0.22 − 0.20 in drop
    middle = over.verdicts.set_index("alpha").loc[0.5]
    assert middle["alignment_margin"] == pytest.approx(0.065) and middle["robustness_margin"] == pytest.approx(0.035)
    assert over.verdicts["alpha"].tolist() == [0.5]
    assert over.path["epoch"].tolist() == [1.0, 3.0] and over.path["n_runs"].tolist() == [2, 2]
    assert over.path["iqa_srcc"].tolist() == pytest.approx([0.41, 0.37])
    assert over.path["noise_drop"].tolist() == pytest.approx([0.225, 0.185])


# --- the sweep and tradeoff pages' sentences and figures ------------------------------------------------------

def test_the_sweep_intro_counts_runs_and_settings_and_names_what_differs():
    from clipalign_utils.steps.sweep import page as sweep_page

    settings = pd.DataFrame({"setting": ["a", "b"]})
    runs = ["r0", "r1", "r2"]
    assert sweep_page.intro_sentence(runs, {"settings": settings, "factors": ["lr", "seed_count"]}) == (
        "3 runs, 2 settings; they differ in: lr, seed_count")
    assert sweep_page.intro_sentence(runs[:1], {"settings": settings.head(1), "factors": []}) == (
        "1 run, 1 setting; they differ in: nothing")


def test_the_texture_correlation_sentences_read_that_factors_rows_measure_by_measure():
    # another factor's rows first and the measures out of order: each sentence is that measure's own row
    from clipalign_utils.metrics.sweep import SUMMARY_MEASURES
    from clipalign_utils.steps.sweep import page as sweep_page

    rows = [{"factor": "lr", "measure": m, "values": "1 → 2", "measured": "9 → 9", "direction": "flat"}
            for m in sweep_page.TEXTURE_MEASURES]
    rows += [{"factor": "texture_correlation", "measure": m, "values": "0.5 → 0.95", "measured": f"{i} → {i + 1}",
              "direction": f"direction {i}"} for i, m in enumerate(reversed(sweep_page.TEXTURE_MEASURES))]
    lines = sweep_page.texture_correlation_sentences(pd.DataFrame(rows))
    n = len(sweep_page.TEXTURE_MEASURES)
    assert lines == [f"as texture_correlation goes 0.5 → 0.95, {SUMMARY_MEASURES[m]} direction {n - 1 - i} "
                     f"({n - 1 - i} → {n - i})" for i, m in enumerate(sweep_page.TEXTURE_MEASURES)]
    assert lines[0].startswith("as texture_correlation goes 0.5 → 0.95, strongest texture bias in the first epoch ")
    absent = sweep_page.texture_correlation_sentences(pd.DataFrame(rows[:n]))
    # a command in backticks: said as Markdown, --out would read "–out"
    assert absent == ["this sweep does not vary texture_correlation alone; run one that does, e.g. "
                      "`clipalign sweep -p texture_correlation=0.5,0.8,0.95 --out runs/texture_correlation`"]
    assert sweep_page.texture_correlation_sentences(pd.DataFrame(columns=["factor"])) == absent


def test_two_checkpoints_above_chance_leave_the_pooled_link_undetermined():
    # two points always correlate ±1: with fewer than 3 the page must not read a direction into them, even where
    # the checkpoints at chance would make it look decided
    from clipalign_utils.steps.sweep import page as sweep_page

    settings = pd.DataFrame({"setting": ["a", "b", "c"], "sigmas": "0.1"})
    summary = pd.DataFrame({"setting": ["a", "b", "c"], "final_texture_bias": [0.6, 0.5, 0.4],
                            "noise_drop_final": [0.5, 0.4, 0.3]})
    table = pd.DataFrame({"setting": ["a", "b", "c"] * 4, "shape_bias": np.linspace(0.1, 0.9, 12),
                          "noise_drop": np.linspace(0.9, 0.1, 12), "shape_at_chance": [False] * 2 + [True] * 10,
                          "at_chance": False})
    lines = sweep_page.shape_noise_sentences({"sweep_summary": summary, "sweep_checkpoints": table},
                                             {"settings": settings, "factors": [], "reference": {}},
                                             {"n_perm": 200, "eval_seed": 0})
    assert "n = 2;" in lines[1]
    assert lines[2] == ("undetermined: fewer than 3 checkpoints are above chance both on clean images and on the "
                        "cue-conflict decisions")
    assert len(lines) == 3


def test_the_settings_left_out_are_told_apart_though_their_labels_hold_commas():
    from clipalign_utils.steps.sweep import page as sweep_page

    names = ["base", "sigmas=0.01,0.02,0.05", "sigmas=0.1,0.2,0.4"]
    settings = pd.DataFrame({"setting": names, "sigmas": ["0.02,0.05,0.1,0.2", "0.01,0.02,0.05", "0.1,0.2,0.4"]})
    summary = pd.DataFrame({"setting": names, "final_texture_bias": 0.5, "noise_drop_final": 0.3})
    table = pd.DataFrame({"setting": names * 2, "shape_bias": 0.5, "noise_drop": 0.3, "shape_at_chance": False,
                          "at_chance": False})
    lines = sweep_page.shape_noise_sentences({"sweep_summary": summary, "sweep_checkpoints": table},
                                             {"settings": settings, "factors": ["sigmas"],
                                              "reference": {"sigmas": "0.02,0.05,0.1,0.2"}},
                                             {"n_perm": 20, "eval_seed": 0})
    assert lines[0] == "left out (noise drop measured at other sigmas): sigmas=0.01,0.02,0.05; sigmas=0.1,0.2,0.4"


def test_the_factor_figure_is_none_when_no_parameter_varies_alone(monkeypatch):
    from clipalign_utils.steps.sweep import page as sweep_page

    monkeypatch.setattr(sweep_page, "factor_slices", lambda summary, data: {})
    assert sweep_page.factor_figure({"sweep_summary": pd.DataFrame()}, {}) is None
    drawn = []
    monkeypatch.setattr(sweep_page, "factor_slices", lambda summary, data: {"lr": summary})
    monkeypatch.setattr(sweep_page, "factor_panels", lambda slices: drawn.append(slices) or "figure")
    assert sweep_page.factor_figure({"sweep_summary": "the summary"}, {}) == "figure"
    assert drawn == [{"lr": "the summary"}]


def test_the_plane_figure_stars_each_scales_selected_checkpoint():
    # the selection is a row label of the plane table, which shares the means' index: the star is that checkpoint
    import matplotlib.pyplot as plt

    from clipalign_utils.steps.tradeoff import page as tradeoff_page

    means = pd.DataFrame({"scale": ["tiny"] * 3 + ["small"] * 3, "checkpoint": [f"epoch_{e}" for e in (0, 1, 2)] * 2,
                          "epoch": [0.0, 1.0, 2.0] * 2, "iqa_srcc": [0.1, 0.5, 0.3, 0.2, 0.3, 0.6],
                          "noise_drop": [0.5, 0.3, 0.1, 0.4, 0.3, 0.2], "n_seeds": [2] * 3 + [1] * 3},
                         index=[10, 11, 12, 20, 21, 22])
    plane = means.assign(on_pareto_front=[False, True, True, False, False, True],
                         selected=[False, True, False, False, False, True])
    figure = tradeoff_page.plane_figure(means, plane)
    labels = [[t.get_text() for t in ax.get_legend().get_texts()] for ax in figure.axes if ax.get_legend()]
    assert [[t for t in texts if t.startswith("selected")] for texts in labels] == [["selected: epoch_1"],
                                                                                   ["selected: epoch_2"]]
    assert [ax.get_title() for ax in figure.axes[:2]] == ["tiny: mean over 2 seeds", "small: one run"]
    plt.close(figure)


def test_the_verdict_text_is_one_markdown_item_per_verdict():
    from clipalign_utils.steps.tradeoff import page as tradeoff_page

    verdicts = pd.DataFrame({"claim": ["x", "y"], "verdict": ["reproduced", "not reproduced"],
                             "statistic": ["rho", "rho"], "value": [-0.5, 0.25], "ci_lo": [-0.9, np.nan],
                             "ci_hi": [-0.1, np.nan], "p_value": [0.01, np.nan], "detail": ["", ""]})
    assert tradeoff_page.verdict_text(verdicts) == ("- x: **reproduced** (rho = -0.500 [-0.900, -0.100], p = 0.01)\n"
                                                    "- y: **not reproduced** (rho = 0.250)")


# --- the quality experiment's runs --------------------------------------------------------------------------

def _experiment_run(run_dir, seed, variation=0.0, families=None, srcc=(0.2, 0.4), shape=(0.3, 0.6), finished=True):
    """A finished run of the quality experiment: train_params.json, iqa.csv (overall and two families' rows at
    cosine, an overall row at euclidean), shape_bias.csv, noise.csv (without it the run is unfinished)."""
    run_dir.mkdir(parents=True)
    record = {"seed": seed, "quality_variation": variation}
    if families is not None:
        record["quality_families"] = families
    (run_dir / "train_params.json").write_text(json.dumps(record))
    names, epochs = ["epoch_0", "epoch_1"], [0.0, 1.0]
    iqa = _iqa(names, epochs, list(srcc), other=[0.9, 0.9])
    overall = iqa[(iqa["distortion"] == "all") & (iqa["distance"] == "cosine")]
    iqa = pd.concat([iqa[iqa["distortion"] == "all"],
                     *(overall.assign(distortion=f, srcc=[s + k / 10 for s in srcc])
                       for k, f in ((1, "gaussian_blur"), (3, "additive_gaussian_noise")))], ignore_index=True)
    _write(run_dir, "iqa", iqa)
    _write(run_dir, "shape_bias", pd.DataFrame({"checkpoint": names, "epoch": epochs, "dataset": "embedded",
                                                "shape_bias": list(shape), "lo": 0.0, "hi": 1.0}))
    if finished:
        _write(run_dir, "noise", _noise(names, epochs, [(0.2, 0.2), (0.1, 0.1)]))


def _experiment(folder):
    _experiment_run(folder / "clean" / "seed0", 0)
    _experiment_run(folder / "clean" / "seed1", 1, srcc=(0.3, 0.5), shape=(0.2, 0.4))
    _experiment_run(folder / "clean" / "seed2", 2, finished=False)
    _experiment_run(folder / "varied" / "seed0", 0, 0.6, ["gaussian_blur", "jpeg_compression"], srcc=(0.1, 0.6))
    (folder / "varied" / "book" / "metrics").mkdir(parents=True)  # a staged book: no run


def test_the_experiments_table_labels_each_run_by_its_world_with_its_family_alignment(tmp_path):
    from clipalign_utils.steps.quality_experiment import analysis as experiment

    _experiment(tmp_path)
    table, settings = experiment.load([tmp_path], "cosine")
    assert table.groupby("run", sort=False)["setting"].first().to_dict() == {
        "clean/seed0": "clean", "clean/seed1": "clean",
        "varied/seed0": "variation 0.6, held out: additive_gaussian_noise, contrast_change, mean_shift, "
                        "change_of_color_saturation, impulse_noise, quantization_noise"}
    assert table["seed"].tolist() == [0, 0, 1, 1, 0, 0] and table["epoch"].tolist() == [0.0, 1.0] * 3
    assert table["iqa_srcc"].tolist() == [0.2, 0.4, 0.3, 0.5, 0.1, 0.6]  # cosine's overall rows, not euclidean's
    assert table["texture_bias"].tolist() == pytest.approx([0.7, 0.4, 0.8, 0.6, 0.7, 0.4])
    # families: blur at srcc + 0.1, noise at srcc + 0.3; seen in training only blur, in the varied run alone
    assert table["within_family_srcc"].tolist() == pytest.approx([0.4, 0.6, 0.5, 0.7, 0.3, 0.8])
    varied = table[table["run"] == "varied/seed0"]
    assert varied["within_seen_srcc"].tolist() == pytest.approx([0.2, 0.7])
    assert varied["within_unseen_srcc"].tolist() == pytest.approx([0.4, 0.9])
    clean = table[table["setting"] == "clean"]
    assert clean["within_seen_srcc"].isna().all()
    assert clean["within_unseen_srcc"].tolist() == pytest.approx(clean["within_family_srcc"].tolist())
    assert settings["setting"].tolist() == ["clean", varied["setting"].iloc[0]]
    assert settings["n_seeds"].tolist() == [2, 1] and settings["quality_variation"].tolist() == [0.0, 0.6]
    # the clean world degrades nothing: its families do not apply
    assert settings["quality_families"].tolist() == ["—", "gaussian_blur, jpeg_compression"]
    assert settings["texture_correlation"].tolist() == [0.8, 0.8]
    # the sweep folders given one by one read alike, and a folder of no finished run is refused by name
    again, _ = experiment.load([tmp_path / "clean", tmp_path / "varied"], "cosine")
    pd.testing.assert_frame_equal(again, table)
    from clipalign_utils.errors import ParameterError
    with pytest.raises(ParameterError, match=r"run_dirs .*seed2 hold no finished run \(train_params.json and "
                                             r"metrics/noise.csv\)"):
        experiment.load([tmp_path / "clean" / "seed2"])


def test_an_experiment_of_an_unknown_preset_says_no_fixed_differences(tmp_path):
    from clipalign_utils.steps.quality_experiment import analysis as experiment

    (tmp_path / "experiment.json").write_text(json.dumps({"preset": "no-such-preset",
                                                          "sweeps": {"a": {"lr": "0.5"}}}))
    assert experiment.fixed_differences(tmp_path) == ("", {})
    (tmp_path / "experiment.json").write_text(json.dumps({"preset": "smoke", "sweeps": {"a": {"lr": "0.5"}}}))
    assert experiment.fixed_differences(tmp_path)[0] == "smoke"


def test_the_experiments_measurement_is_its_table_seed_means_verdicts_and_predictions(tmp_path):
    from clipalign_utils.steps.quality_experiment import analysis as experiment

    _experiment(tmp_path)
    tables, settings = experiment.measure([tmp_path], {"distance": "cosine", "n_perm": 20, "eval_seed": 0})
    table, expected_settings = experiment.load([tmp_path], "cosine")
    assert list(tables) == ["quality_checkpoints", "quality_seed_means", "quality_verdicts", "quality_predictions"]
    pd.testing.assert_frame_equal(tables["quality_checkpoints"], table)
    pd.testing.assert_frame_equal(settings, expected_settings)
    means = tables["quality_seed_means"].set_index(["setting", "epoch"])
    # the clean setting's two seeds: SRCC 0.2 and 0.3 at epoch 0, 0.4 and 0.5 at epoch 1
    assert means.loc[("clean", 0.0), "iqa_srcc"] == pytest.approx(0.25)
    assert means.loc[("clean", 1.0), "iqa_srcc"] == pytest.approx(0.45)
    assert means.loc[("clean", 1.0), "n_seeds"] == 2
    assert set(tables["quality_verdicts"]["setting"]) == set(settings["setting"])
    assert list(tables["quality_predictions"].columns) == experiment.PREDICTION_COLUMNS


# --- the training page ------------------------------------------------------------------------------------------

def _world_params(**overrides):
    from clipalign_utils import config

    return {**config.PRESETS["smoke"], "seed": 3, "samples_per_epoch": 24, "quality_variation": 0.5,
            "fresh_data": True, **overrides}


def _panels(figure):
    """(title, image) of each drawn panel of an image grid."""
    return [(ax.get_title(), np.asarray(ax.images[0].get_array())) for ax in figure.axes if ax.images]


@pytest.mark.parametrize("fresh_data", [False, True])
def test_the_world_sample_is_the_first_training_pairs_titled_by_their_class_and_texture(fresh_data):
    import matplotlib.pyplot as plt

    from clipalign_utils.data import world
    from clipalign_utils.steps.train import page as training

    params = _world_params(fresh_data=fresh_data)
    figure = training.world_sample_figure(params, n=4)
    # with fresh_data training draws data epoch 1 first (epoch 0 is never trained on)
    sample = world.make_pairs(4, 3, world.training_world(params), epoch=int(fresh_data))
    epoch_0 = world.make_pairs(4, 3, world.training_world(params)).images
    assert fresh_data == (not np.array_equal(sample.images, epoch_0))
    panels = _panels(figure)
    assert [title for title, _ in panels] == [f"{world.SHAPES[s]}/{world.TEXTURES[t]}"
                                              for s, t in zip(sample.shape_labels, sample.texture_labels)]
    for (_, image), expected in zip(panels, sample.images):
        np.testing.assert_array_equal(image, expected)
    plt.close(figure)


@pytest.mark.parametrize("fresh_data", [False, True])
def test_the_degraded_figure_shows_the_degraded_images_of_the_epoch_training_draws_first(fresh_data):
    # with fresh data training starts on data epoch 1: the images shown are that epoch's, degraded as listed
    import matplotlib.pyplot as plt

    from clipalign_utils.data import world
    from clipalign_utils.steps.train import page as training

    params = _world_params(fresh_data=fresh_data)
    degraded = training.degradations(params)
    assert len(degraded) > 2
    figure = training.degraded_figure(params, degraded, n=2)
    panels = _panels(figure)
    assert [title for title, _ in panels] == [f"{f}\nlevel {lv}" for f, lv in
                                              zip(degraded["family"][:2], degraded["level"][:2])]
    epoch = 1 if fresh_data else 0
    for (_, image), index in zip(panels, degraded["index"][:2]):
        np.testing.assert_array_equal(image, world.make_pair(index, 3, world.training_world(params), epoch=epoch)[0])
    plt.close(figure)


def test_the_loss_figure_draws_the_log_and_a_line_per_checkpoint(tmp_path):
    import matplotlib.pyplot as plt

    from clipalign_utils.steps.train import page as training
    from helpers import fake_run

    run = fake_run(tmp_path, epochs=(0, 0.5, 2))
    run.layout.train_log.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"step": [1, 2, 3], "epoch": [0.5, 1.0, 1.5], "loss": [4.0, 3.0, 2.5],
                  "lr": [0.1, 0.2, 0.1]}).to_csv(run.layout.train_log, index=False)
    figure = training.loss_figure(run)
    loss, lr = figure.axes
    assert loss.lines[0].get_ydata().tolist() == [4.0, 3.0, 2.5] and lr.lines[0].get_ydata().tolist() == [0.1, 0.2, 0.1]
    assert [line.get_xdata()[0] for line in loss.lines[1:]] == [0.0, 0.5, 2.0]
    plt.close(figure)


def test_page_one_of_a_run_trained_elsewhere_lists_its_checkpoints_and_what_params_txt_says(tmp_path):
    from clipalign_utils.steps.train import page as training

    run = tmp_path / "quick"
    (run / "checkpoints").mkdir(parents=True)
    for epoch in (2, 1, 10):
        (run / "checkpoints" / f"epoch_{epoch}.pt").write_bytes(b"")
    lines = {"model": "clipalign-tiny", "batch_size": "64", "lr": "0.0005", "pretrained": "", "wd": "None",
             "warmup": "None", "precision": "amp", "seed": "0", "siglip": "False"}
    (run / "params.txt").write_text("".join(f"{k}: {v}\n" for k, v in sorted(lines.items())))
    text = training.trained_elsewhere_page(run)
    assert "open_clip_train's run `quick`, analysed where it lies" in text
    assert "**3 checkpoints of clipalign-tiny**, at epochs 1, 2, 10." in text
    # the keys said, in TRAINED_ELSEWHERE_KEYS' order; the empty and None ones and those not listed left out
    assert ("| parameter | value |\n|---|---|\n| `model` | `clipalign-tiny` |\n| `batch_size` | `64` |\n"
            "| `lr` | `0.0005` |\n| `precision` | `amp` |\n| `seed` | `0` |\n\n") in text
    assert "siglip" not in text and "pretrained" not in text and "`wd`" not in text
    assert text.startswith("# 1. Training\n") and text.endswith("shows its training world and loss here.\n")


def test_page_one_of_a_streamed_run_says_where_its_model_name_came_from(tmp_path):
    """An audit: a folder of checkpoints without params.txt streamed with `-p model=RN50` showed "What the run's
    params.txt says: model RN50"; clipalign wrote that file from -p model."""
    from clipalign_utils.steps.train import page as training

    run = tmp_path / "rn50"
    run.mkdir()
    (run / "params.txt").write_text("model: RN50\n")
    checkpoints = [{"name": "epoch_1", "epoch": 1, "local": True, "source": "/data/oc/epoch_1.pt"}]
    (run / "source.json").write_text(json.dumps({"source": "/data/oc", "architecture": None, "model": "RN50",
                                                 "checkpoints": checkpoints}))
    text = training.trained_elsewhere_page(run)
    assert ("What the run's `params.txt` says (clipalign wrote it, the model as given with `-p model`):\n\n"
            "| parameter | value |\n|---|---|\n| `model` | `RN50` |\n") in text
    # the source named it (its own params.txt, a LAION run's name): the table says so as before
    (run / "source.json").write_text(json.dumps({"source": "/data/oc", "architecture": "RN50", "model": "RN50",
                                                 "checkpoints": checkpoints}))
    assert "What the run's `params.txt` says:\n" in training.trained_elsewhere_page(run)


# --- opening a page: the orchestration it does ------------------------------------------------------------------

@pytest.fixture
def page_calls(monkeypatch):
    """The record's and the training's calls a page's opening makes, replaced by ones that note (what, where)."""
    from types import SimpleNamespace

    from clipalign_utils import checkpoints, record
    from clipalign_utils.orchestration import step_page

    calls = []
    resolved = SimpleNamespace(params={"distance": "cosine"}, preset="smoke", given=lambda: {"lr": 1},
                               unless_preset=lambda name: "the model")
    monkeypatch.setattr(record, "check_injected", lambda namespace: calls.append(("checked", None)))
    monkeypatch.setattr(record, "for_page", lambda namespace, where, step, show=True: calls.append(
        ("read", str(where), step)) or resolved)
    monkeypatch.setattr(step_page, "_show_parameters", lambda namespace, where, step, r, runs=None: None)  # test_record
    monkeypatch.setattr(record, "stage_entry", lambda where, step, r: calls.append(("staged", str(where), step)))
    monkeypatch.setattr(record, "write_entry", lambda where, step, r: calls.append(("written", str(where), step)))
    monkeypatch.setattr(checkpoints, "discover_or_train", lambda where, params, auto, model: calls.append(
        ("trained", str(where), auto, model)) or "the run")
    monkeypatch.setattr(step_page, "say", lambda text: calls.append(("said", text)))
    return calls, resolved


def test_a_step_page_on_a_folder_of_runs_measures_the_others_apart_and_shows_the_first(tmp_path, monkeypatch,
                                                                                       page_calls):
    from clipalign_utils import record
    from clipalign_utils.orchestration import measure, step_page

    calls, resolved = page_calls
    for name in ("b", "a", "c"):
        (tmp_path / name / "checkpoints").mkdir(parents=True)
    monkeypatch.setattr(record, "run_preset", lambda where, preset: f"preset of {Path(where).name}")
    monkeypatch.setattr(record, "cell_values", lambda namespace, preset: (["lr"], {"lr": preset}))
    monkeypatch.setattr(measure, "in_own_processes", lambda runs, step, preset, given, declared: calls.append(
        ("measured", [Path(r).name for r in runs], step, preset, given, declared)))
    run, params = step_page.open_run({"run_dir": str(tmp_path), "auto_train": "no", "preset": None}, "iqa")
    assert (run, params) == ("the run", resolved.params)
    a = str(tmp_path / "a")
    assert calls[0] == ("checked", None) and calls[1][0] == "said"
    assert calls[1][1].startswith(f"`{tmp_path}` holds 3 runs: this page shows `a`; step iqa is measured in `b`, `c` "
                                  "too, each in its own process.")
    assert calls[2:] == [("measured", ["b", "c"], "iqa", None, {"lr": f"preset of {tmp_path.name}"}, ["lr"]),
                         ("read", a, "iqa"), ("trained", a, False, "the model"), ("staged", a, "iqa")]
    calls.clear()
    (tmp_path / "a" / "checkpoints").rmdir(), (tmp_path / "c" / "checkpoints").rmdir()
    step_page.open_run({"run_dir": str(tmp_path)}, "noise")  # one run: nothing else to measure
    assert "step noise is measured in no other run too" in calls[1][1]
    calls.clear()
    step_page.open_run({"run_dir": str(tmp_path / "b")}, "noise")  # a run itself: no folder, nothing measured apart
    b = str(tmp_path / "b")
    assert calls == [("checked", None), ("read", b, "noise"), ("trained", b, True, "the model"),
                     ("staged", b, "noise")]


def test_the_training_experiment_and_sweep_pages_read_and_record_their_own_entries(tmp_path, monkeypatch,
                                                                                  page_calls):
    from clipalign_utils import registry
    from clipalign_utils.orchestration import step_page, sweep

    calls, resolved = page_calls
    out = str(tmp_path / "out")
    assert step_page.open_training({"run_dir": out}) == resolved.params
    assert calls == [("checked", None), ("read", out, "train"), ("written", out, "train")]
    calls.clear()
    assert step_page.open_experiment({"run_dir": out}, "quality_experiment") == ([Path(out)], resolved.params)
    assert calls == [("checked", None), ("read", out, "quality_experiment"), ("staged", out, "quality_experiment")]
    runs = [tmp_path / "r1", tmp_path / "r2"]
    for run in runs:
        run.mkdir()
    given = f"{runs[0]},{runs[1]}"
    assert step_page.open_experiment({"run_dir": out, "run_dirs": given}, "x")[0] == runs
    calls.clear()
    monkeypatch.setattr(sweep, "sweep_run_dirs", lambda where: ["listed by", where])
    assert step_page.open_sweep({"run_dir": out}) == (["listed by", out], resolved.params)
    assert calls == [("checked", None), ("read", out, registry.SWEEP_PAGE), ("staged", out, registry.SWEEP_PAGE)]
    assert step_page.open_sweep({"run_dir": out, "run_dirs": given})[0] == runs


def test_the_synthesis_refuses_a_run_that_does_not_exist_naming_it(tmp_path, page_calls):
    from clipalign_utils.errors import CheckpointError
    from clipalign_utils.orchestration import step_page

    calls, _ = page_calls
    there, missing = tmp_path / "there", tmp_path / "missing"
    there.mkdir()
    with pytest.raises(CheckpointError, match=f"^run_dir {missing} does not exist: run the pipeline there first "
                                              f"\\(clipalign run --out {missing}\\), or leave auto_train on"):
        step_page.open_runs({"run_dir": str(tmp_path), "run_dirs": f"{there},{missing}", "auto_train": False})
    assert not any(call[0] == "staged" for call in calls)  # nothing recorded for a page that failed


def test_the_synthesis_opened_alone_trains_then_measures_only_the_missing_steps(tmp_path, monkeypatch, page_calls):
    from clipalign_utils import registry
    from clipalign_utils.orchestration import measure, step_page

    calls, resolved = page_calls
    monkeypatch.setattr(measure, "measure_step", lambda where, step, preset, given: calls.append(
        ("measured", Path(where).name, step, preset, given)))
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    steps = [step.name for step in registry.analysis_steps()]
    for table in registry.get(steps[0]).tables:  # the first analysis step's tables are there already
        _write(run, table.name, pd.DataFrame({"checkpoint": ["epoch_0"]}))
    assert step_page.ensure_run(run, resolved) == run.resolve()
    assert calls[0] == ("trained", str(run.resolve()), True, "the model")
    assert [call[2] for call in calls if call[0] == "measured"] == steps[1:]
    assert ("measured", "run", steps[1], "smoke", {"lr": 1}) in calls
    assert ("said", f"`{run.resolve()}` lacks the tables of step {steps[1]}: measuring it first") in calls
    # shared without its weights but with every table: read as it is, nothing trained or measured
    shared = tmp_path / "shared"
    for step in steps:
        for table in registry.get(step).tables:
            _write(shared, table.name, pd.DataFrame({"checkpoint": ["epoch_0"]}))
    calls.clear()
    assert step_page.ensure_run(shared, resolved) == shared.resolve() and calls == []


# --- a step measured through the library ------------------------------------------------------------------------

def test_a_step_measured_apart_resolves_records_measures_and_writes_in_that_order(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from clipalign_utils import record
    from clipalign_utils.orchestration import measure

    calls = []
    resolved = SimpleNamespace(params={"p": 1}, unless_preset=lambda name: f"{name} unless preset")
    monkeypatch.setattr(record, "run_preset", lambda where, preset: calls.append(("preset", where, preset)) or "smoke")
    monkeypatch.setattr(record, "resolve", lambda where, preset, given: calls.append(("resolve", preset, given)) or 1)
    monkeypatch.setattr(record, "for_step", lambda where, step, r, declared: calls.append(
        ("for_step", step, r, declared)) or resolved)
    monkeypatch.setattr(measure, "discover_run", lambda where, model: calls.append(("run", where, model)) or "RUN")
    monkeypatch.setattr(record, "stage_entry", lambda where, step, r: calls.append(("staged", step)))
    module = SimpleNamespace(OPTIONAL_TABLES=("extra",),
                             measure=lambda run, params: calls.append(("measure", run, params)) or {"t": "table"})
    monkeypatch.setattr(measure, "step_module", lambda step: module)
    monkeypatch.setattr(measure, "write_tables", lambda tables, where, optional: calls.append(
        ("write", tables, where, optional)) or ["written"])
    assert measure.measure_step(str(tmp_path), "iqa", None, {"lr": 2}, ["lr"]) == ["written"]
    assert calls == [("preset", tmp_path, None), ("resolve", "smoke", {"lr": 2}), ("for_step", "iqa", 1, ["lr"]),
                     ("run", tmp_path, "model unless preset"), ("staged", "iqa"), ("measure", "RUN", {"p": 1}),
                     ("write", {"t": "table"}, tmp_path, ("extra",))]


def test_runs_measured_in_their_own_processes_go_one_pool_each_in_order_and_stop_at_an_error(monkeypatch):
    from clipalign_utils.orchestration import measure

    pools = []

    class Pool:  # a process pool run inline: what each would be given
        def __init__(self, max_workers, mp_context):
            pools.append((max_workers, mp_context.get_start_method(), []))

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def submit(self, function, *args):
            pools[-1][2].append(args)
            from concurrent.futures import Future
            future = Future()
            if args[0] == "bad":
                future.set_exception(RuntimeError("measuring bad failed"))
            else:
                future.set_result(function)
            return future

    monkeypatch.setattr(measure, "ProcessPoolExecutor", Pool)
    measure.in_own_processes([Path("r1"), "r2"], "iqa", "smoke", None, ("lr",))
    assert pools == [(1, "spawn", [("r1", "iqa", "smoke", {}, ["lr"])]),
                     (1, "spawn", [("r2", "iqa", "smoke", {}, ["lr"])])]
    pools.clear()
    with pytest.raises(RuntimeError, match="measuring bad failed"):
        measure.in_own_processes(["bad", "r3"], "noise", None, {"a": 1}, None)
    assert [args for _, _, args in pools] == [[("bad", "noise", None, {"a": 1}, None)]]  # r3 never started


def test_the_summary_figures_accuracy_panel_is_the_seed_mean_per_noise_level(monkeypatch):
    # the tradeoff page per scale, the sweep page per setting and clean images only: accuracy averaged over seeds
    # at each (group, sigma, epoch)
    from clipalign_utils import results
    from clipalign_utils.steps.sweep import page as sweep_page
    from clipalign_utils.steps.tradeoff import page as tradeoff_page

    noise = pd.DataFrame({"scale": "tiny", "setting": "a", "seed": [0, 1, 0, 1], "sigma": [0.0, 0.0, 0.1, 0.1],
                          "epoch": 1.0, "accuracy": [0.8, 0.6, 0.5, 0.3], "lo": 0.0, "hi": 1.0})
    drawn = []
    for module in (tradeoff_page, sweep_page):
        monkeypatch.setattr(module, "summary_figure",
                            lambda means, noise_means, **kw: drawn.append((means, noise_means, kw)))
    monkeypatch.setattr(results, "noise_curves_of", lambda run_dirs: noise)
    tradeoff_page.summary("the means", ["r"])
    means, noise_means, kw = drawn[-1]
    assert means == "the means" and kw == {"by": "scale"}
    assert noise_means.set_index("sigma")["accuracy"].to_dict() == pytest.approx({0.0: 0.7, 0.1: 0.4})
    monkeypatch.setattr(sweep_page, "seed_means", lambda data: "the sweep's means")
    sweep_page.curves_figure({"noise": noise})
    means, noise_means, kw = drawn[-1]
    assert means == "the sweep's means" and kw == {"by": "setting", "clean_only": True}
    assert noise_means.set_index("sigma")["accuracy"].to_dict() == pytest.approx({0.0: 0.7, 0.1: 0.4})
    assert noise_means["n_seeds"].tolist() == [2, 2]


def test_the_interpolation_reads_each_steps_evaluation_set_with_its_unrecorded_loader(monkeypatch):
    # the steps' own loaders, unwrapped: those steps record what they load, this one must not record it as theirs
    for name, step in (("iqa", interpolation.iqa_step), ("shape", interpolation.shape_step),
                       ("noise", interpolation.noise_step)):
        def recorded(run, params):
            raise AssertionError("the recorded loader was called")
        recorded.__wrapped__ = lambda run, params, name=name: (name, run, params["p"])
        monkeypatch.setattr(step, "load", recorded)
    data = interpolation.load("RUN", {"p": 7})
    assert (data.iqa, data.shape, data.noise) == (("iqa", "RUN", 7), ("shape", "RUN", 7), ("noise", "RUN", 7))


def test_an_experiment_of_one_sweep_names_no_value_it_varies_as_fixed(tmp_path):
    """`clipalign experiment quality --only-sweeps variation` records one sweep: its swept quality_variation=0,0.6
    was taken for a value every run had, and the page failed on it as no number. A list parameter's one value
    (quality_families, comma-separated) is fixed; its sweep's values are separated by semicolons."""
    from clipalign_utils.steps.quality_experiment import analysis as experiment

    sweep = {"quality_variation": "0,0.6", "epochs": "6", "seed": "0,1,2",
             "quality_families": "jpeg_compression,contrast_change"}
    (tmp_path / "experiment.json").write_text(json.dumps({"preset": "smoke", "sweeps": {"variation": sweep}}))
    preset, differences = experiment.fixed_differences(tmp_path)
    assert differences["epochs"][0] == "6" and differences["quality_families"][0] == sweep["quality_families"]
    assert "quality_variation" not in differences and "seed" not in differences
    sweep["quality_families"] = "jpeg_compression;contrast_change"
    (tmp_path / "experiment.json").write_text(json.dumps({"preset": "smoke", "sweeps": {"variation": sweep}}))
    assert "quality_families" not in experiment.fixed_differences(tmp_path)[1]
