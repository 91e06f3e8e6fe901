"""The sentences and figures of the tradeoff page (its measurement: :mod:`.analysis`)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ... import registry, results
from ...metrics import tradeoff
from ...prose import ONE_CHECKPOINT, below_chance_sentence, chance_reading, no_peak_sentence
from ...plots.tradeoff import alignment_robustness_plane, relation_panels, summary_figure
from .analysis import peaked


def summary(means: pd.DataFrame, run_dirs: list[Path]):
    """The summary figure: every measure's seed-mean curve, and accuracy per noise level."""
    noise_means = tradeoff.seed_means(results.noise_curves_of(run_dirs), {"accuracy": ("lo", "hi")},
                                      by=("scale", "sigma", "epoch"))
    return summary_figure(means, noise_means, by="scale")


def _prefix(frame: pd.DataFrame, scale: str) -> str:
    return f"{scale}: " if frame["scale"].nunique() > 1 else ""


def _sentence(text: str) -> str:
    """``text`` with its first letter capitalised (``str.capitalize`` lowers the rest: "srcc")."""
    return text[:1].upper() + text[1:]


def peak_sentences(means: pd.DataFrame) -> list[str]:
    """Where each alignment measure's seed-mean curve peaks, per scale, and whether the peak is interior
    and its interval above the last checkpoint's (``tradeoff.rises_then_falls``); read against the measure's
    chance level (``registry.Summary.chance``): no peak where every checkpoint's interval contains it, and where
    every one lies below it, that it does."""
    lines = []
    for scale, curve in means.groupby("scale", sort=False):
        for column, what in peaked():
            if column not in curve.columns or not curve[column].notna().any():
                continue
            summary = registry.summary_of(column)
            chance = None if summary is None else summary.chance
            measured = curve[curve[column].notna()]
            reading = chance_reading(measured[f"{column}_lo"], measured[f"{column}_hi"], chance)
            if reading == "at chance":  # every interval contains chance: the highest value is noise, no peak
                lines.append(f"{_prefix(means, scale)}{no_peak_sentence(what, chance)}.")
                continue
            below = (f" {_sentence(below_chance_sentence(what, chance, summary.below_chance))}." if reading == "below"
                     else "")
            if len(measured) == 1:  # one checkpoint: nothing to peak
                only = measured.iloc[0]
                lines.append(f"{_prefix(means, scale)}{what} at the one checkpoint (epoch {only['epoch']:g}): "
                             f"{only[column]:.3f}; {ONE_CHECKPOINT}.{below}")
                continue
            peak = tradeoff.rises_then_falls(curve["epoch"], curve[column], curve[f"{column}_lo"],
                                             curve[f"{column}_hi"])
            # (an interval of nan: a bootstrap over one item, or one seed's t interval, gave none to compare)
            compared = (f"its interval **{'lies' if peak['ci_separated'] else 'does not lie'}** above the last "
                        "checkpoint's" if pd.notna(peak["ci_gap"]) else
                        "the peak and the last checkpoint lack the intervals to compare")
            lines.append(
                f"{_prefix(means, scale)}{what} peaks at epoch {peak['peak_epoch']:g} with "
                f"{peak['peak_value']:.3f}; the last checkpoint (epoch {peak['final_epoch']:g}) has "
                f"{peak['final_value']:.3f}. The peak **{'lies' if peak['peak_is_interior'] else 'does not lie'}** "
                f"strictly inside the run, and {compared}.{below}")
    return lines


def relations_figure(means: pd.DataFrame, relations: pd.DataFrame):
    return relation_panels(means, relations, by="scale")


def plane_figure(means: pd.DataFrame, plane_table: pd.DataFrame):
    selected = {row.scale: label for label, row in plane_table[plane_table["selected"]].iterrows()}
    return alignment_robustness_plane(means, plane_table["on_pareto_front"].to_numpy(), selected, by="scale")


def plane_sentences(plane_table: pd.DataFrame, params: dict) -> list[str]:
    """Per scale: the Pareto front's checkpoints and the one selected with ``alignment_weight``."""
    lines = []
    for scale, rows in plane_table.groupby("scale", sort=False):
        choice = rows[rows["selected"]]
        choice = (f"{choice['checkpoint'].iloc[0]} (epoch {choice['epoch'].iloc[0]:g})" if len(choice)
                  else "none (no checkpoint has a noise drop: all at chance)")
        lines.append(f"{_prefix(plane_table, scale)}Pareto front: "
                     f"{', '.join(rows.loc[rows['on_pareto_front'], 'checkpoint']) or 'empty'}; "
                     f"selected with alignment_weight={params['alignment_weight']}: {choice}")
    return lines


def verdict_sentences(verdicts: pd.DataFrame) -> list[str]:
    """One Markdown list item per verdict: the claim, the verdict, the statistic with its interval and p;
    the scale first when the table has several; with several seeds (``seeds_agree``, ``n_seeds`` > 1) the
    share of seeds that agree and, where they differ, each seed's own verdict (``seed_verdicts``), or the one
    verdict every seed gives alone where that differs from the seed-mean's."""
    lines = []
    several_scales = "scale" in verdicts.columns and verdicts["scale"].nunique() > 1
    for _, row in verdicts.iterrows():
        where = f"{row['scale']}: " if several_scales else ""
        interval = f" [{row['ci_lo']:.3f}, {row['ci_hi']:.3f}]" if pd.notna(row["ci_lo"]) else ""
        p_text = f", p = {row['p_value']:.3g}" if pd.notna(row["p_value"]) else ""
        counts = str(row["statistic"]).startswith("checkpoints with")  # a peak claim's run too short to test
        value = f"{row['value']:.0f}" if counts and pd.notna(row["value"]) else f"{row['value']:.3f}"
        line = (f"- {where}{row['claim']}: **{row['verdict']}** "
                + (f"({row['statistic']} = {value}{interval}{p_text})" if pd.notna(row["value"])
                   else f"({row['statistic']} undefined: {row['detail']})"))
        if counts:
            line += f" — {row['detail']}"
        if (row["verdict"] == tradeoff.INCONCLUSIVE and pd.notna(row["ci_lo"])
                and (row["ci_lo"] > 0 or row["ci_hi"] < 0)):
            # an interval clear of 0 beside "inconclusive": the reason is the detail's last clause
            line += f" — {str(row['detail']).rsplit('; ', 1)[-1]}"
        elif row["verdict"] == tradeoff.INCONCLUSIVE and pd.notna(row["value"]) and pd.isna(row["ci_lo"]) \
                and "; no interval: " in str(row.get("detail", "")):
            line += f" — {str(row['detail']).rsplit('; ', 1)[-1]}"
        if "seeds_agree" in row.index and row.get("n_seeds", 2) > 1:
            line += f"; {row['seeds_agree']:.0%} of {row['n_seeds']} seeds agree"
            if row["seeds_agree"] < 1 and "seed_verdicts" in row.index:
                own = {part.split(": ", 1)[-1] for part in str(row["seed_verdicts"]).split("; ")}
                # Seeds that all say one thing do not differ: pooled over seeds, the mean is another verdict.
                line += (f" — each seed alone: {own.pop()}" if len(own) == 1
                         else f" — **the seeds differ** (per seed: {row['seed_verdicts']})")
        lines.append(line)
    return lines


def verdict_table(verdicts: pd.DataFrame) -> pd.DataFrame:
    """The verdicts as the page shows them: numbers to 3 decimals, p-values to 4 (a permutation p's resolution,
    as the relations table shows them); the csv keeps every digit."""
    return verdicts.round(3).assign(p_value=verdicts["p_value"].round(4))


def verdict_text(verdicts: pd.DataFrame) -> str:
    """The verdicts as one Markdown list (:func:`verdict_sentences`)."""
    return "\n".join(verdict_sentences(verdicts))
