"""What a step's notebook does first, in one call: resolve its parameters cell against the preset (and show
the values used), run the step in every run when given a multi-run folder, and find — or, opened alone
(Colab), train — the run the page shows."""
from __future__ import annotations

from pathlib import Path

from . import checkpoints, config, multirun


def open_run(namespace: dict, step: str) -> tuple[checkpoints.Run, dict]:
    """(the run the page shows, the resolved parameters) for the notebook of ``step`` whose globals are
    ``namespace`` (its parameters cell: ``run_dir``, ``preset``, ``auto_train``, ``model`` and the step's
    own parameters, None = the preset's)."""
    params = config.resolve_notebook(namespace)
    run_dir = multirun.analyse_every_run(Path(namespace["run_dir"]), step, params)  # several runs: the first shown
    run = checkpoints.discover_or_train(run_dir, params, namespace.get("auto_train", True), namespace.get("model"))
    return run, params
