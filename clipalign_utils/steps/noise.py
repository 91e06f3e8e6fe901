"""The noise step: zero-shot accuracy of every checkpoint on clean and noisy copies of a labelled set,
the normalized and chance-corrected drops (``metrics.noise``), which checkpoints sit at chance, and
the sentences the page says about them."""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ..record import records_evaluation_sets
from ..config import bootstrap_seed, derived_seed
from ..checkpoints import Run
from ..data.noise import ClassificationSet, load_noise_dataset, noisy_image_sets
from ..data.prompts import resolve_templates
from ..encoder import run_encoders
from ..metrics.noise import checkpoint_summary, drop_trend, noise_table
from ..plots.noise import noise_examples

N_EXAMPLES = 4


@dataclass
class NoiseData:
    """The step's evaluation data: the labelled clean set, its image set per σ (0 = clean) and the
    prompt templates of the classifier."""

    dataset: ClassificationSet
    image_sets: dict  # sigma -> image set, ascending, 0 first
    templates: tuple[str, ...]

    @property
    def chance(self) -> float:
        return 1 / len(self.dataset.classnames)


@records_evaluation_sets("noise")  # the run's record keeps a content hash of what was loaded
def load(run: Run, params: dict) -> NoiseData:
    """params' noise_dataset, its noisy copies (sigmas, noise_at; ``input`` at the run's input size; the
    noise drawn from eval_seed's ``noise`` stream) and its prompt templates."""
    dataset = load_noise_dataset(params["noise_dataset"], params["noise_root"], params)
    image_sets = noisy_image_sets(dataset, params["sigmas"], derived_seed(params, "noise"), params["noise_at"],
                                  run.image_size)
    return NoiseData(dataset, image_sets, resolve_templates(params["prompt_templates"], params["noise_dataset"]))


def data_sentences(data: NoiseData) -> list[str]:
    """The images, the classes and chance, the noise levels and the templates."""
    dataset = data.dataset
    return [f"{len(dataset)} images of {len(dataset.classnames)} classes from {dataset.name}; "
            f"chance = {data.chance:.3f}",
            f"noise levels σ: {', '.join(f'{s:g}' for s in data.image_sets)}; {len(data.templates)} prompt template(s)"]


def examples_figure(data: NoiseData, n: int = N_EXAMPLES):
    """The first ``n`` images (fewer when the set holds fewer), one row each, at every noise level."""
    n = min(n, len(data.dataset))
    return noise_examples({sigma: images.images[:n] for sigma, images in data.image_sets.items()},
                          [data.dataset.classnames[label] for label in data.dataset.labels[:n]])


def measure(run: Run, params: dict, data: NoiseData | None = None) -> dict[str, pd.DataFrame]:
    """{"noise": one row per checkpoint × σ (accuracy with its bootstrap interval over images, normalized
    and chance-corrected drop; n_classes, noise_at and clean_at_chance appended), "noise_summary": one
    row per checkpoint} on ``data`` (default ``load(run, params)``). A checkpoint whose clean interval
    reaches chance has no competence for noise to take away: flagged."""
    data = load(run, params) if data is None else data
    dataset, chance = data.dataset, data.chance
    tables = []
    for checkpoint, encoder in run_encoders(run, params["device"], params["eval_batch_size"],
                                            cache_dir=run.layout.cache, progress=False):
        weights = encoder.zero_shot_weights(dataset.classnames, data.templates)
        correct = {sigma: (encoder.encode_images(images) @ weights).argmax(axis=1) == dataset.labels
                   for sigma, images in data.image_sets.items()}
        table = noise_table(correct, n_boot=params["n_boot"], seed=bootstrap_seed(params), chance=chance)
        table.insert(0, "checkpoint", checkpoint.name)
        table.insert(1, "epoch", checkpoint.epoch)
        table.insert(2, "dataset", params["noise_dataset"])
        tables.append(table)
    noise = pd.concat(tables, ignore_index=True)
    summary = checkpoint_summary(noise, chance)
    summary.insert(2, "dataset", params["noise_dataset"])
    noise["n_classes"] = len(dataset.classnames)
    noise["noise_at"] = params["noise_at"]
    noise["clean_at_chance"] = noise["checkpoint"].map(summary.set_index("checkpoint")["clean_at_chance"])
    return {"noise": noise, "noise_summary": summary}


def _epochs(epochs) -> str:
    return ", ".join(f"{e:g}" for e in epochs)


def clean_sentences(summary: pd.DataFrame) -> list[str]:
    """Clean accuracy from the first checkpoint to the last, and the checkpoints at chance
    (``summary``: noise_summary, with its chance column)."""
    first, last, chance = summary.iloc[0], summary.iloc[-1], summary["chance"].iloc[0]
    lines = [f"clean accuracy: {first['clean_accuracy']:.3f} at epoch {first['epoch']:g} → "
             f"{last['clean_accuracy']:.3f} at epoch {last['epoch']:g} (chance {chance:.3f})"]
    flagged = summary[summary["clean_at_chance"].astype(bool)]
    if len(flagged):
        return lines + [f"{len(flagged)} of {len(summary)} checkpoint(s) at chance on clean images (drop "
                        f"meaningless, excluded below): epochs {_epochs(flagged['epoch'])}"]
    return lines + ["every checkpoint is above chance on clean images"]


def trend_sentences(summary: pd.DataFrame, params: dict) -> list[str]:
    """Does the mean drop shrink with training? The halves' means and the permutation Spearman test
    (``drop_trend`` with params' n_perm and seed) of the normalized drop, then of the chance-corrected one."""
    trend = drop_trend(summary, n_perm=params["n_perm"], seed=bootstrap_seed(params))
    lines = []
    if trend["n"] >= 2:
        lines.append(f"mean normalized drop, earlier half of them (epochs {_epochs(trend['early_epochs'])}): "
                     f"{trend['early_drop']:.3f}; later half (epochs {_epochs(trend['late_epochs'])}): "
                     f"{trend['late_drop']:.3f}")
    if trend["direction"] == "undetermined":
        lines.append(f"too few checkpoints above chance ({trend['n']}) to tell whether the drop shrinks with "
                     "training")
    else:
        leaning = "shrinks" if trend["rho"] < 0 else "grows"
        verdict = (f"{trend['direction']} with training" if trend["direction"] != "flat"
                   else f"shows no significant trend (it leans towards: {leaning})")
        lines.append(f"over {trend['n']} checkpoints above chance the mean normalized drop {verdict}: "
                     f"Spearman ρ(epoch, drop) = {trend['rho']:.2f}, permutation p = {trend['p_value']:.3f}")
    corrected = drop_trend(summary, n_perm=params["n_perm"], seed=bootstrap_seed(params),
                           column="mean_chance_corrected_drop")
    if corrected["direction"] != "undetermined":
        lines.append(f"chance-corrected drop: {corrected['early_drop']:.3f} (earlier half) → "
                     f"{corrected['late_drop']:.3f} (later half); Spearman ρ(epoch, drop) = {corrected['rho']:.2f}, "
                     f"permutation p = {corrected['p_value']:.3f} ({corrected['direction']})")
    return lines
