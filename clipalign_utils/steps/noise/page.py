"""The sentences and figures of the noise page (its measurement: :mod:`.analysis`)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ...data.registry import dataset_phrase
from ...metrics.noise import drop_trend
from ...plots.noise import noise_examples
from ...prose import counted

from .analysis import N_EXAMPLES, NoiseData


def data_sentences(data: NoiseData) -> list[str]:
    """The images, the classes and chance, the noise levels and the templates."""
    dataset = data.dataset
    present = len(set(dataset.labels.tolist()))
    classes = (f"{len(dataset.classnames)} classes" if present == len(dataset.classnames)
               else f"{present} of its {len(dataset.classnames)} classes (a {len(dataset.classnames)}-way choice)")
    return [f"{len(dataset)} images of {classes} from {dataset_phrase(dataset.name, noun='')}; "
            f"chance = {data.chance:.3f}",
            f"noise levels σ: {', '.join(f'{s:g}' for s in data.image_sets)}; "
            f"{counted(len(data.templates), 'prompt template')}"]


def examples_figure(data: NoiseData, n: int = N_EXAMPLES):
    """The first ``n`` images (fewer when the set holds fewer), one row each, at every noise level."""
    n = min(n, len(data.dataset))
    return noise_examples({sigma: images.images[:n] for sigma, images in data.image_sets.items()},
                          [data.dataset.classnames[label] for label in data.dataset.labels[:n]])


def _epochs(epochs) -> str:
    """"epoch 0" or "epochs 0, 5": the epochs, with the word."""
    return f"epoch{'' if len(epochs) == 1 else 's'} " + ", ".join(f"{e:g}" for e in epochs)


def clean_sentences(summary: pd.DataFrame) -> list[str]:
    """Clean accuracy from the first checkpoint to the last, and the checkpoints at chance
    (``summary``: noise_summary, with its chance column)."""
    first, last, chance = summary.iloc[0], summary.iloc[-1], summary["chance"].iloc[0]
    lines = [f"clean accuracy: {first['clean_accuracy']:.3f} at epoch {first['epoch']:g} → "
             f"{last['clean_accuracy']:.3f} at epoch {last['epoch']:g} (chance {chance:.3f})"]
    flagged = summary[summary["clean_at_chance"].astype(bool)]
    if len(flagged):
        return lines + [f"{len(flagged)} of {counted(len(summary), 'checkpoint')} at chance on clean images (drop "
                        f"undefined: nothing to lose; left out below): {_epochs(flagged['epoch'])}"]
    return lines + ["every checkpoint is above chance on clean images"]


def _drop(row) -> str:
    return (f"{row['mean_normalized_drop']:.3f} [{row['mean_normalized_drop_lo']:.3f}, "
            f"{row['mean_normalized_drop_hi']:.3f}]")


def trend_sentences(summary: pd.DataFrame, trends: pd.DataFrame) -> list[str]:
    """Does the mean drop shrink over the run's training? The halves' means and the step's paired trend test
    (``trends``: noise_trend, read by ``drop_trend``) of the normalized drop, then of the chance-corrected one."""
    trend = drop_trend(summary, trends)
    lines = []
    if trend["n"] >= 2:
        lines.append(f"mean normalized drop, earlier half of them ({_epochs(trend['early_epochs'])}): "
                     f"{trend['early_drop']:.3f}; later half ({_epochs(trend['late_epochs'])}): "
                     f"{trend['late_drop']:.3f}")
    informative = summary[~summary["clean_at_chance"].astype(bool)]
    if "mean_normalized_drop_lo" in summary.columns and len(informative) >= 2:
        first, last = informative.iloc[0], informative.iloc[-1]
        lines.append("mean normalized drop with its 95% bootstrap interval over images: "
                     f"{_drop(first)} at epoch {first['epoch']:g} (the first checkpoint above chance), "
                     f"{_drop(last)} at epoch {last['epoch']:g} (the last)")
    if trend["direction"] == "undetermined":
        lines.append(f"too few checkpoints above chance ({trend['n']}) to tell whether the drop shrinks with "
                     "training")
    else:
        leaning = (" (it leans towards: shrinks)" if trend["rho"] < 0 else " (it leans towards: grows)"
                   if trend["rho"] > 0 else "")  # ρ = 0 leans nowhere
        verdict = (f"{trend['direction']} with training" if trend["direction"] != "flat"
                   else f"shows no clear trend{leaning}")
        lines.append(f"over {trend['n']} checkpoints above chance the mean normalized drop {verdict}: "
                     f"Spearman ρ(epoch, drop) = {_rho(trend)}, the interval resampling the images alike at every "
                     f"checkpoint (this run's course; training's own noise needs seeds)")
    corrected = drop_trend(summary, trends, column="mean_chance_corrected_drop")
    if corrected["direction"] != "undetermined":
        lines.append(f"chance-corrected drop: {corrected['early_drop']:.3f} (earlier half) → "
                     f"{corrected['late_drop']:.3f} (later half); Spearman ρ(epoch, drop) = {_rho(corrected)} "
                     f"({corrected['direction']})")
    return lines


def _rho(trend: dict) -> str:
    """ρ with its 95% interval, or that it has none."""
    if np.isfinite(trend["lo"]) and np.isfinite(trend["hi"]):
        return f"{trend['rho']:.2f} [{trend['lo']:.2f}, {trend['hi']:.2f}]"
    return f"{trend['rho']:.2f} (no interval: the resampled images rarely define ρ)"
