"""A run's record: every step's parameters resolved once, where each value came from, and what the step
was measured on.

:func:`resolve` is the one place a run's parameters are resolved: the preset's values, then the run's own
training record on top (``train_params.json`` from our trainer; ``params.txt`` from open_clip_train, which
names the model, the seed and the input size), then the values given (``-p``, papermill). A training or
world parameter that contradicts the run's record is refused with one line naming the recorded value;
analysis parameters (distance, sigmas, datasets, …) may be given per step, and :func:`for_step` keeps, for a
step re-run without them, what its record.json entry was given last time. What a record lacks (a run
with no record at all, or params.txt only) comes from the preset or the given value, and the sources say
which. The result is a frozen :class:`Resolved`, with the typed groups :class:`TrainingSettings` and
:class:`WorldSettings`.

``RUN_DIR/record.json``::

    {"preset": "smoke",
     "steps": {"iqa": {"preset": "smoke", "parameters": {…}, "sources": {"seed": "train_params.json", …},
                       "eval_sets": {"all": "<sha256>", "iqa_embedded_references": "<sha256>", …}}, …}}

The CLI resolves, writes a step's entry and passes the step's notebook exactly those values; the notebook
finds them in the record (:func:`for_page`) instead of resolving again. A notebook run by hand with other
values, or opened alone, resolves them itself (the same :func:`resolve`) and writes the entry. A step's
``load`` records a content hash of each evaluation set it used (:func:`records_evaluation_sets`).
"""
from __future__ import annotations

import ast
import dataclasses
import difflib
import functools
import hashlib
import json
from dataclasses import dataclass, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, Collection, Mapping

import numpy as np
import pandas as pd

from . import config, registry
from .data.registry import TASKS, dataset_parameter, root_parameter
from .data.world import QUALITY_FAMILIES
from .errors import ParameterError, shell_arg
from .io import BEFORE_TABLES, table_key, write_json
from .layout import KIND_RECORDS, PARAMS_TXT, TRAIN_RECORD, RunDir, image_size_of, read_params_txt, runs_in
from .prose import plural


@dataclass(frozen=True)
class WorldSettings:
    """The embedded world a run trained on (its evaluation sets are drawn from it, with clean images)."""

    image_size: int
    texture_correlation: float
    texture_scale: float
    object_placement: str
    quality_variation: float
    quality_families: tuple[str, ...]


@dataclass(frozen=True)
class TrainingSettings:
    """What, besides its world, determines a run's trained weights."""

    seed: int
    model: str
    epochs: int
    samples_per_epoch: int
    batch_size: int
    lr: float
    weight_decay: float
    warmup: int
    fresh_data: bool
    early_checkpoints: tuple[float, ...]


WORLD_KEYS = tuple(f.name for f in fields(WorldSettings))
# The parameters a trained run keeps: those of both groups (train_params.json holds them).
TRAINING_KEYS = tuple(f.name for f in fields(TrainingSettings)) + WORLD_KEYS
# What a training record written before a key existed means by its absence (those runs trained on clean images).
RECORDED_BEFORE = {"quality_variation": 0.0, "quality_families": list(QUALITY_FAMILIES),
                   "object_placement": "centred"}
GIVEN = "given"  # the source of a value passed with -p or by papermill
CARRIED = "record.json"  # the source of a value a step was given before, kept for its re-run (for_step)
# How a step runs, not what it measures: a re-run never inherits them (the next machine may have no GPU).
MACHINE_KEYS = ("device", "eval_batch_size")


def jsonable(value):
    return list(value) if isinstance(value, tuple) else value


def _model_name(name: str) -> str:
    # params.txt names our scales as open_clip knows them ("clipalign-tiny"); our record says "tiny".
    return str(name).strip().removeprefix("clipalign-")


def same_value(name: str, a, b) -> bool:
    """Whether ``a`` and ``b`` are one value of parameter ``name`` (a model by its open_clip name, any other as
    ``config.format_value`` writes it)."""
    if name == "model":
        return _model_name(a) == _model_name(b)
    return config.format_value(a).replace(" ", "") == config.format_value(b).replace(" ", "")


@dataclass(frozen=True)
class Resolved:
    """One step's parameters, resolved: ``values`` (every preset parameter, typed), ``sources`` (per
    parameter: ``preset <name>``, ``train_params.json``, ``params.txt``, ``given`` or ``record.json``) and the preset."""

    preset: str
    values: Mapping[str, Any]
    sources: Mapping[str, str]

    @property
    def params(self) -> dict[str, Any]:
        """The values as the step modules take them: a plain dict, ``preset`` included."""
        return {**self.values, "preset": self.preset}

    @property
    def training(self) -> TrainingSettings:
        return TrainingSettings(**{f.name: self.values[f.name] for f in fields(TrainingSettings)})

    @property
    def world(self) -> WorldSettings:
        return WorldSettings(**{name: self.values[name] for name in WORLD_KEYS})

    def unless_preset(self, name: str):
        """The value of ``name`` when the run's record or the caller set it, else None (the preset's
        default model says nothing about a folder of someone else's checkpoints)."""
        return None if self.sources[name].startswith("preset ") else self.values[name]

    def given(self) -> dict[str, Any]:
        """The values that were given rather than taken from the preset or the run's record."""
        return {name: value for name, value in self.values.items() if self.sources[name] == GIVEN}

    def to_json(self) -> dict:
        return {"preset": self.preset, "parameters": {k: jsonable(v) for k, v in self.values.items()},
                "sources": dict(self.sources)}

    @classmethod
    def from_json(cls, entry: dict) -> "Resolved":
        values = config.resolve(entry["preset"], **{k: v for k, v in entry["parameters"].items()
                                                    if k in config.PRESETS[entry["preset"]]})
        preset = values.pop("preset")
        return cls(preset, MappingProxyType(values),
                   MappingProxyType({k: entry["sources"].get(k, f"preset {preset}") for k in values}))

    def table(self, names=None) -> pd.DataFrame:
        """parameter / value / from, for ``names`` (default: every parameter)."""
        names = list(self.values) if names is None else [n for n in names if n in self.values]
        return pd.DataFrame({"value": [config.format_value(self.values[n]) for n in names],
                             "from": [self.sources[n] for n in names]}, index=pd.Index(names, name="parameter"))


def recorded_training(run_dir: str | Path) -> tuple[dict[str, Any], str | None]:
    """(the training settings the run's own files record, the file they come from): our trainer's
    train_params.json (every TRAINING_KEYS value), else open_clip_train's params.txt (model, seed and,
    when it forced one, the input size); ({}, None) for a run with neither."""
    layout = RunDir(run_dir)
    if layout.train_record.exists():
        try:
            record = {**RECORDED_BEFORE, **json.loads(layout.train_record.read_text())}
        except json.JSONDecodeError as error:
            raise ParameterError(f"{layout.train_record} is not valid JSON ({error.msg}); "
                                 f"restore it or train the run again") from None
        return {k: record[k] for k in TRAINING_KEYS if k in record}, TRAIN_RECORD
    if layout.params_txt.exists():
        text = read_params_txt(layout.params_txt)
        recorded: dict[str, Any] = {}
        if text.get("model"):
            recorded["model"] = _model_name(text["model"])
        if text.get("seed", "None") != "None":
            recorded["seed"] = text["seed"]
        if image_size_of(text) is not None:
            recorded["image_size"] = image_size_of(text)
        return recorded, PARAMS_TXT
    return {}, None


# A training setting whose analysis counterpart a user may have meant.
_ANALYSIS_TWIN = {"batch_size": "; the analysis steps' batch size is -p eval_batch_size"}


def resolve(run_dir: str | Path | None, preset: str, given: Mapping[str, Any] | None = None) -> Resolved:
    """The one resolution: ``preset``'s values, the run's recorded training settings over them, then
    ``given`` (None values ignored). Raises ParameterError on an unknown name, a bad value, or a given
    training parameter that contradicts the run's record."""
    config.check_preset(preset)
    defaults = config.PRESETS[preset]
    given = {k: v for k, v in (given or {}).items() if v is not None}
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise ParameterError(f"unknown {plural(len(unknown), 'parameter')} {', '.join(unknown)}; "
                             f"known: {', '.join(sorted(defaults))}")
    recorded, where = recorded_training(run_dir) if run_dir is not None else ({}, None)
    chosen, sources = {}, {}
    for name, value in recorded.items():
        value = config.coerce(name, value, defaults[name])
        if name in given and not same_value(name, config.coerce(name, given[name], defaults[name]), value):
            raise ParameterError(
                f"-p {name}={config.format_value(given[name])} contradicts {Path(run_dir) / where}, which records "
                f"{name}={config.format_value(value)}: a trained run keeps its training settings "
                f"(leave -p {name} out, or train another run into a new folder{_ANALYSIS_TWIN.get(name, '')})")
        chosen[name], sources[name] = value, where
    for name, value in given.items():
        if name not in chosen:
            chosen[name], sources[name] = value, GIVEN
    values = config.resolve(preset, every_step=False, **chosen)  # types, choices and ranges, checked once
    values.pop("preset")
    resolved = Resolved(preset, MappingProxyType(values),
                        MappingProxyType({name: sources.get(name, f"preset {preset}") for name in values}))
    # Each step's checks of its values together, with what the run's record carries for it: -p
    # shape_classifier=imagenet on a run whose shape step read Geirhos is that dataset's, not the preset's.
    entries = read(run_dir).get("steps", {}) if run_dir is not None else {}
    for step in registry.steps():
        if config.reads_dataset(step.name):
            config.check_step(step.name, {**values, **_carried(run_dir, step.name, resolved, None, entries)}
                              if entries else values)
    return resolved


# ------------------------------------------------------------------------------ record.json
def read(run_dir: str | Path) -> dict:
    """RUN_DIR/record.json ({} when there is none)."""
    path = RunDir(run_dir).run_record
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ParameterError(f"{path} is not valid JSON ({error.msg}); delete it and run the step again") from None


def run_preset(run_dir: str | Path, asked: str | None = None) -> str:
    """The preset a step of ``run_dir`` resolves against: ``asked`` when given, else the one the run (or
    the folder of runs, sweep or experiment) recorded, else ``default``."""
    if asked is not None:  # (an empty --preset is no preset, not the default)
        config.check_preset(asked)
        return asked
    return recorded_preset(run_dir) or "default"


def recorded_preset(run_dir: str | Path) -> str | None:
    """The preset the run (or the folder of runs, sweep or experiment) in ``run_dir`` recorded, or None: its
    record.json's (or runs.json's …), else the one its training recorded (train_params.json; an audit deleted a
    damaged record.json, as its error advised, and the run's next step resolved against the default preset)."""
    folder = RunDir(run_dir)
    for path in (folder.run_record, *(folder.record(kind) for kind in KIND_RECORDS), folder.train_record):
        if path.exists():
            try:
                preset = json.loads(path.read_text()).get("preset")
            except json.JSONDecodeError:
                continue
            if preset in config.PRESETS:
                return preset
    return None


def entry(run_dir: str | Path, step: str) -> Resolved | None:
    """The step's recorded resolution, or None."""
    recorded = read(run_dir).get("steps", {}).get(step)
    return Resolved.from_json(recorded) if recorded else None


def for_step(run_dir: str | Path, step: str, resolved: Resolved, declared: Collection[str] | None = None) -> Resolved:
    """``resolved`` for ``step`` on ``run_dir``: where a value comes from the preset, the value the step's
    entry in record.json was given before (with -p, by papermill, or carried so), if any. A re-run step
    measures what the step measured last time (a streamed run's TID2013, its prompt templates) unless told
    otherwise; only analysis parameters are carried, never the machine's (``MACHINE_KEYS``), and only those
    in ``declared`` when given (the parameters the step's page reads). A carried dataset folder that no
    longer exists is refused in one line.

    A parameter that names a column of a table the step reads (``distance`` in iqa.csv) describes that
    table, so it is taken from the entry of the step that wrote it (:func:`_from_tables_read`), before the
    step's own: interpolation after ``--only iqa -p distance=euclidean`` reads the euclidean rows. A value
    given for a parameter not in ``declared`` is not the step's (:func:`as_read_by`)."""
    if declared is not None:
        resolved = as_read_by(resolved, declared)
    carried = _carried(run_dir, step, resolved, declared, read(run_dir).get("steps", {}))
    if not carried:
        return resolved
    values = config.resolve(resolved.preset, every_step=False, **{**resolved.values, **carried})
    values.pop("preset")
    if step in registry.names():  # (another step's given value meets its own record entry in its own check)
        config.check_step(step, values)
    for task in TASKS:
        root, dataset = root_parameter(task), dataset_parameter(task)
        if carried.get(root) and values[dataset] != "embedded" and not Path(carried[root]).exists():
            raise ParameterError(
                f"{RunDir(run_dir).run_record}: step {step} last read {root}={carried[root]}, which no longer "
                f"exists: give -p {root}=<the dataset's folder> (or -p {dataset}=embedded)")
    return Resolved(resolved.preset, MappingProxyType(values),
                    MappingProxyType({**resolved.sources, **{name: CARRIED for name in carried}}))


def as_read_by(resolved: Resolved, declared: Collection[str]) -> Resolved:
    """``resolved`` as a page whose parameters cell declares ``declared`` has it: a value given for a parameter the
    page does not read is the preset's there, as the page would resolve it opened alone, so its record entry says
    only what it was given (an audit: ``--only iqa -p sigmas=0.1`` recorded sigmas as given to iqa, which never
    read it; a later ``--only noise`` rightly used the preset's)."""
    unread = [name for name, where in resolved.sources.items() if where == GIVEN and name not in declared]
    if not unread:
        return resolved
    values = config.resolve(resolved.preset, every_step=False,
                            **{name: value for name, value in resolved.values.items() if name not in unread})
    values.pop("preset")
    return Resolved(resolved.preset, MappingProxyType(values),
                    MappingProxyType({**resolved.sources, **{name: f"preset {resolved.preset}" for name in unread}}))


def _carried(run_dir: str | Path, step: str, resolved: Resolved, declared: Collection[str] | None,
             entries: Mapping[str, Any]) -> dict[str, Any]:
    """What :func:`for_step` carries from the run's record (``entries``: its steps' entries) into ``step``."""
    before = entries.get(step) or {}
    carried = {name: value for name, value in before.get("parameters", {}).items()
               if before.get("sources", {}).get(name) in (GIVEN, CARRIED) and name not in MACHINE_KEYS
               and name not in TRAINING_KEYS and (declared is None or name in declared)
               and resolved.sources.get(name, "").startswith("preset ")}
    # a folder of runs (its synthesis) reads the tables its runs' steps wrote: their entries, each run's own
    writers = [(RunDir(run_dir).name, entries)] + [(run.name, read(run).get("steps", {})) for run in runs_in(run_dir)]
    for name, value in _from_tables_read(run_dir, step, writers, declared).items():
        if not resolved.sources.get(name, "").startswith("preset "):
            continue  # given now: the step's own check says whether the table holds it
        if value == resolved.values[name]:
            carried.pop(name, None)  # the table was measured at the preset's value
        else:
            carried[name] = value
    for name in _bound_to_another_dataset(step, before.get("parameters", {}), resolved):
        carried.pop(name, None)
    return carried


def _bound_to_another_dataset(step: str, last: Mapping[str, Any], resolved: Resolved) -> list[str]:
    """The parameters of ``step`` that described the dataset it read last time (``last``: its record.json
    entry's parameters) where a different dataset is given now: that dataset's root and the step's
    ``dataset_options`` (a NIGHTS split is not a BAPPS one)."""
    if step not in registry.names():
        return []
    entry = registry.get(step)
    bound = []
    for task in TASKS:
        dataset = dataset_parameter(task)
        if (dataset in entry.parameters and dataset in last and last[dataset] != resolved.values.get(dataset)
                and not resolved.sources.get(dataset, "").startswith("preset ")):
            bound += [root_parameter(task), *entry.dataset_options]
    return bound


def _from_tables_read(run_dir: str | Path, step: str, writers: list[tuple[str, Mapping[str, dict]]],
                      declared: Collection[str] | None) -> dict[str, Any]:
    """{parameter: value} for the parameters of ``step``'s page that name a column of a table written by a
    step it depends on: the value that step's record.json entry ran with (``writers``: (folder name, its
    record's step entries), the run's own, or a folder's and each of its runs'). Two steps (or two runs' steps)
    that ran with different values leave the step nothing consistent to read: one line says which."""
    if step not in registry.names():
        return {}
    found: dict[str, tuple[str, Any]] = {}
    several = len(writers) > 1
    for folder, entries in writers:
        for writer in registry.get(step).depends:
            ran = entries.get(writer, {}).get("parameters", {})
            label = f"{folder}'s {writer}" if several else writer
            for table in registry.get(writer).tables:
                for name in table.columns:
                    if name not in ran or (declared is not None and name not in declared):
                        continue
                    if name in found and found[name][1] != ran[name]:
                        raise ParameterError(
                            f"{RunDir(run_dir).run_record}: steps {found[name][0]} and {label} ran with {name}="
                            f"{found[name][1]!r} and {ran[name]!r}: give -p {name}=… to both, then run {step}")
                    found[name] = (label, ran[name])
    return {name: value for name, (_, value) in found.items()}


def write_entry(run_dir: str | Path, step: str, resolved: Resolved) -> None:
    """Record ``resolved`` as the step's parameters (replacing its entry: its evaluation sets are recorded
    again when it loads them)."""
    _write_entry(run_dir, step, resolved.preset, resolved.to_json())


def _write_entry(run_dir: str | Path, step: str, preset: str, entry: dict) -> None:
    record = read(run_dir)
    record.setdefault("preset", preset)
    record.setdefault("steps", {})[step] = entry
    write_json(RunDir(run_dir).run_record, record)


# An analysis page's entry waits here until its tables are written (io.write_tables commits it): a page that
# fails first (a dataset that will not load, an interrupted measurement, papermill by hand) leaves record.json
# as it was, rather than recording parameters no table was measured with. One per run folder, the latest.
_STAGED: dict[Path, tuple[str, str, dict]] = {}


def stage_entry(run_dir: str | Path, step: str, resolved: Resolved) -> None:
    """Hold ``resolved`` as the step's entry until :func:`commit_staged` (the step's tables written); the
    tables it records as read are those read from now on."""
    _STAGED[Path(run_dir).resolve()] = (step, resolved.preset, resolved.to_json())
    _READ.clear()


def commit_staged(run_dir: str | Path, written: Mapping[str, str] | None = None) -> None:
    """Write the entry staged for ``run_dir``, if any (its evaluation sets' hashes included, the tables of other
    steps it read: :func:`note_table_read`, and ``written``: {table: sha256} of those it is about to write)."""
    staged = _STAGED.pop(Path(run_dir).resolve(), None)
    if staged is not None:
        step, preset, entry = staged
        tables = _tables_read(run_dir, step)
        if tables:
            entry["tables_read"] = tables
        if written:
            entry["tables_written"] = dict(written)
        _write_entry(run_dir, step, preset, entry)


def discard_staged() -> None:
    """Forget every staged entry (a new notebook on the shared kernel: the one before failed, or wrote none)."""
    _STAGED.clear()
    _READ.clear()


# The metric tables a page read before writing its own (results.read_metric notes each): path → sha256 of
# the bytes read. Recorded in the page's entry, so that the book can tell a page made from tables that have
# changed since (a run's iqa re-run with another distance after its folder's synthesis read it).
_READ: dict[Path, str] = {}


def note_table_read(path: str | Path, data: bytes) -> None:
    """``data`` was read as the metric table ``path``."""
    _READ[Path(path).resolve()] = hashlib.sha256(data).hexdigest()


def _tables_read(run_dir: str | Path, step: str) -> dict[str, str]:
    """{path relative to ``run_dir`` (portable): sha256} of the tables read since the page began, but the step's
    own (a page may read its last tables before replacing them); the notes are then forgotten."""
    run_dir = Path(run_dir).resolve()
    own = ({RunDir(run_dir).table(t.name).resolve() for t in registry.get(step).tables}
           if step in registry.names() else set())
    tables = {table_key(run_dir, path): digest for path, digest in sorted(_READ.items()) if path not in own}
    _READ.clear()
    return tables


def check_written(run_dir: str | Path, name: str, path: Path, data: bytes) -> None:
    """Refuse ``data``, read as the table ``name`` at ``path``, where it is not what its step wrote (the step's
    entry's ``tables_written``): a table damaged or edited since would be read as that step's measurement (an
    audit truncated iqa.csv, and the synthesis and the book were made from what was left). Not for the step now
    running, which may read its own last tables before replacing them; nor for tables no entry vouches for."""
    writer = registry.step_of_table(name).name
    staged = _STAGED.get(Path(run_dir).resolve())
    if staged is not None and staged[0] == writer:
        return
    digest = (read(run_dir).get("steps", {}).get(writer) or {}).get("tables_written", {}).get(table_key(run_dir, path))
    if digest is not None and hashlib.sha256(data).hexdigest() != digest:
        raise ParameterError(f"{path} is not the table the {writer} step wrote (changed or damaged since): run the "
                             f"step again (clipalign run --out {shell_arg(run_dir)} --only {writer})")


def changed_tables(run_dir: str | Path, step: str) -> list[str]:
    """The tables the step's recorded page read (its entry's ``tables_read``) whose bytes are no longer those
    it read, or that are gone: relative to ``run_dir``, as recorded."""
    entry = read(run_dir).get("steps", {}).get(step) or {}
    changed = []
    for relative, digest in entry.get("tables_read", {}).items():
        path = Path(run_dir) / relative
        if not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            changed.append(relative)
    return changed


BEFORE_TABLES.append(commit_staged)


def restore(run_dir: str | Path, before: bytes | None) -> None:
    """Put record.json back as it was (``before``: its bytes, None = absent): a failed step leaves no record."""
    path = RunDir(run_dir).run_record
    if before is None:
        path.unlink(missing_ok=True)
    else:
        path.write_bytes(before)


def check_injected(namespace: Mapping[str, Any]) -> None:
    """Papermill gives a notebook every ``-p NAME``, declared or not, and only warns of one its parameters cell
    lacks: a misspelt ``-p distnace cosine`` would leave ``distance`` at its default and the page measure what
    was not asked. The injected cell (in IPython's input history ``In``: "# Parameters", then its
    assignments, right after the parameters cell) is held to the parameters cell; one name it does not
    declare is a :class:`ParameterError` naming the closest it does. A notebook run by hand has no such
    cell, and nothing is checked."""
    cells = [cell for cell in namespace.get("In") or () if isinstance(cell, str)]
    at = next((i for i in range(len(cells) - 1, 0, -1) if cells[i].startswith(PAPERMILL_CELL)), None)
    if at is None:
        return
    declared, injected = _assigned(cells[at - 1]), _assigned(cells[at])
    unknown = [name for name in injected if declared and name not in declared]
    if unknown:
        close = difflib.get_close_matches(unknown[0], declared, n=1)
        raise ParameterError(f"papermill gave -p {unknown[0]}, which this notebook's parameters cell does not "
                             f"declare{f' (did you mean {close[0]}?)' if close else ''}: it declares "
                             f"{', '.join(declared)}")


PAPERMILL_CELL = "# Parameters\n"  # how papermill's Python translator begins the cell it injects


def _assigned(source: str) -> list[str]:
    """The names a cell's top-level statements assign, in order (none if it is not Python)."""
    try:
        body = ast.parse(source).body
    except SyntaxError:
        return []
    names = []
    for statement in body:
        targets = (statement.targets if isinstance(statement, ast.Assign)
                   else [statement.target] if isinstance(statement, ast.AnnAssign) else [])
        names += [target.id for target in targets if isinstance(target, ast.Name)]
    return names


def cell_values(namespace: Mapping[str, Any], preset: str) -> tuple[list[str], dict[str, Any]]:
    """(the preset parameters a parameters cell declares, in the cell's order; those of them it sets: not None)."""
    known = config.PRESETS[preset]
    declared = [name for name in namespace if name in known]
    return declared, {name: namespace[name] for name in declared if namespace[name] is not None}


def for_page(namespace: Mapping[str, Any], run_dir: str | Path, step: str, show: bool = True) -> Resolved:
    """The parameters of the page of ``step`` on ``run_dir``, whose parameters cell is ``namespace`` (None =
    not given). When the cell holds exactly the values the run's record holds for the step (the CLI passed
    them), that entry is used as it is; otherwise they are resolved here (papermill by hand, a notebook
    opened alone). ``show``: display every declared value and where it came from."""
    preset = run_preset(run_dir, namespace.get("preset"))
    declared, given = cell_values(namespace, preset)
    recorded = entry(run_dir, step)
    if (recorded is not None and recorded.preset == preset and len(given) == len(declared)
            and all(same_value(n, config.coerce(n, given[n], recorded.values[n]), recorded.values[n])
                    for n in declared)):
        resolved = as_read_by(recorded, declared)  # (an entry a command recorded with every value it was given)
    else:
        resolved = for_step(run_dir, step, resolve(run_dir, preset, given), declared)
    if show:
        show_parameters(resolved, step, declared)
    return resolved


def show_parameters(resolved: Resolved, step: str, declared: Collection[str], shown: Mapping[str, Any] | None = None,
                    left_out: Collection[str] = ()) -> None:
    """Display the ``declared`` parameters of ``step``'s page with where each came from, and in a line below
    those its dataset does not read. ``shown``: values as the table shows them instead of the resolved ones
    (a dataset's folder by its name); ``left_out``: parameters the table leaves out."""
    from .prose import say, show as display

    unread = unread_parameters(step, resolved.params)
    listed = [name for name in declared if name not in unread and name not in left_out]
    if shown is not None:  # what the introduction shows: without the empty ones (an embedded set's folder)
        resolved = dataclasses.replace(resolved, values=MappingProxyType({**resolved.values, **shown}))
        listed = [name for name in listed if name in shown]
    table = resolved.table(listed)
    display(table, table.to_string())
    if unread:
        dataset = config.step_dataset_parameter(step)
        say(f"not read with {dataset}={resolved.params[dataset]} (read with the embedded set only): "
            f"{', '.join(name for name in declared if name in unread)}")


def unread_parameters(step: str, params: Mapping[str, Any]) -> set[str]:
    """The parameters of ``step`` its dataset does not read: its embedded set's own, on a real dataset."""
    if step not in registry.names():  # a comparison page (a sweep's, an experiment's) reads no dataset
        return set()
    only = registry.get(step).embedded_only
    return set(only) if only and params.get(config.step_dataset_parameter(step), "embedded") != "embedded" else set()


def shown_parameters(step: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """A step's recorded values as the book shows them (its introduction's table, each page's table of
    parameters): without the parameters its dataset does not read (a real dataset's page: its embedded set's
    own) and those left empty (the embedded set's folder, a real set's default split: the table showed
    `similarity_split=` with nothing after it), a dataset's folder by its name alone (the reader's copy lies
    elsewhere; the tables hold no absolute path either)."""
    unread = unread_parameters(step, values)
    return {key: (shown_folder(value) if key.endswith("_root") else value)
            for key, value in values.items() if key not in unread and value != ""}


def shown_folder(path) -> str:
    """A dataset's folder as the book shows it, by its name alone ("…/tid2013"): the reader's copy lies elsewhere."""
    return f"…/{Path(str(path)).name}"


# ------------------------------------------------------------------------ evaluation sets
def _is_image_set(item) -> bool:
    # data.image_sets.ImageSet, known by its method (importing it here would import torch at start-up)
    return callable(getattr(item, "content_hash", None))


def _parts(item):
    """The leaves of a step's evaluation data in order — image sets, arrays, tables, plain values — with the
    field names and keys between them, so that the structure is hashed too."""
    if _is_image_set(item) or isinstance(item, (np.ndarray, pd.DataFrame, pd.Series)):
        yield item
    elif dataclasses.is_dataclass(item) and not isinstance(item, type):
        for f in fields(item):
            yield f.name
            yield from _parts(getattr(item, f.name))
    elif isinstance(item, dict):
        for key, value in item.items():
            yield repr(key)
            yield from _parts(value)
    elif isinstance(item, (list, tuple)):
        for value in item:
            yield from _parts(value)
    else:
        yield item


def _encoded(part, set_hashes: dict) -> bytes:
    if _is_image_set(part):
        return set_hashes[id(part)].encode()
    if isinstance(part, np.ndarray):
        return f"{part.dtype}{part.shape}".encode() + np.ascontiguousarray(part).tobytes()
    if isinstance(part, (pd.DataFrame, pd.Series)):
        return part.to_csv().encode()
    if part is None or isinstance(part, (str, int, float, bool, np.generic)):
        return repr(part).encode()
    return type(part).__qualname__.encode()  # an object we do not know how to read (a callable, say): its type


def fingerprints(data) -> dict[str, str]:
    """Content hashes (sha256) of a step's evaluation data: ``all`` (every image, label, score and
    setting it holds) and one per image set, by the set's name (each set read once)."""
    parts = list(_parts(data))
    sets = {id(part): part for part in parts if _is_image_set(part)}
    set_hashes = {key: images.content_hash() for key, images in sets.items()}
    digest = hashlib.sha256()
    for part in parts:
        digest.update(_encoded(part, set_hashes))
    return {"all": digest.hexdigest(),
            **{images.name: set_hashes[key] for key, images in sorted(sets.items(), key=lambda kv: kv[1].name)}}


def note_evaluation_sets(run_dir: str | Path, step: str, data) -> dict[str, str]:
    """Record the content hashes of ``data`` (the step's evaluation data) in the step's entry."""
    hashes = fingerprints(data)
    staged = _STAGED.get(Path(run_dir).resolve())
    if staged is not None and staged[0] == step:
        staged[2]["eval_sets"] = hashes
        return hashes
    record = read(run_dir)
    if step in record.get("steps", {}):
        record["steps"][step]["eval_sets"] = hashes
        write_json(RunDir(run_dir).run_record, record)
    return hashes


def records_evaluation_sets(step: str) -> Callable:
    """Decorate a step module's ``load(run, params)``: what it loads is hashed into the run's record, and
    generated sets are kept on disk for the next call with the same key (:mod:`.data.cache`)."""
    from .data.cache import cached

    def decorate(load: Callable) -> Callable:
        @functools.wraps(load)
        def wrapper(run, params, *args, **kwargs):
            if args or kwargs:
                data = load(run, params, *args, **kwargs)
            else:
                data = cached(step, run, params, lambda: load(run, params))
            if getattr(run, "run_dir", None) is not None:  # a run's directory, not a bare stand-in
                note_evaluation_sets(run.run_dir, step, data)
            return data
        return wrapper
    return decorate
