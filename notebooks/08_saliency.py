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
# # 8. Does the model look where people look?
#
# Chapters 2 and 7 compare what the embedding *judges* with what people judge. This chapter compares
# where it *looks*. For every checkpoint we compute a saliency map of each image — which pixels move
# the model's answer — and score it against where people fixate, with the standard metrics of the MIT
# saliency benchmark (Bylinskii et al., 2019). The paper's second version reports that this
# attentional alignment, like perceptual alignment, peaks early in training and then declines; we ask
# whether our run shows it.
#
# **The model's map.** `saliency_method = smoothgrad` (default, any tower): the gradient of the cosine
# between the image embedding and the text embedding of the image's class ("a photo of a …"), averaged
# over a few noisy copies of the image (SmoothGrad; `saliency_samples` copies, noise
# `saliency_noise` of the input range). The class is the known one for the world's images and the
# model's own top-1 zero-shot class (over ImageNet's class names) for real photographs. The gradient of
# the embedding's norm alone would say what makes the embedding *large*, not what makes it mean the
# class, so it is not used. `rollout` (attention rollout, vision transformers only) is class-agnostic.
# Maps are resized onto the ground truth's grid.
#
# **Where people look.** Chosen by `saliency_dataset`:
#
# - `embedded` (the default, offline) — **synthetic ground truth**: nobody looked at these images. The
#   world's images come with their object's silhouette; the "fixation density" is that silhouette,
#   blurred and mixed with a weak centre prior, and the "fixations" are points drawn from it. Objects
#   sit anywhere in the frame at varied sizes (`object_placement=varied`, the training world's
#   placement too), so looking at the object and looking at the middle are different things. It stands for
#   the finding that objects predict fixations better than low-level saliency (Einhäuser et al., 2008),
#   so scoring against it asks *does the model look at the object?*, not whether it looks as people do.
# - `mit1003` (Judd et al., 2009) and `cat2000` (Borji & Itti, 2015): people's fixations on photographs,
#   official layouts, given with `saliency_root`.
#
# **Metrics.** CC (correlation with the density), NSS (mean normalised saliency at fixations), SIM
# (histogram intersection), KLD (divergence from the density; lower is better), AUC-Judd, AUC-Borji and
# shuffled AUC (fixations against non-fixated pixels, against pixels drawn anywhere, or against other
# images' fixations, which cancels the centre bias), as the MIT saliency benchmark's Matlab code computes
# them. Each is computed per image and averaged, with a 95 % bootstrap interval over images. A
# constant map has no CC or NSS (both divide by its spread): such images are left out of those means.
# **Baselines**, scored on the same images (rows in the table's checkpoint column): `centre_bias`, a
# centre Gaussian; on the world's images also `object_silhouette`, the object's own silhouette as the
# map (what a model that looks exactly at the object would score), and `shuffled_silhouette`, another
# image's silhouette (a control that should score near chance).
#
# **The headline measure is shuffled AUC.** Its negatives are other images' fixations, so a map that
# knows only where fixations fall on average (the centre) scores near chance, and only a map that finds
# *this* image's object scores above it. CC, NSS and SIM reward the centre prior whenever the ground
# truth has one; the verdict, the synthesis' saliency curve and its early-peak test all use sAUC.

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
image_size = None  # embedded: image size (as the world was trained)
texture_correlation = None  # embedded: world settings of the images
texture_scale = None
object_placement = None  # embedded: varied | centred (as the world was trained)
n_boot = None  # bootstrap resamples for the intervals
saliency_dataset = None  # embedded | mit1003 | cat2000
saliency_root = None  # mit1003: the folder holding ALLSTIMULI and ALLFIXATIONMAPS; cat2000: the one holding trainSet
saliency_method = None  # smoothgrad | rollout (vision transformers)
saliency_n_images = None  # embedded: images in the set; real sets: n stimuli (0: all; CAT2000's over its categories)
saliency_samples = None  # SmoothGrad: noisy copies per image
saliency_noise = None  # SmoothGrad: noise, a fraction of the input range
saliency_cue_per_pair = None  # cue-conflict images per (shape, texture) pair for the contour/interior view
prompt_templates = None  # ensemble | single | templates separated by '|'

# %%
from IPython.display import display

from clipalign_utils.orchestration.step_page import open_run
from clipalign_utils.io import write_tables
from clipalign_utils.prose import say
from clipalign_utils.plots.common import save_figure
from clipalign_utils.plots.saliency import metrics_vs_epoch, region_share_vs_epoch
from clipalign_utils.steps.saliency import analysis as saliency_step, page as saliency_page

run, params = open_run(globals(), "saliency")  # several runs: all analysed, the first shown; trains first if none
data = saliency_step.load(run, params)  # the scored images, the cue-conflict images, class names and prompts
say(saliency_page.data_sentences(run, params, data))

# %% [markdown]
# ## Scoring every checkpoint
# Each checkpoint's maps are computed once (cached with the run's embeddings), resized onto each
# image's ground truth and scored; the baselines are scored on the same images. The run's
# `metrics/saliency_per_image.csv` holds every image's scores per checkpoint, each image named by its
# index in the set (`image`) and, on MIT1003 and CAT2000, by its file below the release's stimuli folder
# (`file`, the last column: e.g. `Action/001.jpg` in CAT2000's `trainSet/Stimuli/`).

# %%
tables = saliency_step.measure(run, params, data)
write_tables(tables, run.run_dir, optional=saliency_step.OPTIONAL_TABLES)
display(saliency_step.score_table(tables))

# %% [markdown]
# ## Each metric over training
# The model's mean per checkpoint with its bootstrap band; the horizontal lines and bands are the
# baselines (centre bias dashed; on the embedded set also the object silhouette, dash-dotted, and the
# shuffled silhouette, dotted). For the
# AUCs the thin dotted line is chance (0.5). The first sentence places the checkpoints among the
# baselines on the headline sAUC (a checkpoint beats the centre bias when the bootstrap interval of
# their difference, image by image, lies above 0); the last ones are chapter 2's paired early-peak
# test on the mean sAUC (best early minus final, resampling images).

# %%
save_figure(metrics_vs_epoch(tables["saliency"]), run.run_dir, "saliency_metrics_vs_epoch")
say([saliency_page.baseline_sentence(tables, params)] + saliency_page.curve_sentences(tables)
    + saliency_page.early_peak_sentences(tables))

# %% [markdown]
# ## The maps themselves
# The same images at the first checkpoint, at the checkpoint with the best sAUC and at the last one, next
# to the ground-truth density (synthetic for the embedded set).

# %%
save_figure(saliency_page.maps_figure(run, params, data, tables), run.run_dir, "saliency_maps")

# %% [markdown]
# ## Contour or interior? An attention view of the texture-to-shape shift
# On the world's images the silhouette is known, so a map's saliency can be split between the object's
# *contour* (a thin band along its edge: shape), its *interior* (where the texture is) and the
# background. On the cue-conflict images of chapter 3 — one shape filled with another class's texture —
# a model that classifies by texture should look inside the object, and one that classifies by shape
# along its edge. The dotted lines are each region's share of the image area: what a uniform map gives.

# %%
say(saliency_page.region_sentences(tables))
if "saliency_regions" in tables:  # the world's images: their silhouettes are known
    save_figure(region_share_vs_epoch(tables["saliency_regions"]), run.run_dir, "saliency_regions")

# %% [markdown]
# ## Reading the result
# What the metrics can say depends on whose fixations the maps are compared with.

# %%
say(saliency_page.reading_sentences(data, run, params))
