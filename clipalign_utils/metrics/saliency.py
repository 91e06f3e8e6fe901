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
  As in ``AUC_Borji.m``, an image with at most one fixated pixel scores NaN (``sum(fixationMap(:)>0)<=1``;
  sAUC and AUC-Judd need only one).

Deviations from the Matlab code that remain (checked against a line-by-line transcription of the ``.m`` files,
which these functions equal to the last digit on the same draws): the random draws (AUC-Judd's jitter, the
sAUC and AUC-Borji negatives, the choice of the 10 other images) come from numpy's seeded generator, not
Matlab's ``rand``/``randi``/``randperm`` (on synthetic maps with 40–150 fixations, a per-image spread of about
0.003 between seeds for sAUC and AUC-Borji with 100 splits, 0.01 for sAUC over the choice of the other images);
the other images' fixations enter sAUC's negatives as points rescaled to this image's size, where the
benchmark's ``scoreModel_helper.m`` adds up their binary maps ``imresize``d (the same when the images share a
size); and maps are resized bilinearly (below).

Fixations are binary maps (a pixel fixated more than once counts once, as in the benchmark).
A saliency map of another size is first resized to the ground truth's (bilinear; the Matlab code
uses ``imresize``'s bicubic default, whose overshoot can make a non-negative map negative, and KLD then
undefined). On synthetic smooth maps, bicubic rather than bilinear upsampling of a 14 × 14 patch-grid map moves CC
and NSS by about −0.01 (up to −0.03 and −0.06 on one image), AUC-Judd by −0.003; of a 224-px map, by < 0.001.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Sequence

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
    """(x − min) / (max − min); a constant map gives NaN everywhere, as in Matlab (0/0); an empty one stays empty."""
    if values.size == 0:
        return values.astype(np.float64)
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
# Each metric is its ground truth's share (what every map scored against the same image shares: ``_centred``,
# ``_sim_normalised``, ``_distribution``, the fixated pixels, the seeded draws) and the map's share (``_cc``,
# ``_sim``, ``_kld``, …). The functions below compose the two for one map; :class:`ImageTruth` prepares the
# first once for every map of an image (each checkpoint's and each baseline's), with the same arithmetic.
def cc(saliency_map: np.ndarray, density: np.ndarray) -> float:
    """Pearson's linear correlation between a saliency map and the fixation density; NaN if either is constant."""
    s, d = _pair(saliency_map, density)
    return _cc(s, _centred(d))


def _centred(d: np.ndarray) -> tuple[np.ndarray, np.floating] | None:
    """(d − mean, Σ (d − mean)²), or None for a constant map (CC is NaN)."""
    if _constant(d):
        return None
    d = d - d.mean()
    return d, (d * d).sum()


def _cc(s: np.ndarray, centred_density: tuple[np.ndarray, np.floating] | None) -> float:
    if centred_density is None or _constant(s):
        return float("nan")
    d, dd = centred_density
    s = s - s.mean()
    denominator = np.sqrt((s * s).sum() * dd)
    if not np.isfinite(denominator) or denominator == 0:
        return float("nan")
    return float((s * d).sum() / denominator)


def sim(saliency_map: np.ndarray, density: np.ndarray) -> float:
    """Histogram intersection of the two maps as distributions (1 = identical, 0 = disjoint)."""
    s, d = _pair(saliency_map, density)
    return _sim(s, _minmax(s), _sim_normalised(d))


def _sim_normalised(m: np.ndarray, minmax: np.ndarray | None = None) -> np.ndarray:
    """SIM's normalisation: min–max (``minmax``, where already made), then over its sum; a zero map stays zero."""
    if not m.any():
        return m
    m = _minmax(m) if minmax is None else minmax
    return m / m.sum()


def _sim(s: np.ndarray, s_minmax: np.ndarray, normalised_density: np.ndarray) -> float:
    s = _sim_normalised(s, s_minmax)
    if np.isnan(s).all() or np.isnan(normalised_density).all():
        return float("nan")
    return float(np.minimum(s, normalised_density).sum())


def kld(saliency_map: np.ndarray, density: np.ndarray) -> float:
    """KL divergence of the saliency map (as a distribution) from the fixation density; 0 = identical."""
    q, p = _pair(saliency_map, density)
    return _kld(_distribution(q), _distribution(p))


def _distribution(m: np.ndarray) -> np.ndarray:
    """The map over its sum (a zero map stays zero)."""
    return m / m.sum() if m.any() else m


def _kld(q: np.ndarray, p: np.ndarray) -> float:
    """Σ P log(ε + P / (Q + ε)). (Not in one buffer, in place: the sum then follows that buffer's memory order,
    a transposed map's, and moved the last digit.)"""
    return float((p * np.log(MATLAB_EPS + p / (q + MATLAB_EPS))).sum())


# -------------------------------------------------------------- map-vs-fixation metrics
def nss(saliency_map: np.ndarray, fixations: np.ndarray) -> float:
    """Mean of the standardised saliency map (sample std, n − 1) at the fixated pixels; NaN for a constant map."""
    fixated = _as_fixations(fixations)
    return _nss(resize_map(saliency_map, fixated.shape), np.flatnonzero(fixated))


def _nss(s: np.ndarray, fixated: np.ndarray) -> float:
    """``fixated``: the flat indices of the fixated pixels (row-major, as a boolean mask selects them)."""
    std = s.std(ddof=1) if s.size > 1 else 0.0
    if not fixated.size or not np.isfinite(std) or _constant(s):
        return float("nan")
    # Standardised at the fixated pixels only: the same values as standardising the whole map, then selecting
    return float(((s.ravel()[fixated] - s.mean()) / std).mean())


def auc_judd(saliency_map: np.ndarray, fixations: np.ndarray, jitter: bool = True, seed: int = 0) -> float:
    """AUC-Judd: ROC area with thresholds at the fixated pixels' values, negatives = all other pixels."""
    fixated = _as_fixations(fixations)
    s = resize_map(saliency_map, fixated.shape)
    return _auc_judd(s, np.flatnonzero(fixated), _jitter(s.shape, seed) if jitter else None)


def _jitter(shape: tuple[int, ...], seed: int) -> np.ndarray:
    """AUC-Judd's tie-breaking noise, uniform in [0, 1e-7), seeded."""
    return np.random.default_rng(seed).random(shape) / 1e7


def _auc_judd(s: np.ndarray, fixated: np.ndarray, jitter: np.ndarray | None) -> float:
    if not fixated.size:
        return float("nan")
    if jitter is not None:
        s = s + jitter
    s = _minmax(s).ravel()
    if np.isnan(s).all():
        return float("nan")
    at_fixations = s[fixated]
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
    negatives = _shuffled_negatives(fixated, other_fixations, n_splits, seed)
    s = resize_map(saliency_map, fixated.shape)
    return _split_auc(_minmax(s).ravel(), np.flatnonzero(fixated), negatives, step)


def _shuffled_negatives(fixated: np.ndarray, other_fixations: np.ndarray, n_splits: int, seed: int) -> np.ndarray:
    """sAUC's negatives: per split (rows), flat indices of as many of the other images' fixated pixels as this
    image has fixations (all of them if fewer), drawn without replacement."""
    other = _as_fixations(other_fixations)
    if other.shape != fixated.shape:
        raise ParameterError(f"other_fixations must have the fixation map's shape {fixated.shape}; got {other.shape}")
    other_index = np.flatnonzero(other.ravel())
    n_other = min(int(np.count_nonzero(fixated)), other_index.size)
    rng = np.random.default_rng(seed)
    # (no splits: an empty array, where np.stack raised before the metrics could say there is nothing to score)
    return np.array([rng.permutation(other_index)[:n_other] for _ in range(max(int(n_splits), 0))],
                    dtype=np.intp).reshape(max(int(n_splits), 0), n_other)


def auc_borji(saliency_map: np.ndarray, fixations: np.ndarray, n_splits: int = 100, step: float = 0.1,
              seed: int = 0) -> float:
    """AUC-Borji (``AUC_Borji.m``): negatives are the saliency values at pixels drawn uniformly from the
    whole map, with replacement, as many as there are fixations, ``n_splits`` = 100 times; thresholds and
    area as :func:`sauc`'s. Unlike sAUC it rewards a centre bias (the negatives are everywhere). NaN where at
    most one pixel is fixated, as in the Matlab code."""
    fixated = _as_fixations(fixations)
    s = resize_map(saliency_map, fixated.shape)
    return _borji_auc(_minmax(s).ravel(), np.flatnonzero(fixated), _uniform_negatives(fixated, n_splits, seed), step)


def _borji_auc(s: np.ndarray, fixated: np.ndarray, negatives: np.ndarray, step: float) -> float:
    """AUC-Borji's area: :func:`_split_auc`, NaN where at most one pixel is fixated (``AUC_Borji.m`` returns NaN
    when ``sum(fixationMap(:)>0)<=1``)."""
    if fixated.size <= 1:
        return float("nan")
    return _split_auc(s, fixated, negatives, step)


def _uniform_negatives(fixated: np.ndarray, n_splits: int, seed: int) -> np.ndarray:
    """AUC-Borji's negatives: per split, flat indices of pixels drawn uniformly, with replacement, as many as
    there are fixations."""
    return np.random.default_rng(seed).integers(0, fixated.size, size=(int(n_splits), int(np.count_nonzero(fixated))))


def _split_auc(s: np.ndarray, fixated: np.ndarray, negatives: np.ndarray, step: float) -> float:
    """sAUC's and AUC-Borji's area, of the min–max normalised, flattened map ``s`` (NaN where nothing can be
    scored: no fixation, a map without range, no negative)."""
    if not fixated.size or np.isnan(s).all() or not negatives.shape[1]:
        return float("nan")
    return _mean_split_auc(s[fixated], s[negatives], step)


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
@dataclass(frozen=True, eq=False)  # (arrays: no field-wise equality)
class ImageTruth:
    """One image's ground truth as every metric reads it, prepared once for every map scored against it (each
    checkpoint's, each baseline's): the density centred (CC), as SIM's and KLD's distributions, the fixated
    pixels, AUC-Judd's seeded jitter and the sAUC and AUC-Borji negatives' pixels. :meth:`scores` gives the
    metric functions' own values (the same arithmetic), without the ground truth's share made again per map."""

    shape: tuple[int, int]
    centred: tuple[np.ndarray, np.floating] | None
    sim_density: np.ndarray
    kld_density: np.ndarray
    fixated: np.ndarray  # flat indices of the fixated pixels
    jitter: np.ndarray
    shuffled: np.ndarray  # (splits, negatives) flat indices, sAUC's
    uniform: np.ndarray  # (splits, fixations) flat indices, AUC-Borji's
    STEP: ClassVar[float] = 0.1  # sAUC's and AUC-Borji's threshold step, their functions' default

    @classmethod
    def of(cls, density: np.ndarray, fixations: np.ndarray, other: np.ndarray, seed: int = 0,
           n_splits: int = 100) -> "ImageTruth":
        """``other``: the sAUC negatives' binary map (:func:`other_fixations`); ``seed`` the image's own."""
        density = np.array(density, dtype=np.float64)  # a copy: the truth outlives the caller's array
        if density.ndim != 2:
            raise ParameterError(f"a ground-truth map must be 2-D; got shape {density.shape}")
        fixated = _as_fixations(fixations)
        if fixated.shape != density.shape:
            raise ParameterError(f"a density and its fixation map must have one shape; got {density.shape} and "
                                 f"{fixated.shape}")
        return cls(density.shape, _centred(density), _sim_normalised(density), _distribution(density),
                   np.flatnonzero(fixated), _jitter(density.shape, seed),
                   _shuffled_negatives(fixated, other, n_splits, seed), _uniform_negatives(fixated, n_splits, seed))

    def scores(self, saliency_map: np.ndarray) -> dict[str, float]:
        """Every metric (METRICS) of ``saliency_map`` (resized to the ground truth) on this image."""
        s = resize_map(saliency_map, self.shape)
        normalised = _minmax(s)  # SIM's, sAUC's and AUC-Borji's
        return {"cc": _cc(s, self.centred), "nss": _nss(s, self.fixated),
                "sim": _sim(s, normalised, self.sim_density), "kld": _kld(_distribution(s), self.kld_density),
                "auc_judd": _auc_judd(s, self.fixated, self.jitter),
                "sauc": _split_auc(normalised.ravel(), self.fixated, self.shuffled, self.STEP),
                "auc_borji": _borji_auc(normalised.ravel(), self.fixated, self.uniform, self.STEP)}


def image_scores(saliency_map: np.ndarray, density: np.ndarray, fixations: np.ndarray,
                 other: np.ndarray, seed: int = 0, n_splits: int = 100) -> dict[str, float]:
    """Every metric (METRICS) of one image: {metric: value}."""
    return ImageTruth.of(density, fixations, other, seed=seed, n_splits=n_splits).scores(saliency_map)


def on_threads(function, items: Sequence, threads: int = 1) -> list:
    """``[function(item) for item in items]``, on up to ``threads`` threads: numpy's array work and PIL's
    decoding run outside the interpreter lock, and each item's result does not depend on the others."""
    if threads > 1 and len(items) > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(min(threads, len(items))) as pool:
            return list(pool.map(function, items))
    return [function(item) for item in items]


def image_truths(densities: Sequence[np.ndarray], fixation_maps: Sequence[np.ndarray], *, n_other: int = 10,
                 n_splits: int = 100, seed: int = 0, others: Sequence[np.ndarray] | None = None,
                 first: int = 0, threads: int = 1) -> list[ImageTruth]:
    """Each image's :class:`ImageTruth`, image i (of index ``first + i`` in its set) seeded ``seed + first + i``.

    ``others`` (the sAUC negatives per image) defaults to :func:`other_fixations` of the same fixation maps,
    seeded, so every model is scored against the same negatives."""
    if len(densities) != len(fixation_maps):
        raise ParameterError(f"densities and fixation maps must be as many; got {len(densities)} and "
                             f"{len(fixation_maps)}")
    return on_threads(lambda i: ImageTruth.of(
        densities[i], fixation_maps[i], others[i] if others is not None else other_fixations(fixation_maps, i, n_other, seed),
        seed=seed + first + i, n_splits=n_splits), range(len(densities)), threads)


def score_truths(saliency_maps: Sequence[np.ndarray], truths: Sequence[ImageTruth], first: int = 0,
                 threads: int = 1) -> pd.DataFrame:
    """One row per image (``image`` = ``first`` + its position) with a column per metric, map i scored against
    ``truths[i]``; on ``threads`` threads (numpy's array work runs outside the interpreter lock; the values do
    not depend on it)."""
    if len(saliency_maps) != len(truths):
        raise ParameterError(f"saliency maps and ground truths must be as many; got {len(saliency_maps)} and "
                             f"{len(truths)}")
    scores = on_threads(lambda pair: pair[1].scores(pair[0]), list(zip(saliency_maps, truths)), threads)
    return pd.DataFrame([{"image": first + i, **row} for i, row in enumerate(scores)], columns=["image", *METRICS])


def score_images(saliency_maps: Sequence[np.ndarray], densities: Sequence[np.ndarray],
                 fixation_maps: Sequence[np.ndarray], *, n_other: int = 10, n_splits: int = 100,
                 seed: int = 0, others: Sequence[np.ndarray] | None = None, first: int = 0) -> pd.DataFrame:
    """One row per image (``image`` = its index) with a column per metric.

    ``others`` (the sAUC negatives per image) defaults to :func:`other_fixations` of the same
    fixation maps, seeded, so every model is scored against the same negatives. ``first``: the index in
    its set of the first image given, with ``others`` (a set scored a part at a time: each image keeps its
    index and seed). Many maps per image (checkpoints): :func:`image_truths` once, then :func:`score_truths`.
    """
    n = len(saliency_maps)
    if not n == len(densities) == len(fixation_maps):
        raise ParameterError(f"saliency maps, densities and fixation maps must be as many; got "
                             f"{n}, {len(densities)} and {len(fixation_maps)}")
    truths = image_truths(densities, fixation_maps, n_other=n_other, n_splits=n_splits, seed=seed, others=others,
                          first=first)
    return score_truths(saliency_maps, truths, first=first)


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
