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
# robustness. This notebook lines up every analysis step's measure per checkpoint (quality alignment,
# shape bias, noise drop, and the second version's 2AFC score and saliency sAUC) and tests each part on the
# data of this run. Every verdict below is computed; none is typed.
#
# What this page reads is said below its first cell (the default build: several seeds of the default world).
# Given several runs (`run_dirs`, as `clipalign run` passes them, or a `run_dir` folder holding them), the seeds of
# one model scale are treated as replicates: every curve is the mean over seeds with a 95 % Student-t
# interval over seeds, one colour per scale, and each claim is judged per scale over its seeds (by the
# interval over seeds of each seed's own statistic: its trend, its held-out early peak, its correlation net
# of time), next to the fraction of seeds whose own run reproduces it.
#
# **How each part is tested.** (1) "Early" means after the untrained model and within the first
# third of the run; the IQA step's paired bootstrap over reference images gives an interval for
# (best early SRCC − final SRCC), recomputing the early maximum in every resample (over several
# seeds: each seed's difference at the early checkpoint where the other seeds' mean peaks, so that no
# seed picks its own luckiest checkpoint, averaged with its t interval over seeds). (2), (3) rest on
# Spearman's ρ between epoch and the measure (one run: its interval resamples the step's images at
# every checkpoint alike, so it speaks for that run's course; over several seeds: each seed's own ρ,
# averaged with its t interval over seeds, since one run's checkpoints are one trajectory, not
# exchangeable samples), leaving out the checkpoints whose classifier is at chance on that measure's
# own images: for texture bias, the cue-conflict decisions
# (`shape_at_chance`: no more of them for a cue than guessing gives), for the noise drop, the clean
# zero-shot accuracy (`at_chance`); at chance both describe noise. (2) asks whether texture bias falls, not
# whether shape comes to dominate (shape bias above 0.5): page 3's texture-then-shape shift answers that, run
# by run. Over seeds, each seed's trend leaves out its own checkpoints at chance, and on the mean curves
# an epoch is at chance when most seeds are; the table's `n_above_chance` counts the seeds its mean drop rests on and
# `n_shape_above_chance` those its mean shape bias rests on. (3b)
# repeats (3) with the chance-corrected drop, which has no ceiling that moves with clean accuracy.
# (4) must hold *net of time*: any two curves that trend with training correlate across checkpoints,
# so we use the partial Spearman correlation given log training time and the correlation of
# checkpoint-to-checkpoint changes (over several seeds: each seed's own, the partial correlation judged on
# its t interval over seeds). (5), (6) are judged as (1) is, through the same paired test: the
# similarity step resamples triplets and the saliency step images, and each gives an interval for
# (best early score − final score). The
# p-values treat checkpoints as independent, which a time series is not: read them as descriptive (over
# several seeds the verdicts rest on intervals over the seeds instead).

# %% tags=["hide-input"]
# On Colab: install the package at this notebook's release (elsewhere, or once installed, nothing).
import importlib.util, subprocess, sys  # noqa: E401
if "google.colab" in sys.modules and importlib.util.find_spec("clipalign_utils") is None:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "clipalign @ git+https://github.com/clipalign/clipalign@v0.1.0"], check=True)

# %% tags=["parameters"]
run_dir = "runs/default"
preset = None  # None: the folder's own (recorded), else "default"
auto_train = True  # run_dir lacks the run or its tables (opened alone, e.g. in Colab): train and run its analysis steps first
run_dirs = None  # runs to synthesise, comma-separated (None: run_dir, or the runs inside it); outputs go to run_dir
seed = None  # the training seed; None: the run's record, else the preset (so for every parameter below)
eval_seed = None  # the seed of the evaluation sets and of the bootstrap and permutation draws
distance = None  # which IQA distance to synthesise, if iqa.csv holds several
alignment_weight = None  # checkpoint selection: weight of alignment vs robustness, in [0, 1]
n_perm = None  # permutations for the p-values

# %%
from IPython.display import display

from clipalign_utils import results
from clipalign_utils.io import write_tables
from clipalign_utils.plots.common import save_figure
from clipalign_utils.prose import say
from clipalign_utils.orchestration.step_page import open_runs
from clipalign_utils.steps.tradeoff import analysis as tradeoff_step, page as tradeoff_page

run_dirs, params = open_runs(globals())  # trains the run and runs its analyses first if missing (opened alone)
say(results.runs_read_sentence(run_dirs))  # a streamed trajectory, one run or several seeds
table = tradeoff_step.load(run_dirs, params)  # one row per run x checkpoint
tables = tradeoff_step.measure(run_dirs, params, table)
means = tables["tradeoff_seed_means"]  # per scale x epoch: mean and t-interval over seeds
display(tradeoff_step.runs_overview(table))
display(tradeoff_step.means_view(means).round(3))

# %% [markdown]
# ## Every measure against training time
# The layout of the paper's Fig. 1: accuracy clean and under noise; alignment with quality
# judgments; texture bias; the normalized accuracy drop under noise; then, when the run has them, the
# 2AFC similarity score and the saliency shuffled AUC, with their bands (one run: bootstrap intervals; several
# seeds: 95 % t intervals over the seeds, as each panel's subtitle says). The epoch axis is
# logarithmic past the first checkpoint, because the first pass over the data is where the
# fast changes happen.

# %%
save_figure(tradeoff_page.summary(means, run_dirs), run_dir, "tradeoff_summary")

# %% [markdown]
# ## Do the alignment curves rise and then fall?
# Where each curve peaks, and whether its maximum lies strictly inside the run: IQA alignment, and the
# 2AFC score and saliency sAUC when the run has them. The verdicts below rest on each step's paired
# early-peak test (see the IQA page), not on comparing these unpaired bands. With several runs: the seed-mean curve of each scale, and the interval over seeds.

# %%
say(tradeoff_page.peak_sentences(means))

# %% [markdown]
# ## How the measures relate across checkpoints
# Spearman's rank correlation across checkpoints for each pair, with a two-sided permutation
# p-value, then the same relation net of time: `partial_spearman` given log training time (with its
# t-test p) and `diff_spearman`, the correlation of checkpoint-to-checkpoint changes. Checkpoints of
# one run are not independent samples, so read every p here as descriptive.

# %%
display(tables["tradeoff_relations"].round(4))
save_figure(tradeoff_page.relations_figure(means, tables["tradeoff_relations"]), run_dir, "tradeoff_relations")

# %% [markdown]
# ## The alignment–robustness plane
# Each checkpoint is a point: alignment with quality judgments against robustness
# (1 − normalized drop). The Pareto front holds the checkpoints that no other checkpoint matches or
# beats on both while beating on one. `alignment_weight` picks one checkpoint by a weighted sum of
# the two, each min–max scaled over the run. Checkpoints at chance take no part in either (hollow, or
# counted in the legend when no drop is defined to place them by): a model that classifies nothing loses nothing to noise,
# and its drop of 0 would put it on the front.

# %%
plane = tradeoff_step.plane(means, params)  # one plane per scale
save_figure(tradeoff_page.plane_figure(means, plane), run_dir, "tradeoff_plane")
say(tradeoff_page.plane_sentences(plane, params))

# %% [markdown]
# ## Verdicts on the paper's claims
# *reproduced*, *not reproduced* or *inconclusive*, each with the statistic it rests on (and its
# interval where it has one): one verdict per scale over its seeds, as described above (one run: its own curve);
# `seeds_reproduced` is the fraction of that scale's seeds whose own run reproduces the claim,
# `seeds_agree` the fraction whose own verdict is the one shown, and `seed_verdicts` each seed's own
# verdict; the list under the table says where the seeds differ.

# %%
say(results.evaluation_sentence(run_dirs))
display(tradeoff_page.verdict_table(tables["tradeoff_verdicts"]))

# %%
write_tables(tables, run_dir)
say(tradeoff_page.verdict_text(tables["tradeoff_verdicts"]))
