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

# %%
from pathlib import Path

import pandas as pd
from IPython.display import display

from clipalign_utils import config, results
from clipalign_utils.io import write_table
from clipalign_utils.metrics import tradeoff
from clipalign_utils.plots.common import save_figure
from clipalign_utils.plots.tradeoff import alignment_robustness_plane, relation_panels, summary_figure

params = config.resolve(preset, seed=seed, distance=distance, n_perm=n_perm, alignment_weight=alignment_weight)
run_dir = Path(run_dir)
table = results.checkpoint_table(run_dir, params["distance"])
noise = results.noise_curves(run_dir)
columns = ["checkpoint", "epoch", "iqa_srcc", "shape_bias", "clean_accuracy", "noise_drop"]
display(table[columns].round(3))

# %% [markdown]
# ## All four measures against training time
# The layout of the paper's Fig. 1: accuracy clean and under noise; alignment with quality
# judgments; texture bias; the normalized accuracy drop under noise. The epoch axis is
# logarithmic past the first checkpoint, because the first pass over the data is where the
# fast changes happen.

# %%
fig = summary_figure(table, noise)
save_figure(fig, run_dir, "tradeoff_summary")

# %% [markdown]
# ## Does IQA alignment rise and then fall?
# We call a curve *peaked* when its maximum lies strictly inside the run (neither the untrained
# model nor the last checkpoint) and the bootstrap interval at the peak lies entirely above the
# one at the last checkpoint.

# %%
peak = tradeoff.rises_then_falls(table["epoch"], table["iqa_srcc"], table["iqa_srcc_lo"], table["iqa_srcc_hi"])
print(f"IQA alignment peaks at epoch {peak['peak_epoch']:g} with SRCC {peak['peak_value']:.3f}; "
      f"the last checkpoint (epoch {peak['final_epoch']:g}) has {peak['final_value']:.3f}.")
print(f"peak strictly inside the run: {peak['peak_is_interior']}; "
      f"peak CI above the last checkpoint's CI: {peak['ci_separated']}")

# %% [markdown]
# ## How the measures relate across checkpoints
# Spearman's rank correlation across checkpoints for each pair, with a two-sided permutation
# p-value (checkpoints of one run are not independent samples, so read p as descriptive).

# %%
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
on_front = tradeoff.pareto_front(table["iqa_srcc"], 1 - table["noise_drop"])
selected = tradeoff.select_checkpoint(table, params["alignment_weight"])
fig = alignment_robustness_plane(table, on_front, selected)
save_figure(fig, run_dir, "tradeoff_plane")
print(f"Pareto front: {', '.join(table.loc[on_front, 'checkpoint'])}")
print(f"selected with alignment_weight={params['alignment_weight']}: {table.loc[selected, 'checkpoint']} "
      f"(epoch {table.loc[selected, 'epoch']:g})")

# %% [markdown]
# ## Verdicts on the paper's claims
# *reproduced*, *not reproduced* or *inconclusive*, each with the statistic it rests on.

# %%
verdicts = tradeoff.verdicts(table, n_perm=params["n_perm"], seed=params["seed"])
display(verdicts)

# %%
synthesis = table.assign(texture_bias=1 - table["shape_bias"], robustness=1 - table["noise_drop"],
                         on_pareto_front=on_front, selected=table.index == selected,
                         iqa_peak_epoch=peak["peak_epoch"], iqa_peak_is_interior=peak["peak_is_interior"],
                         iqa_peak_ci_separated=peak["ci_separated"])
write_table(synthesis, run_dir, "tradeoff")
write_table(relations, run_dir, "tradeoff_relations")
write_table(verdicts, run_dir, "tradeoff_verdicts")
for _, row in verdicts.iterrows():
    print(f"{row['claim']}: {row['verdict']} ({row['statistic']} = {row['value']:.3f}, p = {row['p_value']:.3g})")
