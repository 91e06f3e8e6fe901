"""Atomic writes: a result file either exists complete or not at all."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
import zipfile
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


# torch.save's legacy (pre-1.6) format: a pickle whose first object is this number, as a pickle LONG1 opcode.
_LEGACY_MAGIC = b"\x8a\x0a" + 0x1950A86A20F9469CFC6C.to_bytes(10, "little")


def checkpoint_format_problem(path: str | Path) -> str | None:
    """What makes ``path`` no file torch.save writes, in words (None: it is one, as far as its framing says).
    Cheap for a 600 MB checkpoint: its first bytes and its zip directory are read, not its tensors. A
    ``.npz``/``.npy`` (big_vision's weights) or ``.safetensors`` file is open_clip's to read: not judged here."""
    path = Path(path)
    if path.suffix in (".npz", ".npy", ".safetensors"):
        return None
    try:
        with open(path, "rb") as handle:
            head = handle.read(32)
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                if any(name == "data.pkl" or name.endswith("/data.pkl") for name in archive.namelist()):
                    return None
            return "a zip archive without the data.pkl torch.save writes in one"
    except (OSError, zipfile.BadZipFile) as error:
        return f"it cannot be read ({getattr(error, 'strerror', None) or error})"
    if not head:
        return "the file is empty"
    if head.startswith(b"PK\x03\x04"):  # a zip's start without its end (directory): cut short
        return (f"an incomplete zip archive ({path.stat().st_size} bytes, no directory at its end: cut short "
                f"while saved or copied?)")
    if head.startswith(b"\x80") and _LEGACY_MAGIC in head:
        return None
    return f"neither the zip archive torch.save writes nor its older pickle format (it begins {head[:12]!r})"
