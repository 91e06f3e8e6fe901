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
# # 3. Shape or texture? Cue conflict over training
#
# A *cue-conflict* image carries two cues that point to different classes: the silhouette of one
# class filled with the texture of another — a star wearing the dots that usually cover triangles,
# or (in Geirhos et al.'s stimuli) a cat's outline rendered in elephant skin. Asking a model to
# name such an image reveals which cue it trusts. ImageNet CNNs mostly answer with the texture;
# people answer with the shape.
#
# We ask every checkpoint of the run, by zero-shot classification (open_clip's zero-shot
# classifier: the image embedding against the mean embedding of prompts such as "a photo of a
# {class}."), and count its decisions on the images whose two cues differ. On Geirhos's stimuli the
# classification is *direct 16-way zero-shot* over the 16 class names (with CLIP's 80 ImageNet
# prompt templates), not model-vs-human's mapping of 1000 ImageNet logits onto 16 classes, which
# needs an ImageNet classifier head a CLIP model does not have:
#
# - a **shape hit**: the predicted class is the shape's class;
# - a **texture hit**: the predicted class is the texture's class;
# - **neither**: any other class.
#
# The **shape bias** is the share of shape hits among the cue decisions, as model-vs-human
# computes it (Geirhos et al., ICLR 2019):
#
# $$\text{shape bias} = \frac{\text{shape hits}}{\text{shape hits} + \text{texture hits}}$$
#
# It ignores the "neither" decisions, so we report the three fractions (of all conflicting images)
# beside it; a 95 % percentile-bootstrap interval resamples images. A shape bias of 1 means "always
# the shape when it picks a cue", 0 "always the texture", 0.5 no preference.
#
# The question for training dynamics: does a CLIP trained from scratch go through a texture phase
# before it learns shape, as texture is the easier shortcut in its data?

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
model = None  # only for runs without params.txt: the model's scale or open_clip name
device = None  # auto | cpu | cuda
eval_batch_size = None
cue_conflict_dataset = None  # embedded | geirhos
cue_conflict_root = None  # geirhos: the cue-conflict/ folder (one folder per class) or its parent
cue_conflict_per_pair = None  # embedded: images per ordered (shape, texture) pair
image_size = None  # embedded world
texture_correlation = None
texture_scale = None
prompt_templates = None  # ensemble | single | templates separated by "|"
n_boot = None

# %%
from pathlib import Path

import numpy as np
from IPython.display import display

from clipalign_utils import checkpoints, config, multirun
from clipalign_utils.data.cue_conflict import HUMAN_SHAPE_BIAS, HUMAN_SHAPE_BIAS_SOURCE, load_cue_conflict
from clipalign_utils.data.prompts import resolve_templates
from clipalign_utils.io import write_table
from clipalign_utils.prose import say
from clipalign_utils.metrics.shape_bias import texture_then_shape
from clipalign_utils.plots.common import save_figure
from clipalign_utils.plots.shape_bias import (cue_conflict_examples, decision_fractions, decision_titles,
                                              per_class_panel, shape_bias_curve)
from clipalign_utils.steps import shape as shape_step

params = config.resolve_notebook(globals())  # the parameters cell's values; None = the preset's
run_dir = multirun.analyse_every_run(Path(run_dir), "shape", params)  # several runs: all analysed, the first shown
run = checkpoints.discover_or_train(run_dir, params, auto_train, model)  # trains first if run_dir has none
cue = load_cue_conflict(params["cue_conflict_dataset"], params["cue_conflict_root"], params,
                        image_size=run.image_size)
templates = resolve_templates(params["prompt_templates"], cue.name)
say(f"{len(run.checkpoints)} checkpoints of {run.model_name}; dataset {cue.name}: {len(cue)} images, "
      f"{cue.n_conflicting} with conflicting cues, {len(cue.classnames)} classes, {len(templates)} prompt templates")

# %% [markdown]
# ## Classifying every checkpoint
# Each checkpoint classifies the same images among the dataset's classes. Images whose shape and
# texture agree (Geirhos' set has a few) stay in the set but the formula drops them, so `n_images`
# counts conflicting images only.

# %%
measured = shape_step.measure(run, cue, templates, params, cache_dir=run_dir / "cache")
shape_bias, shape_bias_per_class, predictions = measured.shape_bias, measured.per_class, measured.predictions
write_table(shape_bias, run_dir, "shape_bias")
write_table(shape_bias_per_class, run_dir, "shape_bias_per_class")
display(shape_bias.drop(columns=["model", "n_templates"]).round(3))

# %% [markdown]
# ## Shape bias over training
# The band is the bootstrap interval. The dashed red line is the human reference: a literature
# value, the mean shape bias of the ten observers in model-vs-human's raw cue-conflict data
# (Geirhos et al. 2019). It is not computed here, and it was measured on Geirhos' stimuli — on the
# embedded world it marks "as shape-driven as people are on photographs", not a human measurement
# of these images.

# %%
human_label = ("humans, Geirhos et al. 2019" if cue.name == "geirhos"
               else "humans on Geirhos' stimuli (not this world)")
fig = shape_bias_curve(shape_bias, HUMAN_SHAPE_BIAS, human_label, log_x=True)
save_figure(fig, run_dir, "shape_bias_vs_epoch")
say(f"human reference: {HUMAN_SHAPE_BIAS:g} — literature value ({HUMAN_SHAPE_BIAS_SOURCE}), not computed here")

# %%
# The texture phase is the lowest shape bias before the last checkpoint; the shift shows when it
# leans to texture, the last checkpoint leans to shape, and their intervals do not overlap.
shift = texture_then_shape(shape_bias)
first, early, last = shift["first"], shift["texture_phase"], shift["last"]
say(f"first checkpoint (epoch {first['epoch']:g}): shape bias {first['shape_bias']:.3f}")
say(f"lowest before the end: epoch {early['epoch']:g}, shape bias {early['shape_bias']:.3f} "
      f"[{early['lo']:.3f}, {early['hi']:.3f}]")
say(f"last checkpoint (epoch {last['epoch']:g}): shape bias {last['shape_bias']:.3f} "
      f"[{last['lo']:.3f}, {last['hi']:.3f}]")
say(f"texture phase (lowest < 0.5): {shift['texture_phase_leans_texture']}; shape at the end (last > 0.5): "
      f"{shift['last_leans_shape']}; intervals separated: {shift['separated']}")
say(f"texture-then-shape shift shows: {'yes' if shift['shift_shows'] else 'no'}")
say(f"last checkpoint vs the human reference: {last['shape_bias'] - HUMAN_SHAPE_BIAS:+.3f}")

# %% [markdown]
# ## Shape, texture, or neither
# The shape bias hides how many decisions follow neither cue. An untrained model guesses, so most
# of its answers are "neither"; what matters is which cue the first learned answers follow.

# %%
fig = decision_fractions(shape_bias, log_x=True)
save_figure(fig, run_dir, "shape_bias_fractions")
for _, row in shape_bias.loc[list(dict.fromkeys([first.name, early.name, last.name]))].iterrows():
    say(f"epoch {row['epoch']:g}: shape {row['shape_fraction']:.3f}, texture {row['texture_fraction']:.3f}, "
          f"neither {row['neither_fraction']:.3f}")

# %% [markdown]
# ## Per class
# In the manner of model-vs-human's shape-bias plot: one row per shape class, its shape bias on the
# horizontal axis (left: texture, right: shape), for the texture-phase checkpoint and the last one;
# vertical lines mark each checkpoint's overall shape bias and the human reference.

# %%
panel_checkpoints = list(dict.fromkeys([early["checkpoint"], last["checkpoint"]]))
panel_labels = [f"epoch {shape_bias.set_index('checkpoint').loc[c, 'epoch']:g}" for c in panel_checkpoints]
fig = per_class_panel(shape_bias_per_class, shape_bias, panel_checkpoints, panel_labels,
                      HUMAN_SHAPE_BIAS, human_label)
save_figure(fig, run_dir, "shape_bias_per_class")
final_classes = shape_bias_per_class[shape_bias_per_class["checkpoint"] == last["checkpoint"]]
say(f"last checkpoint: classes with shape bias > 0.5: {(final_classes['shape_bias'] > 0.5).sum()} "
      f"of {final_classes['shape_bias'].notna().sum()} with cue decisions")

# %% [markdown]
# ## Examples
# Each title names the image's shape·texture and then the decisions of the texture-phase checkpoint
# and the last one (a texture hit shows the texture's name, a shape hit the shape's class, a class in
# parentheses matches neither cue). The images are evenly spaced through the set, not picked.

# %%
conflicting = np.flatnonzero(cue.shape_labels != cue.texture_labels)
picked = conflicting[np.unique(np.linspace(0, len(conflicting) - 1, 12).round().astype(int))]
titles = decision_titles(cue.shape_labels[picked], cue.texture_labels[picked],
                         [predictions[early["checkpoint"]][picked], predictions[last["checkpoint"]][picked]],
                         cue.classnames, cue.texture_names)
fig = cue_conflict_examples(cue.example_images(picked), titles,
                            suptitle=f"shape·texture → epoch {early['epoch']:g} | epoch {last['epoch']:g}")
save_figure(fig, run_dir, "cue_conflict_examples")
agree = (predictions[early["checkpoint"]] == predictions[last["checkpoint"]])[conflicting].mean()
say(f"the two checkpoints give the same answer on {agree:.0%} of the conflicting images")
