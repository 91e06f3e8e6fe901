"""The ``saliency`` step's computation: model saliency vs where people look, at every checkpoint.

Writes nothing itself; the notebook (``notebooks/08_saliency.py``) calls these and writes
``metrics/saliency.csv`` (columns ``SALIENCY_COLUMNS``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd
from tqdm import tqdm

from ..data.saliency import SaliencySet
from ..encoder import run_encoders
from ..metrics import saliency as metrics
from ..registry import SALIENCY, SALIENCY_BASELINE
from ..saliency_maps import DEFAULT_N_SAMPLES, DEFAULT_NOISE, checkpoint_saliency, upsample_each

SALIENCY_COLUMNS = list(SALIENCY.columns)  # the registry's schema of saliency.csv
BASELINE = SALIENCY_BASELINE


@dataclass
class GroundTruth:
    """Densities, fixation maps and sAUC negatives of a set, read once and shared by every checkpoint."""

    densities: list[np.ndarray]
    fixations: list[np.ndarray]
    others: list[np.ndarray]

    @property
    def shapes(self) -> list[tuple[int, int]]:
        return [d.shape for d in self.densities]

    @classmethod
    def of(cls, data: SaliencySet, n_other: int = 10, seed: int = 0) -> "GroundTruth":
        targets = [data.target(i) for i in range(len(data))]
        return cls([t[0] for t in targets], [t[1] for t in targets], list(data.others(n_other, seed)))


@dataclass
class SaliencyResults:
    table: pd.DataFrame  # SALIENCY_COLUMNS, baseline rows included
    per_image: pd.DataFrame  # checkpoint, epoch, image, target_class, target_source, one column per metric
    regions: pd.DataFrame  # checkpoint, epoch, image, region, share, area, enrichment (sets with masks)
    maps: dict[str, np.ndarray] = field(default_factory=dict)  # checkpoint -> (N, h, w) maps at model resolution


def baseline_rows(data: SaliencySet, truth: GroundTruth, *, method: str, n_boot: int, seed: int,
                  n_splits: int = 100) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The centre-bias baseline (``metrics.centre_gaussian`` on every image): (table rows, per-image rows)."""
    maps = [metrics.centre_gaussian(shape) for shape in truth.shapes]
    per_image = metrics.score_images(maps, truth.densities, truth.fixations, others=truth.others,
                                     n_splits=n_splits, seed=seed)
    summary = metrics.summarize(per_image, n_boot=n_boot, seed=seed)
    table = summary.assign(checkpoint=BASELINE, epoch=np.nan, dataset=data.name, method=method)
    return table[SALIENCY_COLUMNS], per_image.assign(checkpoint=BASELINE, epoch=np.nan)


def saliency_over_checkpoints(run, data: SaliencySet, templates: Sequence[str], *, method: str = "smoothgrad",
                              classnames: Sequence[str] | None = None, n_boot: int = 1000, seed: int = 0,
                              device: str = "auto", batch_size: int = 512, cache_dir=None,
                              n_samples: int = DEFAULT_N_SAMPLES, noise: float = DEFAULT_NOISE,
                              n_splits: int = 100, keep_maps: bool = True, progress: bool = False,
                              with_baseline: bool = True, region_data: SaliencySet | None = None) -> SaliencyResults:
    """Every checkpoint of ``run``: saliency maps of ``data`` (cached), upsampled onto each ground truth,
    scored with the six metrics (mean over images, bootstrap interval over images), plus the centre-bias
    baseline rows and, where the set has region masks, each map's share of saliency per region.

    ``classnames`` default to the set's (the world's shapes for the embedded sets); a real dataset has
    none, so pass the class names the model should choose its top-1 target among.
    ``region_data`` (e.g. :func:`~clipalign_utils.data.saliency.cue_conflict_saliency`) is a second set
    with region masks whose maps are computed with the same loaded checkpoint and enter ``regions``
    only (column ``set`` = its image set's name). Maps kept (``keep_maps``) are those of ``data``.
    """
    classnames = tuple(classnames if classnames is not None else data.classnames)
    truth = GroundTruth.of(data, seed=seed)
    tables, per_images, regions, kept = [], [], [], {}
    if with_baseline:
        table, per_image = baseline_rows(data, truth, method=method, n_boot=n_boot, seed=seed, n_splits=n_splits)
        tables.append(table)
        per_images.append(per_image)
    for checkpoint, encoder in run_encoders(run, device, batch_size, cache_dir, progress=progress):
        result = checkpoint_saliency(encoder, data.images, data.labels, classnames, templates, method=method,
                                     n_samples=n_samples, noise=noise, seed=seed)
        maps = upsample_each(result.maps, truth.shapes)
        per_image = metrics.score_images(maps, truth.densities, truth.fixations, others=truth.others,
                                         n_splits=n_splits, seed=seed)
        summary = metrics.summarize(per_image, n_boot=n_boot, seed=seed)
        tables.append(summary.assign(checkpoint=checkpoint.name, epoch=checkpoint.epoch, dataset=data.name,
                                     method=method)[SALIENCY_COLUMNS])
        per_images.append(per_image.assign(checkpoint=checkpoint.name, epoch=checkpoint.epoch,
                                           target_class=result.target_class, target_source=result.target_source))
        if data.regions:
            regions.append(metrics.region_shares(maps, data.regions).assign(
                set=data.images.name, checkpoint=checkpoint.name, epoch=checkpoint.epoch))
        if region_data is not None:
            extra = checkpoint_saliency(encoder, region_data.images, region_data.labels, classnames, templates,
                                        method=method, n_samples=n_samples, noise=noise, seed=seed)
            regions.append(metrics.region_shares(extra.maps, region_data.regions).assign(
                set=region_data.images.name, checkpoint=checkpoint.name, epoch=checkpoint.epoch))
        if keep_maps:
            kept[checkpoint.name] = result.maps
    region_table = pd.concat(regions, ignore_index=True) if regions else pd.DataFrame(
        columns=["image", "region", "share", "area", "enrichment", "set", "checkpoint", "epoch"])
    return SaliencyResults(pd.concat(tables, ignore_index=True), pd.concat(per_images, ignore_index=True),
                           region_table, kept)


def region_summary(regions: pd.DataFrame, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Per set, checkpoint and region: mean share of saliency and mean enrichment over images, with a
    bootstrap interval of the share. Columns: set, checkpoint, epoch, region, share, share_lo, share_hi,
    area, enrichment, n_images."""
    from ..metrics.stats import bootstrap_ci

    rows = []
    for (name, checkpoint, epoch, region), group in regions.groupby(["set", "checkpoint", "epoch", "region"],
                                                                    sort=False):
        share = group["share"].to_numpy(dtype=float)
        share = share[np.isfinite(share)]
        lo, hi = bootstrap_ci(share.size, lambda idx, v=share: float(v[idx].mean()), n_boot=n_boot, seed=seed)
        rows.append({"set": name, "checkpoint": checkpoint, "epoch": epoch, "region": region,
                     "share": float(share.mean()) if share.size else np.nan, "share_lo": lo, "share_hi": hi,
                     "area": float(group["area"].mean()), "enrichment": float(group["enrichment"].mean()),
                     "n_images": int(share.size)})
    return pd.DataFrame(rows)


def peak_checkpoint(table: pd.DataFrame, metric: str = "cc") -> str | None:
    """The checkpoint (baseline excluded) with the best value of ``metric`` (lowest for KLD)."""
    rows = table[(table["metric"] == metric) & (table["checkpoint"] != BASELINE)].dropna(subset=["value"])
    if rows.empty:
        return None
    best = rows["value"].idxmin() if metric in metrics.LOWER_IS_BETTER else rows["value"].idxmax()
    return str(rows.loc[best, "checkpoint"])


# ------------------------------------------------------------------------- the step, from parameters
@dataclass
class SaliencyInputs:
    """What the step measures: the scored set, the cue-conflict set for the region shares (or None),
    the class names saliency targets are chosen among and the prompt templates."""

    data: SaliencySet
    region_data: SaliencySet | None
    classnames: tuple[str, ...]
    templates: tuple[str, ...]


def load_inputs(params: dict, run) -> SaliencyInputs:
    """The step's sets from resolved parameters: ``saliency_dataset``/``saliency_root``/``saliency_n_images``;
    embedded sets at the world's ``image_size`` (``texture_correlation``, ``texture_scale``), real ones at
    the run's input size. The world's cue-conflict images (``saliency_cue_per_pair`` per pair; 0 = none)
    come along for an embedded run. A real set has no classes: the target is the top-1 zero-shot class
    among open_clip's ImageNet class names, with ImageNet templates."""
    from ..data import world
    from ..data.prompts import IMAGENET_TEMPLATES, resolve_templates
    from ..data.saliency import cue_conflict_saliency, load_saliency

    embedded = params["saliency_dataset"] == "embedded"
    data = load_saliency(params["saliency_dataset"], params["saliency_root"],
                         image_size=params["image_size"] if embedded else run.image_size, seed=params["seed"],
                         n_images=params["saliency_n_images"], texture_correlation=params["texture_correlation"],
                         texture_scale=params["texture_scale"])
    region_data = None
    if embedded and params["saliency_cue_per_pair"] > 0:
        config = world.WorldConfig(int(params["image_size"]), params["texture_correlation"], params["texture_scale"])
        region_data = cue_conflict_saliency(params["saliency_cue_per_pair"], params["seed"], config)
    if embedded:
        return SaliencyInputs(data, region_data, tuple(data.classnames),
                              resolve_templates(params["prompt_templates"], "embedded"))
    from open_clip.zero_shot_metadata import IMAGENET_CLASSNAMES

    templates = IMAGENET_TEMPLATES if params["prompt_templates"] == "ensemble" else IMAGENET_TEMPLATES[:1]
    return SaliencyInputs(data, None, tuple(IMAGENET_CLASSNAMES), templates)


def measure(run, inputs: SaliencyInputs, params: dict, cache_dir) -> SaliencyResults:
    """``saliency_over_checkpoints`` with the step's parameters (method, SmoothGrad samples and noise,
    n_boot, seed, device, eval_batch_size); ``results.table`` is ``saliency.csv``."""
    return saliency_over_checkpoints(
        run, inputs.data, inputs.templates, method=params["saliency_method"], classnames=inputs.classnames,
        n_boot=params["n_boot"], seed=params["seed"], device=params["device"], batch_size=params["eval_batch_size"],
        cache_dir=cache_dir, n_samples=params["saliency_samples"], noise=params["saliency_noise"],
        region_data=inputs.region_data)


def curve_sentence(table: pd.DataFrame, metric: str) -> str:
    """One computed sentence on a metric's curve: first, peak and last checkpoint with intervals, and the
    centre-bias baseline."""
    from ..metrics.iqa import peak_summary

    rows = table[(table["metric"] == metric) & (table["checkpoint"] != BASELINE)].sort_values("epoch")
    rows = rows.dropna(subset=["value"])
    if rows.empty:
        return f"{metric}: undefined at every checkpoint (constant maps)"
    sign = -1.0 if metric in metrics.LOWER_IS_BETTER else 1.0
    peak = peak_summary(rows["epoch"], sign * rows["value"])
    best = rows.iloc[int(np.argmax(sign * rows["value"].to_numpy()))]
    first, last = rows.iloc[0], rows.iloc[-1]
    base = table[(table["metric"] == metric) & (table["checkpoint"] == BASELINE)]
    base_text = (f"; centre bias {base['value'].iloc[0]:.3f} [{base['value_lo'].iloc[0]:.3f}, "
                 f"{base['value_hi'].iloc[0]:.3f}]" if len(base) else "")
    where = "inside the run" if peak["peak_is_interior"] else ("at the last checkpoint"
                                                              if best["epoch"] == last["epoch"] else "at the start")
    return (f"{metric.upper()}: {first['value']:.3f} at epoch {first['epoch']:g}, best {best['value']:.3f} "
            f"[{best['value_lo']:.3f}, {best['value_hi']:.3f}] at epoch {best['epoch']:g} ({where}), "
            f"{last['value']:.3f} [{last['value_lo']:.3f}, {last['value_hi']:.3f}] at the last checkpoint "
            f"(epoch {last['epoch']:g}){base_text}")
