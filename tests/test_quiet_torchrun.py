"""The launcher's torchrun (``distributed.quiet_torchrun``) in-process, torchrun's own run() replaced: the exit
status and the one line it leaves for a failed or killed rank, and its status when itself interrupted."""
from __future__ import annotations

import signal

import pytest
import torch.distributed.run as torch_run
from torch.distributed.elastic.multiprocessing.api import SignalException
from torch.distributed.elastic.multiprocessing.errors import ChildFailedError, ProcessFailure

from clipalign_utils.orchestration import distributed
from clipalign_utils.orchestration.ranks import LAUNCHED

ARGV = ["--standalone", "--nproc_per_node", "2", "-m", "clipalign_utils.cli", "run"]


def _torchrun_raising(monkeypatch, error):
    def run(args):
        assert args.nproc_per_node == "2" and args.training_script == "clipalign_utils.cli"  # torchrun's own parser
        if error is not None:
            raise error
    monkeypatch.setattr(torch_run, "run", run)


def _failed(rank, exitcode):
    failure = ProcessFailure(local_rank=rank, pid=1234, exitcode=exitcode, error_file="/nonexistent")
    return ChildFailedError("clipalign_utils.cli", {rank: failure})


def test_every_rank_done_is_status_0(monkeypatch):
    _torchrun_raising(monkeypatch, None)
    assert distributed.quiet_torchrun(ARGV) == 0


def test_a_rank_that_said_why_gives_its_own_status_and_is_named_first(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv(LAUNCHED, str(tmp_path))
    _torchrun_raising(monkeypatch, _failed(1, 2))
    assert distributed.quiet_torchrun(ARGV) == 2
    assert (tmp_path / "first").read_text() == "1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["first"]  # its own line was its own to write
    assert capsys.readouterr().err == ""


def test_a_rank_killed_out_of_memory_is_one_line_for_the_launcher(monkeypatch, tmp_path, capsys):
    """SIGKILL (the OOM killer most often): the rank said nothing, so the launcher is told why, and 128+9."""
    monkeypatch.setenv(LAUNCHED, str(tmp_path))
    _torchrun_raising(monkeypatch, _failed(0, -signal.SIGKILL))
    assert distributed.quiet_torchrun(ARGV) == 137
    assert (tmp_path / "rank0.error").read_text() == (
        "rank 0 was killed by SIGKILL (out of memory? fewer checkpoints a rank, or -p eval_batch_size lower); the "
        "steps it ran left the runs as they were; the same command carries on")
    assert capsys.readouterr().err == ""


def test_a_rank_killed_from_outside_under_torchrun_by_hand_is_said_on_stderr(monkeypatch, capsys):
    monkeypatch.delenv(LAUNCHED, raising=False)
    _torchrun_raising(monkeypatch, _failed(1, -signal.SIGTERM))
    assert distributed.quiet_torchrun(ARGV) == 143
    assert capsys.readouterr().err == ("clipalign: error: rank 1 was killed by SIGTERM (a signal from outside the "
                                       "command); the steps it ran left the runs as they were; the same command "
                                       "carries on\n")


@pytest.mark.parametrize("sigval, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_the_launcher_interrupted_or_stopped_is_130_or_143(monkeypatch, sigval, status):
    _torchrun_raising(monkeypatch, SignalException("stopped", sigval))
    assert distributed.quiet_torchrun(ARGV) == status


def test_clipalign_run_under_torchrun_without_steps_to_share_is_refused(monkeypatch, tmp_path, capsys):
    """A rank of a torchrun started by hand needs --only or --checkpoints to share out: one line, status 2,
    nothing written."""
    from clipalign_utils.orchestration import cli

    monkeypatch.setattr(distributed, "torchrun_env", lambda: {"rank": 1, "local_rank": 1, "world_size": 2})
    from clipalign_utils.orchestration import pipeline

    monkeypatch.setattr(distributed, "run_ranks", lambda *a, **k: pytest.fail("ranks ran"))
    monkeypatch.setattr(pipeline, "run_pipeline", lambda *a, **k: pytest.fail("the pipeline ran"))
    assert cli.main(["run", "--out", str(tmp_path / "r"), "--no-book"]) == 2
    assert capsys.readouterr().err == ("clipalign: error: under torchrun, clipalign run shares out the checkpoints of "
                                       "--only STEP[,STEP…] or of --checkpoints SOURCE: name one\n")
    assert list(tmp_path.iterdir()) == []
