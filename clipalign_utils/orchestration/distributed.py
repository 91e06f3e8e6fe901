"""Analyses under torchrun: the ranks share out the expensive part, rank 0 measures and renders.

    torchrun --standalone --nproc_per_node N -m clipalign_utils.cli run --out DIR --only STEP[,STEP…]
    clipalign run --out DIR --only STEP[,STEP…] --nproc N          (launches the same)

Each rank takes every N-th checkpoint of each run (a run, or every run of a folder of runs) and measures
each step on that checkpoint alone, as a streamed trajectory does: the tables are dropped, the
embeddings and maps stay in the run's cache. After a barrier rank 0 runs the ordinary command, whose
steps find every checkpoint's embeddings cached and compute what needs all checkpoints together (the
paired peak tests, trends, the synthesis) and execute the pages. A rank computes on ``cuda:LOCAL_RANK``
where there are GPUs, else on the CPU with the machine's threads divided among the ranks.
"""
from __future__ import annotations

import dataclasses
import datetime
import os
import subprocess
import sys
from pathlib import Path
from typing import Mapping, Sequence

from .. import record
from ..cores import threads_per_process
from ..errors import ParameterError
from .ranks import LAUNCHED, OtherRankStopped, tell_launcher, torchrun_env, what_ranks_said


def check_nproc(nproc: int | None, only: str | None, checkpoints: str | None = None) -> None:
    """``--nproc`` goes with ``--only`` on an existing run or folder of runs (the ranks share out its
    checkpoints), or with ``--checkpoints`` (each rank fetches its own); one line, before anything runs."""
    if nproc is None:
        return
    if nproc < 1:
        raise ParameterError(f"--nproc {nproc}: a number of processes, 1 or more")
    if not only and not checkpoints:
        raise ParameterError("--nproc N shares out the analyses of trained checkpoints: name them with "
                             "--only STEP[,STEP…] (train first without --nproc), or stream them with --checkpoints")


def launch(argv: Sequence[str], nproc: int) -> int:
    """Run ``clipalign`` with ``argv`` (without --nproc) under torchrun with ``nproc`` processes on this
    machine (through :func:`quiet_torchrun`); return its exit status: a rank's own (2 for an error it said in
    one line) where one failed."""
    import tempfile

    threads = str(threads_per_process(nproc))
    with tempfile.TemporaryDirectory(prefix="clipalign-ranks-") as errors:
        # torchrun's log folder inside ours, gone with it (by default each run left an empty /tmp/torchelastic_*)
        command = [sys.executable, "-m", "clipalign_utils.orchestration.distributed", "--standalone",
                   "--nproc_per_node", str(nproc), "--log-dir", str(Path(errors, "torchrun")),
                   "-m", "clipalign_utils.cli", *argv]
        process = subprocess.Popen(command, env={**os.environ, "OMP_NUM_THREADS": threads, LAUNCHED: errors})
        try:
            status = process.wait()
        except KeyboardInterrupt:  # Ctrl-C reached the ranks too; SIGTERM (cli) only us: torchrun passes it on
            process.terminate()
            process.wait()
            raise
        said = what_ranks_said(Path(errors))
    for line in said:
        print(f"clipalign: error: {line}", file=sys.stderr)
    return status


def prefill(out: str | Path, steps: Sequence[str], preset: str | None, given: Mapping, env: dict,
            progress: bool = False) -> int:
    """This rank's share: every ``world_size``-th checkpoint (from ``rank``) of each run in ``out``, each
    step measured on it alone so that its embeddings and maps land in the run's cache. Returns how many
    checkpoint × step measurements this rank made."""
    from tqdm.auto import tqdm

    from ..checkpoints import discover_run
    from ..layout import runs_in
    from .measure import measure_here
    from .pipeline import for_step

    out = Path(out).resolve()
    runs = runs_in(out) or [out]
    made = 0
    for run_dir in runs:
        resolved = record.resolve(run_dir, record.run_preset(run_dir, preset), dict(given))
        run = discover_run(run_dir, resolved.unless_preset("model"))
        # "cuda" is this rank's GPU (run_ranks set it); each step with what it was given before
        params = {step: for_step(run_dir, step, resolved).params for step in steps}
        mine = run.checkpoints[env["rank"]::env["world_size"]]
        for checkpoint in tqdm(mine, desc=f"rank {env['rank']} {run_dir.name}", disable=not progress):
            one = dataclasses.replace(run, checkpoints=[checkpoint])
            for step in steps:
                measure_here(step, one, params[step])
                made += 1
    return made


def run_ranks(out: str | Path, only: str | None, preset: str | None, given: Mapping, finish, progress: bool = False,
              stream: dict | None = None) -> int:
    """Under torchrun: every rank's share of the cache (:func:`prefill`; for a trajectory from its source,
    ``stream``: ``run_streamed``'s options, each rank fetching and measuring its own checkpoints), a
    barrier, then ``finish()`` (the ordinary command) on rank 0 only. Returns the exit status for this rank."""
    import torch
    import torch.distributed as dist

    from .pipeline import measured_steps

    env = torchrun_env()
    if torch.cuda.is_available():
        torch.cuda.set_device(env["local_rank"] % torch.cuda.device_count())  # "cuda" is this rank's GPU
    # no 30-minute default: ranks' shares can differ by more (3 checkpoints on 2 ranks; a trajectory each rank
    # fetches), and a rank done first waits at the barrier for the others
    dist.init_process_group("gloo", timeout=datetime.timedelta(days=7))
    try:
        if stream is not None:
            from .stream import run_streamed

            run_streamed(out, only=only, preset=preset, overrides=given, progress=progress,
                         share=(env["rank"], env["world_size"]), **stream)
            done = f"every {env['world_size']}-th checkpoint from {env['rank']} fetched, measured and cached"
        else:
            made = prefill(out, measured_steps(only), preset, given, env, progress)
            done = f"{made} checkpoint x step measurements cached"
        print(f"[rank {env['rank']}/{env['world_size']}] {done}", flush=True)
        try:
            dist.barrier()
        except RuntimeError:  # another rank stopped (its own line says why): one line here, not gloo's traceback
            raise OtherRankStopped(f"rank {env['rank']}: another rank stopped before its share was done (its error "
                                   f"is above); nothing was finished") from None
        return finish() if env["rank"] == 0 else 0
    finally:
        dist.destroy_process_group()


def quiet_torchrun(argv: Sequence[str]) -> int:
    """torchrun (``torch.distributed.run``'s own parser and launch) without its report of a failed rank: a
    rank that fails has said why in one line, and torchrun's traceback and error summary after it, and its
    log line per rank stopped, bury that line. Returns the first failed rank's exit status (130 or 143 where
    the launcher itself was interrupted or stopped)."""
    import logging
    import signal

    try:
        from torch.distributed.elastic.multiprocessing.api import SignalException
        from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
        from torch.distributed.run import get_args_parser, run
    except KeyboardInterrupt:  # Ctrl-C while torch imports: the launcher says it
        return 130

    for name, logger in list(logging.Logger.manager.loggerDict.items()):  # each sets its own level ($LOGLEVEL)
        if name.startswith("torch.distributed.elastic") and isinstance(logger, logging.Logger):
            logger.setLevel(logging.CRITICAL)
    try:
        run(get_args_parser().parse_args(list(argv)))
    except ChildFailedError as error:
        rank, failure = error.get_first_failure()
        tell_launcher("first", str(rank))
        if failure.exitcode > 0:  # the rank said why (its own line, or its traceback), or left it to the launcher
            return failure.exitcode
        # killed by a signal (-9: SIGKILL, the kernel's OOM killer most often): nothing of its own was said
        why = (" (out of memory? fewer checkpoints a rank, or -p eval_batch_size lower)"
               if failure.exitcode == -signal.SIGKILL else " (a signal from outside the command)")
        message = (f"rank {rank} was killed by {failure.signal_name()}{why}; the steps it ran left the runs as they "
                   f"were; the same command carries on")
        if not tell_launcher(f"rank{rank}.error", message):
            print(f"clipalign: error: {message}", file=sys.stderr)
        return 128 - failure.exitcode
    except SignalException as error:
        return 130 if error.sigval == signal.SIGINT else 143
    return 0


if __name__ == "__main__":
    sys.exit(quiet_torchrun(sys.argv[1:]))
