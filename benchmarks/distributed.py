"""One run's analysis with 1 and N processes (``clipalign run --only … --nproc N``), measured in one run.

    python benchmarks/distributed.py [--preset smoke] [--steps iqa,shape,noise,similarity,saliency] [--nproc 2]

Trains one run of the preset (not timed), then analyses copies of it without their embedding cache, each
with an empty evaluation-set cache of its own: once in one process, once under torchrun with N ranks, both with the machine's threads divided alike
(OMP_NUM_THREADS = cores / N in both, so the tables are the same bit for bit). Reports the wall time of
each, the ratio, and the split of the N-process run: the ranks' share-out of the checkpoints (each
step measured on each checkpoint alone, caching its embeddings and maps) and rank 0's pass over the whole
run from the cache, which is what does not divide. The last line: "N processes: X.XX of one process's time".
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def timed_run(run_dir: Path, steps: str, threads: int, nproc: int | None) -> tuple[float, str]:
    """The command's wall time and output, with an evaluation-set cache of its own, empty (``CLIPALIGN_CACHE_DIR``:
    else the second run would read the sets the first drew, and the user's cache would be written)."""
    command = [sys.executable, "-m", "clipalign_utils.cli", "run", "--out", str(run_dir), "--only", steps]
    command += ["--nproc", str(nproc)] if nproc else []
    env = {**os.environ, "OMP_NUM_THREADS": str(threads),
           "CLIPALIGN_CACHE_DIR": str(run_dir.parent / f"{run_dir.name}-sets")}
    started = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    took = time.perf_counter() - started
    if result.returncode:
        raise SystemExit(result.stderr[-2000:])
    return took, result.stdout


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--preset", default="smoke")
    parser.add_argument("--steps", default="iqa,shape,noise,similarity,saliency")
    parser.add_argument("--nproc", type=int, default=2)
    args = parser.parse_args()
    threads = max(1, (os.cpu_count() or 1) // args.nproc)
    with tempfile.TemporaryDirectory() as tmp:
        trained = Path(tmp) / "trained"
        subprocess.run([sys.executable, "-m", "clipalign_utils.cli", "run", "--preset", args.preset, "--out",
                        str(trained), "--only", "train"], check=True, capture_output=True,
                       env={**os.environ, "CLIPALIGN_CACHE_DIR": str(Path(tmp) / "trained-sets")})
        n_checkpoints = len(list((trained / "checkpoints").glob("epoch_*.pt")))
        times, outputs = {}, {}
        for label, nproc in (("1", None), (str(args.nproc), args.nproc)):
            run_dir = Path(tmp) / f"run{label}"
            shutil.copytree(trained, run_dir, ignore=shutil.ignore_patterns("cache"))
            times[label], outputs[label] = timed_run(run_dir, args.steps, threads, nproc)
        tables = {label: {p.name: p.read_bytes() for p in (Path(tmp) / f"run{label}" / "metrics").glob("*.csv")}
                  for label in ("1", str(args.nproc))}
        same = bool(tables["1"]) and tables["1"] == tables[str(args.nproc)]
    steps_one = sum(float(s) for s in re.findall(r"done in (\d+) s", outputs["1"]))
    steps_rank0 = sum(float(s) for s in re.findall(r"done in (\d+) s", outputs[str(args.nproc)]))
    print(f"{args.preset} run, {n_checkpoints} checkpoints, steps {args.steps}; {os.cpu_count()} CPU cores, "
          f"{threads} thread(s) per process in both runs")
    print(f"1 process: {times['1']:.1f} s (its step notebooks {steps_one:.0f} s)")
    print(f"{args.nproc} processes: {times[str(args.nproc)]:.1f} s (rank 0's step notebooks from the cache "
          f"{steps_rank0:.0f} s; the share-out, torchrun and imports the rest)")
    print(f"tables byte-identical: {same}")
    print(f"{args.nproc} processes: {times[str(args.nproc)] / times['1']:.2f} of one process's time")


if __name__ == "__main__":
    main()
