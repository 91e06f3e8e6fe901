"""Which runs: a synthesis' run directories, a portable label per run, and a run's identity (scale, seed)
from its own training record."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from ..errors import ParameterError
from ..layout import RunDir, runs_in
from ..prose import counted


def run_identity(run_dir: str | Path) -> dict:
    """{"scale", "seed"} of a run, as its own training record holds them (``record.recorded_training``:
    train_params.json, else open_clip_train's params.txt). A value no record holds is None."""
    from ..record import recorded_training

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
    "heldout/seed-0"); a single run is known by its directory's name. A linked run keeps the name it has in
    the folder (the full preset's drivers/base links the seed-0 run): links are not followed."""
    paths = [Path(os.path.abspath(d)) for d in run_dirs]
    if len(paths) < 2:
        return [p.name for p in paths]
    common = Path(os.path.commonpath(paths))
    return [p.relative_to(common).as_posix() if p != common else p.name for p in paths]


def runs_read_sentence(run_dirs: Sequence[str | Path]) -> str:
    """What the synthesis reads, from the run folders themselves: a streamed trajectory (its ``source.json``:
    one public run, no seeds), or runs trained here (several: seeds of each scale, replicates)."""
    streamed = [manifest for manifest in (RunDir(run).source_manifest() for run in run_dirs) if manifest]
    if streamed and len(run_dirs) == 1:
        manifest = streamed[0]
        # (its source is page 10's to name: a local folder's path is the user's machine's)
        return (f"This page reads one streamed trajectory, {counted(len(manifest['checkpoints']), 'checkpoint')} of "
                f"{manifest['model']} trained elsewhere: one run, so its bands are bootstrap intervals, not intervals "
                f"over seeds.")
    trained = len(run_dirs) - len(streamed)
    if len(run_dirs) == 1:
        return "This page reads one run trained here: its bands are bootstrap intervals, not intervals over seeds."
    return (f"This page reads {len(run_dirs)} runs" + (f" ({len(streamed)} streamed, {trained} trained here)"
                                                        if streamed else "")
            + ": the table below gives each one's scale and seed; the seeds of a scale are its replicates.")
