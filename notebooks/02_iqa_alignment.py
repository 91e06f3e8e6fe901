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
# # 2. Does the embedding see image quality as people do?
#
# Take a reference image and distorted versions of it — noisier, blurrier, more compressed, with
# shifted colours or contrast. People judge some distortions as barely visible and others as
# ruinous. If a CLIP model's image embedding is *perceptually aligned*, a distorted image that
# people rate as good should sit close to its reference in embedding space, and one they rate as
# bad should sit far away. We ask this of every checkpoint of the run: how does the alignment
# change as the model trains, and does it peak early and then decline?
#
# **How a pair is scored.** Each pair (reference, distorted image) gets two numbers:
#
# - by the **model**: the distance between the two *raw* projected embeddings (not L2-normalised),
#   set by `distance`. The default is the authors' **normalized euclidean** distance: each dimension's
#   squared difference divided by that dimension's mean squared difference over all pairs of the
#   dataset, then the square root of the mean over dimensions. `euclidean` is |e_ref − e_dist| and
#   `cosine` is 1 − cos(e_ref, e_dist); on raw embeddings the three are different measures, and the
#   last section compares them;
# - by the **ground truth**: a quality score, higher = better. On TID2013 and KADID-10k these are
#   human opinion scores. The embedded set has no human scores (nobody rated these images), so a
#   *reference observer* scores it: a classical full-reference quality metric chosen because its
#   scores track human opinion on TID2013 well. Its scores are not human judgments; the cell
#   below names it and prints how well it agrees with people.
#
# **How to read the scores.** A well-aligned model's distance *falls* as quality rises, so we
# correlate the *negated* distance with quality: the Spearman rank correlation
# SRCC = ρ(−distance, quality) is 1 when the model orders all pairs exactly as the ground truth
# does, 0 when its order is unrelated, and negative when it prefers the worse images. Higher is
# better alignment throughout. Beside SRCC we report Kendall's τ (KRCC, also rank-based) and the
# Pearson correlation after the usual 4-parameter logistic fit of −distance onto quality (PLCC,
# as in VQEG practice), signed the same way, and plain Pearson (`pearson`, the number the authors
# report beside SRCC). The SRCC's 95 % interval is a percentile bootstrap
# that resamples *reference images*, since all distortions of one reference share it.
#
# SRCC is computed over all pairs (distortion `all`) and per distortion type, where it asks only
# whether the model ranks the severity levels of one kind of damage correctly.
#
# **Image size.** A small model's input is small (this run's, and a real dataset's image size, are in the first
# line below the parameters). Squeezing a real dataset's photograph, several hundred pixels a side, into it
# would average most noise and compression damage away before the model sees it, so by
# default (`iqa_resize=auto`) inputs under 128 px see the image as *patches* at native resolution
# (downscaled by the smallest integer factor that keeps at most 48 patches per image), at the same
# positions in the reference and the distorted image, and a pair's distance is the mean over its
# patches. `iqa_resize=resize` squashes the whole image, `crop` resizes and centre-crops as
# open_clip's transform does. The embedded images are made at the model's input size, so every
# mode sees them whole.

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
texture_correlation = None  # embedded: for the world images among the references
texture_scale = None
object_placement = None  # varied | centred: where objects sit (as the world was trained)
n_boot = None  # bootstrap resamples for the SRCC intervals
iqa_dataset = None  # embedded | tid2013 | kadid10k
iqa_root = None  # tid2013 / kadid10k: the dataset folder in its official layout
distance = None  # normalized_euclidean (the authors') | euclidean | cosine
iqa_resize = None  # auto | patches | resize | crop: how large images meet a small input
iqa_levels = None  # embedded: distortion levels, from 1 (mildest) to 5
reference_observer = None  # embedded: haarpsi | mdsi | ms_ssim | ssim
layers = None  # final (the image embedding) | all (also every vision block's output)

# %%
from clipalign_utils.orchestration.step_page import open_run
from clipalign_utils.io import write_tables
from clipalign_utils.prose import say
from clipalign_utils.steps.iqa import analysis as iqa_step, page as iqa_page
from clipalign_utils.plots.common import save_figure
from clipalign_utils.plots.iqa import distortion_heatmap, layer_heatmap
from IPython.display import display

run, params = open_run(globals(), "iqa")  # several runs: all analysed, the first shown; trains first if it has none
data = iqa_step.load(run, params)
say(iqa_page.describe_data(run, data, params))

# %% [markdown]
# ## The ground truth
# Who scored the pairs, and — for the embedded set — how well that observer agrees with people
# on a dataset where human scores exist.

# %%
say(iqa_page.ground_truth_sentences(data))

# %% [markdown]
# One reference and a distorted version of it per distortion type (at its middle level), each
# titled with its quality score.

# %%
save_figure(iqa_page.examples_figure(data), run.run_dir, "iqa_examples")
say(iqa_page.level_sentences(data))

# %% [markdown]
# ## Alignment at every checkpoint
# Each checkpoint embeds the reference and distorted images once (cached), measures the distance
# of every pair, and correlates it with quality. The same call computes the tables of the later
# sections (per distortion family and, with `layers="all"`, per vision block) and writes them all.

# %%
tables = iqa_step.measure(run, params, data)  # every table of the page, the per-family and per-layer ones too
write_tables(tables, run.run_dir, optional=iqa_step.OPTIONAL_TABLES)
display(iqa_step.checkpoint_table(tables))

# %% [markdown]
# ## Alignment over training
# The horizontal axis is logarithmic beyond the first checkpoint after 0, so the first pass over
# the data — where the paper places the peak — is not squeezed into a corner. The band is the
# SRCC's bootstrap interval. The intervals of two checkpoints are not a paired test: both use the
# same references, so a decline can be real even where the bands overlap.

# %%
save_figure(iqa_page.alignment_figure(tables, data, params), run.run_dir, "iqa_alignment_vs_epoch")
display(iqa_step.peak_table(tables))
say(iqa_page.peak_sentences(tables))

# %% [markdown]
# ## Is there an *early* peak? A paired test
# The paper's claim is about an early peak. We call a checkpoint early when it comes after the
# untrained model and within the first third of the run (`EARLY_FRACTION` of the last epoch). The
# statistic is the best early SRCC minus the final SRCC. Its interval resamples reference images
# once per replicate and recomputes the *whole* statistic on that resample — the maximum over the
# early window included, so the peak is not picked on the data — and compares each resample's early
# peak with the same resample's final checkpoint (paired). The interval is the basic bootstrap's (the
# resamples' percentiles reflected about the drop): a maximum over noisy values is biased upward, and so are
# the resamples' maxima, so their own percentiles would lean toward a peak. An interval above 0 supports
# "peaks early, then declines".

# %%
say(iqa_page.early_peak_sentences(tables))

# %% [markdown]
# ## Per distortion type
# Each cell is the SRCC among the pairs of one distortion type at one checkpoint: does the model
# rank the severity of that damage as the ground truth does? Blue = aligned, red = reversed.

# %%
save_figure(distortion_heatmap(tables["iqa"]), run.run_dir, "iqa_srcc_per_distortion")
say(iqa_page.distortion_sentences(tables))

# %% [markdown]
# ## Two questions in one number: seen and unseen damage
# The overall SRCC mixes two abilities: ranking the severity levels *within* one kind of damage, and
# ranking kinds of damage *against each other*. A model trained on images of varying photographic
# quality, whose captions never mention it (`quality_variation` > 0), is rewarded for ignoring the
# kinds of damage it saw — which should erode the first ability for those kinds only. So we average
# the per-family SRCCs separately over the families the training images carried (*seen*) and the
# others (*unseen*). In a clean world (`quality_variation` = 0) every family is unseen.

# %%
save_figure(iqa_page.families_figure(tables, run), run.run_dir, "iqa_families")
say(iqa_page.family_sentences(tables, run))

# %% [markdown]
# ## Distance against quality
# Every pair at the peak checkpoint and at the last one. An aligned model puts high-quality pairs
# (right) at small distances (bottom); a distortion type whose points form a cloud apart from the
# others is one the model weighs differently from the ground truth.

# %%
save_figure(iqa_page.scatter_figure(tables, data, params), run.run_dir, "iqa_distance_vs_quality")
say(iqa_page.distance_sentences(tables, params))

# %% [markdown]
# ## Three distances, one checkpoint
# The same embeddings of the last checkpoint, scored with each distance. On raw embeddings they are
# different measures: cosine ignores the embeddings' norms, euclidean weighs every dimension by its
# own spread, normalized euclidean rescales each dimension by its mean squared difference over the
# dataset first (the authors' choice, used everywhere else on this page).

# %%
display(iqa_step.compare_distances(run, params, data).round(3))

# %% [markdown]
# ## Which layer is most aligned?
# With `layers="all"`, every block of the vision tower is scored the same way (for a ViT, the tokens
# entering its first block too, as `embeddings`: the authors' layer 0): the block's output
# is compared *location by location* (each spatial position of a ResNet stage, each token of a
# transformer block): the pair's L locations form one vector of L·C values, location l against
# location l, measured with the chosen distance as the authors' per-layer code does. Averaging the features over space first would cancel zero-mean local damage such as noise or JPEG
# blocks. Early blocks see pixels, late ones semantics; the paper's question is where low-level
# alignment lives and how that moves with training. The most aligned block is picked on the data, so
# whether it beats the embedding is tested with the pick made again on every bootstrap resample
# (`iqa_best_block.csv`).

# %%
if "iqa_layers" in tables:
    save_figure(layer_heatmap(tables["iqa_layers"]), run.run_dir, "iqa_layers")
say(iqa_page.layer_sentences(tables))
