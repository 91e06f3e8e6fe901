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
import importlib.util, sys  # noqa: E401
if "google.colab" in sys.modules and importlib.util.find_spec("clipalign_utils") is None:
    # %pip install -q "clipalign @ git+https://github.com/clipalign/clipalign@v0.1.0"

# %% tags=["parameters"]
run_dir = "runs/default"
preset = "default"  # "default" (the book's run) or "smoke" (seconds; for tests)
seed = None  # None: the preset's value, for this and every parameter below
model = None  # scale name (tiny, small, vit-tiny) or an open_clip model name
device = None  # auto | cpu | cuda
epochs = None
samples_per_epoch = None
batch_size = None
lr = None
warmup = None
weight_decay = None
texture_correlation = None
texture_scale = None
image_size = None
fresh_data = None  # True: new pairs every epoch; False: a fixed set repeated
early_checkpoints = None  # fractions of the first epoch at which to save
quality_variation = None  # fraction of training images degraded (noise, blur, JPEG, …); 0: all clean
quality_families = None  # distortion families drawn from, e.g. "gaussian_blur,jpeg_compression"; None: all 8

# %%
from pathlib import Path

import numpy as np
import pandas as pd
from IPython.display import display

from clipalign_utils import checkpoints, config, train
from clipalign_utils.prose import say
from clipalign_utils.data import world
from clipalign_utils.plots.common import save_figure
from clipalign_utils.plots.training import loss_curve
from clipalign_utils.plots.world import image_grid

params = config.resolve_notebook(globals())  # the parameters cell's values; None = the preset's
run_dir = Path(run_dir)

# %% [markdown]
# ## The data
# A sample of training pairs (title: caption's class / texture family). About
# `texture_correlation` of them wear their class's canonical texture.

# %%
world_config = world.WorldConfig(params["image_size"], params["texture_correlation"], params["texture_scale"],
                                 quality_variation=params["quality_variation"],
                                 quality_families=params["quality_families"])
sample = world.make_pairs(32, params["seed"], world_config)
fig = image_grid(sample.images, [f"{world.SHAPES[s]}/{world.TEXTURES[t]}"
                                 for s, t in zip(sample.shape_labels, sample.texture_labels)])
save_figure(fig, run_dir, "world_training_pairs")

# %%
canonical = world.make_pairs(2000, params["seed"], world_config)
say(f"fraction of training images with their class's canonical texture: "
      f"{(canonical.shape_labels == canonical.texture_labels).mean():.3f} "
      f"(texture_correlation = {params['texture_correlation']})")

# %% [markdown]
# ## Quality variation
# Web photos vary in noise, blur, compression, exposure and colour, and their captions never say so.
# With `quality_variation` > 0, that fraction of the training images is degraded by one distortion
# family drawn uniformly from `quality_families` (the embedded IQA families), at a level drawn
# uniformly from 1–5; the caption is unchanged. Held-out and evaluation images stay clean.

# %%
if params["quality_variation"] > 0:
    first_epoch = 1 if params["fresh_data"] else 0  # the data epoch training draws first
    drawn = [world.training_degradation(i, params["seed"], first_epoch, world_config)
             for i in range(params["samples_per_epoch"])]
    degraded = [i for i, d in enumerate(drawn) if d is not None]
    by_family = pd.Series([drawn[i][0] for i in degraded]).value_counts()
    say(f"{len(degraded)} of {len(drawn)} training images per epoch are degraded "
          f"(quality_variation = {params['quality_variation']}; "
          f"{'new draws every epoch' if params['fresh_data'] else 'the same images every epoch'}); by family: "
          + ", ".join(f"{family} {count}" for family, count in by_family.items()))
    shown = degraded[:12]
    images = np.stack([world.make_pair(i, params["seed"], world_config, epoch=first_epoch)[0] for i in shown])
    fig = image_grid(images, [f"{drawn[i][0]}\nlevel {drawn[i][1]}" for i in shown], columns=6, scale=1.6)
    save_figure(fig, run_dir, "world_degraded_pairs")
else:
    say("quality_variation = 0: every training image is clean")

# %% [markdown]
# ## Training
# open_clip's `ClipLoss` with AdamW and open_clip_train's warm-up + cosine schedule. Re-running
# this notebook on a run directory that holds an interrupted run resumes from its last checkpoint.

# %%
saved = train.train(run_dir, params)
run = checkpoints.discover_run(run_dir)
checkpoint_table = pd.DataFrame({"checkpoint": [c.name for c in run.checkpoints],
                                 "epoch": [c.epoch for c in run.checkpoints]})
say(f"{len(run.checkpoints)} checkpoints of {run.model_name} in {run_dir / 'checkpoints'}")
display(checkpoint_table)

# %%
log = pd.read_csv(run_dir / "train_log.csv")
fig = loss_curve(log, checkpoint_table["epoch"])
save_figure(fig, run_dir, "training_loss")
say(f"loss: first step {log['loss'].iloc[0]:.3f}, last step {log['loss'].iloc[-1]:.3f}")
