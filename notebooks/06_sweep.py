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
# # 6. What drives the trade-off?
#
# The paper observes how alignment, texture bias and noise robustness move during training; the
# embedded world lets us change their suspected causes and watch. This notebook compares the runs
# of one sweep (`clipalign sweep`), each an ordinary run of every analysis step with some parameters
# changed, and asks:
#
# 1. Does a stronger texture–label correlation make the early texture phase stronger, and the
#    peak of IQA alignment earlier or higher?
# 2. Does noise robustness follow shape bias across settings?
# 3. Which settings, if any, show the paper's picture — alignment peaking early then declining,
#    texture bias falling, the noise drop shrinking?
#
# Every number and verdict below is computed from the runs; the sentences under each table are
# printed by the code, not typed. With a handful of settings, "increases" means "moves one way at
# every step of the setting's value", a description rather than a test.

# %% tags=["hide-input"]
# On Colab: install the package at this notebook's release (elsewhere, or once installed, nothing).
import importlib.util, subprocess, sys  # noqa: E401
if "google.colab" in sys.modules and importlib.util.find_spec("clipalign_utils") is None:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "clipalign @ git+https://github.com/clipalign/clipalign@v0.1.0"], check=True)

# %% tags=["parameters"]
run_dir = "runs/sweep"  # the sweep directory (clipalign sweep --out); outputs go here
preset = None  # None: the folder's own (recorded), else "default"
run_dirs = None  # runs to compare, comma-separated (None: those listed in run_dir/sweep.json)
eval_seed = None  # the seed of the permutation draws; None: the preset's value, as for every parameter below
distance = None  # which IQA distance to compare, if iqa.csv holds several
n_perm = None  # permutations for the p-values

# %%
from IPython.display import display

from clipalign_utils import results
from clipalign_utils.io import write_tables
from clipalign_utils.plots.common import save_figure
from clipalign_utils.prose import say
from clipalign_utils.orchestration.step_page import open_sweep
from clipalign_utils.steps.sweep import analysis as sweep_step, page as sweep_page

runs, params = open_sweep(globals())
data = sweep_step.load(runs, params)
tables = sweep_step.measure(runs, params, data)
say(sweep_page.intro_sentence(runs, data))
display(data["settings"])
say(results.evaluation_sentence(runs))

# %% [markdown]
# ## Every synthesis curve, per setting
# The layout of the paper's Fig. 1 (notebook 5), one colour per setting; panel (a) shows clean
# accuracy only (each setting's noisy curves are on its own page 4). Seeds of one setting are
# replicates: a curve is their mean and the band a 95 % t-interval over them (with one seed, the
# run's own bootstrap interval where it has one).

# %%
save_figure(sweep_page.curves_figure(data), run_dir, "sweep_curves")

# %% [markdown]
# ## The paper's claims, per setting
# The verdicts of notebook 5 (*reproduced*, *not reproduced*, *inconclusive*), judged over each
# setting's seeds as notebook 5 judges a scale's (by the interval over seeds of each seed's own statistic;
# a setting of one seed, by its own run).

# %%
verdicts = tables["sweep_verdicts"]
display(sweep_step.verdict_grid(verdicts, data))

# %% tags=["scroll-output"]
# every verdict with its statistic and detail (the book shows the long table in a scrolling box)
shown = ["setting", "claim", "statistic", "value", "ci_lo", "ci_hi", "p_value", "verdict", "detail"]
display(verdicts[shown].round(4))

# %% [markdown]
# ## What each setting's curves show
# Per setting: the strongest texture bias inside the first epoch (the texture phase), the texture
# bias at the end, the height and epoch of the IQA-alignment peak and how much is lost after it,
# the normalized noise drop at the first checkpoint above chance and at the last, and the trend of
# the noise drop over training (Spearman over checkpoints, permutation p).

# %%
display(tables["sweep_summary"].round(3))

# %% [markdown]
# ## How the measures move with each factor
# For each swept parameter, the settings that change it alone (the others at the preset's value).

# %%
fig = sweep_page.factor_figure(tables, data)
if fig is not None:
    display(tables["sweep_effects"].round(3))
    save_figure(fig, run_dir, "sweep_factors")
else:
    say("no parameter is varied alone in this sweep: compare the settings in the tables above")

# %% [markdown]
# ## 1. Texture–label correlation: a stronger texture phase, an earlier or higher IQA peak?

# %%
say(sweep_page.texture_correlation_sentences(tables["sweep_effects"]))

# %% [markdown]
# ## 2. Does noise robustness follow shape bias across settings?
# If shape-based recognition were what makes a model robust to noise, the settings (and checkpoints)
# with more shape bias would lose less accuracy under noise: a negative relation between shape bias
# and the normalized drop.

# %%
save_figure(sweep_page.shape_noise_figure(data), run_dir, "sweep_shape_vs_noise")
say(sweep_page.shape_noise_sentences(tables, data, params))

# %% [markdown]
# ## 3. Which settings show the paper's picture?

# %%
say(sweep_page.claims_sentences(verdicts, data))

# %%
say("tables: " + ", ".join(map(str, write_tables(tables, run_dir))))
