"""Controlled experiments: the pipeline once per combination of parameter values, then one comparison.

    clipalign sweep --preset default -p texture_correlation=0.5,0.8,0.95 [-p model=tiny,small …] --out runs/NAME

A ``-p`` with several values is swept: commas separate the values, except for a list-valued parameter
(``sigmas``, ``iqa_levels``, ``early_checkpoints``,
``quality_families``), where semicolons separate the values and commas the
items of one value (``-p "sigmas=0.01,0.02,0.05;0.1,0.2,0.3"``). A ``-p`` with one value applies to every
run. Every combination of the swept values runs (a grid), or with ``one_at_a_time`` each parameter varies
alone around the preset's values, all sharing one ``base`` run.

Layout: ``OUT/sweep.json`` (the plan), one ordinary run directory per setting (``OUT/texture_correlation-0.5``,
``OUT/texture_correlation-0.5__model-small``, ``OUT/base``) holding every step, and the comparison
notebook ``OUT/notebooks/06_sweep.ipynb`` with its tables ``OUT/metrics/sweep_*.csv``. Each run goes through
the one execution loop (``pipeline.execute``), over the step registry's steps.

Settings that differ only in analysis parameters (those outside the run record's training and world
settings, ``record.TRAINING_KEYS``, such as ``sigmas`` or ``eval_seed``) share one training: their ``checkpoints`` link to the first such run's. Re-running the same
command resumes: executed steps are skipped and an interrupted training continues from its last checkpoint.
"""
from __future__ import annotations

import itertools
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from .. import record, registry
from ..config import PRESETS, coerce, format_value, resolve, sweep_parts, sweep_separator
from ..errors import ParameterError, shell_arg
from ..io import atomic_write, write_json
from ..layout import PARAMS_TXT, TRAIN_LOG, TRAIN_RECORD, RunDir
from ..prose import counted
from .pipeline import (available_steps, check_steps, execute, note_unread, read_by, readers, run_page, split_given,
                       step_notebooks)

SWEEP_NOTEBOOK = registry.SWEEP_PAGE
# What a run shares with another whose training parameters are equal: the training step's outputs.
TRAINING_FILES = (TRAIN_RECORD, PARAMS_TXT, TRAIN_LOG)
TRAINING_FIGURES = ("world_training_pairs.png", "world_degraded_pairs.png", "training_loss.png")


@dataclass(frozen=True)
class Setting:
    """One run of a sweep: its directory name and the swept values it sets (canonical types)."""
    name: str
    values: dict = field(default_factory=dict)


def value_label(value) -> str:
    """A value as it appears in a run directory's name: 0.5, 0.01+0.02, true, small."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        short = f"{value:g}"  # six significant digits, unless two values would then share a folder
        return short if float(short) == value else format_value(float(value))
    if isinstance(value, tuple):
        return "+".join(value_label(item) for item in value)
    return str(value).replace(os.sep, "_")


def parse_values(name: str, raw: str, preset: str) -> list:
    """The values one ``-p name=raw`` gives, coerced to the parameter's type; one value means 'fixed'."""
    if name not in PRESETS[preset]:
        return [raw]  # a notebook-only parameter (a path, say): never swept
    like = PRESETS[preset][name]
    parts = sweep_parts(raw, like)
    if not any(parts):
        raise ParameterError(f"-p {name}={raw!r} gives no value")
    if not all(parts):
        raise ParameterError(f"-p {name}={raw!r} has an empty value: separate the values by single "
                             f"{'semicolons' if sweep_separator(like) == ';' else 'commas'}")
    values = [coerce(name, part, like) for part in parts]
    for value in values:
        # choices and ranges, naming the parameter (a step's values taken together are checked per setting,
        # with the other -p values: shape_classifier=imagenet needs the cue_conflict_dataset given beside it)
        resolve(preset, every_step=False, **{name: value})
    if len(set(values)) != len(values):
        raise ParameterError(f"-p {name}={raw!r} repeats a value")
    return values


def canonical(name: str, raw, preset: str) -> str:
    """A ``-p`` value as a sweep records and compares it: each value of the parameter's type, written as
    ``format_value`` writes it, so ``lr=1e-3`` is ``lr=0.001`` and ``seed=0, 1`` is ``seed=0,1``. A value this
    preset cannot read (a record of an older version, say) is kept as written, and so compares unequal."""
    try:
        values = parse_values(name, str(raw), preset)
    except ParameterError:
        return str(raw)
    return sweep_separator(PRESETS[preset].get(name)).join(format_value(value) for value in values)


def split_overrides(overrides: dict, preset: str) -> tuple[dict, dict]:
    """(fixed, swept): -p values given once, and those given several values (name -> list)."""
    fixed, swept = {}, {}
    for name, raw in overrides.items():
        values = parse_values(name, str(raw), preset)
        if len(values) > 1:
            swept[name] = values
        else:
            fixed[name] = raw
    return fixed, swept


def plan(preset: str, fixed: dict, swept: dict, one_at_a_time: bool = False) -> list[Setting]:
    """The runs of a sweep, in order. Grid: the product of the swept values, first parameter outermost.
    One at a time: ``base`` (every parameter at the preset's or fixed value), then each other value of
    each swept parameter alone."""
    if not swept:
        raise ParameterError("a sweep needs at least one -p NAME=V1,V2 with two or more values "
                             "(list parameters such as sigmas: -p \"sigmas=0.01,0.02;0.1,0.2\")")
    if not one_at_a_time:
        names = list(swept)
        settings = [Setting("__".join(f"{n}-{value_label(v)}" for n, v in zip(names, combo)), dict(zip(names, combo)))
                    for combo in itertools.product(*(swept[n] for n in names))]
    else:
        base = resolve(preset, **fixed)
        settings = [Setting("base", {})]
        for name, values in swept.items():
            settings += [Setting(f"{name}-{value_label(v)}", {name: v}) for v in values if v != base[name]]
    seen: dict[str, Setting] = {}
    for setting in settings:
        if setting.name in seen:  # one folder would hold two settings' runs
            raise ParameterError(f"the sweep's settings {seen[setting.name].values} and {setting.values} would share "
                                 f"the run folder {setting.name!r}; give values that differ in their names")
        seen[setting.name] = setting
    return settings


def trained_by(preset: str, fixed: dict, settings: list[Setting]) -> list[str]:
    """For each setting, the name of the first setting with the same training parameters (the run record's
    ``TRAINING_KEYS``): itself, or an earlier run whose checkpoints it will share."""
    first: dict[str, str] = {}
    names = []
    for setting in settings:
        params = resolve(preset, **{k: v for k, v in fixed.items() if k in PRESETS[preset]}, **setting.values)
        key = json.dumps({k: format_value(params[k]) for k in sorted(record.TRAINING_KEYS)})
        names.append(first.setdefault(key, setting.name))
    return names


def _check_record(out: Path, plan_record: dict) -> None:
    """A sweep directory holds one plan: resuming with another is refused rather than mixed."""
    path = RunDir(out).record("sweep")
    if not path.exists():
        return
    old = json.loads(path.read_text())

    def comparable(plan: dict) -> dict:  # values as written by any version: 1e-3 is 0.001, 1.0 is 1, True is true
        preset = plan.get("preset")
        written = {k: plan.get(k) for k in ("preset", "fixed", "swept", "one_at_a_time")}
        if preset not in PRESETS:
            return written
        return {**written, "fixed": {k: canonical(k, v, preset) for k, v in (plan.get("fixed") or {}).items()},
                "swept": {k: [canonical(k, v, preset) for v in values]
                          for k, values in (plan.get("swept") or {}).items()}}

    # a grid's swept parameters' order too: it names the grid's runs (the same values in another order would
    # train every run again beside the first ones); one at a time, the runs are named by value alone
    if comparable(old) != comparable(plan_record) or (
            not plan_record["one_at_a_time"] and list(old.get("swept") or {}) != list(plan_record["swept"])):
        raise ParameterError(f"{path} records another sweep (preset {old.get('preset')!r}, swept "
                             f"{old.get('swept')}, fixed {old.get('fixed')}, in that order): give the same -p values "
                             f"in the same order to resume it, use another --out, or delete {out}")


def share_training(source: Path, run_dir: Path) -> None:
    """Give ``run_dir`` the finished training of ``source``: checkpoints and embedding cache linked,
    records copied, and the executed training notebook copied last (it marks the step done)."""
    source, target = RunDir(source), RunDir(run_dir)
    target.notebooks.mkdir(parents=True, exist_ok=True)
    # The embedding cache is keyed by the checkpoint files' identity, so it is shared too: analyses
    # that ask for the same images at the same checkpoint cost nothing the second time.
    source.cache.mkdir(exist_ok=True)
    for shared, link in ((source.checkpoints, target.checkpoints), (source.cache, target.cache)):
        if not link.exists() and not link.is_symlink():
            link.symlink_to(os.path.relpath(shared, target.path), target_is_directory=True)
    for name in TRAINING_FILES:
        if (source.path / name).exists():
            shutil.copy2(source.path / name, target.path / name)
    target.figures.mkdir(exist_ok=True)
    for name in TRAINING_FIGURES:
        if (source.figures / name).exists():
            shutil.copy2(source.figures / name, target.figures / name)
    train = registry.get("train").notebook
    atomic_write(target.executed(train), lambda tmp: shutil.copy2(source.executed(train), tmp))


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min"


def time_left(executed: Sequence[tuple[float, int, bool]], to_go: Sequence[tuple[int, bool]]) -> float:
    """Seconds the runs to go ((epochs, trains) each) should take, at the pace per epoch of the runs executed
    so far ((seconds, epochs, trained) each). A run's training and its analyses (one pass per checkpoint)
    both grow with its epochs, so a 24-epoch run counts as about five 5-epoch ones. A run that shares
    another's training costs its analyses alone: each kind is weighed at the pace of the runs of its kind,
    until one has run at the pace of all."""
    def pace(kind: bool | None = None) -> float | None:
        runs = [(seconds, epochs) for seconds, epochs, trained in executed if kind is None or trained == kind]
        epochs = sum(epochs for _, epochs in runs)
        return sum(seconds for seconds, _ in runs) / epochs if epochs else None

    overall = pace() or 0.0
    return sum(epochs * (pace(trains) or overall) for epochs, trains in to_go)


def time_left_during(executed: Sequence[tuple[float, int, bool]], to_go: Sequence[tuple[int, bool]],
                     spent: float) -> float:
    """:func:`time_left` while the first of ``to_go`` runs, ``spent`` seconds into it: that run's estimate less
    what it has spent (not below 0), and the others'. (A step line of a run otherwise repeated the same estimate
    from its first step to its last.)"""
    return max(time_left(executed, to_go[:1]) - spent, 0.0) + time_left(executed, to_go[1:])


def run_sweep(out: str | Path, preset: str | None = None, overrides: dict | None = None,
              one_at_a_time: bool = False, progress: bool = True, only: list[str] | None = None,
              compare: bool = True, check_only: bool = False) -> Path:
    """Run every setting of the sweep into ``out/<setting>``, then the comparison notebook into ``out``.
    ``only``: run just these settings (a launcher's job: one training and the settings sharing it);
    ``compare=False``: no comparison (the job's caller runs it once every job has finished); ``check_only``:
    every check the sweep makes before its folder, and nothing else (an experiment's sweeps, all checked first)."""
    out = Path(out).resolve()
    preset = record.run_preset(out, preset)
    overrides = dict(overrides or {})
    steps = available_steps()  # every step, the synthesis of each run included
    pages = step_notebooks(steps) + [SWEEP_NOTEBOOK]
    split_given(overrides, pages, preset)  # unknown names, before anything
    fixed, swept = split_overrides(overrides, preset)
    read = read_by(step_notebooks(steps))  # a swept value reaches the runs' pages (the comparison gets fixed ones)
    unread = [name for name in swept if name not in read]
    if unread:  # its settings would differ in name only: one run measured several times, compared with itself
        steps_reading = readers(unread[0])
        raise ParameterError(f"-p {unread[0]}: no page a sweep runs reads it"
                             + (f" (step {', '.join(steps_reading)} does, which a sweep does not run: clipalign run "
                                f"--only {steps_reading[0]} on a run instead)" if steps_reading else "")
                             + "; every setting would be the same run")
    settings = plan(preset, fixed, swept, one_at_a_time)
    runs = [{"name": setting.name, "setting": {k: format_value(v) for k, v in setting.values.items()},
             "trained_by": source} for setting, source in zip(settings, trained_by(preset, fixed, settings))]
    plan_record = {"preset": preset, "fixed": {k: canonical(k, v, preset) for k, v in fixed.items()},
                   "swept": {k: [format_value(v) for v in values] for k, values in swept.items()},
                   "one_at_a_time": one_at_a_time, "runs": runs}
    _check_record(out, plan_record)
    # Every setting resolved against its run's record (an existing run that contradicts stops the sweep).
    resolved, extras = {}, {}
    for run in runs:
        given, extras[run["name"]] = split_given({**fixed, **run["setting"]}, step_notebooks(steps), preset)
        resolved[run["name"]] = record.resolve(out / run["name"], preset, given)
        check_steps(out / run["name"], steps, resolved[run["name"]])  # real datasets read before anything runs
    page_given, page_extra = split_given(fixed, [SWEEP_NOTEBOOK], preset)
    page = record.resolve(out, preset, page_given)
    if check_only:
        return out
    if not only:  # the command's own line, planning a launcher's jobs too (each job runs with its own only)
        note_unread(fixed, pages)
    out.mkdir(parents=True, exist_ok=True)
    write_json(RunDir(out).record("sweep"), plan_record)

    started, executed = time.time(), []
    # Each run's epochs, 0 for one this call skips (not in --only, or complete), and whether it will train
    # (not shared, not trained before): what the estimates weigh.
    to_go = [(0 if (only is not None and setting.name not in only) or RunDir(out / setting.name).done_all(steps)
              else int(resolved[setting.name].params["epochs"]),
              run["trained_by"] == setting.name and not RunDir(out / setting.name).done("train"))
             for setting, run in zip(settings, runs)]
    for number, (setting, run) in enumerate(zip(settings, runs), 1):
        run_dir = out / setting.name
        tag = f"[sweep {number}/{len(settings)} {setting.name}]"
        if only is not None and setting.name not in only:
            continue
        if RunDir(run_dir).done_all(steps):
            print(f"{tag} skip: complete", flush=True)
            continue
        run_started = time.time()

        def shared(step: str, prefix: str, run=run, run_dir=run_dir, name=setting.name) -> bool:
            if step != "train" or run["trained_by"] == name:
                return False
            print(f"{prefix}: shared with {run['trained_by']} (same training parameters)", flush=True)
            share_training(out / run["trained_by"], run_dir)
            return True

        def sweep_left(number=number, run_started=run_started) -> str:  # this run included
            left = time_left_during(executed, to_go[number - 1:], time.time() - run_started)
            return f"; sweep about {_minutes(left)} left" if executed else ""

        ran = execute(run_dir, steps, resolved[setting.name], extra=extras[setting.name], progress=progress,
                      tag=f"{tag} ", resume=True, instead=shared, note=sweep_left)
        took = time.time() - run_started
        # A run that only re-ran its synthesis (--preset full's base, linked from its seed-0 run) says
        # nothing of what the runs to go cost.
        if any(not registry.get(step).synthesis for step in ran):
            executed.append((took, to_go[number - 1][0], "train" in ran))
        left = len(settings) - number
        estimate = f", about {_minutes(time_left(executed, to_go[number:]))} left" if left and executed else ""
        print(f"{tag} done in {_minutes(took)}; sweep elapsed {_minutes(time.time() - started)}, "
              f"{counted(left, 'run')} to go{estimate}", flush=True)
    if not compare:
        return out
    print(f"[sweep] comparison: {SWEEP_NOTEBOOK} -> {out / 'notebooks'}", flush=True)
    # The comparison is cheap and reads every run, so it is always re-run.
    run_page(SWEEP_NOTEBOOK, out, page, page_extra, progress, label="the sweep comparison")
    print(f"[sweep] done in {_minutes(time.time() - started)}; tables in {out / 'metrics'}", flush=True)
    return out


def training_groups(out: str | Path) -> list[list[str]]:
    """The settings of the sweep recorded in ``out``, grouped by the training they share (one group per
    training, in plan order): a launcher's jobs."""
    groups: dict[str, list[str]] = {}
    for run in json.loads(RunDir(out).record("sweep").read_text())["runs"]:
        groups.setdefault(run["trained_by"], []).append(run["name"])
    return list(groups.values())


def sweep_run_dirs(sweep_dir: str | Path) -> list[Path]:
    """The run directories a sweep's record lists, in its order."""
    path = RunDir(sweep_dir).record("sweep")
    if not path.exists():
        raise ParameterError(f"{path} is missing: {sweep_dir} is not a sweep directory "
                             f"(clipalign sweep … --out {shell_arg(sweep_dir)}), or pass run_dirs")
    return [Path(sweep_dir) / run["name"] for run in json.loads(path.read_text())["runs"]]
