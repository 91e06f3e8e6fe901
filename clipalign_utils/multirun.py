"""Several training runs — seeds × model scales — and one synthesis over all of them.

`clipalign run --out runs/NAME --seeds 0 1 2 --scales tiny small` trains and analyses each
(scale, seed) into its own ordinary run directory ``runs/NAME/<scale>-seed<k>/`` (the registry's per-run
steps with overrides model=<scale>, seed=<k>, through ``pipeline.execute``), then runs the synthesis step
into ``runs/NAME/`` with ``run_dirs`` naming all of them. Re-running the same command resumes: a step
whose executed notebook exists in a run directory is skipped, so a complete run (every per-run step's
notebook executed) costs nothing.

On such a folder, ``clipalign run --out runs/NAME --only STEP`` re-runs that step in every run and then the
synthesis (:func:`rerun_step`), and a step's notebook given the folder (``papermill … -p run_dir runs/NAME``)
does the same before showing its first run (:func:`analyse_every_run`).
"""
from __future__ import annotations

import time
from pathlib import Path

from . import registry
from .config import changed_from_preset, resolve
from .errors import ParameterError
from .io import write_json
from .layout import RunDir, runs_in
from .pipeline import available_steps, check_overrides, check_preset, execute, run_step


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
    from .models import open_clip_name

    for scale in scales:
        open_clip_name(scale)  # raises ParameterError naming the known scales
    return [(scale, seed) for scale in scales for seed in seeds]


def run_many(out: str | Path, preset: str = "default", seeds: list[int] | None = None,
             scales: list[str] | None = None, overrides: dict | None = None, progress: bool = True) -> Path:
    """Run the per-run steps for every (scale, seed) under ``out``, then the synthesis into ``out``."""
    check_preset(preset)
    overrides = dict(overrides or {})
    available = available_steps()
    steps = [s.name for s in registry.per_run_steps() if s.name in available]
    synthesis = registry.synthesis().name
    check_overrides(overrides, steps + [synthesis], preset)
    runs = plan_runs(preset, seeds, scales, overrides)
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    # the folder's kind (RunDir.kind), written before any run starts
    write_json(RunDir(out).record("runs"), {"preset": preset, "overrides": overrides,
                                                     "runs": [run_name(scale, seed) for scale, seed in runs]})
    run_dirs = []
    for number, (scale, seed) in enumerate(runs, 1):
        run_dir = out / run_name(scale, seed)
        run_dirs.append(run_dir)
        tag = f"[run {number}/{len(runs)} {run_name(scale, seed)}]"
        left = len(runs) - number
        if all(RunDir(run_dir).done(step) for step in steps):
            print(f"{tag} skip: complete ({run_dir}); runs left {left}", flush=True)
            continue
        started = time.time()
        execute(run_dir, steps, preset, {**overrides, "model": scale, "seed": seed}, progress=progress,
                tag=f"{tag} ", resume=True)
        print(f"{tag} done in {time.time() - started:.0f} s; runs left {left}", flush=True)
    # The synthesis is cheap and reads every run, so it is always re-run.
    synthesise(out, run_dirs, preset, overrides, progress)
    return out


def synthesise(out: Path, run_dirs: list[Path], preset: str, overrides: dict, progress: bool = True) -> None:
    """The synthesis step over ``run_dirs``, into ``out``."""
    synthesis = registry.synthesis().name
    started = time.time()
    print(f"[synthesis] {synthesis} over {len(run_dirs)} runs -> {out / 'notebooks'}", flush=True)
    run_step(synthesis, out, preset, {**overrides, "run_dirs": ",".join(str(d) for d in run_dirs)}, progress)
    print(f"[synthesis] done in {time.time() - started:.0f} s; tables in {out / 'metrics'}", flush=True)


def _scale_and_seed(run_dir: Path) -> dict:
    from .results import run_identity

    identity = run_identity(run_dir)
    return {"model": identity["scale"], "seed": identity["seed"]}


def rerun_step(out: str | Path, step: str, preset: str, overrides: dict | None = None,
               progress: bool = True) -> list[Path]:
    """Re-run one analysis step in every run of the multi-run folder ``out`` (each with its own scale and
    seed), then the synthesis over them all; return the runs."""
    check_preset(preset)
    entry = registry.get(step)
    if entry.name == "train" or entry.synthesis:
        raise ParameterError(f"--only {step} on the multi-run folder {out}: name an analysis step "
                             f"({', '.join(s.name for s in registry.analysis_steps())}); "
                             f"to train again, use a run's own folder")
    overrides = {k: v for k, v in (overrides or {}).items() if k not in ("model", "seed")}
    check_overrides(overrides, [step], preset)
    out = Path(out).resolve()
    runs = runs_in(out)
    if not runs:
        raise ParameterError(f"{out} holds no runs (<scale>-seed<k>/ folders with checkpoints)")
    for number, run_dir in enumerate(runs, 1):
        execute(run_dir, [step], preset, {**overrides, **_scale_and_seed(run_dir)}, progress=progress,
                tag=f"[run {number}/{len(runs)} {run_dir.name}] ")
    synthesise(out, runs, preset, overrides, progress)
    return runs


def analyse_every_run(run_dir: str | Path, step: str, params: dict) -> Path:
    """For a step's notebook given a multi-run folder (``-p run_dir runs/default``): run the step, through
    its registered notebook, into every run there (each keeps its executed notebook and tables) and the
    synthesis over them, then return the first run, which the page shows in detail. Any other folder
    (one run, an empty or missing one) comes back unchanged.

    ``params`` are the notebook's resolved parameters: those that differ from the preset's go to every run.
    """
    runs = runs_in(run_dir)
    if not runs:
        return Path(run_dir)
    preset = params["preset"]
    overrides = changed_from_preset(params)  # rerun_step gives each run its own scale and seed
    print(f"{run_dir} holds {len(runs)} runs ({', '.join(d.name for d in runs)}): running step {step} in each "
          f"and the synthesis over them; this page shows {runs[0].name}", flush=True)
    rerun_step(run_dir, step, preset, overrides, progress=False)
    return runs[0]
