"""What a step's notebook does first, in one call: resolve its parameters cell against the preset (and show
the values used), run the step in every run when given a multi-run folder, and find — or, opened alone
(Colab), train — the run the page shows (the synthesis: the runs it reads)."""
from __future__ import annotations

from pathlib import Path

from . import checkpoints, config, multirun, pipeline, results, sweep


def open_run(namespace: dict, step: str) -> tuple[checkpoints.Run, dict]:
    """(the run the page shows, the resolved parameters) for the notebook of ``step`` whose globals are
    ``namespace`` (its parameters cell: ``run_dir``, ``preset``, ``auto_train``, ``model`` and the step's
    own parameters, None = the preset's)."""
    params = config.resolve_notebook(namespace)
    run_dir = multirun.analyse_every_run(Path(namespace["run_dir"]), step, params)  # several runs: the first shown
    run = checkpoints.discover_or_train(run_dir, params, namespace.get("auto_train", True), namespace.get("model"))
    return run, params


def open_sweep(namespace: dict) -> tuple[list[Path], dict]:
    """(the runs to compare, the resolved parameters) for the sweep page: its ``run_dirs``, else the runs
    the sweep record in ``run_dir`` lists."""
    params = config.resolve_notebook(namespace)
    if namespace.get("run_dirs") is not None:
        return results.parse_run_dirs(namespace["run_dirs"], namespace["run_dir"]), params
    return sweep.sweep_run_dirs(namespace["run_dir"]), params


def open_runs(namespace: dict) -> tuple[list[Path], dict]:
    """(the runs to synthesise, the resolved parameters) for the synthesis notebook: its ``run_dirs``, or
    ``run_dir`` and the runs inside it (``results.parse_run_dirs``). A single run opened alone (Colab) is
    trained and given its missing analysis tables first (``auto_train``)."""
    params = config.resolve_notebook(namespace)
    runs = results.parse_run_dirs(namespace.get("run_dirs"), namespace["run_dir"])
    if len(runs) == 1:
        pipeline.ensure_run(namespace["run_dir"], params, namespace.get("auto_train", True))
    return runs, params
