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
# # 4. Robustness to Gaussian noise across training
#
# Does a CLIP model become more robust to image noise as it trains? For every checkpoint we
# classify the same held-out images zero-shot — clean, and with additive Gaussian noise of
# standard deviation σ on pixels in [0, 1] — and measure how much accuracy the noise costs.
#
# **Why the normalized drop.** Raw accuracy under noise mixes two things: how good the model is
# and how much of that it keeps under noise: a weak checkpoint cannot lose as many points as a
# strong one. Following the paper, we report the *normalized drop*
# (acc_clean − acc_noisy) / acc_clean: the fraction of the model's clean competence lost to
# noise, comparable between checkpoints of different clean accuracy. 0 means noise costs
# nothing, 1 means the model falls to zero. The paper's claim is that this drop shrinks as
# training proceeds.
#
# **Its ceiling.** Noise that leaves a model guessing sends it to chance, where the normalized drop
# is 1 − chance / acc_clean (it passes that only where noise makes the model worse than a guess): a
# weak checkpoint's drop is bounded low by construction, and a curve of normalized drops can fall
# merely because clean accuracy falls. Beside it we report the
# *chance-corrected drop* (acc_clean − acc_noisy) / (acc_clean − chance): the share of the
# above-chance competence that noise takes away, which reaches 1 at chance for every checkpoint.
#
# **Where the noise goes.** `noise_at=native` (default) adds the noise to the image at its own size;
# the encoder then resizes it to the model's input. `noise_at=input` resizes first and adds the
# noise there, so σ is what the model sees. The two coincide when the images already have the
# input's size (the embedded world, and CIFAR-100 for a 32 px model).
#
# **When the drop means nothing.** A checkpoint that is at chance on clean images has no
# competence to lose: its drop is a ratio of noise to noise. We flag every checkpoint whose
# clean accuracy is not above chance (its bootstrap CI reaches 1/number of classes) and leave
# those out of the trend.
#
# The noise is drawn once per σ from a seed derived from `eval_seed`, so every checkpoint (and
# every run of a multi-run folder) sees identical noisy images; each image set is encoded once per checkpoint (and cached), and the zero-shot
# classifier built from the class prompts is reused across noise levels.

# %% tags=["hide-input"]
# On Colab: install the package at this notebook's release (elsewhere, or once installed, nothing).
import importlib.util, subprocess, sys  # noqa: E401
if "google.colab" in sys.modules and importlib.util.find_spec("clipalign_utils") is None:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "clipalign @ git+https://github.com/clipalign/clipalign@v0.1.0"], check=True)

# %% tags=["parameters"]
run_dir = "runs/default"
preset = None  # None: the run's own (recorded), else "default"; "smoke": seconds, for tests
auto_train = True  # run_dir holds no checkpoints (opened alone, e.g. in Colab): train the preset's run there first
seed = None  # the training seed; None: the run's record, else the preset (so for every parameter below)
eval_seed = None  # the seed of the evaluation sets and of the bootstrap and permutation draws
model = None  # only for runs without params.txt (e.g. ViT-B-32); else read from the run
device = None  # auto | cpu | cuda
eval_batch_size = None
image_size = None  # embedded world: as trained
texture_correlation = None
texture_scale = None
object_placement = None  # varied | centred: where objects sit (as the world was trained)
n_boot = None  # bootstrap resamples for the accuracy CIs and the trends' intervals
noise_dataset = None  # embedded | cifar100
noise_root = None  # cifar100: the cifar-100-python folder (holding test and meta) or its parent
test_per_class = None  # images per class (cifar100: a seeded balanced subset; from 100 on, all 10,000)
sigmas = None  # noise standard deviations on [0, 1] pixels; 0 (clean) is always added
noise_at = None  # native | input: add the noise before or after resizing to the model's input
prompt_templates = None  # ensemble | single | "a photo of a {}.|..."

# %%
from IPython.display import display

from clipalign_utils.orchestration.step_page import open_run
from clipalign_utils.io import write_tables
from clipalign_utils.prose import say
from clipalign_utils.plots.common import save_figure
from clipalign_utils.plots.noise import accuracy_vs_epoch, drop_vs_epoch
from clipalign_utils.steps.noise import analysis as noise_step, page as noise_page

run, params = open_run(globals(), "noise")  # several runs: all analysed, the first shown; trains first if none

# %% [markdown]
# ## The images
# `embedded`: held-out images of the shape–texture world, balanced over the shape classes and
# labelled by shape. `cifar100`: the CIFAR-100 test split, a seeded class-balanced subset of
# `test_per_class` images per class (all of it from 100 per class on), classified among all 100
# fine classes. Each row below is one image at every noise level.

# %%
data = noise_step.load(run, params)  # the clean set, its noisy copies and the prompt templates
say(noise_page.data_sentences(data))
save_figure(noise_page.examples_figure(data), run.run_dir, "noise_examples")

# %% [markdown]
# ## Zero-shot accuracy at every checkpoint and noise level
# Accuracy with a percentile bootstrap CI over images; the normalized drop of each level is
# relative to the same checkpoint's clean accuracy. The drop's interval is paired: each bootstrap
# replicate draws the images once and takes the clean and noisy accuracies on that one draw (the noisy
# images are copies of the clean ones), so the two move together as they do in the drop.

# %%
tables = noise_step.measure(run, params, data)
write_tables(tables, run.run_dir)
display(tables["noise_summary"])

# %%
save_figure(accuracy_vs_epoch(tables["noise"], data.chance), run.run_dir, "noise_accuracy")

# %%
save_figure(drop_vs_epoch(tables["noise"], tables["noise_summary"]), run.run_dir, "noise_normalized_drop")

# %% [markdown]
# ## Does the drop shrink with training?
# Only checkpoints above chance count. We compare the mean normalized drop of the earlier and
# the later half of those checkpoints, and measure the trend by Spearman's ρ between epoch and
# mean drop. Its 95% interval resamples the test images, the same resample at every checkpoint,
# so it speaks for this run's course, not for training in general (that needs seeds: the
# synthesis' page); then the same for the chance-corrected drop.

# %%
say(noise_page.clean_sentences(tables["noise_summary"]))
say(noise_page.trend_sentences(tables["noise_summary"], tables["noise_trend"]))
