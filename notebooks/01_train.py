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
# # 1. Training CLIP on the shape–texture world
#
# We train a small open_clip CLIP from random initialisation on image–caption pairs of the
# embedded *shape–texture world* and save checkpoints densely early in training — the untrained
# model, several points inside the first pass over the data, then every epoch — because the
# paper's effects (an early peak of perceptual alignment, a texture-to-shape shift) live there.
#
# Captions name only the object ("a photo of a star."). Each shape class has a canonical texture
# that it wears with probability `texture_correlation`: texture is a shortcut that usually works,
# shape the cue that always works.

# %% tags=["hide-input"]
# On Colab: install the package at this notebook's release (elsewhere, or once installed, nothing).
import importlib.util, subprocess, sys  # noqa: E401
if "google.colab" in sys.modules and importlib.util.find_spec("clipalign_utils") is None:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "clipalign @ git+https://github.com/clipalign/clipalign@v0.1.0"], check=True)

# %% tags=["parameters"]
run_dir = "runs/default"
preset = None  # None: the run's own (recorded), else "default"; "smoke": seconds, for tests
seed = None  # None: the preset's value, for this and every parameter below
model = None  # scale name (tiny, small, vit-tiny) or an open_clip model name
device = None  # auto | cpu | cuda
batch_size = None
image_size = None
texture_correlation = None
texture_scale = None
object_placement = None  # varied | centred: objects anywhere at varied sizes, or near the centre
quality_variation = None  # fraction of training images degraded (noise, blur, JPEG, …); 0: all clean
quality_families = None  # distortion families drawn from, e.g. "gaussian_blur,jpeg_compression"; None: all 8
epochs = None
samples_per_epoch = None
lr = None
weight_decay = None
warmup = None
fresh_data = None  # True: new pairs every epoch; False: a fixed set repeated
early_checkpoints = None  # fractions of the first epoch at which to save

# %%
from IPython.display import display

from clipalign_utils import checkpoints, train
from clipalign_utils.plots.common import save_figure
from clipalign_utils.prose import say
from clipalign_utils.orchestration.step_page import open_training
from clipalign_utils.steps.train import page as training

params = open_training(globals())  # the parameters cell's values; None = the run's record, else the preset's

# %% [markdown]
# ## The data
# A sample of training pairs (title: caption's class / texture family). About
# `texture_correlation` of them wear their class's canonical texture.

# %%
save_figure(training.world_sample_figure(params), run_dir, "world_training_pairs")

# %%
say(training.canonical_texture_sentence(params))

# %% [markdown]
# ## Quality variation
# Web photos vary in noise, blur, compression, exposure and colour, and their captions never say so.
# With `quality_variation` > 0, that fraction of the training images is degraded by one distortion
# family drawn uniformly from `quality_families` (the embedded IQA families), at a level drawn
# uniformly from 1–5; the caption is unchanged. Held-out and evaluation images stay clean.

# %%
degraded = training.degradations(params)
say(training.quality_variation_sentences(params, degraded))
if not degraded.empty:
    save_figure(training.degraded_figure(params, degraded), run_dir, "world_degraded_pairs")

# %% [markdown]
# ## Training
# open_clip's `ClipLoss` with AdamW and open_clip_train's warm-up + cosine schedule. Re-running
# this notebook on a run directory that holds an interrupted run resumes from its last checkpoint.

# %%
train.train(run_dir, params)
run = checkpoints.discover_run(run_dir)
say(training.checkpoints_sentence(run))
say(training.early_checkpoints_sentences(params))
say(training.threads_sentences(run))
display(training.checkpoint_table(run))

# %%
save_figure(training.loss_figure(run), run_dir, "training_loss")
say(training.loss_sentence(run))
