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

from .data.saliency import SaliencySet
from .encoder import run_encoders
from .metrics import saliency as metrics
from .saliency_maps import DEFAULT_N_SAMPLES, DEFAULT_NOISE, checkpoint_saliency, upsample_each

SALIENCY_COLUMNS = ["checkpoint", "epoch", "dataset", "method", "metric", "value", "value_lo", "value_hi",
                    "n_images"]
BASELINE = "centre_bias"


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
    from .metrics.stats import bootstrap_ci

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
