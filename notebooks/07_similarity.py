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
# distance set by `distance` (`normalized_euclidean` scales each dimension over all 2N reference–candidate
# pairs of the set, so d0 and d1 are measured alike). Its score on the triplet is the share of judges it
# agrees with,
#
#   s = p · [d1 < d0] + (1 − p) · [d0 < d1] + ½ · [d0 = d1],
#
# and the 2AFC score is the mean of s over triplets (Zhang et al., 2018; Fu et al., 2023). A coin
# flip scores 0.5; no model can score above the **ceiling** mean(max(p, 1 − p)), because the judges
# themselves disagree. The 95 % interval is a percentile bootstrap that resamples triplets, or whole
# references where triplets share one (the embedded set's: a reference's triplets are not independent).
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
texture_scale = None  # embedded: for the world renders among the references
object_placement = None  # varied | centred: where objects sit (as the world was trained)
n_boot = None  # bootstrap resamples for the score intervals
distance = None  # normalized_euclidean | euclidean | cosine
iqa_resize = None  # real sets: auto | patches | resize | crop, as the IQA step
similarity_dataset = None  # embedded | bapps | nights
similarity_root = None  # bapps: the folder holding 2afc/; nights: the folder holding data.csv (or its parent)
similarity_protocol = None  # all | votes6 (nights: only triplets with at least 6 votes, as DreamSim reports)
similarity_split = None  # empty: the evaluation split (bapps val, nights test); or bapps train, nights train | val | all (every row, as the authors score)
layers = None  # final: the image embedding only; all: every vision block too (as page 2, and as the authors score NIGHTS)

# %%
from IPython.display import display

from clipalign_utils.orchestration.step_page import open_run
from clipalign_utils.io import write_tables
from clipalign_utils.prose import say
from clipalign_utils.plots.common import save_figure
from clipalign_utils.steps.similarity import analysis as similarity_step, page as similarity_page

run, params = open_run(globals(), "similarity")  # several runs: all analysed, the first shown; trains first if none
data = similarity_step.load(run, params)  # the triplets, with who judged them
say(similarity_page.data_sentences(run, params, data))

# %% [markdown]
# ## The judges
# Who made the choices, and how much they agree among themselves. For the embedded set the panel's
# members vote separately: their pairwise agreement (how often two members pick the same candidate)
# and the share of unanimous triplets say how clear-cut the choices are. For people only the share
# p of each triplet is known; the ceiling is the same mean(max(p, 1 − p)) in both cases.

# %%
say(similarity_page.judge_sentences(data))
if data.panel:  # a panel's members vote separately: how often each pair chooses alike
    display(similarity_step.panel_table(data))
say(similarity_page.vote_sentences(data))

# %% [markdown]
# A few triplets, each row the reference, p0 and p1, labelled with p (the judges' share for p1).

# %%
save_figure(similarity_page.triplets_figure(data, params["eval_seed"]), run.run_dir, "two_afc_triplets")

# %% [markdown]
# ## Agreement at every checkpoint
# Each checkpoint embeds the three image sets once (cached), measures d0 and d1 for every triplet and
# scores the model's choices against the judges', overall (`all`) and per subset.

# %%
tables = similarity_step.measure(run, params, data)
write_tables(tables, run.run_dir, optional=similarity_step.OPTIONAL_TABLES)
display(similarity_step.score_table(tables))

# %% [markdown]
# ## Agreement over training
# The horizontal axis is logarithmic beyond the first checkpoint after 0. Black is every triplet,
# with its bootstrap band; the coloured lines are the subsets; the dashed line is chance and the
# dotted one the ceiling. As in chapter 2, the bands of two checkpoints are not a paired test: both
# score the same triplets. The paired test is chapter 2's early-peak test on the overall score: the best
# early score minus the final one, resampling triplets or their references as the intervals do (its last
# sentence below).

# %%
save_figure(similarity_page.curve_figure(data, tables), run.run_dir, "two_afc_vs_epoch")
say(similarity_page.curve_sentences(data, tables) + similarity_page.early_peak_sentences(tables))

# %% [markdown]
# ## Does 2AFC agreement peak where IQA alignment does?
# The IQA step's curve (page 2) beside this one: where each peaks, and how far each ends below its peak.
# The paper asks this of mid-level similarity (NIGHTS). On the embedded set, and on BAPPS, both
# curves measure low-level damage judged by different observers, so there it asks whether two
# low-level measures of one run peak together.

# %%
say(similarity_page.iqa_sentences(run, params, tables))

# %% [markdown]
# ## Which layer agrees most?
# With `layers="all"`, every block of the vision tower chooses too, as on page 2: each block's output of
# the reference is compared with the candidate's *location by location* (every spatial position of a
# ResNet stage, every token of a transformer block, with its class token), with the chosen distance
# (`normalized_euclidean` scales each channel over all 2N reference–candidate pairs, as the authors'
# per-layer NIGHTS code does), and the block picks the nearer candidate. `final` is the embedding,
# scored above. Which depth agrees most with the judges, and does it move as the model trains? Whether
# the best block beats the embedding is tested as on page 2, the block picked again on every resample
# (`two_afc_best_block.csv`).

# %%
if "two_afc_layers" in tables:
    save_figure(similarity_page.layer_figure(tables), run.run_dir, "two_afc_layers")
say(similarity_page.layer_sentences(tables))

# %% [markdown]
# ## Right and wrong
# Triplets on which the judges lean clearly one way (p at most 0.3 or at least 0.7), at the first and
# the last checkpoint: some the model gets right (it picks the judges' majority candidate) and some it
# gets wrong. For the embedded set the captions name the two kinds of damage: which ones does the
# model weigh differently from the panel?

# %%
for name, fig in similarity_page.example_figures(data, tables, params["eval_seed"]).items():
    save_figure(fig, run.run_dir, name)
say(similarity_page.example_sentences(data, tables))

# %% [markdown]
# ## Reading the result
# What the score can say depends on who judged the triplets.

# %%
say(similarity_page.reading_sentences(data, params))
