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
# # 7. Does the embedding judge similarity as people do?
#
# Image quality (chapter 2) asks how *much* an image was damaged. Perceptual similarity asks a
# sharper question: shown a reference image and two variations of it, which variation looks more
# like the reference? People answer such *two-alternative forced choice* (2AFC) questions
# consistently even when the two variations differ in kind — one blurred, one recoloured; one with
# the object turned, one with a different background — and those choices are what a perceptually
# aligned embedding should reproduce. We ask it of every checkpoint of the run.
#
# **How a triplet is scored.** A triplet is a reference and two candidates, p0 and p1. The judges'
# answer is p, the fraction of them who chose p1 as closer to the reference. The model chooses the
# candidate whose embedding is nearer the reference's: d0 = d(ref, p0) and d1 = d(ref, p1), with the
# distance set by `distance`. Its score on the triplet is the share of judges it agrees with,
#
#   s = p · [d1 < d0] + (1 − p) · [d0 < d1] + ½ · [d0 = d1],
#
# and the 2AFC score is the mean of s over triplets (Zhang et al., 2018; Fu et al., 2023). A coin
# flip scores 0.5; no model can score above the **ceiling** mean(max(p, 1 − p)), because the judges
# themselves disagree. The 95 % interval is a percentile bootstrap that resamples triplets.
#
# **Which judges.** Three triplet sets, chosen by `similarity_dataset`:
#
# - `embedded` (the default, offline): bundled photographs and renders of the training world, each
#   with two *different kinds* of low-level damage (noise against blur, compression against a colour
#   shift, …) of close strength — a low-level analogue of BAPPS's "traditional" triplets. **Nobody
#   judged these images.** A *reference panel* of five classical full-reference metrics, each a
#   published model of human quality judgments (HaarPSI, MDSI, VSI, FSIM, MS-GMSD), votes instead,
#   and p is the fraction of the panel choosing p1. The panel is not people: agreement with it is
#   agreement with metrics that approximate people at low level, and how often its members agree
#   with each other bounds what that agreement can mean.
# - `bapps`: BAPPS 2AFC (Zhang et al., 2018), low-level distortions judged by people.
# - `nights`: NIGHTS (Fu et al., 2023), variations in pose, layout, colour and content of generated
#   images, judged by people. *Mid-level* similarity — the question this chapter is named for —
#   needs NIGHTS (or another human set like it): no offline stand-in exists for it here.

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
similarity_dataset = None  # embedded | bapps | nights
similarity_root = None  # bapps: the folder holding 2afc/; nights: the folder holding data.csv (or its parent)
similarity_protocol = None  # all | votes6 (nights: only triplets with at least 6 votes, as DreamSim reports)
similarity_split = None  # empty: the evaluation split (bapps val, nights test); or bapps train, nights train | val
distance = None  # normalized_euclidean | euclidean | cosine
iqa_resize = None  # real sets: auto | patches | resize | crop, as the IQA step
n_boot = None  # bootstrap resamples for the score intervals
image_size = None  # embedded: image size (as the world was trained)
texture_scale = None  # embedded: for the world renders among the references

# %%
from pathlib import Path

import pandas as pd
from IPython.display import display

from clipalign_utils import checkpoints, config, multirun
from clipalign_utils.data.two_afc import load_two_afc
from clipalign_utils.io import write_table
from clipalign_utils.prose import say
from clipalign_utils.metrics.iqa import peak_summary
from clipalign_utils.metrics.two_afc import panel_agreement, two_afc_ceiling
from clipalign_utils.plots.common import save_figure
from clipalign_utils.plots.two_afc import score_curve, triplet_examples
from clipalign_utils.steps.similarity import (example_titles, example_triplets, triplets_at_checkpoints,
                                              two_afc_over_checkpoints)

params = config.resolve_notebook(globals())  # the parameters cell's values; None = the preset's
run_dir = multirun.analyse_every_run(Path(run_dir), "similarity", params)  # several runs: all analysed, the first shown
run = checkpoints.discover_or_train(run_dir, params, auto_train, model)  # trains first if run_dir has none
embedded = params["similarity_dataset"] == "embedded"
data = load_two_afc(params["similarity_dataset"], params["similarity_root"], protocol=params["similarity_protocol"],
                    split=params["similarity_split"], image_size=params["image_size"] if embedded else run.image_size,
                    seed=params["seed"], texture_scale=params["texture_scale"], resize=params["iqa_resize"])
say(f"{len(run.checkpoints)} checkpoints of {run.model_name}; dataset {data.name} (split {data.split}, "
      f"protocol {data.protocol}): {len(data)} triplets in subsets "
      + ", ".join(f"{name} ({count})" for name, count in data.triplets["subset"].value_counts().sort_index().items())
      + f"; distance: {params['distance']}")

# %% [markdown]
# ## The judges
# Who made the choices, and how much they agree among themselves. For the embedded set the panel's
# members vote separately: their pairwise agreement (how often two members pick the same candidate)
# and the share of unanimous triplets say how clear-cut the choices are. For people only the share
# p of each triplet is known; the ceiling is the same mean(max(p, 1 − p)) in both cases.

# %%
say(f"judges: {data.ground_truth}")
ceiling = two_afc_ceiling(data.triplets["p"])
if data.panel:
    panel = panel_agreement(data.panel_choices(), data.panel)
    say(f"panel of {panel['n_members']}: pairwise agreement {panel['pairwise_agreement']:.3f}, "
          f"unanimous on {panel['unanimous_fraction']:.1%} of triplets; ceiling {panel['ceiling']:.3f}")
    say("these are metrics, not people: a model agreeing with the panel agrees with low-level models of people")
    display(panel["pairwise"].round(3))
else:
    say(f"ceiling (always choosing the people's majority): {ceiling:.3f}")
say("share of judges choosing p1: " + ", ".join(
    f"{p:g}: {n}" for p, n in data.triplets["p"].round(2).value_counts().sort_index().items()))

# %% [markdown]
# A few triplets, each row the reference, p0 and p1, labelled with p (the judges' share for p1).

# %%
shown = data.triplets.sample(n=min(4, len(data)), random_state=params["seed"]).index
reference, first, second = data.images(shown)
labels = [f"p(p1 closer) = {row.p:.2f}\n" + (f"{row.distortion0.replace('_', ' ')} {row.level0} vs "
                                             f"{row.distortion1.replace('_', ' ')} {row.level1}"
                                             if embedded else f"{row.subset}")
          for row in data.triplets.loc[shown].itertuples()]
fig = triplet_examples(reference, first, second, labels, suptitle=f"{data.name} triplets")
save_figure(fig, run_dir, "two_afc_triplets")

# %% [markdown]
# ## Agreement at every checkpoint
# Each checkpoint embeds the three image sets once (cached), measures d0 and d1 for every triplet and
# scores the model's choices against the judges', overall (`all`) and per subset.

# %%
two_afc = two_afc_over_checkpoints(run, data, params["distance"], device=params["device"],
                                   batch_size=params["eval_batch_size"], cache_dir=run_dir / "cache",
                                   n_boot=params["n_boot"], seed=params["seed"])
write_table(two_afc, run_dir, "two_afc")
overall = two_afc[two_afc["subset"] == "all"].reset_index(drop=True)
display(overall.drop(columns=["dataset", "distance", "subset"]).round(3))

# %% [markdown]
# ## Agreement over training
# The horizontal axis is logarithmic beyond the first checkpoint after 0. Black is every triplet,
# with its bootstrap band; the coloured lines are the subsets; the dashed line is chance and the
# dotted one the ceiling. As in chapter 2, the bands of two checkpoints are not a paired test: both
# score the same triplets.

# %%
fig = score_curve(two_afc, ceiling=ceiling,
                  ceiling_label="ceiling (panel majority)" if data.panel else "ceiling (people's majority)",
                  title=f"2AFC agreement with {data.name} judges ({params['distance']} distance)")
save_figure(fig, run_dir, "two_afc_vs_epoch")
peak = peak_summary(overall["epoch"], overall["score"])
final = overall.iloc[-1]
say(f"2AFC score at the first checkpoint (epoch {overall['epoch'].iloc[0]:g}): {overall['score'].iloc[0]:.3f}")
say(f"peak at epoch {peak['peak_epoch']:g}: {peak['peak_value']:.3f}; last checkpoint (epoch {final['epoch']:g}): "
      f"{final['score']:.3f} [{final['score_lo']:.3f}, {final['score_hi']:.3f}]; chance 0.5, ceiling {ceiling:.3f}")
say(f"the last checkpoint closes {(final['score'] - 0.5) / (ceiling - 0.5):.0%} of the gap from chance to the ceiling"
      if ceiling > 0.5 else "the judges are split on every triplet: the ceiling is chance")

# %% [markdown]
# ## Does mid-level agreement peak where low-level alignment does?
# The IQA step's curve (page 2) beside this one: where each peaks, and how far each ends below its peak.

# %%
iqa_table = run_dir / "metrics" / "iqa.csv"
if iqa_table.exists():
    iqa_overall = pd.read_csv(iqa_table).query("distortion == 'all'")
    iqa_overall = iqa_overall[iqa_overall["distance"] == params["distance"]]
    if len(iqa_overall):
        iqa_peak = peak_summary(iqa_overall["epoch"], iqa_overall["srcc"])
        say(f"IQA SRCC peaks at epoch {iqa_peak['peak_epoch']:g} ({iqa_peak['peak_value']:.3f}) and ends "
              f"{iqa_peak['drop_from_peak']:.3f} below it; the 2AFC score peaks at epoch {peak['peak_epoch']:g} "
              f"({peak['peak_value']:.3f}) and ends {peak['drop_from_peak']:.3f} below it: "
              + ("the same checkpoint" if iqa_peak["peak_epoch"] == peak["peak_epoch"] else "different checkpoints"))
    else:
        say(f"iqa.csv holds no {params['distance']} rows: run the iqa step with this distance to compare")
else:
    say("no iqa.csv in this run: run the iqa step to compare the two curves")

# %% [markdown]
# ## Right and wrong
# Triplets on which the judges lean clearly one way (p at most 0.3 or at least 0.7), at the first and
# the last checkpoint: some the model gets right (it picks the judges' majority candidate) and some it
# gets wrong. For the embedded set the captions name the two kinds of damage: which ones does the
# model weigh differently from the panel?

# %%
scored = triplets_at_checkpoints(run, data, params["distance"], device=params["device"],
                                 batch_size=params["eval_batch_size"], cache_dir=run_dir / "cache")
for label, (name, rows) in zip(("first", "last"), scored.groupby("checkpoint", sort=False)):
    examples = example_triplets(rows, n=3, seed=params["seed"])
    if examples.empty:
        say(f"{name}: no triplet with a clear majority")
        continue
    reference, first, second = data.images(examples["triplet"])
    fig = triplet_examples(reference, first, second, example_titles(examples),
                           suptitle=f"{label} checkpoint ({name}, epoch {rows['epoch'].iloc[0]:g})")
    save_figure(fig, run_dir, f"two_afc_examples_{label}")
    if embedded:
        wrong = rows[(rows["p"] - 0.5).abs() >= 0.2]
        wrong = wrong[(wrong["model_choice"] != 0.5) & (wrong["model_choice"] != (wrong["p"] > 0.5))]
        families = wrong[["distortion0", "distortion1"]].stack().value_counts()
        say(f"{label} checkpoint: {len(wrong)} clear triplets chosen against the panel; damage most often "
              f"involved: " + ", ".join(f"{k.replace('_', ' ')} ({v})" for k, v in families.head(3).items()))

# %% [markdown]
# ## Reading the result
# On the embedded set the score measures agreement with a panel of low-level metrics on low-level
# damage: how closely the embedding's notion of "closer" follows what classical models of human
# vision say about noise, blur, compression and colour — not what people say, and not mid-level
# similarity. A model can score well here and still judge layout, pose or object identity unlike
# people. That is the mid-level question; it needs human 2AFC judgments on mid-level variations, which
# NIGHTS provides: run with `-p similarity_dataset=nights -p similarity_root=PATH` (and
# `-p similarity_protocol=votes6` for the triplets DreamSim reports). On real sets the model sees
# images as the IQA step does (`iqa_resize`): for a 32 px model, native-resolution patches by default.
