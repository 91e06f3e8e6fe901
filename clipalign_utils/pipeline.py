"""Run the study's notebooks in order with papermill, then build the book.

Each step is one jupytext (py:percent) notebook under ``notebooks/``; its executed copy
lands in ``RUN_DIR/notebooks/``. ``overrides`` (``-p name=value``) go to every notebook
that declares the parameter. An executed notebook is written under a temporary name
and renamed when it succeeded, so a failed step never leaves a result-looking file:
its partial output is kept as ``<name>.failed.ipynb`` for debugging.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

from .config import PRESETS
from .errors import ClipalignError, ParameterError

REPO_ROOT = Path(__file__).resolve().parent.parent


def _installed_notebooks() -> Path:
    """The notebook sources installed with the package (``pip install`` from git, as in Colab):
    pyproject's data-files put them in ``<prefix>/share/clipalign/notebooks``."""
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        dist = distribution("clipalign")
        for file in dist.files or ():
            if file.name == "01_train.py" and file.parent.name == "notebooks":
                return Path(dist.locate_file(file)).resolve().parent
    except PackageNotFoundError:
        pass
    return REPO_ROOT / "notebooks"


# The checkout's notebooks/ (an editable install, the CLI), else the installed copies.
NOTEBOOK_DIR = REPO_ROOT / "notebooks" if (REPO_ROOT / "notebooks").is_dir() else _installed_notebooks()
# Step name -> notebook (see DESIGN.md).
STEPS = {
    "train": "01_train",
    "iqa": "02_iqa_alignment",
    "shape": "03_shape_texture_bias",
    "noise": "04_noise_robustness",
    "tradeoff": "05_tradeoff_synthesis",
}


class StepFailed(ClipalignError):
    """A notebook raised; the message carries the notebook's own error line."""


def available_steps() -> list[str]:
    return [step for step, nb in STEPS.items() if (NOTEBOOK_DIR / f"{nb}.py").exists()]


def notebook_parameters(step: str) -> dict:
    """The parameters a step's notebook declares in its `parameters` cell."""
    import jupytext
    import papermill

    source = NOTEBOOK_DIR / f"{STEPS[step]}.py"
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"clipalign-inspect-{os.getpid()}-{STEPS[step]}.ipynb"
    jupytext.write(jupytext.read(source), tmp)
    try:
        return papermill.inspect_notebook(str(tmp))
    finally:
        tmp.unlink(missing_ok=True)


def run_step(step: str, run_dir: Path, preset: str, overrides: dict, progress: bool = True) -> Path:
    """Execute one step's notebook into RUN_DIR/notebooks/; return the executed notebook's path."""
    return run_notebook(STEPS[step], run_dir, preset, overrides, progress, label=f"step {step}")


def run_notebook(name: str, run_dir: Path, preset: str, overrides: dict, progress: bool = True,
                 label: str | None = None) -> Path:
    """Execute notebooks/<name>.py into RUN_DIR/notebooks/<name>.ipynb, passing the parameters it declares."""
    import jupytext
    import papermill
    from papermill.exceptions import PapermillExecutionError

    label = label or f"notebook {name}"
    out_dir = run_dir / "notebooks"
    out_dir.mkdir(parents=True, exist_ok=True)
    source = out_dir / f".{name}.source.ipynb"
    jupytext.write(jupytext.read(NOTEBOOK_DIR / f"{name}.py"), source)
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


# What each analysis step writes: a step whose table exists need not run for the synthesis.
STEP_TABLES = {"iqa": "iqa", "shape": "shape_bias", "noise": "noise"}


def ensure_run(run_dir: str | Path, params: dict, auto_train: bool = True,
               steps: tuple[str, ...] = ("iqa", "shape", "noise")) -> Path:
    """For the synthesis notebook opened alone: train the run if `run_dir` holds none, then run each
    analysis step in `steps` whose table is missing (their notebooks, into RUN_DIR/notebooks).

    `params` are the notebook's resolved parameters; the values that differ from their preset's are
    passed on to the steps. With ``auto_train=False`` nothing runs (the synthesis then names what is missing).
    """
    from tqdm import tqdm

    from .checkpoints import discover_or_train

    run_dir = Path(run_dir).resolve()
    if not auto_train:
        return run_dir
    discover_or_train(run_dir, params, auto_train=True)
    missing = [step for step in steps if not (run_dir / "metrics" / f"{STEP_TABLES[step]}.csv").exists()]
    if missing:
        preset = params["preset"]
        overrides = {k: v for k, v in params.items() if k in PRESETS[preset] and v != PRESETS[preset][k]}
        print(f"{run_dir} lacks the tables of step(s) {', '.join(missing)}: running their notebooks "
              f"into {run_dir / 'notebooks'} first", flush=True)
        for step in tqdm(missing, desc="analysis steps"):
            run_step(step, run_dir, preset, overrides, progress=False)
    return run_dir


def check_overrides(overrides: dict, steps: list[str]) -> None:
    known = {"run_dir", "preset"} | set(PRESETS["default"])
    for step in steps:
        known |= set(notebook_parameters(step))
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ParameterError(f"unknown parameter(s) {', '.join(unknown)}: no notebook declares them; "
                             f"known: {', '.join(sorted(known))}")


def run_pipeline(out: str | Path, preset: str = "default", only: str | None = None,
                 overrides: dict | None = None, book: bool = True, progress: bool = True) -> Path:
    """Run every step (or `only` one) into `out`; build the book after a full run."""
    if preset not in PRESETS:
        raise ParameterError(f"unknown preset {preset!r}; choose one of: {', '.join(PRESETS)}")
    steps = available_steps()
    if only is not None:
        if only not in STEPS:
            raise ParameterError(f"unknown step {only!r}; steps: {', '.join(STEPS)}")
        if only not in steps:
            raise ParameterError(f"step {only!r} has no notebook yet ({NOTEBOOK_DIR / STEPS[only]}.py)")
        steps = [only]
    overrides = dict(overrides or {})
    check_overrides(overrides, steps)
    run_dir = Path(out).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    for number, step in enumerate(steps, 1):
        started = time.time()
        print(f"[{number}/{len(steps)}] {step}: {STEPS[step]} -> {run_dir / 'notebooks'}", flush=True)
        run_step(step, run_dir, preset, overrides, progress)
        print(f"[{number}/{len(steps)}] {step} done in {time.time() - started:.0f} s", flush=True)
    if book and only is None:
        from .book import build_book

        html = build_book(run_dir)
        print(f"book: {html / 'index.html'}", flush=True)
    return run_dir
