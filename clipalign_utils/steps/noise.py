"""The noise step: zero-shot accuracy of every checkpoint on clean and noisy copies of a labelled set,
the normalized and chance-corrected drops (``metrics.noise``), and which checkpoints sit at chance."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..checkpoints import Run
from ..data.noise import ClassificationSet
from ..encoder import run_encoders
from ..metrics.noise import checkpoint_summary, noise_table


def measure(run: Run, data: ClassificationSet, image_sets: dict, templates, params: dict,
            cache_dir: str | Path | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(noise, summary): ``noise`` one row per checkpoint × σ (metrics/noise.csv: accuracy with its
    bootstrap interval over images, normalized and chance-corrected drop; n_classes, noise_at and
    clean_at_chance appended), ``summary`` one row per checkpoint (metrics/noise_summary.csv). A
    checkpoint whose clean interval reaches chance has no competence for noise to take away: flagged."""
    chance = 1 / len(data.classnames)
    tables = []
    for checkpoint, encoder in run_encoders(run, params["device"], params["eval_batch_size"],
                                            cache_dir=cache_dir, progress=False):
        weights = encoder.zero_shot_weights(data.classnames, templates)
        correct = {sigma: (encoder.encode_images(images) @ weights).argmax(axis=1) == data.labels
                   for sigma, images in image_sets.items()}
        table = noise_table(correct, n_boot=params["n_boot"], seed=params["seed"], chance=chance)
        table.insert(0, "checkpoint", checkpoint.name)
        table.insert(1, "epoch", checkpoint.epoch)
        table.insert(2, "dataset", params["noise_dataset"])
        tables.append(table)
    noise = pd.concat(tables, ignore_index=True)
    summary = checkpoint_summary(noise, chance)
    summary.insert(2, "dataset", params["noise_dataset"])
    noise["n_classes"] = len(data.classnames)
    noise["noise_at"] = params["noise_at"]
    noise["clean_at_chance"] = noise["checkpoint"].map(summary.set_index("checkpoint")["clean_at_chance"])
    return noise, summary
