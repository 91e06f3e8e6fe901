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
# # 10. The study on real CLIP trajectories
#
# The embedded world answers the paper's question for a small model on procedurally generated images.
# The question itself is about CLIP trained on web data, and public trajectories exist: LAION's
# scaling-laws release keeps every epoch of its open_clip runs (Hugging Face
# `laion/scaling-laws-openclip`, `full_checkpoints/<run name>/epoch_<N>.pt`). `clipalign run
# --checkpoints SOURCE` fetches such a trajectory one checkpoint at a time, measures it with every step
# of this book and deletes its weights; this page shows what that run found. An epoch of LAION's
# release is a fixed sample count, so its figures carry samples seen on top; a source that does not
# say its epoch's size (a folder of checkpoints) gives epochs only, as the trajectory's lines say.
#
# On Colab, set `checkpoints` (and `at_epochs`, `device="cuda"`) to analyse a few epochs of a public run
# here; `run_dir` is where the run goes.

# %% tags=["hide-input"]
# On Colab: install the package at this notebook's release (elsewhere, or once installed, nothing).
import importlib.util, subprocess, sys  # noqa: E401
if "google.colab" in sys.modules and importlib.util.find_spec("clipalign_utils") is None:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "clipalign @ git+https://github.com/clipalign/clipalign@v0.1.0"], check=True)

# %% tags=["parameters"]
run_dir = ""  # a streamed run (clipalign run --checkpoints --out); empty: explain only
checkpoints = ""  # a source to analyse into run_dir first: laion-scaling:<run>, a URL template, a folder
at_epochs = ""  # with checkpoints: the epochs to analyse (1,2,4); empty: all the source has
keep_weights = "none"  # with checkpoints: the fetched weights to keep (none, all, or epochs 1,2)
only = ""  # with checkpoints: steps to measure (iqa,noise); empty: every step and the synthesis
model = ""  # with a source that does not name its architecture: the open_clip model name
device = "auto"  # "cuda" on a Colab GPU runtime
preset = None  # None: the run's own (recorded), else "default"

# %%
from IPython.display import display

from clipalign_utils.prose import say
from clipalign_utils.steps.real_clip import page as real_clip

if checkpoints:
    from clipalign_utils.orchestration.stream import run_streamed

    overrides = {"device": device, **({"model": model} if model else {})}
    run_dir = str(run_streamed(run_dir, checkpoints, at_epochs or None, keep_weights, only or None, preset,
                               overrides))
cost = real_clip.read_cost()
if cost is not None:
    display(cost)
say(real_clip.cost_sentences(cost))

# %% [markdown]
# ## The trajectory
# Its checkpoints, where each came from and, where the source says it, the samples each had seen.

# %%
checkpoint_list = real_clip.trajectory(run_dir)
if checkpoint_list is None:
    say(["This build holds no real trajectory: the book's page 10 gives the command that makes one."])
else:
    display(checkpoint_list)
    say(real_clip.source_sentences(run_dir))

# %% [markdown]
# ## Every measure against training time, and the verdicts
# The synthesis of this trajectory (page 5's figure and verdicts, for this one run). One run's verdicts
# speak for its course: each interval resamples the evaluation images (the same resample at every
# checkpoint), not training, whose own noise only several runs can show.

# %%
if real_clip.has_synthesis(run_dir):
    from clipalign_utils.plots.common import save_figure
    from clipalign_utils.steps.tradeoff import page as tradeoff_page

    means, verdicts = real_clip.synthesis_tables(run_dir)
    save_figure(tradeoff_page.summary(means, [run_dir]), run_dir, "real_clip_summary")
    say(tradeoff_page.peak_sentences(means))
    say(tradeoff_page.verdict_text(verdicts))
elif checkpoint_list is not None:
    say(["The run has no synthesis yet: run it without --only (every step, then the synthesis)."])
