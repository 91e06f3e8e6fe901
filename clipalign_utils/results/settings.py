"""Runs that differ in their parameters (a sweep): which parameters differ, a label per run, and the
comparison's tables."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import pandas as pd

from .. import registry
from ..config import format_value
from .checkpoints import checkpoint_tables, noise_curves_of
from .runs import run_labels

# Parameters that never make two runs different experiments: seeds are replicates, the rest is plumbing.
NOT_A_SETTING = {"seed", "device", "eval_batch_size"}


def run_parameters(run_dir: str | Path) -> dict:
    """Every parameter a run used, from its record (``record.json``): each step's resolved values, later
    steps over earlier ones, with ``preset``; but a step's value from the preset does not replace one an earlier
    step was given or had recorded (a step records the preset's value for a parameter it does not read: the
    synthesis's sigmas are not those the noise step measured with). A run with no record (open_clip_train's)
    gives {}."""
    from ..record import Resolved, read

    entries = read(run_dir).get("steps", {})
    params, chosen = {}, set()  # chosen: the names whose value came from no preset
    for step in registry.steps():  # in execution order: a later step's analysis values win
        if step.name in entries:
            resolved = Resolved.from_json(entries[step.name])
            for name, value in resolved.params.items():
                from_preset = resolved.sources.get(name, "preset").startswith("preset")
                if name not in chosen or not from_preset:
                    params[name] = value
                    if not from_preset:
                        chosen.add(name)
    return params


def _preset_of(params: list[dict]) -> dict:
    """The preset values the first run was resolved on ({} when it records no parameters)."""
    from ..config import PRESETS

    return PRESETS.get(params[0].get("preset", "default"), {}) if params and params[0] else {}


def _labels(params: list[dict], run_dirs: Sequence[str | Path]) -> tuple[list[str], list[str]]:
    keys = [k for k in (params[0] if params else {}) if k not in NOT_A_SETTING]
    factors = [k for k in keys if len({format_value(p.get(k)) for p in params}) > 1]
    preset = _preset_of(params)
    changes = [[k for k in factors if k in preset and p.get(k) != preset[k]] for p in params]
    if len(factors) > 1 and all(len(c) <= 1 for c in changes):
        labels = [f"{c[0]}={format_value(p[c[0]])}" if c else "base" for c, p in zip(changes, params)]
    else:
        # No factor: the runs are replicates of one setting (seeds), unless a run records no parameters
        # (open_clip_train's), which is then known by its directory.
        labels = [", ".join(f"{k}={format_value(p.get(k))}" for k in factors) or ("all runs" if p else Path(d).name)
                  for p, d in zip(params, run_dirs)]
    return labels, factors


def setting_labels(run_dirs: Sequence[str | Path]) -> tuple[list[str], list[str]]:
    """(labels, factors): factors are the parameters whose values differ between the runs (seed aside);
    a run's label names its values of them ("texture_correlation=0.5"). When every run changes at most
    one factor from the preset's value (a one-at-a-time sweep) a label names only that change, and the
    run that changes none is "base"."""
    return _labels([run_parameters(d) for d in run_dirs], run_dirs)


def sweep_tables(run_dirs: Sequence[str | Path], distance: str | None = None) -> dict:
    """Everything a comparison of runs needs, as a dict:

    - table, noise: ``checkpoint_tables`` and ``noise_curves_of`` with a column ``setting`` (the run's
      label from ``setting_labels``) and one column per factor;
    - settings: one row per setting: setting, its factor values, n_runs;
    - factors: the parameters that differ between runs;
    - reference: per factor, the value the others are compared at (the preset's, when a run has it).
    Factor values are shown as text ("0.5", "0.01,0.02").
    """
    run_dirs = [Path(d) for d in run_dirs]
    params = [run_parameters(d) for d in run_dirs]  # each run's record, read once
    labels, factors = _labels(params, run_dirs)
    by_run = {run: (label, {k: format_value(p.get(k)) for k in factors})
              for run, label, p in zip(run_labels(run_dirs), labels, params)}
    # a swept distance: each run read at its own (the page's one distance is held by one setting alone)
    distances = [p.get("distance") for p in params] if "distance" in factors else distance
    table, noise = checkpoint_tables(run_dirs, distances), noise_curves_of(run_dirs)
    for frame in (table, noise):
        frame["setting"] = frame["run"].map(lambda r: by_run[r][0])
        for k in factors:
            frame[k] = frame["run"].map(lambda r, k=k: by_run[r][1][k])
    settings = pd.DataFrame([{"setting": label, **values} for label, values in by_run.values()])
    settings = settings.groupby("setting", sort=False).agg(
        **{k: (k, "first") for k in factors}, n_runs=("setting", "size")).reset_index()
    preset = _preset_of(params)
    reference = {}
    for k in factors:
        shown = format_value(preset[k]) if k in preset else None
        reference[k] = shown if shown in set(settings[k]) else settings[k].iloc[0]
    return {"table": table, "noise": noise, "settings": settings, "factors": factors, "reference": reference}
