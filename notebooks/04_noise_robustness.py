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
# **Its ceiling.** Noise can at worst send a model to chance, so the normalized drop can never
# exceed 1 − chance / acc_clean: a weak checkpoint is bounded low by construction, and a curve of
# normalized drops can fall merely because clean accuracy falls. Beside it we report the
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
# The noise is drawn once per σ from a fixed seed, so every checkpoint sees identical noisy
# images; each image set is encoded once per checkpoint (and cached), and the zero-shot
# classifier built from the class prompts is reused across noise levels.

# %% tags=["hide-input"]
# On Colab: install the package at this notebook's release (elsewhere, or once installed, nothing).
import importlib.util, sys  # noqa: E401
if "google.colab" in sys.modules and importlib.util.find_spec("clipalign_utils") is None:
    # %pip install -q "clipalign @ git+https://github.com/clipalign/clipalign@v0.1.0"

# %% tags=["parameters"]
run_dir = "runs/default"
preset = "default"  # "default" (the book's run) or "smoke" (seconds; for tests)
auto_train = True  # run_dir holds no checkpoints (opened alone, e.g. in Colab): train the preset's run there first
seed = None  # None: the preset's value, for this and every parameter below
model = None  # only for runs without params.txt (e.g. ViT-B-32); else read from the run
device = None  # auto | cpu | cuda
eval_batch_size = None
n_boot = None  # bootstrap resamples for the accuracy CIs
n_perm = None  # permutations for the trend test
noise_dataset = None  # embedded | cifar100
noise_root = None  # cifar100: the cifar-100-python folder (holding test and meta) or its parent
test_per_class = None  # images per class (cifar100: a seeded balanced subset; from 100 on, all 10,000)
sigmas = None  # noise standard deviations on [0, 1] pixels; 0 (clean) is always added
noise_seed = None
noise_at = None  # native | input: add the noise before or after resizing to the model's input
prompt_templates = None  # ensemble | single | "a photo of a {}.|..."
image_size = None  # embedded world: as trained
texture_correlation = None
texture_scale = None

# %%
from pathlib import Path

from IPython.display import display

from clipalign_utils import checkpoints, config, multirun
from clipalign_utils.data.noise import load_noise_dataset, noisy_image_sets
from clipalign_utils.data.prompts import resolve_templates
from clipalign_utils.io import write_table
from clipalign_utils.prose import say
from clipalign_utils.metrics.noise import drop_trend
from clipalign_utils.plots.common import save_figure
from clipalign_utils.plots.noise import accuracy_vs_epoch, drop_vs_epoch, noise_examples
from clipalign_utils.steps import noise as noise_step

params = config.resolve_notebook(globals())  # the parameters cell's values; None = the preset's
run_dir = multirun.analyse_every_run(Path(run_dir), "noise", params)  # several runs: all analysed, the first shown
run = checkpoints.discover_or_train(run_dir, params, auto_train, model)  # trains first if run_dir has none

# %% [markdown]
# ## The images
# `embedded`: held-out images of the shape–texture world, balanced over the shape classes and
# labelled by shape. `cifar100`: the CIFAR-100 test split, a seeded class-balanced subset of
# `test_per_class` images per class (all of it from 100 per class on), classified among all 100
# fine classes. Each row below is one image at every noise level.

# %%
data = load_noise_dataset(params["noise_dataset"], params["noise_root"], params)
image_sets = noisy_image_sets(data, params["sigmas"], params["noise_seed"], params["noise_at"], run.image_size)
templates = resolve_templates(params["prompt_templates"], params["noise_dataset"])
chance = 1 / len(data.classnames)
say(f"{len(data)} images of {len(data.classnames)} classes from {data.name}; chance = {chance:.3f}")
say(f"noise levels σ: {', '.join(f'{s:g}' for s in image_sets)}; {len(templates)} prompt template(s)")

n_examples = min(4, len(data))
fig = noise_examples({sigma: images.images[:n_examples] for sigma, images in image_sets.items()},
                     [data.classnames[label] for label in data.labels[:n_examples]])
save_figure(fig, run_dir, "noise_examples")

# %% [markdown]
# ## Zero-shot accuracy at every checkpoint and noise level
# Accuracy with a percentile bootstrap CI over images; the normalized drop of each level is
# relative to the same checkpoint's clean accuracy.

# %%
noise, summary = noise_step.measure(run, data, image_sets, templates, params, cache_dir=run_dir / "cache")
write_table(noise, run_dir, "noise")
write_table(summary, run_dir, "noise_summary")
display(summary)

# %%
fig = accuracy_vs_epoch(noise, chance)
save_figure(fig, run_dir, "noise_accuracy")

# %%
fig = drop_vs_epoch(noise, summary)
save_figure(fig, run_dir, "noise_normalized_drop")

# %% [markdown]
# ## Does the drop shrink with training?
# Only checkpoints above chance count. We compare the mean normalized drop of the earlier and
# the later half of those checkpoints, and test the trend with Spearman's ρ between epoch and
# mean drop (two-sided permutation p-value); then the same for the chance-corrected drop.

# %%
first, last = summary.iloc[0], summary.iloc[-1]
say(f"clean accuracy: {first['clean_accuracy']:.3f} at epoch {first['epoch']:g} → "
      f"{last['clean_accuracy']:.3f} at epoch {last['epoch']:g} (chance {chance:.3f})")
flagged = summary[summary["clean_at_chance"]]
if len(flagged):
    say(f"{len(flagged)} of {len(summary)} checkpoint(s) at chance on clean images (drop meaningless, "
          f"excluded below): epochs {', '.join(f'{e:g}' for e in flagged['epoch'])}")
else:
    say("every checkpoint is above chance on clean images")

trend = drop_trend(summary, n_perm=params["n_perm"], seed=params["seed"])
if trend["n"] >= 2:
    say(f"mean normalized drop, earlier half of them (epochs {', '.join(f'{e:g}' for e in trend['early_epochs'])}): "
          f"{trend['early_drop']:.3f}; later half (epochs {', '.join(f'{e:g}' for e in trend['late_epochs'])}): "
          f"{trend['late_drop']:.3f}")
if trend["direction"] == "undetermined":
    say(f"too few checkpoints above chance ({trend['n']}) to tell whether the drop shrinks with training")
else:
    leaning = "shrinks" if trend["rho"] < 0 else "grows"
    verdict = (f"{trend['direction']} with training" if trend["direction"] != "flat"
               else f"shows no significant trend (it leans towards: {leaning})")
    say(f"over {trend['n']} checkpoints above chance the mean normalized drop {verdict}: "
          f"Spearman ρ(epoch, drop) = {trend['rho']:.2f}, permutation p = {trend['p_value']:.3f}")
corrected = drop_trend(summary, n_perm=params["n_perm"], seed=params["seed"], column="mean_chance_corrected_drop")
if corrected["direction"] != "undetermined":
    say(f"chance-corrected drop: {corrected['early_drop']:.3f} (earlier half) → {corrected['late_drop']:.3f} "
          f"(later half); Spearman ρ(epoch, drop) = {corrected['rho']:.2f}, permutation p = "
          f"{corrected['p_value']:.3f} ({corrected['direction']})")
