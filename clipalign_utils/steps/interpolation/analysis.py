"""The interpolation step: models on the straight line between two checkpoints of one run,
θ(α) = (1 − α)·θ_from + α·θ_to, each measured with the IQA, shape and noise steps' own ``measure`` and
summary columns.

Only floating-point tensors are interpolated; integer buffers (BatchNorm's batch counts) are the ``to``
checkpoint's (re-estimation then counts its own batches). BatchNorm running statistics of an interpolated
model are not the statistics of its activations (Izmailov et al. 2018), so with ``bn_statistics=reestimate``
(the default) they are re-estimated on the run's first ``bn_batches`` training batches
(``torch.optim.swa_utils.update_bn``: the cumulative mean and variance over those batches), at every α,
the ends included, so that the line compares like with like (the ends' trained statistics, averaged over
training, are what their rows in ``iqa.csv``, ``shape_bias.csv`` and ``noise.csv`` measure; the page says how
far re-estimation moves the ends). ``interpolate`` keeps the interpolated statistics, to show whether it
matters: α = 0 and α = 1 are then exactly the endpoints' rows of those tables. A model without BatchNorm
(the ViTs) is the same either way, its ends the checkpoints' own rows.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from ...checkpoints import Checkpoint, Run
from ...errors import ParameterError
from ...layout import RunDir
from ...metrics.noise import at_chance_of_drops
from ...metrics.tradeoff import seed_chance_flags, seed_values, t_interval
from ...models import load_checkpoint_model, preprocess_config
from ...results.tables import read_metric
from ..iqa import analysis as iqa_step
from ..noise import analysis as noise_step
from ..shape import analysis as shape_step
from . import TABLE
from .ends import check_reestimation, endpoints

# the registered columns (the step's TABLE), then what else the page reads; last (older tables lack them), each
# model's at-chance flags, named as the synthesis names them (``metrics.tradeoff.at_chance``): its cue-conflict
# decisions, its clean accuracy
COLUMNS = [*TABLE.columns, "clean_accuracy", "chance_corrected_drop", "from_epoch", "to_epoch", "bn_statistics",
           "has_batchnorm", "shape_at_chance", "at_chance"]


# --- the interpolated weights ---------------------------------------------------------------------

def _state_dict(path: Path) -> dict[str, torch.Tensor]:
    state = torch.load(path, map_location="cpu", weights_only=True)
    state = state.get("state_dict", state)
    # open_clip_train's DDP checkpoints prefix every key with "module."
    return {k.removeprefix("module."): v for k, v in state.items()}


def interpolate_state(start: dict[str, torch.Tensor], end: dict[str, torch.Tensor], alpha: float) -> dict:
    """(1 − α)·start + α·end for every floating-point tensor; any other tensor (an integer count) is end's."""
    if start.keys() != end.keys():
        raise ParameterError("the two checkpoints hold different tensors: they are not of one model")
    # the formula as written (not torch.lerp), so that α = 0.5 is bit for bit the hand average (a + b) / 2
    return {name: (1 - alpha) * start[name] + alpha * end[name] if end[name].is_floating_point()
            else end[name].clone() for name in end}


def has_batchnorm(model: torch.nn.Module) -> bool:
    return any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())


def training_batches(params: dict, model: torch.nn.Module) -> list[torch.Tensor]:
    """The run's first ``bn_batches`` training batches, the images the trainer stepped on first (its seed,
    world, first epoch's set and order: ``train.first_batches``), normalised as in training."""
    from ...train import first_batches

    sample = first_batches(params, params["bn_batches"])
    cfg = preprocess_config(model)
    mean = torch.tensor(cfg["mean"]).view(1, 3, 1, 1)
    std = torch.tensor(cfg["std"]).view(1, 3, 1, 1)
    images = (torch.from_numpy(sample.images).permute(0, 3, 1, 2).float() / 255 - mean) / std
    return list(images.split(params["batch_size"]))


def reestimate_batchnorm(model: torch.nn.Module, batches: list[torch.Tensor]) -> None:
    """Reset the image tower's BatchNorm statistics and set them to the cumulative mean and variance of its
    activations over ``batches`` (torch's ``update_bn``, as SWA does)."""
    device = next(model.parameters()).device
    torch.optim.swa_utils.update_bn([b.to(device) for b in batches], model.visual)
    model.eval()


def write_interpolated(model: torch.nn.Module, start: dict[str, torch.Tensor], end: dict[str, torch.Tensor],
                       alpha: float, name: str, folder: Path, batches: list[torch.Tensor] | None) -> Path:
    """θ(α) between the state dicts ``start`` and ``end``, loaded into ``model`` (the run's architecture;
    every tensor of its state is overwritten, so one model serves each α), as an open_clip-format checkpoint
    in ``folder`` (BatchNorm re-estimated on ``batches`` when given); its path."""
    model.load_state_dict(interpolate_state(start, end, alpha))
    if batches is not None and has_batchnorm(model):
        reestimate_batchnorm(model, batches)
    path = folder / f"alpha_{alpha!r}.pt"  # in full: two α equal to 6 digits are two files
    torch.save({"name": name, "alpha": alpha, "state_dict": model.state_dict()}, path)
    return path


# --- the measurement -----------------------------------------------------------------------------

@dataclass(frozen=True)
class _ScratchDir(RunDir):
    """A run's directory whose embedding cache is a scratch folder (removed with the interpolated models,
    whose cached embeddings no later call could find: their files are new each time)."""

    scratch: Path = field(default=Path("."))

    @property
    def cache(self) -> Path:
        return self.scratch


@dataclass
class _ScratchRun(Run):
    scratch: Path = field(default=Path("."))

    @property
    def layout(self) -> RunDir:
        return _ScratchDir(self.run_dir, self.scratch)


@dataclass
class InterpolationData:
    """The three steps' evaluation data, each loaded once."""

    iqa: object
    shape: object
    noise: object


def load(run: Run, params: dict) -> InterpolationData:
    """The IQA, shape and noise steps' evaluation sets for params (their own loaders, unrecorded: those
    steps record what they load)."""
    return InterpolationData(iqa_step.load.__wrapped__(run, params), shape_step.load.__wrapped__(run, params),
                             noise_step.load.__wrapped__(run, params))


def alpha_grid(params: dict) -> list[float]:
    """params' alphas with 0 and 1 added, ascending."""
    return sorted({0.0, 1.0, *(float(a) for a in params["alphas"])})


def measure_models(run: Run, checkpoints: list[Checkpoint], params: dict, data: InterpolationData,
                   scratch: Path | None = None) -> pd.DataFrame:
    """The IQA, shape and noise steps' summary columns (what the synthesis reads) of ``checkpoints``, one row
    each in their order, through each step's own ``measure``; their embeddings cached in ``scratch`` when
    given (else the run's cache)."""
    subset = (replace(run, checkpoints=checkpoints) if scratch is None else
              _ScratchRun(**{**vars(run), "checkpoints": checkpoints, "scratch": scratch}))
    iqa = iqa_step.measure(subset, params, data.iqa)["iqa"]
    shape = shape_step.measure(subset, params, data.shape)["shape_bias"]
    noise = noise_step.measure(subset, params, data.noise)["noise"]
    rows = pd.DataFrame({"checkpoint": [c.name for c in checkpoints]})
    for frame in (iqa_step.summary_columns(iqa, params["distance"], "iqa"),
                  shape_step.summary_columns(shape, None, "shape_bias"),
                  noise_step.summary_columns(noise, None, "noise")):
        rows = rows.merge(frame.drop(columns=["epoch"], errors="ignore"), on="checkpoint", how="left")
    return rows


def measure(run: Run, params: dict, data: InterpolationData | None = None) -> dict[str, pd.DataFrame]:
    """{"interpolation": one row per α of params' grid (0 and 1 added): the models on the line from the
    ``interpolation_from`` checkpoint to the ``interpolation_to`` one, measured like the checkpoints
    themselves. With BatchNorm statistics re-estimated (``bn_statistics=reestimate`` on a model with
    BatchNorm) every α is, 0 and 1 included, so the ends' rows are the endpoint weights with re-estimated
    statistics; otherwise α = 0 and 1 are the endpoint checkpoints' own files (their rows are theirs, as in
    the steps' tables). When the two ends are one checkpoint every row is its one model's (re-estimated too
    when the statistics are). The models are written to a temporary folder inside the run and removed after."""
    data = load(run, params) if data is None else data
    start, end = endpoints(run, params)
    grid = alpha_grid(params)
    model = load_checkpoint_model(end.path, run.model_name, run.image_size, options=run.model_options)
    batchnorm = has_batchnorm(model)
    reestimate = batchnorm and params["bn_statistics"] == "reestimate"
    if reestimate:
        check_reestimation(run)
    # Re-estimating, every model is written and re-estimated, the ends too, and a line of one point (the peak
    # is the last checkpoint: θ(α) = θ for every α) its one model: every run's line then compares like with
    # like (trained running statistics are an average over training, not what a few batches give). Otherwise
    # the ends are the run's own files (and its cache): their rows are those of the steps' tables.
    one_point = start == end
    inner = [alpha for alpha in grid if alpha not in (0.0, 1.0)]
    written = ([0.0] if one_point else grid) if reestimate else ([] if one_point else inner)
    batches = training_batches(params, model) if reestimate else None
    # (a line of one point reads its one file once, and not at all when nothing is written)
    start_state = _state_dict(start.path) if written else None
    end_state = start_state if one_point else _state_dict(end.path)
    RunDir(run.run_dir).cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".interpolation-", dir=RunDir(run.run_dir).cache) as folder:
        models = [Checkpoint(write_interpolated(model, start_state, end_state, alpha, run.model_name,
                                                Path(folder), batches), alpha)
                  for alpha in tqdm(written, desc="interpolate", leave=False)]
        del model, start_state, end_state
        parts = [] if reestimate else [measure_models(run, [start] if one_point else [start, end], params, data)]
        if models:
            parts.append(measure_models(run, models, params, data, Path(folder)))
        rows = pd.concat(parts, ignore_index=True)
    if one_point:
        rows = rows.loc[[0] * len(grid)].reset_index(drop=True)
        alphas = grid
    else:
        alphas = written if reestimate else [0.0, 1.0] + written
    rows.insert(0, "alpha", alphas)
    rows = rows.sort_values("alpha", kind="stable").reset_index(drop=True)
    return {"interpolation": _annotate(rows, start, end, params, batchnorm)}


def _annotate(rows: pd.DataFrame, start: Checkpoint, end: Checkpoint, params: dict,
              batchnorm: bool) -> pd.DataFrame:
    """rows (alpha first, then the measures) with the endpoints and the BatchNorm treatment; COLUMNS order."""
    rows.insert(1, "from_checkpoint", start.name)
    rows.insert(2, "to_checkpoint", end.name)
    rows["from_epoch"], rows["to_epoch"] = start.epoch, end.epoch
    rows["bn_statistics"] = params["bn_statistics"] if batchnorm else "none"
    rows["has_batchnorm"] = batchnorm
    return rows[COLUMNS]


def with_chance_flags(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` (an interpolation table) with ``at_chance`` appended where it lacks it (written before the step
    kept the flags): read back from its drops (``metrics.noise.at_chance_of_drops``; a drop is nan exactly where
    the model's clean accuracy is at chance). ``shape_at_chance`` cannot be read back (it rests on the interval
    of the share of cue decisions, which the table does not keep): a table without it stays so, and
    ``metrics.tradeoff.at_chance`` reads ``at_chance`` for the shape bias then, as for every table before it."""
    if "at_chance" in table.columns:
        return table
    return table.assign(at_chance=at_chance_of_drops(table["noise_drop"]))


# --- over seeds ---------------------------------------------------------------------------------

def seed_table(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Per α, over the runs (``tables``: run label → its interpolation table): each measure's mean with a
    95 % t interval over runs, and the paired margins by which α beats the better endpoint on each axis —
    ``alignment_margin`` = iqa_srcc(α) − max(iqa_srcc(0), iqa_srcc(1)) and ``robustness_margin`` =
    min(noise_drop(0), noise_drop(1)) − noise_drop(α), per run then averaged (positive: better than both);
    ``n_alignment_margin`` / ``n_robustness_margin`` the runs where each margin is defined (the mean and interval
    are over those), ``n_one_point`` counts the runs whose two endpoints are one checkpoint, ``n_from_dominates`` those whose
    α = 0 end has both the higher SRCC and the lower drop (no trade-off between the ends); with the runs' chance
    flags, at_chance / n_above_chance and shape_at_chance / n_shape_above_chance as the synthesis' seed means have
    them (``metrics.tradeoff.seed_chance_flags``: most runs at chance, and the runs that are not), the shape bias'
    mean over the runs above chance on the cue-conflict images, as theirs is (``metrics.tradeoff.seed_values``)."""
    per_run = []
    for label, table in tables.items():
        table = table.sort_values("alpha").reset_index(drop=True)
        ends = table[table["alpha"].isin([0.0, 1.0])]
        first, last = ends.iloc[0], ends.iloc[-1]
        per_run.append(table.assign(
            run=label,
            # the alignment peak is the last checkpoint: one point, margins 0 at every α
            one_point=bool("from_checkpoint" in table and first["from_checkpoint"] == first["to_checkpoint"]),
            # the alignment end is also the more robust one: no trade-off on this line to dial
            from_dominates=bool(first["iqa_srcc"] > last["iqa_srcc"] and first["noise_drop"] < last["noise_drop"]),
            # undefined where either end's measure is (a drop at chance): not the other end's alone, as one
            # run's own page says ("cannot be told")
            alignment_margin=table["iqa_srcc"] - ends["iqa_srcc"].max(skipna=False),
            robustness_margin=ends["noise_drop"].min(skipna=False) - table["noise_drop"]))
    runs = pd.concat(per_run, ignore_index=True)
    rows = []
    for alpha, group in runs.groupby("alpha", sort=True):
        row = {"alpha": alpha, "n_runs": group["run"].nunique(), "n_one_point": int(group["one_point"].sum()),
               "n_from_dominates": int(group["from_dominates"].sum())}
        for column in ("iqa_srcc", "shape_bias", "noise_drop", "alignment_margin", "robustness_margin"):
            mean, lo, hi, n = t_interval(seed_values(group, column).to_numpy(dtype=float))
            row.update({column: mean, f"{column}_lo": lo, f"{column}_hi": hi})
            if column.endswith("_margin"):  # the runs where it is defined (a drop is undefined at chance)
                row[f"n_{column}"] = n
        rows.append({**row, **seed_chance_flags(group)})
    return pd.DataFrame(rows)


def beats_both(seeds: pd.DataFrame) -> pd.DataFrame:
    """The interior α rows of :func:`seed_table` with a verdict: ``beats both`` when both margins' intervals
    lie above 0, ``worse`` when either lies below 0, else ``inconclusive``."""
    inner = seeds[~seeds["alpha"].isin([0.0, 1.0])].copy()
    above = (inner["alignment_margin_lo"] > 0) & (inner["robustness_margin_lo"] > 0)
    below = (inner["alignment_margin_hi"] < 0) | (inner["robustness_margin_hi"] < 0)
    inner["verdict"] = np.where(above, "beats both", np.where(below, "worse", "inconclusive"))
    return inner.reset_index(drop=True)


def checkpoint_path(run_dir: str | Path, distance: str | None) -> pd.DataFrame:
    """The run's own checkpoints in the alignment–robustness plane: epoch, iqa_srcc and noise_drop per
    checkpoint, from its ``iqa.csv`` and ``noise.csv`` (the synthesis' summary columns)."""
    layout = RunDir(run_dir)
    iqa = iqa_step.summary_columns(read_metric(run_dir, "iqa"), distance, layout.table("iqa"))
    noise = noise_step.summary_columns(read_metric(run_dir, "noise"), None, layout.table("noise"))
    return (iqa[["checkpoint", "epoch", "iqa_srcc"]].merge(noise[["checkpoint", "noise_drop"]], on="checkpoint")
            .sort_values("epoch").reset_index(drop=True))


def seed_path(paths: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Per epoch, the mean over runs (``paths``: run label → :func:`checkpoint_path`) of iqa_srcc and
    noise_drop, with the number of runs."""
    frame = pd.concat([p.assign(run=label) for label, p in paths.items()], ignore_index=True)
    return (frame.groupby("epoch").agg(iqa_srcc=("iqa_srcc", "mean"), noise_drop=("noise_drop", "mean"),
                                       n_runs=("run", "nunique")).reset_index())


@dataclass
class OverRuns:
    """The interpolation of every run of a folder: their labels, :func:`seed_table`, :func:`beats_both`
    and the checkpoints' mean path (:func:`seed_path`)."""

    runs: list[str]
    seeds: pd.DataFrame
    verdicts: pd.DataFrame
    path: pd.DataFrame


def over_runs(run_dirs, distance: str | None) -> OverRuns:
    """:class:`OverRuns` of ``run_dirs`` (each holding its ``interpolation.csv``, ``iqa.csv`` and ``noise.csv``)."""
    run_dirs = [Path(d) for d in run_dirs]
    tables = {d.name: with_chance_flags(read_metric(d, "interpolation")) for d in run_dirs}
    seeds = seed_table(tables)
    return OverRuns([d.name for d in run_dirs], seeds, beats_both(seeds),
                    seed_path({d.name: checkpoint_path(d, distance) for d in run_dirs}))
