"""A run's analysis steps re-run on their cached embeddings, against their first run, measured in one run.

    python benchmarks/rerun.py [--preset default] [--steps iqa,shape,noise,similarity,saliency]

Trains one run of the preset (``clipalign run --only train``, not timed), then times ``clipalign run
--only STEPS`` on it twice: the first time (embeddings computed, evaluation sets drawn) and again (every
step re-executes its page and recomputes its tables, from the embedding cache and the evaluation-set
cache). The evaluation-set cache is a fresh folder (``CLIPALIGN_CACHE_DIR``), so the first pass draws
every set. Both are wall times of the whole command (process start, kernel and imports included), with
each step's time as the command prints it. The last line: "re-run: X.XX of the first run's analysis time".

    python benchmarks/rerun.py --trajectory ViT-B-32 [--checkpoints 3]

The same for a real architecture at its own input size: ``--checkpoints`` random-weight checkpoints of the
open_clip model in a folder, streamed through the steps over small sets in the real datasets' layouts with
one prompt per class (as ``benchmarks/real_clip_cost.py`` measures one), ``clipalign run --checkpoints
FOLDER --only STEPS`` the first time, then ``clipalign run --only STEPS`` (no ``-p``: the run's record keeps
them) on the streamed run from its caches (the weights are not read again).
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def timed(run_dir: Path, steps: str, preset: str, env: dict, extra: tuple[str, ...] = ()) -> tuple[float, dict[str, int]]:
    command = [sys.executable, "-m", "clipalign_utils.cli", "run", "--preset", preset, "--out", str(run_dir),
               "--only", steps, "--no-book", *extra]
    started = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    took = time.perf_counter() - started
    if result.returncode:
        raise SystemExit(result.stderr[-2000:])
    return took, {step: int(seconds) for step, seconds in re.findall(r"\] (\w+) done in (\d+) s", result.stdout)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="default")
    parser.add_argument("--steps", default="iqa,shape,noise,similarity,saliency")
    parser.add_argument("--trajectory", metavar="MODEL", help="an open_clip architecture's random-weight "
                                                              "checkpoints streamed instead of a trained run")
    parser.add_argument("--checkpoints", type=int, default=3, help="with --trajectory: how many")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        env = {**os.environ, "CLIPALIGN_CACHE_DIR": str(Path(folder) / "cache")}
        run_dir = Path(folder) / "run"
        if args.trajectory:
            stream = trajectory(Path(folder), args.trajectory, args.checkpoints)
            first, first_steps = timed(run_dir, args.steps, args.preset, env, stream)
            # No -p: each step keeps what it was given last time (record.json), the model its manifest's.
            again, again_steps = timed(run_dir, args.steps, args.preset, env)
        else:
            timed(run_dir, "train", args.preset, env)
            first, first_steps = timed(run_dir, args.steps, args.preset, env)
            again, again_steps = timed(run_dir, args.steps, args.preset, env)
    what = (f"{args.trajectory} trajectory of {args.checkpoints} checkpoints at its input size"
            if args.trajectory else f"{args.preset} run")
    print(f"{what}, steps {args.steps}; {os.cpu_count()} CPU cores")
    for step in args.steps.split(","):
        print(f"  {step:<11} first {first_steps.get(step, '?'):>4} s   re-run {again_steps.get(step, '?'):>4} s")
    print(f"first run's analysis: {first:.1f} s (the command's wall time)")
    print(f"re-run from the caches: {again:.1f} s")
    print(f"re-run: {again / first:.2f} of the first run's analysis time")


def trajectory(folder: Path, model_name: str, n: int) -> tuple[str, ...]:
    """``n`` random-weight checkpoints of ``model_name`` (each its own seed) in open_clip_train's format in
    ``folder/checkpoints``, and small real-format sets; the ``clipalign run`` options that stream them."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from real_clip_cost import real_format_sets, write_checkpoint

    checkpoints = folder / "checkpoints"
    checkpoints.mkdir()
    for epoch in range(1, n + 1):
        write_checkpoint(model_name, checkpoints / f"epoch_{epoch}.pt", seed=epoch, epoch=epoch)
    sets = real_format_sets(folder / "data")
    # One prompt per class, as real_clip_cost.py measures by default: the ensemble's 80 templates over
    # ImageNet's 1,000 classes would make the first run a text-tower benchmark (about 15 minutes a checkpoint).
    return ("--checkpoints", str(checkpoints), "-p", f"model={model_name}", "-p", "prompt_templates=single",
            *(item for name, value in sets.items() for item in ("-p", f"{name}={value}")))


if __name__ == "__main__":
    main()
