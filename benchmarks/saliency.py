"""Saliency scoring at a real dataset's resolution, measured in one run: the step's path against every metric
computed one map at a time.

    python benchmarks/saliency.py [--images 8] [--maps 11] [--size 1920x1080]

Ground truth shaped as CAT2000's: per image a density (its fixations blurred, float64) and about 400 fixated
pixels, the sAUC negatives the union of ten other images' fixations. ``--maps`` maps per image (a run's
checkpoints and the centre-bias baseline), made at the tiny model's 32 px and upsampled onto the ground truth as
the step does (not timed). Timed, in one process:
- one map at a time: ``metrics.saliency.image_scores`` for each map, its ground truth's share of every metric
  made again for each (how the scoring ran before 2026-12-06);
- the step's path: ``image_truths`` once per image, then ``score_truths`` on the step's threads (OMP_NUM_THREADS,
  else the cores).
Each is run twice, the second timed. The values are checked identical. The last line: "the step's path: X.XX of
the one-map-at-a-time time (A ms a map against B)". numpy's huge-page advice (``NUMPY_MADVISE_HUGEPAGE``) is as
the environment sets it, and printed: where the kernel's THP defrag is ``madvise``, faults in memory so marked can
stall on compaction (numpy/numpy#31590), and the times move with the machine's free memory.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
from PIL import Image, ImageFilter

from clipalign_utils.metrics import saliency as metrics
from clipalign_utils.cores import threads_per_process
from clipalign_utils.steps.saliency.maps import upsample_each


def ground_truth(n_images: int, shape: tuple[int, int], seed: int = 0):
    """(densities, fixation maps, sAUC negatives) of ``n_images`` CAT2000-like images."""
    rng = np.random.default_rng(seed)
    h, w = shape
    fixations = []
    for _ in range(n_images):
        f = np.zeros(shape, bool)
        f[np.clip(rng.normal(h / 2, h / 5, 400), 0, h - 1).astype(int),
          np.clip(rng.normal(w / 2, w / 5, 400), 0, w - 1).astype(int)] = True
        fixations.append(f)
    densities = [np.asarray(Image.fromarray(f.astype(np.uint8) * 255).filter(ImageFilter.GaussianBlur(h / 36)),
                            dtype=np.float64) for f in fixations]
    others = [metrics.other_fixations(fixations, i) for i in range(n_images)]
    return densities, fixations, others


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--maps", type=int, default=11, help="maps per image (checkpoints and baselines)")
    parser.add_argument("--size", default="1920x1080", help="the ground truth's WxH")
    args = parser.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    densities, fixations, others = ground_truth(args.images, (h, w))
    rng = np.random.default_rng(1)
    maps = [upsample_each(rng.random((args.images, 32, 32), dtype=np.float32) ** 2, [(h, w)] * args.images)
            for _ in range(args.maps)]
    threads = threads_per_process(1)  # as the step counts them
    n = args.images * args.maps
    print(f"{args.images} images at {w}×{h}, {args.maps} maps each, {threads} threads, numpy's huge-page advice "
          f"{'on' if np._core.multiarray._get_madvise_hugepage() else 'off'}")

    def one_at_a_time():
        return [[metrics.image_scores(m[i], densities[i], fixations[i], others[i], seed=i) for i in range(args.images)]
                for m in maps]

    def prepared():
        truths = metrics.image_truths(densities, fixations, others=others, threads=threads)
        return [metrics.score_truths(m, truths, threads=threads).drop(columns="image").to_dict("records") for m in maps]

    seconds, scores = {}, {}
    for name, path in (("one map at a time", one_at_a_time), ("the step's path", prepared)):
        path()  # warm: the allocator's first faults
        start = time.perf_counter()
        scores[name] = path()
        seconds[name] = time.perf_counter() - start
        print(f"  {name:18s} {1000 * seconds[name] / n:7.1f} ms a map")
    same = all(np.array_equal(np.array(list(a.values())), np.array(list(b.values())), equal_nan=True)
               for rows_a, rows_b in zip(scores["one map at a time"], scores["the step's path"])
               for a, b in zip(rows_a, rows_b))
    print(f"  values identical: {same}")
    one, step = seconds["one map at a time"], seconds["the step's path"]
    print(f"the step's path: {step / one:.2f} of the one-map-at-a-time time ({1000 * step / n:.1f} ms a map "
          f"against {1000 * one / n:.1f})")

if __name__ == "__main__":
    main()
