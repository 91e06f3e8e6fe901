"""The sentences of the interpolation page (its measurement: :mod:`.analysis`): which two checkpoints,
what became of BatchNorm, and whether some α beats both endpoints on both axes of the
alignment–robustness plane (higher IQA SRCC and lower normalized noise drop than either)."""
from __future__ import annotations

import pandas as pd


def _interval(row, column: str) -> str:
    if pd.isna(row[column]):
        return "undefined"
    if pd.isna(row[f"{column}_lo"]):
        return f"{row[column]:+.3f} (no interval)"
    return f"{row[column]:+.3f} [{row[f'{column}_lo']:+.3f}, {row[f'{column}_hi']:+.3f}]"


def _defined(row, margin: str) -> str:
    """' (defined in k)' when the margin is defined in fewer runs than the row has (older tables: nothing)."""
    n = row.get(f"n_{margin}")
    return f" (defined in {int(n)})" if pd.notna(n) and 0 < n < row["n_runs"] else ""


def _value(value) -> str:
    return "undefined" if pd.isna(value) else f"{value:.3f}"


def endpoint_sentences(table: pd.DataFrame, params: dict) -> list[str]:
    """The two checkpoints, how the first was chosen, and the BatchNorm statistics of the models between."""
    row = table.iloc[0]
    chosen = ("the checkpoint of highest IQA SRCC" if params["interpolation_from"] == "peak"
              else "interpolation_from")
    lines = [f"from `{row['from_checkpoint']}` (epoch {row['from_epoch']:g}; {chosen}) to `{row['to_checkpoint']}` "
             f"(epoch {row['to_epoch']:g}); α = {', '.join(f'{a:g}' for a in table['alpha'])}"]
    if row["from_checkpoint"] == row["to_checkpoint"]:
        to = "the last checkpoint" if params["interpolation_to"] == "last" else "the interpolation_to checkpoint"
        lines.append(f"both ends are one checkpoint: IQA alignment peaks at {to}, so there is no line to walk "
                     "(pass interpolation_from=<an earlier checkpoint>)")
    elif row["from_epoch"] > row["to_epoch"]:
        # legitimate (e.g. walking back from a late checkpoint), but the page's words "from" and "towards"
        # then run against training's order, so say it
        lines.append(f"the line runs backwards in training: α = 0 is the later checkpoint (epoch "
                     f"{row['from_epoch']:g}), α = 1 the earlier (epoch {row['to_epoch']:g})")
    statistics = {"reestimate": f"BatchNorm running statistics re-estimated on the run's first {params['bn_batches']} "
                                f"training batches ({params['batch_size']} images each) at every α, the ends "
                                "included, so that the line compares like with like",
                  "interpolate": "BatchNorm running statistics interpolated like the weights",
                  "none": "the model has no BatchNorm: nothing to re-estimate"}
    return lines + [statistics[row["bn_statistics"]]]


def ends_sentences(table: pd.DataFrame, path: pd.DataFrame) -> list[str]:
    """With re-estimated BatchNorm statistics, how far re-estimation alone moves the two ends (a line of one
    point: its one checkpoint): each end's IQA SRCC and normalized noise drop with its own trained
    statistics (``path``: the checkpoints' rows, :func:`.analysis.checkpoint_path`) and re-estimated (the
    table's α = 0 and 1). Nothing otherwise."""
    table = table.sort_values("alpha")
    first = table.iloc[0]
    if first["bn_statistics"] != "reestimate":
        return []
    own = path.set_index("checkpoint")
    one_point = first["from_checkpoint"] == first["to_checkpoint"]
    ends = [(0.0, first["from_checkpoint"])] + ([] if one_point else [(1.0, first["to_checkpoint"])])
    lines = []
    for alpha, name in ends:
        if name not in own.index:  # the steps' tables no longer hold it (re-measured since): nothing to compare
            continue
        row = table[table["alpha"] == alpha].iloc[0]
        where = "every α: one point" if one_point else f"α = {alpha:g}"
        trained, reestimated = own.loc[name, "noise_drop"], row["noise_drop"]
        lines.append(f"re-estimation alone moves `{name}` ({where}): IQA SRCC {_value(own.loc[name, 'iqa_srcc'])} "
                     f"with its trained statistics → {_value(row['iqa_srcc'])}; normalized noise drop "
                     f"{_value(trained)} → {_value(reestimated)}{_chance_moved(trained, reestimated)}")
    return lines


def _chance_moved(trained: float, reestimated: float) -> str:
    """Why a drop is undefined on either side: a drop is undefined exactly where the model's clean accuracy is at
    chance on the noise set (``metrics.noise.mean_drops``), so a change of definedness is re-estimation moving the
    model across chance."""
    if pd.notna(trained) and pd.isna(reestimated):
        return " (above chance on the noise set with its trained statistics, at chance with re-estimated ones: no drop)"
    if pd.isna(trained) and pd.notna(reestimated):
        return " (at chance on the noise set with its trained statistics, above chance with re-estimated ones)"
    if pd.isna(trained):
        return " (at chance on the noise set with either statistics)"
    return ""


def run_sentences(table: pd.DataFrame) -> list[str]:
    """One run: the best α on each axis and whether an interior α beats both endpoints on both (one run has
    no interval over seeds: the folder's verdict is the one to read). An α whose drop is undefined (its model
    at chance on the noise set) is said so, and cannot beat anything."""
    table = table.sort_values("alpha")
    ends = table[table["alpha"].isin([0.0, 1.0])]
    inner = table[~table["alpha"].isin([0.0, 1.0])]
    reestimated = "bn_statistics" in table and (table["bn_statistics"] == "reestimate").all()
    lines = []
    for column, what, best in (("iqa_srcc", "highest IQA SRCC", "idxmax"),
                               ("noise_drop", "lowest normalized noise drop", "idxmin")):
        defined = table[column].dropna()
        ends_said = f"endpoints {_value(ends[column].iloc[0])} and {_value(ends[column].iloc[-1])}"
        if defined.empty:
            # re-estimated, the checkpoints' own statistics may have been above chance (ends_sentences says)
            models = ("every model, with its re-estimated BatchNorm statistics," if reestimated
                      else "every model")
            lines.append(f"{what}: undefined at every α ({models} at chance on its set; {ends_said})")
            continue
        row = table.loc[getattr(defined, best)()]
        lines.append(f"{what} at α = {row['alpha']:g} ({row[column]:.3f}; {ends_said})")
    if ends[["iqa_srcc", "noise_drop"]].isna().any(axis=None):
        lines.append("an endpoint's measure is undefined: whether an interior α beats both endpoints cannot be told")
        return lines
    winners = inner[(inner["iqa_srcc"] > ends["iqa_srcc"].max()) & (inner["noise_drop"] < ends["noise_drop"].min())]
    if len(winners):
        lines.append(f"in this run α = {', '.join(f'{a:g}' for a in winners['alpha'])} beats both endpoints on both "
                     "axes (one run's point estimates; its intervals are over images, not seeds)")
    elif inner[["iqa_srcc", "noise_drop"]].isna().any(axis=None):
        lines.append("in this run no interior α with both measures defined beats both endpoints on both axes")
    else:
        lines.append("in this run no interior α beats both endpoints on both axes")
    return lines


def seed_sentences(verdicts: pd.DataFrame) -> list[str]:
    """Over runs (:func:`.analysis.beats_both`): each interior α's paired margins over the better endpoint
    with their 95 % t intervals, then the answer."""
    if verdicts.empty:
        return ["no interior α: nothing between the endpoints was measured"]
    n = int(verdicts["n_runs"].min())
    lines = [f"α = {row['alpha']:g}: alignment margin {_interval(row, 'alignment_margin')}"
             f"{_defined(row, 'alignment_margin')}, robustness margin {_interval(row, 'robustness_margin')}"
             f"{_defined(row, 'robustness_margin')} over {int(row['n_runs'])} runs: {row['verdict']}"
             for _, row in verdicts.iterrows()]
    one_point = int(verdicts["n_one_point"].max()) if "n_one_point" in verdicts else 0
    if one_point:
        lines.append(f"{one_point} of {n} runs peak in IQA alignment at the checkpoint their line ends at "
                     "(interpolation_to): their line is one point and their margins are 0 at every α (the "
                     "robustness margin undefined where the drop is undefined)")
    dominated = int(verdicts["n_from_dominates"].max()) if "n_from_dominates" in verdicts else 0
    if dominated:
        lines.append(f"in {dominated} of {n} runs the α = 0 end is already better on both axes (higher SRCC and a "
                     "lower noise drop than the α = 1 end): there is no trade-off between the ends to dial")
    winners = verdicts[verdicts["verdict"] == "beats both"]
    if n < 2:  # the margins' t intervals, as every interval over seeds, need two runs (their rows said so too)
        lines.append("only one run: the question needs at least 2 seeds for an interval to answer it")
    elif len(winners):
        # a margin is undefined in a run where an end's measure is: its interval may rest on fewer runs
        counts = [c for c in ("n_alignment_margin", "n_robustness_margin") if c in winners]
        k = int(winners[counts].min().min()) if counts else n
        over = f"over {n} seeds" if k >= n else f"over the {k} of {n} seeds where both margins are defined"
        lines.append(f"**yes**: α = {', '.join(f'{a:g}' for a in winners['alpha'])} beats both endpoints on both "
                     f"axes, its margins' 95 % intervals {over} above 0")
    elif (verdicts["verdict"] == "worse").all():
        lines.append(f"**no**: every interior α is worse than the better endpoint on at least one axis "
                     f"(an interval below 0, {n} seeds)")
    else:
        lines.append(f"**not established**: no interior α beats both endpoints on both axes with both intervals above 0 "
                     f"over {n} seeds")
    return lines
