"""Read the metric tables of one or more runs and align them per checkpoint.

Only the contract columns of DESIGN.md are read (their schema is the step registry's, see
``clipalign_utils.registry``), so tables written by any version of the analysis notebooks — or by
hand — can be synthesised. The similarity (2AFC) and saliency tables are optional: a run without them
still synthesises.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import pandas as pd

from . import registry
from .config import format_value
from .errors import ParameterError
from .layout import RunDir, runs_in
from .metrics.tradeoff import PEAK_CLAIMS


def read_metric(run_dir: str | Path, name: str) -> pd.DataFrame:
    """RUN_DIR/metrics/<name>.csv (any registered table), checked for its contract columns."""
    table_schema = registry.table(name)
    path = RunDir(run_dir).table(table_schema.name)
    if not path.exists():
        step = registry.step_of_table(name).name
        raise ParameterError(f"{path} is missing: run the {step} step first "
                             f"(clipalign run --out {run_dir} --only {step})")
    table = pd.read_csv(path)
    missing = table_schema.missing_columns(table.columns)
    if missing:
        raise ParameterError(f"{path} lacks the column(s) {', '.join(missing)}")
    return table


def has_table(run_dir: str | Path, name: str) -> bool:
    return RunDir(run_dir).table(registry.table(name).name).exists()


def step_tables(run_dir: str | Path) -> dict[str, pd.DataFrame]:
    """Every registered table the run holds, read and checked: {table name: DataFrame}."""
    return {name: read_metric(run_dir, name) for name in registry.tables() if has_table(run_dir, name)}


# The per-checkpoint summary each optional step adds to checkpoint_table, and the saliency metrics taken.
SALIENCY_MEASURES = ("cc", "nss")


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
    raise ParameterError(f"{wanted}{path} holds {', '.join(held) or 'no rows'}")


def two_afc_columns(run_dir: str | Path, distance: str | None = None) -> pd.DataFrame | None:
    """Per checkpoint: two_afc_score, two_afc_score_lo, two_afc_score_hi (overall subset ``all``, at
    ``distance`` when the table holds it, else at the table's only distance), two_afc_dataset; None without
    the table."""
    if not has_table(run_dir, "two_afc"):
        return None
    table = read_metric(run_dir, "two_afc")
    table = table[table["subset"] == "all"]
    if table.empty:
        return None
    # The synthesis' IQA distance when the similarity step measured it too, else the step's own one.
    wanted = distance if distance in set(table["distance"]) else None
    table = table[table["distance"] == pick_distance(table, wanted, RunDir(run_dir).table("two_afc"))]
    return table.rename(columns={"score": "two_afc_score", "score_lo": "two_afc_score_lo",
                                 "score_hi": "two_afc_score_hi", "dataset": "two_afc_dataset"})[
        ["checkpoint", "two_afc_dataset", "two_afc_score", "two_afc_score_lo", "two_afc_score_hi"]]


def saliency_columns(run_dir: str | Path) -> pd.DataFrame | None:
    """Per checkpoint (the centre-bias baseline left out): saliency_<m>, saliency_<m>_lo, saliency_<m>_hi for
    m in SALIENCY_MEASURES (the table's first method), saliency_dataset; None without the table."""
    if not has_table(run_dir, "saliency"):
        return None
    table = read_metric(run_dir, "saliency")
    from .registry import SALIENCY_BASELINE

    table = table[table["checkpoint"] != SALIENCY_BASELINE]
    if table.empty:
        return None
    table = table[table["method"] == table["method"].iloc[0]]
    out = pd.DataFrame({"checkpoint": list(dict.fromkeys(table["checkpoint"]))})
    out["saliency_dataset"] = out["checkpoint"].map(table.groupby("checkpoint")["dataset"].first())
    for metric in SALIENCY_MEASURES:
        rows = table[table["metric"] == metric].set_index("checkpoint")
        for suffix, source in (("", "value"), ("_lo", "value_lo"), ("_hi", "value_hi")):
            out[f"saliency_{metric}{suffix}"] = out["checkpoint"].map(rows[source]) if len(rows) else float("nan")
    return out


# The paired early-peak tests the steps write (``metrics.peak``), one per peak claim of the synthesis:
# (the table <prefix>_peak, the column prefix in checkpoint_table).
PEAK_TESTS = tuple((f"{prefix}_peak", prefix) for _, _, prefix, *_ in PEAK_CLAIMS)


def checkpoint_table(run_dir: str | Path, distance: str | None = None) -> pd.DataFrame:
    """One row per checkpoint: epoch, IQA alignment (overall SRCC and CI), shape bias (and CI),
    clean accuracy, noise_drop = the mean normalized drop over the noisy sigmas and
    chance_corrected_drop likewise (both nan at a checkpoint at chance), at_chance (its clean
    accuracy is not above chance), each step's paired early-peak test (<prefix>_early_drop[_lo/_hi] from
    the PEAK_TESTS tables present: iqa, two_afc, saliency; at the synthesis' distance where the table has
    it) and run = the run directory's name (a portable label)."""
    iqa = read_metric(run_dir, "iqa")
    iqa = iqa[iqa["distortion"] == "all"]
    distance = pick_distance(iqa, distance, RunDir(run_dir).table("iqa"))
    iqa = iqa[iqa["distance"] == distance].rename(
        columns={"srcc": "iqa_srcc", "srcc_lo": "iqa_srcc_lo", "srcc_hi": "iqa_srcc_hi", "dataset": "iqa_dataset"})
    iqa = iqa[["checkpoint", "epoch", "iqa_dataset", "distance", "iqa_srcc", "iqa_srcc_lo", "iqa_srcc_hi"]]

    shape = read_metric(run_dir, "shape_bias").rename(
        columns={"lo": "shape_bias_lo", "hi": "shape_bias_hi", "dataset": "cue_conflict_dataset"})
    shape = shape[["checkpoint", "cue_conflict_dataset", "shape_bias", "shape_bias_lo", "shape_bias_hi"]]

    noise = read_metric(run_dir, "noise")
    clean = noise[noise["sigma"] == 0].set_index("checkpoint")
    noisy = noise[noise["sigma"] > 0]
    if "clean_at_chance" in noise.columns:
        # A checkpoint at chance has nothing to lose to noise: its drop is undefined, not zero.
        noisy = noisy[~noisy["clean_at_chance"].astype(bool)]
    robustness = pd.DataFrame({
        "noise_dataset": clean["dataset"],
        "clean_accuracy": clean["accuracy"],
        "noise_drop": noisy.groupby("checkpoint")["normalized_drop"].mean(),
        "chance_corrected_drop": (noisy.groupby("checkpoint")["chance_corrected_drop"].mean()
                                  if "chance_corrected_drop" in noisy.columns else float("nan")),
        "at_chance": (clean["clean_at_chance"].astype(bool) if "clean_at_chance" in clean.columns else False),
    }).reset_index()

    table = iqa.merge(shape, on="checkpoint", how="outer").merge(robustness, on="checkpoint", how="outer")
    for optional in (two_afc_columns(run_dir, distance), saliency_columns(run_dir)):
        if optional is not None:
            table = table.merge(optional, on="checkpoint", how="left")
    for name, prefix in PEAK_TESTS:
        path = RunDir(run_dir).table(name)
        if path.exists():
            peak = pd.read_csv(path)
            if "distance" in peak.columns and distance in set(peak["distance"]):
                peak = peak[peak["distance"] == distance]
            for suffix, source in (("", "early_drop"), ("_lo", "lo"), ("_hi", "hi")):
                table[f"{prefix}_early_drop{suffix}"] = float(peak[source].iloc[0]) if len(peak) else float("nan")
    table["run"] = Path(run_dir).name
    return table.sort_values("epoch").reset_index(drop=True)


def run_identity(run_dir: str | Path) -> dict:
    """{"scale", "seed"} of a run, as its own training record holds them (``record.recorded_training``:
    train_params.json, else open_clip_train's params.txt). A value no record holds is None."""
    from .record import recorded_training

    recorded, where = recorded_training(run_dir)
    seed = recorded.get("seed")
    try:
        seed = int(seed) if seed is not None else None
    except ValueError:
        raise ParameterError(f"{Path(run_dir) / where}: seed {seed!r} is not an integer") from None
    return {"scale": recorded.get("model"), "seed": seed}


def parse_run_dirs(run_dirs, run_dir: str | Path) -> list[Path]:
    """The synthesis notebook's `run_dirs`: None = [run_dir], or the runs inside run_dir when it is a
    multi-run folder (``layout.runs_in``); a comma-separated string or a list."""
    if run_dirs is None:
        return runs_in(run_dir) or [Path(run_dir)]
    if isinstance(run_dirs, str):
        run_dirs = [part for part in run_dirs.split(",")]
    dirs = [Path(str(d).strip()) for d in run_dirs if str(d).strip()]
    if not dirs:
        raise ParameterError(f"run_dirs={run_dirs!r} names no run directory")
    return dirs


def run_labels(run_dirs: Sequence[str | Path]) -> list[str]:
    """A portable label per run: its path relative to the folder all of them share ("tiny-seed0",
    "heldout/seed-0"); a single run is known by its directory's name."""
    paths = [Path(d).resolve() for d in run_dirs]
    if len(paths) < 2:
        return [p.name for p in paths]
    common = Path(os.path.commonpath(paths))
    return [p.relative_to(common).as_posix() if p != common else p.name for p in paths]


def checkpoint_tables(run_dirs: Sequence[str | Path], distance: str | None = None) -> pd.DataFrame:
    """checkpoint_table of several runs stacked; columns `run` (``run_labels``), `scale` and `seed`
    (run_identity) tell them apart."""
    tables = []
    for run_dir, label in zip(run_dirs, run_labels(run_dirs)):
        identity = run_identity(run_dir)
        table = checkpoint_table(run_dir, distance).assign(run=label)
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


# --- Runs that differ in their parameters (a sweep): which parameters, and a label per run. ---

# Parameters that never make two runs different experiments: seeds are replicates, the rest is plumbing.
NOT_A_SETTING = {"seed", "device", "eval_batch_size"}


def run_parameters(run_dir: str | Path) -> dict:
    """Every parameter a run used, from its record (``record.json``): each step's resolved values, later
    steps over earlier ones, with ``preset``. A run with no record (open_clip_train's) gives {}."""
    from .record import Resolved, read

    entries = read(run_dir).get("steps", {})
    params = {}
    for step in registry.steps():  # in execution order: a later step's analysis values win
        if step.name in entries:
            params.update(Resolved.from_json(entries[step.name]).params)
    return params


def _preset_of(params: list[dict]) -> dict:
    """The preset values the first run was resolved on ({} when it records no parameters)."""
    from .config import PRESETS

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
    params = [run_parameters(d) for d in run_dirs]  # each run's executed notebooks, read once
    labels, factors = _labels(params, run_dirs)
    by_run = {run: (label, {k: format_value(p.get(k)) for k in factors})
              for run, label, p in zip(run_labels(run_dirs), labels, params)}
    table, noise = checkpoint_tables(run_dirs, distance), noise_curves_of(run_dirs)
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


def verdict_sentences(verdicts: pd.DataFrame) -> list[str]:
    """One Markdown list item per verdict: the claim, the verdict, the statistic with its interval and p;
    the scale first when the table has several; with several seeds (``seeds_agree``, ``n_seeds`` > 1) the
    share of seeds that agree and, where they differ, each seed's own verdict (``seed_verdicts``)."""
    lines = []
    several_scales = "scale" in verdicts.columns and verdicts["scale"].nunique() > 1
    for _, row in verdicts.iterrows():
        where = f"{row['scale']}: " if several_scales else ""
        interval = f" [{row['ci_lo']:.3f}, {row['ci_hi']:.3f}]" if pd.notna(row["ci_lo"]) else ""
        p_text = f", p = {row['p_value']:.3g}" if pd.notna(row["p_value"]) else ""
        line = (f"- {where}{row['claim']}: **{row['verdict']}** "
                f"({row['statistic']} = {row['value']:.3f}{interval}{p_text})")
        if "seeds_agree" in row.index and row.get("n_seeds", 2) > 1:
            line += f"; {row['seeds_agree']:.0%} of {row['n_seeds']} seeds agree"
            if row["seeds_agree"] < 1 and "seed_verdicts" in row.index:
                line += f" — **the seeds differ** (per seed: {row['seed_verdicts']})"
        lines.append(line)
    return lines
