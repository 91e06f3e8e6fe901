"""Several training runs — seeds × model scales — and one synthesis over all of them.

`clipalign run --out runs/NAME --seeds 0 1 2 --scales tiny small` trains and analyses each
(scale, seed) into its own ordinary run directory ``runs/NAME/<scale>-seed<k>/`` (the registry's per-run
steps with overrides model=<scale>, seed=<k>, through ``pipeline.execute``), then runs the synthesis step
into ``runs/NAME/`` with ``run_dirs`` naming all of them. Re-running the same command resumes: a step
whose executed notebook exists in a run directory is skipped, so a complete run (every per-run step's
notebook executed) costs nothing.

On such a folder, ``clipalign run --out runs/NAME --only STEP`` re-runs that step in every run (each
resolved against its own record: its seed, scale and world) and then the synthesis (:func:`rerun_step`).
Every run is resolved before anything runs, so a parameter that contradicts one run's record stops the
command with nothing written.
"""
from __future__ import annotations

import time
from pathlib import Path

from .. import record, registry
from ..checkpoints import check_run
from ..config import DRIVERS_FOLDER, resolve
from ..errors import ParameterError, shell_arg
from ..io import write_json
from ..layout import RunDir, runs_in
from ..prose import counted
from .pipeline import (available_steps, check_step_runs, check_steps, execute, execute_step, note_unread,
                       run_notebook, split_given, step_notebooks)
from ..record import Resolved


def run_name(scale: str, seed: int) -> str:
    """The sub-directory of one run: ``<scale>-seed<k>``."""
    return f"{scale}-seed{seed}"


def plan_runs(preset: str, seeds: list[int] | None, scales: list[str] | None, overrides: dict) -> list[tuple[str, int]]:
    """(scale, seed) pairs, scales outer. A missing list means the preset's (or -p's) single value."""
    for name, given in (("seed", seeds), ("model", scales)):
        if given and name in overrides:
            raise ParameterError(f"-p {name}=… and --{'seeds' if name == 'seed' else 'scales'} both given: use one")
    defaults = resolve(preset, **{k: v for k, v in overrides.items() if k in ("seed", "model")})
    seeds = [int(s) for s in seeds] if seeds else [defaults["seed"]]
    scales = list(scales) if scales else [defaults["model"]]
    if len(set(seeds)) != len(seeds) or len(set(scales)) != len(scales):
        raise ParameterError(f"--seeds {seeds} / --scales {scales}: each value once, please")
    from ..models import open_clip_name

    for scale in scales:
        open_clip_name(scale)  # raises ParameterError naming the known scales
    return [(scale, seed) for scale in scales for seed in seeds]


def run_many(out: str | Path, preset: str | None = None, seeds: list[int] | None = None,
             scales: list[str] | None = None, overrides: dict | None = None, progress: bool = True,
             only: list[str] | None = None, synthesis: bool = True) -> Path:
    """Run the per-run steps for every (scale, seed) under ``out``, then the synthesis into ``out``.
    ``only``: run just these runs (by name, a launcher's job; ``[]`` plans and records, running nothing);
    ``synthesis=False``: no synthesis (the job's caller runs it once every job has finished)."""
    out = Path(out).resolve()
    preset = record.run_preset(out, preset)
    steps = per_run_steps()
    given, extra = split_given(dict(overrides or {}), step_notebooks(steps + [registry.synthesis().name]), preset)
    runs = plan_runs(preset, seeds, scales, given)
    # Every run resolved before anything is made: an existing run whose record contradicts stops the command.
    resolved = {run_name(scale, seed): record.resolve(out / run_name(scale, seed), preset,
                                                      {**given, "model": scale, "seed": seed})
                for scale, seed in runs}
    folder = record.resolve(out, preset, given)
    for name, run_resolved in resolved.items():  # what each step will run with, its datasets read, here too
        check_steps(out / name, steps, run_resolved)
    if not only:  # the command's own line, planning a launcher's jobs too (each job runs with its own only)
        note_unread(given, step_notebooks(steps + [registry.synthesis().name]))
    out.mkdir(parents=True, exist_ok=True)
    # the folder's kind (RunDir.kind), written before any run starts
    write_json(RunDir(out).record("runs"), {"preset": preset, "overrides": dict(overrides or {}),
                                            "runs": list(resolved)})
    run_dirs = []
    for number, name in enumerate(resolved, 1):
        run_dir = out / name
        run_dirs.append(run_dir)
        tag = f"[run {number}/{len(runs)} {name}]"
        left = len(runs) - number
        if only is not None and name not in only:
            continue
        if RunDir(run_dir).done_all(steps):
            print(f"{tag} skip: complete ({run_dir}); runs left {left}", flush=True)
            continue
        started = time.time()
        execute(run_dir, steps, resolved[name], extra=extra, progress=progress, tag=f"{tag} ", resume=True)
        print(f"{tag} done in {time.time() - started:.0f} s; runs left {left}", flush=True)
    # The synthesis is cheap and reads every run, so it is always re-run.
    if synthesis:
        synthesise(out, run_dirs, folder, progress)
    return out


def link_base_run(out: Path, preset: str, overrides: dict) -> None:
    """The drivers sweep's base run has the preset's scale and seed: when the multi-run already holds
    that run (every per-run step this install has executed there), link it in (the sweep then skips it) rather
    than training it twice."""
    params = resolve(preset, **{k: v for k, v in overrides.items() if k in ("model", "seed")})
    same = out / run_name(params["model"], params["seed"])
    base = out / DRIVERS_FOLDER / "base"
    if RunDir(same).done_all(per_run_steps()) and not base.exists() and not base.is_symlink():
        base.parent.mkdir(parents=True, exist_ok=True)
        base.symlink_to(Path("..") / same.name, target_is_directory=True)


def per_run_steps() -> list[str]:
    """The steps each run of a multi-run folder executes (the registry's per-run steps this install has)."""
    available = available_steps()
    return [s.name for s in registry.per_run_steps() if s.name in available]


def synthesise(out: Path, run_dirs: list[Path], resolved: Resolved, progress: bool = True) -> None:
    """The synthesis step over ``run_dirs``, into ``out``."""
    synthesis = registry.synthesis().name
    started = time.time()
    print(f"[synthesis] {synthesis} over {counted(len(run_dirs), 'run')} -> {out / 'notebooks'}", flush=True)
    execute_step(synthesis, out, resolved, {"run_dirs": ",".join(str(d) for d in run_dirs)}, progress)
    print(f"[synthesis] done in {time.time() - started:.0f} s; tables in {out / 'metrics'}", flush=True)


def rerun_step(out: str | Path, step: str, preset: str | None = None, overrides: dict | None = None,
               progress: bool = True) -> list[Path]:
    """Re-run one analysis step in every run of the multi-run folder ``out`` (each resolved against its own
    record: scale, seed, world), then the synthesis over them all; return the runs."""
    entry = registry.get(step)
    if entry.name == "train":
        raise ParameterError(f"--only train on the multi-run folder {out}: a run trains in its own folder "
                             f"(clipalign run --out {shell_arg(Path(out) / '<run>')} --only train)")
    out = Path(out).resolve()
    preset = record.run_preset(out, preset)
    given, extra = split_given(dict(overrides or {}), step_notebooks([step, registry.synthesis().name]), preset)
    runs = runs_in(out)
    if not runs:
        raise ParameterError(f"{out} holds no runs (<scale>-seed<k>/ folders with checkpoints)")
    resolved = [record.resolve(run_dir, preset, given) for run_dir in runs]  # all checked before any runs
    for run_dir, run_resolved in zip(runs, resolved):
        check_run(run_dir)  # a run whose training stopped: one line here, not a page failing after others ran
        check_steps(run_dir, [step], run_resolved)
        check_step_runs(run_dir, [step], run_resolved)
    folder = record.resolve(out, preset, given)
    note_unread(given, step_notebooks([step, registry.synthesis().name]))
    if entry.synthesis:  # the folder's synthesis alone, over its runs' tables as they stand
        synthesise(out, runs, folder, progress)
        return runs
    if entry.optional:
        # Its page runs once on the folder: it measures every run (each against its own record) and shows
        # them together; the synthesis does not read it.
        started = time.time()
        print(f"[{step}] {counted(len(runs), 'run')} -> {out / 'notebooks'}", flush=True)
        run_notebook(entry.notebook, out, {**given, **extra, "run_dir": str(out), "preset": preset}, progress,
                     label=f"step {step} on {out}")
        print(f"[{step}] done in {time.time() - started:.0f} s; tables in each run's metrics/ and {out / 'metrics'}",
              flush=True)
        return runs
    for number, (run_dir, run_resolved) in enumerate(zip(runs, resolved), 1):
        execute(run_dir, [step], run_resolved, extra=extra, progress=progress,
                tag=f"[run {number}/{len(runs)} {run_dir.name}] ")
    synthesise(out, runs, folder, progress)
    return runs
