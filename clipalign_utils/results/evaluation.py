"""What a comparison's verdicts rest on: each step's evaluation data in the runs compared, and who judged
them. A verdict named for human perception ("alignment with quality judgments", "mid-level similarity")
measured on an embedded set rests on a stand-in for people; the synthesis, sweep and experiment pages say
so beside their verdicts, read from the runs' records (what each step last measured)."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import pandas as pd

from .. import config, registry
from ..data.registry import display_name

# What each task's data are, per dataset (``<task>_dataset``); ``{reference_observer}`` is filled from the run. A
# real set named as every page names it (``display_name``).
EVALUATION_DATA: dict[str, dict[str, str]] = {
    "iqa": {"embedded": "embedded distortions judged by a reference observer ({reference_observer}), not people",
            "tid2013": f"{display_name('tid2013')}, judged by people (MOS)",
            "kadid10k": f"{display_name('kadid10k')}, judged by people (DMOS)"},
    "cue_conflict": {"embedded": "cue-conflict renders of the training world",
                     "geirhos": f"{display_name('geirhos')} images"},
    "noise": {"embedded": "held-out images of the training world",
              "cifar100": f"{display_name('cifar100')}'s test images"},
    "similarity": {"embedded": "embedded triplets judged by a panel of five full-reference metrics, not people",
                   "bapps": f"{display_name('bapps')}, judged by people",
                   "nights": f"{display_name('nights')}, judged by people"},
    "saliency": {"embedded": "embedded images whose fixations are drawn from the objects' silhouettes, not "
                             "eye tracking", "mit1003": f"{display_name('mit1003')}, people's eye fixations",
                 "cat2000": f"{display_name('cat2000')}, people's eye fixations"},
}
# The tasks whose ground truth is meant to be people's perception (the others classify).
JUDGED_BY_PEOPLE = ("iqa", "similarity", "saliency")


def describe(task: str, dataset: str, params: dict) -> str:
    """What ``dataset`` of ``task`` is, in words (a dataset registered at run time: its name)."""
    text = EVALUATION_DATA.get(task, {}).get(dataset, f"`{dataset}`")
    return text.format(reference_observer=params.get("reference_observer", "?"))


def evaluation_data(run_dirs: Sequence[str | Path]) -> pd.DataFrame:
    """One row per step that reads a dataset and was measured in any of ``run_dirs``: step, task, datasets
    (those the runs' records hold, comma-separated), what (:func:`describe`, joined with " / " where the runs
    differ), stand_in (an embedded set, where the task's ground truth is meant to be people) and people_too (a
    real set as well, in other runs)."""
    from ..record import entry

    rows = []
    for step in registry.steps():
        parameter = config.step_dataset_parameter(step.name)
        if parameter is None:
            continue
        task = parameter.removesuffix("_dataset")
        found: dict[str, str] = {}  # description -> dataset (runs of one dataset judged otherwise differ)
        for run_dir in run_dirs:
            resolved = entry(run_dir, step.name)
            if resolved is not None:
                dataset = str(resolved.params[parameter])
                found.setdefault(describe(task, dataset, resolved.params), dataset)
        if found:
            datasets = list(dict.fromkeys(found.values()))
            rows.append({"step": step.name, "task": task, "datasets": ", ".join(datasets), "what": " / ".join(found),
                         "stand_in": task in JUDGED_BY_PEOPLE and "embedded" in datasets,
                         "people_too": task in JUDGED_BY_PEOPLE and len(set(datasets) - {"embedded"}) > 0})
    return pd.DataFrame(rows, columns=["step", "task", "datasets", "what", "stand_in", "people_too"])


def evaluation_sentence(run_dirs: Sequence[str | Path]) -> str:
    """Markdown: what each step's verdicts rest on in these runs, and which human-named measures rest on
    stand-ins for people."""
    data = evaluation_data(run_dirs)
    if data.empty:
        return "No analysis step's record names its evaluation data in these runs."
    text = "The verdicts rest on these evaluation sets: " + "; ".join(
        f"*{r.step}*: {r.what}" for r in data.itertuples()) + "."
    stand_ins = data.loc[data["stand_in"] & ~data["people_too"], "step"].tolist()
    partly = data.loc[data["stand_in"] & data["people_too"], "step"].tolist()
    if stand_ins:
        text += (f" So the {', '.join(stand_ins)} verdicts describe agreement with stand-ins for people, not with "
                 "people: the real datasets (TID2013, NIGHTS, MIT1003, …) ask it of people.")
    if partly:
        text += f" The {', '.join(partly)} verdicts rest partly on stand-ins for people (the runs on embedded sets)."
    return text
