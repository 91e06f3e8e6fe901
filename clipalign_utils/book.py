"""Build the Jupyter Book from an executed run directory.

The book's sources are the top-level ``_config.yml`` and ``_toc.yml``, the prose in ``book/``
and the executed notebooks in ``RUN_DIR/notebooks``. They are staged into ``RUN_DIR/book``
mirroring the repository layout (so each page's Colab button points at the repository's
``notebooks/<name>.ipynb``), with a generated page fragment describing the run. The build
renders; it never executes a notebook again, and treats every Sphinx warning as an error.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from .errors import ClipalignError
from .pipeline import REPO_ROOT, STEPS


class BookBuildFailed(ClipalignError):
    pass


SWEEP_PAGE = "06_sweep"
# Chapter 6 of a book whose run directory holds no sweep.
NO_SWEEP_PAGE = """# 6. What drives the trade-off?

This build of the book ran no sweep, so this chapter has no results. The chapter is the executed
comparison notebook of a sweep (`notebooks/06_sweep.py`): the pipeline run once per setting of
the parameters that may drive the trade-off, then every synthesis curve and verdict compared
across settings.

- `clipalign run --preset full --out runs/full` runs the chapter's sweep (each of
  texture_correlation, texture_scale, fresh_data, epochs and sigmas varied alone around the default
  run) into `runs/full/drivers/`, next to its seeds and scales, and builds the book with it.
- Any sweep builds its own book: `clipalign sweep --preset default
  -p texture_correlation=0.5,0.8,0.95 --out runs/texture_correlation`.
"""


def _runs_in(run_dir: Path) -> list[Path]:
    """Complete run directories directly under ``run_dir`` (their noise step executed), in name order."""
    return sorted(d for d in run_dir.iterdir() if (d / "notebooks" / f"{STEPS['noise']}.ipynb").exists())


def _notebook_sources(run_dir: Path) -> tuple[dict[str, Path], Path]:
    """Executed notebook per page, and the run directory that trained the pages' model.

    A multi-run directory (``--seeds``/``--scales``) holds only the synthesis; its other pages come
    from its first complete run (sub-directories in name order). A sweep directory holds only the
    comparison (page 6); pages 1–5 come from the first run of its plan. Page 6 is the directory's own
    sweep notebook, or that of a sweep directory inside it (the full preset's ``drivers``), if any."""
    from .sweep import RECORD, sweep_run_dirs

    own = {name: run_dir / "notebooks" / f"{name}.ipynb" for name in STEPS.values()}
    sweep_page = run_dir / "notebooks" / f"{SWEEP_PAGE}.ipynb"
    inner = sorted(run_dir.glob(f"*/notebooks/{SWEEP_PAGE}.ipynb"))
    if all(path.exists() for path in own.values()):
        sources, trained = own, run_dir
    elif (run_dir / RECORD).exists() and sweep_page.exists():
        trained = sweep_run_dirs(run_dir)[0]
        sources = {name: trained / "notebooks" / f"{name}.ipynb" for name in STEPS.values()}
        missing = [str(path) for path in sources.values() if not path.exists()]
        if missing:
            raise BookBuildFailed(f"the sweep's first run lacks {', '.join(missing)}: finish the sweep first "
                                  f"(run the same clipalign sweep command again)")
    else:
        runs = [d for d in _runs_in(run_dir) if not (d / RECORD).exists()]
        if not runs or not own[STEPS["tradeoff"]].exists():
            missing = ", ".join(name for name, path in own.items() if not path.exists())
            raise BookBuildFailed(f"{run_dir / 'notebooks'} lacks executed notebooks {missing}: "
                                  f"run the whole pipeline first (clipalign run --out {run_dir})")
        trained = runs[0]
        sources = {name: trained / "notebooks" / f"{name}.ipynb" for name in STEPS.values()}
        sources[STEPS["tradeoff"]] = own[STEPS["tradeoff"]]
    if sweep_page.exists():
        sources[SWEEP_PAGE] = sweep_page
    elif inner:
        sources[SWEEP_PAGE] = inner[0]
    return sources, trained


def _run_summary(run_dir: Path, sources: dict[str, Path], trained: Path) -> str:
    """Markdown describing which run produced the pages: preset, model, timings, checkpoints."""
    lines = []
    if trained != run_dir:
        others = ", ".join(f"`{d.name}`" for d in sorted(run_dir.iterdir()) if (d / "train_params.json").exists())
        if sources[STEPS["tradeoff"]].parent.parent == run_dir:
            lines += [f"Pages 1–4 show the run `{trained.name}`; page 5 synthesises all runs of this "
                      f"directory: {others}.", ""]
        else:
            lines += [f"Pages 1–5 show the run `{trained.name}`, the first of this sweep's runs: {others}.", ""]
    if SWEEP_PAGE in sources:
        sweep_dir = sources[SWEEP_PAGE].parent.parent
        where = "this directory" if sweep_dir == run_dir else f"`{sweep_dir.relative_to(run_dir)}`"
        lines += [f"Page 6 compares the runs of the sweep in {where}.", ""]
    else:
        lines += ["This build ran no sweep: page 6 says how to produce one.", ""]
    lines += ["| | |", "|---|---|"]
    for name, notebook in sources.items():
        meta = json.loads(notebook.read_text())["metadata"].get("papermill", {})
        params = meta.get("parameters", {})
        duration = meta.get("duration")
        took = f"{duration:.0f} s" if isinstance(duration, (int, float)) else "?"
        shown = ", ".join(f"`{k}={v}`" for k, v in params.items() if k not in ("run_dir", "run_dirs"))
        lines.append(f"| `{name}` | {shown}; executed in {took} |")
    train_params = trained / "train_params.json"
    if train_params.exists():
        record = json.loads(train_params.read_text())
        lines.append("| training | " + ", ".join(f"`{k}={v}`" for k, v in record.items()) + " |")
    n_checkpoints = len(list((trained / "checkpoints").glob("epoch_*.pt")))
    lines.append(f"| checkpoints | {n_checkpoints} |")
    return "\n".join(lines) + "\n"


def stage_book(run_dir: str | Path) -> Path:
    """Copy the book's sources and the executed notebooks into RUN_DIR/book; return that folder."""
    run_dir = Path(run_dir).resolve()
    sources, trained = _notebook_sources(run_dir)
    stage = run_dir / "book"
    if stage.exists():
        shutil.rmtree(stage)
    stage.mkdir(parents=True)
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy2(REPO_ROOT / name, stage / name)
    shutil.copytree(REPO_ROOT / "book", stage / "book")
    (stage / "notebooks").mkdir()
    for name, source in sources.items():
        shutil.copy2(source, stage / "notebooks" / f"{name}.ipynb")
    if SWEEP_PAGE not in sources:
        (stage / "notebooks" / f"{SWEEP_PAGE}.md").write_text(NO_SWEEP_PAGE)
    generated = stage / "_generated"
    generated.mkdir()
    (generated / "run.md").write_text(_run_summary(run_dir, sources, trained))
    shutil.copy2(trained / "figures" / "world_training_pairs.png", generated / "world_examples.png")
    return stage


def build_book(run_dir: str | Path) -> Path:
    """Stage and build the book; return the HTML folder (RUN_DIR/book/_build/html)."""
    stage = stage_book(run_dir)
    command = [str(Path(sys.executable).with_name("jupyter-book")), "build", str(stage),
               "--warningiserror", "--keep-going", "--quiet"]
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    log = stage / "build.log"
    log.write_text(result.stdout + result.stderr)
    html = stage / "_build" / "html"
    if result.returncode != 0:
        raise BookBuildFailed(f"the book build failed (exit {result.returncode}); see {log}")
    return html
