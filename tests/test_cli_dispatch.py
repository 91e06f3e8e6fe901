"""What ``clipalign`` calls for each command, in-process, the expensive parts (training, sweeps, experiments,
the book, torchrun) replaced: which function is called with which arguments, the book at the end only when
asked, --nproc's checks and its ranks' share, and the one line and exit status of a refusal, a full disk or an
interruption (an audit of the lines the fast tests never ran)."""
from __future__ import annotations

import errno
import json
import os
import runpy
import signal
import sys
import warnings
from pathlib import Path

import pytest

from clipalign_utils import cli
from clipalign_utils.config import SWEEP_PRESETS
from clipalign_utils.orchestration import cli as orchestration_cli
from clipalign_utils.orchestration import distributed
from clipalign_utils.orchestration.ranks import LAUNCHED, OtherRankStopped

RANK_VARIABLES = ("RANK", "LOCAL_RANK", "WORLD_SIZE")


@pytest.fixture
def calls(monkeypatch, tmp_path):
    """Every expensive function the CLI dispatches to, recording (name, args, kwargs) in order."""
    made = []

    def recorder(name, result=None):
        def record(*args, **kwargs):
            made.append((name, args, kwargs))
            return result(*args) if callable(result) else result
        return record

    for name in RANK_VARIABLES + (LAUNCHED,):
        monkeypatch.delenv(name, raising=False)
    out_of = lambda out, *rest: Path(out)  # noqa: E731
    for target, result in (("multirun.run_many", out_of), ("multirun.link_base_run", None),
                           ("multirun.rerun_step", None), ("sweep.run_sweep", out_of),
                           ("experiment.run_experiment", out_of), ("pipeline.run_pipeline", out_of),
                           ("stream.run_streamed", out_of), ("book.build_book", lambda folder: Path(folder) / "html"),
                           ("distributed.launch", 0), ("distributed.run_ranks", 0)):
        monkeypatch.setattr(f"clipalign_utils.orchestration.{target}", recorder(target.split(".")[1], result))
    return made


def names(calls):
    return [name for name, *_ in calls]


def one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err


def test_a_preset_other_than_the_one_a_run_recorded_is_refused(calls, tmp_path, capsys):
    # another preset's values for an existing run's steps would mix two presets in one run
    out = tmp_path / "run"
    out.mkdir()
    (out / "record.json").write_text(json.dumps({"preset": "smoke", "steps": {}}))
    assert cli.main(["run", "--preset", "default", "--out", str(out), "--only", "iqa"]) == 2
    assert one_line(capsys).startswith(f"clipalign: error: --preset default: {out} was made with --preset smoke")
    assert calls == [] and sorted(p.name for p in out.iterdir()) == ["record.json"]
    assert cli.main(["run", "--preset", "smoke", "--out", str(out), "--only", "iqa", "--no-book"]) == 0  # its own


def _folder_of_runs(folder: Path) -> Path:
    for seed in (0, 1):
        run_dir = folder / f"tiny-seed{seed}"
        (run_dir / "checkpoints").mkdir(parents=True)
        (run_dir / "checkpoints" / "epoch_0.pt").write_bytes(b"")
        (run_dir / "train_params.json").write_text(f'{{"model": "tiny", "seed": {seed}}}')
    return folder


def test_nproc_checks_each_run_s_measured_steps_then_launches_torchrun_without_nproc(calls, tmp_path, monkeypatch):
    # every rank would find the same bad parameter: each run's steps are resolved once, before torchrun
    from clipalign_utils.orchestration import pipeline

    checked = []
    monkeypatch.setattr(pipeline, "for_step", lambda run_dir, step, resolved: checked.append((run_dir.name, step)))
    out = _folder_of_runs(tmp_path / "runs")
    argv = ["run", "--out", str(out), "--only", "tradeoff,noise,iqa", "--nproc", "2", "-p", "eval_batch_size=8"]
    assert cli.main(argv) == 0
    assert checked == [("tiny-seed0", "iqa"), ("tiny-seed0", "noise"), ("tiny-seed1", "iqa"), ("tiny-seed1", "noise")]
    assert calls == [("launch", (["run", "--out", str(out), "--only", "tradeoff,noise,iqa", "-p", "eval_batch_size=8"],
                                 2), {})]
    checked.clear()
    calls.clear()
    single = _folder_of_runs(tmp_path / "single") / "tiny-seed0"  # one run: the run itself
    assert cli.main(["run", "--out", str(single), "--only", "iqa", "--nproc=3"]) == 0
    assert checked == [("tiny-seed0", "iqa")] and calls == [("launch", (["run", "--out", str(single), "--only", "iqa"],
                                                                        3), {})]


def test_nproc_with_checkpoints_launches_without_a_run_there_and_one_process_runs_no_torchrun(calls, tmp_path):
    # a trajectory's ranks fetch their own checkpoints: no run needs to exist; --nproc 1 is the ordinary command
    out = tmp_path / "traj"
    assert cli.main(["run", "--out", str(out), "--checkpoints", "src", "--nproc", "2"]) == 0
    assert calls == [("launch", (["run", "--out", str(out), "--checkpoints", "src"], 2), {})]
    assert not out.exists()
    calls.clear()
    assert cli.main(["run", "--out", str(out), "--checkpoints", "src", "--nproc", "1"]) == 0
    assert names(calls) == ["run_streamed"]


def test_nproc_on_a_file_is_one_line_before_torchrun(calls, tmp_path, capsys):
    out = tmp_path / "file"
    out.write_text("x")
    assert cli.main(["run", "--out", str(out), "--only", "iqa", "--nproc", "2"]) == 2
    assert one_line(capsys).startswith(f"clipalign: error: --out {out}: {out} is a file")
    assert calls == []


def _as_rank(monkeypatch, rank, world=2):
    monkeypatch.setenv("RANK", str(rank))
    monkeypatch.setenv("LOCAL_RANK", str(rank))
    monkeypatch.setenv("WORLD_SIZE", str(world))


def test_a_rank_gets_the_command_s_options_and_rank_0_finishes_with_the_ordinary_command(calls, tmp_path, monkeypatch,
                                                                                         capsys):
    # under torchrun each rank takes its share (run_ranks); rank 0's finish is the ordinary command, not run_ranks again
    _as_rank(monkeypatch, 0)
    out = tmp_path / "traj"
    argv = ["run", "--out", str(out), "--checkpoints", "src", "--at-epochs", "1,2", "--keep-weights", "all",
            "-p", "eval_batch_size=8"]
    finishing = []

    def run_ranks(out_, only, preset, given, finish, stream=None):
        calls.append(("run_ranks", (out_, only, preset, given), {"stream": stream}))
        finishing.append(orchestration_cli._RANK_ZERO_FINISHING)
        status = finish()
        finishing.append(orchestration_cli._RANK_ZERO_FINISHING)
        return status

    monkeypatch.setattr(distributed, "run_ranks", run_ranks)
    assert cli.main(argv) == 0
    assert calls == [
        ("run_ranks", (str(out), None, None, {"eval_batch_size": "8"}),
         {"stream": {"spec": "src", "at_epochs": "1,2", "keep_weights": "all"}}),
        ("run_streamed", (str(out), "src", "1,2", "all", None, "default", {"eval_batch_size": "8"}),
         {"progress": False})]
    assert finishing == [False, False] and not orchestration_cli._RANK_ZERO_FINISHING
    assert capsys.readouterr().out == f"analysed: {out}\nbook: clipalign book {out}\n"


def test_a_rank_of_a_step_s_rerun_shares_checkpoints_not_a_stream(calls, tmp_path, monkeypatch):
    _as_rank(monkeypatch, 1)
    out = tmp_path / "run"
    assert cli.main(["run", "--preset", "smoke", "--out", str(out), "--only", "iqa"]) == 0
    (name, args, kwargs), = calls
    assert (name, args, kwargs["stream"]) == ("run_ranks", (str(out), "iqa", "smoke", {}), None)


def test_a_full_disk_is_one_line_and_another_os_error_is_not_hidden(calls, tmp_path, monkeypatch, capsys):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "run" / "metrics"))

    monkeypatch.setattr("clipalign_utils.orchestration.pipeline.run_pipeline", full)
    argv = ["run", "--preset", "smoke", "--out", str(tmp_path / "run")]
    assert cli.main(argv) == 2
    assert one_line(capsys).startswith(f"clipalign: error: no space left on the disk ({tmp_path / 'run' / 'metrics'}):")

    def broken(*args, **kwargs):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr("clipalign_utils.orchestration.pipeline.run_pipeline", broken)
    with pytest.raises(OSError, match="Input/output error"):  # a bug's own traceback, not a made-up line
        cli.main(argv)


@pytest.mark.parametrize("stop, status", [(lambda: (_ for _ in ()).throw(KeyboardInterrupt), 130),
                                          (lambda: os.kill(os.getpid(), signal.SIGTERM), 143)])
def test_an_interrupted_rank_leaves_its_line_to_the_launcher(stop, status, calls, tmp_path, monkeypatch, capsys):
    # each rank saying it would print it N times: the launcher says it once
    _as_rank(monkeypatch, 1)
    monkeypatch.setenv(LAUNCHED, str(tmp_path))

    def run_ranks(*args, **kwargs):
        stop()
        import time
        time.sleep(5)  # (SIGTERM's handler raises here)

    monkeypatch.setattr(distributed, "run_ranks", run_ranks)
    assert cli.main(["run", "--out", str(tmp_path / "run"), "--only", "iqa"]) == status
    assert capsys.readouterr().err == ""
    how = "interrupted" if status == 130 else "stopped by SIGTERM"
    assert (tmp_path / "rank1.stopped").read_text().startswith(f"rank 1 was {how} (a signal from outside the command)")


def test_an_interrupted_launcher_command_says_its_jobs_keep_running(calls, tmp_path, monkeypatch, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("clipalign_utils.orchestration.launch.sweep_on", interrupted)
    out = tmp_path / "sweep"
    argv = ["sweep", "--preset", "smoke", "--out", str(out), "-p", "lr=0.001,0.002", "--launcher", "local"]
    assert cli.main(argv) == 130
    assert one_line(capsys).startswith("clipalign: interrupted: any jobs it had submitted keep running (their logs are "
                                       "in --out's jobs/)")


def test_checkpoints_with_seeds_and_only_with_seeds_are_refused_before_a_folder(calls, tmp_path, capsys):
    out = tmp_path / "run"
    for extra, message in ((["--checkpoints", "src", "--seeds", "0", "1"],
                            "--checkpoints analyses one trajectory: not with --seeds/--scales"),
                           (["--only", "iqa", "--scales", "tiny"], "--only runs one step of one run: use it on "
                                                                    "OUT/<scale>-seed<k>, not with --seeds/--scales")):
        assert cli.main(["run", "--preset", "smoke", "--out", str(out), *extra]) == 2
        assert one_line(capsys) == f"clipalign: error: {message}\n"
    assert calls == [] and not out.exists()


def test_a_streamed_trajectory_prints_its_folder_and_the_command_that_builds_its_book(calls, tmp_path, capsys):
    """A review: the command ended with "analysed: RUN" and no book while --help's --no-book ("skip building the
    book") implied one; a streamed run is measured, not built (_ends_with_book): it names the next step."""
    out = tmp_path / "traj"
    assert cli.main(["run", "--preset", "smoke", "--out", str(out), "--checkpoints", "src", "--only", "iqa"]) == 0
    assert calls == [("run_streamed", (str(out), "src", None, None, "iqa", "smoke", {}), {"progress": False})]
    assert capsys.readouterr().out == f"analysed: {out}\nbook: clipalign book {out}\n"
    calls.clear()
    assert cli.main(["run", "--out", str(out), "--checkpoints", "src", "--no-book"]) == 0
    assert names(calls) == ["run_streamed"] and capsys.readouterr().out == f"analysed: {out}\n"
    with pytest.raises(SystemExit):
        cli.main(["run", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert ("skip building the book (built at the end of a whole run, of --seeds/--scales and of a multi-run preset; "
            "--only and --checkpoints build none: clipalign book OUT does)") in shown


def test_the_full_preset_runs_its_runs_links_the_base_run_sweeps_its_drivers_runs_its_experiment_then_the_book(
        calls, tmp_path, capsys):
    out = tmp_path / "full"
    assert cli.main(["run", "--preset", "full", "--out", str(out), "-p", "eval_batch_size=8"]) == 0
    given = {"eval_batch_size": "8"}
    assert calls == [
        ("run_many", (str(out), "full", [0, 1, 2], ["tiny", "small"], given), {"progress": False}),
        ("link_base_run", (out, "full", given), {}),
        ("run_sweep", (out / "drivers", "full", {**SWEEP_PRESETS["full"], **given}),
         {"one_at_a_time": True, "progress": False}),
        ("run_experiment", (out / "quality", "quality", "full", given), {"progress": False}),
        ("build_book", (out,), {})]
    assert capsys.readouterr().out == f"book: {out / 'html' / 'index.html'}\n"
    calls.clear()
    assert cli.main(["run", "--preset", "full", "--out", str(out), "--no-book"]) == 0
    assert names(calls) == ["run_many", "link_base_run", "run_sweep", "run_experiment"]
    calls.clear()
    # default: its seeds, no drivers sweep, no experiment
    assert cli.main(["run", "--preset", "default", "--out", str(tmp_path / "default")]) == 0
    assert names(calls) == ["run_many", "build_book"]


def test_the_full_preset_refuses_one_value_for_a_driver_its_sweep_varies(calls, tmp_path, capsys):
    # (so the drivers sweep's values and the -p values never share a name: their merge's order cannot matter)
    out = tmp_path / "full"
    assert cli.main(["run", "--preset", "full", "--out", str(out), "-p", "epochs=3"]) == 2
    assert one_line(capsys).startswith("clipalign: error: -p epochs: the full preset's drivers sweep varies it (12,24)")
    assert calls == [] and not out.exists()


def test_experiment_runs_the_named_sweeps_then_the_book_only_when_asked(calls, tmp_path):
    out = tmp_path / "exp"
    argv = ["experiment", "quality", "--preset", "smoke", "--out", str(out)]
    assert cli.main(argv + ["--only-sweeps", "variation"]) == 0
    assert calls == [("run_experiment", (str(out), "quality", "smoke", {}, ["variation"]), {"progress": False}),
                     ("build_book", (out,), {})]
    calls.clear()
    assert cli.main(argv + ["--no-book"]) == 0
    assert calls == [("run_experiment", (str(out), "quality", "smoke", {}, None), {"progress": False})]


def test_experiment_with_a_launcher_compares_only_once_its_jobs_are_finished(calls, tmp_path, monkeypatch):
    finished = []
    monkeypatch.setattr("clipalign_utils.orchestration.launch.experiment_on",
                        lambda *args, **kwargs: calls.append(("experiment_on", args[1:], kwargs)) or finished)
    out = tmp_path / "exp"
    argv = ["experiment", "quality", "--preset", "smoke", "--out", str(out), "-p", "epochs=2", "--launcher", "local",
            "--only-sweeps", "partial,variation"]
    assert cli.main(argv) == 0
    assert calls == [("experiment_on", (str(out), "quality", "smoke", {"epochs": "2"}, ["partial", "variation"]),
                      {"progress": False})]
    calls.clear()
    finished.append(True)
    assert cli.main(argv) == 0
    assert names(calls) == ["experiment_on", "run_experiment", "build_book"]
    assert calls[1][1] == (str(out), "quality", "smoke", {"epochs": "2"}, ["partial", "variation"])


def test_a_sweep_and_a_run_build_their_book_at_the_end_unless_no_book(calls, tmp_path, capsys):
    sweep = tmp_path / "sweep"
    assert cli.main(["sweep", "--preset", "smoke", "--out", str(sweep), "-p", "lr=0.001,0.002"]) == 0
    assert calls == [("run_sweep", (str(sweep), "smoke", {"lr": "0.001,0.002"}, False), {"progress": False}),
                     ("build_book", (sweep,), {})]
    assert capsys.readouterr().out == f"book: {sweep / 'html' / 'index.html'}\n"
    run = tmp_path / "run"
    for extra, expected in (([], ["run_pipeline", "build_book"]), (["--no-book"], ["run_pipeline"]),
                            (["--only", "iqa"], ["run_pipeline"])):
        calls.clear()
        assert cli.main(["run", "--preset", "smoke", "--out", str(run), *extra]) == 0
        assert names(calls) == expected
        assert calls[0][1] == (str(run), "smoke", "iqa" if extra == ["--only", "iqa"] else None, {})
    calls.clear()
    assert cli.main(["sweep", "--preset", "smoke", "--out", str(sweep), "-p", "lr=0.001,0.002", "--no-book"]) == 0
    assert names(calls) == ["run_sweep"]


def test_book_builds_the_folder_it_is_given(calls, tmp_path, capsys):
    assert cli.main(["book", str(tmp_path)]) == 0
    assert calls == [("build_book", (str(tmp_path),), {})]
    assert capsys.readouterr().out == f"book: {tmp_path / 'html' / 'index.html'}\n"


def test_the_module_run_as_a_script_exits_with_main_s_status(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["clipalign", "book", str(tmp_path / "none")])
    with warnings.catch_warnings(), pytest.raises(SystemExit) as exit_:
        warnings.simplefilter("ignore", RuntimeWarning)  # (runpy: the module is imported already)
        runpy.run_module("clipalign_utils.orchestration.cli", run_name="__main__")
    assert exit_.value.code == 2
    assert one_line(capsys).startswith(f"clipalign: error: clipalign book {tmp_path / 'none'}: no such folder")


# distributed: the launcher and a rank's share

class _Torchrun:
    """subprocess.Popen's stand-in for the launcher's torchrun: its wait() runs ``waits`` one after another."""

    def __init__(self, waits, events):
        self.waits, self.events = list(waits), events

    def __call__(self, command, env):
        self.env = env
        return self

    def wait(self):
        self.events.append("wait")
        return self.waits.pop(0)(self.env)

    def terminate(self):
        self.events.append("terminate")


def test_ctrl_c_in_the_launcher_stops_torchrun_and_waits_for_it(monkeypatch, tmp_path):
    # torchrun is stopped and awaited (its ranks put their steps back) before the launcher's own interruption
    import tempfile

    def interrupted(env):
        raise KeyboardInterrupt

    events = []
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(distributed.subprocess, "Popen", _Torchrun([interrupted, lambda env: 130], events))
    with pytest.raises(KeyboardInterrupt):
        distributed.launch(["run", "--out", "R", "--only", "iqa"], 2)
    assert events == ["wait", "terminate", "wait"] and not any(tmp_path.iterdir())


def test_the_launcher_says_each_rank_s_error_once_with_torchrun_s_status(monkeypatch, capsys):
    def failed(env):
        for rank in (0, 1):
            Path(env[LAUNCHED], f"rank{rank}.error").write_text("a damaged file")
        return 2

    monkeypatch.setattr(distributed.subprocess, "Popen", _Torchrun([failed], []))
    assert distributed.launch(["run", "--out", "R", "--only", "iqa"], 2) == 2
    assert capsys.readouterr().err == "clipalign: error: a damaged file\n"


def _gloo(monkeypatch, events, barrier=None):
    import torch.distributed as dist

    monkeypatch.setattr(dist, "init_process_group", lambda *a, **k: events.append("init"))
    monkeypatch.setattr(dist, "barrier", barrier or (lambda: events.append("barrier")))
    monkeypatch.setattr(dist, "destroy_process_group", lambda: events.append("destroy"))


def test_a_rank_computes_on_its_own_gpu(monkeypatch, tmp_path):
    import torch

    events = []
    _gloo(monkeypatch, events)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: events.append(("cuda", device)))
    monkeypatch.setattr(distributed, "prefill", lambda *args: 0)
    for local in (1, 3):  # its node's LOCAL_RANK, not the global RANK (LOCAL_RANK 3 with 2 GPUs: the second)
        events.clear()
        monkeypatch.setenv("RANK", "4")
        monkeypatch.setenv("LOCAL_RANK", str(local))
        monkeypatch.setenv("WORLD_SIZE", "8")
        assert distributed.run_ranks(tmp_path, "iqa", "smoke", {}, lambda: 7) == 0
        assert events[0] == ("cuda", 1)


def test_a_streamed_rank_fetches_and_measures_its_own_share_of_the_trajectory(monkeypatch, tmp_path, capsys):
    import torch

    events = []
    _gloo(monkeypatch, events)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(distributed, "prefill", lambda *args: pytest.fail("a stream's rank prefilled a run"))
    monkeypatch.setattr("clipalign_utils.orchestration.stream.run_streamed",
                        lambda *args, **kwargs: events.append(("streamed", args, kwargs)))
    _as_rank(monkeypatch, 1, world=3)
    stream = {"spec": "src", "at_epochs": "1,2", "keep_weights": None}
    assert distributed.run_ranks(tmp_path, "iqa", "smoke", {"device": "cpu"}, lambda: 7, stream=stream) == 0
    options = {"only": "iqa", "preset": "smoke", "overrides": {"device": "cpu"}, "progress": False, "share": (1, 3)}
    assert events == ["init", ("streamed", (tmp_path,), {**options, **stream}), "barrier", "destroy"]
    assert capsys.readouterr().out == "[rank 1/3] every 3-th checkpoint from 1 fetched, measured and cached\n"


def test_a_rank_whose_partner_stopped_says_one_knock_on_line_not_gloo_s_traceback(monkeypatch, tmp_path):
    import torch

    def barrier():
        raise RuntimeError("Connection closed by peer")

    events = []
    _gloo(monkeypatch, events, barrier)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(distributed, "prefill", lambda *args: 0)
    _as_rank(monkeypatch, 0)
    with pytest.raises(OtherRankStopped, match=r"^rank 0: another rank stopped before its share was done \(its error "
                                                r"is above\); nothing was finished$") as raised:
        distributed.run_ranks(tmp_path, "iqa", "smoke", {}, lambda: events.append("finish"))
    assert raised.value.__cause__ is None and raised.value.__suppress_context__
    assert events == ["init", "destroy"]  # nothing finished; the group destroyed
