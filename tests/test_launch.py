"""Sweeps and experiments on a scheduler (``--launcher local|slurm``, submitit): bad options refused before
anything is made, the SLURM submission a stand-in ``sbatch`` receives, and a local sweep whose killed job
alone is resubmitted."""
from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import stat
import time
from types import SimpleNamespace

import pandas as pd
import psutil
import pytest

from clipalign_utils import cli
from clipalign_utils.orchestration import launch

SWEEP = ["sweep", "--preset", "smoke", "--one-at-a-time", "-p", "texture_correlation=0.8,0.5",
         "-p", "sigmas=0.02,0.05,0.1,0.2;0.1,0.3"]


@pytest.mark.parametrize("extra, message", [
    (["--launcher", "pbs"], "--launcher 'pbs': choose one of local, slurm"),
    (["--no-wait"], "--no-wait goes with --launcher local|slurm"),
    (["--slurm-partition", "gpu", "--timeout-min", "5"], "--slurm-partition, --timeout-min go with --launcher"),
    (["--launcher", "local", "--slurm-partition", "gpu"], "--slurm-partition goes with --launcher slurm, not local"),
    (["--launcher", "local", "--timeout-min", "0"], "--timeout-min 0: minutes, more than 0"),
])
def test_a_bad_launcher_option_is_one_line_before_anything_is_made(extra, message, tmp_path, capsys):
    out = tmp_path / "sweep"
    assert cli.main(SWEEP + ["--out", str(out), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert not out.exists()


def test_a_failed_jobs_reason_is_its_state_and_error_streams_last_line_or_its_exceptions_first():
    assert launch._reason(ValueError("epochs=1.5 is not an integer\nmore")) == "epochs=1.5 is not an integer"
    killed = "Job 7 (task: 0) with path /j/7_0_result.pkl\nhas not produced any output (state: UNKNOWN)\n" \
             "No output/error stream produced ! Check: /j/7_0_log.out"
    assert launch._reason(RuntimeError(killed)) == "has not produced any output (state: UNKNOWN)"
    assert launch._reason(None) == "no result" and launch._reason(RuntimeError("  ")) == "no result"
    # submitit's wrapper of a job's exception (core.py's FailedJobError text): the exception's own line, not the
    # wrapper's first (an audit found "failed (Job (task=0) failed during processing with trace:)")
    trace = ('Traceback (most recent call last):\n  File "x.py", line 1, in run\n    raise StepFailed(...)\n'
             "clipalign_utils.orchestration.pipeline.StepFailed: step iqa failed (CheckpointError: checkpoint "
             "epoch_1.pt could not be loaded)")
    wrapped = ("Job (task=0) failed during processing with trace:\n----------------------\n" + trace
               + "\n----------------------\nYou can check full logs with 'job.stderr(0)' and 'job.stdout(0)'or at "
                 "paths:\n  - /j/0_log.err\n  - /j/0_log.out")
    assert launch._reason(RuntimeError(wrapped)) == ("clipalign_utils.orchestration.pipeline.StepFailed: step iqa "
                                                     "failed (CheckpointError: checkpoint epoch_1.pt could not be "
                                                     "loaded)")


def test_a_launcher_without_submitit_or_sbatch_is_refused(tmp_path, capsys, monkeypatch):
    out = tmp_path / "quality"
    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch
    assert cli.main(["experiment", "quality", "--preset", "smoke", "--out", str(out), "--launcher", "slurm"]) == 2
    assert "--launcher slurm: sbatch is not on PATH" in capsys.readouterr().err
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "submitit" else real(name, *a))
    assert cli.main(SWEEP + ["--out", str(out), "--launcher", "local"]) == 2
    assert "submitit, which is not installed: pip install submitit" in capsys.readouterr().err
    assert not out.exists()


def test_slurm_submission_through_a_stand_in_sbatch(tmp_path, capsys, monkeypatch):
    """Each training group is one sbatch submission with the partition, GPUs and time limit asked for."""
    bin_dir, scripts = tmp_path / "bin", tmp_path / "submitted"
    bin_dir.mkdir()
    scripts.mkdir()
    sbatch = bin_dir / "sbatch"
    sbatch.write_text(f"""#!/bin/sh
n=$(ls {scripts} | wc -l)
cp "$1" {scripts}/job_$n.sh
echo "Submitted batch job $((4242 + n))"
""")
    sbatch.chmod(sbatch.stat().st_mode | stat.S_IEXEC)
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 0\n")  # submitit looks for it; the jobs never run here
    (bin_dir / "srun").chmod(sbatch.stat().st_mode)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    out = tmp_path / "sweep"
    argv = SWEEP + ["--out", str(out), "--launcher", "slurm", "--slurm-partition", "gpu", "--gpus-per-job", "1",
                    "--timeout-min", "90", "--no-wait"]
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert "[jobs] base: submitted as job 4242 (slurm" in printed
    assert "[jobs] texture_correlation-0.5: submitted as job 4243" in printed
    assert "run the same command again" in printed
    submitted = sorted(scripts.iterdir())
    assert len(submitted) == 2  # one per training: sigmas re-analyses base's checkpoints in base's job
    for script in submitted:
        text = script.read_text()
        for line in ("#SBATCH --partition=gpu", "#SBATCH --gpus-per-node=1", "#SBATCH --time=90",
                     "#SBATCH --job-name=clipalign", "submitit.core._submit"):
            assert line in text, (line, text)
    jobs = json.loads((out / "jobs.json").read_text())
    assert {key: entry["runs"] for key, entry in jobs.items()} == {
        "base": ["base", "sigmas-0.1+0.3"], "texture_correlation-0.5": ["texture_correlation-0.5"]}
    assert {entry["job_id"] for entry in jobs.values()} == {"4242", "4243"}
    assert all(not os.path.isabs(entry["stderr"]) for entry in jobs.values())
    assert json.loads((out / "sweep.json").read_text())["one_at_a_time"] is True
    assert not (out / "notebooks").exists()  # no comparison before the runs are finished


def recording_executor(tmp_path, monkeypatch) -> list:
    """Launchers submit to a stand-in that runs nothing; returns the list the submitted jobs are put in."""
    submitted = []

    class Executor:
        def submit(self, function):
            submitted.append(function.__self__)
            n = len(submitted)
            return SimpleNamespace(job_id=str(n), paths=SimpleNamespace(stdout=tmp_path / f"{n}.out",
                                                                        stderr=tmp_path / f"{n}.err"))

    monkeypatch.setattr(launch.Launcher, "executor", lambda self, folder: Executor())
    return submitted


def test_experiment_jobs_span_its_sweeps(tmp_path, monkeypatch):
    """One job per training across every sweep of the experiment, keyed by sweep and setting."""
    submitted = recording_executor(tmp_path, monkeypatch)
    spec = launch.check_launcher("local", no_wait=True)
    assert launch.experiment_on(spec, tmp_path / "quality", "quality", "smoke", {}, only=["variation", "partial"]) is False
    keys = [job.key for job in submitted]
    assert len(keys) == 9  # variation: 2 settings x 3 seeds; partial: 3 seeds
    assert keys[0] == "variation/seed-0__quality_variation-0" and keys[-1] == "partial/seed-2"
    assert all(len(job.names) == 1 for job in submitted)
    assert json.loads((tmp_path / "quality" / "experiment.json").read_text())["sweeps"].keys() == {"variation", "partial"}
    assert len(json.loads((tmp_path / "quality" / "jobs.json").read_text())) == 9


def test_a_failed_job_is_named_with_its_log_and_the_others_still_finish(tmp_path, monkeypatch, capsys):
    """Jobs that end without their runs finished are each named with their log; the command waits for the
    rest before it fails."""
    finished = set()

    class Handle:
        def __init__(self, job, n):
            self.job, self.job_id, self.polls, self.n = job, str(100 + n), 0, n
            self.paths = SimpleNamespace(stdout=tmp_path / "jobs" / f"{n}.out", stderr=tmp_path / "jobs" / f"{n}.err")

        def done(self):
            self.polls += 1
            if self.polls < 3 + 2 * self.n:  # the later job takes longer
                return False
            if self.job.key != "broken":
                finished.add(self.job.key)
            return True

        def exception(self):
            # submitit's message for a job with no result, its error stream's tail included
            return None if self.job.key != "broken" else RuntimeError(
                "Job 101 (task: 0) with path …/101_0_result.pkl\nhas not produced any output (state: FAILED)\n"
                "Error stream produced:\n" + "-" * 40 + "\nTraceback (most recent call last):\nMemoryError: out of memory\n")

    class Executor:
        def submit(self, function):
            handles.append(Handle(function.__self__, len(handles)))
            return handles[-1]

    handles = []
    monkeypatch.setattr(launch.Launcher, "executor", lambda self, folder: Executor())
    monkeypatch.setattr(launch.Job, "finished", lambda self: self.key in finished)
    monkeypatch.setattr(launch, "POLL_SECONDS", 0.0)
    jobs = [launch.Job(key, str(tmp_path), "smoke", {}, False, (key,)) for key in ("fine", "broken", "slow")]
    with pytest.raises(Exception, match=r"1 of 3 jobs failed \(broken; logs named above\)"):
        launch.launch(tmp_path, jobs, launch.check_launcher("local"), progress=False)
    err = capsys.readouterr().err
    assert (f"[jobs] broken: job 101 failed (has not produced any output (state: FAILED); its error stream ends: "
            f"MemoryError: out of memory); see {tmp_path / 'jobs' / '1.err'}") in err
    assert finished == {"fine", "slow"}  # the one after the failure still ran to its end
    assert json.loads((tmp_path / "jobs.json").read_text())["broken"]["stderr"] == "jobs/1.err"


def test_a_launcher_command_again_while_its_jobs_run_leaves_their_pages_alone(tmp_path, monkeypatch, capsys):
    """A job running a page holds it: the same command again must get to "still running", not stop at the page
    (an audit found it refused: "another command is running page 01_train there now"). The command still puts
    back what a killed page left, and leaves a page a job holds to that job."""
    from clipalign_utils.orchestration import pipeline

    asked = []
    monkeypatch.setattr(pipeline, "recover_stopped_pages", lambda folder, skip_held=False: asked.append(skip_held))
    monkeypatch.setattr(launch, "launch", lambda *args, **kwargs: False)  # its jobs: still running
    out = tmp_path / "sweep"
    out.mkdir()
    assert cli.main(["sweep", "--preset", "smoke", "--out", str(out), "-p", "lr=0.001,0.002", "--launcher", "local",
                     "--no-wait", "--no-book"]) == 0, capsys.readouterr().err
    assert asked == [True]


@pytest.mark.slow
def test_local_sweep_resubmits_only_a_killed_job_then_compares(tmp_path, capsys):
    """Two trainings as two local jobs, submitted without waiting; one is killed. The same command again
    waits for the one still running, resubmits only the killed one, then runs the comparison."""
    out = tmp_path / "sweep"
    argv = ["sweep", "--preset", "smoke", "-p", "texture_correlation=0.5,0.8", "-p", "epochs=1",
            "--out", str(out), "--launcher", "local", "--no-book"]
    assert cli.main(argv + ["--no-wait"]) == 0
    assert "2 submitted, 0 still running; run the same command again" in capsys.readouterr().out
    first = json.loads((out / "jobs.json").read_text())
    # A local job is submitit's controller process and the task it starts: kill both, once the task is there
    # (killed before it had started, the controller left the task to start alone and finish the run: under load
    # the resubmitted job then met it holding the run's page, and failed as it should)
    controller = psutil.Process(int(first["texture_correlation-0.5"]["job_id"]))
    deadline = time.monotonic() + 60
    while not controller.children(recursive=True) and time.monotonic() < deadline:
        time.sleep(0.05)
    for process in [controller, *controller.children(recursive=True)]:
        process.kill()
    controller.wait(10)

    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert f"[jobs] texture_correlation-0.8: still running as job {first['texture_correlation-0.8']['job_id']}" in printed
    assert "[jobs] texture_correlation-0.5: submitted as job" in printed and printed.count("submitted as job") == 1
    again = json.loads((out / "jobs.json").read_text())
    assert again["texture_correlation-0.8"] == first["texture_correlation-0.8"]
    assert again["texture_correlation-0.5"]["job_id"] != first["texture_correlation-0.5"]["job_id"]
    for setting in ("texture_correlation-0.5", "texture_correlation-0.8"):
        assert (out / setting / "notebooks" / "05_tradeoff_synthesis.ipynb").exists()
    summary = pd.read_csv(out / "metrics" / "sweep_summary.csv")
    assert list(summary["setting"]) == ["texture_correlation=0.5", "texture_correlation=0.8"]
    assert cli.main(argv) == 0  # nothing left to submit: both skipped, the comparison again
    assert capsys.readouterr().out.count("skip: complete") == 4  # the jobs' and the sweep's own lines


def test_local_jobs_share_the_cores_and_their_kernels_inherit_the_share(tmp_path, monkeypatch):
    """Local jobs run at once: each gets the cores shared out among the command's jobs (OMP_NUM_THREADS where
    set), and a job sets it in its process's environment, which the kernels it starts inherit."""
    submitted = recording_executor(tmp_path, monkeypatch)
    monkeypatch.setattr(launch.os, "cpu_count", lambda: 8)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    jobs = [launch.Job(key, str(tmp_path), "smoke", {}, False, (key,)) for key in ("a", "b", "c")]
    launch.launch(tmp_path, jobs, launch.check_launcher("local", no_wait=True), progress=False)
    assert [job.threads for job in submitted] == [2, 2, 2]  # 8 cores // 3 jobs
    submitted.clear()
    with monkeypatch.context() as patch:  # a job resubmitted alone keeps its share: the same numbers as before
        patch.setattr(launch.Job, "finished", lambda self: self.key != "c")
        launch.launch(tmp_path / "resubmit", jobs, launch.check_launcher("local", no_wait=True), progress=False)
    assert [(job.key, job.threads) for job in submitted] == [("c", 2)]
    submitted.clear()
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    launch.launch(tmp_path / "again", jobs[:1], launch.check_launcher("local", no_wait=True), progress=False)
    assert submitted[0].threads == 3
    ran = []
    monkeypatch.setattr("clipalign_utils.orchestration.sweep.run_sweep",
                        lambda *args, **kwargs: ran.append((os.environ["OMP_NUM_THREADS"], os.environ["MKL_NUM_THREADS"])))
    monkeypatch.setenv("MKL_NUM_THREADS", "x")  # restored after the test, like OMP_NUM_THREADS
    dataclasses.replace(jobs[0], threads=1).run()
    assert ran == [("1", "1")]


def finish(job) -> None:
    """Mark a job's runs finished as a job would leave them: every step's executed notebook in each run."""
    from clipalign_utils import registry
    from clipalign_utils.layout import RunDir
    from clipalign_utils.orchestration.pipeline import available_steps

    for run_dir in job.run_dirs:
        for step in available_steps():
            path = RunDir(run_dir).executed(registry.get(step).notebook)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("{}")


def test_the_full_preset_is_submitted_in_two_rounds_the_drivers_sweep_from_the_runs_own_base(tmp_path, monkeypatch,
                                                                                               capsys):
    """`run --preset full --launcher`: its six runs and the quality experiment's runs first; once they are
    finished, the drivers sweep's, whose base is the full preset's tiny seed-0 run linked in (not trained twice)."""
    submitted = recording_executor(tmp_path, monkeypatch)
    out = tmp_path / "full"
    argv = ["run", "--preset", "full", "--out", str(out), "--launcher", "local", "--no-wait"]
    assert cli.main(argv) == 0
    first = [job.key for job in submitted]
    assert first[:6] == [f"runs/{scale}-seed{seed}" for scale in ("tiny", "small") for seed in (0, 1, 2)]
    assert len(first) == 6 + 15 and all(key.startswith("quality/") for key in first[6:])  # 5 settings x 3 seeds
    assert "quality/variation/seed-0__quality_variation-0" in first and "quality/texture_control/seed-2" in first
    assert "21 submitted, 0 still running" in capsys.readouterr().out
    assert json.loads((out / "runs.json").read_text())["runs"][0] == "tiny-seed0"
    assert not (out / "drivers").exists()  # the second round waits for the first
    ran = []
    monkeypatch.setattr("clipalign_utils.orchestration.multirun.run_many",
                        lambda *args, **kwargs: ran.append((args, kwargs)))
    submitted[0].run()  # a run's job: run_many on that run alone, no synthesis
    assert ran == [((str(out.resolve()), "full", (0, 1, 2), ("tiny", "small"), {}),
                    {"progress": False, "only": ["tiny-seed0"], "synthesis": False})]
    monkeypatch.undo()
    submitted = recording_executor(tmp_path, monkeypatch)
    for job in submitted_first(out):
        finish(job)

    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert printed.count("skip: complete") == 21
    assert (out / "drivers" / "base").is_symlink() and (out / "drivers" / "base").resolve() == (out / "tiny-seed0").resolve()
    drivers = {job.key: job.names for job in submitted}
    assert drivers and all(key.startswith("drivers/") for key in drivers)
    # the base run is finished: its job only analyses the settings that share its training (the sigmas)
    assert drivers["drivers/base"] == ("base", "sigmas-0.01+0.02+0.05", "sigmas-0.1+0.2+0.4")
    assert "drivers/texture_correlation-0.5" in drivers and "drivers/epochs-24" in drivers


def submitted_first(out):
    """The first round's jobs, rebuilt from the plans the command recorded."""
    from clipalign_utils.orchestration.launch import experiment_jobs, run_jobs

    return run_jobs(out, "full", [0, 1, 2], ["tiny", "small"], {}) + experiment_jobs(out / "quality", "quality", "full", {})


@pytest.mark.parametrize("extra, message", [
    (["--only", "iqa"], "--launcher submits the runs of --seeds/--scales (or of a multi-run preset) as jobs: not with "
                        "--only, --checkpoints or --nproc"),
    (["-p", "seed=3"], "this command runs one run (-p seed=…): drop --launcher, or give --seeds"),
])
def test_a_launcher_on_a_run_that_is_no_multi_run_is_one_line(extra, message, tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(["run", "--preset", "smoke", "--out", str(out), "--launcher", "local", *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert not out.exists()


def test_a_job_that_ended_unfinished_is_named_with_its_log_before_it_is_submitted_again(tmp_path, monkeypatch,
                                                                                      capsys):
    """`--no-wait`, then the same command after a job failed: it resubmitted it without a word (an audit);
    it now says the earlier job ended unfinished, with its log's last line. A local job killed outright reads
    FINISHED in submitit: said as a process that ended without a result."""
    submitted = recording_executor(tmp_path, monkeypatch)
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs" / "7_0_log.err").write_text("training…\nclipalign: error: epochs=0: a number, 1 or more\n\n")
    (tmp_path / "jobs.json").write_text(json.dumps({"base": {"job_id": "7", "launcher": "local", "runs": ["base"],
                                                             "stdout": "jobs/7_0_log.out",
                                                             "stderr": "jobs/7_0_log.err"}}))
    monkeypatch.setattr(launch, "_alive", lambda *args: False)
    jobs = [launch.Job("base", str(tmp_path), "smoke", {}, False, ("base",))]
    assert launch.launch(tmp_path, jobs, launch.check_launcher("local", no_wait=True), progress=False) is False
    assert len(submitted) == 1
    assert (f"[jobs] base: job 7 ended with its runs unfinished (its log ends: clipalign: error: epochs=0: a "
            f"number, 1 or more); see {tmp_path / 'jobs' / '7_0_log.err'}; submitted again") in capsys.readouterr().err
    killed = "Job 9 (task: 0) with path /j/9_0_result.pkl\nhas not produced any output (state: FINISHED)\n"
    assert launch._reason(RuntimeError(killed)) == ("has not produced any output (its process ended without a "
                                                    "result: killed, or out of memory?)")


def test_a_job_still_running_is_waited_for_not_submitted_again(tmp_path, monkeypatch, capsys):
    """Mutation audit: the same command again submits only the unfinished jobs whose earlier job is gone; one
    still running is left to run (and recorded as it was), and while any runs the comparison must wait."""
    submitted = recording_executor(tmp_path, monkeypatch)
    (tmp_path / "jobs.json").write_text(json.dumps({
        key: {"job_id": job_id, "launcher": "local", "runs": [key], "stdout": f"jobs/{job_id}.out",
              "stderr": f"jobs/{job_id}.err"} for key, job_id in (("running", "5"), ("gone", "6"), ("done", "7"))}))
    monkeypatch.setattr(launch, "_alive", lambda entry, launcher, folder: entry["job_id"] == "5")
    monkeypatch.setattr(launch.Job, "finished", lambda self: self.key == "done")
    jobs = [launch.Job(key, str(tmp_path), "smoke", {}, False, (key,)) for key in ("running", "gone", "done")]
    spec = launch.check_launcher("local", no_wait=True)
    assert launch.launch(tmp_path, jobs, spec, progress=False) is False
    assert [job.key for job in submitted] == ["gone"]
    assert "[jobs] running: still running as job 5" in capsys.readouterr().out
    record = json.loads((tmp_path / "jobs.json").read_text())
    assert {key: entry["job_id"] for key, entry in record.items()} == {"running": "5", "gone": "1", "done": "7"}
    submitted.clear()
    # only the running job left unfinished: nothing to submit, and not finished either
    assert launch.launch(tmp_path, jobs[:1] + jobs[2:], spec, progress=False) is False
    assert submitted == []


def test_a_job_is_alive_only_for_its_own_launcher_and_a_live_state(tmp_path, monkeypatch):
    """Mutation audit: a local job's id is a submitit process's; a record from the other launcher is never
    alive; a SLURM job queued (PENDING) or running is alive, one ended is not."""
    import subprocess
    import sys

    import submitit

    local, slurm = launch.check_launcher("local"), launch.Launcher("slurm")
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "submitit"])
    try:
        entry = {"job_id": str(process.pid), "launcher": "local"}
        assert launch._alive(entry, local, tmp_path) is True
        assert launch._alive({**entry, "launcher": "slurm"}, local, tmp_path) is False
    finally:
        process.kill()
        process.wait()
    assert launch._alive(entry, local, tmp_path) is False  # gone
    for state, alive in (("PENDING", True), ("RUNNING", True), ("COMPLETED", False), ("FAILED", False),
                         ("TIMEOUT", False)):
        monkeypatch.setattr(submitit, "SlurmJob", lambda folder, job_id, state=state: SimpleNamespace(state=state))
        assert launch._alive({"job_id": "42", "launcher": "slurm"}, slurm, tmp_path) is alive, state
    assert launch._alive({"job_id": "42", "launcher": "local"}, slurm, tmp_path) is False


def test_a_job_that_ends_without_an_error_but_with_its_runs_unfinished_is_a_failure(tmp_path, monkeypatch, capsys):
    """Mutation audit: a submitted job that returned normally, and a job of an earlier command that stopped
    running, are failures when their runs are not finished."""
    submitted = []

    class Executor:
        def submit(self, function):
            submitted.append(function.__self__)
            n = len(submitted)
            return SimpleNamespace(job_id=str(n), done=lambda: True, exception=lambda: None,
                                   paths=SimpleNamespace(stdout=tmp_path / f"{n}.out", stderr=tmp_path / f"{n}.err"))

    monkeypatch.setattr(launch.Launcher, "executor", lambda self, folder: Executor())
    monkeypatch.setattr(launch, "POLL_SECONDS", 0.0)
    monkeypatch.setattr(launch.Job, "finished", lambda self: False)
    jobs = [launch.Job("quiet", str(tmp_path), "smoke", {}, False, ("quiet",))]
    with pytest.raises(Exception, match=r"1 of 1 job failed \(quiet; "):
        launch.launch(tmp_path, jobs, launch.check_launcher("local"), progress=False)
    assert "[jobs] quiet: job 1 failed (no result)" in capsys.readouterr().err
    polls = []  # an earlier job: alive when the command starts, gone at the first poll
    monkeypatch.setattr(launch, "_alive", lambda *args: polls.append(1) or len(polls) == 1)
    submitted.clear()
    with pytest.raises(Exception, match=r"1 of 1 job failed \(quiet; "):
        launch.launch(tmp_path, jobs, launch.check_launcher("local"), progress=False)
    assert submitted == []
    assert "[jobs] quiet: job 1 ended with its runs unfinished" in capsys.readouterr().err


# A command with one local job whose page writes a table, then computes until it is interrupted; putting the run
# back takes 1.5 s (as run_page does, a second Ctrl-C held back), longer than submitit's controller gives its
# task after a Ctrl-C of its own before it kills it.
_INTERRUPTED_COMMAND = """
import dataclasses, os, signal, sys, time
from pathlib import Path
signal.signal(signal.SIGINT, signal.default_int_handler)  # a terminal's command (a pytest-xdist worker's: ignored)
from clipalign_utils import cli
from clipalign_utils.orchestration import launch, pipeline, signals

@dataclasses.dataclass(frozen=True)
class Page(launch.RunJob):
    def work(self):
        table = Path(self.folder) / self.names[0] / "metrics" / "half.csv"
        table.parent.mkdir(parents=True)
        (Path(self.folder) / "task.pid").write_text(str(os.getpid()))
        print(f"[run 1/1 {self.names[0]}] " + pipeline.step_started_line("[1/6] train", "01_train", table.parent),
              flush=True)
        table.write_text("epoch\\n0\\n")
        try:
            time.sleep(60)
        except KeyboardInterrupt:
            with signals.deferred():
                time.sleep(1.5)
                table.unlink()
            raise

launch.run_jobs = lambda out, preset, seeds, scales, overrides, prefix="": [
    Page(f"{prefix}tiny-seed0", str(Path(out).resolve()), preset, {}, None, None, ("tiny-seed0",))]
sys.exit(cli.main(["run", "--preset", "smoke", "--seeds", "0", "--out", sys.argv[1], "--launcher", "local",
                   "--no-book"]))
"""


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("submitit") is None, reason="submitit is not installed")
def test_ctrl_c_stops_a_local_job_with_the_command_and_its_run_is_put_back(tmp_path):
    """Ctrl-C reaches the command's process group, its local jobs included: one line says the job stopped in its
    step and put its run back, status 130 as without a launcher, no process of the job left, nothing of the page
    in the run (an audit: submitit's controller printed a traceback and killed the job a second later, half-way
    through its put-back; the command said that its jobs kept running)."""
    import signal
    import subprocess
    import sys

    out = tmp_path / "runs"
    root = os.path.dirname(os.path.dirname(cli.__file__))  # the job's process imports the package from here too
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    command = subprocess.Popen([sys.executable, "-c", _INTERRUPTED_COMMAND, str(out)], env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 60
    while not (out / "tiny-seed0" / "metrics" / "half.csv").exists() and command.poll() is None:
        assert time.monotonic() < deadline, "the job never started its page"
        time.sleep(0.05)
    job = psutil.Process(int(json.loads((out / "jobs.json").read_text())["runs/tiny-seed0"]["job_id"]))
    processes = [job, psutil.Process(int((out / "task.pid").read_text()))]
    os.killpg(command.pid, signal.SIGINT)  # as a terminal's Ctrl-C
    stdout, stderr = command.communicate(timeout=60)
    assert command.returncode == 130, stderr
    assert stderr.splitlines() == ["clipalign: interrupted: its local job stopped with it (runs/tiny-seed0 in train): "
                                   "the step it was running left the run as it was before that step (finished steps "
                                   "stay); the same command carries on"], stderr
    assert not (out / "tiny-seed0" / "metrics" / "half.csv").exists()
    psutil.wait_procs(processes, timeout=5)
    assert not [process for process in processes if process.is_running()
                and process.status() != psutil.STATUS_ZOMBIE]


def test_a_jobs_log_is_read_with_the_format_the_step_loop_writes(tmp_path, monkeypatch, capsys):
    """The step a job was running, read from its log (launch._step_running), is read in the format the loop
    writes its lines in (pipeline.step_started_line and step_ended_line, one definition for both): the step
    started and not ended, none once every step has ended; a tag before the lines and a note after them."""
    from clipalign_utils.orchestration import pipeline

    monkeypatch.setattr(pipeline, "execute_step", lambda *args: None)
    from clipalign_utils import record

    pipeline.execute(tmp_path, ["train", "noise"], record.resolve(None, "smoke", {}), tag="[run 1/1 tiny-seed0] ",
                     note=lambda: " (about 2 minutes)")
    lines = capsys.readouterr().out.splitlines()
    log = tmp_path / "job.out"
    log.write_text("\n".join(lines))
    assert launch._step_running(log) is None
    log.write_text("\n".join(lines[:-1]))  # stopped in its second step
    assert launch._step_running(log) == "noise"
    log.write_text(pipeline.step_started_line("[1/1] real-clip", "10_real_clip", tmp_path / "notebooks") + "\n")
    assert launch._step_running(log) == "real-clip"
    log.write_text(log.read_text() + pipeline.step_ended_line("[1/1] real-clip", 3.2))
    assert launch._step_running(log) is None
