# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 5. The trade-off: does alignment fall as robustness rises?
#
# The paper's claim, in four parts: during training (1) alignment with human quality judgments
# peaks early and then declines; (2) texture bias falls; (3) the accuracy drop under Gaussian
# noise shrinks; (4) these move together — a trade-off between low-level perceptual alignment and
# robustness. This notebook lines up the three analyses per checkpoint and tests each part on the
# data of this run. Every verdict below is computed; none is typed.
#
# Given several runs (`run_dirs`, as `clipalign run --seeds … --scales …` passes them), the seeds of
# one model scale are treated as replicates: every curve is the mean over seeds with a 95 % Student-t
# interval over seeds, one colour per scale, and each claim is judged per scale on those mean curves,
# next to the fraction of seeds whose own run reproduces it.

# %%
# On Colab, install the package first (elsewhere this does nothing).
import subprocess
import sys

if "google.colab" in sys.modules:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q",
                    "git+https://github.com/clipalign/clipalign"], check=True)

# %% tags=["parameters"]
run_dir = "runs/default"
preset = "default"
seed = None  # None: the preset's value, for this and every parameter below
distance = None  # which IQA distance to synthesise, if iqa.csv holds several
n_perm = None  # permutations for the p-values
alignment_weight = None  # checkpoint selection: weight of alignment vs robustness, in [0, 1]
run_dirs = None  # several runs to synthesise, comma-separated (None: run_dir alone); outputs go to run_dir

# %%
from pathlib import Path

from IPython.display import display

from clipalign_utils import config, results
from clipalign_utils.io import write_table
from clipalign_utils.metrics import tradeoff
from clipalign_utils.plots.common import save_figure
from clipalign_utils.plots.tradeoff import (alignment_robustness_plane, plane_by_scale, relation_panels,
                                             relation_panels_by_scale, summary_figure, summary_figure_by_scale)

params = config.resolve(preset, seed=seed, distance=distance, n_perm=n_perm, alignment_weight=alignment_weight)
run_dir = Path(run_dir)
run_dirs = results.parse_run_dirs(run_dirs, run_dir)
several = len(run_dirs) > 1
columns = ["checkpoint", "epoch", "iqa_srcc", "shape_bias", "clean_accuracy", "noise_drop"]
if several:
    table = results.checkpoint_tables(run_dirs, params["distance"])
    means = tradeoff.seed_means(table)  # per scale x epoch: mean and t-interval over seeds
    noise_means = tradeoff.seed_means(results.noise_curves_of(run_dirs), {"accuracy": ("lo", "hi")},
                                      by=("scale", "sigma", "epoch"))
    display(table.groupby(["scale", "seed"], sort=False).size().rename("checkpoints").reset_index())
    display(means[["scale", "n_seeds"] + columns[1:]].round(3))
else:
    table = results.checkpoint_table(run_dir, params["distance"])
    noise = results.noise_curves(run_dir)
    display(table[columns].round(3))

# %% [markdown]
# ## All four measures against training time
# The layout of the paper's Fig. 1: accuracy clean and under noise; alignment with quality
# judgments; texture bias; the normalized accuracy drop under noise. The epoch axis is
# logarithmic past the first checkpoint, because the first pass over the data is where the
# fast changes happen.

# %%
fig = summary_figure_by_scale(means, noise_means) if several else summary_figure(table, noise)
save_figure(fig, run_dir, "tradeoff_summary")

# %% [markdown]
# ## Does IQA alignment rise and then fall?
# We call a curve *peaked* when its maximum lies strictly inside the run (neither the untrained
# model nor the last checkpoint) and the bootstrap interval at the peak lies entirely above the
# one at the last checkpoint. With several runs: the seed-mean curve of each scale, and the
# interval over seeds.

# %%
curves = dict(list(means.groupby("scale", sort=False))) if several else {"": table}
for scale, curve in curves.items():
    peak = tradeoff.rises_then_falls(curve["epoch"], curve["iqa_srcc"], curve["iqa_srcc_lo"], curve["iqa_srcc_hi"])
    print(f"{scale + ': ' if scale else ''}"
          f"IQA alignment peaks at epoch {peak['peak_epoch']:g} with SRCC {peak['peak_value']:.3f}; "
          f"the last checkpoint (epoch {peak['final_epoch']:g}) has {peak['final_value']:.3f}.")
    print(f"peak strictly inside the run: {peak['peak_is_interior']}; "
          f"peak CI above the last checkpoint's CI: {peak['ci_separated']}")

# %% [markdown]
# ## How the measures relate across checkpoints
# Spearman's rank correlation across checkpoints for each pair, with a two-sided permutation
# p-value (checkpoints of one run are not independent samples, so read p as descriptive).

# %%
if several:  # per scale, across the epochs of its seed-mean curve
    relations = tradeoff.relations_by_scale(table, n_perm=params["n_perm"], seed=params["seed"])
    display(relations.round(4))
    fig = relation_panels_by_scale(means, relations)
else:
    relations = tradeoff.pairwise_relations(table, n_perm=params["n_perm"], seed=params["seed"])
    display(relations.round(4))
    fig = relation_panels(table, relations)
save_figure(fig, run_dir, "tradeoff_relations")

# %% [markdown]
# ## The alignment–robustness plane
# Each checkpoint is a point: alignment with quality judgments against robustness
# (1 − normalized drop). The Pareto front holds the checkpoints that no other checkpoint beats
# on both. `alignment_weight` picks one checkpoint by a weighted sum of the two, each min–max
# scaled over the run.

# %%
if several:  # one plane per scale, on its seed-mean curve
    plane = tradeoff.synthesis_table(means, params["alignment_weight"], by="scale")
    selected = {row.scale: label for label, row in plane[plane["selected"]].iterrows()}
    fig = plane_by_scale(means, plane["on_pareto_front"].to_numpy(), selected)
    save_figure(fig, run_dir, "tradeoff_plane")
    for scale, rows in plane.groupby("scale", sort=False):
        choice = rows[rows["selected"]]
        choice = (f"{choice['checkpoint'].iloc[0]} (epoch {choice['epoch'].iloc[0]:g})" if len(choice)
                  else "none (no checkpoint has a noise drop: all at chance)")
        print(f"{scale}: Pareto front: {', '.join(rows.loc[rows['on_pareto_front'], 'checkpoint']) or 'empty'}; "
              f"selected with alignment_weight={params['alignment_weight']}: {choice}")
else:
    plane = tradeoff.synthesis_table(table, params["alignment_weight"])
    chosen = plane.index[plane["selected"]]
    selected = chosen[0] if len(chosen) else None
    fig = alignment_robustness_plane(table, plane["on_pareto_front"].to_numpy(), selected)
    save_figure(fig, run_dir, "tradeoff_plane")
    print(f"Pareto front: {', '.join(plane.loc[plane['on_pareto_front'], 'checkpoint']) or 'empty'}")
    print(f"selected with alignment_weight={params['alignment_weight']}: " +
          (f"{table.loc[selected, 'checkpoint']} (epoch {table.loc[selected, 'epoch']:g})" if selected is not None
           else "none (no checkpoint has a noise drop: all at chance)"))

# %% [markdown]
# ## Verdicts on the paper's claims
# *reproduced*, *not reproduced* or *inconclusive*, each with the statistic it rests on. With
# several runs, one verdict per scale on its seed-mean curve; `seeds_reproduced` is the fraction of
# that scale's seeds whose own run reproduces the claim.

# %%
if several:
    verdicts = tradeoff.verdicts_by_scale(table, n_perm=params["n_perm"], seed=params["seed"])
else:
    verdicts = tradeoff.verdicts(table, n_perm=params["n_perm"], seed=params["seed"])
display(verdicts)

# %%
# Each run's checkpoints with its own Pareto front, selection and peak (several runs: scale and seed columns).
synthesis = tradeoff.synthesis_table(table, params["alignment_weight"])
write_table(synthesis, run_dir, "tradeoff")
write_table(relations, run_dir, "tradeoff_relations")
write_table(verdicts, run_dir, "tradeoff_verdicts")
if several:
    write_table(means, run_dir, "tradeoff_seed_means")
for _, row in verdicts.iterrows():
    scale = f"[{row['scale']}, {row['seeds_reproduced']:.0%} of seeds reproduce] " if several else ""
    print(f"{scale}{row['claim']}: {row['verdict']} "
          f"({row['statistic']} = {row['value']:.3f}, p = {row['p_value']:.3g})")
