"""Several training runs — seeds × model scales — and one synthesis over all of them.

`clipalign run --out runs/NAME --seeds 0 1 2 --scales tiny small` trains and analyses each
(scale, seed) into its own ordinary run directory ``runs/NAME/<scale>-seed<k>/`` (the registry's per-run
steps with overrides model=<scale>, seed=<k>, through ``pipeline.execute``), then runs the synthesis step
into ``runs/NAME/`` with ``run_dirs`` naming all of them. Re-running the same command resumes: a step
whose executed notebook exists in a run directory is skipped, so a complete run (every per-run step's
notebook executed) costs nothing.
"""
from __future__ import annotations

import time
from pathlib import Path

from . import registry
from .config import resolve
from .errors import ParameterError
from .pipeline import available_steps, check_overrides, check_preset, execute, run_step


def run_name(scale: str, seed: int) -> str:
    """The sub-directory of one run: ``<scale>-seed<k>``."""
    return f"{scale}-seed{seed}"


def step_done(run_dir: Path, step: str) -> bool:
    return registry.get(step).done(run_dir)


def is_complete(run_dir: Path) -> bool:
    """A run directory is complete when every per-run step's notebook was executed successfully."""
    return registry.run_complete(run_dir)


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
    check_overrides(overrides, steps + [synthesis])
    runs = plan_runs(preset, seeds, scales, overrides)
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    run_dirs = []
    for number, (scale, seed) in enumerate(runs, 1):
        run_dir = out / run_name(scale, seed)
        run_dirs.append(run_dir)
        tag = f"[run {number}/{len(runs)} {run_name(scale, seed)}]"
        left = len(runs) - number
        if all(step_done(run_dir, step) for step in steps):
            print(f"{tag} skip: complete ({run_dir}); runs left {left}", flush=True)
            continue
        started = time.time()
        execute(run_dir, steps, preset, {**overrides, "model": scale, "seed": seed}, progress=progress,
                tag=f"{tag} ", resume=True)
        print(f"{tag} done in {time.time() - started:.0f} s; runs left {left}", flush=True)
    started = time.time()
    print(f"[synthesis] {synthesis} over {len(run_dirs)} runs -> {out / 'notebooks'}", flush=True)
    # The synthesis is cheap and reads every run, so it is always re-run.
    run_step(synthesis, out, preset, {**overrides, "run_dirs": ",".join(str(d) for d in run_dirs)}, progress)
    print(f"[synthesis] done in {time.time() - started:.0f} s; tables in {out / 'metrics'}", flush=True)
    return out
