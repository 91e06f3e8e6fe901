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


def _notebook_sources(run_dir: Path) -> tuple[dict[str, Path], Path]:
    """Executed notebook per step, and the run directory that trained the pages' model.

    A multi-run directory (``--seeds``/``--scales``) holds only the synthesis; its other pages come
    from its first complete run (sub-directories in name order)."""
    own = {name: run_dir / "notebooks" / f"{name}.ipynb" for name in STEPS.values()}
    if all(path.exists() for path in own.values()):
        return own, run_dir
    runs = sorted(d for d in run_dir.iterdir() if (d / "notebooks" / f"{STEPS['noise']}.ipynb").exists())
    if not runs or not own[STEPS["tradeoff"]].exists():
        missing = ", ".join(name for name, path in own.items() if not path.exists())
        raise BookBuildFailed(f"{run_dir / 'notebooks'} lacks executed notebooks {missing}: "
                              f"run the whole pipeline first (clipalign run --out {run_dir})")
    sources = {name: runs[0] / "notebooks" / f"{name}.ipynb" for name in STEPS.values()}
    sources[STEPS["tradeoff"]] = own[STEPS["tradeoff"]]
    return sources, runs[0]


def _run_summary(run_dir: Path, sources: dict[str, Path], trained: Path) -> str:
    """Markdown describing which run produced the pages: preset, model, timings, checkpoints."""
    lines = []
    if trained != run_dir:
        others = sorted(d.name for d in run_dir.iterdir() if (d / "train_params.json").exists())
        lines += [f"Pages 1–4 show the run `{trained.name}`; page 5 synthesises all runs of this "
                  f"directory: {', '.join(f'`{name}`' for name in others)}.", ""]
    lines += ["| | |", "|---|---|"]
    for name in STEPS.values():
        notebook = sources[name]
        meta = json.loads(notebook.read_text())["metadata"].get("papermill", {})
        params = meta.get("parameters", {})
        duration = meta.get("duration")
        took = f"{duration:.0f} s" if isinstance(duration, (int, float)) else "?"
        shown = ", ".join(f"`{k}={v}`" for k, v in params.items() if k != "run_dir")
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
