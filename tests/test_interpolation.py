"""The interpolation step: θ(α) = (1 − α)·θ_from + α·θ_to between two checkpoints of a run, measured by the
IQA, shape and noise steps; BatchNorm statistics re-estimated; the verdict over seeds."""
from __future__ import annotations

import json
import shutil

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch

from clipalign_utils import cli, config, registry
from clipalign_utils.checkpoints import Checkpoint, Run, discover_run
from clipalign_utils.errors import ParameterError
from clipalign_utils.models import create_model
from clipalign_utils.record import entry
from clipalign_utils.results.tables import read_metric
from clipalign_utils.steps.interpolation import analysis as interpolation, page, placeholder
from clipalign_utils.steps.iqa import analysis as iqa_step
from clipalign_utils.steps.noise import analysis as noise_step
from clipalign_utils.steps.shape import analysis as shape_step


def same(a, b) -> bool:
    """Equal, or both nan (a checkpoint at chance has no noise drop)."""
    return a == b or (np.isnan(a) and np.isnan(b))


# --- the weights -----------------------------------------------------------------------------------

def test_floats_are_interpolated_and_counts_are_the_later_checkpoints():
    start = {"w": torch.tensor([0.0, 2.0]), "n": torch.tensor(3)}
    end = {"w": torch.tensor([4.0, 6.0]), "n": torch.tensor(7)}
    mixed = interpolation.interpolate_state(start, end, 0.25)
    assert mixed["w"].tolist() == [1.0, 3.0]  # 0.75·start + 0.25·end
    assert mixed["n"].item() == 7 and mixed["n"].dtype == torch.int64
    assert torch.equal(interpolation.interpolate_state(start, end, 0.0)["w"], start["w"])
    assert torch.equal(interpolation.interpolate_state(start, end, 1.0)["w"], end["w"])
    with pytest.raises(ParameterError, match="not of one model"):
        interpolation.interpolate_state({"w": start["w"]}, end, 0.5)


def test_batchnorm_statistics_are_the_mean_batch_statistics_of_the_training_images():
    """The stem's first BatchNorm sees conv1's output whatever the statistics: its re-estimated running mean
    and variance are the mean over batches of each batch's channel mean and unbiased variance."""
    model = create_model("tiny", seed=3)
    batches = [torch.randn(16, 3, 32, 32, generator=torch.Generator().manual_seed(i)) for i in range(3)]
    with torch.no_grad():
        inputs = [model.visual.conv1(b) for b in batches]
    mean = torch.stack([x.mean((0, 2, 3)) for x in inputs]).mean(0)
    var = torch.stack([x.transpose(0, 1).flatten(1).var(1, unbiased=True) for x in inputs]).mean(0)
    model.visual.bn1.running_mean.fill_(5.0)  # stale statistics, to be replaced
    interpolation.reestimate_batchnorm(model, batches)
    torch.testing.assert_close(model.visual.bn1.running_mean, mean, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(model.visual.bn1.running_var, var, rtol=1e-5, atol=1e-6)
    assert not model.training and model.visual.bn1.momentum == 0.1  # eval mode, momentum put back
    assert interpolation.has_batchnorm(model) and not interpolation.has_batchnorm(torch.nn.Linear(2, 2))


class _Stepped(Exception):
    pass


@pytest.mark.parametrize("fresh_data", [False, True])
def test_the_batches_are_the_runs_first_training_batches_normalised_as_in_training(monkeypatch, tmp_path, fresh_data):
    """The images the trainer's image tower saw first, caught in training itself (an audit found item 0 onwards
    of the generated set taken, where the trainer visits a permutation of it, and with fresh_data another set)."""
    from clipalign_utils import models, train

    params = config.resolve("smoke", seed=4, bn_batches=2, samples_per_epoch=512, fresh_data=fresh_data)
    seen = []
    create = models.create_model

    def watched(*args, **kwargs):
        model = create(*args, **kwargs)

        def catch(module, inputs):
            seen.append(inputs[0].detach().clone())
            if len(seen) == 2:
                raise _Stepped
        model.visual.register_forward_pre_hook(catch)
        return model

    monkeypatch.setattr(train.models, "create_model", watched)
    with pytest.raises(_Stepped):
        train.train(tmp_path / "run", params, progress=False)
    batches = interpolation.training_batches(params, create_model("tiny"))
    assert [tuple(b.shape) for b in batches] == [(params["batch_size"], 3, 32, 32)] * 2
    for trained_on, batch in zip(seen, batches):
        torch.testing.assert_close(batch, trained_on)


def test_alphas_outside_the_segment_are_refused_by_name():
    with pytest.raises(ParameterError, match="parameter alphas"):
        config.resolve("smoke", alphas=(0.5, 1.5))
    with pytest.raises(ParameterError, match="bn_statistics"):
        config.resolve("smoke", bn_statistics="ignore")
    assert interpolation.alpha_grid({"alphas": (0.5, 0.25)}) == [0.0, 0.25, 0.5, 1.0]


def test_alphas_of_the_ends_alone_are_refused():
    """0 and 1 are always measured: alphas=0 (or 1, or 0,1) left no model between and failed inside the page
    (an audit: "No objects to concatenate")."""
    for alphas in ((0.0,), (1.0,), (0.0, 1.0)):
        with pytest.raises(ParameterError, match="give at least one α between them"):
            config.resolve("smoke", alphas=alphas)


@pytest.mark.parametrize("given, expected", [
    (["interpolation_from=epoch_9"], "parameter interpolation_from='epoch_9': {run} has no such checkpoint; give "
                                     "peak or one of its checkpoints: epoch_1, epoch_2"),
    (["interpolation_to=nope"], "parameter interpolation_to='nope': {run} has no such checkpoint; give last or"),
    (["interpolation_from=epoch_2"], "parameter interpolation_from='epoch_2' is the interpolation_to checkpoint of "
                                     "{run} (interpolation_to='last'): nothing lies between"),
    (["interpolation_from=epoch_1", "interpolation_to=epoch_1"], "is the interpolation_to checkpoint"),
    ([], "metrics/iqa.csv"),  # the peak is read from the IQA table, which the run lacks
])
def test_checkpoints_the_run_lacks_are_refused_before_anything_is_written(tmp_path, capsys, given, expected):
    """Checked by the command before any folder or kernel (an audit found them refused inside the page, after
    its evaluation sets were drawn, leaving a failed notebook)."""
    run = tmp_path / "myrun"
    (run / "checkpoints").mkdir(parents=True)
    (run / "params.txt").write_text("model: RN50\nforce_image_size: 32\n")
    for epoch in (1, 2):
        (run / "checkpoints" / f"epoch_{epoch}.pt").write_bytes(b"not loaded by the check")
    before = sorted(p.relative_to(run) for p in run.rglob("*"))
    argv = ["run", "--preset", "smoke", "--out", str(run), "--only", "interpolation"]
    for value in given:
        argv += ["-p", value]
    assert cli.main(argv) == 2
    (error,) = capsys.readouterr().err.strip().splitlines()
    assert expected.format(run=run) in error, error
    assert sorted(p.relative_to(run) for p in run.rglob("*")) == before


def test_ends_whose_weights_are_gone_are_refused_before_any_kernel(tmp_path):
    """A streamed run keeps no weights unless --keep-weights says so: the step cannot load its ends (a review
    found the names checked and the page failing on the missing file)."""
    from clipalign_utils.steps.interpolation.ends import check_run
    from helpers import fake_run

    run = fake_run(tmp_path, epochs=(1, 2))  # names only: no weights on disk
    values = {"interpolation_from": "epoch_1", "interpolation_to": "last", "distance": "euclidean"}
    with pytest.raises(ParameterError, match=r"epoch_1.pt is not there: .*--keep-weights"):
        check_run(run, values, ["interpolation"])
    with pytest.raises(ParameterError, match=r"epoch_2.pt is not there"):  # the peak to come: its end only
        check_run(run, {**values, "interpolation_from": "peak"}, ["iqa", "interpolation"])
    run.checkpoints[0].path.parent.mkdir(parents=True)
    for checkpoint in run.checkpoints:
        checkpoint.path.write_bytes(b"weights")
    check_run(run, values, ["interpolation"])


def test_reestimation_on_a_run_trained_elsewhere_is_refused_before_any_kernel(tmp_path):
    """Re-estimating BatchNorm draws the run's training batches: a run without train_params.json (open_clip_train's)
    is one line naming bn_statistics before a kernel starts (an audit found it refused inside the page, after
    the evaluation sets were built, leaving a .failed notebook); a tower without BatchNorm needs no world."""
    from clipalign_utils.model_names import vision_has_batchnorm
    from clipalign_utils.steps.interpolation.ends import check_run
    from helpers import fake_run

    from clipalign_utils.model_names import blocks_readable

    assert [vision_has_batchnorm(m) for m in ("tiny", "clipalign-vit-tiny", "RN50", "ViT-B-32", "convnext_base",
                                              "no-such-model")] == [True, False, True, False, None, None]
    assert [blocks_readable(m) for m in ("tiny", "vit-tiny", "RN50", "ViT-B-32", "convnext_base", "no-such-model")] == [
        True, True, True, True, False, None]
    run = fake_run(tmp_path, epochs=(1, 2))
    run.checkpoints[0].path.parent.mkdir(parents=True)
    for checkpoint in run.checkpoints:
        checkpoint.path.write_bytes(b"weights")
    values = {"interpolation_from": "epoch_1", "interpolation_to": "last", "distance": "euclidean",
              "bn_statistics": "reestimate"}
    with pytest.raises(ParameterError, match=r"was not trained here, .*: pass -p bn_statistics=interpolate"):
        check_run(run, values, ["interpolation"])
    check_run(run, {**values, "bn_statistics": "interpolate"}, ["interpolation"])
    check_run(fake_run(tmp_path, epochs=(1, 2), model="clipalign-vit-tiny"), values, ["interpolation"])
    (tmp_path / "train_params.json").write_text("{}")
    check_run(run, values, ["interpolation"])


def test_a_folder_of_runs_is_checked_run_by_run_before_any_kernel(tmp_path, capsys, monkeypatch):
    """The folder's command goes through multirun.rerun_step: each run's checkpoints checked there too (a
    review found its runs' names checked only inside the page)."""
    from clipalign_utils.orchestration import multirun

    for name, epochs in (("tiny-seed0", (1, 2)), ("tiny-seed1", (1, 3))):
        (tmp_path / name / "checkpoints").mkdir(parents=True)
        (tmp_path / name / "params.txt").write_text("model: RN50\nforce_image_size: 32\n")
        for epoch in epochs:
            (tmp_path / name / "checkpoints" / f"epoch_{epoch}.pt").write_bytes(b"not loaded by the check")
    monkeypatch.setattr(multirun, "run_notebook", lambda *a, **k: pytest.fail("a page was started"))
    argv = ["run", "--preset", "smoke", "--out", str(tmp_path), "--only", "interpolation",
            "-p", "interpolation_from=epoch_1", "-p", "interpolation_to=epoch_2"]
    assert cli.main(argv) == 2  # RN50 trained elsewhere: its BatchNorm cannot be re-estimated, said at the first run
    (error,) = capsys.readouterr().err.strip().splitlines()
    assert f"{tmp_path / 'tiny-seed0'} was not trained here" in error and "bn_statistics=interpolate" in error
    assert cli.main(argv + ["-p", "bn_statistics=interpolate"]) == 2
    (error,) = capsys.readouterr().err.strip().splitlines()
    assert f"parameter interpolation_to='epoch_2': {tmp_path / 'tiny-seed1'} has no such checkpoint" in error


def test_bn_batches_beyond_the_first_epoch_are_refused():
    """A review: bn_batches=20 of a 16-batch epoch gave 16 batches, the page saying 20."""
    from clipalign_utils import train

    with pytest.raises(ParameterError, match=r"bn_batches=20: training's first epoch has 16 batches"):
        config.resolve("smoke", bn_batches=20)
    assert config.resolve("smoke", bn_batches=16)["bn_batches"] == 16
    with pytest.raises(ValueError, match="the first epoch has 16"):
        train.first_batches(config.resolve("smoke"), 17)


def test_an_optional_step_is_not_in_the_default_run_but_in_only():
    step = registry.get("interpolation")
    assert step.optional and "interpolation" in registry.names()
    assert step not in registry.per_run_steps()
    from clipalign_utils.orchestration.pipeline import STEPS, available_steps

    assert "interpolation" not in STEPS and "interpolation" not in available_steps()
    assert "interpolation" in available_steps(optional=True)


# --- over seeds -------------------------------------------------------------------------------------

def _run_table(srcc, drop):
    return pd.DataFrame({"alpha": [0.0, 0.5, 1.0], "iqa_srcc": srcc, "noise_drop": drop, "shape_bias": [0.3, 0.4, 0.5]})


def test_margins_over_seeds_are_paired_per_run_against_the_better_endpoint():
    tables = {"a": _run_table([0.40, 0.50, 0.30], [0.20, 0.10, 0.15]),
              "b": _run_table([0.42, 0.47, 0.44], [0.25, 0.20, 0.22]),
              "c": _run_table([0.41, 0.49, 0.35], [0.30, 0.24, 0.26])}
    seeds = interpolation.seed_table(tables)
    middle = seeds[seeds["alpha"] == 0.5].iloc[0]
    # per run: 0.50 − 0.40, 0.47 − 0.44, 0.49 − 0.41 and 0.15 − 0.10, 0.22 − 0.20, 0.26 − 0.24
    alignment, robustness = np.array([0.10, 0.03, 0.08]), np.array([0.05, 0.02, 0.02])
    assert middle["alignment_margin"] == pytest.approx(alignment.mean())
    half = 4.302653 * alignment.std(ddof=1) / np.sqrt(3)  # t(0.975, 2)
    assert middle["alignment_margin_lo"] == pytest.approx(alignment.mean() - half, rel=1e-5)
    assert middle["robustness_margin"] == pytest.approx(robustness.mean())
    assert middle["n_runs"] == 3 and middle["iqa_srcc"] == pytest.approx(np.mean([0.50, 0.47, 0.49]))
    verdict = interpolation.beats_both(seeds)
    assert list(verdict["alpha"]) == [0.5]
    assert verdict["verdict"].iloc[0] == "inconclusive"  # the robustness interval reaches below 0
    lines = page.seed_sentences(verdict)
    assert "alignment margin +0.070" in lines[0] and lines[-1].startswith("**not established**")
    assert middle["n_one_point"] == 0 and not any("one point" in line for line in lines)
    # run a: the start (0.40, 0.20) against the end (0.30, 0.15): more aligned, less robust; b and c likewise
    assert middle["n_from_dominates"] == 0 and not any("no trade-off" in line for line in lines)
    tables["b"] = tables["b"].assign(from_checkpoint="epoch_5", to_checkpoint="epoch_5")
    assert "1 of 3 runs peak" in " ".join(page.seed_sentences(interpolation.beats_both(
        interpolation.seed_table(tables))))


def test_an_alpha_better_on_both_axes_in_every_seed_beats_both():
    tables = {s: _run_table([0.40, 0.50 + d, 0.30], [0.20, 0.10 - d, 0.15]) for s, d in
              (("a", 0.0), ("b", 0.01), ("c", 0.02))}
    verdict = interpolation.beats_both(interpolation.seed_table(tables))
    assert verdict["verdict"].tolist() == ["beats both"]
    tables["a"] = _run_table([0.40, 0.50, 0.30], [0.10, 0.05, 0.15])  # its start beats its end on both axes
    assert "in 1 of 3 runs the α = 0 end is already better on both axes" in " ".join(
        page.seed_sentences(interpolation.beats_both(interpolation.seed_table(tables))))
    assert page.seed_sentences(verdict)[-1].startswith("**yes**: α = 0.5")
    worse = interpolation.beats_both(interpolation.seed_table(
        {s: _run_table([0.40, 0.30 - d, 0.35], [0.20, 0.10, 0.15]) for s, d in (("a", 0), ("b", 0.01), ("c", 0.02))}))
    assert worse["verdict"].tolist() == ["worse"] and page.seed_sentences(worse)[-1].startswith("**no**")


def test_one_runs_sentences_by_hand_and_with_undefined_drops():
    table = _run_table([0.40, 0.50, 0.30], [0.20, 0.10, 0.15])
    assert page.run_sentences(table) == [
        "highest IQA SRCC at α = 0.5 (0.500; endpoints 0.400 and 0.300)",
        "lowest normalized noise drop at α = 0.5 (0.100; endpoints 0.200 and 0.150)",
        "in this run α = 0.5 beats both endpoints on both axes (one run's point estimates; its intervals are over "
        "images, not seeds)"]
    # every model at chance on the noise set: the page failed (idxmin of all-nan, an audit); now said
    nowhere = page.run_sentences(_run_table([0.40, 0.50, 0.30], [np.nan] * 3))
    assert nowhere[1] == ("lowest normalized noise drop: undefined at every α (every model at chance on its set; "
                          "endpoints undefined and undefined)")
    assert nowhere[2].startswith("an endpoint's measure is undefined")
    # re-estimated, the models at chance are those with re-estimated statistics (an audit: it read as if the
    # checkpoints' own were too, where an end was above chance with them)
    reestimated = page.run_sentences(_run_table([0.40, 0.50, 0.30], [np.nan] * 3).assign(bn_statistics="reestimate"))
    assert reestimated[1] == ("lowest normalized noise drop: undefined at every α (every model, with its re-estimated "
                              "BatchNorm statistics, at chance on its set; endpoints undefined and undefined)")
    some = page.run_sentences(_run_table([0.40, 0.50, 0.30], [np.nan, 0.1, 0.0]))
    assert some[1] == "lowest normalized noise drop at α = 1 (0.000; endpoints undefined and 0.000)"
    assert some[2].startswith("an endpoint's measure is undefined")
    inner = page.run_sentences(_run_table([0.40, 0.50, 0.30], [0.2, np.nan, 0.1]))
    assert inner[2] == "in this run no interior α with both measures defined beats both endpoints on both axes"


def test_beating_both_endpoints_means_beating_the_better_one_on_each_axis():
    """One run: an α above both ends in SRCC whose drop lies between the ends' (below the worse, above the better)
    does not beat both (mutation audit: comparing with the worse end's drop went unnoticed). Over seeds: the run
    count said is the fewest any α rests on, and "no" needs every α worse, else "not established"."""
    between = page.run_sentences(_run_table([0.40, 0.50, 0.30], [0.20, 0.17, 0.15]))
    assert between[2] == "in this run no interior α beats both endpoints on both axes"
    columns = {"alignment_margin": 0.05, "alignment_margin_lo": 0.01, "alignment_margin_hi": 0.09,
               "robustness_margin": 0.03, "robustness_margin_lo": 0.01, "robustness_margin_hi": 0.05}
    short = pd.DataFrame([{"alpha": 0.25, **columns, "n_runs": 3, "verdict": "beats both"},
                          {"alpha": 0.5, **columns, "n_runs": 2, "verdict": "beats both"}])
    assert page.seed_sentences(short)[-1] == ("**yes**: α = 0.25, 0.5 beats both endpoints on both axes, its margins' "
                                              "95 % intervals over 2 seeds above 0")
    one = short.assign(n_runs=1, verdict="inconclusive")  # one run has no interval over seeds
    assert page.seed_sentences(one)[-1] == ("only one run: the question needs at least 2 seeds for an interval to "
                                            "answer it")
    mixed = pd.DataFrame([{"alpha": 0.25, **columns, "n_runs": 3, "verdict": "worse"},
                          {"alpha": 0.5, **columns, "n_runs": 3, "verdict": "inconclusive"}])
    assert page.seed_sentences(mixed)[-1] == ("**not established**: no interior α beats both endpoints on both axes "
                                              "with both intervals above 0 over 3 seeds")
    assert page.seed_sentences(mixed.assign(verdict="worse"))[-1] == (
        "**no**: every interior α is worse than the better endpoint on at least one axis (an interval below 0, "
        "3 seeds)")


def test_the_ends_moved_by_reestimation_alone_are_said():
    table = _run_table([0.45, 0.50, 0.33], [0.20, 0.10, np.nan]).assign(
        from_checkpoint="epoch_0.75", to_checkpoint="epoch_5", bn_statistics="reestimate")
    path = pd.DataFrame({"checkpoint": ["epoch_0.75", "epoch_5"], "epoch": [0.75, 5.0], "iqa_srcc": [0.43, 0.30],
                         "noise_drop": [0.25, 0.0]})
    assert page.ends_sentences(table, path) == [
        "re-estimation alone moves `epoch_0.75` (α = 0): IQA SRCC 0.430 with its trained statistics → 0.450; "
        "normalized noise drop 0.250 → 0.200",
        "re-estimation alone moves `epoch_5` (α = 1): IQA SRCC 0.300 with its trained statistics → 0.330; "
        "normalized noise drop 0.000 → undefined (above chance on the noise set with its trained statistics, at "
        "chance with re-estimated ones: no drop)"]
    assert page.ends_sentences(table.assign(bn_statistics="interpolate"), path) == []
    one_point = table.assign(from_checkpoint="epoch_5")
    assert page.ends_sentences(one_point, path) == [
        "re-estimation alone moves `epoch_5` (every α: one point): IQA SRCC 0.300 with its trained statistics → "
        "0.450; normalized noise drop 0.000 → 0.200"]
    # an end above chance with its trained statistics and at chance re-estimated: said why its drop is gone
    # (an audit: "0.000 → undefined" hid it), and the other ways round
    reasons = [line.partition("normalized noise drop ")[2] for line in page.ends_sentences(
        _run_table([0.45, 0.50, 0.33], [np.nan, 0.10, 0.2]).assign(
            from_checkpoint="epoch_0.75", to_checkpoint="epoch_5", bn_statistics="reestimate"),
        path.assign(noise_drop=[np.nan, np.nan]))]
    assert reasons == ["undefined → undefined (at chance on the noise set with either statistics)",
                       "undefined → 0.200 (at chance on the noise set with its trained statistics, above chance "
                       "with re-estimated ones)"]
    params = {"interpolation_from": "peak", "interpolation_to": "epoch_5", "bn_batches": 2, "batch_size": 128}
    said = page.endpoint_sentences(one_point.assign(from_epoch=5.0, to_epoch=5.0), params)
    assert said[1].startswith("both ends are one checkpoint: IQA alignment peaks at the interpolation_to checkpoint")
    assert said[2].startswith("BatchNorm running statistics re-estimated on the run's first 2 training batches")
    forwards = page.endpoint_sentences(table.assign(from_epoch=0.75, to_epoch=5.0), params)
    assert len(forwards) == 2 and not any("backwards" in line for line in forwards)
    backwards = page.endpoint_sentences(table.assign(from_checkpoint="epoch_5", to_checkpoint="epoch_0.75",
                                                     from_epoch=5.0, to_epoch=0.75),
                                        {**params, "interpolation_from": "epoch_5", "interpolation_to": "epoch_0.75"})
    assert backwards[1] == ("the line runs backwards in training: α = 0 is the later checkpoint (epoch 5), "
                            "α = 1 the earlier (epoch 0.75)")


def test_undefined_margins_over_seeds_are_said_so():
    tables = {s: _run_table([0.40, 0.50, 0.30], [np.nan, np.nan, np.nan]) for s in "abc"}
    verdicts = interpolation.beats_both(interpolation.seed_table(tables))
    assert verdicts["verdict"].tolist() == ["inconclusive"]
    first = page.seed_sentences(verdicts)[0]
    assert "robustness margin undefined over 3 runs" in first and "nan" not in first
    # defined in some runs only: the mean and interval are over those, and the sentence says how many (a smoke
    # page read "+0.000 [+0.000, +0.000] over 3 runs" from two one-point runs beside one undefined)
    tables["a"] = _run_table([0.40, 0.50, 0.30], [0.20, 0.10, 0.15])
    tables["b"] = _run_table([0.40, 0.45, 0.30], [0.20, 0.12, 0.15])
    verdicts = interpolation.beats_both(interpolation.seed_table(tables))
    assert verdicts[["n_alignment_margin", "n_robustness_margin"]].iloc[0].tolist() == [3, 2]
    first = page.seed_sentences(verdicts)[0]
    # alignment: 0.1, 0.05, 0.1 over three runs; robustness: 0.15 − 0.10, 0.15 − 0.12 over the two with drops
    assert "robustness margin +0.040 [" in first and "] (defined in 2) over 3 runs" in first
    assert "alignment margin +0.083 [" in first and "(defined in 3)" not in first
    # an end's drop undefined (at chance) in every run: the margin is undefined, not taken against the other end
    # (an audit found "yes: α = 0.5 beats both" over seeds where each run's own page said it cannot be told)
    one_end = {s: _run_table([0.50, 0.55 + k / 100, 0.45], [np.nan, 0.10 + k / 100, 0.30]) for k, s in enumerate("abc")}
    verdicts = interpolation.beats_both(interpolation.seed_table(one_end))
    assert verdicts["n_robustness_margin"].tolist() == [0] and verdicts["verdict"].tolist() == ["inconclusive"]


def test_the_page_without_a_run_shows_the_recorded_tables_and_their_verdict(tmp_path, monkeypatch):
    rows = []
    for run, d in (("tiny-seed0", 0.0), ("tiny-seed1", 0.01), ("tiny-seed2", 0.02)):
        rows.append(_run_table([0.40, 0.50 + d, 0.30], [0.20, 0.10 - d, 0.15]).assign(
            run=run, from_checkpoint="epoch_0.75", to_checkpoint="epoch_5", bn_statistics="reestimate",
            iqa_srcc_lo=np.nan, iqa_srcc_hi=np.nan))
    pd.concat(rows).to_csv(tmp_path / "default.csv", index=False)
    (tmp_path / "recorded.json").write_text(json.dumps({
        "commit": "abc1234", "machine": "a 2-core CPU",
        "worlds": [{"title": "The default world", "table": "default.csv",
                    "commands": ["clipalign run --out runs/default --only interpolation"]}]}))
    monkeypatch.setattr(placeholder, "RECORDED", tmp_path)
    text = placeholder.text()
    assert "Recorded at commit `abc1234`" in text and "clipalign run --out runs/default --only interpolation" in text
    assert "| 0.5 | 0.510 [" in text  # the mean over the three runs with its t interval
    assert "**yes**: α = 0.5 beats both endpoints" in text
    assert "![" not in text  # no folder to save figures in: text only
    folder = tmp_path / "page"
    folder.mkdir()
    with_figure = placeholder.text(folder)
    assert "(interpolation_default.png)" in with_figure
    image = plt.imread(folder / "interpolation_default.png")
    assert image.shape[1] > 1000 and image.std() > 0  # three panels, drawn


def test_the_seeds_table_carries_and_marks_the_runs_at_chance(tmp_path, monkeypatch):
    """An audit of page 11: the table over seeds had no mark for a mean of at-chance runs (the synthesis' table of
    seed means has at_chance / n_above_chance, shape_at_chance / n_shape_above_chance), and the recorded page
    printed "nan" for an undefined mean."""
    tables = {s: _run_table([0.40, 0.50, 0.30], [0.20, drop, 0.15]).assign(
        at_chance=[False, np.isnan(drop), False], shape_at_chance=[False, shape, False])
        for s, drop, shape in (("a", np.nan, True), ("b", np.nan, True), ("c", 0.1, False))}
    tables["a"].loc[1, "shape_bias"], tables["b"].loc[1, "shape_bias"] = 0.9, 0.8  # guessing: noise
    seeds = interpolation.seed_table(tables)
    middle = seeds[seeds["alpha"] == 0.5].iloc[0]
    assert (middle["at_chance"], middle["n_above_chance"]) == (True, 1)
    # the shape bias' mean over the runs above chance on the cue-conflict images, as the synthesis' seed means
    # take it (it was 0.7 over all three)
    assert middle["shape_bias"] == pytest.approx(0.4) and np.isnan(middle["shape_bias_lo"])
    assert (middle["shape_at_chance"], middle["n_shape_above_chance"]) == (True, 1)
    assert not seeds.loc[seeds["alpha"] != 0.5, ["at_chance", "shape_at_chance"]].any(axis=None)
    assert seeds.loc[seeds["alpha"] != 0.5, "n_above_chance"].tolist() == [3, 3]
    # the recorded page's table: the mark beside the mean, "undefined" for none
    assert placeholder._cell(middle, "noise_drop") == "0.100 (at chance: 1 of 3 runs above)"
    assert placeholder._cell(middle, "shape_bias").endswith(" (at chance: 1 of 3 runs above)")
    undefined = middle.copy()
    undefined["noise_drop"] = np.nan
    assert placeholder._cell(undefined, "noise_drop") == "undefined (at chance: 1 of 3 runs above)"
    one = seeds.assign(n_above_chance=[3, 2, 3], at_chance=False).iloc[1]
    assert placeholder._cell(one, "noise_drop") == "0.100 (2 of 3 runs above chance)"
    assert placeholder._cell(one, "iqa_srcc") == "0.500 [0.500, 0.500]"  # no chance to be at


def test_the_recorded_tables_have_the_noise_chance_flag_of_the_step_and_old_ones_are_read(tmp_path, monkeypatch):
    """An audit of page 11: the recorded tables lacked the at-chance flags a fresh interpolation.csv has, so the
    recorded worlds could not draw an at-chance point hollow. at_chance is read back from the drops (nan exactly at
    chance); shape_at_chance cannot be (it rests on an interval the table does not keep)."""
    for name in ("default", "default_bn_interpolated", "quality_variation"):
        text = (placeholder.RECORDED / f"{name}.csv").read_text()
        table = pd.read_csv(placeholder.RECORDED / f"{name}.csv")
        assert text.splitlines()[0].endswith(",run,at_chance") and "shape_at_chance" not in table.columns
        assert table["at_chance"].tolist() == table["noise_drop"].isna().tolist()
    # an old table (no flag): read with at_chance from its drops, the page marks the α at chance in every run
    old = pd.concat([_run_table([0.40, 0.50, 0.30], [0.20, np.nan, 0.15]).assign(
        run=run, from_checkpoint="epoch_1", to_checkpoint="epoch_5", bn_statistics="reestimate")
        for run in ("s0", "s1")])
    assert interpolation.with_chance_flags(old)["at_chance"].tolist() == [False, True, False] * 2
    old.to_csv(tmp_path / "old.csv", index=False)
    monkeypatch.setattr(placeholder, "RECORDED", tmp_path)
    lines = placeholder.world_section({"title": "t", "table": "old.csv", "commands": []})
    assert any(line.startswith("| 0.5 | 0.500 [") and "| undefined (at chance: 0 of 2 runs above) |" in line
               for line in lines)


@pytest.mark.parametrize("bn_statistics", ["interpolate", "reestimate"])
def test_a_peak_at_the_last_checkpoint_is_one_point(tmp_path, monkeypatch, bn_statistics):
    """When the alignment peak is the last checkpoint every α is that model, measured once: the checkpoint's
    own file (interpolated statistics), or its one model with re-estimated statistics, as every other run's
    line then has (a reader of page 11 found one run of three left with its trained statistics)."""
    last = Checkpoint(tmp_path / "epoch_5.pt", 5.0)
    (tmp_path / "train_params.json").write_text("{}")
    run = Run(tmp_path, "tiny", 32, [Checkpoint(tmp_path / "epoch_1.pt", 1.0), last], {})
    torch.save({"state_dict": create_model("tiny", seed=0).state_dict()}, last.path)
    measured, written = [], []

    def fake_measure(run_, checkpoints, params, data, scratch=None):
        measured.append([(c.name, scratch is not None) for c in checkpoints])
        return pd.DataFrame({"checkpoint": [c.name for c in checkpoints], "iqa_srcc": 0.5, "iqa_srcc_lo": 0.4,
                             "iqa_srcc_hi": 0.6, "shape_bias": 0.3, "shape_bias_lo": 0.2, "shape_bias_hi": 0.4,
                             "noise_drop": 0.25, "noise_drop_lo": 0.2, "noise_drop_hi": 0.3,
                             "clean_accuracy": 0.7, "chance_corrected_drop": 0.3, "shape_at_chance": True,
                             "at_chance": False})

    def fake_write(model_, start_state, end_state, alpha, name, folder, batches):
        written.append((alpha, batches))
        return folder / f"alpha_{alpha:g}.pt"

    monkeypatch.setattr(interpolation, "endpoints", lambda run_, params: (last, last))
    monkeypatch.setattr(interpolation, "measure_models", fake_measure)
    monkeypatch.setattr(interpolation, "load_checkpoint_model", lambda *a, **k: create_model("tiny", seed=0))
    monkeypatch.setattr(interpolation, "training_batches", lambda params, model_: "the first batches")
    monkeypatch.setattr(interpolation, "write_interpolated", fake_write)
    params = {"alphas": (0.25, 0.5), "bn_statistics": bn_statistics, "bn_batches": 2}
    table = interpolation.measure(run, params, data=object())["interpolation"]
    if bn_statistics == "reestimate":
        assert written == [(0.0, "the first batches")] and measured == [[("alpha_0", True)]]
    else:
        assert written == [] and measured == [[("epoch_5", False)]]
    assert table["alpha"].tolist() == [0.0, 0.25, 0.5, 1.0]
    assert set(table["from_checkpoint"]) == set(table["to_checkpoint"]) == {"epoch_5"}
    assert (table["iqa_srcc"] == 0.5).all() and (table["noise_drop"] == 0.25).all()
    assert list(table.columns) == interpolation.COLUMNS and table["has_batchnorm"].all()
    assert set(table["bn_statistics"]) == {bn_statistics}
    # each model's at-chance flags, carried for the page's figures (an audit: a trend of shape biases at chance)
    assert table["shape_at_chance"].all() and not table["at_chance"].any()


def test_with_reestimated_statistics_the_ends_are_reestimated_too(tmp_path, monkeypatch):
    """An audit: the ends were the checkpoints with their trained statistics while every α between had
    re-estimated ones, so "better than both ends" compared two BatchNorm treatments (α = 1e-9 measured far
    from α = 0). Re-estimating, every α is written and re-estimated alike; interpolating, the ends are the
    run's own files."""
    start, end = Checkpoint(tmp_path / "epoch_1.pt", 1.0), Checkpoint(tmp_path / "epoch_5.pt", 5.0)
    (tmp_path / "train_params.json").write_text("{}")
    run = Run(tmp_path, "tiny", 32, [start, end], {})
    model = create_model("tiny", seed=0)
    for checkpoint in (start, end):
        torch.save({"state_dict": model.state_dict()}, checkpoint.path)
    measured, written = [], []

    def fake_measure(run_, checkpoints, params, data, scratch=None):
        measured.append([(c.path.parent == tmp_path, c.epoch) for c in checkpoints])
        return pd.DataFrame({"checkpoint": [c.name for c in checkpoints],
                             **{c: 0.5 for c in interpolation.COLUMNS[3:14]}, "shape_at_chance": False,
                             "at_chance": False})

    def fake_write(model_, start_state, end_state, alpha, name, folder, batches):
        written.append((alpha, batches is not None))
        return folder / f"alpha_{alpha:g}.pt"

    monkeypatch.setattr(interpolation, "endpoints", lambda run_, params: (start, end))
    monkeypatch.setattr(interpolation, "measure_models", fake_measure)
    monkeypatch.setattr(interpolation, "load_checkpoint_model", lambda *a, **k: create_model("tiny", seed=0))
    monkeypatch.setattr(interpolation, "training_batches", lambda params, model_: ["a batch"])
    monkeypatch.setattr(interpolation, "write_interpolated", fake_write)
    params = {"alphas": (0.5,), "bn_statistics": "reestimate", "bn_batches": 2}
    table = interpolation.measure(run, params, data=object())["interpolation"]
    assert written == [(0.0, True), (0.5, True), (1.0, True)]
    assert measured == [[(False, 0.0), (False, 0.5), (False, 1.0)]]  # all three from the scratch folder
    assert table["alpha"].tolist() == [0.0, 0.5, 1.0]
    written.clear(), measured.clear()
    table = interpolation.measure(run, {**params, "bn_statistics": "interpolate"}, data=object())["interpolation"]
    assert written == [(0.5, False)]
    assert measured == [[(True, 1.0), (True, 5.0)], [(False, 0.5)]]  # the ends: the run's own files
    assert table["alpha"].tolist() == [0.0, 0.5, 1.0]


# --- the step on a run --------------------------------------------------------------------------------

@pytest.mark.slow
def test_only_interpolation_rows_are_the_endpoints_and_the_hand_average(smoke_pipeline, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(smoke_pipeline, run_dir, ignore=shutil.ignore_patterns("book"))
    # The IQA step re-measured at another distance first: interpolation, given none, reads iqa.csv at that one.
    assert cli.main(["run", "--out", str(run_dir), "--only", "iqa", "-p", "distance=euclidean"]) == 0
    argv = ["run", "--out", str(run_dir), "--only", "interpolation", "-p", "bn_statistics=interpolate"]
    assert cli.main(argv) == 0
    assert (entry(run_dir, "interpolation").values["distance"], entry(run_dir, "interpolation").sources["distance"]) \
        == ("euclidean", "record.json")
    table = read_metric(run_dir, "interpolation")
    assert table["alpha"].tolist() == [0.0, 0.5, 1.0]
    assert set(table["bn_statistics"]) == {"interpolate"} and table["has_batchnorm"].all()
    run = discover_run(run_dir)
    params = entry(run_dir, "interpolation").params
    start, end = table["from_checkpoint"].iloc[0], table["to_checkpoint"].iloc[0]
    assert end == run.checkpoints[-1].name
    srcc = iqa_step.summary_columns(read_metric(run_dir, "iqa"), params["distance"], "iqa").set_index("checkpoint")
    assert start == srcc["iqa_srcc"].idxmax()  # from the alignment peak

    # α = 0 and 1: the endpoint checkpoints' own rows of iqa.csv, shape_bias.csv and noise.csv
    shape = read_metric(run_dir, "shape_bias").set_index("checkpoint")
    noise = noise_step.summary_columns(read_metric(run_dir, "noise"), None, "noise").set_index("checkpoint")
    for alpha, name in ((0.0, start), (1.0, end)):
        row = table[table["alpha"] == alpha].iloc[0]
        assert (row["iqa_srcc"], row["iqa_srcc_lo"], row["iqa_srcc_hi"]) == tuple(
            srcc.loc[name, ["iqa_srcc", "iqa_srcc_lo", "iqa_srcc_hi"]])
        assert (row["shape_bias"], row["shape_bias_lo"], row["shape_bias_hi"]) == tuple(
            shape.loc[name, ["shape_bias", "lo", "hi"]])
        for column in ("noise_drop", "noise_drop_lo", "noise_drop_hi"):
            assert same(row[column], noise.loc[name, column])

    # α = 0.5: a hand-averaged state_dict put through the ordinary steps
    weights = [torch.load(run_dir / "checkpoints" / f"{name}.pt", weights_only=True)["state_dict"]
               for name in (start, end)]
    averaged = {k: (weights[0][k] + weights[1][k]) / 2 if v.is_floating_point() else v
                for k, v in weights[1].items()}
    path = tmp_path / "averaged" / "epoch_0.5.pt"
    path.parent.mkdir()
    torch.save({"state_dict": averaged}, path)
    hand = Run(run_dir, run.model_name, run.image_size, [Checkpoint(path, 0.5)], run.params)
    measured = {"iqa": iqa_step.summary_columns(iqa_step.measure(hand, params)["iqa"], params["distance"], "iqa"),
                "shape": shape_step.measure(hand, params)["shape_bias"],
                "noise": noise_step.summary_columns(noise_step.measure(hand, params)["noise"], None, "noise")}
    row = table[table["alpha"] == 0.5].iloc[0]
    assert row["iqa_srcc"] == measured["iqa"]["iqa_srcc"].iloc[0]
    assert row["iqa_srcc_lo"] == measured["iqa"]["iqa_srcc_lo"].iloc[0]
    assert row["shape_bias"] == measured["shape"]["shape_bias"].iloc[0]
    assert row["clean_accuracy"] == measured["noise"]["clean_accuracy"].iloc[0]
    for column in ("noise_drop", "noise_drop_lo", "noise_drop_hi"):
        assert same(row[column], measured["noise"][column].iloc[0])
    assert not list((run_dir / "cache").glob(".interpolation-*"))  # the models between are gone
    # the page: the path in the plane beside the checkpoints', and its sentences
    executed = (run_dir / "notebooks" / "11_interpolation.ipynb").read_text()
    assert "BatchNorm running statistics interpolated like the weights" in executed
    assert (run_dir / "figures" / "interpolation_plane.png").stat().st_size > 0
