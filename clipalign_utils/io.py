"""Atomic writes: a result file either exists complete or not at all."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Callable

import pandas as pd

from .layout import RunDir


def atomic_write(path: str | Path, write: Callable[[Path], object]) -> Path:
    """``write(tmp)`` into a temporary file beside ``path`` (same suffix, so writers that pick a format by
    it still do), then rename it to ``path``: a reader never sees a half-written result. The one
    atomic-write helper every writer of the package uses. The temporary file lies in a folder of the
    writer's own: two processes writing one file at once (a sweep's local jobs each record the sweep) must
    not rename each other's temporary away, and the last rename wins, whole. Its name is always the same,
    since some writers record it (torch.save names its archive after it), so a result's bytes are too."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    folder = path.with_name(f".{path.stem}.{uuid.uuid4().hex[:12]}.tmp")
    folder.mkdir()
    tmp = folder / f".{path.stem}.tmp{path.suffix}"
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return path


def write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def write_table(table: pd.DataFrame, run_dir: str | Path, name: str) -> Path:
    """Write RUN_DIR/metrics/<name>.csv via a temporary file and a rename."""
    return _write_csv(table_bytes(table), run_dir, name)


def table_bytes(table: pd.DataFrame) -> bytes:
    """A table's CSV file, byte for byte (what ``pandas.DataFrame.to_csv`` writes to a path)."""
    return table.to_csv(index=False).encode()


def _write_csv(data: bytes, run_dir: str | Path, name: str) -> Path:
    return atomic_write(RunDir(run_dir).table(name), lambda tmp: Path(tmp).write_bytes(data))


# Called with the run folder and {the tables' paths relative to it: sha256 of their bytes} before a step's tables
# are written: record.py adds the one that writes the page's staged record.json entry, so the parameters are
# recorded with the tables they made (and not by a page that failed first), and the tables with what they hold.
# A list here rather than an import: record imports this module.
BEFORE_TABLES: list[Callable[[Path, dict[str, str]], None]] = []


def write_tables(tables: dict[str, pd.DataFrame], run_dir: str | Path, optional: tuple[str, ...] = ()) -> list[Path]:
    """Write each of a step's tables ({name: table}, what ``measure`` returns) as RUN_DIR/metrics/<name>.csv.
    ``optional``: the tables the step writes only with some parameters or datasets (its module's
    ``OPTIONAL_TABLES``); one of them it did not produce this time is removed, with the figure its page
    drew of it under the same name, so that an earlier measurement's table (another dataset's, other
    parameters') does not stay beside this one's."""
    data = {name: table_bytes(table) for name, table in tables.items()}
    written = {table_key(run_dir, RunDir(run_dir).table(name)): hashlib.sha256(csv).hexdigest()
               for name, csv in data.items()}
    for hook in BEFORE_TABLES:
        hook(run_dir, written)
    for name in optional:
        if name not in tables:
            RunDir(run_dir).table(name).unlink(missing_ok=True)
            RunDir(run_dir).figure(name).unlink(missing_ok=True)
    return [_write_csv(csv, run_dir, name) for name, csv in data.items()]


def table_key(run_dir: str | Path, path: str | Path) -> str:
    """A table's path as a run's record names it: relative to the run, with forward slashes (portable)."""
    return Path(os.path.relpath(Path(path).resolve(), Path(run_dir).resolve())).as_posix()


def write_json(path: str | Path, record: dict) -> Path:
    """Write ``record`` as indented JSON to ``path`` via a temporary file and a rename."""
    return write_text(path, json.dumps(record, indent=2) + "\n")
