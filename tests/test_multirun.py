"""Seeds and scales: aggregation over seeds (hand-computed), and `clipalign run --seeds … --scales …`
end to end, resumed."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from clipalign_utils import cli, results
from clipalign_utils.errors import ParameterError
from clipalign_utils.metrics import tradeoff
from clipalign_utils.multirun import plan_runs

# Student t quantiles (0.975): 1 and 2 degrees of freedom.
T1, T2 = 12.706204736174707, 4.302652729749464


def _run_rows(scale, seed, iqa, shape, drop, epochs=(0.0, 1.0)):
    return pd.DataFrame({
        "scale": scale, "seed": seed, "run": f"{scale}-seed{seed}", "epoch": list(epochs),
        "checkpoint": [f"epoch_{e:g}" for e in epochs],
        "iqa_srcc": iqa, "iqa_srcc_lo": [v - 0.1 for v in iqa], "iqa_srcc_hi": [v + 0.1 for v in iqa],
        "shape_bias": shape, "shape_bias_lo": [v - 0.05 for v in shape], "shape_bias_hi": [v + 0.05 for v in shape],
        "clean_accuracy": np.linspace(0.5, 0.9, len(epochs)), "noise_drop": drop,
    })


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
    verdicts = tradeoff.verdicts_by_scale(table, n_perm=200)
    texture = verdicts[verdicts["claim"] == "texture bias falls during training"].iloc[0]
    assert texture["scale"] == "tiny" and texture["n_seeds"] == 3
    assert texture["seeds_reproduced"] == pytest.approx(2 / 3)
    assert texture["verdict"] == tradeoff.REPRODUCED  # the mean curve falls monotonically


def test_run_identity_reads_train_params_then_params_txt(tmp_path):
    (tmp_path / "params.txt").write_text("model: clipalign-small\nseed: 4\n")
    assert results.run_identity(tmp_path) == {"scale": "small", "seed": 4}
    (tmp_path / "train_params.json").write_text(json.dumps({"model": "tiny", "seed": 7}))
    assert results.run_identity(tmp_path) == {"scale": "tiny", "seed": 7}
    assert results.parse_run_dirs(None, tmp_path) == [tmp_path]
    assert [str(p) for p in results.parse_run_dirs("a, b", tmp_path)] == ["a", "b"]


def test_plan_runs_checks_scales_and_conflicts():
    assert plan_runs("smoke", [0, 1], ["tiny", "small"], {}) == [("tiny", 0), ("tiny", 1), ("small", 0), ("small", 1)]
    assert plan_runs("smoke", [3], None, {"model": "small"}) == [("small", 3)]
    with pytest.raises(ParameterError, match="unknown model"):
        plan_runs("smoke", [0], ["huge"], {})
    with pytest.raises(ParameterError, match="both given"):
        plan_runs("smoke", [0, 1], None, {"seed": "2"})


def test_cli_seeds_and_scales_end_to_end_then_resume(smoke_pipeline, tmp_path, capsys):
    out = tmp_path / "multi"
    # Seed 0 of the smoke preset is the session's pipeline run: put it in place as a finished run,
    # so this command resumes (skips it) and trains and analyses seed 1 only.
    shutil.copytree(smoke_pipeline, out / "tiny-seed0",
                    ignore=shutil.ignore_patterns("book", "05_tradeoff_synthesis*", "tradeoff*"))
    argv = ["run", "--preset", "smoke", "--seeds", "0", "1", "--scales", "tiny", "--out", str(out), "--no-book"]
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert "[run 1/2 tiny-seed0] skip: complete" in printed
    assert "[run 2/2 tiny-seed1]" in printed and "runs left 0" in printed
    for seed in (0, 1):
        run_dir = out / f"tiny-seed{seed}"
        assert (run_dir / "notebooks" / "04_noise_robustness.ipynb").exists()
        assert json.loads((run_dir / "train_params.json").read_text())["seed"] == seed
        assert not (run_dir / "notebooks" / "05_tradeoff_synthesis.ipynb").exists()
    assert (out / "notebooks" / "05_tradeoff_synthesis.ipynb").exists()
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

    # The same command again: both runs are skipped; only the synthesis runs.
    trained = (out / "tiny-seed0" / "train_params.json").stat().st_mtime
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert printed.count("skip") == 2, printed
    assert (out / "tiny-seed0" / "train_params.json").stat().st_mtime == trained

    # The book of a multi-run: the step pages from its first run, page 5 the synthesis over all.
    from clipalign_utils.book import stage_book

    stage = stage_book(out)
    def sources(path):  # the staged copy is made publishable (paths, progress bars): compare the cells
        return [cell["source"] for cell in json.loads(path.read_text())["cells"]
                if "injected-parameters" not in cell["metadata"].get("tags", [])]

    assert sources(stage / "notebooks" / "01_train.ipynb") == sources(out / "tiny-seed0" / "notebooks" / "01_train.ipynb")
    assert sources(stage / "notebooks" / "05_tradeoff_synthesis.ipynb") == \
        sources(out / "notebooks" / "05_tradeoff_synthesis.ipynb")
    assert "Pages 1–4 and 7–8 show the run `tiny-seed0`" in (stage / "_generated" / "run.md").read_text()


def test_full_preset_means_three_seeds_two_scales():
    from clipalign_utils.config import MULTI_RUN_PRESETS, PRESETS

    assert MULTI_RUN_PRESETS["full"] == {"seeds": (0, 1, 2), "scales": ("tiny", "small")}
    assert PRESETS["full"] == {**PRESETS["default"]}
