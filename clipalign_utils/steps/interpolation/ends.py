"""The two checkpoints the interpolation step walks between, and the check of them that the command line
runs before any folder is made (no torch: the run's files and its ``iqa.csv`` only)."""
from __future__ import annotations

from typing import Collection, Mapping

from ...checkpoints import Checkpoint, Run
from ...errors import ParameterError, shell_arg
from ...layout import RunDir
from ...model_names import vision_has_batchnorm
from ...results.tables import read_metric
from ..iqa import analysis as iqa_step


# The name each end takes besides a checkpoint's.
KEYWORDS = {"interpolation_from": "peak", "interpolation_to": "last"}


def _named(run: Run, params: Mapping, parameter: str) -> Checkpoint:
    by_name = {c.name: c for c in run.checkpoints}
    name = params[parameter]
    if name not in by_name:
        raise ParameterError(f"parameter {parameter}={name!r}: {run.run_dir} has no such checkpoint; "
                             f"give {KEYWORDS[parameter]} or one of its checkpoints: {', '.join(by_name)}")
    return by_name[name]


def _to(run: Run, params: Mapping) -> Checkpoint:
    return (run.checkpoints[-1] if params["interpolation_to"] == KEYWORDS["interpolation_to"]
            else _named(run, params, "interpolation_to"))


def endpoints(run: Run, params: Mapping) -> tuple[Checkpoint, Checkpoint]:
    """(from, to): ``interpolation_from`` (``peak``: the checkpoint of highest IQA SRCC in the run's
    ``iqa.csv`` at params' distance; or a checkpoint's name) and ``interpolation_to`` (``last`` or a name).
    Two names for one checkpoint are refused (nothing lies between); the peak may be the ``to`` checkpoint
    (then the line is one point, and the page says so)."""
    end = _to(run, params)
    if params["interpolation_from"] != KEYWORDS["interpolation_from"]:
        start = _named(run, params, "interpolation_from")
        if start == end:
            raise ParameterError(f"parameter interpolation_from={params['interpolation_from']!r} is the "
                                 f"interpolation_to checkpoint of {run.run_dir} (interpolation_to="
                                 f"{params['interpolation_to']!r}): nothing lies between; name another")
        return start, end
    by_name = {c.name: c for c in run.checkpoints}
    srcc = iqa_step.summary_columns(read_metric(run.run_dir, "iqa"), params["distance"],
                                    RunDir(run.run_dir).table("iqa"))
    srcc = srcc[srcc["checkpoint"].isin(by_name)]
    if srcc.empty:
        raise ParameterError(f"{RunDir(run.run_dir).table('iqa')} names none of the run's checkpoints: "
                             f"re-run the iqa step (clipalign run --out {shell_arg(run.run_dir)} --only iqa)")
    return by_name[srcc.loc[srcc["iqa_srcc"].idxmax(), "checkpoint"]], end


def check_reestimation(run: Run) -> None:
    """Re-estimating BatchNorm statistics draws the run's own training batches: a run trained elsewhere (no
    train_params.json) has no world to draw them from."""
    if not RunDir(run.run_dir).train_record.exists():
        raise ParameterError(f"{run.run_dir} was not trained here, so its training world is unknown and its BatchNorm "
                             f"statistics cannot be re-estimated on it: pass -p bn_statistics=interpolate")


def check_run(run: Run, values: Mapping, running: Collection[str]) -> None:
    """:func:`endpoints` on the run before the command makes a folder or starts a kernel: a checkpoint name
    the run lacks, an ``iqa.csv`` without the distance, or an end whose weights are gone (a streamed run's),
    is one line there. With ``peak`` and the IQA step in this command (``running``), only
    ``interpolation_to``: the peak is read from the table it writes."""
    peak_read_later = values["interpolation_from"] == KEYWORDS["interpolation_from"] and "iqa" in running
    ends = [_to(run, values)] if peak_read_later else endpoints(run, values)
    if values.get("bn_statistics") == "reestimate" and vision_has_batchnorm(run.model_name):
        check_reestimation(run)  # (a tower the config does not describe: the step checks it once loaded)
    for checkpoint in ends:
        if not checkpoint.path.exists():  # a streamed run keeps no weights unless asked to
            raise ParameterError(f"{checkpoint.path} is not there: the interpolation step loads the weights of "
                                 f"{checkpoint.name}, which this run did not keep (stream it again with --keep-weights "
                                 f"listing both ends' epochs, or name checkpoints whose weights are kept)")
