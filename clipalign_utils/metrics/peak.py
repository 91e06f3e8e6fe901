"""Does a curve over checkpoints peak early and end lower? One paired bootstrap for every peaked measure.

"Early" (the paper's claim): after the untrained model and at most ``EARLY_FRACTION`` of the run. With
S(c) the measure at checkpoint c, E the early checkpoints and F the last one, the statistic is

    early_drop = max_{c ∈ E} S(c) − S(F),

and its interval comes from resampling the evaluation items (reference images, triplets, images) once
per replicate and recomputing the *whole* statistic — the maximum included — on that resample at every
checkpoint: the peak is not picked on the data, and the comparison with the final checkpoint is paired. The
interval is the basic bootstrap's (``stats.basic_interval``): a maximum over noisy values is biased upward and
the resamples' maxima are again, so their percentile interval leans toward a peak (on the default run at
9245668 it put one seed's saliency peak above 0 where the basic interval does not).
:func:`paired_early_peak` does this from each checkpoint's value and replicates (the IQA step's SRCC);
:func:`mean_peak_test` for a measure that is a mean over items (the 2AFC score, saliency sAUC).
:func:`best_block_test` asks the same of the layers of one checkpoint: is its best vision block more aligned
than the image embedding, the block's maximum recomputed on every resample.
"""
from __future__ import annotations

import warnings
from typing import Mapping

import numpy as np
import pandas as pd

from clipalign_utils.errors import ParameterError
from clipalign_utils.metrics.stats import basic_interval, first_max, shares_groups, times_drawn

EARLY_FRACTION = 1 / 3


def early_window(epochs, early_fraction: float = EARLY_FRACTION) -> np.ndarray:
    """Mask of the "early" checkpoints: 0 < epoch <= early_fraction × the last epoch."""
    epochs = np.asarray(epochs, dtype=float)
    return (epochs > 0) & (epochs <= early_fraction * np.nanmax(epochs))


def paired_early_peak(epochs, values, replicates, level: float = 0.95,
                      early_fraction: float = EARLY_FRACTION) -> dict:
    """The paired early-peak test from per-checkpoint ``values`` and ``replicates`` (one row per checkpoint,
    column r = the measure on resample r, the same resample at every checkpoint), checkpoints in epoch
    order, the last one final. Keys: early_drop, lo, hi, early_peak_epoch, early_peak_value, final_epoch,
    final_value, early_end, n_early (nan statistic and interval when the early window is empty or holds no
    defined value). An early checkpoint whose value is nan (undefined there) is left out of the peak and of
    every replicate's peak alike."""
    epochs, values = np.asarray(epochs, dtype=float), np.asarray(values, dtype=float)
    replicates = np.asarray(replicates, dtype=float)
    early = early_window(epochs, early_fraction)
    nan = float("nan")
    result = {"early_end": float(early_fraction * epochs[-1]), "n_early": int(early.sum()),
              "final_epoch": float(epochs[-1]), "final_value": float(values[-1])}
    early &= np.isfinite(values)
    if not early.any():
        return {**result, "early_drop": nan, "lo": nan, "hi": nan, "early_peak_epoch": nan, "early_peak_value": nan}
    peak = int(np.flatnonzero(early)[first_max(values[early])])
    drop = float(values[peak] - values[-1])
    drops = np.max(replicates[early], axis=0) - replicates[-1]
    lo, hi = basic_interval(drop, drops, level)  # (nan when fewer than half the drops are defined)
    return {**result, "early_drop": drop, "lo": lo, "hi": hi,
            "early_peak_epoch": float(epochs[peak]), "early_peak_value": float(values[peak])}


def held_out_drops(epochs, curves, early_fraction: float = EARLY_FRACTION) -> tuple[np.ndarray, np.ndarray]:
    """The early-peak statistic over runs (seeds), each run's peak chosen on the others: with S_s(c) run s's
    curve and F_s its last checkpoint,

        D_s = S_s(c*_s) − S_s(F_s),   c*_s = argmax_{c ∈ E_s} mean_{r ≠ s} S_r(c),

    E_s the early checkpoints of run s (0 < epoch ≤ ``early_fraction`` × F_s's epoch) where it has a value. A
    run's own maximum over them is pushed up by its noise (``paired_early_peak`` corrects that within a run);
    chosen on the other runs, c*_s is blind to run s's noise, so D_s is on average at most the best early
    checkpoint's true lead: a mean of D_s above 0 says some early checkpoint scores higher than the final one.
    (Each D_s shares the others' noise through its choice, so the D_s are mildly correlated: a t interval over
    them is somewhat narrower than it should be.) ``curves``: (runs, checkpoints) on the same ``epochs`` in
    order (nan where a run lacks a checkpoint). Returns (D, the epoch of c*_s) per run, nan where fewer than two
    runs are given or the others define no value at run s's early checkpoints."""
    epochs, curves = np.asarray(epochs, dtype=float), np.atleast_2d(np.asarray(curves, dtype=float))
    drops, peaks = np.full(len(curves), np.nan), np.full(len(curves), np.nan)
    if len(curves) < 2:
        return drops, peaks
    for s in range(len(curves)):
        defined = np.isfinite(curves[s])
        if not defined.any():
            continue
        final = int(np.flatnonzero(defined)[-1])
        others = np.delete(curves, s, axis=0)
        with warnings.catch_warnings():  # an epoch no other run measured: nan, out of the choice
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(others, axis=0)
        upto = slice(0, final + 1)
        candidates = early_window(epochs[upto], early_fraction) & defined[upto] & np.isfinite(mean[upto])
        if candidates.any():
            peak = int(np.flatnonzero(candidates)[first_max(mean[upto][candidates])])
            drops[s], peaks[s] = curves[s, peak] - curves[s, final], epochs[peak]
    return drops, peaks


def best_block_columns(score: str) -> list[str]:
    """The keys :func:`best_block_test` returns, in a table's order, for a measure named ``score``."""
    return ["best_block", f"best_{score}", f"final_{score}", "margin", "margin_lo", "margin_hi", "n_blocks"]


def best_block_test(layers, values, replicates, level: float = 0.95, score: str = "value") -> dict:
    """Is some vision block more aligned than the image embedding? ``layers`` names the rows of ``values``
    (the measure per layer) and ``replicates`` (its value on resample r, the same resample for every layer),
    one of them ``final``, the embedding. With B the blocks (every other layer defined there: a ResNet's stem and
    a ViT's ``embeddings``, the tokens entering its first block, among them, as in the per-layer tables), the
    statistic is

        margin = max_{b ∈ B} S(b) − S(final),

    with the maximum recomputed on every resample, as the early-peak test recomputes its peak: the block is not
    picked on the data. Its interval is the basic bootstrap's (``stats.basic_interval``), as the early peak's: the
    percentile interval of a maximum would find a block ahead too readily. Its interval above 0: a block is more
    aligned than the embedding; below 0: none is.
    Keys (:func:`best_block_columns`): best_block (the argmax of B), best_<score>, final_<score>, margin,
    margin_lo, margin_hi, n_blocks."""
    layers = list(layers)
    values, replicates = np.asarray(values, dtype=float), np.asarray(replicates, dtype=float)
    final = layers.index("final")
    blocks = np.array([i != final and np.isfinite(values[i]) for i in range(len(layers))])
    nan = float("nan")
    result = {f"final_{score}": float(values[final]), "n_blocks": int(blocks.sum())}
    if not blocks.any():
        return {"best_block": None, f"best_{score}": nan, **result, "margin": nan, "margin_lo": nan, "margin_hi": nan}
    best = int(np.flatnonzero(blocks)[first_max(values[blocks])])
    with warnings.catch_warnings():  # a resample where every block is undefined: nan, left out of the interval
        warnings.simplefilter("ignore", RuntimeWarning)
        margins = np.nanmax(replicates[blocks], axis=0) - replicates[final]
    margin = float(values[best] - values[final])
    lo, hi = basic_interval(margin, margins, level)
    return {"best_block": layers[best], f"best_{score}": float(values[best]), **result,
            "margin": margin, "margin_lo": lo, "margin_hi": hi}


def mean_replicates(matrix: np.ndarray, labels: np.ndarray | None, n_boot: int, seed: int) -> np.ndarray:
    """(rows, n_boot) means over items (the columns of ``matrix``; undefined values left out of a row's mean),
    every row over the same resample: whole groups drawn where ``labels`` (item → group) share them, the items
    themselves otherwise, as :func:`mean_peak_test` draws them; all nan with fewer than two of those to draw (a
    resample of one is that one: replicates without spread)."""
    grouped = labels is not None and shares_groups(labels)
    if (len(np.unique(labels)) if grouped else matrix.shape[1]) < 2:
        return np.full((matrix.shape[0], n_boot), np.nan)
    with warnings.catch_warnings():  # a row with no defined item: nan, not a warning
        warnings.simplefilter("ignore", RuntimeWarning)
        if grouped:
            return _grouped_replicates(matrix, labels, n_boot, seed)
        draws = np.random.default_rng(seed).integers(0, matrix.shape[1], size=(n_boot, matrix.shape[1]))
        return np.stack([np.nanmean(row[draws], axis=1) for row in matrix])


def _grouped_replicates(matrix: np.ndarray, labels: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """(checkpoints, n_boot) means over items, each replicate drawing whole groups with replacement (an item
    counted as often as its group is drawn; undefined values left out of that checkpoint's mean)."""
    _, group_of_item = np.unique(labels, return_inverse=True)
    n_groups = int(group_of_item.max()) + 1
    drawn = np.random.default_rng(seed).integers(0, n_groups, size=(n_boot, n_groups))
    times = times_drawn(drawn, n_groups)[:, group_of_item]  # (n_boot, items)
    defined = np.isfinite(matrix)
    return (np.where(defined, matrix, 0.0) @ times.T) / (defined.astype(float) @ times.T)


def mean_peak_test(per_item: pd.DataFrame, value: str, item: str, n_boot: int = 1000, seed: int = 0,
                   level: float = 0.95, early_fraction: float = EARLY_FRACTION, groups: Mapping | None = None) -> dict:
    """:func:`paired_early_peak` for a measure that is the mean of ``value`` over items (column ``item``):
    ``per_item`` holds one row per checkpoint × item (columns checkpoint, epoch, item, value). Each replicate
    draws the items with replacement once and takes every checkpoint's mean over that same draw. An item whose
    value is nan at a checkpoint the test compares (an early one or the final one; undefined there: a triplet's
    distance of a zero vector) is left out at every checkpoint, so that the means compared are
    over the same items (a checkpoint where no item is defined stays nan and out of the peak). ``groups`` (item →
    group, e.g. a 2AFC triplet's reference): where items share a group, each replicate draws whole groups instead,
    every item of a group drawn k times counted k times. Adds n_items, the items kept (and then n_groups, their
    groups)."""
    if per_item.empty:
        raise ParameterError("mean_peak_test: no rows (no checkpoint was measured)")
    matrix = per_item.pivot(index="checkpoint", columns=item, values=value)
    labels = None if groups is None else np.array([groups[i] for i in matrix.columns])
    epochs = per_item.groupby("checkpoint")["epoch"].first().loc[matrix.index]
    order = np.argsort(epochs.to_numpy(float), kind="stable")
    matrix, epochs = matrix.to_numpy(float)[order], epochs.to_numpy(float)[order]
    defined = np.isfinite(matrix)
    compared = early_window(epochs, early_fraction)
    compared[-1] = True
    compared &= defined.any(axis=1)  # a checkpoint with no defined item is out of the test, not every item
    kept = defined[compared].all(axis=0)
    if not kept.all():  # (a copy only then: its memory layout sets the means' last bits)
        matrix = matrix[:, kept]
        labels = None if labels is None else labels[kept]
    if not matrix.shape[1]:
        matrix = np.full((len(epochs), 1), np.nan)  # no item defined at every compared checkpoint
        n_items = 0
    else:
        n_items = int(matrix.shape[1])
    with warnings.catch_warnings():  # a checkpoint with no defined item: nan, not a warning
        warnings.simplefilter("ignore", RuntimeWarning)
        grouped = bool(n_items) and labels is not None and shares_groups(labels)
        # (nanmean over the items kept, no nan left but a checkpoint's with none defined: the sums the test took
        # before items were kept, so a table without undefined items keeps its last bits)
        replicates = mean_replicates(matrix, labels if grouped else None, n_boot, seed)
        result = paired_early_peak(epochs, np.nanmean(matrix, axis=1), replicates, level, early_fraction)
    return {**result, "n_items": n_items, **({"n_groups": len(pd.unique(labels))} if grouped else {})}
