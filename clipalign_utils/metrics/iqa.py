"""Image-quality alignment: embedding distances between reference and distorted images vs human quality.

Sign convention: human ``quality`` is higher = better (MOS, or −DMOS / 1 − full-reference score), and a
model distance should fall as quality rises; every score here is signed so that higher = better alignment.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import stats
from scipy.optimize import OptimizeWarning, curve_fit

from clipalign_utils.choices import DISTANCES
from clipalign_utils.errors import ParameterError
from clipalign_utils.prose import plural
from clipalign_utils.metrics.stats import (bootstrap_spearman_grouped, finite_pairs, first_max, percentile_interval,
                                           spearman, spearman_replicates_grouped)
# "Early" in the paper's claim: after the untrained checkpoint, at most a third of the run (metrics.peak).
from clipalign_utils.metrics.peak import EARLY_FRACTION, early_window, paired_early_peak



def embedding_distance(ref: np.ndarray, dist: np.ndarray, kind: str = "cosine") -> np.ndarray:
    """Distance between row i of ``ref`` and row i of ``dist`` (both (N, D)), one value per row.

    - ``cosine``: 1 − <r, d> / (|r| |d|); inputs need not be unit-norm; nan for a zero vector.
    - ``euclidean``: |r − d|.
    - ``normalized_euclidean``: with s_ij = (r_ij − d_ij)² and m_j = (1/N) Σ_i s_ij, the dataset mean
      squared difference of dimension j, distance_i = sqrt((1/D) Σ_j s_ij / m_j). A dimension with
      m_j = 0 differs in no pair, so it contributes 0 (its s_ij are all 0).
    """
    _check_distance(kind)
    ref = np.asarray(ref, dtype=float)
    dist = np.asarray(dist, dtype=float)
    if ref.ndim != 2 or ref.shape != dist.shape:
        raise ParameterError(
            f"ref and dist must both be (N, D) arrays of the same shape; got {ref.shape} and {dist.shape}."
        )
    if kind == "cosine":
        norms = np.linalg.norm(ref, axis=1) * np.linalg.norm(dist, axis=1)
        dots = np.einsum("ij,ij->i", ref, dist)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(norms > 0, 1.0 - dots / norms, np.nan)
    if kind == "euclidean":
        return np.linalg.norm(ref - dist, axis=1)
    return _normalized_root_mean((ref - dist) ** 2)


def _check_distance(kind: str) -> None:
    if kind not in DISTANCES:
        raise ParameterError(f"distance must be one of {', '.join(DISTANCES)}; got {kind!r}.")


def _normalized_root_mean(squared: np.ndarray) -> np.ndarray:
    """Normalized euclidean from per-pair squared differences (N, D): each column over its mean over the N
    pairs (a column that is 0 in every pair contributes 0), then the root of each row's mean."""
    scale = squared.mean(axis=0)
    ratio = np.divide(squared, scale, out=np.zeros_like(squared), where=scale > 0)
    return np.sqrt(ratio.mean(axis=1))


def block_pair_statistics(ref: np.ndarray, dist: np.ndarray) -> dict[str, np.ndarray]:
    """For (B, L, C) block outputs, per pair b: ``squared`` (B, C) = Σ_l (r_blc − d_blc)², and ``dot``,
    ``ref_norm2``, ``dist_norm2`` (B,) of the flattened outputs; every block distance is a function of these
    (``block_distance``), so the encoder can reduce a pair's outputs as they come (``Encoder.encode_block_pairs``)."""
    ref = np.asarray(ref, dtype=float)
    dist = np.asarray(dist, dtype=float)
    return {"squared": ((ref - dist) ** 2).sum(axis=1), "dot": np.einsum("blc,blc->b", ref, dist),
            "ref_norm2": np.einsum("blc,blc->b", ref, ref), "dist_norm2": np.einsum("blc,blc->b", dist, dist)}


def block_distance(statistics: dict[str, np.ndarray], kind: str = "normalized_euclidean") -> np.ndarray:
    """Distance of each pair of block outputs from its ``block_pair_statistics``: the pair's L locations as one
    vector of L·C values, location l of the reference against location l of the distorted image, as the
    authors' per-layer code does (pablohc97/Evaluating_Human-CLIP_Alignment_at_Different_Abstraction_Levels).

    - ``cosine``: 1 − ⟨r, d⟩ / (|r| |d|) of that vector; nan for a zero vector.
    - ``euclidean``: |r − d| of that vector.
    - ``normalized_euclidean``: with s_ilc = (r_ilc − d_ilc)² and m_c the mean of s_ilc over all N·L
      location pairs, distance_i = sqrt((1/(L·C)) Σ_l Σ_c s_ilc / m_c); a channel with m_c = 0 contributes 0.
    """
    _check_distance(kind)
    squared = np.asarray(statistics["squared"], dtype=float)
    if kind == "cosine":
        norms = np.sqrt(np.asarray(statistics["ref_norm2"], dtype=float) * statistics["dist_norm2"])
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(norms > 0, 1.0 - statistics["dot"] / norms, np.nan)
    if kind == "euclidean":
        return np.sqrt(squared.sum(axis=1))
    # Σ_l s_ilc / (L · m_c) = squared_ic / mean_i(squared_ic): the number of locations cancels
    return _normalized_root_mean(squared)


def location_distance(ref: np.ndarray, dist: np.ndarray, kind: str = "normalized_euclidean") -> np.ndarray:
    """Distance between ``ref[i]`` and ``dist[i]`` for (N, D) embeddings (``embedding_distance``) or (N, L, C)
    block outputs (L locations: spatial positions or tokens, C channels; ``block_distance``). Averaging the
    features over locations first would cancel zero-mean local damage (noise, JPEG blocks), which is why
    locations are kept apart."""
    ref = np.asarray(ref, dtype=float)
    dist = np.asarray(dist, dtype=float)
    if ref.ndim == 3 and ref.shape == dist.shape:
        return block_distance(block_pair_statistics(ref, dist), kind)
    return embedding_distance(ref, dist, kind)


def pair_rows(reference_index, distorted_index, patches_per_image: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """The feature rows each (reference, distorted) pair compares: patch k of image i is row i·P + k, in
    pair order and, within a pair, patch order (P = 1: one row per image)."""
    reference_index = np.asarray(reference_index, dtype=int)
    distorted_index = np.asarray(distorted_index, dtype=int)
    patches = np.arange(int(patches_per_image))
    return ((reference_index[:, None] * patches_per_image + patches).ravel(),
            (distorted_index[:, None] * patches_per_image + patches).ravel())


def per_pair(per_row: np.ndarray, patches_per_image: int = 1) -> np.ndarray:
    """A pair's distance from its ``pair_rows`` distances: the mean over its P patches."""
    return np.asarray(per_row).reshape(-1, int(patches_per_image)).mean(axis=1)


def pair_distances(reference_features: np.ndarray, distorted_features: np.ndarray, reference_index,
                   distorted_index, kind: str = "normalized_euclidean", patches_per_image: int = 1) -> np.ndarray:
    """Model distance of every (reference, distorted) pair, one value per pair.

    ``*_features`` hold ``patches_per_image`` consecutive rows per image (patch k of image i at row
    i·P + k, the same position in reference and distorted image); the pair's distance is the mean of
    ``location_distance`` over its P patches (for normalized_euclidean, the dimension scales are taken
    over all patch pairs). P = 1 is one row per image.
    """
    ref_rows, dist_rows = pair_rows(reference_index, distorted_index, patches_per_image)
    return per_pair(location_distance(reference_features[ref_rows], distorted_features[dist_rows], kind),
                    patches_per_image)


def logistic_4(x: np.ndarray, b1: float, b2: float, b3: float, b4: float) -> np.ndarray:
    """VQEG 4-parameter logistic: (b1 − b2) / (1 + exp(−(x − b3) / |b4|)) + b2."""
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        return (b1 - b2) / (1.0 + np.exp(-(np.asarray(x, dtype=float) - b3) / abs(b4))) + b2


def _logistic_4_jacobian(x: np.ndarray, b1: float, b2: float, b3: float, b4: float) -> np.ndarray:
    """∂ logistic_4 / ∂(b1, b2, b3, b4), one row per x: the fit's derivatives in closed form (finite
    differences cost four more evaluations per iteration and most of the fit's time)."""
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        scale = abs(b4)
        z = (np.asarray(x, dtype=float) - b3) / scale
        s = 1.0 / (1.0 + np.exp(-z))
        slope = (b1 - b2) * s * (1.0 - s) / scale  # ∂f/∂z over |b4|
        return np.column_stack([s, 1.0 - s, -slope, -slope * z * np.sign(b4)])


def plcc_after_logistic(pred: np.ndarray, target: np.ndarray) -> float:
    """Pearson correlation between ``target`` and logistic_4 fitted to map ``pred`` onto ``target``.

    The curve is fitted to the standardised predictions, from b1 = max(target), b2 = min(target), b3 =
    their mean (0) and b4 = their standard deviation (1). The result carries the sign of the fitted mapping
    (+ when it increases with pred, i.e. b1 > b2), so an anti-aligned predictor scores negative as with
    plain Pearson; where the relation is not monotone the curve may follow its decreasing branch while SRCC
    is positive. If the fit fails or gives a
    non-finite or constant curve, falls back to plain Pearson on the raw predictions; so it does with
    fewer than 5 pairs, which the curve's 4 parameters would fit exactly whatever their order.
    Non-finite pairs are dropped; nan when n < 3 or either side is constant.
    """
    pred, target = finite_pairs(pred, target)
    if pred.size < 3 or np.ptp(pred) == 0 or np.ptp(target) == 0:
        return float("nan")
    if pred.size <= 4:
        return float(stats.pearsonr(pred, target)[0])
    # Fit on standardised predictions: embedding distances can be ~1e-4, where the fit fails and
    # falls back to Pearson; the logistic absorbs the affine change, so the PLCC is unchanged.
    pred = (pred - pred.mean()) / pred.std()
    p0 = [target.max(), target.min(), pred.mean(), pred.std()]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OptimizeWarning)
            warnings.simplefilter("ignore", RuntimeWarning)  # the covariance's overflow on a degenerate fit
            # Levenberg–Marquardt (MINPACK's lmder) with the derivatives in closed form, at its default
            # tolerances: it converges to the fit's optimum from p0 (within a few 1e-6 of the PLCC at tolerances
            # of 1e-15). The earlier "trf" at tolerances of 1e-6 stopped early where near-linear data flatten the
            # logistic (|b4| large), up to 8e-4 short of that PLCC on the default run's tables, and was slower.
            # A fit that runs out of evaluations raises: the PLCC falls back to Pearson below.
            params, _ = curve_fit(logistic_4, pred, target, p0=p0, method="lm", jac=_logistic_4_jacobian,
                                  maxfev=20000)
        fitted = logistic_4(pred, *params)
    except (RuntimeError, ValueError):
        fitted = None
    if fitted is None or not np.all(np.isfinite(fitted)) or np.ptp(fitted) == 0:
        return float(stats.pearsonr(pred, target)[0])
    direction = 1.0 if params[0] > params[1] else -1.0
    return direction * abs(float(stats.pearsonr(fitted, target)[0]))


def _kendall(x: np.ndarray, y: np.ndarray) -> float:
    x, y = finite_pairs(x, y)
    if x.size < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(stats.kendalltau(x, y)[0])


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    x, y = finite_pairs(x, y)
    if x.size < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(stats.pearsonr(x, y)[0])


def alignment_scores(distance: np.ndarray, quality: np.ndarray) -> dict[str, float]:
    """srcc = spearman(−distance, quality), krcc = kendall(−distance, quality),
    plcc = plcc_after_logistic(−distance, quality), pearson = plain Pearson(−distance, quality) (the
    authors' second number, −pearsonr(MOS, distance)); higher = better alignment, nan when undefined."""
    negated = -np.asarray(distance, dtype=float)
    return {
        "srcc": spearman(negated, quality),
        "krcc": _kendall(negated, quality),
        "plcc": plcc_after_logistic(negated, quality),
        "pearson": _pearson(negated, quality),
    }


def iqa_table(pairs: pd.DataFrame, distance_col: str = "distance", n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Alignment scores overall (distortion ``all``) and per distortion type, one row each, of ``pairs``
    (columns reference, distortion, quality and the distance ``distance_col``).

    Columns: distortion, srcc, srcc_lo, srcc_hi, krcc, plcc, pearson, n_pairs. The srcc CI resamples
    reference images with replacement, since the distortions of one reference share it. ``n_pairs`` counts
    the pairs scored: a pair whose distance or quality is not finite (cosine of a zero vector) is left out
    of every score, and of the count.
    """
    missing = [c for c in (distance_col, "quality", "reference", "distortion") if c not in pairs.columns]
    if missing:
        raise ParameterError(f"pairs lack the {plural(len(missing), 'column')} {', '.join(missing)}; "
                             f"columns are {list(pairs.columns)}.")
    subsets = [("all", pairs)] + [(name, sub) for name, sub in pairs.groupby("distortion", sort=True)]
    rows = [{"distortion": name, **scored_pairs(sub[distance_col], sub["quality"], sub["reference"], n_boot, seed)}
            for name, sub in subsets]
    return pd.DataFrame(rows, columns=["distortion", *SCORED_PAIRS_COLUMNS])


SCORED_PAIRS_COLUMNS = ["srcc", "srcc_lo", "srcc_hi", "krcc", "plcc", "pearson", "n_pairs"]


def scored_pairs(distance, quality, reference, n_boot: int = 1000, seed: int = 0, replicates=None) -> dict:
    """One set of pairs' scores (SCORED_PAIRS_COLUMNS): :func:`alignment_scores`, the SRCC's interval from
    resampling ``reference`` images (from ``replicates``, its values on those resamples, where given), and
    n_pairs, the pairs with a finite distance and quality."""
    distance, quality = np.asarray(distance, dtype=float), np.asarray(quality, dtype=float)
    lo, hi = (bootstrap_spearman_grouped(-distance, quality, np.asarray(reference), n_boot=n_boot, seed=seed)
              if replicates is None else percentile_interval(replicates))
    scores = alignment_scores(distance, quality)
    return {"srcc": scores["srcc"], "srcc_lo": lo, "srcc_hi": hi, "krcc": scores["krcc"], "plcc": scores["plcc"],
            "pearson": scores["pearson"], "n_pairs": int(np.count_nonzero(np.isfinite(distance) & np.isfinite(quality)))}


def peak_summary(epochs: np.ndarray, values: np.ndarray) -> dict:
    """Peak and final point of a curve over checkpoints, after sorting by epoch and dropping nan values.

    drop_from_peak = peak_value − final_value; peak_is_interior = the peak is neither the first nor the
    last remaining checkpoint. Ties for the peak go to the earliest epoch. All nan when no value is finite.
    """
    epochs = np.asarray(epochs, dtype=float).ravel()
    values = np.asarray(values, dtype=float).ravel()
    if epochs.shape != values.shape:
        raise ParameterError(f"epochs and values must have the same length; got {epochs.size} and {values.size}.")
    keep = np.isfinite(values) & np.isfinite(epochs)
    order = np.argsort(epochs[keep], kind="stable")
    epochs, values = epochs[keep][order], values[keep][order]
    if values.size == 0:
        nan = float("nan")
        return {"peak_epoch": nan, "peak_value": nan, "final_epoch": nan, "final_value": nan,
                "drop_from_peak": nan, "peak_is_interior": False}
    peak = first_max(values)  # (a tie to within rounding: the earliest)
    return {
        "peak_epoch": float(epochs[peak]),
        "peak_value": float(values[peak]),
        "final_epoch": float(epochs[-1]),
        "final_value": float(values[-1]),
        "drop_from_peak": float(values[peak] - values[-1]),
        "peak_is_interior": bool(0 < peak < values.size - 1),
    }


def early_peak_test(pairs: pd.DataFrame, distance_col: str = "model_distance", quality_col: str = "quality",
                    group_col: str = "reference", n_boot: int = 1000, seed: int = 0, level: float = 0.95,
                    early_fraction: float = EARLY_FRACTION) -> dict:
    """Does alignment peak early and end lower? A paired bootstrap over reference images.

    ``pairs`` holds one row per checkpoint × pair (columns checkpoint, epoch, the distance, quality and
    reference). With S(c) = spearman(−distance, quality) at checkpoint c, E the early checkpoints
    (``early_window``) and F the last one, the statistic is

        early_drop = max_{c ∈ E} S(c) − S(F),

    and its interval comes from resampling reference images (with their pairs) once per replicate and
    recomputing the *whole* statistic — the maximum included — on that resample at every checkpoint, so
    the peak is not chosen on the data and the comparison with the final checkpoint is paired.
    Keys: early_drop, lo, hi, early_peak_epoch (argmax over E), early_peak_srcc, final_epoch, final_srcc,
    early_end (the window's last allowed epoch), n_early (checkpoints in E), n_references. nan when E is empty.
    """
    epochs = pairs.groupby("checkpoint", sort=False)["epoch"].first().sort_values(kind="stable")
    # Only the early checkpoints and the final one enter the statistic: the others need no replicates.
    used = list(epochs.index[early_window(epochs.to_numpy(), early_fraction)]) + [epochs.index[-1]]
    groups, values, replicates = None, [], []
    for checkpoint in used:
        rows = pairs[pairs["checkpoint"] == checkpoint]
        if groups is None:
            groups = rows[group_col].to_numpy()
        elif not np.array_equal(rows[group_col].to_numpy(), groups):
            raise ParameterError(f"pairs of checkpoint {checkpoint} are not in the same order as the others: "
                                 "a paired bootstrap needs the same pairs at every checkpoint")
        negated, quality = -rows[distance_col].to_numpy(float), rows[quality_col].to_numpy(float)
        values.append(spearman(negated, quality))
        replicates.append(spearman_replicates_grouped(negated, quality, groups, n_boot, seed))
    test = paired_early_peak(epochs[used].to_numpy(), values, replicates, level, early_fraction)
    renamed = {"final_value": "final_srcc", "early_peak_value": "early_peak_srcc"}
    return {**{renamed.get(k, k): v for k, v in test.items()}, "n_references": int(len(np.unique(groups)))}
