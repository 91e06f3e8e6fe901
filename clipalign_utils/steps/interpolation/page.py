"""The sentences of the interpolation page (its measurement: :mod:`.analysis`): which two checkpoints,
what became of BatchNorm, and whether some α beats both endpoints on both axes of the
alignment–robustness plane (higher IQA SRCC and lower normalized noise drop than either)."""
from __future__ import annotations

import pandas as pd


def _interval(row, column: str) -> str:
    return f"{row[column]:+.3f} [{row[f'{column}_lo']:+.3f}, {row[f'{column}_hi']:+.3f}]"


def endpoint_sentences(table: pd.DataFrame, params: dict) -> list[str]:
    """The two checkpoints, how the first was chosen, and the BatchNorm statistics of the models between."""
    row = table.iloc[0]
    chosen = ("the checkpoint of highest IQA SRCC" if params["interpolation_from"] == "peak"
              else "interpolation_from")
    lines = [f"from `{row['from_checkpoint']}` (epoch {row['from_epoch']:g}; {chosen}) to `{row['to_checkpoint']}` "
             f"(epoch {row['to_epoch']:g}); α = {', '.join(f'{a:g}' for a in table['alpha'])}"]
    if row["from_checkpoint"] == row["to_checkpoint"]:
        lines.append("both ends are one checkpoint: IQA alignment peaks at the last checkpoint, so there is no "
                     "line to walk (pass interpolation_from=<an earlier checkpoint>)")
    statistics = {"reestimate": f"BatchNorm running statistics re-estimated on the run's first {params['bn_batches']} "
                                f"training batches ({params['batch_size']} images each)",
                  "interpolate": "BatchNorm running statistics interpolated like the weights",
                  "none": "the model has no BatchNorm: nothing to re-estimate"}
    return lines + [statistics[row["bn_statistics"]]]


def run_sentences(table: pd.DataFrame) -> list[str]:
    """One run: the best α on each axis and whether an interior α beats both endpoints on both (one run has
    no interval over seeds: the folder's verdict is the one to read)."""
    table = table.sort_values("alpha")
    ends = table[table["alpha"].isin([0.0, 1.0])]
    inner = table[~table["alpha"].isin([0.0, 1.0])]
    best_iqa, best_drop = table.loc[table["iqa_srcc"].idxmax()], table.loc[table["noise_drop"].idxmin()]
    lines = [f"highest IQA SRCC at α = {best_iqa['alpha']:g} ({best_iqa['iqa_srcc']:.3f}; endpoints "
             f"{ends['iqa_srcc'].iloc[0]:.3f} and {ends['iqa_srcc'].iloc[-1]:.3f})",
             f"lowest normalized noise drop at α = {best_drop['alpha']:g} ({best_drop['noise_drop']:.3f}; endpoints "
             f"{ends['noise_drop'].iloc[0]:.3f} and {ends['noise_drop'].iloc[-1]:.3f})"]
    winners = inner[(inner["iqa_srcc"] > ends["iqa_srcc"].max()) & (inner["noise_drop"] < ends["noise_drop"].min())]
    if len(winners):
        lines.append(f"in this run α = {', '.join(f'{a:g}' for a in winners['alpha'])} beats both endpoints on both "
                     "axes (one run's point estimates; its intervals are over images, not seeds)")
    else:
        lines.append("in this run no interior α beats both endpoints on both axes")
    return lines


def seed_sentences(verdicts: pd.DataFrame) -> list[str]:
    """Over runs (:func:`.analysis.beats_both`): each interior α's paired margins over the better endpoint
    with their 95 % t intervals, then the answer."""
    if verdicts.empty:
        return ["no interior α: nothing between the endpoints was measured"]
    n = int(verdicts["n_runs"].min())
    lines = [f"α = {row['alpha']:g}: alignment margin {_interval(row, 'alignment_margin')}, robustness margin "
             f"{_interval(row, 'robustness_margin')} over {int(row['n_runs'])} runs: {row['verdict']}"
             for _, row in verdicts.iterrows()]
    one_point = int(verdicts["n_one_point"].max()) if "n_one_point" in verdicts else 0
    if one_point:
        lines.append(f"{one_point} of {n} runs peak in IQA alignment at their last checkpoint: their line is one "
                     "point and their margins are 0 at every α")
    dominated = int(verdicts["n_from_dominates"].max()) if "n_from_dominates" in verdicts else 0
    if dominated:
        lines.append(f"in {dominated} of {n} runs the α = 0 end is already better on both axes (higher SRCC and a "
                     "lower noise drop than the last checkpoint): there is no trade-off between the ends to dial")
    winners = verdicts[verdicts["verdict"] == "beats both"]
    if n < 3:
        lines.append(f"only {n} run(s): the question needs at least 3 seeds for an interval to answer it")
    elif len(winners):
        lines.append(f"**yes**: α = {', '.join(f'{a:g}' for a in winners['alpha'])} beats both endpoints on both "
                     f"axes, its margins' 95 % intervals over {n} seeds above 0")
    elif (verdicts["verdict"] == "worse").all():
        lines.append(f"**no**: every interior α is worse than the better endpoint on at least one axis "
                     f"(an interval below 0, {n} seeds)")
    else:
        lines.append(f"**not established**: no interior α beats both endpoints on both axes with both intervals above 0 "
                     f"over {n} seeds")
    return lines
