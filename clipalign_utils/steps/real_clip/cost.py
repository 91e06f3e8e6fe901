"""What a real trajectory costs to analyse: the per-checkpoint cost of each step for ViT-B-32 at 224 px,
as ``benchmarks/real_clip_cost.py`` measured it on a CPU (``benchmarks/real_clip_cost.csv``), and the
paper's Fig. 1 run scaled from it. Light: pandas only, so the book's placeholder page can read it."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ...data.registry import display_name
from ...errors import shell_arg
from ...registry import checkout_or_installed

COST_TABLE = checkout_or_installed("benchmarks", "real_clip_cost.csv")
# The paper's Fig. 1 on a public trajectory: ViT-B-32 trained on LAION-400M for 13 B samples, 32 epochs.
FIG1_RUN = "Model-B-32_Data-400M_Samples-13B_lr-1e-3_bs-86k"
FIG1_EPOCHS = 32
# A projection, not a measurement: the sustained dense fp16 rate one data-centre GPU gives a ViT-B-32
# forward pass at batch 256 (well under an H100's or H200's peak). Replace it with a measured rate.
ASSUMED_GPU_TFLOPS = 100.0


def read_cost(path: Path = COST_TABLE) -> pd.DataFrame | None:
    """The measured table (step, dataset, images, seconds, images_per_s, gflop, cpu, measured), None when
    it has not been measured."""
    return pd.read_csv(path) if Path(path).exists() else None


def trajectory_cost(cost: pd.DataFrame, n_checkpoints: int = FIG1_EPOCHS) -> dict:
    """The whole trajectory from the per-checkpoint table: CPU hours as measured × checkpoints, and the
    one-GPU hours projected from the steps' floating-point work at ASSUMED_GPU_TFLOPS."""
    per_checkpoint_s = float(cost["seconds"].sum())
    gflop = float(cost["gflop"].sum())
    return {"checkpoints": n_checkpoints, "cpu_s_per_checkpoint": per_checkpoint_s,
            "cpu_hours": per_checkpoint_s * n_checkpoints / 3600,
            "gpu_hours_projected": gflop * n_checkpoints / (ASSUMED_GPU_TFLOPS * 1e3) / 3600}


def measured_templates(cost: pd.DataFrame | None) -> str | None:
    """The ``prompt_templates`` the benchmark measured with (its ``templates`` column: ``single`` by default),
    None when it has not been measured or its steps used different ones."""
    if cost is None or "templates" not in cost.columns or cost["templates"].nunique() != 1:
        return None
    return str(cost["templates"].iloc[0])


def command(out: str = "runs/default/real_clip", templates: str | None = None) -> str:
    """The one command for the paper's Fig. 1 on the named public trajectory (real datasets from DATA);
    ``templates``: the prompts to give it (:func:`measured_templates`, so that it runs what the cost measured),
    None or ``ensemble`` for the default ensembles."""
    prompts = (f" -p prompt_templates={shell_arg(templates)}" if templates and templates != "ensemble" else "")
    return (f"clipalign run --out {shell_arg(out)} --checkpoints laion-scaling:{FIG1_RUN} \\\n"
            "    -p iqa_dataset=tid2013 -p iqa_root=DATA/tid2013 \\\n"
            "    -p cue_conflict_dataset=geirhos -p cue_conflict_root=DATA/geirhos \\\n"
            "    -p noise_dataset=cifar100 -p noise_root=DATA/cifar100 \\\n"
            "    -p similarity_dataset=nights -p similarity_root=DATA/nights \\\n"
            f"    -p saliency_dataset=mit1003 -p saliency_root=DATA/mit1003 -p device=cuda{prompts}")


def _prompts_phrase(templates: str | None) -> str:
    """How the measurement's prompts read in the cost sentence (nothing where its table does not say)."""
    if templates == "single":
        return " with one prompt per class (`prompt_templates=single`)"
    if templates == "ensemble":
        return " with each dataset's prompt ensemble (`prompt_templates=ensemble`, the default)"
    return f" with the prompts `prompt_templates={templates}` gives" if templates else ""


def cost_sentences(cost: pd.DataFrame | None) -> list[str]:
    if cost is None:
        return [f"The per-checkpoint cost has not been measured here yet: `python benchmarks/real_clip_cost.py` "
                f"writes benchmarks/{COST_TABLE.name}."]
    total = trajectory_cost(cost)
    templates = measured_templates(cost)
    lines = [f"Measured on {cost['cpu'].iloc[0]} ({cost['measured'].iloc[0]}): one ViT-B-32 checkpoint through "
             f"every step{_prompts_phrase(templates)} takes {total['cpu_s_per_checkpoint']:.0f} s on the benchmark's "
             f"real-format sets, so the {total['checkpoints']} checkpoints of the paper's Fig. 1 trajectory "
             f"(`{FIG1_RUN}`) take about {total['cpu_hours']:.1f} CPU hours at those sizes (the real datasets are "
             f"larger: scale by their image counts).",
             f"**Projection, not a measurement:** on one GPU sustaining {ASSUMED_GPU_TFLOPS:g} TFLOP/s the same "
             f"work, {total['checkpoints']} checkpoints × the benchmark's {_set_sizes(cost)}, is "
             f"{_duration(total['gpu_hours_projected'] * 3600)}; no GPU has measured it yet."]
    if templates not in (None, "ensemble") and "prompts" in cost.columns:
        lines.append(f"The default, each dataset's prompt ensemble (`prompt_templates=ensemble`), multiplies the "
                     f"{_prompt_counts(cost)} these figures encode by its number of templates.")
    return lines


def _prompt_counts(cost: pd.DataFrame) -> str:
    """The prompts each step measured, "16 Geirhos cue-conflict, … and 1,000 MIT1003 prompts"."""
    counts = [f"{prompts:,.0f} {display_name(dataset)}" for dataset, prompts in zip(cost["dataset"], cost["prompts"])
              if prompts]
    if not counts:
        return "prompts"
    return (", ".join(counts[:-1]) + " and " if len(counts) > 1 else "") + f"{counts[-1]} prompts"


def _set_sizes(cost: pd.DataFrame) -> str:
    """The benchmark's sets as measured, "30 TID2013, … and 4 MIT1003 images": the work the figures are of."""
    sizes = [f"{images:g} {display_name(dataset)}" for dataset, images in zip(cost["dataset"], cost["images"])]
    return (", ".join(sizes[:-1]) + " and " if len(sizes) > 1 else "") + f"{sizes[-1]} images"


def _duration(seconds: float) -> str:
    """Seconds under two minutes as seconds, else minutes (a projection of 2 s is not "0.0 minutes")."""
    if seconds < 120:
        return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} minutes"


def early_rule(epochs) -> str:
    """The early window of the peak claims on a trajectory's own checkpoints (``metrics.peak.early_window``)."""
    import numpy as np

    from ...metrics.peak import EARLY_FRACTION, early_window

    epochs = np.asarray(sorted(epochs), dtype=float)
    early = epochs[early_window(epochs)]
    shown = f"epochs {early[0]:g}–{early[-1]:g}" if len(early) > 1 else (f"epoch {early[0]:g}" if len(early) else "none")
    span = f"{epochs[0]:g}–{epochs[-1]:g}" if len(epochs) > 1 else f"the one checkpoint, epoch {epochs[0]:g}"
    return (f"\"early\" is every checkpoint after epoch 0 up to {EARLY_FRACTION:.3g} of the last epoch, defined "
            f"from the checkpoints the source has (no untrained one is needed): here {shown} of {span}")
