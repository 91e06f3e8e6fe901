"""Experiments: several sweeps whose runs one chapter compares (``config.EXPERIMENTS``).

    clipalign experiment quality --preset default --out runs/quality [-p epochs=6 …] [--only-sweeps a,b]

Each sweep of the experiment runs into ``OUT/<sweep>`` as ``clipalign sweep`` would (a grid over its
values and the experiment's fixed values, e.g. seeds); then the chapter's notebook compares every run
into ``OUT/notebooks/<page>.ipynb``. ``OUT/experiment.json`` records the plan; the same command resumes.
"""
from __future__ import annotations

import json
from pathlib import Path

from .. import record
from ..config import EXPERIMENT_FIXED, EXPERIMENT_PAGES, EXPERIMENTS
from ..errors import ParameterError
from ..io import write_json
from ..layout import RunDir
from .pipeline import available_steps, note_unread, run_page, split_given, step_notebooks
from .sweep import SWEEP_NOTEBOOK, canonical, run_sweep


def plan(name: str, overrides: dict, only: list[str] | None = None) -> dict[str, dict]:
    """{sweep folder: its -p values}: the experiment's sweeps (those in ``only``, if given) with the fixed
    values and ``overrides`` (one value each) applied to every sweep."""
    if name not in EXPERIMENTS:
        raise ParameterError(f"unknown experiment {name!r}; choose one of: {', '.join(EXPERIMENTS)}")
    sweeps = EXPERIMENTS[name]
    unknown = [s for s in only or () if s not in sweeps]
    if unknown:
        raise ParameterError(f"--only-sweeps {', '.join(unknown)}: the {name} experiment's sweeps are "
                             f"{', '.join(sweeps)}")
    # What the experiment compares is set by its sweeps: a -p of one of those would make every arm alike.
    varied = sorted({parameter for values in sweeps.values() for parameter in values} & set(overrides))
    if varied:
        arms = ", ".join(sweep for sweep, values in sweeps.items() if varied[0] in values)
        raise ParameterError(f"-p {varied[0]}: the {name} experiment sets it per sweep ({arms}), which is what it "
                             f"compares; leave it out (or run clipalign sweep for values of your own)")
    seeds = overrides.get("seed", EXPERIMENT_FIXED.get(name, {}).get("seed"))
    if seeds is None or len([s for s in str(seeds).split(",") if s.strip()]) < 2:
        given = "no -p seed" if seeds is None else f"-p seed={seeds}"
        raise ParameterError(f"{given}: the {name} experiment's seeds are its replicates (its intervals are "
                             f"over them): give two or more, e.g. -p seed=0,1,2")
    return {sweep: {**EXPERIMENT_FIXED.get(name, {}), **values, **overrides}
            for sweep, values in sweeps.items() if not only or sweep in only}


def _shared(name: str, sweeps: dict[str, dict], preset: str) -> dict[str, str]:
    """What every sweep of a plan is given besides its own values: the fixed values and the command's -p,
    written as a sweep compares them ("0, 1" is "0,1", 1e-3 is 0.001)."""
    own = {parameter for values in EXPERIMENTS[name].values() for parameter in values}
    shared = [{k: canonical(k, v, preset) for k, v in values.items() if k not in own} for values in sweeps.values()]
    return shared[0] if shared else {}


def prepare(out: Path, name: str, preset: str, overrides: dict, only: list[str] | None = None):
    """(the sweeps {folder: -p values}, the chapter's resolved parameters, its extra values), the plan
    checked and recorded in OUT/experiment.json."""
    sweeps = plan(name, overrides, only)
    path = RunDir(out).record("experiment")
    recorded = json.loads(path.read_text()) if path.exists() else None
    if recorded is not None and recorded.get("sweeps"):
        # The chapter compares every arm in the folder: arms run with other shared values (another -p epochs)
        # would be compared as if they differed only in what the experiment varies.
        before, now = _shared(name, recorded["sweeps"], preset), _shared(name, sweeps, preset)
        if recorded.get("preset") not in (None, preset):
            raise ParameterError(f"{out} holds the {recorded.get('experiment')} experiment's arms run with --preset "
                                 f"{recorded['preset']}; this command gives --preset {preset}: give the same preset to "
                                 f"add arms or resume, or use another --out")
        if recorded.get("experiment") != name or before != now:
            differ = sorted(k for k in set(before) | set(now) if before.get(k) != now.get(k))

            def values(given: dict) -> str:
                return ", ".join(f"{k}={given[k]}" if k in given else f"{k} the preset's" for k in differ)

            raise ParameterError(f"{out} holds the {recorded.get('experiment')} experiment's arms run with "
                                 f"{values(before)}; this command gives {values(now)}: give the same -p values to add "
                                 f"arms or resume, or use another --out")
    # The chapter's parameters; a seed is a replicate there, not a setting.
    given, extra = split_given({k: v for k, v in overrides.items() if k != "seed"}, [EXPERIMENT_PAGES[name]], preset)
    chapter = record.resolve(out, preset, given)
    for sweep, values in sweeps.items():  # every sweep's checks, before anything is made
        run_sweep(out / sweep, preset, values, one_at_a_time=False, progress=False, check_only=True)
    note_unread(overrides, step_notebooks(available_steps()) + [SWEEP_NOTEBOOK, EXPERIMENT_PAGES[name]])
    out.mkdir(parents=True, exist_ok=True)
    # the arms of earlier commands stay in the record (the chapter reads every arm in the folder)
    every = {**(recorded or {}).get("sweeps", {}), **sweeps}
    write_json(path, {"experiment": name, "preset": preset, "sweeps": every})
    return sweeps, chapter, extra


def run_experiment(out: str | Path, name: str, preset: str | None = None, overrides: dict | None = None,
                   only: list[str] | None = None, progress: bool = True) -> Path:
    """Run the experiment's sweeps into OUT/<sweep>, then its chapter notebook into OUT/notebooks."""
    out = Path(out).resolve()  # the chapter's kernel runs in the repository, not where the command was given
    preset = record.run_preset(out, preset)
    sweeps, chapter, extra = prepare(out, name, preset, dict(overrides or {}), only)
    for k, (sweep, values) in enumerate(sweeps.items(), 1):
        print(f"[experiment {name} {k}/{len(sweeps)}] sweep {sweep}: "
              + " ".join(f"-p {key}={value}" for key, value in values.items()), flush=True)
        run_sweep(out / sweep, preset, values, one_at_a_time=False, progress=progress)
    print(f"[experiment {name}] chapter: {EXPERIMENT_PAGES[name]}", flush=True)
    run_page(EXPERIMENT_PAGES[name], out, chapter, extra, progress=progress,
             label=f"the {name} experiment's chapter")
    return out

