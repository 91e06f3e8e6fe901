"""The sentences and figures of the saliency page (its measurement: :mod:`.analysis`)."""
from __future__ import annotations


import numpy as np
import pandas as pd

from ...checkpoints import Run
from ...data.registry import dataset_phrase, display_name
from ...metrics import saliency as metrics
from ...metrics.iqa import peak_summary
from ...config import bootstrap_seed
from ...metrics.peak import EARLY_FRACTION, mean_replicates
from ...model_names import patch_size, run_input_size
from ...plots.saliency import region_set_name, saliency_maps_grid
from ...metrics.stats import first_max, percentile_interval
from ...prose import counted, early_peak_test_sentences, no_peak_where_at_chance, plural

from . import BASELINES, HEADLINE, STEP
from .analysis import CURVE_METRICS, N_SHOWN, SaliencyData, checkpoint_maps, map_checkpoints


# How the page's sentences name each metric (the tables keep the column names).
METRIC_NAMES = {"sauc": "sAUC", "auc_judd": "AUC-Judd", "auc_borji": "AUC-Borji", "cc": "CC", "nss": "NSS",
                "sim": "SIM", "kld": "KLD"}


def _name(metric: str) -> str:
    return METRIC_NAMES.get(metric, metric)


def input_grid(run: Run) -> tuple[int | None, int | None]:
    """(input size px, patch grid side) of the run's model: the run's forced size or its config's, and that
    size over the config's patch size (None where the config does not say: not a ViT, an unknown name)."""
    size = run_input_size(run)
    patch = patch_size(run.model_name)
    return size, (size // patch if size and patch else None)


def _grid_phrase(run: Run) -> str:
    """"the 7×7 patch grid" (the side computed from the model's sizes), or "the patch grid" where unknown."""
    side = input_grid(run)[1]
    return f"the {side}×{side} patch grid" if side else "the patch grid"


def data_sentences(run: Run, params: dict, data: SaliencyData) -> list[str]:
    """What the page evaluates: the run's checkpoints, the set, the saliency method and the ground truth."""
    method = params["saliency_method"]
    settings = (f" ({params['saliency_samples']} noisy copies, noise {params['saliency_noise']:g})"
                if method == "smoothgrad" else
                f" (the class token's attention, class-agnostic, on {_grid_phrase(run)})" if method == "rollout"
                else "")
    # CAT2000's stimuli are named <Category>/<nnn>: how many categories a subset spans
    categories = {name.split("/")[0] for name in data.scored.names if "/" in name}
    spans = f" of {len(categories)} {'category' if len(categories) == 1 else 'categories'}" if categories else ""
    return [f"{counted(len(run.checkpoints), 'checkpoint')} of {run.model_name}; {dataset_phrase(data.scored.name)}: "
            f"{counted(len(data.scored), 'image')}{spans}; method {method}{settings}",
            f"ground truth: {data.scored.ground_truth}"]


def curve_sentences(tables: dict[str, pd.DataFrame]) -> list[str]:
    """:func:`curve_sentence` for the headline sAUC, CC and NSS."""
    return [curve_sentence(tables["saliency"], metric) for metric in CURVE_METRICS]


def baseline_sentence(tables: dict[str, pd.DataFrame], params: dict, metric: str = HEADLINE) -> str:
    """Where the checkpoints stand among the baselines on ``metric``: each baseline's value with its
    interval, how many checkpoints score above the centre bias on the same images (:func:`above_centre_bias`)
    and how many reach the object silhouette's lower bound."""
    table = tables["saliency"]
    rows = table[table["metric"] == metric]
    base = {name: rows[rows["checkpoint"] == name].iloc[0] for name in BASELINES if (rows["checkpoint"] == name).any()}
    models = rows[~rows["checkpoint"].isin(BASELINES)].dropna(subset=["value"])
    parts = [f"{name.replace('_', ' ')} {r['value']:.3f} [{r['value_lo']:.3f}, {r['value_hi']:.3f}]"
             for name, r in base.items()]
    counts = []
    if "centre_bias" in base:
        above, compared = above_centre_bias(tables["saliency_per_image"], metric, params["n_boot"],
                                            bootstrap_seed(params))
        counts.append(f"{above} of {counted(compared, 'checkpoint')} above the centre bias (the interval of "
                      f"their difference on the same images lies above 0)")
    if "object_silhouette" in base:
        counts.append(f"{int((models['value'] >= base['object_silhouette']['value_lo']).sum())} reach the object "
                      f"silhouette's")
    return (f"{_name(metric)} {plural(len(parts), 'baseline')}: " + "; ".join(parts)
            + (f" — {', '.join(counts)}" if counts else ""))


def above_centre_bias(per_image: pd.DataFrame, metric: str, n_boot: int, seed: int,
                      level: float = 0.95) -> tuple[int, int]:
    """(how many checkpoints score better than the centre bias, of how many with a value): paired over images,
    each checkpoint's mean difference from the centre bias on the same images (an image undefined for either
    left out) with its percentile bootstrap interval, every checkpoint over the same draws
    (``peak.mean_replicates``); better = the interval lies above 0 (below for a metric where lower is
    better). Comparing a checkpoint's value with the centre bias' own interval ignored that both are measured on
    one set of images."""
    centre = per_image[per_image["checkpoint"] == "centre_bias"].set_index("image")[metric]
    models = per_image[~per_image["checkpoint"].isin(BASELINES)]
    matrix = models.pivot(index="checkpoint", columns="image", values=metric)
    differences = (matrix - centre.reindex(matrix.columns)).to_numpy(float)
    if metric in metrics.LOWER_IS_BETTER:
        differences = -differences
    defined = np.isfinite(differences).any(axis=1)
    replicates = mean_replicates(differences[defined], None, n_boot, seed)
    lows = [percentile_interval(row, level)[0] for row in replicates]
    return int(sum(low > 0 for low in lows)), int(defined.sum())


def early_peak_sentences(tables: dict[str, pd.DataFrame]) -> list[str]:
    """The paired early-peak test of the mean sAUC (saliency_peak), as page 2 reads the SRCC's; nothing when
    the run has no checkpoint to test."""
    if "saliency_peak" not in tables:
        return []
    test = tables["saliency_peak"].iloc[0]
    table = tables["saliency"]
    curve = table[(table["metric"] == test["metric"]) & ~table["checkpoint"].isin(BASELINES)]
    sign = -1.0 if test["metric"] in metrics.LOWER_IS_BETTER else 1.0
    peak_epoch = peak_summary(curve["epoch"], sign * curve["value"])["peak_epoch"]
    return early_peak_test_sentences(test, _name(test["metric"]), "image", EARLY_FRACTION, peak_epoch,
                                     no_peak=_no_peak(curve, test["metric"]))


def _no_peak(rows: pd.DataFrame, metric: str) -> str:
    """That ``metric`` has no peak to read where every checkpoint's interval (``rows``: its saliency.csv rows)
    holds its chance level; the headline's alone has one declared (``registry.Summary.chance``)."""
    rows = rows.dropna(subset=["value"])
    return no_peak_where_at_chance(_name(metric), rows.get("value_lo"), rows.get("value_hi"),
                                   STEP.summary.chance if metric == HEADLINE else None)


def curve_sentence(table: pd.DataFrame, metric: str) -> str:
    """One computed sentence on a metric's curve: first, peak and last checkpoint with intervals, and the
    centre-bias baseline."""
    rows = table[(table["metric"] == metric) & ~table["checkpoint"].isin(BASELINES)].sort_values("epoch")
    rows = rows.dropna(subset=["value"])
    if rows.empty:
        return f"{_name(metric)}: undefined at every checkpoint (constant maps)"
    sign = -1.0 if metric in metrics.LOWER_IS_BETTER else 1.0
    peak = peak_summary(rows["epoch"], sign * rows["value"])
    best = rows.iloc[first_max(sign * rows["value"].to_numpy())]  # (the peak's rule: a tie is the earliest's)
    first, last = rows.iloc[0], rows.iloc[-1]
    base = table[(table["metric"] == metric) & (table["checkpoint"] == BASELINES[0])]
    base_text = (f"; centre bias {base['value'].iloc[0]:.3f} [{base['value_lo'].iloc[0]:.3f}, "
                 f"{base['value_hi'].iloc[0]:.3f}]" if len(base) else "")
    no_peak = _no_peak(rows, metric)
    if len(rows) == 1:  # one checkpoint: no curve, so no best or last to name
        return (f"{_name(metric)}: {last['value']:.3f} [{last['value_lo']:.3f}, {last['value_hi']:.3f}] at the one "
                f"checkpoint (epoch {last['epoch']:g}){base_text}" + (f"; {no_peak}" if no_peak else ""))
    where = "inside the run" if peak["peak_is_interior"] else ("at the last checkpoint"
                                                              if best["epoch"] == last["epoch"] else "at the start")
    return (f"{_name(metric)}: {first['value']:.3f} at epoch {first['epoch']:g}, best {best['value']:.3f} "
            f"[{best['value_lo']:.3f}, {best['value_hi']:.3f}] at epoch {best['epoch']:g} ({where}), "
            f"{last['value']:.3f} [{last['value_lo']:.3f}, {last['value_hi']:.3f}] at the last checkpoint "
            f"(epoch {last['epoch']:g}){base_text}" + (f"; {no_peak}" if no_peak else ""))


def maps_figure(run: Run, params: dict, data: SaliencyData, tables: dict[str, pd.DataFrame]):
    """The first few images with their ground-truth density and the maps of the first checkpoint, the
    best-sAUC one and the last."""
    columns = map_checkpoints(tables["saliency"], run.checkpoints[0].name, run.checkpoints[-1].name)
    maps = checkpoint_maps(run, params, data, columns.values())
    shown = np.arange(min(N_SHOWN, len(data.scored)))
    return saliency_maps_grid(data.scored.example_images(shown), [data.scored.densities[int(i)] for i in shown],
                              {title: maps[name][shown] for title, name in columns.items()})


def region_sentences(tables: dict[str, pd.DataFrame]) -> list[str]:
    """Per image set with region masks: the contour's and the interior's share of saliency at the first
    checkpoint and the last (with its interval), against the region's share of the area."""
    if "saliency_regions" not in tables:
        return ["no region masks for this dataset: the contour/interior view needs the embedded world"]
    regions = tables["saliency_regions"]
    lines = []
    for name, rows in regions[regions["region"].isin(["contour", "interior"])].groupby("set", sort=False):
        ends = rows.sort_values("epoch", kind="stable").groupby("region", sort=False)
        lines.append(f"{region_set_name(name)}: " + "; ".join(
            f"{region} share {g['share'].iloc[0]:.3f} → {g['share'].iloc[-1]:.3f} "
            f"[{g['share_lo'].iloc[-1]:.3f}, {g['share_hi'].iloc[-1]:.3f}] (area {g['area'].mean():.3f})"
            for region, g in ends))
    return lines


def reading_sentences(data: SaliencyData, run: Run, params: dict) -> list[str]:
    """What the metrics can and cannot say, for the set the page read (the embedded set's synthetic observer,
    or people's fixations: MIT1003, CAT2000) and the method that drew the maps (smoothgrad: the evidence for
    the image's class; rollout: where the class token draws from, the same for every class, on the patch grid)."""
    scored = data.scored
    rollout = params["saliency_method"] == "rollout"
    evidence = ("the patches the class token draws from (attention rollout: class-agnostic, the same map whatever "
                "the class)" if rollout else "the model's evidence for its class")
    if scored.silhouettes is not None:  # the world's images: a synthetic observer
        return ["on the embedded set every number here measures agreement with a *synthetic* observer who fixates "
                f"the object with a weak centre bias: a rising sAUC means {evidence} gathers on the object, "
                "not that it looks as people do",
                "whether attentional alignment with people peaks early needs human fixations: run with "
                "`-p saliency_dataset=mit1003 -p saliency_root=PATH` (or `cat2000`)"]
    size = input_grid(run)[0]
    seen = f"squeezed to its {size}-px input" if size else "squeezed to its input size"
    maps = (f"its maps are {_grid_phrase(run)}, one value per patch" if rollout
            else "its maps have the input's resolution")
    return [f"on {display_name(scored.name)} the ground truth is people's free-viewing fixations "
            f"({scored.ground_truth}): these numbers say whether {evidence} lies where people look, and the "
            "centre-bias baseline is the bar a map must clear on such data (people look at the centre of photographs)",
            f"the model sees each photograph {seen}, so {maps}; the metrics compare them at the ground truth's "
            "resolution after resizing, as the benchmark does"]
