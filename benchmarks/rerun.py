"""A run's analysis steps re-run on their cached embeddings, against their first run, measured in one run.

    python benchmarks/rerun.py [--preset default] [--steps iqa,shape,noise,similarity,saliency]

Trains one run of the preset (``clipalign run --only train``, not timed), then times ``clipalign run
--only STEPS`` on it twice: the first time (embeddings computed, evaluation sets drawn) and again (every
step re-executes its page and recomputes its tables, from the embedding cache and the evaluation-set
cache). The evaluation-set cache is a fresh folder (``CLIPALIGN_CACHE_DIR``), so the first pass draws
every set. Both are wall times of the whole command (process start, kernel and imports included), with
each step's time as the command prints it. The last line: "re-run: X.XX of the first run's analysis time".
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


def timed(run_dir: Path, steps: str, preset: str, env: dict) -> tuple[float, dict[str, int]]:
    command = [sys.executable, "-m", "clipalign_utils.cli", "run", "--preset", preset, "--out", str(run_dir),
               "--only", steps, "--no-book"]
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
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        env = {**os.environ, "CLIPALIGN_CACHE_DIR": str(Path(folder) / "cache")}
        run_dir = Path(folder) / "run"
        timed(run_dir, "train", args.preset, env)
        first, first_steps = timed(run_dir, args.steps, args.preset, env)
        again, again_steps = timed(run_dir, args.steps, args.preset, env)
    print(f"{args.preset} run, steps {args.steps}; {os.cpu_count()} CPU cores")
    for step in args.steps.split(","):
        print(f"  {step:<11} first {first_steps.get(step, '?'):>4} s   re-run {again_steps.get(step, '?'):>4} s")
    print(f"first run's analysis: {first:.1f} s (the command's wall time)")
    print(f"re-run from the caches: {again:.1f} s")
    print(f"re-run: {again / first:.2f} of the first run's analysis time")


if __name__ == "__main__":
    main()
