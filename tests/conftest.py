"""Shared fixtures: one trained smoke run per test session (about a minute on 2 cores)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from clipalign_utils import config, train


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    """A trained smoke-preset run directory; tests that write into it should use `smoke_run_copy`."""
    run_dir = tmp_path_factory.mktemp("smoke_run")
    train.train(run_dir, config.resolve("smoke"), progress=False)
    return run_dir


@pytest.fixture
def smoke_run_copy(smoke_run, tmp_path):
    """A private copy of the trained smoke run (checkpoints and embedding cache)."""
    target = tmp_path / "run"
    shutil.copytree(smoke_run, target)
    return target


@pytest.fixture(scope="session")
def smoke_pipeline(tmp_path_factory):
    """The whole pipeline on the smoke preset, book included: `clipalign run` (the CLI builds the book)."""
    from clipalign_utils import cli

    run_dir = tmp_path_factory.mktemp("pipeline") / "smoke"
    assert cli.main(["run", "--preset", "smoke", "--out", str(run_dir)]) == 0
    return run_dir


def assert_same_table(run_dir, reference_run_dir, table: str) -> None:
    """Reproducibility: a step on an independently trained run with the same seed (the
    `smoke_run` fixture vs the pipeline's own training) writes a byte-identical metric table."""
    ours = (run_dir / "metrics" / f"{table}.csv").read_text()
    assert ours == (reference_run_dir / "metrics" / f"{table}.csv").read_text(), f"{table}.csv differs"


# Tests that train a run or execute notebooks take minutes: they form the slow tier
# (`pytest -m "not slow"` is the fast loop).
SLOW_FIXTURES = {"smoke_run", "smoke_run_copy", "smoke_pipeline"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


class TrainingCrash(Exception):
    """Raised by ``train_interrupted_after`` in place of writing a checkpoint."""


def train_interrupted_after(run_dir, params, last_epoch: float, monkeypatch) -> None:
    """Train ``run_dir`` as if the process died while writing the first checkpoint after ``last_epoch``:
    that checkpoint and the later ones never exist (the latest one left holds the optimizer state)."""
    from clipalign_utils import train

    real_save = train._atomic_torch_save

    def save_until_crash(obj, path):
        if path.name.startswith("epoch_") and float(path.stem.split("_")[1]) > last_epoch:
            raise TrainingCrash(path.name)
        real_save(obj, path)
    monkeypatch.setattr(train, "_atomic_torch_save", save_until_crash)
    try:
        train.train(run_dir, params, progress=False)
    except TrainingCrash:
        pass
    finally:
        monkeypatch.setattr(train, "_atomic_torch_save", real_save)


def notebook_text(notebook: dict | Path, markdown_only: bool = False) -> str:
    """What an executed notebook shows as text: its printed streams and its Markdown outputs (the
    computed sentences, ``clipalign_utils.prose.say``); ``markdown_only`` keeps the latter alone."""
    if not isinstance(notebook, dict):
        notebook = json.loads(Path(notebook).read_text())
    parts = []
    for cell in notebook["cells"]:
        for output in cell.get("outputs", []):
            if not markdown_only:
                parts.append("".join(output.get("text", "")))
            parts.append("".join(output.get("data", {}).get("text/markdown", "")))
    return "".join(parts)
