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
# # 11. Weight interpolation: a knob on the trade-off?
#
# The synthesis can only *pick* a checkpoint on the alignment–robustness plane. Weight-space
# interpolation between two checkpoints of one run, θ(α) = (1 − α)·θ_from + α·θ_to, is a cheap,
# training-free knob: WiSE-FT (Wortsman et al. 2022) used it between a zero-shot and a fine-tuned
# model to keep the robustness of one and the accuracy of the other. Here it runs from the checkpoint
# where IQA alignment peaks to the last one, and the question is whether some α beats **both**
# endpoints on **both** axes: higher IQA SRCC and a lower normalized noise drop than either.
#
# Each θ(α) is measured exactly as the checkpoints are, by the IQA, shape and noise steps' own
# measurements (same evaluation sets, distance, bootstrap). With `bn_statistics=interpolate`, and for a
# model without BatchNorm, α = 0 and α = 1 are therefore the endpoint checkpoints' own rows of `iqa.csv`,
# `shape_bias.csv` and `noise.csv`; with the default re-estimation the ends are re-estimated too, so
# every α is compared on the same footing, and they can differ from those rows (the page says by how much).
#
# **Only floating-point tensors are interpolated**; integer buffers (BatchNorm's batch counts) are
# the α = 1 checkpoint's (`interpolation_to`). **BatchNorm**: the running statistics of an interpolated
# network are not the statistics of its own activations (the SWA observation), so by default
# (`bn_statistics=reestimate`) they are re-estimated on the run's first `bn_batches` training batches;
# `interpolate` keeps the interpolated statistics, to show whether it matters. A model without BatchNorm
# (the ViTs) is the same either way.
#
# This step is optional: `clipalign run --out RUN --only interpolation` runs it on one run, and on a
# folder of seeds (`clipalign run --out runs/default --only interpolation`) this page measures every
# run and answers the question over seeds, with 95 % t intervals.

# %% tags=["hide-input"]
# On Colab: install the package at this notebook's release (elsewhere, or once installed, nothing).
import importlib.util, subprocess, sys  # noqa: E401
if "google.colab" in sys.modules and importlib.util.find_spec("clipalign_utils") is None:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "clipalign @ git+https://github.com/clipalign/clipalign@v0.1.0"], check=True)

# %% tags=["parameters"]
run_dir = "runs/default"  # one run, or a folder of runs (seeds): every run is measured
preset = None  # None: the run's own (recorded), else "default"; "smoke": seconds, for tests
auto_train = True  # run_dir holds no checkpoints (opened alone, e.g. in Colab): train the preset's run there first
seed = None  # the training seed; None: the run's record, else the preset (so for every parameter below)
eval_seed = None  # the seed of the evaluation sets and of the bootstrap draws
model = None  # only for runs without params.txt (e.g. ViT-B-32); else read from the run
device = None  # auto | cpu | cuda
eval_batch_size = None
distance = None  # cosine | euclidean | normalized_euclidean; None: the one the IQA step last ran with
n_boot = None  # bootstrap resamples for the intervals of one run
interpolation_from = None  # peak (the checkpoint of highest IQA SRCC) or a checkpoint's name (epoch_0.75)
interpolation_to = None  # last or a checkpoint's name
alphas = None  # α between 0 and 1 (0 and 1 are always added)
bn_statistics = None  # reestimate | interpolate: BatchNorm running statistics of the models between
bn_batches = None  # training batches of the run's world for the re-estimation

# %%
from IPython.display import display

from clipalign_utils.io import write_table, write_tables
from clipalign_utils.layout import runs_in
from clipalign_utils.orchestration.step_page import open_run
from clipalign_utils.plots.common import save_figure
from clipalign_utils.plots.interpolation import interpolation_plane, measures_vs_alpha
from clipalign_utils.prose import say
from clipalign_utils.steps.interpolation import analysis as interpolation_step, page as interpolation_page

folder_runs = runs_in(run_dir)  # a folder of seeds: all measured, the first shown, then all together
run, params = open_run(globals(), "interpolation")

# %% [markdown]
# ## One run: the line between two checkpoints
# Every α's model measured by the three steps. With BatchNorm statistics re-estimated (the default for a
# model with BatchNorm) every α is re-estimated alike, the ends included; otherwise the ends are the run's
# own checkpoint files, their rows those of the steps' tables.

# %%
tables = interpolation_step.measure(run, params)
write_tables(tables, run.run_dir)
table = tables["interpolation"]
say(interpolation_page.endpoint_sentences(table, params))
display(table)

# %% [markdown]
# In the alignment–robustness plane (robustness = 1 − normalized noise drop, as on the synthesis'
# page), the interpolation path (red, α labelled) beside the path the checkpoints took in training
# (coloured by epoch), each model where it has a drop: one at chance on the noise set has none, so no
# place on the robustness axis, and the legend counts those left out. Then each measure against α: a
# shape bias or drop at chance is a hollow point left out of the trend, and a panel says where its
# measure is undefined.

# %%
path = interpolation_step.checkpoint_path(run.run_dir, params["distance"])
save_figure(interpolation_plane(path, table, f"{run.run_dir.name}: θ(α) and the checkpoints"), run.run_dir,
            "interpolation_plane")
save_figure(measures_vs_alpha(table, run.run_dir.name), run.run_dir, "interpolation_measures")
say(interpolation_page.ends_sentences(table, path) + interpolation_page.run_sentences(table))

# %% [markdown]
# ## Over seeds: does some α beat both endpoints?
# For each run and interior α, the *alignment margin* is α's IQA SRCC minus the better endpoint's,
# and the *robustness margin* is the better endpoint's normalized drop minus α's: both positive means
# α beats both endpoints on both axes in that run. Below, their means over runs with 95 % t intervals;
# α beats both when both intervals lie above 0. (A single run has no interval: this section needs
# `run_dir` to be a folder of two seeds or more; with two, the t interval is wide.)

# %%
if folder_runs:
    together = interpolation_step.over_runs(folder_runs, params["distance"])
    write_table(together.seeds, run_dir, "interpolation_seeds")
    display(together.seeds.round(4))
    save_figure(interpolation_plane(together.path, together.seeds, f"mean over {len(folder_runs)} runs",
                                    with_intervals=True), run_dir, "interpolation_plane_seeds")
    say(interpolation_page.seed_sentences(together.verdicts))
else:
    say(f"`{run_dir}` is one run: pass a folder of seeds as run_dir for the verdict over seeds")
