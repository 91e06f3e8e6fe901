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
# as in VQEG practice), signed the same way. The SRCC's 95 % interval is a percentile bootstrap
# that resamples *reference images*, since all distortions of one reference share it.
#
# SRCC is computed over all pairs (distortion `all`) and per distortion type, where it asks only
# whether the model ranks the severity levels of one kind of damage correctly.
#
# **Image size.** A small model's input is small (32 px here). Squeezing a 512 × 384 TID2013 image
# into it would average most noise and compression damage away before the model sees it, so by
# default (`iqa_resize=auto`) inputs under 128 px see the image as *patches* at native resolution
# (downscaled by the smallest integer factor that keeps at most 48 patches per image), at the same
# positions in the reference and the distorted image, and a pair's distance is the mean over its
# patches. `iqa_resize=resize` squashes the whole image, `crop` resizes and centre-crops as
# open_clip's transform does. The embedded images are made at the model's input size, so every
# mode sees them whole.

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
iqa_dataset = None  # embedded | tid2013 | kadid10k
iqa_root = None  # tid2013 / kadid10k: the dataset folder in its official layout
distance = None  # normalized_euclidean (the authors') | euclidean | cosine
iqa_resize = None  # auto | patches | resize | crop: how large images meet a small input
iqa_levels = None  # embedded: distortion levels, from 1 (mildest) to 5
reference_observer = None  # embedded: haarpsi | mdsi | ms_ssim | ssim
layers = None  # final (the image embedding) | all (also every vision block's output)
n_boot = None  # bootstrap resamples for the SRCC intervals
image_size = None  # embedded: image size (as the world was trained)
texture_correlation = None  # embedded: for the world images among the references
texture_scale = None

# %%
from pathlib import Path

import pandas as pd
from IPython.display import display

from clipalign_utils import checkpoints, config, multirun
from clipalign_utils.data.iqa import load_iqa
from clipalign_utils.encoder import Encoder
from clipalign_utils.io import write_table
from clipalign_utils.prose import say
from clipalign_utils.metrics.iqa import EARLY_FRACTION, peak_summary
from clipalign_utils.steps import iqa as iqa_step
from clipalign_utils.plots.common import save_figure
from clipalign_utils.plots.families import family_curves
from clipalign_utils.plots.iqa import (alignment_curve, distance_quality_scatter, distortion_heatmap,
                                      iqa_examples, layer_heatmap)

params = config.resolve_notebook(globals())  # the parameters cell's values; None = the preset's
run_dir = multirun.analyse_every_run(Path(run_dir), "iqa", params)  # several runs: all analysed, the first shown
run = checkpoints.discover_or_train(run_dir, params, auto_train, model)  # trains first if run_dir has none
data = load_iqa(params["iqa_dataset"], params["iqa_root"], params, image_size=run.image_size,
                resize=params["iqa_resize"])
say(f"{len(run.checkpoints)} checkpoints of {run.model_name}; dataset {data.name}: {len(data)} distorted images "
      f"of {len(data.references) // data.patches_per_image} references, "
      f"{data.pairs['distortion'].nunique()} distortion types, "
      f"levels {', '.join(map(str, sorted(data.pairs['level'].unique())))}; distance: {params['distance']}; "
      f"iqa_resize: {data.resize_mode} ({data.patches_per_image} patch(es) per image, "
      f"downsampling {data.downsampling:g}×)")
if data.downsampling_note:
    say(data.downsampling_note)

# %% [markdown]
# ## The ground truth
# Who scored the pairs, and — for the embedded set — how well that observer agrees with people
# on a dataset where human scores exist.

# %%
say(f"quality scores: {data.ground_truth}")
if data.observer is not None:
    say(f"reference observer: {data.observer}, a human-calibrated full-reference metric; "
          f"published SRCC with TID2013's human MOS: {data.observer_srcc_tid2013:.3f}")
    say(f"source: {data.observer_source}")
    say("its scores are not human judgments: an SRCC here measures agreement with this observer, "
          "which itself agrees with people only as far as the value above says")

# %% [markdown]
# One reference and a distorted version of it per distortion type (at its middle level), each
# titled with its quality score.

# %%
example_reference = 0
example_pairs = data.example_pairs(example_reference)
titles = [f"{d.replace('_', ' ')}\nlevel {lv}, quality {q:.2f}"
          for d, lv, q in zip(example_pairs["distortion"], example_pairs["level"], example_pairs["quality"])]
fig = iqa_examples(data.reference_image(example_reference), data.distorted_images(example_pairs["distorted_index"]),
                   titles, reference_title=f"reference: {example_pairs['reference'].iloc[0]}")
save_figure(fig, run_dir, "iqa_examples")
by_level = data.pairs.groupby("level")["quality"]
say("quality by level (median over all references and distortions): "
      + ", ".join(f"level {level}: {median:.3f}" for level, median in by_level.median().items()))

# %% [markdown]
# ## Alignment at every checkpoint
# Each checkpoint embeds the reference and distorted images once (cached), measures the distance
# of every pair, and correlates it with quality.

# %%
tables = iqa_step.measure(run, data, params, cache_dir=run_dir / "cache")
for name, table in tables.items():
    write_table(table, run_dir, name)
iqa, iqa_pairs, early_peak = tables["iqa"], tables["iqa_pairs"], tables["iqa_peak"].iloc[0]
overall = iqa[iqa["distortion"] == "all"].reset_index(drop=True)
display(overall.drop(columns=["dataset", "distance", "distortion"]).round(3))

# %% [markdown]
# ## Alignment over training
# The horizontal axis is logarithmic beyond the first checkpoint after 0, so the first pass over
# the data — where the paper places the peak — is not squeezed into a corner. The band is the
# SRCC's bootstrap interval. The intervals of two checkpoints are not a paired test: both use the
# same references, so a decline can be real even where the bands overlap.

# %%
fig = alignment_curve(iqa, log_x=True, title=f"alignment with {data.name} quality ({params['distance']} distance)")
save_figure(fig, run_dir, "iqa_alignment_vs_epoch")
peaks = {score: peak_summary(overall["epoch"], overall[score]) for score in ("srcc", "krcc", "plcc")}
display(pd.DataFrame(peaks).T)
peak = peaks["srcc"]
at_peak = overall[overall["epoch"] == peak["peak_epoch"]].iloc[0]
final = overall.iloc[-1]
say(f"SRCC at the first checkpoint (epoch {overall['epoch'].iloc[0]:g}): {overall['srcc'].iloc[0]:.3f}")
say(f"SRCC peaks at epoch {peak['peak_epoch']:g}: {peak['peak_value']:.3f} "
      f"[{at_peak['srcc_lo']:.3f}, {at_peak['srcc_hi']:.3f}]")
say(f"final checkpoint (epoch {peak['final_epoch']:g}): {peak['final_value']:.3f} "
      f"[{final['srcc_lo']:.3f}, {final['srcc_hi']:.3f}]")
where = ("inside training (neither the first nor the last checkpoint)" if peak["peak_is_interior"]
         else "at an end of training")
say(f"drop from peak to final: {peak['drop_from_peak']:.3f}; the peak is {where}")
say(f"the final checkpoint's interval {'excludes' if final['srcc_hi'] < peak['peak_value'] else 'includes'} "
      "the peak value")

# %% [markdown]
# ## Is there an *early* peak? A paired test
# The paper's claim is about an early peak. We call a checkpoint early when it comes after the
# untrained model and within the first third of the run (`EARLY_FRACTION` of the last epoch). The
# statistic is the best early SRCC minus the final SRCC. Its interval resamples reference images
# once per replicate and recomputes the *whole* statistic on that resample — the maximum over the
# early window included, so the peak is not picked on the data — and compares each resample's early
# peak with the same resample's final checkpoint (paired). An interval above 0 supports "peaks
# early, then declines".

# %%
say(f"early window: 0 < epoch ≤ {EARLY_FRACTION:.3g} × {early_peak['final_epoch']:g} = "
      f"{early_peak['early_end']:g} ({int(early_peak['n_early'])} checkpoints)")
if int(early_peak["n_early"]):
    say(f"best early SRCC {early_peak['early_peak_srcc']:.3f} (epoch {early_peak['early_peak_epoch']:g}) − final "
          f"{early_peak['final_srcc']:.3f} = {early_peak['early_drop']:.3f}, paired 95 % interval "
          f"[{early_peak['lo']:.3f}, {early_peak['hi']:.3f}] over {int(early_peak['n_references'])} references: "
          + ("above 0 — an early peak and a decline" if early_peak["lo"] > 0 else
             "below 0 — the final checkpoint is better aligned than any early one" if early_peak["hi"] < 0 else
             "includes 0 — no clear early peak"))

# %% [markdown]
# ## Per distortion type
# Each cell is the SRCC among the pairs of one distortion type at one checkpoint: does the model
# rank the severity of that damage as the ground truth does? Blue = aligned, red = reversed.

# %%
fig = distortion_heatmap(iqa)
save_figure(fig, run_dir, "iqa_srcc_per_distortion")
per_type = iqa[iqa["distortion"] != "all"]
for checkpoint_name, label in [(at_peak["checkpoint"], "peak"), (final["checkpoint"], "final")]:
    ranked = per_type[per_type["checkpoint"] == checkpoint_name].sort_values("srcc")
    say(f"{label} checkpoint (epoch {ranked['epoch'].iloc[0]:g}): worst aligned {ranked['distortion'].iloc[0]} "
          f"({ranked['srcc'].iloc[0]:.3f}), best {ranked['distortion'].iloc[-1]} ({ranked['srcc'].iloc[-1]:.3f})")

# %% [markdown]
# ## Two questions in one number: seen and unseen damage
# The overall SRCC mixes two abilities: ranking the severity levels *within* one kind of damage, and
# ranking kinds of damage *against each other*. A model trained on images of varying photographic
# quality, whose captions never mention it (`quality_variation` > 0), is rewarded for ignoring the
# kinds of damage it saw — which should erode the first ability for those kinds only. So we average
# the per-family SRCCs separately over the families the training images carried (*seen*) and the
# others (*unseen*). In a clean world (`quality_variation` = 0) every family is unseen.

# %%
iqa_marked, iqa_families = iqa_step.family_alignment(iqa, run_dir)
write_table(iqa_families, run_dir, "iqa_families")
fig = family_curves(iqa_marked, iqa_families)
save_figure(fig, run_dir, "iqa_families")
seen = iqa_step.seen_families(run_dir)
say(f"families seen in training: {', '.join(seen) if seen else 'none (a clean training world)'}")
for column, label in [("within_seen_srcc", "seen families"), ("within_unseen_srcc", "unseen families"),
                      ("within_family_srcc", "all families"), ("overall_srcc", "all pairs (overall)")]:
    curve = iqa_families.dropna(subset=[column])
    if len(curve):
        top = peak_summary(curve["epoch"], curve[column])
        say(f"{label}: peak {top['peak_value']:.3f} at epoch {top['peak_epoch']:g}, final {top['final_value']:.3f} "
              f"at epoch {top['final_epoch']:g} (drop from peak {top['drop_from_peak']:.3f})")

# %% [markdown]
# ## Distance against quality
# Every pair at the peak checkpoint and at the last one. An aligned model puts high-quality pairs
# (right) at small distances (bottom); a distortion type whose points form a cloud apart from the
# others is one the model weighs differently from the ground truth.

# %%
scatter_checkpoints = list(dict.fromkeys([at_peak["checkpoint"], final["checkpoint"]]))
scatter_rows = overall.set_index("checkpoint").loc[scatter_checkpoints]
fig = distance_quality_scatter(
    iqa_pairs, scatter_checkpoints,
    [f"{'peak' if c == at_peak['checkpoint'] else 'last'}{' = last' if len(scatter_checkpoints) == 1 else ''}, "
     f"epoch {e:g}" for c, e in scatter_rows["epoch"].items()],
    scores=scatter_rows["srcc"].tolist(), quality_label=f"quality ({data.name}; higher = better)",
    distance_label=f"{params['distance']} distance")
save_figure(fig, run_dir, "iqa_distance_vs_quality")
final_pairs = iqa_pairs[iqa_pairs["checkpoint"] == final["checkpoint"]]
say(f"last checkpoint, median {params['distance']} distance by level: "
      + ", ".join(f"level {level}: {median:.4f}"
                  for level, median in final_pairs.groupby("level")["model_distance"].median().items()))

# %% [markdown]
# ## Three distances, one checkpoint
# The same embeddings of the last checkpoint, scored with each distance. On raw embeddings they are
# different measures: cosine ignores the embeddings' norms, euclidean weighs every dimension by its
# own spread, normalized euclidean rescales each dimension by its mean squared difference over the
# dataset first (the authors' choice, used everywhere else on this page).

# %%
last_encoder = Encoder(run.checkpoints[-1], run.model_name, run.image_size, params["device"],
                       params["eval_batch_size"], cache_dir=run_dir / "cache")
display(iqa_step.compare_distances(last_encoder, data).round(3))

# %% [markdown]
# ## Which layer is most aligned?
# With `layers="all"`, every block of the vision tower is scored the same way: the block's output
# is compared *location by location* (each spatial position of a ResNet stage, each token of a
# transformer block, with the chosen distance), and the pair's distance is the mean over locations.
# Averaging the features over space first would cancel zero-mean local damage such as noise or JPEG
# blocks. Early blocks see pixels, late ones semantics; the paper's question is where low-level
# alignment lives and how that moves with training.

# %%
if params["layers"] == "all":
    iqa_layers = iqa_step.measure_layers(run, data, params, cache_dir=run_dir / "cache")
    write_table(iqa_layers, run_dir, "iqa_layers")
    fig = layer_heatmap(iqa_layers)
    save_figure(fig, run_dir, "iqa_layers")
    best = iqa_layers.loc[iqa_layers.groupby("checkpoint", sort=False)["srcc"].idxmax()]
    for _, row in best.iterrows():
        say(f"epoch {row['epoch']:g}: most aligned layer {row['layer']} (SRCC {row['srcc']:.3f})")
else:
    say("layers='final': only the image embedding was scored (run with -p layers=all for every block)")

