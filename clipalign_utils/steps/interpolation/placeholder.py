"""Page 11 in a build that did not run the interpolation step (the page's ``placeholder``): the results
recorded in ``book/recorded/interpolation/`` (every run's ``interpolation.csv``, per world, with the
commands and the commit that produced them), their verdicts computed here by the step's own code."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ...io import atomic_write
from ...metrics.tradeoff import at_chance
from ...plots.common import plt, png_bytes
from ...plots.interpolation import measures_vs_alpha
from ...prose import counted
from ...registry import REPO_ROOT
from .analysis import beats_both, seed_table, with_chance_flags
from .page import seed_sentences

RECORDED = REPO_ROOT / "book" / "recorded" / "interpolation"
HEAD = """# 11. Weight interpolation: a knob on the trade-off?

Models on the straight line between two checkpoints of one run, θ(α) = (1 − α)·θ_from + α·θ_to, from
the checkpoint where IQA alignment peaks to the last one, each measured by the IQA, shape and noise
steps (`notebooks/11_interpolation.py`). The question: does some α beat both endpoints on both axes of
the alignment–robustness plane — higher IQA SRCC and a lower normalized noise drop than either? The
*alignment margin* is α's SRCC minus the better endpoint's, the *robustness margin* the better
endpoint's drop minus α's, per run; α beats both when both margins' 95 % t intervals over seeds lie
above 0.

This build did not run the step, so this page shows the recorded results listed below; the verdicts
are computed from the recorded per-run tables by the step's own code. `clipalign run --out FOLDER
--only interpolation` on a folder of seeds runs it and puts its executed page here.
"""


# The count of runs above chance behind each classification measure's mean (metrics.tradeoff.seed_chance_flags).
ABOVE_CHANCE = {"shape_bias": "n_shape_above_chance", "noise_drop": "n_above_chance"}


def _cell(row, column: str) -> str:
    """A mean over runs with its interval, "undefined" where it has none (as the book's tables say it), and for a
    classification measure the runs at chance: "at chance" where most are (the synthesis' mark, the trends leave
    it out), "k of n runs above chance" where fewer than all are (the mean is over those alone)."""
    lo, hi = row.get(f"{column}_lo"), row.get(f"{column}_hi")
    value = ("undefined" if pd.isna(row[column]) else
             f"{row[column]:.3f} [{lo:.3f}, {hi:.3f}]" if pd.notna(lo) else f"{row[column]:.3f}")
    above = row.get(ABOVE_CHANCE.get(column, ""))
    if bool(at_chance(row.to_frame().T, column).iloc[0]):
        return value + " (at chance" + (f": {int(above)} of {int(row['n_runs'])} runs above)" if pd.notna(above)
                                        else ")")
    if pd.notna(above) and above < row["n_runs"]:
        return value + f" ({int(above)} of {int(row['n_runs'])} runs above chance)"
    return value


def world_section(world: dict, folder: Path | None = None) -> list[str]:
    """One recorded world: its commands, the per-α means over runs, the verdict sentences and, with a
    ``folder`` to save it in, the three measures against α (means over runs, 95 % t intervals)."""
    runs = with_chance_flags(pd.read_csv(RECORDED / world["table"]))  # (tables recorded before the flags)
    tables = {label: rows.drop(columns="run") for label, rows in runs.groupby("run", sort=True)}
    seeds = seed_table(tables)
    first = runs.iloc[0]
    lines = [f"## {world['title']}", "", world.get("description", ""), "",
             f"{counted(len(tables), 'run')}: " + "; ".join(f"`{label}` from `{t['from_checkpoint'].iloc[0]}` to "
                                                              f"`{t['to_checkpoint'].iloc[0]}`"
                                                              for label, t in tables.items())
             + f". BatchNorm statistics: {first['bn_statistics']}.", "",
             "```", *world["commands"], "```", "",
             "| α | IQA SRCC | normalized noise drop | shape bias | alignment margin | robustness margin |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {row['alpha']:g} | {_cell(row, 'iqa_srcc')} | {_cell(row, 'noise_drop')} | {_cell(row, 'shape_bias')} "
              f"| {_cell(row, 'alignment_margin')} | {_cell(row, 'robustness_margin')} |" for _, row in seeds.iterrows()]
    if folder is not None:
        figure = f"interpolation_{Path(world['table']).stem}.png"
        fig = measures_vs_alpha(seeds, f"{world['title']}: mean over {len(tables)} runs, 95 % t intervals")
        png = png_bytes(fig)
        plt.close(fig)
        atomic_write(Path(folder) / figure, lambda tmp: tmp.write_bytes(png))
        lines += ["", f"![{world['title']}: IQA SRCC, shape bias and normalized noise drop against α]({figure})"]
    return lines + [""] + [f"- {line}" for line in seed_sentences(beats_both(seeds))] + [""]


def text(folder: Path | None = None) -> str:
    """The page's Markdown; with ``folder`` (where the page goes) each world's figure is saved there too."""
    index = RECORDED / "recorded.json"
    if not index.exists():
        return HEAD + "\nNo results are recorded yet.\n"
    recorded = json.loads(index.read_text())
    lines = [HEAD, f"Recorded at commit `{recorded['commit']}` on {recorded['machine']}. Code changed after it (the "
                   f"README's timing paragraph says which changes altered tables), so the same seeds measured by "
                   f"this build's code can differ in their numbers; the margins below compare each recorded run "
                   f"with its own endpoints.", ""]
    for world in recorded["worlds"]:
        lines += world_section(world, folder)
    return "\n".join(lines)


# The chance flags, last in a recorded table (after run): the tables recorded before them gained them there.
FLAGS = ("shape_at_chance", "at_chance")


def _flags_last(table: pd.DataFrame) -> pd.DataFrame:
    return table[[c for c in table.columns if c not in FLAGS] + [c for c in FLAGS if c in table.columns]]


def record(folder, name: str, title: str, commands: list[str], commit: str, machine: str,
           description: str = "") -> None:
    """Add (or replace) the world ``name`` in the recorded results: every run's ``interpolation.csv`` of the
    folder of runs ``folder``, with a ``run`` column, and its entry in ``recorded.json``."""
    from ...io import write_json
    from ...layout import runs_in
    from ...results.tables import read_metric

    runs = runs_in(folder)
    table = pd.concat([with_chance_flags(read_metric(run, "interpolation")).assign(run=run.name) for run in runs],
                      ignore_index=True)
    atomic_write(RECORDED / f"{name}.csv", lambda tmp: _flags_last(table).to_csv(tmp, index=False))
    index = RECORDED / "recorded.json"
    recorded = json.loads(index.read_text()) if index.exists() else {"worlds": []}
    recorded.update(commit=commit, machine=machine)
    recorded["worlds"] = [w for w in recorded["worlds"] if w["table"] != f"{name}.csv"] + [
        {"title": title, "description": description, "table": f"{name}.csv", "commands": commands}]
    write_json(index, recorded)
