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


def _run_summary(run_dir: Path) -> str:
    """Markdown describing which run produced the pages: preset, model, timings, checkpoints."""
    lines = ["| | |", "|---|---|"]
    for name in STEPS.values():
        notebook = run_dir / "notebooks" / f"{name}.ipynb"
        meta = json.loads(notebook.read_text())["metadata"].get("papermill", {})
        params = meta.get("parameters", {})
        duration = meta.get("duration")
        took = f"{duration:.0f} s" if isinstance(duration, (int, float)) else "?"
        shown = ", ".join(f"`{k}={v}`" for k, v in params.items() if k != "run_dir")
        lines.append(f"| `{name}` | {shown}; executed in {took} |")
    train_params = run_dir / "train_params.json"
    if train_params.exists():
        record = json.loads(train_params.read_text())
        lines.append("| training | " + ", ".join(f"`{k}={v}`" for k, v in record.items()) + " |")
    n_checkpoints = len(list((run_dir / "checkpoints").glob("epoch_*.pt")))
    lines.append(f"| checkpoints | {n_checkpoints} |")
    return "\n".join(lines) + "\n"


def stage_book(run_dir: str | Path) -> Path:
    """Copy the book's sources and the executed notebooks into RUN_DIR/book; return that folder."""
    run_dir = Path(run_dir).resolve()
    missing = [n for n in STEPS.values() if not (run_dir / "notebooks" / f"{n}.ipynb").exists()]
    if missing:
        raise BookBuildFailed(f"{run_dir / 'notebooks'} lacks executed notebooks {', '.join(missing)}: "
                              f"run the whole pipeline first (clipalign run --out {run_dir})")
    stage = run_dir / "book"
    if stage.exists():
        shutil.rmtree(stage)
    stage.mkdir(parents=True)
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy2(REPO_ROOT / name, stage / name)
    shutil.copytree(REPO_ROOT / "book", stage / "book")
    (stage / "notebooks").mkdir()
    for name in STEPS.values():
        shutil.copy2(run_dir / "notebooks" / f"{name}.ipynb", stage / "notebooks" / f"{name}.ipynb")
    generated = stage / "_generated"
    generated.mkdir()
    (generated / "run.md").write_text(_run_summary(run_dir))
    shutil.copy2(run_dir / "figures" / "world_training_pairs.png", generated / "world_examples.png")
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
