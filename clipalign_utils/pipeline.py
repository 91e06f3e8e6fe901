"""Run the study's notebooks with papermill: one execution loop for a run, several runs and a sweep.

Each step is one jupytext (py:percent) notebook, listed once in the step registry
(:mod:`clipalign_utils.registry`); its executed copy lands in ``RUN_DIR/notebooks/``. ``overrides``
(``-p name=value``) go to every notebook that declares the parameter. An executed notebook is written
under a temporary name and renamed when it succeeded, so a failed step never leaves a result-looking
file: its partial output is kept as ``<name>.failed.ipynb`` for debugging.

The runner never builds the book: the CLI does, after a run (``clipalign_utils.book``).
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable, Sequence

from . import registry
from .config import PRESETS, changed_from_preset, resolve
from .errors import ClipalignError, ParameterError
from .layout import RunDir
from .registry import NOTEBOOK_DIR, REPO_ROOT, Step  # noqa: F401  (re-exported: tests and notebooks read them here)

# Step name -> notebook, in execution order: a live view of the registry (see DESIGN.md).
STEPS = registry.StepNotebooks()


class StepFailed(ClipalignError):
    """A notebook raised; the message carries the notebook's own error line."""


def available_steps() -> list[str]:
    """The registered steps whose notebook source exists, in execution order."""
    return [step.name for step in registry.steps() if step.source.exists()]


def _inspect(source: Path, tag: str) -> dict:
    import jupytext
    import papermill

    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"clipalign-inspect-{os.getpid()}-{tag}.ipynb"
    jupytext.write(jupytext.read(source), tmp)
    try:
        return papermill.inspect_notebook(str(tmp))
    finally:
        tmp.unlink(missing_ok=True)


def notebook_parameters(step: str) -> dict:
    """The parameters a step's notebook declares in its `parameters` cell."""
    entry = registry.get(step)
    return _inspect(entry.source, entry.notebook)


def run_step(step: str, run_dir: Path, preset: str, overrides: dict, progress: bool = True) -> Path:
    """Execute one step's notebook into RUN_DIR/notebooks/; return the executed notebook's path."""
    return run_notebook(registry.get(step).notebook, run_dir, preset, overrides, progress, label=f"step {step}")


def run_notebook(name: str, run_dir: Path, preset: str, overrides: dict, progress: bool = True,
                 label: str | None = None) -> Path:
    """Execute the notebook <name> (a step's or a page's, see the registry) into RUN_DIR/notebooks/<name>.ipynb,
    passing the parameters it declares."""
    import jupytext
    import papermill
    from papermill.exceptions import PapermillExecutionError

    label = label or f"notebook {name}"
    out_dir = RunDir(run_dir).notebooks
    out_dir.mkdir(parents=True, exist_ok=True)
    source = out_dir / f".{name}.source.ipynb"
    jupytext.write(jupytext.read(registry.notebook_source(name)), source)
    declared = papermill.inspect_notebook(str(source))
    # auto_train=False: a step that finds no checkpoints fails as it should (the train step runs first).
    parameters = {"run_dir": str(run_dir), "preset": preset, "auto_train": False}
    parameters.update({k: v for k, v in overrides.items() if k in declared})
    parameters = {k: v for k, v in parameters.items() if k in declared}
    final, partial = out_dir / f"{name}.ipynb", out_dir / f".{name}.running.ipynb"
    try:
        papermill.execute_notebook(str(source), str(partial), parameters=parameters,
                                   kernel_name="python3", progress_bar=progress,
                                   cwd=str(REPO_ROOT))
    except PapermillExecutionError as error:
        os.replace(partial, out_dir / f"{name}.failed.ipynb")
        final.unlink(missing_ok=True)
        message = str(error.evalue).strip().splitlines()[0] if str(error.evalue).strip() else ""
        raise StepFailed(f"{label} failed ({error.ename}: {message}); "
                         f"see {out_dir / (name + '.failed.ipynb')}") from None
    finally:
        source.unlink(missing_ok=True)
    os.replace(partial, final)
    (out_dir / f"{name}.failed.ipynb").unlink(missing_ok=True)
    return final


# ----------------------------------------------------------------------------------- the loop
def execute(run_dir: str | Path, steps: Sequence[str], preset: str, overrides: dict, *, progress: bool = True,
            tag: str = "", resume: bool = False, instead: Callable[[str, str], bool] | None = None,
            note: Callable[[], str] | None = None) -> list[str]:
    """The one execution loop: run each step of ``steps`` (names, in order) into ``run_dir``.

    ``resume``: a step whose executed notebook exists is skipped. ``instead(step, prefix)``, when given,
    may do a step's work another way (a sweep shares a training) and return True to skip running it.
    ``note()`` adds text to each step's start line (a time estimate). ``tag`` prefixes every line.
    Returns the steps it executed.
    """
    run_dir = Path(run_dir)
    executed = []
    for number, step in enumerate(steps, 1):
        prefix = f"{tag}[{number}/{len(steps)}] {step}"
        if resume and RunDir(run_dir).done(step):
            print(f"{prefix}: skip (done)", flush=True)
            continue
        if instead is not None and instead(step, prefix):
            continue
        started = time.time()
        print(f"{prefix}: {registry.get(step).notebook} -> {run_dir / 'notebooks'}{note() if note else ''}",
              flush=True)
        run_step(step, run_dir, preset, overrides, progress)
        print(f"{prefix} done in {time.time() - started:.0f} s", flush=True)
        executed.append(step)
    return executed


def ensure_run(run_dir: str | Path, params: dict, auto_train: bool = True,
               steps: Sequence[str] | None = None) -> Path:
    """For the synthesis notebook opened alone: train the run if `run_dir` holds none, then run each
    analysis step in `steps` (default: every registered one) whose tables are missing (their notebooks,
    into RUN_DIR/notebooks).

    `params` are the notebook's resolved parameters; the values that differ from their preset's are
    passed on to the steps. With ``auto_train=False`` nothing runs (the synthesis then names what is missing).
    """
    from .checkpoints import discover_or_train

    run_dir = Path(run_dir).resolve()
    if not auto_train:
        return run_dir
    discover_or_train(run_dir, params, auto_train=True)
    wanted = [registry.get(s) for s in steps] if steps is not None else registry.analysis_steps()
    missing = [s.name for s in wanted if not all(RunDir(run_dir).table(t.name).exists() for t in s.tables)]
    if missing:
        preset = params["preset"]
        overrides = changed_from_preset(params)
        print(f"{run_dir} lacks the tables of step(s) {', '.join(missing)}: running their notebooks "
              f"into {run_dir / 'notebooks'} first", flush=True)
        execute(run_dir, missing, preset, overrides, progress=False)
    return run_dir


def check_overrides(overrides: dict, steps: Sequence[str], preset: str | None = None) -> None:
    """Every override is a parameter some notebook of ``steps`` declares; given the ``preset``, every
    preset parameter's value also has its type and range (``config.resolve``), so a bad ``-p`` fails
    before any folder is made or kernel started. (A sweep checks each setting's values itself.)"""
    known = {"run_dir", "preset"} | set(PRESETS["default"])
    for step in steps:
        known |= set(notebook_parameters(step))
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ParameterError(f"unknown parameter(s) {', '.join(unknown)}: no notebook declares them; "
                             f"known: {', '.join(sorted(known))}")
    if preset is not None:
        resolve(preset, **{name: value for name, value in overrides.items() if name in PRESETS[preset]})


def check_preset(preset: str) -> None:
    if preset not in PRESETS:
        raise ParameterError(f"unknown preset {preset!r}; choose one of: {', '.join(PRESETS)}")


def run_pipeline(out: str | Path, preset: str = "default", only: str | None = None,
                 overrides: dict | None = None, progress: bool = True) -> Path:
    """Run every step (or `only` one) into `out`; return the run directory. (The CLI builds the book.)"""
    check_preset(preset)
    steps = available_steps()
    if only is not None:
        step = registry.get(only)  # names the steps when unknown
        if only not in steps:
            raise ParameterError(f"step {only!r} has no notebook yet ({step.source})")
        steps = [only]
    overrides = dict(overrides or {})
    check_overrides(overrides, steps, preset)
    run_dir = Path(out).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    execute(run_dir, steps, preset, overrides, progress=progress)
    return run_dir
