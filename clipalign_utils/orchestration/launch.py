"""Sweeps, experiments and runs of seeds on a scheduler: each training, with the settings that share it,
is one job submitted through submitit (SLURM, or its local executor's processes); the comparison runs
once every job has finished.

    clipalign sweep … --launcher local|slurm [--slurm-partition P] [--gpus-per-job N] [--timeout-min M] [--no-wait]
    clipalign experiment quality … --launcher …
    clipalign run --seeds 0 1 2 [--scales …] … --launcher …   (a multi-run preset's runs too: --preset full)

A job runs ``run_sweep`` on its settings only (``only=``, no comparison), or ``run_many`` on its run only
(no synthesis): the same code path as without a launcher, so a job resumes an interrupted training and
skips finished steps. ``clipalign run --preset full`` submits in two rounds: its runs and the quality
experiment's, then (once the run the drivers sweep starts from is finished and linked in) the drivers
sweep's. ``OUT/jobs.json`` records
every job (id, launcher, log paths); the logs are in ``OUT/jobs/``. The command waits, with progress, then
runs the ordinary command, whose runs are all complete by then, so only the comparisons and the book are
left. With ``--no-wait`` it submits and returns; the same command later resubmits only unfinished runs
whose job is not still running, and finishes the comparison once none is left. Ctrl-C (or SIGTERM) while it
waits stops its local jobs with it, each putting its run back as a step stopped without a launcher does; SLURM's
jobs keep running.
"""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

from ..errors import ParameterError
from ..io import write_json
from ..layout import RunDir
from ..prose import counted
from ..cores import threads_per_process
from .signals import handled

LAUNCHERS = ("local", "slurm")
JOBS_RECORD = "jobs.json"
JOBS_FOLDER = "jobs"
POLL_SECONDS = 2.0
STOP_WAIT_S = 30.0  # how long an interrupted command waits for its local jobs to put their runs back


@dataclass(frozen=True)
class Launcher:
    """Where the jobs run and with what: ``name`` local or slurm; the SLURM partition; GPUs per job;
    the wall-clock limit in minutes; whether the command waits for its jobs."""
    name: str
    partition: str | None = None
    gpus_per_job: int = 0
    timeout_min: int = 24 * 60
    wait: bool = True

    def executor(self, folder: Path):
        import submitit

        executor = submitit.AutoExecutor(folder=folder, cluster=self.name)
        executor.update_parameters(name="clipalign", timeout_min=self.timeout_min, gpus_per_node=self.gpus_per_job,
                                   **({"slurm_partition": self.partition} if self.partition else {}))
        return executor


def check_launcher(name: str | None, partition: str | None = None, gpus_per_job: int | None = None,
                   timeout_min: int | None = None, no_wait: bool = False) -> Launcher | None:
    """The launcher the options ask for (None: no launcher, the command runs everything itself), or
    ParameterError naming the bad option, before anything is planned, created or submitted."""
    if name is None:
        given = [flag for flag, value in (("--slurm-partition", partition), ("--gpus-per-job", gpus_per_job),
                                          ("--timeout-min", timeout_min), ("--no-wait", no_wait)) if value]
        if given:
            raise ParameterError(f"{', '.join(given)} go{'es' if len(given) == 1 else ''} with --launcher local|slurm")
        return None
    if name not in LAUNCHERS:
        raise ParameterError(f"--launcher {name!r}: choose one of {', '.join(LAUNCHERS)}")
    if importlib.util.find_spec("submitit") is None:
        raise ParameterError(f"--launcher {name} submits through submitit, which is not installed: "
                             f"pip install submitit")
    for client in ("sbatch", "srun") if name == "slurm" else ():  # submitit submits with sbatch, runs with srun
        if shutil.which(client) is None:
            raise ParameterError(f"--launcher slurm: {client} is not on PATH; run the command where SLURM's client "
                                 f"is (a login node), or use --launcher local")
    if partition and name != "slurm":
        raise ParameterError(f"--slurm-partition goes with --launcher slurm, not {name}")
    if gpus_per_job is not None and gpus_per_job < 0:
        raise ParameterError(f"--gpus-per-job {gpus_per_job}: a count of GPUs, 0 or more")
    if timeout_min is not None and timeout_min <= 0:
        raise ParameterError(f"--timeout-min {timeout_min}: minutes, more than 0")
    return Launcher(name, partition, gpus_per_job or 0, timeout_min or Launcher.timeout_min, not no_wait)


def _interrupted_once(signum, frame):
    """A local job's Ctrl-C: the terminal's, then the command's own (:func:`_stop_local`) while the job puts its
    run back; the first is enough."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt


class _Job:
    """What a job of either kind does in its process: take its share of the threads, then its ``work``;
    its runs are ``names`` in ``folder``, finished once each has executed every one of its ``steps``."""
    key: str
    folder: str
    names: tuple[str, ...]
    threads: int

    def run(self) -> str:
        """The job's work, in the job's process."""
        if self.threads:  # read by torch where it starts, here and in every kernel this job starts
            os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(self.threads)
        if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:  # a local job: its controller was started ignoring it
            signal.signal(signal.SIGINT, _interrupted_once)
        try:
            self.work()
        except KeyboardInterrupt:
            import logging

            from .ranks import STEP_PUT_BACK

            # nbclient's cell task dies with its kernel; asyncio would print it at exit as "never retrieved"
            # (its "Kernel died" the log's last line, which the next command quotes)
            logging.getLogger("asyncio").setLevel(logging.CRITICAL)
            print(f"clipalign: interrupted: {STEP_PUT_BACK}", file=sys.stderr, flush=True)
            raise SystemExit(130) from None  # no traceback: the line above ends the log
        return self.key

    @property
    def run_dirs(self) -> list[Path]:
        return [Path(self.folder) / name for name in self.names]

    def finished(self) -> bool:
        steps = self.steps()
        return all(RunDir(run_dir).done_all(steps) for run_dir in self.run_dirs)


@dataclass(frozen=True)
class Job(_Job):
    """One job: the settings ``names`` of the sweep in ``folder`` (a training and the settings sharing it),
    known in the record as ``key``."""
    key: str
    folder: str
    preset: str
    values: dict
    one_at_a_time: bool
    names: tuple[str, ...]
    threads: int = 0  # CPU threads for the job's processes (its notebooks' kernels); 0: the machine's default

    def work(self) -> None:
        from .sweep import run_sweep

        run_sweep(self.folder, self.preset, self.values, self.one_at_a_time, progress=False,
                  only=list(self.names), compare=False)

    def steps(self) -> list[str]:
        from .pipeline import available_steps

        return available_steps()  # a sweep's runs each run the synthesis too


@dataclass(frozen=True)
class RunJob(_Job):
    """One job: the run ``names[0]`` of the multi-run folder ``folder`` (seeds × scales), known as ``key``."""
    key: str
    folder: str
    preset: str
    overrides: dict
    seeds: tuple[int, ...] | None
    scales: tuple[str, ...] | None
    names: tuple[str, ...]
    threads: int = 0

    def work(self) -> None:
        from .multirun import run_many

        run_many(self.folder, self.preset, self.seeds, self.scales, self.overrides, progress=False,
                 only=list(self.names), synthesis=False)

    def steps(self) -> list[str]:
        from .multirun import per_run_steps

        return per_run_steps()


def run_jobs(out: Path, preset: str, seeds: list[int] | None, scales: list[str] | None, overrides: dict,
             prefix: str = "") -> list[RunJob]:
    """The jobs of a multi-run folder: its plan checked and recorded (``run_many`` running nothing), then one
    job per run."""
    from .multirun import run_many

    run_many(out, preset, seeds, scales, overrides, progress=False, only=[], synthesis=False)
    names = json.loads(RunDir(out).record("runs").read_text())["runs"]
    seeds, scales = (tuple(seeds) if seeds else None), (tuple(scales) if scales else None)
    return [RunJob(f"{prefix}{name}", str(Path(out).resolve()), preset, dict(overrides), seeds, scales, (name,))
            for name in names]


def sweep_jobs(out: Path, preset: str, values: dict, one_at_a_time: bool, prefix: str = "") -> list[Job]:
    """The jobs of one sweep: its plan checked and recorded (``run_sweep`` running nothing), then one job per
    training group."""
    from .sweep import run_sweep, training_groups

    run_sweep(out, preset, values, one_at_a_time, progress=False, only=[], compare=False)
    return [Job(f"{prefix}{group[0]}", str(Path(out).resolve()), preset, dict(values), one_at_a_time, tuple(group))
            for group in training_groups(out)]


def _alive(entry: dict, launcher: Launcher, folder: Path) -> bool:
    """Whether a job submitted by an earlier command is still queued or running."""
    if entry.get("launcher") != launcher.name:
        return False
    if launcher.name == "local":
        import psutil

        # A local job id is its submitit controller's process id: alive unless gone, a zombie (an
        # unreaped child of this very process) or the id reused by another program.
        try:
            process = psutil.Process(int(entry["job_id"]))
            return (process.status() != psutil.STATUS_ZOMBIE
                    and any("submitit" in part for part in process.cmdline()))
        except (psutil.Error, ValueError):
            return False
    import submitit

    state = submitit.SlurmJob(folder=folder, job_id=str(entry["job_id"])).state
    return state in ("PENDING", "RUNNING", "REQUEUED", "CONFIGURING", "COMPLETING", "RESIZING", "SUSPENDED")


def _failure(job) -> BaseException | None:
    try:
        return job.exception()
    except Exception as error:  # the job ended without a result: killed, timed out, cancelled
        return error


def _last_line(log: Path) -> str:
    """A job log's last line with text (the reason an unfinished job gave, most often), shortened; '' if none."""
    try:
        with open(log, "rb") as f:
            f.seek(max(0, os.path.getsize(log) - 4096))
            lines = [line.strip() for line in f.read().decode(errors="replace").replace("\r", "\n").splitlines()]
    except OSError:
        return ""
    line = next((line for line in reversed(lines) if line), "")
    return line if len(line) <= 300 else line[:299] + "…"


def _reason(error: BaseException | None) -> str:
    """Why a job failed, in a few words: an exception's first line; for a job that produced no result
    (submitit's "Job N … with path …" / "has not produced any output (state: S)" / its error stream), the
    state and the error stream's last line (a killed job's is often empty)."""
    lines = [line.strip() for line in str(error or "").splitlines() if line.strip().strip("-")]
    if not lines:
        return "no result"
    if "failed during processing" in lines[0]:  # submitit's wrapper of the job's exception: that exception's line
        trace = lines[1:]
        end = next((i for i, line in enumerate(trace) if line.startswith("You can check full logs")), len(trace))
        if end:
            return trace[end - 1]
    state = next((line for line in lines if "has not produced any output" in line), None)
    if state is None:
        return lines[0]
    stream = lines[lines.index("Error stream produced:") + 1:] if "Error stream produced:" in lines else []
    # submitit's local jobs read FINISHED once their process is gone, however it ended (a SIGKILL too)
    state = state.replace("(state: FINISHED)", "(its process ended without a result: killed, or out of memory?)")
    return state + (f"; its error stream ends: {stream[-1]}" if stream else "")


def launch(out: str | Path, jobs: list[Job | RunJob], launcher: Launcher, progress: bool = True) -> bool:
    """Submit every unfinished job whose earlier job is not still running; wait for them unless
    ``launcher.wait`` is off. True when every job's runs are finished (the comparison may run). Interrupted
    while its local jobs run, it stops them (each puts its run back) and raises KeyboardInterrupt saying so."""
    out = Path(out).resolve()
    record_path = out / JOBS_RECORD
    recorded = json.loads(record_path.read_text()) if record_path.exists() else {}
    folder = out / JOBS_FOLDER
    executor = launcher.executor(folder)
    submitted, waiting, to_submit = {}, [], []  # submitted: this command's jobs, key: (job, submitit's handle)
    for job in jobs:
        if job.finished():
            print(f"[jobs] {job.key}: skip: complete", flush=True)
            continue
        previous = recorded.get(job.key)
        if previous and _alive(previous, launcher, folder):
            print(f"[jobs] {job.key}: still running as job {previous['job_id']}", flush=True)
            waiting.append(job)
            continue
        if previous:  # an earlier command's job ended with its runs unfinished (failed, killed, timed out)
            log = out / previous["stderr"]
            said = _last_line(log)
            print(f"[jobs] {job.key}: job {previous['job_id']} ended with its runs unfinished"
                  f"{f' (its log ends: {said})' if said else ''}; see {log}; submitted again", file=sys.stderr,
                  flush=True)
        to_submit.append(job)
    # Local jobs run at once on this machine's cores: each its share, unless OMP_NUM_THREADS says (every job
    # at the default would start as many threads as there are cores, all contending: 2.7x slower for two
    # jobs on two cores). The share counts every job of the command, finished or not, so a job resubmitted
    # after an interruption trains on as many threads as before (a run's numbers depend on it, in the low
    # bits that training amplifies).
    threads = threads_per_process(len(jobs)) if launcher.name == "local" else 0
    try:
        return _submit_and_wait(out, jobs, launcher, executor, to_submit, submitted, waiting, recorded, threads,
                                progress)
    except KeyboardInterrupt:
        if launcher.name != "local" or not launcher.wait:
            raise
        # Ctrl-C reached the local jobs too (the terminal's process group), or will (_stop_local): the command
        # says what became of them, not that they keep running
        raise KeyboardInterrupt(_stop_local(out, recorded, submitted, waiting)) from None


def _submit_and_wait(out: Path, jobs: list, launcher: Launcher, executor, to_submit: list, submitted: dict,
                     waiting: list, recorded: dict, threads: int, progress: bool) -> bool:
    from tqdm.auto import tqdm

    record_path = out / JOBS_RECORD
    folder = out / JOBS_FOLDER
    for job in to_submit:
        # A local job's controller (submitit's) is started ignoring Ctrl-C: on its own it would print a traceback
        # and SIGKILL its job a second later, half-way through putting the job's run back. The job itself
        # answers Ctrl-C again (_Job.run).
        with handled(signal.SIG_IGN, (signal.SIGINT,) if launcher.name == "local" else ()):
            handle = executor.submit(replace(job, threads=threads).run)
        submitted[job.key] = (job, handle)
        recorded[job.key] = {"job_id": str(handle.job_id), "launcher": launcher.name, "runs": list(job.names),
                             "stdout": os.path.relpath(handle.paths.stdout, out),
                             "stderr": os.path.relpath(handle.paths.stderr, out)}
        write_json(record_path, recorded)
        print(f"[jobs] {job.key}: submitted as job {handle.job_id} ({launcher.name}; log "
              f"{recorded[job.key]['stderr']})", flush=True)
    if not submitted and not waiting:
        return True
    if not launcher.wait:
        print(f"[jobs] {len(submitted)} submitted, {len(waiting)} still running; run the same command again to "
              f"finish the comparison once they are done", flush=True)
        return False
    failed = []
    pending = dict(submitted)
    with tqdm(total=len(submitted) + len(waiting), desc="jobs", disable=not progress) as bar:
        while pending or waiting:
            time.sleep(POLL_SECONDS)
            for key, (job, handle) in list(pending.items()):
                if handle.done():
                    del pending[key]
                    bar.update()
                    error = _failure(handle)
                    if error is not None or not job.finished():
                        failed.append((job, recorded[key], error))
                        print(f"[jobs] {key}: job {recorded[key]['job_id']} failed ({_reason(error)}); see "
                              f"{out / recorded[key]['stderr']}", file=sys.stderr, flush=True)
            for job in list(waiting):
                if not _alive(recorded[job.key], launcher, folder):
                    waiting.remove(job)
                    bar.update()
                    if not job.finished():
                        failed.append((job, recorded[job.key], None))
                        print(f"[jobs] {job.key}: job {recorded[job.key]['job_id']} ended with its runs unfinished; "
                              f"see {out / recorded[job.key]['stderr']}", file=sys.stderr, flush=True)
    if failed:
        from .pipeline import StepFailed

        failed_keys = ", ".join(job.key for job, _, _ in failed)
        raise StepFailed(f"{len(failed)} of {counted(len(jobs), 'job')} failed ({failed_keys}; "
                         f"logs named above); run the same command again to resubmit only them")
    return True


def sweep_on(launcher: Launcher, out: str | Path, preset: str, overrides: dict, one_at_a_time: bool,
             progress: bool = True) -> bool:
    """``clipalign sweep --launcher``: the sweep's jobs submitted (and awaited). True when every run is
    finished, so the ordinary command has only the comparison left."""
    return launch(out, sweep_jobs(Path(out), preset, overrides, one_at_a_time), launcher, progress)


def experiment_on(launcher: Launcher, out: str | Path, name: str, preset: str, overrides: dict,
                  only: list[str] | None = None, progress: bool = True) -> bool:
    """``clipalign experiment --launcher``: every sweep's jobs submitted together (and awaited)."""
    return launch(out, experiment_jobs(Path(out), name, preset, overrides, only), launcher, progress)


def experiment_jobs(out: Path, name: str, preset: str, overrides: dict, only: list[str] | None = None,
                    prefix: str = "") -> list[Job]:
    """The jobs of every sweep of the experiment in ``out``, keyed ``<prefix><sweep>/<setting>``."""
    from .experiment import prepare

    sweeps, _, _ = prepare(out, name, preset, dict(overrides), only)
    return [job for sweep, values in sweeps.items()
            for job in sweep_jobs(out / sweep, preset, values, False, prefix=f"{prefix}{sweep}/")]


def runs_on(launcher: Launcher, out: str | Path, preset: str, seeds: list[int] | None, scales: list[str] | None,
            overrides: dict, progress: bool = True) -> bool:
    """``clipalign run --seeds … --launcher``: one job per run (and awaited). For a preset that also runs the
    drivers sweep and the quality experiment (full), their jobs too, in two rounds: the runs with the
    experiment's, then the drivers sweep's, whose base run is the runs' own (linked in once finished, as
    without a launcher, so it is not trained twice). True when every job's runs are finished, so the
    ordinary command has only the syntheses, the comparisons and the book left."""
    from ..config import DRIVERS_FOLDER, PRESET_EXPERIMENTS, SWEEP_PRESETS
    from .multirun import link_base_run

    out = Path(out).resolve()
    jobs = run_jobs(out, preset, seeds, scales, overrides, prefix="runs/")
    for name in PRESET_EXPERIMENTS.get(preset, ()):
        jobs += experiment_jobs(out / name, name, preset, overrides, prefix=f"{name}/")
    if not launch(out, jobs, launcher, progress):
        return False
    if preset not in SWEEP_PRESETS:
        return True
    link_base_run(out, preset, overrides)
    drivers = sweep_jobs(out / DRIVERS_FOLDER, preset, {**SWEEP_PRESETS[preset], **overrides}, True,
                         prefix=f"{DRIVERS_FOLDER}/")
    return launch(out, drivers, launcher, progress)


def _stop_local(out: Path, recorded: dict, submitted: dict, waiting: list) -> str:
    """This command's local jobs still running, stopped as the command is: each job's task sent Ctrl-C (a second
    one, where the terminal's reached it: it ignores that), given STOP_WAIT_S to put its run back, then killed with
    its controller (the next command puts back what a killed page left). What became of them, in the words of
    the command's line."""
    import psutil

    from .ranks import STEP_PUT_BACK

    controllers = {}
    for key, (_, handle) in submitted.items():
        try:
            controller = psutil.Process(int(handle.job_id))
            if controller.status() == psutil.STATUS_ZOMBIE:  # ended before the interruption
                continue
            controllers[key] = controller
            for task in controller.children():
                task.send_signal(signal.SIGINT)
        except (psutil.Error, ValueError):
            pass
    deadline = time.monotonic() + STOP_WAIT_S
    stopped, killed = [], []
    for key, controller in controllers.items():
        try:
            controller.wait(max(0.0, deadline - time.monotonic()))
            stopped.append(key)
        except psutil.TimeoutExpired:
            killed.append(key)
            for process in [*controller.children(recursive=True), controller]:
                try:
                    process.kill()
                except psutil.Error:
                    pass
        except psutil.Error:
            stopped.append(key)
    said = []
    if stopped:
        steps = [f"{key} in {step}" if (step := _step_running(out / recorded[key]["stdout"])) else key
                 for key in stopped]
        said.append(f"its local job{'s' if len(stopped) > 1 else ''} stopped with it ({', '.join(steps)}): "
                    f"{STEP_PUT_BACK}")
    if killed:
        said.append(f"{', '.join(killed)}: not stopped within {STOP_WAIT_S:.0f} s, so killed; the same command puts "
                    f"back what a killed page left, and carries on")
    if waiting:
        said.append(f"the jobs an earlier command submitted keep running ({', '.join(job.key for job in waiting)})")
    return "; ".join(said) or "none of its jobs was running; the same command carries on"


def _step_running(log: Path) -> str | None:
    """The step a job's stdout log last started and did not finish ("[run 1/1 x] [1/6] train: 01_train -> …"), if
    any."""
    from .pipeline import step_in_line  # the lines' format is the loop's that writes them

    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return None
    found = [said for line in lines if (said := step_in_line(line))]
    return found[-1][0] if found and not found[-1][1] else None
