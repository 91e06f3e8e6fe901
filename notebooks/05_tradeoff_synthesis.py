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
# The book's own run is three seeds of the default world. Given several runs (`run_dirs`, as
# `clipalign run` passes them, or a `run_dir` folder holding them), the seeds of
# one model scale are treated as replicates: every curve is the mean over seeds with a 95 % Student-t
# interval over seeds, one colour per scale, and each claim is judged per scale on those mean curves,
# next to the fraction of seeds whose own run reproduces it.
#
# **How each part is tested.** (1) "Early" means after the untrained model and within the first
# third of the run; the IQA step's paired bootstrap over reference images gives an interval for
# (best early SRCC − final SRCC), recomputing the early maximum in every resample. (2), (3) are
# permutation tests of Spearman's ρ between epoch and the measure, leaving out the checkpoints whose
# clean zero-shot accuracy is at chance (their texture bias and noise drop describe noise). (3b)
# repeats (3) with the chance-corrected drop, which has no ceiling that moves with clean accuracy.
# (4) must hold *net of time*: any two curves that trend with training correlate across checkpoints,
# so we use the partial Spearman correlation given log training time and the correlation of
# checkpoint-to-checkpoint changes. (5), (6) have no paired test: reproduced when the 2AFC score's
# (saliency CC's) maximum lies in the early window and its bootstrap interval lies above the final
# checkpoint's; not reproduced when the maximum is the last checkpoint; otherwise inconclusive. The
# p-values treat checkpoints as independent, which a time series is not: read them as descriptive.

# %% tags=["hide-input"]
# On Colab: install the package at this notebook's release (elsewhere, or once installed, nothing).
import importlib.util, sys  # noqa: E401
if "google.colab" in sys.modules and importlib.util.find_spec("clipalign_utils") is None:
    # %pip install -q "clipalign @ git+https://github.com/clipalign/clipalign@v0.1.0"

# %% tags=["parameters"]
run_dir = "runs/default"
preset = "default"
auto_train = True  # run_dir lacks the run or its tables (opened alone, e.g. in Colab): train and run its analysis steps first
seed = None  # None: the preset's value, for this and every parameter below
distance = None  # which IQA distance to synthesise, if iqa.csv holds several
n_perm = None  # permutations for the p-values
alignment_weight = None  # checkpoint selection: weight of alignment vs robustness, in [0, 1]
run_dirs = None  # runs to synthesise, comma-separated (None: run_dir, or the runs inside it); outputs go to run_dir

# %%
from pathlib import Path

import pandas as pd
from IPython.display import display

from clipalign_utils import config, pipeline, results
from clipalign_utils.io import write_table
from clipalign_utils.prose import say
from clipalign_utils.metrics import tradeoff
from clipalign_utils.plots.common import save_figure
from clipalign_utils.plots.tradeoff import alignment_robustness_plane, relation_panels, summary_figure

params = config.resolve_notebook(globals())  # the parameters cell's values; None = the preset's
run_dir = Path(run_dir)
run_dirs = results.parse_run_dirs(run_dirs, run_dir)
if len(run_dirs) == 1:  # trains the run and runs its analysis steps first if they are missing
    pipeline.ensure_run(run_dir, params, auto_train)
# One run is a group of one: every table and figure below is per scale, on the per-epoch seed means (a
# single seed keeps its own bootstrap intervals).
table = results.checkpoint_tables(run_dirs, params["distance"])
means = tradeoff.seed_means(table)  # per scale x epoch: mean and t-interval over seeds
noise_means = tradeoff.seed_means(results.noise_curves_of(run_dirs), {"accuracy": ("lo", "hi")},
                                  by=("scale", "sigma", "epoch"))
columns = ["epoch", "iqa_srcc", "shape_bias", "clean_accuracy", "noise_drop"]
columns += [c for c in ("two_afc_score", "saliency_cc") if c in table.columns]  # when the runs have them
display(table.groupby(["scale", "seed"], sort=False, dropna=False).size().rename("checkpoints").reset_index())
display(means[["scale", "n_seeds"] + columns].round(3))

# %% [markdown]
# ## Every measure against training time
# The layout of the paper's Fig. 1: accuracy clean and under noise; alignment with quality
# judgments; texture bias; the normalized accuracy drop under noise; then, when the run has them, the
# 2AFC similarity score and the saliency CC with their bootstrap bands. The epoch axis is
# logarithmic past the first checkpoint, because the first pass over the data is where the
# fast changes happen.

# %%
fig = summary_figure(means, noise_means, by="scale")
save_figure(fig, run_dir, "tradeoff_summary")

# %% [markdown]
# ## Do the alignment curves rise and then fall?
# Where each curve peaks, and whether its maximum lies strictly inside the run: IQA alignment, and the
# 2AFC score and saliency CC when the run has them. The IQA verdict below rests on the paired
# early-peak test (see the IQA page), not on comparing these unpaired bands; the other two have only
# these bands. With several runs: the seed-mean curve of each scale, and the interval over seeds.

# %%
several_scales = means["scale"].nunique() > 1
for scale, curve in means.groupby("scale", sort=False):
    for column, what in [("iqa_srcc", "IQA alignment (SRCC)"), ("two_afc_score", "2AFC similarity score"),
                         ("saliency_cc", "saliency CC")]:
        if column not in curve.columns or not curve[column].notna().any():
            continue
        peak = tradeoff.rises_then_falls(curve["epoch"], curve[column], curve[f"{column}_lo"], curve[f"{column}_hi"])
        say(
            f"{scale + ': ' if several_scales else ''}{what} peaks at epoch {peak['peak_epoch']:g} with "
            f"{peak['peak_value']:.3f}; the last checkpoint (epoch {peak['final_epoch']:g}) has "
            f"{peak['final_value']:.3f}. The peak lies strictly inside the run: **{peak['peak_is_interior']}**; "
            f"its interval lies above the last checkpoint's: **{peak['ci_separated']}**.")

# %% [markdown]
# ## How the measures relate across checkpoints
# Spearman's rank correlation across checkpoints for each pair, with a two-sided permutation
# p-value, then the same relation net of time: `partial_spearman` given log training time (with its
# t-test p) and `diff_spearman`, the correlation of checkpoint-to-checkpoint changes. Checkpoints of
# one run are not independent samples, so read every p here as descriptive.

# %%
relations = tradeoff.pairwise_relations(table, n_perm=params["n_perm"], seed=params["seed"], by="scale")
display(relations.round(4))
save_figure(relation_panels(means, relations, by="scale"), run_dir, "tradeoff_relations")

# %% [markdown]
# ## The alignment–robustness plane
# Each checkpoint is a point: alignment with quality judgments against robustness
# (1 − normalized drop). The Pareto front holds the checkpoints that no other checkpoint beats
# on both. `alignment_weight` picks one checkpoint by a weighted sum of the two, each min–max
# scaled over the run.

# %%
plane = tradeoff.synthesis_table(means, params["alignment_weight"], by="scale")  # one plane per scale
selected = {row.scale: label for label, row in plane[plane["selected"]].iterrows()}
save_figure(alignment_robustness_plane(means, plane["on_pareto_front"].to_numpy(), selected, by="scale"),
            run_dir, "tradeoff_plane")
for scale, rows in plane.groupby("scale", sort=False):
    choice = rows[rows["selected"]]
    choice = (f"{choice['checkpoint'].iloc[0]} (epoch {choice['epoch'].iloc[0]:g})" if len(choice)
              else "none (no checkpoint has a noise drop: all at chance)")
    say(f"{scale + ': ' if several_scales else ''}Pareto front: "
        f"{', '.join(rows.loc[rows['on_pareto_front'], 'checkpoint']) or 'empty'}; "
        f"selected with alignment_weight={params['alignment_weight']}: {choice}")

# %% [markdown]
# ## Verdicts on the paper's claims
# *reproduced*, *not reproduced* or *inconclusive*, each with the statistic it rests on (and its
# interval where it has one): one verdict per scale on its seed-mean curve (one run: its own curve);
# `seeds_reproduced` is the fraction of that scale's seeds whose own run reproduces the claim,
# `seeds_agree` the fraction whose own verdict is the one shown, and `seed_verdicts` each seed's own
# verdict; the list under the table says where the seeds differ.

# %%
verdicts = tradeoff.verdicts(table, n_perm=params["n_perm"], seed=params["seed"], by="scale")
display(verdicts)

# %%
# Each run's checkpoints with its own Pareto front, selection and peak (several runs: scale and seed columns).
synthesis = tradeoff.synthesis_table(table, params["alignment_weight"])
write_table(synthesis, run_dir, "tradeoff")
write_table(relations, run_dir, "tradeoff_relations")
write_table(verdicts, run_dir, "tradeoff_verdicts")
write_table(means, run_dir, "tradeoff_seed_means")
say("\n".join(results.verdict_sentences(verdicts)))
