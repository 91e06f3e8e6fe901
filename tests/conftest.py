"""Shared fixtures: a trained smoke run per worker (seconds), and one smoke pipeline run for the whole
session (shared_builds.py; about a minute of one core). The helpers the tests share are in helpers.py."""
from __future__ import annotations

import os
import shutil

# The suite runs in two pytest-xdist workers (pyproject's addopts) on a machine with about two cores: each
# worker, and the kernels and processes it starts, computes on one thread, so the two never oversubscribe
# the cores (torch's OpenMP threads spin-wait). Set before torch is imported.
if os.environ.get("PYTEST_XDIST_WORKER"):
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = "1"

# Generated evaluation sets are cached (data/cache.py) in a folder of the session's own, shared by its
# workers and the kernels they start, never in the user's cache.
_OWN_CACHE = "CLIPALIGN_CACHE_DIR" not in os.environ
if _OWN_CACHE:
    import tempfile

    _session = os.getppid() if os.environ.get("PYTEST_XDIST_WORKER") else os.getpid()  # the controller's pid
    os.environ["CLIPALIGN_CACHE_DIR"] = os.path.join(tempfile.gettempdir(), f"clipalign-test-cache-{_session}")


import pytest

from clipalign_utils import config, train
import shared_builds

_BACKGROUND = []  # the controller's build of the shared smoke pipeline (shared_builds.py)


@pytest.hookimpl(trylast=True)  # after the tmp_path plugin's: the workers' parent folder
def pytest_configure(config):
    """The controller of a whole suite (or of its slow tier) under pytest-xdist starts the smoke pipeline's
    build at once; a selection of tests (paths, -k) does not, nor the fast tier."""
    option = config.option
    if (os.environ.get("PYTEST_XDIST_WORKER") or not getattr(option, "numprocesses", 0) or option.keyword
            or "not slow" in (option.markexpr or "") or config.args_source == pytest.Config.ArgsSource.ARGS):
        return
    _BACKGROUND.append(shared_builds.start(config._tmp_path_factory.getbasetemp()))


def pytest_sessionfinish(session):
    for process in _BACKGROUND:
        shared_builds.stop(process)
    if _OWN_CACHE and not os.environ.get("PYTEST_XDIST_WORKER"):
        shutil.rmtree(os.environ["CLIPALIGN_CACHE_DIR"], ignore_errors=True)


@pytest.fixture(autouse=True)
def _each_test_a_command():
    """A test is a command of its own: a -p note said by an earlier test's call is said again (cli.main clears
    them; a test calling run_sweep or run_many directly does not go through it)."""
    import sys

    pipeline = sys.modules.get("clipalign_utils.orchestration.pipeline")  # not imported for a test that needs none
    if pipeline is not None:
        pipeline.forget_notes()


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    """A trained smoke-preset run directory; tests that write into it should use `smoke_run_copy`."""
    run_dir = tmp_path_factory.mktemp("smoke_run")
    train.train(run_dir, config.resolve("smoke"), progress=False)
    return run_dir


def _link_or_copy(source, target):
    # Checkpoints are hard-linked, not copied (about 70 tests took 250 MB each: 18 GB a suite). The
    # package only ever replaces a checkpoint whole (io.atomic_write: a new file), which leaves the
    # shared one alone; a test that damages one must unlink it first (smoke_run_copy checks).
    if str(source).endswith(".pt"):
        os.link(source, target)
    else:
        shutil.copy2(source, target)


def _checkpoint_stamps(run_dir):
    return {path.name: (path.stat().st_size, path.stat().st_mtime_ns)
            for path in sorted((run_dir / "checkpoints").glob("*.pt"))}


@pytest.fixture
def smoke_run_copy(smoke_run, tmp_path):
    """A private copy of the trained smoke run: its own files, the checkpoints hard-linked to the shared
    run's (replace one whole, or unlink it before writing into it)."""
    target = tmp_path / "run"
    before = _checkpoint_stamps(smoke_run)
    shutil.copytree(smoke_run, target, copy_function=_link_or_copy)
    yield target
    assert _checkpoint_stamps(smoke_run) == before, (
        "the test wrote into a hard-linked checkpoint of the shared smoke run: unlink it before writing")


@pytest.fixture(scope="session")
def smoke_pipeline(tmp_path_factory):
    """The whole pipeline on the smoke preset, book included: `clipalign run` (the CLI builds the book). One
    folder for the session's workers (shared_builds.py): a test reads it, or copies it and writes into the copy."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        run_dir, stamps = shared_builds.built_once(tmp_path_factory.getbasetemp().parent)
    else:
        run_dir = shared_builds.build_pipeline(tmp_path_factory.mktemp("pipeline"))
        stamps = shared_builds.tree_stamps(run_dir)
    yield run_dir
    changed = sorted(set(stamps.items()) ^ set(shared_builds.tree_stamps(run_dir).items()))
    assert not changed, f"a test wrote into the shared smoke pipeline run ({changed[0][0]}): copy it first"


# Tests that train a run or execute notebooks take minutes: they form the slow tier
# (`pytest -m "not slow"` is the fast loop).
SLOW_FIXTURES = {"smoke_run", "smoke_run_copy", "smoke_pipeline"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
