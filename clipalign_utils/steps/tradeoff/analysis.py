"""The ``tradeoff`` step, the synthesis: the per-run analyses lined up per checkpoint over one run or
several (seeds of one or more scales), the claims' verdicts, their relations and the checkpoint
selection. A synthesis reads runs, not one run: ``measure(run_dirs, params)``.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ...config import bootstrap_seed
from ... import registry, results
from ...metrics import tradeoff

# The per-checkpoint columns the page's table of seed means shows for every run (then optional_columns()).
SHOWN = ["epoch", "iqa_srcc", "shape_bias", "clean_accuracy", "noise_drop"]


def optional_columns() -> list[str]:
    """The optional steps' headline columns (similarity, saliency): shown when the runs have their tables."""
    return [summary.column for _, summary in registry.summaries(required=False)]


def peaked() -> list[tuple[str, str]]:
    """The curves judged by a "peaks early" claim: (column, what the page calls it)."""
    return [(summary.column, summary.what) for _, summary in registry.summaries()
            if any(isinstance(claim, registry.PeakClaim) for claim in summary.claims)]


def load(run_dirs: list[Path], params: dict) -> pd.DataFrame:
    """One row per run × checkpoint: every analysis' measure (``results.checkpoint_tables``)."""
    return results.checkpoint_tables(run_dirs, params["distance"])


def measure(run_dirs: list[Path], params: dict, table: pd.DataFrame | None = None) -> dict[str, pd.DataFrame]:
    """{"tradeoff": the checkpoint table with the Pareto front and the selection, "tradeoff_relations":
    pairwise relations per scale, "tradeoff_verdicts": the claims' verdicts per scale,
    "tradeoff_seed_means": per scale × epoch, the mean and t-interval over seeds}."""
    table = load(run_dirs, params) if table is None else table
    return {
        "tradeoff": tradeoff.synthesis_table(table, params["alignment_weight"]),
        "tradeoff_relations": tradeoff.pairwise_relations(table, n_perm=params["n_perm"], seed=bootstrap_seed(params),
                                                          by="scale"),
        "tradeoff_verdicts": tradeoff.verdicts(table, n_perm=params["n_perm"], seed=bootstrap_seed(params), by="scale"),
        "tradeoff_seed_means": tradeoff.seed_means(table),
    }


def runs_overview(table: pd.DataFrame) -> pd.DataFrame:
    """One row per run: scale, seed ("unknown" where its record gives none: a run trained elsewhere, shown as
    NaN) and its number of checkpoints."""
    overview = table.groupby(["scale", "seed"], sort=False, dropna=False).size().rename("checkpoints").reset_index()
    return overview.assign(seed=[("unknown" if pd.isna(seed) else int(seed)) for seed in overview["seed"]])


def means_view(means: pd.DataFrame) -> pd.DataFrame:
    """The seed means of the measures the runs have, per scale and epoch, with at_chance (most seeds' clean
    accuracy at chance: the trends leave that epoch's noise drop out), n_above_chance (the seeds the drop's
    mean is over) and shape_at_chance (most seeds' cue-conflict decisions at chance: its texture bias left
    out) with n_shape_above_chance (the seeds the shape bias' mean is over) when the runs have them."""
    flag = [c for c in ("at_chance", "n_above_chance", "shape_at_chance", "n_shape_above_chance") if c in means.columns]
    return means[["scale", "n_seeds"] + SHOWN + flag + [c for c in optional_columns() if c in means.columns]]


def plane(means: pd.DataFrame, params: dict) -> pd.DataFrame:
    """The alignment–robustness plane of the seed means, one per scale: Pareto front and selection."""
    return tradeoff.synthesis_table(means, params["alignment_weight"], by="scale")


