"""Atomic writes: a result file either exists complete or not at all."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd


def write_table(table: pd.DataFrame, run_dir: str | Path, name: str) -> Path:
    """Write RUN_DIR/metrics/<name>.csv via a temporary file and a rename."""
    out = Path(run_dir) / "metrics" / f"{name}.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{name}.tmp.csv")
    table.to_csv(tmp, index=False)
    os.replace(tmp, out)
    return out


def write_json(path: str | Path, record: dict) -> Path:
    """Write ``record`` as indented JSON to ``path`` via a temporary file and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    os.replace(tmp, path)
    return path
