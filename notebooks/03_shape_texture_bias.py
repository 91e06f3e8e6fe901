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
# classification is by default (`shape_classifier=direct`) *direct 16-way zero-shot* over the 16
# class names, with the prompt templates `prompt_templates` names: by default CLIP's ImageNet
# ensemble (`single` keeps its first template; the page's first lines say how many it used).
# model-vs-human's own CLIP wrapper instead
# builds a 1000-class ImageNet zero-shot head and averages its class probabilities into the 16
# categories, so its published CLIP shape biases come from another classifier and need not match
# these; `shape_classifier=imagenet` makes the decisions its way instead (the page says which):
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
# beside it; a 95 % percentile-bootstrap interval resamples images (on Geirhos' stimuli, which reuse
# each object and each texture image, it resamples both kinds of source image). A shape bias of 1 means "always
# the shape when it picks a cue", 0 "always the texture", 0.5 no preference. A model that guesses
# (or answers one class whatever it sees) also scores about 0.5, so a checkpoint whose share of cue
# decisions is not above what guessing gives (two classes of the dataset's, its bootstrap interval
# reaching that share: `shape_at_chance`) is shown but left out of the shift and of the synthesis' trend.
#
# The question for training dynamics: does a CLIP trained from scratch go through a texture phase
# before it learns shape, as texture is the easier shortcut in its data?

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
model = None  # only for runs without params.txt: the model's scale or open_clip name
device = None  # auto | cpu | cuda
eval_batch_size = None
image_size = None  # embedded world
texture_correlation = None
texture_scale = None
object_placement = None  # varied | centred: where objects sit (as the world was trained)
n_boot = None
cue_conflict_dataset = None  # embedded | geirhos
cue_conflict_root = None  # geirhos: the cue-conflict/ folder (one folder per class) or its parent
cue_conflict_per_pair = None  # embedded: images per ordered (shape, texture) pair
prompt_templates = None  # ensemble | single | templates separated by "|"
shape_classifier = None  # direct (the 16 class names) | imagenet (geirhos: model-vs-human's ImageNet head)

# %%
from IPython.display import display

from clipalign_utils.orchestration.step_page import open_run
from clipalign_utils.io import write_tables
from clipalign_utils.prose import say
from clipalign_utils.plots.common import save_figure
from clipalign_utils.plots.shape_bias import decision_fractions
from clipalign_utils.steps.shape import analysis as shape_step, page as shape_page

run, params = open_run(globals(), "shape")  # several runs: all analysed, the first shown; trains first if none
data = shape_step.load(run, params)  # the cue-conflict images and the prompt templates
say(shape_page.data_sentences(run, data, params))

# %% [markdown]
# ## Classifying every checkpoint
# Each checkpoint classifies the same images among the dataset's classes. Images whose shape and
# texture agree (Geirhos' set has a few) stay in the set but the formula drops them, so `n_images`
# counts conflicting images only.

# %%
tables = shape_step.measure(run, params, data)
write_tables(tables, run.run_dir)
display(shape_page.shown_table(tables["shape_bias"]))
say(shape_page.chance_sentences(tables["shape_bias"]))

# %% [markdown]
# ## Shape bias over training
# The band is the bootstrap interval of the checkpoints above chance; those at chance on the cue-conflict
# images are hollow points off the line (no band where every one is). The dashed red line is the human
# reference: a literature value, the mean shape bias of the ten observers in model-vs-human's raw
# cue-conflict data (Geirhos et al. 2019). It is not computed here, and it was measured on Geirhos' stimuli —
# on the embedded world it marks "as shape-driven as people are on photographs", not a human measurement
# of these images.

# %%
save_figure(shape_page.curve_figure(data, tables), run.run_dir, "shape_bias_vs_epoch")
say(shape_page.reference_sentences())

# %%
# The texture phase is the lowest shape bias before the last checkpoint, both above chance; the shift
# shows when it leans to texture, the last checkpoint leans to shape, and their intervals do not overlap.
# The trend is Spearman's ρ of epoch and texture bias; its interval resamples the images at every
# checkpoint alike, so it speaks for this run's course (training's own noise needs seeds).
say(shape_page.shift_sentences(tables["shape_bias"]))
say(shape_page.trend_sentences(data, tables["shape_trend"]))

# %% [markdown]
# ## Shape, texture, or neither
# The shape bias hides how many decisions follow neither cue. An untrained model guesses, so most
# of its answers are "neither"; what matters is which cue the first learned answers follow.

# %%
save_figure(decision_fractions(tables["shape_bias"], log_x=True), run.run_dir, "shape_bias_fractions")
say(shape_page.fraction_sentences(tables["shape_bias"]))

# %% [markdown]
# ## Per class
# In the manner of model-vs-human's shape-bias plot: one row per shape class, its shape bias on the
# horizontal axis (left: texture, right: shape), for two checkpoints: the texture-phase checkpoint and the
# last one, or the first and the last when every checkpoint is at chance (no texture phase to show);
# vertical lines mark each checkpoint's overall shape bias and the human reference.

# %%
save_figure(shape_page.per_class_figure(data, tables), run.run_dir, "shape_bias_per_class")
say(shape_page.per_class_sentences(tables))

# %% [markdown]
# ## Examples
# Each title names the image's shape·texture and then the decisions of the two checkpoints above (the
# texture-phase checkpoint and the last one, or the first and the last when every checkpoint is at chance;
# a texture hit shows the texture's name, a shape hit the shape's class, a class in parentheses matches
# neither cue). The images are evenly spaced through the set, not picked.

# %%
save_figure(shape_page.examples_figure(data, tables), run.run_dir, "cue_conflict_examples")
say(shape_page.agreement_sentences(data, tables))
