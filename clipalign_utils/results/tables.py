"""Reading a run's metric tables: checked against their registered schema (``registry.Table``), with the
message that names the step to run when one is missing."""
from __future__ import annotations

from io import BytesIO
from pathlib import Path

import pandas as pd

from .. import record, registry
from ..errors import ParameterError, shell_arg
from ..layout import RunDir
from ..prose import plural


def read_metric(run_dir: str | Path, name: str) -> pd.DataFrame:
    """RUN_DIR/metrics/<name>.csv (any registered table), checked for its contract columns."""
    table_schema = registry.table(name)
    path = RunDir(run_dir).table(table_schema.name)
    if not path.exists():
        raise ParameterError(f"{path} is missing: {_run_step(run_dir, name, 'first')}")
    data = path.read_bytes()
    record.check_written(run_dir, table_schema.name, path, data)
    record.note_table_read(path, data)  # the page that reads it records what it was made from
    try:
        table = pd.read_csv(BytesIO(data))
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise ParameterError(f"{path} cannot be read as a table ({type(error).__name__}: {error}): "
                             f"{_run_step(run_dir, name, 'again')}") from None
    missing = table_schema.missing_columns(table.columns)
    if missing:  # an older version's table, most often
        raise ParameterError(f"{path} lacks the {plural(len(missing), 'column')} {', '.join(missing)}: "
                             f"{_run_step(run_dir, name, 'again')}")
    return table


def _run_step(run_dir: str | Path, table: str, when: str) -> str:
    """What to do about a table that is missing or unusable: the step that writes it, and its command."""
    step = registry.step_of_table(table).name
    return f"run the {step} step {when} (clipalign run --out {shell_arg(run_dir)} --only {step})"


def has_table(run_dir: str | Path, name: str) -> bool:
    return RunDir(run_dir).table(registry.table(name).name).exists()


def step_tables(run_dir: str | Path) -> dict[str, pd.DataFrame]:
    """Every registered table the run holds, read and checked: {table name: DataFrame}."""
    return {name: read_metric(run_dir, name) for name in registry.tables() if has_table(run_dir, name)}


def pick_distance(table: pd.DataFrame, distance: str | None, path: Path) -> str:
    """The distance to read from ``table`` (a metric table with a ``distance`` column, read from ``path``):
    ``distance`` when given (it must be there), else the table's only one; a table holding several needs
    the choice made, and one holding none is named."""
    held = list(dict.fromkeys(table["distance"]))
    if distance is not None and distance in held:
        return distance
    if distance is None and len(held) == 1:
        return held[0]
    wanted = f"distance={distance!r}: " if distance is not None else "pass distance: "
    # What to do, in the same line: read one it holds, or measure the IQA step at the one asked for.
    if not held:
        remedy = ""
    elif distance is None:
        remedy = f" (give -p distance={held[0]})"
    else:
        remedy = f" (give -p distance={held[0]}, or run --only iqa -p distance={distance} first)"
    raise ParameterError(f"{wanted}{path} holds {', '.join(held) or 'no rows'}{remedy}")
