"""The synthesis' input: one row per checkpoint, every step's summary side by side, built from the step
registry (each step's :class:`~clipalign_utils.registry.Summary`), over one run or several.

Only the contract columns the steps register (registry.Table) are read, so tables written by any version of the analysis
notebooks (or by hand) can be synthesised. A step whose summary is not ``required`` (similarity, saliency)
joins when the run has its table."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import pandas as pd

from .. import registry
from ..layout import RunDir
from .runs import run_identity, run_labels
from .tables import has_table, read_metric


def _summary_rows(run_dir: Path, step: registry.Step, distance: str | None) -> pd.DataFrame | None:
    """The step's summary per checkpoint (None when an optional step's table is missing or has no rows)."""
    summary, main = step.summary, step.tables[0]
    if not summary.required and not has_table(run_dir, main.name):
        return None
    table = read_metric(run_dir, main.name)
    if summary.baselines:
        table = table[~table["checkpoint"].isin(summary.baselines)]
    rows = step.summary_function()(table, distance, RunDir(run_dir).table(main.name))
    return None if rows is None or (rows.empty and not summary.required) else rows


def _peak_columns(table: pd.DataFrame, run_dir: Path, distance: str | None) -> None:
    """Each peak claim's paired early-peak test (``<prefix>_peak.csv``, at the synthesis' distance where it
    has one) as ``<prefix>_early_drop[_lo/_hi]``, one value per run repeated on its rows."""
    for _, claim in registry.peak_claims():
        path = RunDir(run_dir).table(claim.table)
        if not path.exists():
            continue
        peak = pd.read_csv(path)
        if "distance" in peak.columns and distance in set(peak["distance"]):
            peak = peak[peak["distance"] == distance]
        for suffix, source in (("", "early_drop"), ("_lo", "lo"), ("_hi", "hi")):
            table[f"{claim.prefix}_early_drop{suffix}"] = float(peak[source].iloc[0]) if len(peak) else float("nan")


def _trend_columns(table: pd.DataFrame, run_dir: Path) -> None:
    """Each trend claim's paired test over the run (``<step>_trend.csv``, ``registry.trend_table``) as
    ``<column>_trend[_lo/_hi]``, one value per run repeated on its rows; none for a run whose step wrote no such
    table (then the claim is judged as before it had one)."""
    for step, claim in registry.trend_claims():
        path = RunDir(run_dir).table(registry.trend_table(step))
        if not path.exists():
            continue
        trends = pd.read_csv(path)
        trend = trends[trends["measure"] == claim.column]
        for suffix, source in (("", "spearman"), ("_lo", "lo"), ("_hi", "hi")):
            table[f"{claim.column}_trend{suffix}"] = float(trend[source].iloc[0]) if len(trend) else float("nan")


def checkpoint_table(run_dir: str | Path, distance: str | None = None) -> pd.DataFrame:
    """One row per checkpoint of the run: every registered step's summary columns (``Summary.function``; the
    required steps' joined outer, the others' left where the run has their table), each peak claim's
    paired early-peak test (``<prefix>_early_drop[_lo/_hi]``), each trend claim's paired trend test
    (``<column>_trend[_lo/_hi]``), samples_seen for a streamed trajectory
    (``RUN_DIR/source.json``; nan where the source does not say) and run = the run directory's name (a
    portable label); sorted by epoch.

    ``distance``: the IQA distance to read (None: the table's only one). The first summary that reports a
    ``distance`` column fixes it for the others (the 2AFC score and the peak tests are read at it when
    their tables hold it)."""
    run_dir = Path(run_dir)
    table = None
    for step, summary in registry.summaries():
        rows = _summary_rows(run_dir, step, distance)
        if rows is None:
            continue
        if "distance" in rows.columns and len(rows):
            distance = rows["distance"].iloc[0]
        table = rows if table is None else table.merge(rows, on="checkpoint", how="outer" if summary.required else "left")
    _peak_columns(table, run_dir, distance)
    _trend_columns(table, run_dir)
    manifest = RunDir(run_dir).source_manifest()
    if manifest is not None:
        # A streamed trajectory's place on its own axis (LAION's epochs are fixed sample counts).
        seen = {c["name"]: c.get("samples_seen") for c in manifest["checkpoints"]}
        table["samples_seen"] = table["checkpoint"].map(seen).astype(float)
    table["run"] = run_dir.name
    return table.sort_values("epoch").reset_index(drop=True)


def checkpoint_tables(run_dirs: Sequence[str | Path], distance: str | None | Sequence[str | None] = None
                      ) -> pd.DataFrame:
    """checkpoint_table of several runs stacked; columns `run` (``run_labels``), `scale` and `seed`
    (run_identity) tell them apart. ``distance``: one for every run, or one per run (a sweep over it)."""
    tables = []
    distances = [distance] * len(run_dirs) if distance is None or isinstance(distance, str) else list(distance)
    for run_dir, label, run_distance in zip(run_dirs, run_labels(run_dirs), distances):
        identity = run_identity(run_dir)
        table = checkpoint_table(run_dir, run_distance).assign(run=label)
        table["scale"] = identity["scale"] if identity["scale"] is not None else Path(run_dir).name
        table["seed"] = identity["seed"]
        tables.append(table)
    return pd.concat(tables, ignore_index=True)


def noise_curves(run_dir: str | Path) -> pd.DataFrame:
    """noise.csv as read (one row per checkpoint x sigma), for the accuracy panel."""
    return read_metric(run_dir, "noise")


def noise_curves_of(run_dirs: Sequence[str | Path]) -> pd.DataFrame:
    """noise_curves of several runs stacked, with columns run, scale and seed as in checkpoint_tables."""
    tables = []
    for run_dir, label in zip(run_dirs, run_labels(run_dirs)):
        identity = run_identity(run_dir)
        tables.append(noise_curves(run_dir).assign(
            run=label, scale=identity["scale"] if identity["scale"] is not None else Path(run_dir).name,
            seed=identity["seed"]))
    return pd.concat(tables, ignore_index=True)
