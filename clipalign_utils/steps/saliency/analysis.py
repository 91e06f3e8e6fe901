"""The ``saliency`` step: model saliency vs where people look, at every checkpoint.

``measure`` returns the step's tables (``saliency.csv``, columns ``SALIENCY_COLUMNS``, its per-image rows
and, where the images have region masks, the contour/interior shares); the notebook
(``notebooks/08_saliency.py``) writes them and shows the sentences and figures built here.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from ...record import records_evaluation_sets
from ...config import bootstrap_seed, derived_seed
from ...cores import threads_per_process
from ...metrics.peak import mean_peak_test
from ...checkpoints import Run
from ...data.registry import dataset_phrase
from ...data.saliency import SaliencySet
from ...encoder import run_encoder, run_encoders
from ...metrics import saliency as metrics
from . import BASELINE, BASELINES, HEADLINE, TABLE
from .maps import DEFAULT_N_SAMPLES, DEFAULT_NOISE, checkpoint_saliency, upsample_each

SALIENCY_COLUMNS = list(TABLE.columns)  # the registered schema of saliency.csv


# Images scored at a time: their ground truth prepared at full resolution (metrics.ImageTruth: four float64
# maps, 66 MB a full-HD image) and every map upsampled onto it are held together, and no more (CAT2000's 2,000
# full-HD densities alone are 40 GB as float64). 4 keeps two threads busy; each image keeps its index and seed,
# so the tables do not depend on it.
IMAGES_AT_A_TIME = 4


@dataclass
class GroundTruth:
    """The ground truth of a set's images ``first``, ``first + 1``, …, read once and prepared once
    (``metrics.ImageTruth``: its share of every metric) for every checkpoint and baseline scored on them."""

    truths: list[metrics.ImageTruth]
    first: int = 0

    @property
    def shapes(self) -> list[tuple[int, int]]:
        return [t.shape for t in self.truths]

    @property
    def indices(self) -> range:
        return range(self.first, self.first + len(self.truths))

    @classmethod
    def of(cls, data: SaliencySet, n_other: int = 10, seed: int = 0, indices: range | None = None,
           n_splits: int = 100) -> "GroundTruth":
        """The ground truth of ``data``'s images ``indices`` (all by default), read and prepared on this
        process's threads (:func:`_threads`)."""
        indices, threads = range(len(data)) if indices is None else indices, _threads()
        targets = metrics.on_threads(data.target, indices, threads)
        negatives = data.others(n_other, seed)
        return cls(metrics.image_truths([t[0] for t in targets], [t[1] for t in targets], n_splits=n_splits,
                                        seed=seed, others=[negatives[i] for i in indices], first=indices.start,
                                        threads=threads),
                   indices.start)

    def score(self, maps: Sequence[np.ndarray]) -> pd.DataFrame:
        """Every metric of one map per image of this ground truth, rows indexed as in the set; the images on
        this process's threads (the values do not depend on them)."""
        return metrics.score_truths(maps, self.truths, first=self.first, threads=_threads())


def _threads() -> int:
    """The threads this process may use: OMP_NUM_THREADS where set (a local job's share of the cores), else the
    machine's cores. Not torch's count: a re-run whose maps are cached never imports torch."""
    return threads_per_process(1)


def _chunks(n_images: int) -> list[range]:
    """The set's image indices ``IMAGES_AT_A_TIME`` at a time; an empty set, one empty chunk (its tables are made
    all the same)."""
    return [range(start, min(start + IMAGES_AT_A_TIME, n_images))
            for start in range(0, n_images, IMAGES_AT_A_TIME)] or [range(0)]


@functools.lru_cache(maxsize=8)
def _centre_bias(shape: tuple[int, int]) -> np.ndarray:
    """``metrics.centre_gaussian`` made once per shape (most of a set shares one), read-only as it is shared."""
    gaussian = metrics.centre_gaussian(shape)
    gaussian.flags.writeable = False
    return gaussian


@dataclass
class SaliencyResults:
    table: pd.DataFrame  # SALIENCY_COLUMNS, baseline rows included
    per_image: pd.DataFrame  # image, one column per metric, checkpoint, epoch, target_class, target_source
    regions: pd.DataFrame  # checkpoint, epoch, image, region, share, area, enrichment (sets with masks)


def baseline_maps(data: SaliencySet, truth: GroundTruth) -> dict[str, list[np.ndarray]]:
    """{baseline: one map per image of ``truth``}: ``centre_bias`` (``metrics.centre_gaussian``) for every
    set; where the silhouettes are known, ``object_silhouette`` (the image's own) and ``shuffled_silhouette``
    (the next image's, whose object is of another class and elsewhere)."""
    maps = {BASELINE: [_centre_bias(tuple(shape)) for shape in truth.shapes]}
    if data.silhouettes is not None:
        n = len(data.silhouettes)
        maps["object_silhouette"] = upsample_each(np.stack([data.silhouettes[i] for i in truth.indices]),
                                                  truth.shapes)
        maps["shuffled_silhouette"] = upsample_each(np.stack([data.silhouettes[(i + 1) % n] for i in truth.indices]),
                                                    truth.shapes)
    return maps


def baseline_rows(data: SaliencySet, truth: GroundTruth, *, method: str, n_boot: int,
                  seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every baseline of :func:`baseline_maps`, scored like a checkpoint: (table rows, per-image rows)."""
    scored = {name: truth.score(maps) for name, maps in baseline_maps(data, truth).items()}
    return _summaries(scored, data, method=method, n_boot=n_boot, seed=seed)


def _summaries(scored: dict[str, pd.DataFrame], data: SaliencySet, *, method: str, n_boot: int, seed: int,
               epochs: dict[str, float] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(table rows, per-image rows) of each map source's per-image scores ``scored`` (a baseline's epoch is nan)."""
    epochs = epochs or {}
    tables, per_images = [], []
    for name, per_image in scored.items():
        epoch = epochs.get(name, np.nan)
        summary = metrics.summarize(per_image, n_boot=n_boot, seed=seed)
        tables.append(summary.assign(checkpoint=name, epoch=epoch, dataset=data.name, method=method)[SALIENCY_COLUMNS])
        per_images.append(per_image.assign(checkpoint=name, epoch=epoch))
    return pd.concat(tables, ignore_index=True), pd.concat(per_images, ignore_index=True)


def saliency_over_checkpoints(run, data: SaliencySet, templates: Sequence[str], *, method: str = "smoothgrad",
                              classnames: Sequence[str] | None = None, n_boot: int = 1000, seed: int = 0,
                              boot_seed: int | None = None, device: str = "auto", batch_size: int = 512, cache_dir=None,
                              n_samples: int = DEFAULT_N_SAMPLES, noise: float = DEFAULT_NOISE,
                              n_splits: int = 100, progress: bool = False,
                              with_baseline: bool = True, region_data: SaliencySet | None = None) -> SaliencyResults:
    """Every checkpoint of ``run``: saliency maps of ``data`` (cached), upsampled onto each ground truth,
    scored with the metrics of ``metrics.saliency.METRICS`` (mean over images, bootstrap interval over images), plus the baselines'
    rows (:func:`baseline_maps`) and, where the set has region masks, each map's share of saliency per region.

    ``seed`` draws the SmoothGrad noise and the sAUC negatives; ``boot_seed`` (default ``seed``) the intervals'
    bootstrap, as every step's bootstrap draws (``config.bootstrap_seed``).
    ``classnames`` default to the set's (the world's shapes for the embedded sets); a real dataset has
    none, so pass the class names the model should choose its top-1 target among.
    ``region_data`` (e.g. :func:`~clipalign_utils.data.saliency.cue_conflict_saliency`) is a second set
    with region masks whose maps are computed with the same loaded checkpoint and enter ``regions``
    only (column ``set`` = its image set's name). The maps themselves stay in the cache
    (:func:`checkpoint_maps` reads them back). Every image's fixations are read first (and kept), then
    the maps at the model's resolution are made; the images are then scored ``IMAGES_AT_A_TIME`` at a time,
    their densities decoded then.
    """
    from tqdm import tqdm

    classnames = tuple(classnames if classnames is not None else data.classnames)
    boot_seed = seed if boot_seed is None else boot_seed
    # Every image's fixations read, which the sAUC negatives draw on, and its density checked (a file set: its
    # header, that it is an image of the fixations' size): an unreadable file stops the step here, before any
    # map is made. The densities are decoded a few at a time below (a file damaged past its header stops it there).
    shown_name = dataset_phrase(data.name, noun="")  # the progress bars name the set as the pages do
    with tqdm(total=len(data), desc=f"reading {shown_name}'s fixations", unit="image", disable=not progress) as bar:
        for chunk in _chunks(len(data)):
            bar.update(len(metrics.on_threads(data.fixation_points, chunk, _threads())))
    made, extra_regions = [], {}
    for checkpoint, encoder in run_encoders(run, device, batch_size, cache_dir, progress=progress):
        # every checkpoint's maps are kept for the scoring below: in their cache files, not in memory
        made.append((checkpoint, checkpoint_saliency(encoder, data.images, data.labels, classnames, templates,
                                                     method=method, n_samples=n_samples, noise=noise, seed=seed,
                                                     on_disk=True)))
        if region_data is not None:
            extra = checkpoint_saliency(encoder, region_data.images, region_data.labels, classnames, templates,
                                        method=method, n_samples=n_samples, noise=noise, seed=seed)
            extra_regions[checkpoint.name] = metrics.region_shares(extra.maps, region_data.regions).assign(
                set=region_data.images.name, checkpoint=checkpoint.name, epoch=checkpoint.epoch)
    baselines: dict[str, list[pd.DataFrame]] = {}
    scored = {checkpoint.name: [] for checkpoint, _ in made}
    regions: dict[str, dict[str, list[pd.DataFrame]]] = {checkpoint.name: {} for checkpoint, _ in made}
    with tqdm(total=len(data), desc=f"scoring {shown_name}", unit="image", disable=not progress) as bar:
        for chunk in _chunks(len(data)):
            truth = GroundTruth.of(data, seed=seed, indices=chunk, n_splits=n_splits)
            for name, maps in (baseline_maps(data, truth) if with_baseline else {}).items():
                baselines.setdefault(name, []).append(truth.score(maps))
            for checkpoint, result in made:
                maps = upsample_each(result.maps[truth.first:truth.first + len(truth.truths)], truth.shapes)
                scored[checkpoint.name].append(truth.score(maps))
                for region, masks in data.regions.items():  # region by region, as one pass over the set lists them
                    shares = metrics.region_shares(maps, {region: [masks[i] for i in truth.indices]})
                    regions[checkpoint.name].setdefault(region, []).append(shares.assign(image=shares["image"] + truth.first))
            bar.update(len(truth.truths))
            truth = maps = None  # freed before the next chunk's are made, not after: one chunk held at a time
    tables, per_images, region_frames = [], [], []
    if with_baseline:
        table, per_image = _summaries({name: pd.concat(parts, ignore_index=True) for name, parts in baselines.items()},
                                      data, method=method, n_boot=n_boot, seed=boot_seed)
        tables.append(table)
        per_images.append(per_image)
    for checkpoint, result in made:
        table, per_image = _summaries({checkpoint.name: pd.concat(scored[checkpoint.name], ignore_index=True)}, data,
                                      method=method, n_boot=n_boot, seed=boot_seed, epochs={checkpoint.name: checkpoint.epoch})
        tables.append(table)
        per_images.append(per_image.assign(target_class=result.target_class, target_source=result.target_source))
        if regions[checkpoint.name]:
            shares = pd.concat([part for parts in regions[checkpoint.name].values() for part in parts], ignore_index=True)
            region_frames.append(shares.assign(set=data.images.name, checkpoint=checkpoint.name, epoch=checkpoint.epoch))
        if checkpoint.name in extra_regions:
            region_frames.append(extra_regions[checkpoint.name])
    region_table = pd.concat(region_frames, ignore_index=True) if region_frames else pd.DataFrame(
        columns=["image", "region", "share", "area", "enrichment", "set", "checkpoint", "epoch"])
    return SaliencyResults(pd.concat(tables, ignore_index=True), pd.concat(per_images, ignore_index=True),
                           region_table)


def region_summary(regions: pd.DataFrame, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Per set, checkpoint and region: mean share of saliency and mean enrichment over images, with a
    bootstrap interval of the share. Columns: set, checkpoint, epoch, region, share, share_lo, share_hi,
    area, enrichment, n_images."""
    from ...metrics.stats import bootstrap_mean_ci

    rows = []
    for (name, checkpoint, epoch, region), group in regions.groupby(["set", "checkpoint", "epoch", "region"],
                                                                    sort=False):
        share = group["share"].to_numpy(dtype=float)
        share = share[np.isfinite(share)]
        lo, hi = bootstrap_mean_ci(share, n_boot=n_boot, seed=seed)
        rows.append({"set": name, "checkpoint": checkpoint, "epoch": epoch, "region": region,
                     "share": float(share.mean()) if share.size else np.nan, "share_lo": lo, "share_hi": hi,
                     "area": float(group["area"].mean()), "enrichment": float(group["enrichment"].mean()),
                     "n_images": int(share.size)})
    return pd.DataFrame(rows)


def peak_checkpoint(table: pd.DataFrame, metric: str = HEADLINE) -> str | None:
    """The checkpoint (baselines excluded) with the best value of ``metric`` (lowest for KLD)."""
    rows = table[(table["metric"] == metric) & ~table["checkpoint"].isin(BASELINES)].dropna(subset=["value"])
    if rows.empty:
        return None
    best = rows["value"].idxmin() if metric in metrics.LOWER_IS_BETTER else rows["value"].idxmax()
    return str(rows.loc[best, "checkpoint"])


# ------------------------------------------------------------------------- the step, from parameters
CURVE_METRICS = ("sauc", "cc", "nss")  # the metrics the page describes in words, the headline first
N_SHOWN = 4  # images in the maps figure


@dataclass
class SaliencyData:
    """What the step measures: the scored set, the cue-conflict set for the region shares (or None),
    the class names saliency targets are chosen among and the prompt templates."""

    scored: SaliencySet
    region_data: SaliencySet | None
    classnames: tuple[str, ...]
    templates: tuple[str, ...]


@records_evaluation_sets("saliency")  # the run's record keeps a content hash of what was loaded
def load(run: Run, params: dict) -> SaliencyData:
    """The step's sets from resolved parameters: ``saliency_dataset``/``saliency_root``/``saliency_n_images``;
    embedded sets at the world's ``image_size`` (``texture_correlation``, ``texture_scale``), real ones at
    the run's input size. The world's cue-conflict images (``saliency_cue_per_pair`` per pair; 0 = none)
    come along for an embedded run. A real set has no classes: the target is the top-1 zero-shot class
    among open_clip's ImageNet class names, with ImageNet templates."""
    from ...data import world
    from ...data.prompts import imagenet_templates, resolve_templates
    from ...data.saliency import cue_conflict_saliency, load_saliency

    embedded = params["saliency_dataset"] == "embedded"
    data = load_saliency(params["saliency_dataset"], params["saliency_root"],
                         image_size=params["image_size"] if embedded else run.image_size, seed=params["eval_seed"],
                         n_images=params["saliency_n_images"], texture_correlation=params["texture_correlation"],
                         texture_scale=params["texture_scale"], object_placement=params["object_placement"])
    region_data = None
    if embedded and params["saliency_cue_per_pair"] > 0:
        region_data = cue_conflict_saliency(params["saliency_cue_per_pair"], params["eval_seed"],
                                            world.evaluation_world(params))
    if embedded:
        return SaliencyData(data, region_data, tuple(data.classnames),
                            resolve_templates(params["prompt_templates"], "embedded"))
    from open_clip.zero_shot_metadata import IMAGENET_CLASSNAMES

    templates = imagenet_templates()
    templates = templates if params["prompt_templates"] == "ensemble" else templates[:1]
    return SaliencyData(data, None, tuple(IMAGENET_CLASSNAMES), templates)


def map_settings(params: dict) -> dict:
    """The keyword arguments of :func:`~clipalign_utils.steps.saliency.maps.checkpoint_saliency` that params set."""
    return {"method": params["saliency_method"], "n_samples": params["saliency_samples"],
            "noise": params["saliency_noise"], "seed": derived_seed(params, "smoothgrad")}


# Written only where checkpoints are scored, and where the images have region masks (the embedded set):
# io.write_tables removes one left from an earlier measurement.
OPTIONAL_TABLES = ("saliency_peak", "saliency_regions")


def measure(run: Run, params: dict, data: SaliencyData | None = None) -> dict[str, pd.DataFrame]:
    """Every checkpoint of ``run`` on the step's sets (``data``, default ``load(run, params)``):
    {"saliency": saliency.csv (every metric per checkpoint, mean over images with a bootstrap interval,
    and the baselines), "saliency_per_image": every image's metrics per checkpoint (a set read from files:
    its last column ``file``, the image's file below the release's stimuli folder), "saliency_peak"
    (:func:`peak_table`: the paired early-peak test of the headline sAUC over images), and where
    the images have region masks "saliency_regions": :func:`region_summary` of the maps' shares of
    saliency per region}. Maps are cached under the run's cache."""
    data = load(run, params) if data is None else data
    results = saliency_over_checkpoints(
        run, data.scored, data.templates, classnames=data.classnames, n_boot=params["n_boot"],
        device=params["device"], batch_size=params["eval_batch_size"], cache_dir=run.layout.cache,
        region_data=data.region_data, progress=True, boot_seed=bootstrap_seed(params), **map_settings(params))
    per_image = results.per_image
    if "target_class" in per_image.columns:  # a class index; the baselines' rows have none (a float column: 154.0)
        per_image = per_image.assign(target_class=per_image["target_class"].astype("Int64"))
    if data.scored.stimulus_files is not None:  # an index alone names no image of a real release to a reader
        per_image = per_image.assign(file=per_image["image"].map(dict(enumerate(data.scored.stimulus_files))))
    tables = {"saliency": results.table, "saliency_per_image": per_image}
    if (~results.per_image["checkpoint"].isin(BASELINES)).any():
        tables["saliency_peak"] = peak_table(results.per_image, results.table, params)
    if not results.regions.empty:
        tables["saliency_regions"] = region_summary(results.regions, n_boot=params["n_boot"], seed=bootstrap_seed(params))
    return tables


# The measure the synthesis' saliency claim rests on (its curve and its paired early-peak test).
PEAK_METRIC = HEADLINE


def peak_table(per_image: pd.DataFrame, table: pd.DataFrame, params: dict) -> pd.DataFrame:
    """One row: the paired early-peak test of the checkpoints' mean PEAK_METRIC over images
    (``metrics.peak.mean_peak_test``, resampling images), the baselines left out."""
    checkpoints = per_image[~per_image["checkpoint"].isin(BASELINES)]
    test = mean_peak_test(checkpoints, PEAK_METRIC, "image", n_boot=params["n_boot"], seed=bootstrap_seed(params))
    return pd.DataFrame([{"dataset": table["dataset"].iloc[0], "method": table["method"].iloc[0],
                          "metric": PEAK_METRIC, **test}])


def score_table(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Checkpoint × metric as the page shows it: the baselines first, then the checkpoints by epoch."""
    table = tables["saliency"]
    order = list(dict.fromkeys(table["checkpoint"]))
    return table.pivot(index="checkpoint", columns="metric", values="value").loc[order].round(3)


def map_checkpoints(table: pd.DataFrame, first: str, last: str) -> dict[str, str]:
    """{column title: checkpoint} of the maps figure: the first checkpoint, the one with the best sAUC
    (the last when none is defined) and the last, each once, titled by its roles ("first and best sAUC")."""
    peak = peak_checkpoint(table, HEADLINE)
    roles: dict[str, list[str]] = {}
    for name, role in ((first, "first"), (peak, "best sAUC"), (last, "last")):
        if name is not None:
            roles.setdefault(name, []).append(role)
    # the checkpoint on a line of its own: a 1.6-in column holds "first and best sAUC", not with "(epoch_0.125)"
    return {f"{' and '.join(said)}\n({name})": name for name, said in roles.items()}


def checkpoint_maps(run: Run, params: dict, data: SaliencyData, names) -> dict[str, np.ndarray]:
    """{checkpoint: its (N, h, w) maps of the scored set} for the checkpoints ``names``: read back from the
    run's cache where :func:`measure` put them (computed there otherwise)."""
    wanted = set(names)
    return {checkpoint.name: checkpoint_saliency(
                run_encoder(run, checkpoint, params["device"], params["eval_batch_size"], run.layout.cache),
                data.scored.images, data.scored.labels, data.classnames, data.templates, **map_settings(params)).maps
            for checkpoint in run.checkpoints if checkpoint.name in wanted}


# --- What the synthesis reads (registry.Summary). ---

SUMMARY_METRICS = (HEADLINE, "cc", "nss")  # the metrics the synthesis takes, as saliency_<metric>[_lo/_hi]


def summary_columns(table: pd.DataFrame, distance: str | None, path) -> pd.DataFrame | None:
    """Per checkpoint (the baseline rows already left out): saliency_dataset, saliency_<m> with
    saliency_<m>_lo/_hi for m in SUMMARY_METRICS, of the table's first method; None without rows."""
    if table.empty:
        return None
    table = table[table["method"] == table["method"].iloc[0]]
    out = pd.DataFrame({"checkpoint": list(dict.fromkeys(table["checkpoint"]))})
    out["saliency_dataset"] = out["checkpoint"].map(table.groupby("checkpoint")["dataset"].first())
    for metric in SUMMARY_METRICS:
        rows = table[table["metric"] == metric].set_index("checkpoint")
        for suffix, source in (("", "value"), ("_lo", "value_lo"), ("_hi", "value_hi")):
            out[f"saliency_{metric}{suffix}"] = out["checkpoint"].map(rows[source]) if len(rows) else float("nan")
    return out
