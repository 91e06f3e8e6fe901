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
# # 6. What drives the trade-off?
#
# The paper observes how alignment, texture bias and noise robustness move during training; the
# embedded world lets us change their suspected causes and watch. This notebook compares the runs
# of one sweep (`clipalign sweep`), each an ordinary run of the five steps with some parameters
# changed, and asks:
#
# 1. Does a stronger texture–label correlation make the early texture phase stronger, and the
#    peak of IQA alignment earlier or higher?
# 2. Does noise robustness follow shape bias across settings?
# 3. Which settings, if any, show the paper's picture — alignment peaking early then declining,
#    texture bias falling, the noise drop shrinking?
#
# Every number and verdict below is computed from the runs; the sentences under each table are
# printed by the code, not typed. With a handful of settings, "increases" means "moves one way at
# every step of the setting's value", a description rather than a test.

# %% tags=["hide-input"]
# On Colab: install the package at this notebook's release (elsewhere, or once installed, nothing).
import importlib.util, sys  # noqa: E401
if "google.colab" in sys.modules and importlib.util.find_spec("clipalign_utils") is None:
    # %pip install -q "clipalign @ git+https://github.com/clipalign/clipalign@v0.1.0"

# %% tags=["parameters"]
run_dir = "runs/sweep"  # the sweep directory (clipalign sweep --out); outputs go here
preset = "default"
run_dirs = None  # runs to compare, comma-separated (None: those listed in run_dir/sweep.json)
seed = None  # None: the preset's value, for this and every parameter below
distance = None  # which IQA distance to compare, if iqa.csv holds several
n_perm = None  # permutations for the p-values

# %%
from pathlib import Path

import pandas as pd
from IPython.display import display

from clipalign_utils import config, results, sweep
from clipalign_utils.prose import say
from clipalign_utils.io import write_table
from clipalign_utils.metrics import sweep as sweep_metrics
from clipalign_utils.metrics import tradeoff
from clipalign_utils.plots.common import save_figure
from clipalign_utils.plots.sweep import factor_panels, shape_vs_noise
from clipalign_utils.plots.tradeoff import summary_figure

params = config.resolve_notebook(globals())  # the parameters cell's values; None = the preset's
run_dir = Path(run_dir)
runs = results.parse_run_dirs(run_dirs, run_dir) if run_dirs is not None else sweep.sweep_run_dirs(run_dir)
data = results.sweep_tables(runs, params["distance"])
table, factors, reference = data["table"], data["factors"], data["reference"]
say(f"{len(runs)} runs, {len(data['settings'])} settings; they differ in: {', '.join(factors) or 'nothing'}")
display(data["settings"])

# %% [markdown]
# ## Every synthesis curve, per setting
# The layout of the paper's Fig. 1 (notebook 5), one colour per setting; panel (a) shows clean
# accuracy only (each setting's noisy curves are on its own page 4). Seeds of one setting are
# replicates: a curve is their mean and the band a 95 % t-interval over them (with one seed, the
# run's own bootstrap interval where it has one).

# %%
means = tradeoff.seed_means(table, by=("setting", "epoch"))
noise_means = tradeoff.seed_means(data["noise"], {"accuracy": ("lo", "hi")}, by=("setting", "sigma", "epoch"))
fig = summary_figure(means, noise_means, by="setting", clean_only=True)
save_figure(fig, run_dir, "sweep_curves")

# %% [markdown]
# ## The paper's claims, per setting
# The verdicts of notebook 5 (*reproduced*, *not reproduced*, *inconclusive*), judged on each
# setting's seed-mean curve.

# %%
verdicts = tradeoff.verdicts(table, n_perm=params["n_perm"], seed=params["seed"], by="setting")
display(verdicts.pivot(index="setting", columns="claim", values="verdict").loc[list(data["settings"]["setting"])])
display(verdicts[["setting", "claim", "statistic", "value", "p_value", "verdict", "detail"]].round(4))

# %% [markdown]
# ## What each setting's curves show
# Per setting: the strongest texture bias inside the first epoch (the texture phase), the texture
# bias at the end, the height and epoch of the IQA-alignment peak and how much is lost after it,
# the normalized noise drop at the first checkpoint above chance and at the last, and the trend of
# the noise drop over training (Spearman over checkpoints, permutation p).

# %%
summary = sweep_metrics.setting_summary(means, n_perm=params["n_perm"], seed=params["seed"])
summary = data["settings"].merge(summary, on="setting")
display(summary.round(3))

# %% [markdown]
# ## How the measures move with each factor
# For each swept parameter, the settings that change it alone (the others at the preset's value).

# %%
slices = sweep_metrics.factor_slices(summary, factors, reference)
effects = pd.concat([sweep_metrics.factor_effects(rows, factor) for factor, rows in slices.items()],
                    ignore_index=True) if slices else pd.DataFrame()
if slices:
    display(effects.round(3))
    fig = factor_panels(slices)
    save_figure(fig, run_dir, "sweep_factors")
else:
    say("no parameter is varied alone in this sweep: compare the settings in the tables above")

# %% [markdown]
# ## 1. Texture–label correlation: a stronger texture phase, an earlier or higher IQA peak?

# %%
def effect_sentence(factor: str, measure: str) -> str:
    row = effects[(effects["factor"] == factor) & (effects["measure"] == measure)].iloc[0]
    return (f"as {factor} goes {row['values']}, {sweep_metrics.SUMMARY_MEASURES[measure]} "
            f"{row['direction']} ({row['measured']})")


if "texture_correlation" in slices:
    for measure in ("early_texture_bias", "iqa_peak_epoch", "iqa_peak_srcc", "iqa_decline"):
        say(effect_sentence("texture_correlation", measure))
else:
    say("this sweep does not vary texture_correlation alone; run one that does, e.g. "
          "clipalign sweep -p texture_correlation=0.5,0.8,0.95 --out runs/texture_correlation")

# %% [markdown]
# ## 2. Does noise robustness follow shape bias across settings?
# If shape-based recognition were what makes a model robust to noise, the settings (and checkpoints)
# with more shape bias would lose less accuracy under noise: a negative relation between shape bias
# and the normalized drop.

# %%
# A drop measured at other noise levels is on another scale: settings that change sigmas stay out.
settings = data["settings"].set_index("setting")
comparable = [s for s in settings.index if "sigmas" not in factors or settings.loc[s, "sigmas"] == reference["sigmas"]]
if len(comparable) < len(data["settings"]):
    say(f"left out (noise drop measured at other sigmas): "
          f"{', '.join(s for s in settings.index if s not in comparable)}")
fig = shape_vs_noise(means[means["setting"].isin(comparable)])
save_figure(fig, run_dir, "sweep_shape_vs_noise")
final = summary[summary["setting"].isin(comparable)].dropna(subset=["noise_drop_final"])
across = {"spearman": (1 - final["final_texture_bias"]).corr(final["noise_drop_final"], method="spearman")
          if len(final) >= 3 else float("nan"), "n": len(final)}
pooled = sweep_metrics.pooled_relation(table[table["setting"].isin(comparable)], n_perm=params["n_perm"],
                                       seed=params["seed"])
say(f"across settings, last checkpoints: Spearman(shape bias, noise drop) = {across['spearman']:.2f} "
      f"over {across['n']} settings")
say(f"pooled over every checkpoint of every run: Spearman(shape bias, noise drop) = {pooled['spearman']:.2f} "
      f"(permutation p = {pooled['p_value']:.3g}, n = {pooled['n']}; descriptive: checkpoints of a run are "
      f"not independent)")
if pooled["n"] < 3:
    say("undetermined: fewer than 3 checkpoints are above chance on clean images, so none has a noise drop")
elif pooled["spearman"] < 0 and pooled["p_value"] < 0.05:
    say("noise robustness follows shape bias: checkpoints with more shape bias lose less under noise")
elif pooled["spearman"] > 0 and pooled["p_value"] < 0.05:
    say("the opposite of the paper's link: checkpoints with more shape bias lose MORE accuracy under noise")
else:
    say("no clear link: shape bias and the noise drop are not significantly related across checkpoints")

# %% [markdown]
# ## 3. Which settings show the paper's picture?

# %%
claims = verdicts.pivot(index="setting", columns="claim", values="verdict")
for setting, row in claims.loc[list(data["settings"]["setting"])].iterrows():
    reproduced = [claim for claim, verdict in row.items() if verdict == tradeoff.REPRODUCED]
    say(f"{setting}: reproduces {len(reproduced)} of {len(row)} claims"
          + (f" ({'; '.join(reproduced)})" if reproduced else ""))

# %%
write_table(table, run_dir, "sweep_checkpoints")
write_table(summary, run_dir, "sweep_summary")
write_table(verdicts, run_dir, "sweep_verdicts")
write_table(effects, run_dir, "sweep_effects")
say(f"tables: {run_dir / 'metrics'}/sweep_{{checkpoints,summary,verdicts,effects}}.csv")
