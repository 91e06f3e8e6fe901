"""Analyses under torchrun (``clipalign run --only … --nproc N``): the same tables as one process, and bad
options refused before any process starts."""
from __future__ import annotations

import os
from pathlib import Path
import shutil
import subprocess
import sys

import pytest

from clipalign_utils import cli
from clipalign_utils.errors import ParameterError
from clipalign_utils.orchestration import distributed, ranks
from clipalign_utils.orchestration.cli import _without_nproc
from clipalign_utils.orchestration.publish import PROGRESS_SEGMENT
from clipalign_utils.orchestration.pipeline import measured_steps, only_steps


@pytest.mark.parametrize("argv, message", [
    (["--nproc", "2"], "--nproc N shares out the analyses of trained checkpoints: name them with --only STEP[,STEP…] (train first without --nproc), or stream them with --checkpoints"),
    (["--only", "iqa", "--nproc", "0"], "--nproc 0: a number of processes, 1 or more"),
    (["--only", "iqa,bogus", "--nproc", "2"], "bogus"),
])
def test_bad_nproc_options_are_one_line_before_any_process(argv, message, tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(["run", "--out", str(out), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert not out.exists()


def test_what_every_rank_would_refuse_is_one_line_before_torchrun(smoke_run_copy, tmp_path, capsys, monkeypatch):
    """An audit found a bad parameter, a missing folder or --launcher under --nproc printed by each rank, glued
    together, then torchrun's traceback, exit 1 (or after every rank had measured its share)."""
    from clipalign_utils.orchestration import distributed

    monkeypatch.setattr(distributed, "launch", lambda *a, **k: pytest.fail("torchrun was started"))
    for argv, message in (
            (["--out", str(tmp_path / "none"), "--only", "iqa"], "no run there; --nproc shares out a trained run's"),
            (["--out", str(smoke_run_copy), "--only", "iqa", "-p", "distance=bogus"], "distance"),
            (["--out", str(smoke_run_copy), "--only", "iqa", "--launcher", "local"], "not with --only, --checkpoints "
                                                                                    "or --nproc")):
        assert cli.main(["run", *argv, "--nproc", "2"]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
    assert not (tmp_path / "none").exists()


def test_the_command_torchrun_runs_is_the_same_without_nproc():
    assert _without_nproc(["run", "--out", "r", "--nproc", "2", "--only", "iqa"]) == ["run", "--out", "r", "--only", "iqa"]
    assert _without_nproc(["run", "--nproc=3", "--out", "r"]) == ["run", "--out", "r"]
    assert only_steps("noise, iqa") == ["iqa", "noise"]  # registry order
    with pytest.raises(ParameterError, match=r"--only 'noise, iqa,noise' names noise twice: give each once"):
        only_steps("noise, iqa,noise")
    assert measured_steps("tradeoff,iqa") == ["iqa"]


def test_ranks_share_out_every_checkpoint_once(tmp_path, monkeypatch):
    from clipalign_utils.orchestration import measure

    measured = []
    monkeypatch.setattr(measure, "step_module", lambda step: type("M", (), {"measure": staticmethod(
        lambda run, params: measured.append((step, run.checkpoints[0].name, params["device"])))}))
    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    for epoch in (0, 1, 2, 3, 4):
        (run_dir / "checkpoints" / f"epoch_{epoch}.pt").write_bytes(b"")
    (run_dir / "train_params.json").write_text('{"model": "tiny", "seed": 0}')
    mine = {}
    for rank in (0, 1):
        measured.clear()
        env = {"rank": rank, "local_rank": rank, "world_size": 2}
        assert distributed.prefill(run_dir, ["iqa", "noise"], "smoke", {"device": "cpu"}, env) == len(measured)
        mine[rank] = measured[:]
    assert [c for s, c, _ in mine[0] if s == "iqa"] == ["epoch_0", "epoch_2", "epoch_4"]
    assert [c for s, c, _ in mine[1] if s == "iqa"] == ["epoch_1", "epoch_3"]
    assert {d for *_, d in mine[0] + mine[1]} == {"cpu"}


def _iqa_and_noise_measured_again(smoke_pipeline, run_dir, extra):
    """The pipeline's checkpoints copied with nothing embedded and without the two steps' tables, measured again
    at one thread a process; every table of the copy, {file name: bytes}."""
    shutil.copytree(smoke_pipeline, run_dir, ignore=shutil.ignore_patterns("cache", "book"))
    measured = [path for path in (run_dir / "metrics").glob("*.csv") if path.stem.startswith(("iqa", "noise"))]
    assert {"iqa.csv", "noise.csv", "iqa_peak.csv"} <= {path.name for path in measured}
    for path in measured:
        path.unlink()
    result = subprocess.run([sys.executable, "-m", "clipalign_utils.cli", "run", "--out", str(run_dir),
                             "--only", "iqa,noise", *extra], env={**os.environ, "OMP_NUM_THREADS": "1"},
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    if extra:
        assert "[rank 0/2]" in result.stdout and "[rank 1/2]" in result.stdout
        assert "checkpoint x step measurements cached" in result.stdout
    return {path.name: path.read_bytes() for path in (run_dir / "metrics").glob("*.csv")}


@pytest.mark.slow
def test_iqa_and_noise_under_torchrun_match_one_process_byte_for_byte(smoke_pipeline, tmp_path):
    """Two gloo ranks on the CPU, one thread each, as the single process: the tables are identical. Under the
    suite's workers the one process is the session's smoke pipeline, whose steps ran on one thread."""
    if os.environ.get("OMP_NUM_THREADS") == "1":
        one = {path.name: path.read_bytes() for path in (smoke_pipeline / "metrics").glob("*.csv")}
    else:  # (pytest -n 0: the pipeline ran on every core)
        one = _iqa_and_noise_measured_again(smoke_pipeline, tmp_path / "one", [])
    ranks = _iqa_and_noise_measured_again(smoke_pipeline, tmp_path / "ranks", ["--nproc", "2"])
    assert ranks.keys() == one.keys()
    for name, content in one.items():
        assert ranks[name] == content, name


@pytest.mark.slow
def test_a_rank_that_fails_is_its_own_line_and_exit_status_not_torchrun_s_report(smoke_run_copy, tmp_path):
    """A damaged image found by the ranks mid-step (the folder's index passes the check before torchrun):
    one line, though both ranks met it, exit status 2, and none of torchrun's traceback, ChildFailedError
    summary or log lines after it (they buried the line, and the command exited 1)."""
    from pathlib import Path

    from fixtures_real import make_tid2013

    root = make_tid2013(tmp_path / "tid2013")
    damaged = sorted(Path(root, "distorted_images").iterdir())[3]
    damaged.write_bytes(damaged.read_bytes()[:100])
    result = subprocess.run([sys.executable, "-m", "clipalign_utils.cli", "run", "--out", str(smoke_run_copy),
                             "--only", "iqa", "--nproc", "2", "-p", "iqa_dataset=tid2013", "-p", f"iqa_root={root}"],
                            env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=600)
    assert result.returncode == 2, result.stderr[-3000:]
    assert result.stderr.strip().splitlines() == [f"clipalign: error: {damaged} is not a readable image (OSError): "
                                                  f"replace it with the release's copy of the file"], result.stderr[-3000:]


@pytest.mark.slow
def test_a_rank_whose_share_fails_or_that_is_killed_is_said_once_and_first(smoke_run_copy, tmp_path):
    """Rank 1's checkpoint damaged: its line alone (rank 0's "another rank stopped … its error is above" came
    first, above nothing). Rank 1 killed outright (the OOM killer's SIGKILL): a line says so, where the command
    ended with nothing said (a review)."""
    checkpoints = sorted((smoke_run_copy / "checkpoints").glob("epoch_*.pt"), key=lambda p: float(p.stem[6:]))
    damaged = checkpoints[1::2][-1]  # in rank 1's share
    data = damaged.read_bytes()
    damaged.unlink()  # (hard-linked to the shared run's)
    damaged.write_bytes(data[:1000])
    command = [sys.executable, "-m", "clipalign_utils.cli", "run", "--out", str(smoke_run_copy), "--only", "iqa",
               "--nproc", "2"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    lines = [line for line in result.stderr.strip().splitlines() if not PROGRESS_SEGMENT.search(line)]
    assert result.returncode == 2 and len(lines) == 1, result.stderr[-3000:]
    assert lines[0].startswith(f"clipalign: error: checkpoint {damaged} could not be loaded")

    damaged.unlink()
    damaged.write_bytes(data)
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text("import os, signal\nif os.environ.get('RANK') == '1':\n"
                                           "    os.kill(os.getpid(), signal.SIGKILL)\n")
    paths = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH", "")]))
    result = subprocess.run(command, env={**env, "PYTHONPATH": paths}, capture_output=True, text=True, timeout=600)
    assert result.returncode == 137, result.stderr[-3000:]
    assert [line for line in result.stderr.strip().splitlines() if not PROGRESS_SEGMENT.search(line)] == [
        "clipalign: error: rank 1 was killed by SIGKILL (out of memory? fewer checkpoints a rank, or -p eval_batch_size "
        "lower); the steps it ran left the runs as they were; the same command carries on"], result.stderr[-3000:]
    # SIGTERM to rank 1 alone, a few seconds in (at its imports or in its share): it is named, not "another rank
    # stopped … its error is above" with nothing above it (a review)
    (site / "sitecustomize.py").write_text(
        "import os, signal, threading, time\nif os.environ.get('RANK') == '1':\n"
        "    threading.Thread(target=lambda: (time.sleep(3), os.kill(os.getpid(), signal.SIGTERM)), daemon=True).start()\n")
    result = subprocess.run(command, env={**env, "PYTHONPATH": paths}, capture_output=True, text=True, timeout=600)
    lines = [line for line in result.stderr.strip().splitlines() if not PROGRESS_SEGMENT.search(line)]
    # (once in a loaded run the rank ended by SIGINT, Python's way out of an interrupt it did not catch: a window
    # not found; the line still names the rank and its signal)
    assert result.returncode in (130, 143) and len(lines) == 1, result.stderr[-3000:]
    assert lines[0].startswith("clipalign: error: rank 1 was ") and "(a signal from outside the command)" in lines[0]


def test_the_launcher_says_the_ranks_errors_once_else_the_first_stopped_rank_else_the_knock_on(tmp_path):
    (tmp_path / "rank1.after").write_text("rank 1: another rank stopped")
    assert ranks.what_ranks_said(tmp_path) == ["rank 1: another rank stopped"]
    (tmp_path / "rank0.stopped").write_text("rank 0 was stopped by SIGTERM")
    (tmp_path / "rank2.stopped").write_text("rank 2 was stopped by SIGTERM")
    assert ranks.what_ranks_said(tmp_path) == ["rank 0 was stopped by SIGTERM", "rank 2 was stopped by SIGTERM"]
    (tmp_path / "first").write_text("2")  # torchrun stopped rank 0 after rank 2 ended
    assert ranks.what_ranks_said(tmp_path) == ["rank 2 was stopped by SIGTERM"]
    for rank in (10, 3):
        (tmp_path / f"rank{rank}.error").write_text("a damaged file")
    (tmp_path / "rank4.error").write_text("another error")
    assert ranks.what_ranks_said(tmp_path) == ["a damaged file", "another error"]


def test_the_launcher_keeps_torchrun_s_log_folder_inside_its_own_which_it_removes(monkeypatch, tmp_path):
    """Each --nproc command left an empty /tmp/torchelastic_* folder behind (a hundred after a session)."""
    import tempfile

    started = []

    class Finished:
        def __init__(self, command, env):
            started.append((command, env))

        def wait(self):
            return 0

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(distributed.subprocess, "Popen", Finished)
    assert distributed.launch(["run", "--out", "R", "--only", "iqa"], 2) == 0
    (command, env), = started
    log_dir = command[command.index("--log-dir") + 1]
    assert log_dir == str(Path(env[ranks.LAUNCHED]) / "torchrun") and command.index("--log-dir") < command.index("-m", 3)
    assert not any(tmp_path.iterdir())  # the launcher's folder, torchrun's logs inside it, removed


def test_ranks_share_out_every_run_of_a_folder_of_runs(tmp_path, monkeypatch):
    """Mutation audit: on a folder of runs each rank takes every world_size-th checkpoint of each run."""
    from clipalign_utils.orchestration import measure

    measured = []
    monkeypatch.setattr(measure, "step_module", lambda step: type("M", (), {"measure": staticmethod(
        lambda run, params: measured.append((run.checkpoints[0].path.parent.parent.name, run.checkpoints[0].name)))}))
    for seed, epochs in ((0, 3), (1, 4)):
        run_dir = tmp_path / f"tiny-seed{seed}"
        (run_dir / "checkpoints").mkdir(parents=True)
        for epoch in range(epochs):
            (run_dir / "checkpoints" / f"epoch_{epoch}.pt").write_bytes(b"")
        (run_dir / "train_params.json").write_text(f'{{"model": "tiny", "seed": {seed}}}')
    shares = {}
    for rank in (0, 1):
        measured.clear()
        assert distributed.prefill(tmp_path, ["iqa"], "smoke", {"device": "cpu"},
                                   {"rank": rank, "local_rank": rank, "world_size": 2}) == len(measured)
        shares[rank] = measured[:]
    assert shares[0] == [("tiny-seed0", "epoch_0"), ("tiny-seed0", "epoch_2"), ("tiny-seed1", "epoch_0"),
                         ("tiny-seed1", "epoch_2")]
    assert shares[1] == [("tiny-seed0", "epoch_1"), ("tiny-seed1", "epoch_1"), ("tiny-seed1", "epoch_3")]


def test_only_rank_0_finishes_after_the_barrier(monkeypatch, tmp_path):
    """Mutation audit: every rank fills its share and meets the barrier; rank 0 alone runs the ordinary command
    (the tables and pages), the others return 0."""
    import torch
    import torch.distributed as dist

    events = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(dist, "init_process_group", lambda *a, **k: events.append("init"))
    monkeypatch.setattr(dist, "barrier", lambda: events.append("barrier"))
    monkeypatch.setattr(dist, "destroy_process_group", lambda: events.append("destroy"))
    monkeypatch.setattr(distributed, "prefill", lambda out, steps, preset, given, env, progress:
                        events.append(("prefill", env["rank"])) or 0)
    for rank in (0, 1, 2):
        events.clear()
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("LOCAL_RANK", str(rank))
        monkeypatch.setenv("WORLD_SIZE", "3")
        status = distributed.run_ranks(tmp_path, "iqa", "smoke", {}, lambda: events.append("finish") or 7)
        assert status == (7 if rank == 0 else 0)
        assert events == ["init", ("prefill", rank), "barrier"] + (["finish"] if rank == 0 else []) + ["destroy"]


def test_torchrun_env_is_several_processes_only(monkeypatch):
    for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    assert ranks.torchrun_env() is None
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "1")  # torchrun --nproc_per_node 1: one process, no ranks
    assert ranks.torchrun_env() is None
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert ranks.torchrun_env() == {"rank": 1, "local_rank": 0, "world_size": 2}


def test_the_ranks_errors_are_said_in_rank_order_by_number(tmp_path):
    (tmp_path / "rank10.error").write_text("rank 10's error")
    (tmp_path / "rank2.error").write_text("rank 2's error")
    assert ranks.what_ranks_said(tmp_path) == ["rank 2's error", "rank 10's error"]
