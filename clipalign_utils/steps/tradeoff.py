"""The ``tradeoff`` step, the synthesis: the per-run analyses lined up per checkpoint over one run or
several (seeds of one or more scales), the claims' verdicts, their relations and the checkpoint
selection. A synthesis reads runs, not one run: ``measure(run_dirs, params)``."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..config import bootstrap_seed
from .. import results
from ..metrics import tradeoff
from ..plots.tradeoff import alignment_robustness_plane, relation_panels, summary_figure

# The per-checkpoint columns the page shows beside each scale's seed count.
SHOWN = ["epoch", "iqa_srcc", "shape_bias", "clean_accuracy", "noise_drop"]
OPTIONAL = ["two_afc_score", "saliency_cc"]  # when the runs have the similarity and saliency tables
PEAKED = [("iqa_srcc", "IQA alignment (SRCC)"), ("two_afc_score", "2AFC similarity score"),
          ("saliency_cc", "saliency CC")]


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
    """One row per run: scale, seed and its number of checkpoints."""
    return table.groupby(["scale", "seed"], sort=False, dropna=False).size().rename("checkpoints").reset_index()


def means_view(means: pd.DataFrame) -> pd.DataFrame:
    """The seed means of the measures the runs have, per scale and epoch."""
    return means[["scale", "n_seeds"] + SHOWN + [c for c in OPTIONAL if c in means.columns]]


def summary(means: pd.DataFrame, run_dirs: list[Path]):
    """The summary figure: every measure's seed-mean curve, and accuracy per noise level."""
    noise_means = tradeoff.seed_means(results.noise_curves_of(run_dirs), {"accuracy": ("lo", "hi")},
                                      by=("scale", "sigma", "epoch"))
    return summary_figure(means, noise_means, by="scale")


def _prefix(frame: pd.DataFrame, scale: str) -> str:
    return f"{scale}: " if frame["scale"].nunique() > 1 else ""


def peak_sentences(means: pd.DataFrame) -> list[str]:
    """Where each alignment measure's seed-mean curve peaks, per scale, and whether the peak is interior
    and its interval above the last checkpoint's (``tradeoff.rises_then_falls``)."""
    lines = []
    for scale, curve in means.groupby("scale", sort=False):
        for column, what in PEAKED:
            if column not in curve.columns or not curve[column].notna().any():
                continue
            peak = tradeoff.rises_then_falls(curve["epoch"], curve[column], curve[f"{column}_lo"],
                                             curve[f"{column}_hi"])
            lines.append(
                f"{_prefix(means, scale)}{what} peaks at epoch {peak['peak_epoch']:g} with "
                f"{peak['peak_value']:.3f}; the last checkpoint (epoch {peak['final_epoch']:g}) has "
                f"{peak['final_value']:.3f}. The peak lies strictly inside the run: **{peak['peak_is_interior']}**; "
                f"its interval lies above the last checkpoint's: **{peak['ci_separated']}**.")
    return lines


def relations_figure(means: pd.DataFrame, relations: pd.DataFrame):
    return relation_panels(means, relations, by="scale")


def plane(means: pd.DataFrame, params: dict) -> pd.DataFrame:
    """The alignment–robustness plane of the seed means, one per scale: Pareto front and selection."""
    return tradeoff.synthesis_table(means, params["alignment_weight"], by="scale")


def plane_figure(means: pd.DataFrame, plane_table: pd.DataFrame):
    selected = {row.scale: label for label, row in plane_table[plane_table["selected"]].iterrows()}
    return alignment_robustness_plane(means, plane_table["on_pareto_front"].to_numpy(), selected, by="scale")


def plane_sentences(plane_table: pd.DataFrame, params: dict) -> list[str]:
    """Per scale: the Pareto front's checkpoints and the one selected with ``alignment_weight``."""
    lines = []
    for scale, rows in plane_table.groupby("scale", sort=False):
        choice = rows[rows["selected"]]
        choice = (f"{choice['checkpoint'].iloc[0]} (epoch {choice['epoch'].iloc[0]:g})" if len(choice)
                  else "none (no checkpoint has a noise drop: all at chance)")
        lines.append(f"{_prefix(plane_table, scale)}Pareto front: "
                     f"{', '.join(rows.loc[rows['on_pareto_front'], 'checkpoint']) or 'empty'}; "
                     f"selected with alignment_weight={params['alignment_weight']}: {choice}")
    return lines


def verdict_text(verdicts: pd.DataFrame) -> str:
    """The verdicts as one Markdown list (``results.verdict_sentences``)."""
    return "\n".join(results.verdict_sentences(verdicts))
