"""Page 10 in a build that holds no real trajectory (the page's ``placeholder``): what the chapter shows,
the one command, and what it costs (read from the measured benchmark, nothing computed here)."""
from __future__ import annotations

from .cost import FIG1_EPOCHS, FIG1_RUN, command, cost_sentences, early_rule, measured_templates, read_cost


def text(folder=None) -> str:
    cost = read_cost()
    table = "" if cost is None else "\n" + cost[["step", "dataset", "images", "seconds", "images_per_s"]].round(
        2).to_markdown(index=False) + "\n"
    return f"""# 10. The study on real CLIP trajectories

The embedded world answers the paper's question for a small model on procedurally generated
images. The question itself is about CLIP trained on web data, and public trajectories exist: LAION's
scaling-laws release keeps every epoch of 29 open_clip runs (Hugging Face `laion/scaling-laws-openclip`,
`full_checkpoints/<run name>/epoch_<N>.pt`; an epoch there is a fixed number of samples). This build
holds no such run, so this chapter has no results.

The paper's Fig. 1 on ViT-B-32 trained on LAION-400M for 13 B samples (`{FIG1_RUN}`, {FIG1_EPOCHS}
epochs), every checkpoint fetched, measured by every step and deleted in turn:

```bash
{command(templates=measured_templates(cost))}
```

Then `clipalign book runs/default` shows the run's analysis here. The run has no untrained checkpoint:
in the peak claims, {early_rule(range(1, FIG1_EPOCHS + 1))}. Plots mark epochs and samples seen.
{table}
{chr(10).join(cost_sentences(cost))}

On Colab, `notebooks/10_real_clip.py` runs a few epochs of it on the runtime's GPU
(`checkpoints`, `at_epochs` and `device` are its parameters).
"""
