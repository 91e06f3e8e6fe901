"""Shape bias on cue-conflict images, as bethgelab/model-vs-human computes it (Geirhos et al., ICLR 2019).

shape_bias = shape hits / (shape hits + texture hits) over the cue-conflict images (shape ≠ texture).
model-vs-human divides its shape/texture fractions by *all* images, including the non-conflicting
ones; here the fractions are over the conflicting images only, so that shape + texture + neither = 1.
The shape bias itself is the same either way.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from clipalign_utils.errors import ParameterError
from clipalign_utils.metrics.stats import crossed_weights, percentile_interval, resampled_rows
from clipalign_utils.metrics.tradeoff import at_chance


def imagenet_category_decisions(cosine_logits, category_indices, scale: float = 100.0) -> np.ndarray:
    """model-vs-human's decision for a CLIP model over ImageNet: the softmax of ``scale`` × the image's cosine
    similarity to each of the 1,000 class embeddings (its ``ClipPytorchModel`` logits), each category's mean
    probability over its ImageNet classes (``ImageNetProbabilitiesTo16ClassesMapping``), and the category of
    the highest (index into ``category_indices``, a sequence of index lists; the first on a tie).
    ``cosine_logits``: (N, 1000)."""
    logits = scale * np.asarray(cosine_logits, dtype=np.float64)
    probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    means = np.stack([probabilities[:, list(indices)].mean(axis=1) for indices in category_indices], axis=1)
    return means.argmax(axis=1)


def _conflicting(predicted, shape_label, texture_label, *sources) -> tuple[np.ndarray, ...]:
    """The arrays (``predicted``, the labels, any per-image ``sources``) at the images whose shape and texture
    differ."""
    predicted, shape_label, texture_label = (np.asarray(a).ravel() for a in (predicted, shape_label, texture_label))
    if not predicted.size == shape_label.size == texture_label.size:
        raise ParameterError(
            "predicted, shape_label and texture_label must have the same length; "
            f"got {predicted.size}, {shape_label.size} and {texture_label.size}."
        )
    sources = [np.asarray(a).ravel() for a in sources]
    if any(a.size != predicted.size for a in sources):
        raise ParameterError(f"shape_sources and texture_sources must name one source per image ({predicted.size}); "
                             f"got {', '.join(str(a.size) for a in sources)}.")
    keep = shape_label != texture_label
    return tuple(a[keep] for a in (predicted, shape_label, texture_label, *sources))


def _ratio(shape_hits: np.ndarray, texture_hits: np.ndarray) -> float:
    total = shape_hits.sum() + texture_hits.sum()
    return float(shape_hits.sum() / total) if total > 0 else float("nan")


def _share(part: np.ndarray, whole: np.ndarray) -> np.ndarray:
    """part / whole per replicate, nan where whole is 0."""
    return np.where(whole > 0, part / np.where(whole > 0, whole, 1), np.nan)


def _replicates(shape_hits: np.ndarray, texture_hits: np.ndarray, n_boot: int, seed: int,
                sources: tuple[np.ndarray, np.ndarray] | None) -> tuple[np.ndarray, np.ndarray]:
    """Bootstrap replicates of the shape bias and of the share of images decided for a cue, on the same draws
    (all nan under two images). Without ``sources`` (each image drawn independently, as the embedded set's are)
    the images are resampled, a block of replicates at a time (``stats.resampled_rows``: ``bootstrap_ci``'s
    draws). With (shape source, texture source) per image, the crossed design's pigeonhole bootstrap resamples
    both kinds of source (:func:`crossed_weights`). The draws depend on the images' count (and sources), not
    on the decisions: every checkpoint's replicate r is over the same resample."""
    cue_hits = (shape_hits | texture_hits).astype(float)
    if shape_hits.size < 2:  # a resample of one image is that image: no spread to read
        return np.full(int(n_boot), np.nan), np.full(int(n_boot), np.nan)
    bias, cue = [], []
    if sources is None:
        for rows in resampled_rows(shape_hits.size, n_boot, seed):
            shape, texture = shape_hits[rows].sum(axis=1), texture_hits[rows].sum(axis=1)
            bias.append(_share(shape, shape + texture))
            cue.append(cue_hits[rows].mean(axis=1))
    else:
        for weights in crossed_weights(*sources, n_boot=n_boot, seed=seed):
            cue_weight = weights @ cue_hits
            bias.append(_share(weights @ shape_hits.astype(float), cue_weight))
            cue.append(_share(cue_weight, weights.sum(axis=1)))
    return np.concatenate(bias).astype(float), np.concatenate(cue).astype(float)


def _intervals(shape_hits: np.ndarray, texture_hits: np.ndarray, n_boot: int, seed: int,
               sources: tuple[np.ndarray, np.ndarray] | None) -> tuple[tuple[float, float], tuple[float, float]]:
    """Percentile bootstrap intervals of the shape bias and of the share of images decided for a cue, on the
    same draws (:func:`_replicates`)."""
    bias, cue = _replicates(shape_hits, texture_hits, n_boot, seed, sources)
    return percentile_interval(bias), percentile_interval(cue)


def shape_bias_replicates(predicted, shape_label, texture_label, n_boot: int = 1000, seed: int = 0,
                          shape_sources=None, texture_sources=None) -> np.ndarray:
    """The ``n_boot`` bootstrap replicates of the shape bias behind :func:`shape_bias_summary`'s interval (the
    same arguments, the same draws): replicate r of every checkpoint's decisions is over the same resample of
    the images (or sources), so a statistic over checkpoints can be resampled paired (``metrics.trend``)."""
    if (shape_sources is None) != (texture_sources is None):
        raise ParameterError("shape_sources and texture_sources go together: give both or neither.")
    with_sources = shape_sources is not None
    predicted, shape_label, texture_label, *sources = _conflicting(
        predicted, shape_label, texture_label, *((shape_sources, texture_sources) if with_sources else ()))
    return _replicates(predicted == shape_label, predicted == texture_label, n_boot, seed,
                       tuple(sources) if with_sources else None)[0]


def shape_bias_summary(predicted, shape_label, texture_label, n_boot: int = 1000, seed: int = 0,
                       n_classes: int | None = None, shape_sources=None, texture_sources=None) -> dict:
    """Shape bias of a model's decisions, with a bootstrap CI over the conflicting images.

    Keys: shape_bias, lo, hi, shape_fraction, texture_fraction, neither_fraction, n_images
    (the number of conflicting images; the fractions are over them), n_cue_decisions (the decisions for
    the shape or the texture class: what the shape bias is a ratio of). With ``n_classes`` (the classifier's
    classes) also cue_fraction_lo/_hi (the bootstrap interval of the share of images decided for a cue, on
    the shape bias' own draws), cue_chance = 2 / n_classes (that share when guessing) and shape_at_chance (the
    interval reaches it: the decisions do not tell shape from texture better than guessing, and the shape
    bias of such a checkpoint describes noise).

    ``shape_sources`` and ``texture_sources`` (one id per image, both or neither) name the source images an
    image was made from where images share them (Geirhos': each of 160 objects in 8 styles on average, each of 48
    texture images in about 27 objects): the intervals then resample sources, not images (:func:`_intervals`).
    """
    if (shape_sources is None) != (texture_sources is None):
        raise ParameterError("shape_sources and texture_sources go together: give both or neither.")
    with_sources = shape_sources is not None
    predicted, shape_label, texture_label, *sources = _conflicting(
        predicted, shape_label, texture_label, *((shape_sources, texture_sources) if with_sources else ()))
    shape_hits = predicted == shape_label
    texture_hits = predicted == texture_label
    n_images = int(predicted.size)
    (lo, hi), (cue_lo, cue_hi) = _intervals(shape_hits, texture_hits, n_boot, seed,
                                            tuple(sources) if with_sources else None)
    shape_fraction = float(shape_hits.mean()) if n_images else float("nan")
    texture_fraction = float(texture_hits.mean()) if n_images else float("nan")
    summary = {
        "shape_bias": _ratio(shape_hits, texture_hits),
        "lo": lo,
        "hi": hi,
        "shape_fraction": shape_fraction,
        "texture_fraction": texture_fraction,
        "neither_fraction": 1.0 - shape_fraction - texture_fraction,
        "n_images": n_images,
        "n_cue_decisions": int(shape_hits.sum() + texture_hits.sum()),
    }
    if n_classes is not None:
        chance = 2.0 / n_classes
        summary.update({"cue_fraction_lo": cue_lo, "cue_fraction_hi": cue_hi, "cue_chance": chance,
                        # no interval (no images): nothing above chance either
                        "shape_at_chance": bool(not cue_lo > chance)})
    return summary


def per_class_shape_bias(predicted, shape_label, texture_label) -> pd.DataFrame:
    """Shape bias per shape class over its conflicting images; columns class, shape_bias, n_images."""
    predicted, shape_label, texture_label = _conflicting(predicted, shape_label, texture_label)
    rows = []
    for cls in np.unique(shape_label):
        mine = shape_label == cls
        rows.append({
            "class": cls,
            "shape_bias": _ratio(predicted[mine] == shape_label[mine], predicted[mine] == texture_label[mine]),
            "n_images": int(mine.sum()),
        })
    return pd.DataFrame(rows, columns=["class", "shape_bias", "n_images"])


def texture_then_shape(table: pd.DataFrame) -> dict:
    """Does a run show the texture-then-shape shift? `table`: one row per checkpoint with
    epoch, shape_bias, lo, hi (shape_bias.csv).

    The texture phase is the lowest shape bias before the last checkpoint. The shift shows when
    that minimum leans to texture (< 0.5), the last checkpoint leans to shape (> 0.5), and their
    bootstrap intervals do not overlap. Returns the three rows (first, texture_phase, last) and
    the booleans texture_phase_leans_texture, last_leans_shape, separated, shift_shows.

    With a ``shape_at_chance`` column (:func:`shape_bias_summary`), the at-chance checkpoints are left out: the
    three rows are of those above chance (``left_out``: the rows left out). With none above chance the rows
    are of every checkpoint and the shift does not show.
    """
    table = table.sort_values("epoch").reset_index(drop=True)
    chance = at_chance(table, "shape_bias") if "shape_at_chance" in table.columns else None
    left_out = table[chance] if chance is not None else table.iloc[:0]
    none_above = chance is not None and bool(chance.all())
    if chance is not None and not none_above:
        table = table[~chance].reset_index(drop=True)
    before_last = table.iloc[:-1] if len(table) > 1 else table
    early = (before_last.loc[before_last["shape_bias"].idxmin()] if before_last["shape_bias"].notna().any()
             else before_last.iloc[0])
    last = table.iloc[-1]
    leans_texture = bool(early["shape_bias"] < 0.5)
    leans_shape = bool(last["shape_bias"] > 0.5)
    separated = bool(early["hi"] < last["lo"])
    return {"first": table.iloc[0], "texture_phase": early, "last": last,
            "texture_phase_leans_texture": leans_texture, "last_leans_shape": leans_shape,
            "separated": separated, "left_out": left_out,
            "shift_shows": (leans_texture and leans_shape and separated and early["epoch"] < last["epoch"]
                            and not none_above)}
