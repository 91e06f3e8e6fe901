"""The run-directory type: the one place that knows where a run keeps its checkpoints, tables, figures,
executed notebooks and records, whether a step of it is done, whether it is complete, and what kind of
folder a path is.

A run directory (``RunDir(path)``)::

    checkpoints/epoch_<E>.pt   params.txt          (ours and open_clip_train's alike)
    train_params.json          our training's record, written when training starts
    record.json                each step's resolved parameters, where each came from, evaluation-set hashes
    source.json                a streamed run's source and checkpoints (``clipalign run --checkpoints``)
    notebooks/<notebook>.ipynb each executed step (a step is done when its notebook is there)
    metrics/<table>.csv        figures/<name>.png  cache/ (embeddings)

The other folders the CLI writes are known by the record written when they start (``KIND_RECORDS``):
several runs (``runs.json``: --seeds/--scales, the default book), a sweep (``sweep.json``), an
experiment's folder of sweeps (``experiment.json``).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from natsort import natsorted

from . import registry
from .schedule import epoch_files

TRAIN_RECORD = "train_params.json"
PARAMS_TXT = "params.txt"
TRAIN_LOG = "train_log.csv"
RUN_RECORD = "record.json"
SOURCE_RECORD = "source.json"
KIND_RECORDS = {"runs": "runs.json", "sweep": "sweep.json", "experiment": "experiment.json"}
KINDS = ("run",) + tuple(KIND_RECORDS)
BOOK = "book"  # the staged book inside a run's or a folder's directory: never a run
# Where a book is built before it replaces BOOK whole, where a failed build is kept for its log, and where
# the previous book waits out the swap.
BOOK_BUILDING, BOOK_FAILED, BOOK_REPLACED = ".book-building", ".book-failed", ".book-replaced"
BOOK_FOLDERS = frozenset({BOOK, BOOK_BUILDING, BOOK_FAILED, BOOK_REPLACED})
# The folders of a run (or of a folder of runs) that hold no runs.
PARTS = frozenset({"checkpoints", "cache", "metrics", "figures", "notebooks"}) | BOOK_FOLDERS


def _inside(name: str, doc: str | None = None) -> property:
    """A path inside the run directory, as a read-only attribute."""
    return property(lambda self: self.path / name, doc=doc or f"RUN_DIR/{name}")


@dataclass(frozen=True)
class RunDir:
    """A run's directory (or any folder the CLI writes): paths, steps done, completeness, kind."""

    path: Path

    def __post_init__(self):
        object.__setattr__(self, "path", Path(self.path))

    # --- paths ---------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.path.name

    checkpoints = _inside("checkpoints")
    metrics = _inside("metrics")
    figures = _inside("figures")
    notebooks = _inside("notebooks")
    cache = _inside("cache", "Cached embeddings (``encoder``).")
    train_record = _inside(TRAIN_RECORD, "Our training's parameters, written when training starts.")
    params_txt = _inside(PARAMS_TXT, "The model and input size, as open_clip_train writes them.")
    train_log = _inside(TRAIN_LOG, "Our training's loss and learning rate per step.")
    source_record = _inside(SOURCE_RECORD, "A streamed run's manifest: its source and checkpoints "
                                           "(``orchestration.stream``).")
    run_record = _inside(RUN_RECORD, "Each step's resolved parameters, their sources and evaluation-set hashes "
                                     "(``record``).")

    def table(self, name: str) -> Path:
        return self.metrics / f"{name}.csv"

    def missing_analyses(self) -> list[str]:
        """The analysis steps whose tables this run lacks: what its synthesis would measure before reading them."""
        return [step.name for step in registry.analysis_steps()
                if not all(self.table(table.name).exists() for table in step.tables)]

    def tables_only(self) -> bool:
        """A run shared without its weights (no checkpoints/, not streamed) but with every table its synthesis
        reads: synthesised again from them. A run with checkpoints is checked as ever."""
        return (self.path.is_dir() and not self.checkpoints.exists() and not self.source_record.exists()
                and not self.missing_analyses())

    def figure(self, name: str) -> Path:
        return self.figures / f"{name}.png"

    def executed(self, notebook: str) -> Path:
        """Where ``clipalign run`` puts the executed notebook ``notebook`` (a step's or a page's name)."""
        return self.notebooks / f"{notebook}.ipynb"

    def record(self, kind: str) -> Path:
        """The record file of a folder of ``kind`` (``KIND_RECORDS``)."""
        return self.path / KIND_RECORDS[kind]

    def source_manifest(self) -> dict | None:
        """A streamed run's manifest (``source.json``: its source and checkpoints), None for any other run."""
        return json.loads(self.source_record.read_text()) if self.source_record.exists() else None

    def checkpoint_files(self) -> list[Path]:
        """The run's ``epoch_<E>.pt`` files, in epoch order (``epoch_latest.pt`` and the like left out)."""
        return [path for _, path in epoch_files(self.checkpoints)]

    def holds_others_checkpoints(self) -> bool:
        """Checkpoint files without this project's training record: another trainer's (open_clip_train's logs,
        a downloaded trajectory, an ``epoch_latest.pt`` alone), which training must never resume into and
        rewrite."""
        return any(self.checkpoints.glob("epoch_*.pt")) and not self.train_record.exists()

    # --- state ---------------------------------------------------------------------------------
    def done(self, step: str) -> bool:
        """The registered step ``step`` ran here: its executed notebook exists."""
        return self.executed(registry.get(step).notebook).exists()

    def done_all(self, steps) -> bool:
        """Every one of ``steps`` (names) ran here."""
        return all(self.done(step) for step in steps)

    @property
    def complete(self) -> bool:
        """Every per-run step of the registry has its executed notebook here."""
        return self.done_all(s.name for s in registry.per_run_steps())

    @property
    def is_run(self) -> bool:
        """One training run's directory: a checkpoints folder (or our training's record)."""
        return self.checkpoints.is_dir() or self.train_record.exists()

    @property
    def kind(self) -> str | None:
        """``run``, ``runs``, ``sweep`` or ``experiment`` (``KINDS``), by the folder's record; a folder of runs
        written before runs.json existed is known by the runs inside it. None: none of these."""
        if self.is_run:
            return "run"
        for kind in KIND_RECORDS:
            if self.record(kind).exists():
                return kind
        return "runs" if self.runs() else None

    def runs(self) -> list[RunDir]:
        """The training runs directly inside (a multi-run folder's ``<scale>-seed<k>``), in natural name order
        (``seed2`` before ``seed10``; plain string order put ``seed10`` first); the staged book and a streamed
        trajectory are none. Empty for a run directory itself (it holds its own checkpoints)."""
        if not self.path.is_dir() or self.is_run:
            return []
        inside = (RunDir(d) for d in natsorted(self.path.iterdir(), key=lambda d: d.name)
                  if d.is_dir() and d.name not in BOOK_FOLDERS)
        # A trajectory streamed from elsewhere (source.json) is a page of the folder's book, not one of its runs.
        return [d for d in inside if d.is_run and not d.source_record.exists()]


def read_params_txt(path: Path) -> dict[str, str]:
    """open_clip_train's params.txt: one "key: value" per line."""
    params = {}
    for line in Path(path).read_text().splitlines():
        key, sep, value = line.partition(":")
        if sep:
            params[key.strip()] = value.strip()
    return params


def image_size_of(params: Mapping[str, str]) -> int | None:
    """params.txt's ``force_image_size`` (open_clip_train writes "32", "[32]" or "None")."""
    size = re.findall(r"\d+", params.get("force_image_size", "") or "")
    return int(size[0]) if size else None


def runs_in(folder: str | Path) -> list[Path]:
    """The paths of :meth:`RunDir.runs` (what the orchestration loops over)."""
    return [d.path for d in RunDir(folder).runs()]
