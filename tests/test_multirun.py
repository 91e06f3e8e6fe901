"""Seeds and scales: aggregation over seeds (hand-computed), and `clipalign run --seeds … --scales …`
end to end, resumed."""
from __future__ import annotations

import json
import os
import re
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from clipalign_utils import cli, results
from clipalign_utils.errors import ParameterError
from clipalign_utils.layout import RunDir, runs_in
from clipalign_utils.steps.tradeoff.page import verdict_sentences
from clipalign_utils.metrics import tradeoff
from clipalign_utils.orchestration.multirun import plan_runs
from clipalign_utils.registry import REPO_ROOT
from helpers import checkpoint_table, steps_that_only_mark_done

# Student t quantiles (0.975): 1 and 2 degrees of freedom.
T1, T2 = 12.706204736174707, 4.302652729749464


def _run_rows(scale, seed, iqa, shape, drop, epochs=(0.0, 1.0)):
    return checkpoint_table(
        epochs, scale=scale, seed=seed, run=f"{scale}-seed{seed}",
        iqa_srcc=iqa, iqa_srcc_lo=[v - 0.1 for v in iqa], iqa_srcc_hi=[v + 0.1 for v in iqa],
        shape_bias=shape, shape_bias_lo=[v - 0.05 for v in shape], shape_bias_hi=[v + 0.05 for v in shape],
        clean_accuracy=np.linspace(0.5, 0.9, len(epochs)), noise_drop=drop)


def test_seed_means_mean_and_t_interval_per_scale_and_epoch():
    table = pd.concat([
        _run_rows("tiny", 0, [0.1, 0.4], [0.5, 0.6], [0.2, 0.3]),
        _run_rows("tiny", 1, [0.2, 0.6], [0.5, 0.8], [0.2, 0.5]),
        _run_rows("tiny", 2, [0.3, 0.8], [0.5, 1.0], [0.2, 0.7]),
        _run_rows("small", 0, [0.7, 0.9], [0.4, 0.2], [0.1, 0.1]),
    ], ignore_index=True)
    means = tradeoff.seed_means(table)
    assert list(zip(means["scale"], means["epoch"])) == [("tiny", 0.0), ("tiny", 1.0), ("small", 0.0), ("small", 1.0)]
    tiny1 = means.iloc[1]
    # iqa at epoch 1: 0.4, 0.6, 0.8 -> mean 0.6, sd 0.2, half-width t2 * 0.2 / sqrt(3)
    half = T2 * 0.2 / np.sqrt(3)
    assert tiny1["n_seeds"] == 3
    assert tiny1["iqa_srcc"] == pytest.approx(0.6)
    assert (tiny1["iqa_srcc_lo"], tiny1["iqa_srcc_hi"]) == pytest.approx((0.6 - half, 0.6 + half))
    assert tiny1["shape_bias"] == pytest.approx(0.8)
    assert tiny1["shape_bias_hi"] == pytest.approx(0.8 + half)
    assert (tiny1["noise_drop_lo"], tiny1["noise_drop_hi"]) == pytest.approx((0.5 - half, 0.5 + half))
    # identical seeds: a zero-width interval
    tiny0 = means.iloc[0]
    assert (tiny0["noise_drop_lo"], tiny0["noise_drop"], tiny0["noise_drop_hi"]) == pytest.approx((0.2, 0.2, 0.2))
    # one seed: the run's own interval where it has one, else nan
    small1 = means.iloc[3]
    assert small1["n_seeds"] == 1
    assert (small1["iqa_srcc_lo"], small1["iqa_srcc"], small1["iqa_srcc_hi"]) == pytest.approx((0.8, 0.9, 1.0))
    assert np.isnan(small1["noise_drop_lo"]) and np.isnan(small1["clean_accuracy_hi"])


def test_t_interval_two_values():
    mean, lo, hi, n = tradeoff.t_interval([1.0, 3.0, np.nan])
    assert (mean, n) == (2.0, 2)
    assert (lo, hi) == pytest.approx((2 - T1, 2 + T1))  # sd sqrt(2), se 1


def test_correlation_interval_by_hand():
    # ρ = 0.2 and 0.6: mean 0.4, sd 0.2√2, se 0.2; the t-interval 0.4 ± 0.2·t(0.975, 1), cut to [−1, 1].
    mean, lo, hi, n = tradeoff.correlation_interval([0.2, 0.6, np.nan])
    assert n == 2 and mean == pytest.approx(0.4)
    assert (lo, hi) == (max(-1.0, 0.4 - 0.2 * T1), min(1.0, 0.4 + 0.2 * T1))
    # Seeds that rank perfectly narrow the interval (on Fisher's z, with ±1 clipped, they widened it: the audit's
    # ρ = −1, −1, −0.9 came out inconclusive while −0.9, −0.85, −0.95 fell clearly).
    rho = [-1.0, -1.0, -0.9]
    half = stats.t.ppf(0.975, 2) * np.std(rho, ddof=1) / np.sqrt(3)
    assert tradeoff.correlation_interval(rho) == pytest.approx((np.mean(rho), -1.0, np.mean(rho) + half, 3))
    assert tradeoff.correlation_interval(rho)[2] < 0
    assert tradeoff.correlation_interval([-1.0, -1.0, -1.0]) == (-1.0, -1.0, -1.0, 3)
    assert tradeoff.correlation_interval([-1.0, 0.2, 0.3])[0] == pytest.approx(-1 / 6)  # the seeds' own mean
    assert -1 <= lo < mean < hi <= 1


def test_verdicts_by_scale_counts_reproducing_seeds():
    epochs = (0.0, 1.0, 2.0, 3.0, 4.0)
    falling = [0.9, 0.7, 0.5, 0.3, 0.1]
    rising = falling[::-1]
    table = pd.concat([
        # texture bias = 1 - shape bias falls in seeds 0 and 1, rises in seed 2
        _run_rows("tiny", 0, [0.1, 0.2, 0.3, 0.4, 0.5], rising, falling, epochs),
        _run_rows("tiny", 1, [0.1, 0.2, 0.3, 0.4, 0.5], rising, falling, epochs),
        _run_rows("tiny", 2, [0.1, 0.2, 0.3, 0.4, 0.5], [0.5, 0.51, 0.52, 0.53, 0.4], falling, epochs),
    ], ignore_index=True)
    verdicts = tradeoff.verdicts(table, n_perm=200, by="scale")
    texture = verdicts[verdicts["claim"] == "texture bias falls during training"].iloc[0]
    assert texture["scale"] == "tiny" and texture["n_seeds"] == 3
    assert texture["seeds_reproduced"] == pytest.approx(2 / 3)
    # The mean curve falls monotonically (its permutation p over 5 checkpoints: 1/60), but the seeds are the
    # replicates: seed 2's texture bias (0.5, 0.49, 0.48, 0.47, 0.6) has ranks 4 3 2 1 5 against epoch, Σd² = 20,
    # ρ = 1 − 6·20/(5·24) = 0; so ρ = −1, −1, 0: mean −2/3, sd √(1/3), t(2, 0.975) = 4.302653, half-width
    # 4.302653 · √(1/3) / √3 = 1.434218: [−2.1009 cut to −1, 0.767551], which holds 0.
    assert texture["statistic"] == "spearman(epoch, texture_bias) per seed (mean over 3 seeds, t interval over seeds)"
    assert texture["value"] == pytest.approx(-2 / 3)
    assert (texture["ci_lo"], texture["ci_hi"]) == pytest.approx((-1.0, 0.767551), abs=1e-6)
    assert np.isnan(texture["p_value"]) and texture["verdict"] == tradeoff.INCONCLUSIVE
    assert texture["detail"] == ("texture_bias: ρ per seed (0: -1.00; 1: -1.00; 2: 0.00), mean -0.667 [-1.000, 0.768]; "
                                 "the interval includes 0")
    assert texture["seeds_agree"] == pytest.approx(1 / 3)  # seed 2 alone: no trend, inconclusive
    assert texture["seed_verdicts"] == ("0: reproduced; 1: reproduced; 2: " +
                                        tradeoff.verdicts(table[table["seed"] == 2].reset_index(drop=True),
                                                          n_perm=200).set_index("claim").loc[texture["claim"], "verdict"])
    assert texture["seed_verdicts"].endswith(tradeoff.INCONCLUSIVE)
    # seeds that fall alike: the interval lies below 0 (ρ = −1, −1, −0.9: mean −0.966667, half-width
    # 4.302653 · 0.057735 / √3 = 0.143422); rising alike, above 0 (not reproduced)
    alike = pd.concat([_run_rows("tiny", seed, [0.1] * 5, shape, falling, epochs) for seed, shape in
                       enumerate([rising, rising, [0.1, 0.2, 0.3, 0.5, 0.4]])], ignore_index=True)
    texture = tradeoff.verdicts(alike, n_perm=200, by="scale").set_index("claim").loc[texture["claim"]]
    assert (texture["value"], texture["ci_lo"], texture["ci_hi"]) == pytest.approx((-0.966667, -1.0, -0.823245),
                                                                                   abs=1e-6)
    assert texture["verdict"] == tradeoff.REPRODUCED and texture["detail"].endswith(": the interval is below 0")
    flipped = alike.assign(shape_bias=1 - alike["shape_bias"])
    texture = tradeoff.verdicts(flipped, n_perm=200, by="scale").set_index("claim").loc[texture.name]
    assert texture["verdict"] == tradeoff.NOT_REPRODUCED and texture["ci_lo"] == pytest.approx(0.823245, abs=1e-6)
    # where every seed gives the mean curve's verdict, all agree
    assert verdicts["seeds_agree"].between(0, 1).all()
    unanimous = verdicts[verdicts["seeds_agree"] == 1]
    assert all(len(set(v.split(": ")[1] for v in row.split("; "))) == 1 and row.endswith(verdict)
               for row, verdict in zip(unanimous["seed_verdicts"], unanimous["verdict"]))


def test_a_run_of_unknown_seed_is_named_by_its_label_in_seed_verdicts():
    """A streamed run has no seed: an audit read "nan: inconclusive" in page 5's verdict table."""
    epochs = (0.0, 1.0, 2.0, 3.0, 4.0)
    rows = _run_rows("RN50", 0, [0.1, 0.2, 0.3, 0.4, 0.5], [0.9, 0.7, 0.5, 0.3, 0.1], [0.5] * 5, epochs)
    streamed = tradeoff.verdicts(rows.assign(seed=np.nan, run="trajectory"), n_perm=200, by="scale")
    own = tradeoff.verdicts(rows, n_perm=200, by="scale")
    assert streamed["seed_verdicts"].tolist() == [f"trajectory: {v}" for v in own["verdict"]]
    assert own["seed_verdicts"].tolist() == [f"0: {v}" for v in own["verdict"]]  # a seed, as before
    # two runs of unknown seed are two runs, a run of a known seed beside them named as they are
    both = pd.concat([rows.assign(seed=np.nan, run="a"), rows.assign(seed=np.nan, run="b"),
                      rows.assign(run="c")], ignore_index=True)
    mixed = tradeoff.verdicts(both, n_perm=200, by="scale")
    assert mixed["n_seeds"].tolist() == [3] * len(mixed)
    first = own["verdict"].iloc[0]
    assert mixed["seed_verdicts"].iloc[0] == f"a: {first}; b: {first}; c: {first}"
    # two runs of one seed (open_clip_train's default, two learning rates) are two runs, not one pooled (a review)
    twins = tradeoff.verdicts(pd.concat([rows.assign(run="lr1e-3"), rows.assign(run="lr5e-4")], ignore_index=True),
                              n_perm=200, by="scale")
    assert twins["n_seeds"].tolist() == [2] * len(twins)
    assert twins["seed_verdicts"].iloc[0] == f"lr1e-3: {first}; lr5e-4: {first}"


def test_run_identity_reads_train_params_then_params_txt(tmp_path):
    (tmp_path / "params.txt").write_text("model: clipalign-small\nseed: 4\n")
    assert results.run_identity(tmp_path) == {"scale": "small", "seed": 4}
    (tmp_path / "train_params.json").write_text(json.dumps({"model": "tiny", "seed": 7}))
    assert results.run_identity(tmp_path) == {"scale": "tiny", "seed": 7}
    assert results.parse_run_dirs(None, tmp_path) == [tmp_path]
    assert [str(p) for p in results.parse_run_dirs("a, b", tmp_path)] == ["a", "b"]


def test_a_multi_run_folder_names_its_runs(tmp_path):
    for name in ("tiny-seed1", "tiny-seed0", "book", "notes"):
        (tmp_path / name).mkdir()
    for name in ("tiny-seed1", "tiny-seed0"):
        (tmp_path / name / "checkpoints").mkdir()
    (tmp_path / "book" / "checkpoints").mkdir()  # the staged book is never a run
    runs = [tmp_path / "tiny-seed0", tmp_path / "tiny-seed1"]
    assert results.parse_run_dirs(None, tmp_path) == runs
    assert runs_in(tmp_path / "tiny-seed0") == []  # a run is not a folder of runs
    assert runs_in(tmp_path / "missing") == []


def test_a_folder_is_known_by_its_record(tmp_path):
    from clipalign_utils.orchestration.book import BookBuildFailed, stage_book

    def folder(name, *files):
        path = tmp_path / name
        path.mkdir()
        for file in files:
            (path / file).write_text("{}")
        return path

    assert RunDir(folder("run", "train_params.json")).kind == "run"
    assert RunDir(folder("runs", "runs.json")).kind == "runs"
    assert RunDir(folder("sweep", "sweep.json")).kind == "sweep"
    assert RunDir(folder("experiment", "experiment.json")).kind == "experiment"
    legacy = folder("legacy")  # a folder of runs from before runs.json: known by its runs
    (legacy / "tiny-seed0" / "checkpoints").mkdir(parents=True)
    assert RunDir(legacy).kind == "runs"
    assert RunDir(folder("empty")).kind is None and RunDir(tmp_path / "missing").kind is None
    with pytest.raises(BookBuildFailed, match="holds no run, runs, sweep or experiment"):
        stage_book(tmp_path / "empty")
    with pytest.raises(BookBuildFailed, match="is a sweep without its comparison yet"):
        stage_book(tmp_path / "sweep")


def test_default_preset_is_three_seeds_unless_one_is_asked(monkeypatch, tmp_path):
    from pathlib import Path

    calls = {}
    monkeypatch.setattr("clipalign_utils.orchestration.multirun.run_many", lambda out, preset, seeds, scales, overrides, progress:
                        calls.update(many=(preset, seeds, scales)) or Path(out))
    monkeypatch.setattr("clipalign_utils.orchestration.pipeline.run_pipeline", lambda out, preset, only, overrides, progress:
                        calls.update(one=(preset, overrides)) or Path(out))
    assert cli.main(["run", "--out", str(tmp_path / "a"), "--no-book"]) == 0
    assert calls.pop("many") == ("default", [0, 1, 2], None)
    assert cli.main(["run", "--out", str(tmp_path / "b"), "--no-book", "-p", "seed=3"]) == 0
    assert calls.pop("one") == ("default", {"seed": "3"})
    assert cli.main(["run", "--preset", "smoke", "--out", str(tmp_path / "c"), "--no-book"]) == 0
    assert calls.pop("one") == ("smoke", {})
    # An existing folder without --preset: the preset it recorded (a smoke run stays one run).
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "record.json").write_text(json.dumps({"preset": "smoke", "steps": {}}))
    assert cli.main(["run", "--out", str(tmp_path / "c"), "--no-book"]) == 0
    assert calls.pop("one") == ("smoke", {})


def test_plan_runs_checks_scales_and_conflicts():
    assert plan_runs("smoke", [0, 1], ["tiny", "small"], {}) == [("tiny", 0), ("tiny", 1), ("small", 0), ("small", 1)]
    assert plan_runs("smoke", [3], None, {"model": "small"}) == [("small", 3)]
    with pytest.raises(ParameterError, match="unknown model"):
        plan_runs("smoke", [0], ["huge"], {})
    with pytest.raises(ParameterError, match="both given"):
        plan_runs("smoke", [0, 1], None, {"seed": "2"})
    for seeds, scales in (([0, 0], None), ([0], ["tiny", "tiny"])):  # one folder would be trained twice
        with pytest.raises(ParameterError, match="each value once, please"):
            plan_runs("smoke", seeds, scales, {})


def test_cli_seeds_and_scales_end_to_end_then_resume(smoke_pipeline, tmp_path, capsys, monkeypatch):
    out = tmp_path / "multi"
    # Seed 0 of the smoke preset is the session's pipeline run: put it in place as a finished run,
    # so this command resumes (skips it) and trains and analyses seed 1 only, as a local job.
    shutil.copytree(smoke_pipeline, out / "tiny-seed0",
                    ignore=shutil.ignore_patterns("book", "05_tradeoff_synthesis*", "tradeoff*"))
    argv = ["run", "--preset", "smoke", "--seeds", "0", "1", "--scales", "tiny", "--out", str(out), "--no-book"]
    monkeypatch.setenv("OMP_NUM_THREADS", str(torch.get_num_threads()))  # the job trains as a direct run would
    assert cli.main(argv + ["--launcher", "local"]) == 0
    printed = capsys.readouterr().out
    assert "[jobs] runs/tiny-seed0: skip: complete" in printed
    assert "[jobs] runs/tiny-seed1: submitted as job" in printed and printed.count("submitted as job") == 1
    job = json.loads((out / "jobs.json").read_text())["runs/tiny-seed1"]
    log = (out / job["stdout"]).read_text()  # the job ran the run alone (run_many's own lines), no synthesis
    assert "[run 2/2 tiny-seed1]" in log and "runs left 0" in log and "tiny-seed0" not in log
    assert "[synthesis]" not in log
    # after the jobs, the ordinary command: both runs complete, then the synthesis over them
    assert "[run 1/2 tiny-seed0] skip: complete" in printed and "[run 2/2 tiny-seed1] skip: complete" in printed
    assert "[synthesis] done" in printed
    for seed in (0, 1):
        run_dir = out / f"tiny-seed{seed}"
        assert (run_dir / "notebooks" / "04_noise_robustness.ipynb").exists()
        assert json.loads((run_dir / "train_params.json").read_text())["seed"] == seed
        assert not (run_dir / "notebooks" / "05_tradeoff_synthesis.ipynb").exists()
    assert (out / "notebooks" / "05_tradeoff_synthesis.ipynb").exists()
    assert json.loads((out / "runs.json").read_text())["runs"] == ["tiny-seed0", "tiny-seed1"]  # its kind record
    assert (out / "figures" / "tradeoff_summary.png").exists()
    synthesis = pd.read_csv(out / "metrics" / "tradeoff.csv")
    assert sorted(synthesis.groupby(["scale", "seed"]).size().index) == [("tiny", 0), ("tiny", 1)]
    verdicts = pd.read_csv(out / "metrics" / "tradeoff_verdicts.csv")
    assert set(verdicts["scale"]) == {"tiny"}
    assert "saliency correspondence peaks early then declines" in set(verdicts["claim"])
    assert set(verdicts["n_seeds"]) == {2}
    assert verdicts["seeds_reproduced"].isin([0.0, 0.5, 1.0]).all()
    assert set(verdicts["verdict"]) <= {tradeoff.REPRODUCED, tradeoff.NOT_REPRODUCED, tradeoff.INCONCLUSIVE}
    means = pd.read_csv(out / "metrics" / "tradeoff_seed_means.csv")
    assert (means["n_seeds"] == 2).all()
    assert (means["iqa_srcc_lo"] <= means["iqa_srcc"]).all() and (means["iqa_srcc"] <= means["iqa_srcc_hi"]).all()

    # The same command again, without a launcher: both runs are skipped; only the synthesis runs.
    trained = (out / "tiny-seed0" / "train_params.json").stat().st_mtime
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert printed.count("skip") == 2, printed
    assert (out / "tiny-seed0" / "train_params.json").stat().st_mtime == trained

    # The book of a multi-run: the step pages from its first run, page 5 the synthesis over all.
    from clipalign_utils.orchestration.book import stage_book

    stage = stage_book(out)
    def sources(path):  # the staged copy is made publishable (paths, progress bars): compare the cells
        return [cell["source"] for cell in json.loads(path.read_text())["cells"]
                if "injected-parameters" not in cell["metadata"].get("tags", [])]

    assert sources(stage / "notebooks" / "01_train.ipynb") == sources(out / "tiny-seed0" / "notebooks" / "01_train.ipynb")
    assert sources(stage / "notebooks" / "05_tradeoff_synthesis.ipynb") == \
        sources(out / "notebooks" / "05_tradeoff_synthesis.ipynb")
    summary = (stage / "_generated" / "run.md").read_text()
    assert "Pages 1–4 and 7–8 show the run `tiny-seed0`" in summary
    assert "| `tiny-seed0` | tiny | 0 |" in summary and "| `tiny-seed1` | tiny | 1 |" in summary  # the seeds table
    # how to make it again: the preset, and the seeds the preset would not have given (its model is tiny)
    assert f"bash scripts/setup.sh && .venv/bin/clipalign run --preset smoke --seeds 0 1 --out runs/{out.name}\n" in summary
    assert "-p seed" not in summary and "-p model" not in summary  # what the runner gave each run: the options

    # Every run was scored on the same evaluation sets: eval_seed, not the training seed, draws them.
    def eval_sets(run, step):
        return json.loads((out / run / "record.json").read_text())["steps"][step]["eval_sets"]

    for step in ("iqa", "shape", "noise", "similarity", "saliency"):
        assert eval_sets("tiny-seed0", step) == eval_sets("tiny-seed1", step), step
    shape_sets = eval_sets("tiny-seed1", "shape")

    # --only on the multi-run folder: that step again in every run (each with its own record), then the synthesis.
    def executed_at(run, notebook):
        return (run / "notebooks" / f"{notebook}.ipynb").stat().st_mtime_ns

    before = {run: executed_at(out / run, "03_shape_texture_bias") for run in ("tiny-seed0", "tiny-seed1")}
    iqa_before = executed_at(out / "tiny-seed1", "02_iqa_alignment")
    synthesis_before = executed_at(out, "05_tradeoff_synthesis")
    assert cli.main(["run", "--out", str(out), "--only", "shape", "-p", "eval_seed=1"]) == 0  # preset: runs.json's
    printed = capsys.readouterr().out
    assert "[run 1/2 tiny-seed0] [1/1] shape" in printed and "[run 2/2 tiny-seed1] [1/1] shape" in printed
    assert all(executed_at(out / run, "03_shape_texture_bias") > t for run, t in before.items())
    assert executed_at(out / "tiny-seed1", "02_iqa_alignment") == iqa_before
    assert executed_at(out, "05_tradeoff_synthesis") > synthesis_before
    # each run kept its own seed; both were scored on eval_seed 1's cue-conflict set, not eval_seed 0's
    seed1 = json.loads((out / "tiny-seed1" / "notebooks" / "03_shape_texture_bias.ipynb").read_text())
    assert seed1["metadata"]["papermill"]["parameters"]["seed"] == 1
    assert seed1["metadata"]["papermill"]["parameters"]["preset"] == "smoke"
    assert eval_sets("tiny-seed0", "shape") == eval_sets("tiny-seed1", "shape") != shape_sets
    assert cli.main(["run", "--out", str(out), "--only", "train"]) == 2  # not on the folder
    assert cli.main(["run", "--out", str(out), "--only", "shape", "-p", "seed=1"]) == 2  # seed 0's record says 0
    assert "contradicts" in capsys.readouterr().err

    # A step's notebook given the multi-run folder (papermill -p run_dir OUT): the other runs measured through
    # the library (tables rewritten, executed notebooks untouched), the first shown; no notebook executed.
    import jupytext
    import papermill

    source = tmp_path / "shape.ipynb"
    jupytext.write(jupytext.read(REPO_ROOT / "notebooks" / "03_shape_texture_bias.py"), source)
    notebooks_before = {path: path.stat().st_mtime_ns for path in out.rglob("*.ipynb")}
    table_before = (out / "tiny-seed1" / "metrics" / "shape_bias.csv").stat().st_mtime_ns
    executed = papermill.execute_notebook(str(source), str(tmp_path / "shape_out.ipynb"), kernel_name="python3",
                                          parameters={"run_dir": str(out)}, cwd=str(REPO_ROOT), progress_bar=False)
    text = json.dumps(executed["cells"])
    assert "holds 2 runs: this page shows `tiny-seed0`" in text and "`tiny-seed1` too" in text
    assert {path: path.stat().st_mtime_ns for path in out.rglob("*.ipynb")} == notebooks_before
    assert (out / "tiny-seed1" / "metrics" / "shape_bias.csv").stat().st_mtime_ns > table_before
    assert not (out / "checkpoints").exists()  # nothing trained into the folder itself

    # An optional step on the folder: its page runs once there, measuring every run; no synthesis follows.
    synthesis_before = executed_at(out, "05_tradeoff_synthesis")
    assert cli.main(["run", "--out", str(out), "--only", "interpolation"]) == 0
    assert "[interpolation] 2 runs" in capsys.readouterr().out
    for run in ("tiny-seed0", "tiny-seed1"):
        assert pd.read_csv(out / run / "metrics" / "interpolation.csv")["alpha"].tolist() == [0.0, 0.5, 1.0]
    seeds = pd.read_csv(out / "metrics" / "interpolation_seeds.csv")
    assert seeds["n_runs"].tolist() == [2, 2, 2] and "alignment_margin_lo" in seeds.columns
    page = json.dumps(json.loads((out / "notebooks" / "11_interpolation.ipynb").read_text())["cells"])
    # two runs answer it: their margins' t intervals over 2 seeds (the per-α rows and the answer agree)
    assert "needs at least" not in page and re.search(r"\*\*(yes|no|not established)\*\*", page)
    assert executed_at(out, "05_tradeoff_synthesis") == synthesis_before
    assert (stage_book(out) / "notebooks" / "11_interpolation.ipynb").exists()  # page 11 is the folder's own

    # A step re-run without -p keeps what it was given last time (record.json): eval_seed 1's sets again; and
    # after --only iqa -p distance=euclidean, a later --only shape's synthesis keeps euclidean, iqa.csv's only
    # distance (it took the preset's and stopped, before).
    assert cli.main(["run", "--out", str(out), "--only", "iqa", "-p", "distance=euclidean"]) == 0
    assert cli.main(["run", "--out", str(out), "--only", "shape"]) == 0
    assert eval_sets("tiny-seed1", "shape") != shape_sets
    synthesis = json.loads((out / "record.json").read_text())["steps"]["tradeoff"]
    assert synthesis["parameters"]["distance"] == "euclidean" and synthesis["sources"]["distance"] == "record.json"
    assert set(pd.read_csv(out / "metrics" / "tradeoff.csv")["distance"]) == {"euclidean"}

    # --only tradeoff on the folder: its synthesis alone, no run's step again (it was refused, naming training)
    capsys.readouterr()
    shape_before, synthesis_before = executed_at(out / "tiny-seed1", "03_shape_texture_bias"), \
        executed_at(out, "05_tradeoff_synthesis")
    assert cli.main(["run", "--out", str(out), "--only", "tradeoff"]) == 0
    printed = capsys.readouterr().out
    assert "[synthesis] tradeoff over 2 runs" in printed and "[run " not in printed
    assert executed_at(out, "05_tradeoff_synthesis") > synthesis_before
    assert executed_at(out / "tiny-seed1", "03_shape_texture_bias") == shape_before
    # one run's training stopped (its last checkpoint gone): refused in one line before any run's page runs
    iqa_before = executed_at(out / "tiny-seed0", "02_iqa_alignment")
    last = max((out / "tiny-seed1" / "checkpoints").glob("epoch_*.pt"), key=lambda p: float(p.stem.split("_")[1]))
    last.unlink()
    assert cli.main(["run", "--out", str(out), "--only", "iqa,tradeoff"]) == 2
    (error,) = capsys.readouterr().err.strip().splitlines()
    assert f"{out / 'tiny-seed1'}: its training stopped at epoch" in error and "--only train resumes it" in error
    assert executed_at(out / "tiny-seed0", "02_iqa_alignment") == iqa_before


def test_full_preset_means_three_seeds_two_scales():
    from clipalign_utils.config import MULTI_RUN_PRESETS, PRESETS

    assert MULTI_RUN_PRESETS["full"] == {"seeds": (0, 1, 2), "scales": ("tiny", "small")}
    assert PRESETS["full"] == {**PRESETS["default"]}


def test_verdict_sentences_say_where_seeds_differ():
    verdicts = pd.DataFrame({
        "scale": ["tiny", "tiny"], "claim": ["texture bias falls during training", "noise drop falls"],
        "statistic": ["spearman_rho", "spearman_rho"], "value": [-0.9, 0.2], "ci_lo": [np.nan, np.nan],
        "ci_hi": [np.nan, np.nan], "p_value": [0.001, 0.5], "verdict": ["reproduced", "inconclusive"],
        "n_seeds": [3, 3], "seeds_agree": [1.0, 1 / 3],
        "seed_verdicts": ["0: reproduced; 1: reproduced; 2: reproduced",
                          "0: inconclusive; 1: reproduced; 2: reproduced"]})
    first, second = verdict_sentences(verdicts)
    assert first == ("- texture bias falls during training: **reproduced** (spearman_rho = -0.900, "
                     "p = 0.001); 100% of 3 seeds agree")  # one scale: not named
    two_scales = verdict_sentences(verdicts.assign(scale=["tiny", "small"]))
    assert two_scales[0].startswith("- tiny: texture bias") and two_scales[1].startswith("- small: noise")
    one_seed = verdict_sentences(verdicts.assign(n_seeds=1, seeds_agree=1.0))
    assert one_seed[1] == "- noise drop falls: **inconclusive** (spearman_rho = 0.200, p = 0.5)"
    assert second.endswith("33% of 3 seeds agree — **the seeds differ** "
                           "(per seed: 0: inconclusive; 1: reproduced; 2: reproduced)")
    # Three inconclusive seeds whose mean is conclusive agree with one another, not with the mean: no "differ".
    alike = verdict_sentences(verdicts.assign(verdict=["not reproduced"] * 2, seeds_agree=[0.0, 0.0],
                                              seed_verdicts=["0: inconclusive; 1: inconclusive; 2: inconclusive"] * 2))
    assert alike[0].endswith("**not reproduced** (spearman_rho = -0.900, p = 0.001); 0% of 3 seeds agree — each "
                             "seed alone: inconclusive")
    single = verdict_sentences(verdicts.drop(columns=["scale", "n_seeds", "seeds_agree", "seed_verdicts"]))
    assert single[1] == "- noise drop falls: **inconclusive** (spearman_rho = 0.200, p = 0.5)"
    # an interval clear of 0 beside "inconclusive" says why (a peak outside the early window)
    late = verdicts.drop(columns=["scale", "n_seeds", "seeds_agree", "seed_verdicts"]).assign(
        ci_lo=[np.nan, 0.1], ci_hi=[np.nan, 0.16], p_value=np.nan,
        detail=["", "peak 0.8 at epoch 5 (outside the early window); max early − final = 0.130 [0.100, 0.160]; "
                    "the overall peak is not early"])
    assert verdict_sentences(late)[1] == ("- noise drop falls: **inconclusive** (spearman_rho = 0.200 [0.100, 0.160])"
                                          " — the overall peak is not early")


def test_peak_and_plane_sentences_read_the_seed_means_and_the_selection():
    """Page 5's peak sentences: the peak and the last checkpoint's own values, and the two bold verdicts each from
    its own test (interior; interval above the last's); the plane's sentence names the selected checkpoint, not
    the first on the front (mutation audit: these went untested)."""
    from clipalign_utils.steps.tradeoff.page import peak_sentences, plane_sentences

    srcc = [0.2, 0.6, 0.5, 0.3]
    means = pd.DataFrame({"scale": "tiny", "epoch": [0.0, 1.0, 2.0, 3.0], "iqa_srcc": srcc,
                          "iqa_srcc_lo": [v - 0.05 for v in srcc], "iqa_srcc_hi": [v + 0.05 for v in srcc]})
    assert peak_sentences(means) == [
        "IQA alignment (SRCC) peaks at epoch 1 with 0.600; the last checkpoint (epoch 3) has 0.300. The peak "
        "**lies** strictly inside the run, and its interval **lies** above the last checkpoint's."]
    # interior, but the last checkpoint's interval (0.53–0.63) reaches the peak's lower bound 0.55: not separated
    close = means.assign(iqa_srcc=[0.2, 0.6, 0.5, 0.58], iqa_srcc_hi=[0.25, 0.65, 0.55, 0.63])
    assert peak_sentences(close)[0].endswith(
        "has 0.580. The peak **lies** strictly inside the run, and its interval **does not lie** above the last "
        "checkpoint's.")
    two = pd.concat([means, close.assign(scale="small")], ignore_index=True)
    assert [line.split(" peaks")[0] for line in peak_sentences(two)] == ["tiny: IQA alignment (SRCC)",
                                                                          "small: IQA alignment (SRCC)"]
    assert peak_sentences(means.iloc[[3]]) == [  # one checkpoint (a single model streamed): nothing to peak
        "IQA alignment (SRCC) at the one checkpoint (epoch 3): 0.300; a peak and a decline need several checkpoints "
        "of the run."]
    plane = pd.DataFrame({"scale": "tiny", "checkpoint": ["epoch_0", "epoch_1", "epoch_2"], "epoch": [0.0, 1.0, 2.0],
                          "on_pareto_front": [True, True, False], "selected": [False, True, False]})
    assert plane_sentences(plane, {"alignment_weight": 0.5}) == [
        "Pareto front: epoch_0, epoch_1; selected with alignment_weight=0.5: epoch_1 (epoch 1)"]
    assert plane_sentences(plane.assign(selected=False), {"alignment_weight": 0.5}) == [
        "Pareto front: epoch_0, epoch_1; selected with alignment_weight=0.5: none (no checkpoint has a noise drop: "
        "all at chance)"]


def test_peak_claim_names_its_interval_over_seeds_and_claim_4_says_why_net_of_time_is_undefined():
    epochs = (0.0, 1.0, 2.0, 3.0, 4.0)
    # each seed's own early-peak test (iqa_peak.csv's early_drop): it ran; the seed mean does not average these
    drops = {0: -0.031, 1: -0.052, 2: 0.032}
    runs = []
    for seed, drop in drops.items():
        rows = _run_rows("tiny", seed, [0.1, 0.5, 0.4, 0.3, 0.2 + seed / 100], [0.5, 0.6, 0.7, 0.8, 0.9],
                         [0.5, 0.4, 0.3, 0.2, 0.1], epochs)  # noise drop ordered exactly as time
        runs.append(rows.assign(iqa_early_drop=drop, iqa_early_drop_lo=drop - 0.05, iqa_early_drop_hi=drop + 0.05))
    table = pd.concat(runs, ignore_index=True)
    verdicts = tradeoff.verdicts(table, n_perm=200, by="scale").set_index("claim")
    peak = verdicts.loc["IQA alignment peaks early then declines"]
    # Over seeds, each seed's drop is taken at the early checkpoint the other seeds peak at (the early window
    # 0 < epoch <= 4/3 holds epoch 1 alone: 0.5 − final, finals 0.20, 0.21, 0.22), not its own test's maximum;
    # the interval is the t interval over those three: 0.29 ± t(2, 0.975) · 0.01 / √3 = 0.29 ± 0.024841.
    assert peak["statistic"] == ("held-out early srcc − final srcc (each seed at the early checkpoint where the other "
                                 "seeds' mean peaks; mean over 3 seeds, t interval over seeds)")
    assert peak["value"] == pytest.approx(0.29)
    assert (peak["ci_lo"], peak["ci_hi"]) == pytest.approx((0.265159, 0.314841), abs=1e-6)
    one_run = tradeoff.verdicts(table[table["seed"] == 0].reset_index(drop=True), n_perm=200).set_index("claim")
    assert one_run.loc["IQA alignment peaks early then declines", "statistic"].endswith(
        "(paired bootstrap over references)")
    # claim 4 over seeds: each seed's own partial ρ, undefined in every seed (both curves move exactly with time)
    covaries = verdicts.loc["IQA alignment co-varies with texture bias and noise drop"]
    undefined = "undefined (noise_drop is ordered exactly against time (Spearman ρ = -1.000 with epoch))"
    assert covaries["detail"].endswith(f"noise_drop: net of log time ρ per seed (0: {undefined}; 1: {undefined}; "
                                       f"2: {undefined}): an interval over seeds needs 2 seeds with one")
    assert covaries["verdict"] == tradeoff.INCONCLUSIVE and np.isnan(covaries["value"])
    assert "nan" not in covaries["detail"]
    assert covaries["statistic"] == ("partial spearman(iqa_srcc, texture_bias | log time) per seed (mean over 0 of 3 "
                                     "seeds, t interval over seeds)")


def test_a_peak_claim_over_seeds_with_the_test_on_one_seed_says_there_is_no_interval():
    epochs = (0.0, 1.0, 2.0, 3.0, 4.0)
    runs = []
    for seed in range(3):
        rows = _run_rows("tiny", seed, [0.1, 0.5, 0.4, 0.3, 0.2], [0.5, 0.6, 0.7, 0.8, 0.9],
                         [0.5, 0.4, 0.3, 0.2, 0.1], epochs)
        drop = 0.3 if seed == 0 else np.nan  # seeds 1 and 2 ran before the test existed
        runs.append(rows.assign(iqa_early_drop=drop, iqa_early_drop_lo=drop - 0.05, iqa_early_drop_hi=drop + 0.05))
    peak = tradeoff.verdicts(pd.concat(runs, ignore_index=True), n_perm=200, by="scale").set_index("claim").loc[
        "IQA alignment peaks early then declines"]
    assert peak["verdict"] == tradeoff.INCONCLUSIVE and peak["value"] == pytest.approx(0.3)
    assert peak["detail"].endswith("; held-out early − final = 0.300; no interval: the test is on fewer than two of "
                                   "the 3 seeds") and "nan" not in peak["detail"]
    assert verdict_sentences(peak.to_frame().T.reset_index(names="claim")) == [
        "- IQA alignment peaks early then declines: **inconclusive** (held-out early srcc − final srcc (each seed at "
        "the early checkpoint where the other seeds' mean peaks; mean over 1 of 3 seeds, t interval over seeds) = 0.300)"
        " — no interval: the test is on fewer than two of the 3 seeds; 67% of 3 "
        "seeds agree — **the seeds differ** (per seed: 0: reproduced; 1: inconclusive; 2: inconclusive)"]


def test_a_peak_claim_over_seeds_names_the_seeds_its_drop_is_defined_on():
    epochs = (0.0, 1.0, 2.0, 3.0, 4.0)
    runs = []
    for seed in range(3):
        rows = _run_rows("tiny", seed, [0.1, 0.5, 0.4, 0.3, 0.2 + seed / 100], [0.5, 0.6, 0.7, 0.8, 0.9],
                         [0.5, 0.4, 0.3, 0.2, 0.1], epochs)
        drop = np.nan if seed == 2 else 0.3  # seed 2 ran before the test existed
        runs.append(rows.assign(iqa_early_drop=drop, iqa_early_drop_lo=drop - 0.05, iqa_early_drop_hi=drop + 0.05))
    table = pd.concat(runs, ignore_index=True)
    means = tradeoff.seed_means(table)
    assert means["iqa_early_drop_n_seeds"].tolist() == [2] * 5 and means["n_seeds"].tolist() == [3] * 5
    peak = tradeoff.verdicts(table, n_perm=200, by="scale").set_index("claim").loc[
        "IQA alignment peaks early then declines"]
    # seeds 0 and 1 at epoch 1 (the others' mean peaks there): 0.5 − 0.20 and 0.5 − 0.21; mean 0.295, and the t
    # interval over the two: 0.295 ± t(1, 0.975) · 0.005 = 0.295 ± 0.063531
    assert peak["statistic"] == ("held-out early srcc − final srcc (each seed at the early checkpoint where the other "
                                 "seeds' mean peaks; mean over 2 of 3 seeds, t interval over seeds)")
    assert peak["value"] == pytest.approx(0.295)
    assert (peak["ci_lo"], peak["ci_hi"]) == pytest.approx((0.295 - 0.063531, 0.295 + 0.063531), abs=1e-6)


def test_a_peak_claim_on_one_run_without_its_bootstrap_interval_says_why():
    rows = _run_rows("tiny", 0, [0.1, 0.5, 0.4, 0.3, 0.2], [0.5, 0.6, 0.7, 0.8, 0.9], [0.5, 0.4, 0.3, 0.2, 0.1],
                     (0.0, 1.0, 2.0, 3.0, 4.0))
    # metrics.peak leaves the interval undefined when too few replicates define the drop
    rows = rows.assign(iqa_early_drop=0.3, iqa_early_drop_lo=np.nan, iqa_early_drop_hi=np.nan)
    peak = tradeoff.verdicts(rows, n_perm=200).set_index("claim").loc["IQA alignment peaks early then declines"]
    assert peak["verdict"] == tradeoff.INCONCLUSIVE
    assert peak["detail"].endswith("; no interval: too few bootstrap replicates define the drop")


def test_the_means_view_says_which_epochs_are_at_chance():
    from clipalign_utils.steps.tradeoff.analysis import means_view

    means = pd.DataFrame({"scale": "tiny", "n_seeds": 3, "epoch": [0.0, 1.0], "iqa_srcc": [0.3, 0.5],
                          "shape_bias": [0.5, 0.3], "clean_accuracy": [0.13, 0.5], "noise_drop": [0.05, 0.2],
                          "at_chance": [True, False], "n_above_chance": [1, 3], "two_afc_score": [0.5, 0.6],
                          "iqa_srcc_lo": 0.0})
    assert list(means_view(means).columns) == ["scale", "n_seeds", "epoch", "iqa_srcc", "shape_bias",
                                               "clean_accuracy", "noise_drop", "at_chance", "n_above_chance",
                                               "two_afc_score"]
    assert "at_chance" not in means_view(means.drop(columns=["at_chance", "n_above_chance"])).columns


def test_seed_means_count_the_seeds_a_drop_rests_on():
    # Epoch 0: seeds 1 and 2 at chance (drop undefined), seed 0 above: the mean drop is seed 0's alone.
    table = pd.DataFrame({"scale": "tiny", "seed": [0, 1, 2, 0, 1, 2], "epoch": [0.0] * 3 + [1.0] * 3,
                          "iqa_srcc": 0.5, "shape_bias": 0.5, "clean_accuracy": [0.3, 0.1, 0.1, 0.5, 0.5, 0.5],
                          "noise_drop": [0.04, np.nan, np.nan, 0.2, 0.3, 0.4],
                          "at_chance": [False, True, True, False, False, False]})
    means = tradeoff.seed_means(table, {"noise_drop": (None, None)}).set_index("epoch")
    assert means["n_seeds"].tolist() == [3, 3]
    assert means["n_above_chance"].tolist() == [1, 3]
    assert means["at_chance"].tolist() == [True, False]
    assert means["noise_drop"].tolist() == pytest.approx([0.04, 0.3])
    assert "n_above_chance" not in tradeoff.seed_means(table.drop(columns="at_chance"), {"noise_drop": (None, None)})
    # One finite drop among three seeds is not a one-seed group: no run's own interval under a row that is a
    # mean over seeds (an audit found one seed's bootstrap labelled a t interval over two seeds).
    table["noise_drop_lo"], table["noise_drop_hi"] = table["noise_drop"] - 0.01, table["noise_drop"] + 0.01
    means = tradeoff.seed_means(table, {"noise_drop": ("noise_drop_lo", "noise_drop_hi")}).set_index("epoch")
    assert np.isnan(means.loc[0.0, ["noise_drop_lo", "noise_drop_hi"]].astype(float)).all()
    one_seed = tradeoff.seed_means(table[table["seed"] == 0], {"noise_drop": ("noise_drop_lo", "noise_drop_hi")})
    np.testing.assert_allclose(one_seed[["noise_drop_lo", "noise_drop_hi"]].to_numpy(float), [[0.03, 0.05], [0.19, 0.21]])


def test_seed_means_at_chance_needs_more_than_half_the_seeds():
    """"Most of a group's seeds": one of two at chance is not most."""
    from clipalign_utils.metrics import tradeoff

    table = pd.DataFrame({"scale": "tiny", "seed": [0, 1, 0, 1], "epoch": [0.0, 0.0, 1.0, 1.0],
                          "noise_drop": [0.2, np.nan, 0.3, np.nan], "at_chance": [False, True, True, True]})
    means = tradeoff.seed_means(table, {"noise_drop": (None, None)}).set_index("epoch")
    assert means["at_chance"].tolist() == [False, True]
    assert means["n_above_chance"].tolist() == [1, 0]


def test_two_seeds_average_their_held_out_drops_not_their_own_maxima():
    # early window 0 < e <= 6/3: epochs 1 and 2. Seed 0 is read where seed 1 peaks (epoch 1): 0.5 − 0.3 = 0.2;
    # seed 1 where seed 0 peaks (epoch 2): 0.4 − 0.1 = 0.3. Their own maxima would give 0.6 − 0.3 and 0.7 − 0.1.
    epochs = (0.0, 1.0, 2.0, 3.0, 6.0)
    curves = {0: [0.1, 0.5, 0.6, 0.4, 0.3], 1: [0.1, 0.7, 0.4, 0.4, 0.1]}
    own = {0: 0.3, 1: 0.6}
    table = pd.concat([checkpoint_table(epochs, scale="tiny", seed=s, run=f"tiny-seed{s}", iqa_srcc=c,
                                        shape_bias=0.5, noise_drop=0.2, iqa_early_drop=own[s],
                                        iqa_early_drop_lo=own[s] - 0.05, iqa_early_drop_hi=own[s] + 0.05)
                       for s, c in curves.items()], ignore_index=True)
    means = tradeoff.seed_means(table, {"iqa_srcc": (None, None),
                                        "iqa_early_drop": ("iqa_early_drop_lo", "iqa_early_drop_hi")})
    # mean 0.25, sd 0.0707…: half-width t(1) · 0.0707… / √2 = t(1) · 0.05
    assert means["iqa_early_drop"].tolist() == pytest.approx([0.25] * 5)
    assert means["iqa_early_drop_lo"].tolist() == pytest.approx([0.25 - T1 * 0.05] * 5)
    assert means["iqa_early_drop_hi"].tolist() == pytest.approx([0.25 + T1 * 0.05] * 5)


def test_a_peak_claim_over_seeds_reads_the_epoch_every_seed_has_not_one_seeds_own_interval():
    # seed 0 has an epoch-0 checkpoint the others lack: the seed means' first row rests on seed 0 alone. The claim
    # reads the row with the most seeds (held-out drops 0.5 − 0.20, 0.5 − 0.21, 0.5 − 0.22:
    # 0.29 ± t(2)·0.01/√3), not seed 0's held-out drop paired with its own bootstrap interval of its own maximum
    # ([0.85, 0.95]).
    def run(seed, iqa, epochs):
        return _run_rows("tiny", seed, iqa, [0.5] * len(epochs), list(np.linspace(0.5, 0.1, len(epochs))),
                         epochs).assign(iqa_early_drop=0.9, iqa_early_drop_lo=0.85, iqa_early_drop_hi=0.95)
    table = pd.concat([run(0, [0.1, 0.5, 0.4, 0.3, 0.2], (0.0, 1.0, 2.0, 3.0, 4.0)),
                       run(1, [0.5, 0.4, 0.3, 0.21], (1.0, 2.0, 3.0, 4.0)),
                       run(2, [0.5, 0.4, 0.3, 0.22], (1.0, 2.0, 3.0, 4.0))], ignore_index=True)
    means = tradeoff.seed_means(table).set_index("epoch")
    assert np.isnan(means.loc[0.0, "iqa_early_drop_lo"]) and np.isnan(means.loc[0.0, "iqa_early_drop_hi"])
    peak = tradeoff.verdicts(table, n_perm=200, by="scale").set_index("claim").loc[
        "IQA alignment peaks early then declines"]
    assert peak["statistic"].startswith("held-out early srcc − final srcc")
    assert "mean over 3 seeds" in peak["statistic"]
    assert peak["value"] == pytest.approx(0.29)
    half = T2 * 0.01 / np.sqrt(3)
    assert (peak["ci_lo"], peak["ci_hi"]) == pytest.approx((0.29 - half, 0.29 + half))


def _fake_steps(monkeypatch):
    from clipalign_utils.orchestration import multirun

    return steps_that_only_mark_done(monkeypatch, multirun)


def test_a_multi_run_resumes_each_run_where_it_stopped(tmp_path, monkeypatch, capsys):
    """Resuming a folder of seeds on hand-made runs: a complete run is skipped whole, a run with only its
    training done is not complete (its analyses run, its training does not), and the synthesis runs again."""
    from clipalign_utils import registry
    from clipalign_utils.orchestration.multirun import per_run_steps, run_many

    calls = _fake_steps(monkeypatch)
    steps = per_run_steps()
    assert steps[0] == "train" and len(steps) > 2
    for name, done in (("tiny-seed0", steps), ("tiny-seed1", ["train"])):
        run = RunDir(tmp_path / name)
        run.notebooks.mkdir(parents=True)
        for step in done:
            run.executed(registry.get(step).notebook).write_text("{}")
    run_many(tmp_path, preset="smoke", seeds=[0, 1], scales=["tiny"], progress=False)
    assert calls == [("tiny-seed1", step) for step in steps[1:]] + [(tmp_path.name, registry.synthesis().name)]
    out = capsys.readouterr().out
    assert "[run 1/2 tiny-seed0] skip: complete" in out and "[run 2/2 tiny-seed1] skip: complete" not in out


def test_plan_runs_keeps_the_seeds_order_and_refuses_scales_given_twice():
    """Mutation audit: the seeds as given (runs.json and the synthesis list runs in that order), and -p model=…
    with --scales refused like -p seed=… with --seeds."""
    assert plan_runs("smoke", [2, 0], ["small", "tiny"], {}) == [("small", 2), ("small", 0), ("tiny", 2), ("tiny", 0)]
    with pytest.raises(ParameterError, match="-p model=… and --scales both given"):
        plan_runs("smoke", [0], ["tiny", "small"], {"model": "small"})


def test_a_multi_run_planned_with_only_nothing_runs_nothing(tmp_path, monkeypatch):
    """``only=[]`` (a launcher planning its jobs) records the plan and runs no step, no synthesis."""
    from clipalign_utils.orchestration.multirun import run_many

    calls = _fake_steps(monkeypatch)
    run_many(tmp_path, preset="smoke", seeds=[0, 1], scales=["tiny"], progress=False, only=[], synthesis=False)
    assert calls == []
    assert json.loads((tmp_path / "runs.json").read_text())["runs"] == ["tiny-seed0", "tiny-seed1"]
    run_many(tmp_path, preset="smoke", seeds=[0, 1], scales=["tiny"], progress=False, only=["tiny-seed1"],
             synthesis=False)
    assert calls and {run for run, _ in calls} == {"tiny-seed1"}


def test_link_base_run_links_only_the_complete_run_of_the_preset_s_scale_and_seed(tmp_path):
    """The drivers sweep's base is linked to the multi-run's run of the preset's (or -p's) scale and seed, only
    once that run is complete; an existing base is left alone."""
    from clipalign_utils import registry
    from clipalign_utils.config import DRIVERS_FOLDER
    from clipalign_utils.orchestration.multirun import link_base_run

    def make(name, complete):
        run = RunDir(tmp_path / name)
        run.notebooks.mkdir(parents=True)
        steps = registry.per_run_steps() if complete else registry.per_run_steps()[:1]
        for step in steps:
            run.executed(step.notebook).write_text("{}")

    base = tmp_path / DRIVERS_FOLDER / "base"
    make("tiny-seed0", complete=False)
    link_base_run(tmp_path, "full", {})
    assert not base.exists() and not base.is_symlink()  # unfinished: the sweep trains its own
    make("small-seed0", complete=True)
    link_base_run(tmp_path, "full", {"model": "small"})
    assert base.is_symlink() and base.resolve() == (tmp_path / "small-seed0").resolve()
    assert os.readlink(base) == os.path.join("..", "small-seed0")  # relative: the folder may move
    link_base_run(tmp_path, "full", {"model": "small"})  # again: left as it is
    assert base.resolve() == (tmp_path / "small-seed0").resolve()


def test_link_base_run_asks_for_the_steps_this_install_has(tmp_path, monkeypatch):
    """An install without some step's notebook never runs that step, so the base run is complete without it
    (RunDir.complete, which asks for every registered step, had left the sweep to train the base run again)."""
    from clipalign_utils import registry
    from clipalign_utils.config import DRIVERS_FOLDER
    from clipalign_utils.orchestration import multirun

    first = registry.per_run_steps()[0]
    monkeypatch.setattr(multirun, "available_steps", lambda optional=False: [first.name])
    run = RunDir(tmp_path / "tiny-seed0")
    run.notebooks.mkdir(parents=True)
    run.executed(first.notebook).write_text("{}")
    assert not run.complete
    multirun.link_base_run(tmp_path, "full", {})
    assert (tmp_path / DRIVERS_FOLDER / "base").resolve() == run.path.resolve()


def test_run_labels_keep_the_folder_that_tells_two_same_named_runs_apart(tmp_path):
    """Runs in different subfolders with one name ("heldout/seed-0", "main/seed-0") are labelled by their path
    relative to the folder they share, not by their last name (which would merge them in the tables)."""
    runs = [tmp_path / "heldout" / "seed-0", tmp_path / "main" / "seed-0", tmp_path / "main" / "seed-1"]
    assert results.run_labels(runs) == ["heldout/seed-0", "main/seed-0", "main/seed-1"]
    assert results.run_labels([tmp_path / "main" / "seed-1"]) == ["seed-1"]


def test_checkpoint_table_is_in_epoch_order_and_a_run_without_a_scale_is_known_by_its_folder(tmp_path):
    """epoch_10 after epoch_2 (numeric, not string order); a run with no training record gets scale = its
    directory's name and seed None in the stacked table."""
    names, epochs = ["epoch_10", "epoch_2"], [10.0, 2.0]
    tables = {"iqa": pd.DataFrame({"checkpoint": names, "epoch": epochs, "dataset": "embedded",
                                   "distance": "cosine", "distortion": "all",
                                   "srcc": [0.9, 0.2], "srcc_lo": 0.0, "srcc_hi": 1.0}),
              "shape_bias": pd.DataFrame({"checkpoint": names, "epoch": epochs, "dataset": "embedded",
                                          "shape_bias": [0.7, 0.3], "lo": 0.0, "hi": 1.0}),
              "noise": pd.DataFrame({"checkpoint": names * 2, "epoch": epochs * 2, "dataset": "embedded",
                                     "sigma": [0.0, 0.0, 0.1, 0.1], "accuracy": 0.8, "lo": 0.7, "hi": 0.9,
                                     "normalized_drop": [0.0, 0.0, 0.2, 0.2]})}
    run = tmp_path / "stranger"
    (run / "metrics").mkdir(parents=True)
    for name, table in tables.items():
        table.to_csv(run / "metrics" / f"{name}.csv", index=False)
    table = results.checkpoint_table(run)
    assert table["checkpoint"].tolist() == ["epoch_2", "epoch_10"]
    assert table["iqa_srcc"].tolist() == [0.2, 0.9]
    stacked = results.checkpoint_tables([run])
    assert stacked["scale"].tolist() == ["stranger", "stranger"] and stacked["seed"].isna().all()
    # a checkpoint one required step's table lacks stays, its measure missing (not dropped from the synthesis)
    tables["shape_bias"].iloc[[1]].to_csv(run / "metrics" / "shape_bias.csv", index=False)
    table = results.checkpoint_table(run)
    assert table["checkpoint"].tolist() == ["epoch_2", "epoch_10"] and table["iqa_srcc"].tolist() == [0.2, 0.9]
    assert table["shape_bias"].tolist()[0] == 0.3 and np.isnan(table["shape_bias"].tolist()[1])
    # the paired early-peak test is read at the synthesis' distance, when its table holds several
    pd.DataFrame({"distance": ["euclidean", "cosine"], "early_drop": [0.5, 0.1], "lo": [0.4, 0.05],
                  "hi": [0.6, 0.15]}).to_csv(run / "metrics" / "iqa_peak.csv", index=False)
    table = results.checkpoint_table(run)
    assert table[["iqa_early_drop", "iqa_early_drop_lo", "iqa_early_drop_hi"]].drop_duplicates().values.tolist() == [
        [0.1, 0.05, 0.15]]
    # each trend claim's paired test, from its step's <step>_trend.csv by the claim's column; none without the table
    assert not any(column.endswith(("_trend", "_trend_lo", "_trend_hi")) for column in table.columns)
    pd.DataFrame({"measure": ["chance_corrected_drop", "noise_drop"], "spearman": [0.2, -0.9], "lo": [-0.1, -1.0],
                  "hi": [0.5, -0.6], "n_checkpoints": [2, 2]}).to_csv(run / "metrics" / "noise_trend.csv", index=False)
    table = results.checkpoint_table(run)
    assert table[["noise_drop_trend", "noise_drop_trend_lo", "noise_drop_trend_hi",
                  "chance_corrected_drop_trend"]].drop_duplicates().values.tolist() == [[-0.9, -1.0, -0.6, 0.2]]
    assert "texture_bias_trend" not in table.columns  # the shape step wrote none


def test_run_dirs_skip_empty_entries_and_refuse_none_at_all(tmp_path):
    assert [str(p) for p in results.parse_run_dirs("a,,b,", tmp_path)] == ["a", "b"]
    with pytest.raises(ParameterError, match="names no run directory"):
        results.parse_run_dirs(" , ", tmp_path)


def test_a_later_steps_parameter_wins_and_real_sets_alone_are_people_not_a_stand_in(tmp_path):
    import json

    def run(name, steps):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "record.json").write_text(json.dumps({"steps": {
            step: {"preset": "smoke", "parameters": parameters, "sources": {}}
            for step, parameters in steps.items()}}))
        return folder

    first = run("a", {"noise": {"eval_batch_size": 16}, "iqa": {"eval_batch_size": 8}})
    assert results.run_parameters(first)["eval_batch_size"] == 16  # noise runs after iqa
    real = tmp_path / "real"
    real.mkdir()
    second = run("b", {"iqa": {"iqa_dataset": "tid2013", "iqa_root": str(real)}})
    third = run("c", {"iqa": {"iqa_dataset": "kadid10k", "iqa_root": str(real)}})
    data = results.evaluation_data([second, third]).set_index("step")
    assert data.loc["iqa", "datasets"] == "tid2013, kadid10k"
    assert not data.loc["iqa", "stand_in"] and data.loc["iqa", "people_too"]
    assert results.evaluation_data([second]).set_index("step").loc["iqa", "people_too"]  # one real set is people


@pytest.fixture
def rerun_calls(tmp_path, monkeypatch):
    """A folder of two runs (runs_in faked) where every check and page only records its call."""
    from clipalign_utils.orchestration import multirun

    runs = [tmp_path / "tiny-seed0", tmp_path / "tiny-seed1"]
    calls = []
    monkeypatch.setattr(multirun, "runs_in", lambda out: list(runs) if out == tmp_path else [])
    monkeypatch.setattr(multirun, "check_run", lambda run_dir: calls.append(("check_run", run_dir.name)))
    for check in ("check_steps", "check_step_runs"):
        monkeypatch.setattr(multirun, check, lambda run_dir, steps, resolved, check=check:
                            calls.append((check, run_dir.name, tuple(steps))))
    monkeypatch.setattr(multirun, "execute", lambda run_dir, steps, resolved, **kw:
                        calls.append(("execute", run_dir.name, tuple(steps), kw["tag"], kw["extra"])))
    monkeypatch.setattr(multirun, "synthesise", lambda out, run_dirs, resolved, progress:
                        calls.append(("synthesise", out.name, [d.name for d in run_dirs])))
    monkeypatch.setattr(multirun, "run_notebook", lambda name, out, parameters, progress, label:
                        calls.append(("run_notebook", name, out.name, parameters["run_dir"], label)))
    return calls


def test_rerunning_a_step_on_a_folder_of_runs_checks_every_run_first_then_runs_each_then_the_synthesis(
        rerun_calls, tmp_path, capsys):
    # Every run checked before any runs (one contradicting stops the command with nothing run); the synthesis last.
    from clipalign_utils.orchestration.multirun import rerun_step

    ran = rerun_step(tmp_path, "iqa", preset="smoke", overrides={"run_dirs": "x"}, progress=False)
    assert ran == [tmp_path / "tiny-seed0", tmp_path / "tiny-seed1"]
    checks = [call for run in ("tiny-seed0", "tiny-seed1")
              for call in (("check_run", run), ("check_steps", run, ("iqa",)), ("check_step_runs", run, ("iqa",)))]
    assert rerun_calls == checks + [("execute", "tiny-seed0", ("iqa",), "[run 1/2 tiny-seed0] ", {"run_dirs": "x"}),
                                    ("execute", "tiny-seed1", ("iqa",), "[run 2/2 tiny-seed1] ", {"run_dirs": "x"}),
                                    ("synthesise", tmp_path.name, ["tiny-seed0", "tiny-seed1"])]


def test_rerunning_the_synthesis_on_a_folder_of_runs_runs_it_alone(rerun_calls, tmp_path):
    from clipalign_utils import registry
    from clipalign_utils.orchestration.multirun import rerun_step

    rerun_step(tmp_path, registry.synthesis().name, preset="smoke", progress=False)
    assert [call[0] for call in rerun_calls if call[0] not in ("check_run", "check_steps", "check_step_runs")] == [
        "synthesise"]


def test_an_optional_step_on_a_folder_of_runs_runs_its_page_once_over_the_folder(rerun_calls, tmp_path, capsys):
    # Its page measures every run and shows them together; no run executes it alone, and no synthesis follows.
    from clipalign_utils import registry
    from clipalign_utils.orchestration.multirun import rerun_step

    rerun_step(tmp_path, "interpolation", preset="smoke", progress=False)
    ran = [call for call in rerun_calls if call[0] not in ("check_run", "check_steps", "check_step_runs")]
    assert ran == [("run_notebook", registry.get("interpolation").notebook, tmp_path.name, str(tmp_path),
                    f"step interpolation on {tmp_path}")]
    out = capsys.readouterr().out
    assert f"[interpolation] 2 runs -> {tmp_path / 'notebooks'}\n" in out
    assert f"s; tables in each run's metrics/ and {tmp_path / 'metrics'}\n" in out


def test_rerunning_train_or_on_a_folder_without_runs_is_one_line(rerun_calls, tmp_path):
    from clipalign_utils.orchestration.multirun import rerun_step

    with pytest.raises(ParameterError, match=rf"^--only train on the multi-run folder {tmp_path}: a run trains in its "
                                             rf"own folder \(clipalign run --out '{tmp_path}/<run>' --only train\)$"):
        rerun_step(tmp_path, "train", preset="smoke")
    empty = tmp_path / "empty"
    with pytest.raises(ParameterError, match=rf"^{empty} holds no runs \(<scale>-seed<k>/ folders with checkpoints\)$"):
        rerun_step(empty, "iqa", preset="smoke")
    assert rerun_calls == []


def test_the_runs_overview_says_a_seed_no_record_gives_is_unknown():
    """A reader: page 5's table of runs showed `seed NaN` for a streamed trajectory, and a float seed (0.0)
    beside it for a run of clipalign's."""
    from clipalign_utils.steps.tradeoff.analysis import runs_overview

    table = pd.DataFrame({"scale": ["RN50"] * 3 + ["tiny"] * 2, "seed": [np.nan] * 3 + [0.0, 0.0]})
    overview = runs_overview(table)
    assert overview.to_dict("records") == [{"scale": "RN50", "seed": "unknown", "checkpoints": 3},
                                           {"scale": "tiny", "seed": 0, "checkpoints": 2}]


def test_the_synthesis_says_what_it_reads_from_the_run_folders(tmp_path):
    """A review: page 5 said "The default build is several seeds of the default world" on a streamed trajectory's
    book. The sentence is now the folders' own: a streamed run (source.json), one run, or several."""
    from pathlib import Path

    streamed, trained = tmp_path / "real_clip", tmp_path / "seed0"
    streamed.mkdir()
    trained.mkdir()
    checkpoints = [{"name": f"epoch_{e}", "epoch": e, "source": f"/ckpts/epoch_{e}.pt"} for e in (1, 2, 3)]
    (streamed / "source.json").write_text(json.dumps({"source": "/ckpts", "model": "ViT-B-32",
                                                      "checkpoints": checkpoints}))
    assert results.runs_read_sentence([streamed]) == (
        "This page reads one streamed trajectory, 3 checkpoints of ViT-B-32 trained elsewhere: one run, so its bands "
        "are bootstrap intervals, not intervals over seeds.")
    assert results.runs_read_sentence([trained]).startswith("This page reads one run trained here")
    assert results.runs_read_sentence([trained, tmp_path / "seed1"]) == (
        "This page reads 2 runs: the table below gives each one's scale and seed; the seeds of a scale are its "
        "replicates.")
    notebook = (Path(__file__).parents[1] / "notebooks" / "05_tradeoff_synthesis.py").read_text()
    assert "The default build is several seeds" not in notebook and "results.runs_read_sentence(run_dirs)" in notebook


def test_peak_sentences_read_each_measure_against_its_chance_level():
    """A reader review of random weights: "saliency sAUC peaks at epoch 2 with 0.542; … The peak lies strictly
    inside the run" and "2AFC similarity score peaks at epoch 4 with 0.444" where every checkpoint's interval
    holds chance (0.5), and an SRCC whose every interval lies below 0 read as an ordinary peak."""
    from clipalign_utils import registry
    from clipalign_utils.steps.tradeoff.page import peak_sentences

    assert [registry.summary_of(c).chance for c in ("iqa_srcc", "two_afc_score", "saliency_sauc")] == [0, 0.5, 0.5]
    srcc, two_afc, sauc = [-0.5, -0.3, -0.4, -0.45], [0.44, 4 / 9, 0.40, 0.43], [0.50, 0.51, 0.542, 0.49]
    means = pd.DataFrame({"scale": "tiny", "epoch": [0.0, 1.0, 2.0, 4.0], "iqa_srcc": srcc,
                          "iqa_srcc_lo": [v - 0.05 for v in srcc], "iqa_srcc_hi": [v + 0.05 for v in srcc],
                          "two_afc_score": two_afc, "two_afc_score_lo": [v - 0.1 for v in two_afc],
                          "two_afc_score_hi": [v + 0.1 for v in two_afc], "saliency_sauc": sauc,
                          "saliency_sauc_lo": [v - 0.06 for v in sauc], "saliency_sauc_hi": [v + 0.06 for v in sauc]})
    assert peak_sentences(means) == [
        "IQA alignment (SRCC) peaks at epoch 1 with -0.300; the last checkpoint (epoch 4) has -0.450. The peak "
        "**lies** strictly inside the run, and its interval **lies** above the last checkpoint's. Every checkpoint's "
        "IQA alignment (SRCC) interval lies below 0: the model ranks quality in reverse at every checkpoint (the peak "
        "is the least reversed).",
        "2AFC similarity score is not distinguishable from chance (0.5) at any checkpoint (every checkpoint's interval "
        "contains it): there is no peak to read.",
        "saliency sAUC is not distinguishable from chance (0.5) at any checkpoint (every checkpoint's interval "
        "contains it): there is no peak to read."]
    # one checkpoint's interval clear of chance: the peak is read as before
    clear = means.assign(saliency_sauc_lo=[0.44, 0.45, 0.51, 0.43])
    assert peak_sentences(clear)[2].startswith("saliency sAUC peaks at epoch 2 with 0.542; the last checkpoint")


def _partial_spearman_by_hand(x, y, t) -> float:
    """ρ_xy·t = (ρ_xy − ρ_xt ρ_yt) / √((1 − ρ_xt²)(1 − ρ_yt²)) from scipy's three Spearman correlations."""
    from scipy import stats

    rxy, rxt, ryt = (stats.spearmanr(a, b)[0] for a, b in ((x, y), (x, t), (y, t)))
    return (rxy - rxt * ryt) / np.sqrt((1 - rxt**2) * (1 - ryt**2))


def test_claim_4_over_seeds_is_each_seeds_own_partial_correlation_with_its_t_interval_over_seeds():
    """Claim 4 on several seeds rested on the seed-mean curve's partial ρ with a p that treats its checkpoints as
    independent; it now takes each seed's own, as page 9's prediction 3 does, and judges their interval."""
    from scipy import stats

    epochs = (0.0, 0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0)
    trend = np.linspace(0, 0.2, len(epochs))

    def runs(noise_sign: float) -> pd.DataFrame:
        # IQA alignment and texture bias (1 − shape bias) share each seed's wiggle around one slow trend, the
        # noise drop shares it with noise_sign; each measure has a little noise of its own
        rows = []
        for seed in range(3):
            rng = np.random.default_rng(seed)
            wiggle = rng.normal(0, 0.1, len(epochs))
            texture = trend + wiggle + rng.normal(0, 0.03, len(epochs))
            drop = 0.3 + trend + noise_sign * wiggle + rng.normal(0, 0.03, len(epochs))
            rows.append(_run_rows("tiny", seed, list(0.3 + trend + wiggle), list(0.9 - texture), list(drop), epochs))
        return pd.concat(rows, ignore_index=True)

    log_t = np.log(np.array(epochs) + 0.5)
    for noise_sign, verdict in ((1.0, tradeoff.REPRODUCED), (-1.0, tradeoff.NOT_REPRODUCED)):
        table = runs(noise_sign)
        claim = tradeoff.verdicts(table, n_perm=200, by="scale").set_index("claim").loc[tradeoff.COVARIES_CLAIM]
        partials = {}
        for y in ("texture_bias", "noise_drop"):
            partials[y] = [_partial_spearman_by_hand(run["iqa_srcc"], (1 - run["shape_bias"]) if y == "texture_bias"
                                                     else run["noise_drop"], log_t)
                           for _, run in table.groupby("seed")]
        weaker = "noise_drop" if verdict == tradeoff.NOT_REPRODUCED else min(
            partials, key=lambda y: np.mean(partials[y]) - stats.t.ppf(0.975, 2) * np.std(partials[y], ddof=1) / 3**0.5)
        mean = np.mean(partials[weaker])
        half = stats.t.ppf(0.975, 2) * np.std(partials[weaker], ddof=1) / np.sqrt(3)
        assert claim["verdict"] == verdict
        assert claim["statistic"] == (f"partial spearman(iqa_srcc, {weaker} | log time) per seed (mean over 3 seeds, "
                                      "t interval over seeds)")
        assert (claim["value"], claim["ci_lo"], claim["ci_hi"]) == pytest.approx(
            (mean, max(mean - half, -1), min(mean + half, 1)), abs=1e-9)
        assert np.isnan(claim["p_value"]) and "first differences ρ mean" in claim["detail"]
    # one seed whose noise drop runs the other way: the interval over seeds holds 0
    mixed = pd.concat([runs(1.0).query("seed < 2"), runs(-1.0).query("seed == 2")], ignore_index=True)
    claim = tradeoff.verdicts(mixed, n_perm=200, by="scale").set_index("claim").loc[tradeoff.COVARIES_CLAIM]
    assert claim["verdict"] == tradeoff.INCONCLUSIVE and claim["ci_lo"] < 0 < claim["ci_hi"]
    assert claim["statistic"].startswith("partial spearman(iqa_srcc, noise_drop | log time)")
