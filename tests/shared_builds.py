"""Folders the session's pytest-xdist workers share, built once a session: the smoke pipeline (a minute of one
core, which each worker spent building its own). The workers' parent temporary folder holds it, with a lock
and, once built, ``<name>.built.json``: where it is and its files' sizes and times as built (each worker checks
at its end that no test wrote into it; a write would race the other worker).

Both workers need the pipeline within their first minutes, so the one not building it would wait for it, idle:
the controller starts the build at once in a process of its own (``start``), which takes the lock before the
workers can, and the workers find it built or wait for it. A build that failed is built again by the next
worker to need it, which shows its error in that test.

    python tests/shared_builds.py SHARED_FOLDER     # what ``start`` runs
"""
from __future__ import annotations

import json
import os
from pathlib import Path
import shutil
import signal
import subprocess
import sys
import time

PIPELINE = "pipeline"
TESTS = Path(__file__).resolve().parent


def build_pipeline(folder: Path) -> Path:
    """The whole pipeline on the smoke preset, book included: `clipalign run` (the CLI builds the book)."""
    from clipalign_utils import cli

    run_dir = folder / "smoke"
    assert cli.main(["run", "--preset", "smoke", "--out", str(run_dir)]) == 0
    return run_dir


def tree_stamps(folder: Path) -> dict[str, str]:
    """{path relative to ``folder``: "size mtime_ns"} for everything in it."""
    return {str(path.relative_to(folder)): f"{path.lstat().st_size} {path.lstat().st_mtime_ns}"
            for path in sorted(Path(folder).rglob("*"))}


def built_once(shared: Path, build=build_pipeline, name: str = PIPELINE, locked=lambda: None) -> tuple[Path, dict]:
    """``build(shared / name)`` unless a process of the session built it already; what it returned (a folder)
    and that folder's ``tree_stamps`` as built. ``locked()`` is called once the lock is held."""
    from filelock import FileLock

    folder, built = shared / name, shared / f"{name}.built.json"
    with FileLock(str(shared / f"{name}.lock")):
        locked()
        if not built.exists():
            shutil.rmtree(folder, ignore_errors=True)  # (a build that failed)
            result = build(folder)
            built.write_text(json.dumps({"result": str(result), "stamps": tree_stamps(result)}))
    saved = json.loads(built.read_text())
    return Path(saved["result"]), saved["stamps"]


def holding(shared: Path) -> Path:
    """The file the build's own process writes once it holds the lock (``start`` returns then)."""
    return shared / f"{PIPELINE}.holding"


def start(shared: Path) -> subprocess.Popen:
    """The pipeline's build in a process of its own (one thread, as a worker's), once it holds the lock."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(
        filter(None, [str(TESTS.parent), os.environ.get("PYTHONPATH")]))}
    with open(shared / f"{PIPELINE}.log", "wb") as log:
        process = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), str(shared)], cwd=TESTS.parent,
                                   env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 60
    while not holding(shared).exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    return process


def stop(process: subprocess.Popen) -> None:
    """The build and the kernels it started, stopped if still running (the session ends without it)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


if __name__ == "__main__":
    shared = Path(sys.argv[1])
    built_once(shared, locked=holding(shared).touch)
