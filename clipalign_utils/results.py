"""Read the metric tables of one or more runs and align them per checkpoint.

Only the contract columns of DESIGN.md are read, so tables written by any version of the
analysis notebooks — or by hand — can be synthesised.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import pandas as pd

from .errors import ParameterError

REQUIRED = {
    "iqa": ["checkpoint", "epoch", "dataset", "distance", "distortion", "srcc", "srcc_lo", "srcc_hi"],
    "shape_bias": ["checkpoint", "epoch", "dataset", "shape_bias", "lo", "hi"],
    "noise": ["checkpoint", "epoch", "dataset", "sigma", "accuracy", "lo", "hi", "normalized_drop"],
}


def read_metric(run_dir: str | Path, name: str) -> pd.DataFrame:
    """RUN_DIR/metrics/<name>.csv, checked for its contract columns."""
    path = Path(run_dir) / "metrics" / f"{name}.csv"
    if not path.exists():
        step = {"iqa": "iqa", "shape_bias": "shape", "noise": "noise"}[name]
        raise ParameterError(f"{path} is missing: run the {step} step first "
                             f"(clipalign run --out {run_dir} --only {step})")
    table = pd.read_csv(path)
    missing = [c for c in REQUIRED[name] if c not in table.columns]
    if missing:
        raise ParameterError(f"{path} lacks the column(s) {', '.join(missing)}")
    return table


def checkpoint_table(run_dir: str | Path, distance: str | None = None) -> pd.DataFrame:
    """One row per checkpoint: epoch, IQA alignment (overall SRCC and CI), shape bias (and CI),
    clean accuracy, and noise_drop = the mean normalized drop over the noisy sigmas."""
    iqa = read_metric(run_dir, "iqa")
    iqa = iqa[iqa["distortion"] == "all"]
    distances = sorted(iqa["distance"].unique())
    if distance is None:
        distance = distances[0]
    if distance not in distances:
        raise ParameterError(f"distance={distance!r}: {run_dir}/metrics/iqa.csv holds {', '.join(distances)}")
    iqa = iqa[iqa["distance"] == distance].rename(
        columns={"srcc": "iqa_srcc", "srcc_lo": "iqa_srcc_lo", "srcc_hi": "iqa_srcc_hi", "dataset": "iqa_dataset"})
    iqa = iqa[["checkpoint", "epoch", "iqa_dataset", "distance", "iqa_srcc", "iqa_srcc_lo", "iqa_srcc_hi"]]

    shape = read_metric(run_dir, "shape_bias").rename(
        columns={"lo": "shape_bias_lo", "hi": "shape_bias_hi", "dataset": "cue_conflict_dataset"})
    shape = shape[["checkpoint", "cue_conflict_dataset", "shape_bias", "shape_bias_lo", "shape_bias_hi"]]

    noise = read_metric(run_dir, "noise")
    clean = noise[noise["sigma"] == 0].set_index("checkpoint")
    noisy = noise[noise["sigma"] > 0]
    robustness = pd.DataFrame({
        "noise_dataset": clean["dataset"],
        "clean_accuracy": clean["accuracy"],
        "noise_drop": noisy.groupby("checkpoint")["normalized_drop"].mean(),
    }).reset_index()

    table = iqa.merge(shape, on="checkpoint", how="outer").merge(robustness, on="checkpoint", how="outer")
    table["run"] = str(run_dir)
    return table.sort_values("epoch").reset_index(drop=True)


def checkpoint_tables(run_dirs: Sequence[str | Path], distance: str | None = None) -> pd.DataFrame:
    """checkpoint_table of several runs stacked (column `run` tells them apart)."""
    return pd.concat([checkpoint_table(d, distance) for d in run_dirs], ignore_index=True)


def noise_curves(run_dir: str | Path) -> pd.DataFrame:
    """noise.csv as read (one row per checkpoint x sigma), for the accuracy panel."""
    return read_metric(run_dir, "noise")
