"""A step measured as a library call, without its page: the run's parameters resolved against its record,
the step's evaluation data loaded, every table measured and written. A page given a folder of runs does
this for the runs it does not show, each in a process of its own (:func:`in_own_processes`); the
synthesis page does it for a run opened alone that lacks a step's tables. No notebook is executed and
no run's executed notebook is touched."""
from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from importlib import import_module
from pathlib import Path
from typing import Mapping, Sequence

from .. import record, registry
from ..checkpoints import discover_run
from ..io import write_tables


def step_module(step: str):
    """The registered step's module (``load(run, params)``, ``measure(run, params, data)``)."""
    return import_module(registry.get(step).module)


def measure_here(step: str, run, params: dict) -> dict:
    """The step's tables of ``run``, measured in this process rather than a page's kernel (a run not shown, a
    streamed checkpoint, a torchrun rank's share), its progress bars written as a page's
    (``pipeline.measuring_bars``)."""
    from .pipeline import measuring_bars

    with measuring_bars():
        return step_module(step).measure(run, params)


def measure_step(run_dir: str | Path, step: str, preset: str | None = None,
                 given: Mapping | None = None, declared: Sequence[str] | None = None) -> list[Path]:
    """Resolve ``given`` against the run (its record; ``preset`` None: the run's own; what the step was
    given before, of the ``declared`` parameters its page reads: ``record.for_step``), record the
    resolution, measure the analysis step ``step`` and write its tables; return their paths."""
    run_dir = Path(run_dir)
    resolved = record.resolve(run_dir, record.run_preset(run_dir, preset), given)
    resolved = record.for_step(run_dir, step, resolved, declared)
    run = discover_run(run_dir, resolved.unless_preset("model"))
    record.stage_entry(run_dir, step, resolved)  # recorded with the tables (write_tables)
    return write_tables(measure_here(step, run, resolved.params), run_dir,
                        getattr(step_module(step), "OPTIONAL_TABLES", ()))


def in_own_processes(run_dirs: Sequence[str | Path], step: str, preset: str | None = None,
                     given: Mapping | None = None, declared: Sequence[str] | None = None) -> None:
    """:func:`measure_step` for each run, one fresh process each (one after another: a run's models and
    evaluation sets leave memory with its process). An error in one ends the call with that error."""
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: nothing of the kernel is inherited
    for run_dir in run_dirs:
        with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
            pool.submit(measure_step, str(run_dir), step, preset, dict(given or {}),
                        None if declared is None else list(declared)).result()
