"""The ``similarity`` step: 2AFC agreement of every checkpoint of a run with the judges of a triplet set.

For each checkpoint the reference, p0 and p1 images are embedded once (cached), both distances of every
triplet are measured, and the model's choices are scored against the judges' (``two_afc.csv``); example
triplets the model gets right and wrong are picked for figures.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from ..encoder import Encoder, run_encoders
from ..metrics.iqa import pair_distances
from ..metrics.two_afc import two_afc_scores, two_afc_table
from ..registry import TWO_AFC

CSV_COLUMNS = list(TWO_AFC.columns)  # the registry's schema of two_afc.csv


def triplet_distances(encoder, data, distance: str = "cosine") -> tuple[np.ndarray, np.ndarray]:
    """(d0, d1): the embedding distances of p0 and p1 to the reference, one pair per triplet (the mean
    over patches at the same positions when the images are tiled)."""
    ref = encoder.encode_images(data.ref)
    index = np.arange(len(data))
    return tuple(pair_distances(ref, encoder.encode_images(candidates), index, index, distance,
                                data.patches_per_image) for candidates in (data.p0, data.p1))


def score_triplets(triplets: pd.DataFrame, d0: np.ndarray, d1: np.ndarray) -> pd.DataFrame:
    """``triplets`` with d0, d1, model_choice (1 = p1 closer, 0 = p0, 0.5 = tie) and score (per-triplet 2AFC)."""
    d0, d1 = np.asarray(d0, dtype=float), np.asarray(d1, dtype=float)
    return triplets.assign(d0=d0, d1=d1, model_choice=np.where(d1 < d0, 1.0, np.where(d0 < d1, 0.0, 0.5)),
                           score=two_afc_scores(d0, d1, triplets["p"].to_numpy()))


def two_afc_over_checkpoints(run, data, distance: str = "cosine", *, device: str = "auto", batch_size: int = 512,
                             cache_dir=None, n_boot: int = 1000, seed: int = 0, progress: bool = False
                             ) -> pd.DataFrame:
    """The ``two_afc.csv`` table: one row per checkpoint × subset (``all`` = every triplet).

    Columns: checkpoint, epoch, dataset, subset, distance, score, score_lo, score_hi, n_triplets,
    with score the mean 2AFC score of :func:`two_afc_table` and its percentile bootstrap interval
    over triplets. Embeddings go through the run's cache (``cache_dir``), so a second pass is cheap.
    """
    rows = []
    for checkpoint, encoder in run_encoders(run, device=device, batch_size=batch_size, cache_dir=cache_dir,
                                                progress=progress):
        d0, d1 = triplet_distances(encoder, data, distance)
        table = two_afc_table(data.triplets.assign(d0=d0, d1=d1), n_boot=n_boot, seed=seed)
        rows.append(table.assign(checkpoint=checkpoint.name, epoch=checkpoint.epoch, dataset=data.name,
                                 distance=distance))
    if not rows:
        return pd.DataFrame(columns=CSV_COLUMNS)
    return pd.concat(rows, ignore_index=True)[CSV_COLUMNS]


def triplets_at_checkpoints(run, data, distance: str = "cosine", checkpoints: Sequence | None = None, *,
                            device: str = "auto", batch_size: int = 512, cache_dir=None) -> pd.DataFrame:
    """Every triplet scored at ``checkpoints`` (default: the run's first and last), with columns
    checkpoint, epoch, triplet (row of data.triplets) and those of :func:`score_triplets`."""
    if checkpoints is None:
        checkpoints = list(dict.fromkeys([run.checkpoints[0], run.checkpoints[-1]]))
    frames = []
    for checkpoint in checkpoints:
        encoder = Encoder(checkpoint, run.model_name, run.image_size, device=device, batch_size=batch_size,
                          cache_dir=cache_dir)
        d0, d1 = triplet_distances(encoder, data, distance)
        scored = score_triplets(data.triplets, d0, d1)
        frames.append(scored.assign(checkpoint=checkpoint.name, epoch=checkpoint.epoch,
                                    triplet=np.arange(len(scored))))
    return pd.concat(frames, ignore_index=True)


def example_triplets(scored: pd.DataFrame, n: int = 3, seed: int = 0, min_margin: float = 0.2) -> pd.DataFrame:
    """Up to ``n`` triplets the model gets right and ``n`` it gets wrong, from one checkpoint's
    :func:`score_triplets` rows, with an ``outcome`` column (right | wrong).

    Only triplets whose judges lean clearly one way (|p − ½| ≥ ``min_margin``) are candidates: "right"
    means the model picks the judges' majority candidate, "wrong" the other one. Drawn at random
    (``seed``), shown in triplet order.
    """
    clear = scored[(scored["p"] - 0.5).abs() >= min_margin]
    majority = (clear["p"] > 0.5).astype(float)
    rng = np.random.default_rng(seed)
    picks = []
    for outcome, mask in (("right", clear["model_choice"] == majority),
                          ("wrong", (clear["model_choice"] != majority) & (clear["model_choice"] != 0.5))):
        rows = clear[mask.to_numpy()]
        chosen = rng.permutation(len(rows))[:n]
        picks.append(rows.iloc[np.sort(chosen)].assign(outcome=outcome))
    return pd.concat(picks, ignore_index=True)



def example_titles(examples: pd.DataFrame) -> list[str]:
    """One caption per :func:`example_triplets` row: outcome, p, both distances, and what the
    candidates are (the two kinds of damage for the embedded set, subset and id for the real ones)."""
    titles = []
    for row in examples.itertuples(index=False):
        what = (f"{row.distortion0.replace('_', ' ')} {row.level0} vs {row.distortion1.replace('_', ' ')} {row.level1}"
                if hasattr(row, "distortion0") else f"{str(row.subset).replace('_', ' ')} {getattr(row, 'id', '')}")
        titles.append(f"{row.outcome}: p(p1 closer) = {row.p:.2f}\n"
                      f"d0 = {row.d0:.4f}, d1 = {row.d1:.4f}\n{what}")
    return titles
