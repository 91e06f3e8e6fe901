"""Atomic writes: a result file either exists complete or not at all."""
from __future__ import annotations

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
