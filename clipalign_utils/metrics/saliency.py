"""Saliency metrics as the MIT saliency benchmark defines them, and their average over images.

Bylinskii, Judd, Oliva, Torralba & Durand, "What do different evaluation metrics tell us about
saliency models?" (TPAMI 2019); reference code: the benchmark's Matlab ``code_forMetrics``
(github.com/cvzoya/saliency). Each function follows that code line by line:

- ``cc``: Pearson correlation of the two maps (``CC.m``: both maps standardised, then ``corr2``).
  A constant map has no variance: NaN.
- ``nss``: the saliency map standardised with the *sample* standard deviation (Matlab's ``std``,
  n − 1), averaged over the fixated pixels (``NSS.m``). A constant map: NaN.
- ``sim``: both maps min–max normalised to [0, 1], then divided by their sum; the sum of the
  pixel-wise minimum (``similarity.m``). An all-zero map stays zero (SIM 0); any other constant
  map has no range, its normalisation is 0/0, and SIM is NaN, as in the Matlab code.
- ``kld``: KL(density ‖ saliency) = Σ P log(ε + P / (Q + ε)) with both maps divided by their sum
  and ε = 2.2204e-16 (Matlab's ``eps``) (``KLdiv.m``). Lower is better.
- ``auc_judd``: thresholds at the saliency values of the fixated pixels; true positives = fixated
  pixels above threshold, false positives = the other pixels above it, over all non-fixated
  pixels; trapezoidal area (``AUC_Judd.m``). The Matlab default adds uniform jitter in
  [0, 1e-7) to break ties before min–max normalising; here that jitter is seeded (``jitter=True``,
  the default) and can be switched off.
- ``sauc``: shuffled AUC (``AUC_shuffled.m``, after Borji): negatives are saliency values at
  fixation locations of *other* images (the union of the fixations of ``n_other`` = 10 random
  other images, Borji's M), as many as there are fixations (fewer if the other images have
  fewer), drawn without replacement ``n_splits`` = 100 times; thresholds 0, 0.1, … up to the
  largest value in play on the min–max normalised map; the AUC averaged over the splits.
  It rewards what a centre bias alone cannot.
- ``auc_borji``: AUC-Borji (``AUC_Borji.m``): as ``sauc``, but the negatives are drawn uniformly from
  every pixel of the map, with replacement, as many as there are fixations; a centre bias scores well.

Fixations are binary maps (a pixel fixated more than once counts once, as in the benchmark).
A saliency map of another size is first resized to the ground truth's (bilinear; the Matlab code
uses ``imresize``'s bicubic default).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
from PIL import Image

from ..errors import ParameterError
from .stats import bootstrap_mean_ci

METRICS = ("cc", "nss", "sim", "kld", "auc_judd", "sauc", "auc_borji")
# Higher is better for every metric but KLD.
LOWER_IS_BETTER = frozenset({"kld"})
MATLAB_EPS = float(np.finfo(np.float64).eps)  # 2.2204e-16, Matlab's eps
_trapezoid = getattr(np, "trapezoid", None) or np.trapz  # numpy < 2 names it trapz
SUMMARY_COLUMNS = ["metric", "value", "value_lo", "value_hi", "n_images"]


# ------------------------------------------------------------------------------ helpers
def resize_map(saliency_map: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A 2-D map resized (bilinear) to ``shape`` = (H, W), as float64; unchanged if it fits."""
    saliency_map = np.asarray(saliency_map, dtype=np.float64)
    if saliency_map.ndim != 2:
        raise ParameterError(f"a saliency map must be 2-D; got shape {saliency_map.shape}")
    if saliency_map.shape == tuple(shape):
        return saliency_map
    image = Image.fromarray(saliency_map.astype(np.float32))  # mode "F"
    return np.asarray(image.resize((int(shape[1]), int(shape[0])), Image.BILINEAR), dtype=np.float64)


def _as_fixations(fixations: np.ndarray) -> np.ndarray:
    fixations = np.asarray(fixations)
    if fixations.ndim != 2:
        raise ParameterError(f"a fixation map must be 2-D; got shape {fixations.shape}")
    return fixations > 0


def _minmax(values: np.ndarray) -> np.ndarray:
    """(x − min) / (max − min); a constant map gives NaN everywhere, as in Matlab (0/0)."""
    lo, hi = values.min(), values.max()
    with np.errstate(invalid="ignore", divide="ignore"):
        return (values - lo) / (hi - lo) if hi > lo else np.full_like(values, np.nan)


def _pair(saliency_map: np.ndarray, ground_truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ground_truth = np.asarray(ground_truth, dtype=np.float64)
    if ground_truth.ndim != 2:
        raise ParameterError(f"a ground-truth map must be 2-D; got shape {ground_truth.shape}")
    return resize_map(saliency_map, ground_truth.shape), ground_truth


def _constant(m: np.ndarray) -> bool:
    """Every value the same, judged exactly: a float64 constant's mean is rounded (0.3 repeated averages to
    0.30000000000000004), which leaves a std of 1e-17 instead of 0 and would z-score the rounding."""
    return m.size == 0 or bool(np.ptp(m) == 0)


# ------------------------------------------------------------------- map-vs-map metrics
def cc(saliency_map: np.ndarray, density: np.ndarray) -> float:
    """Pearson's linear correlation between a saliency map and the fixation density; NaN if either is constant."""
    s, d = _pair(saliency_map, density)
    if _constant(s) or _constant(d):
        return float("nan")
    s, d = s - s.mean(), d - d.mean()
    denominator = np.sqrt((s * s).sum() * (d * d).sum())
    if not np.isfinite(denominator) or denominator == 0:
        return float("nan")
    return float((s * d).sum() / denominator)


def sim(saliency_map: np.ndarray, density: np.ndarray) -> float:
    """Histogram intersection of the two maps as distributions (1 = identical, 0 = disjoint)."""
    s, d = _pair(saliency_map, density)

    def normalise(m):
        if not m.any():  # a zero map stays a zero map
            return m
        m = _minmax(m)
        return m / m.sum()

    s, d = normalise(s), normalise(d)
    if np.isnan(s).all() or np.isnan(d).all():
        return float("nan")
    return float(np.minimum(s, d).sum())


def kld(saliency_map: np.ndarray, density: np.ndarray) -> float:
    """KL divergence of the saliency map (as a distribution) from the fixation density; 0 = identical."""
    q, p = _pair(saliency_map, density)
    if q.any():
        q = q / q.sum()
    if p.any():
        p = p / p.sum()
    return float((p * np.log(MATLAB_EPS + p / (q + MATLAB_EPS))).sum())


# -------------------------------------------------------------- map-vs-fixation metrics
def nss(saliency_map: np.ndarray, fixations: np.ndarray) -> float:
    """Mean of the standardised saliency map (sample std, n − 1) at the fixated pixels; NaN for a constant map."""
    fixated = _as_fixations(fixations)
    s = resize_map(saliency_map, fixated.shape)
    std = s.std(ddof=1) if s.size > 1 else 0.0
    if not fixated.any() or not np.isfinite(std) or _constant(s):
        return float("nan")
    return float(((s - s.mean()) / std)[fixated].mean())


def auc_judd(saliency_map: np.ndarray, fixations: np.ndarray, jitter: bool = True, seed: int = 0) -> float:
    """AUC-Judd: ROC area with thresholds at the fixated pixels' values, negatives = all other pixels."""
    fixated = _as_fixations(fixations)
    s = resize_map(saliency_map, fixated.shape)
    if not fixated.any():
        return float("nan")
    if jitter:
        s = s + np.random.default_rng(seed).random(s.shape) / 1e7
    s = _minmax(s).ravel()
    if np.isnan(s).all():
        return float("nan")
    at_fixations = s[fixated.ravel()]
    n_fix, n_pixels = at_fixations.size, s.size
    if n_pixels == n_fix:
        return float("nan")
    thresholds = np.sort(at_fixations)[::-1]
    ranked = np.sort(s)
    above = n_pixels - np.searchsorted(ranked, thresholds, side="left")  # #{S >= threshold}
    i = np.arange(1, n_fix + 1)
    tp = np.concatenate([[0.0], i / n_fix, [1.0]])
    fp = np.concatenate([[0.0], (above - i) / (n_pixels - n_fix), [1.0]])
    return float(_trapezoid(tp, fp))


def sauc(saliency_map: np.ndarray, fixations: np.ndarray, other_fixations: np.ndarray,
         n_splits: int = 100, step: float = 0.1, seed: int = 0) -> float:
    """Shuffled AUC: negatives drawn from the fixation locations of other images (``other_fixations``,
    a binary map of the same size), ``n_splits`` draws of as many locations as there are fixations."""
    fixated = _as_fixations(fixations)
    other = _as_fixations(other_fixations)
    if other.shape != fixated.shape:
        raise ParameterError(f"other_fixations must have the fixation map's shape {fixated.shape}; got {other.shape}")
    normalised = _normalised_at_fixations(saliency_map, fixated)
    if normalised is None:
        return float("nan")
    s, at_fixations = normalised
    other_index = np.flatnonzero(other.ravel())
    n_fix = at_fixations.size
    n_other = min(n_fix, other_index.size)
    if n_other == 0:
        return float("nan")
    rng = np.random.default_rng(seed)
    negatives = np.stack([s[rng.permutation(other_index)[:n_other]] for _ in range(int(n_splits))])
    return _mean_split_auc(at_fixations, negatives, step)


def auc_borji(saliency_map: np.ndarray, fixations: np.ndarray, n_splits: int = 100, step: float = 0.1,
              seed: int = 0) -> float:
    """AUC-Borji (``AUC_Borji.m``): negatives are the saliency values at pixels drawn uniformly from the
    whole map, with replacement, as many as there are fixations, ``n_splits`` = 100 times; thresholds and
    area as :func:`sauc`'s. Unlike sAUC it rewards a centre bias (the negatives are everywhere)."""
    normalised = _normalised_at_fixations(saliency_map, _as_fixations(fixations))
    if normalised is None:
        return float("nan")
    s, at_fixations = normalised
    negatives = s[np.random.default_rng(seed).integers(0, s.size, size=(int(n_splits), at_fixations.size))]
    return _mean_split_auc(at_fixations, negatives, step)


def _normalised_at_fixations(saliency_map: np.ndarray, fixated: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(the map at the fixation map's size, min–max normalised and flattened; its values at the fixations), or
    None when there is nothing to score (no fixation, or a map without range)."""
    if not fixated.any():
        return None
    s = _minmax(resize_map(saliency_map, fixated.shape)).ravel()
    if np.isnan(s).all():
        return None
    return s, s[fixated.ravel()]


def _mean_split_auc(at_fixations: np.ndarray, negatives: np.ndarray, step: float) -> float:
    """The mean over splits (rows of ``negatives``) of the ROC area of the fixated values against the split's
    negatives, at Matlab's thresholds 0:step:top, descending, top the split's largest value in play; true
    positives over the fixations, false positives over the split's negatives (``AUC_shuffled.m``,
    ``AUC_Borji.m``)."""
    n_fix, n_negative = at_fixations.size, negatives.shape[1]
    # Each split's thresholds are the first ``count`` points of one grid. Splits are scored together per
    # count, the same arithmetic as one at a time.
    counts = np.floor(np.maximum(at_fixations.max(), negatives.max(axis=1)) / step + 1e-9).astype(int) + 1
    grid = np.arange(counts.max()) * step
    fixations_above = (at_fixations[None, :] >= grid[:, None]).sum(1)  # per threshold of the grid
    negatives_above = (negatives[:, None, :] >= grid[None, :, None]).sum(2)  # per split and threshold
    aucs = np.empty(len(negatives))
    for count in np.unique(counts):
        splits = np.flatnonzero(counts == count)
        ends = np.zeros((splits.size, 1)), np.ones((splits.size, 1))
        tp = np.broadcast_to(fixations_above[count - 1::-1] / n_fix, (splits.size, count))
        fp = negatives_above[splits, count - 1::-1] / n_negative
        aucs[splits] = _trapezoid(np.hstack([ends[0], tp, ends[1]]), np.hstack([ends[0], fp, ends[1]]), axis=1)
    return float(aucs.mean())


# ------------------------------------------------------------------------- shuffled AUC
def _rescale_points(rows: np.ndarray, cols: np.ndarray, source: tuple[int, int], target: tuple[int, int]):
    r = np.minimum((rows * target[0]) // source[0], target[0] - 1)
    c = np.minimum((cols * target[1]) // source[1], target[1] - 1)
    return r, c


def other_fixations(fixation_maps: Sequence[np.ndarray], index: int, n_other: int = 10, seed: int = 0) -> np.ndarray:
    """The union of the fixations of ``n_other`` random other images (Borji's M = 10), as a binary map
    of image ``index``'s size; fixations of other-sized images are rescaled proportionally."""
    n = len(fixation_maps)
    target = np.asarray(fixation_maps[index]).shape
    candidates = np.array([i for i in range(n) if i != index], dtype=int)
    rng = np.random.default_rng([seed, index])
    chosen = rng.permutation(candidates)[:int(n_other)] if candidates.size else candidates
    union = np.zeros(target, dtype=bool)
    for j in chosen:
        fixated = _as_fixations(fixation_maps[j])
        rows, cols = np.nonzero(fixated)
        rows, cols = _rescale_points(rows, cols, fixated.shape, target)
        union[rows, cols] = True
    return union


# ----------------------------------------------------------------------------- baseline
def centre_gaussian(shape: tuple[int, int], sigma: float = 0.25) -> np.ndarray:
    """A centre-bias map: a Gaussian at the image centre, stretched to the aspect ratio
    (standard deviation ``sigma`` × height vertically, × width horizontally), peak 1."""
    h, w = int(shape[0]), int(shape[1])
    if not sigma > 0:
        raise ParameterError(f"sigma must be > 0; got {sigma!r}")
    y = ((np.arange(h) + 0.5) / h - 0.5) / sigma
    x = ((np.arange(w) + 0.5) / w - 0.5) / sigma
    return np.exp(-0.5 * (y[:, None] ** 2 + x[None, :] ** 2))


# --------------------------------------------------------------------- over many images
def image_scores(saliency_map: np.ndarray, density: np.ndarray, fixations: np.ndarray,
                 other: np.ndarray, seed: int = 0, n_splits: int = 100) -> dict[str, float]:
    """Every metric (METRICS) of one image: {metric: value}."""
    s = resize_map(saliency_map, np.asarray(density).shape)
    return {"cc": cc(s, density), "nss": nss(s, fixations), "sim": sim(s, density), "kld": kld(s, density),
            "auc_judd": auc_judd(s, fixations, jitter=True, seed=seed),
            "sauc": sauc(s, fixations, other, n_splits=n_splits, seed=seed),
            "auc_borji": auc_borji(s, fixations, n_splits=n_splits, seed=seed)}


def score_images(saliency_maps: Sequence[np.ndarray], densities: Sequence[np.ndarray],
                 fixation_maps: Sequence[np.ndarray], *, n_other: int = 10, n_splits: int = 100,
                 seed: int = 0, others: Sequence[np.ndarray] | None = None, first: int = 0) -> pd.DataFrame:
    """One row per image (``image`` = its index) with a column per metric.

    ``others`` (the sAUC negatives per image) defaults to :func:`other_fixations` of the same
    fixation maps, seeded, so every model is scored against the same negatives. ``first``: the index in
    its set of the first image given, with ``others`` (a set scored a part at a time: each image keeps its
    index and seed).
    """
    n = len(saliency_maps)
    if not n == len(densities) == len(fixation_maps):
        raise ParameterError(f"saliency maps, densities and fixation maps must be as many; got "
                             f"{n}, {len(densities)} and {len(fixation_maps)}")
    rows = []
    for i in range(n):
        other = others[i] if others is not None else other_fixations(fixation_maps, i, n_other, seed)
        rows.append({"image": first + i, **image_scores(saliency_maps[i], densities[i], fixation_maps[i], other,
                                                        seed=seed + first + i, n_splits=n_splits)})
    return pd.DataFrame(rows, columns=["image", *METRICS])


def summarize(per_image: pd.DataFrame, n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> pd.DataFrame:
    """Per metric: mean over the images where it is defined, with a percentile bootstrap interval
    over images. Columns: metric, value, value_lo, value_hi, n_images."""
    rows = []
    for metric in METRICS:
        values = per_image[metric].to_numpy(dtype=float) if metric in per_image else np.array([])
        values = values[np.isfinite(values)]
        if values.size == 0:
            rows.append({"metric": metric, "value": np.nan, "value_lo": np.nan, "value_hi": np.nan, "n_images": 0})
            continue
        lo, hi = bootstrap_mean_ci(values, n_boot=n_boot, seed=seed, level=level)
        rows.append({"metric": metric, "value": float(values.mean()), "value_lo": lo, "value_hi": hi,
                     "n_images": int(values.size)})
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def score_saliency(saliency_maps: Sequence[np.ndarray], densities: Sequence[np.ndarray],
                   fixation_maps: Sequence[np.ndarray], *, n_boot: int = 1000, seed: int = 0,
                   level: float = 0.95, n_other: int = 10, n_splits: int = 100,
                   others: Sequence[np.ndarray] | None = None) -> pd.DataFrame:
    """:func:`score_images` then :func:`summarize`: rows metric, value, value_lo, value_hi, n_images."""
    per_image = score_images(saliency_maps, densities, fixation_maps, n_other=n_other, n_splits=n_splits,
                             seed=seed, others=others)
    return summarize(per_image, n_boot=n_boot, seed=seed, level=level)


# ------------------------------------------------------------------ contour vs interior
def region_shares(saliency_maps: Sequence[np.ndarray], regions: dict[str, Sequence[np.ndarray]]) -> pd.DataFrame:
    """Per image and region: the share of the map's total saliency that falls in the region
    (``share``) and the region's share of the image's area (``area``; the share a uniform map would
    get), and their ratio ``enrichment`` (> 1 = the map favours the region). Columns: image, region,
    share, area, enrichment. Maps are resized to the region masks' size."""
    rows = []
    for name, masks in regions.items():
        for i, (m, mask) in enumerate(zip(saliency_maps, masks)):
            mask = np.asarray(mask, dtype=bool)
            s = np.abs(resize_map(m, mask.shape))
            total = s.sum()
            share = float(s[mask].sum() / total) if total > 0 else float("nan")
            area = float(mask.mean())
            rows.append({"image": i, "region": name, "share": share, "area": area,
                         "enrichment": share / area if area > 0 else float("nan")})
    return pd.DataFrame(rows, columns=["image", "region", "share", "area", "enrichment"])
