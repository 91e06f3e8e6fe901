"""What a page's notebook does first, in one call: take its parameters from the run's record (or resolve
them, once, when the page runs by hand or opened alone), show them with where each came from, and find —
or, opened alone (Colab), train — the run the page shows. Pages render; they do not orchestrate: no page
executes another notebook or the pipeline. A step's page given a folder of runs measures the other runs
through the library (:mod:`clipalign_utils.orchestration.measure`, one process each) and shows the first."""
from __future__ import annotations

from pathlib import Path

from .. import checkpoints, config, record, registry, results
from ..config import step_dataset_parameter
from ..data.world import EVALUATION_WORLD_KEYS
from ..errors import CheckpointError, ParameterError, shell_arg

from . import measure, sweep
from ..layout import TRAIN_RECORD, RunDir, runs_in
from ..prose import counted, say, tables_in_full

tables_in_full()  # every page opens through this module


def _opened(namespace: dict) -> None:
    """A page's first call, on its parameters cell: no parameter papermill was given that the cell does not
    declare (``record.check_injected``), and a relative ``run_dir`` or ``run_dirs`` read where the commands
    write it."""
    record.check_injected(namespace)
    _anchor_run_dirs(namespace)


def _anchor_run_dirs(namespace: dict) -> None:
    """A relative ``run_dir`` (and each of ``run_dirs``) that does not exist where the kernel runs, read where
    the commands write it: Jupyter runs a notebook opened from the repository in its notebooks/ folder, while
    the commands and papermill run from the repository's root. One that exists as given is kept (an audit:
    ``../run`` from notebooks/ was read under the repository, and a fresh run would have trained there)."""
    from ..registry import NOTEBOOK_DIR, REPO_ROOT

    # (a checkout's notebooks/ only: the installed copies' folder is share/clipalign/notebooks, whose parent is
    # no place for a run)
    if Path.cwd().resolve() != NOTEBOOK_DIR.resolve() or NOTEBOOK_DIR.resolve() != (REPO_ROOT / "notebooks").resolve():
        return

    def anchored(path) -> str:
        path = str(path).strip()
        return path if not path or Path(path).is_absolute() or Path(path).exists() else str(REPO_ROOT / path)

    if namespace.get("run_dir"):
        namespace["run_dir"] = anchored(namespace["run_dir"])
    run_dirs = namespace.get("run_dirs")
    if isinstance(run_dirs, str):
        namespace["run_dirs"] = ",".join(anchored(part) for part in run_dirs.split(","))
    elif run_dirs is not None:
        namespace["run_dirs"] = [anchored(part) for part in run_dirs]


def _auto_train(namespace: dict) -> bool:
    """The cell's ``auto_train``, papermill's "false" or "no" (-p auto_train false) included: a string is true."""
    from ..config import coerce

    return coerce("auto_train", namespace.get("auto_train", True), True)


def open_run(namespace: dict, step: str) -> tuple[checkpoints.Run, dict]:
    """(the run the page shows, its parameters) for the notebook of ``step`` whose globals are ``namespace``
    (its parameters cell: ``run_dir``, ``preset``, ``auto_train`` and the step's parameters, None = the
    run's record or the preset). Given a folder of runs, the step is measured in every other run there
    (their tables rewritten; their executed notebooks and the folder's synthesis left as they are) and the
    page shows the first."""
    _opened(namespace)
    run_dir = Path(namespace["run_dir"])
    runs = runs_in(run_dir)
    if runs:
        say(f"`{run_dir}` holds {counted(len(runs), 'run')}: this page shows `{runs[0].name}`; step {step} is measured "
            f"in {', '.join(f'`{d.name}`' for d in runs[1:]) or 'no other run'} too, each in its own process. "
            f"`clipalign run --out {shell_arg(run_dir)} --only {step}` also renders their pages and the synthesis.")
        declared, given = record.cell_values(namespace, record.run_preset(run_dir, namespace.get("preset")))
        measure.in_own_processes(runs[1:], step, namespace.get("preset"), given, declared)  # each run's own preset
        run_dir = runs[0]
    resolved = record.for_page(namespace, run_dir, step, show=False)
    _show_parameters(namespace, run_dir, step, resolved)
    params = resolved.params
    run = checkpoints.discover_or_train(run_dir, params, _auto_train(namespace),
                                        resolved.unless_preset("model"))
    record.stage_entry(run_dir, step, resolved)  # recorded with the step's tables (io.write_tables)
    return run, params


def _show_parameters(namespace: dict, run_dir: Path, step: str, resolved: record.Resolved,
                     runs: list[Path] | None = None) -> None:
    """The page's table of parameters (``record.show_parameters``), portable and true of the run: a dataset's
    folder by its name, as the book's introduction shows it; for a run trained elsewhere, without the preset's
    training and world settings the step does not read (they say nothing of how that run was trained). The
    synthesis's (``runs``: those it synthesises) leaves out what is not theirs (:func:`_not_the_synthesised`)."""
    declared = record.cell_values(namespace, resolved.preset)[0]
    shown = record.shown_parameters(step, resolved.values)
    not_theirs, why = not_the_runs_parameters(run_dir, step, resolved, runs, _auto_train(namespace))
    left_out = [name for name in declared if name in not_theirs]
    record.show_parameters(resolved, step, declared, shown, left_out)
    if left_out:
        say(f"left out ({why}): {', '.join(left_out)}")


def not_the_runs_parameters(run_dir: Path, step: str, resolved: record.Resolved, runs: list[Path] | None = None,
                            auto_train: bool = False) -> tuple[set[str], str]:
    """(the parameters a page's table leaves out as not the run's, why): a step's page on ``run_dir``
    (:func:`_not_the_runs`), or the synthesis of ``runs`` (:func:`_not_the_synthesised`). The book's
    introduction leaves out the same."""
    if step == registry.SWEEP_PAGE:
        # a swept parameter the page also declares (distance) is each setting's own, not the page's one value
        if runs is None:  # (the book's introduction: the sweep's record lists them)
            try:
                runs = sweep.sweep_run_dirs(run_dir)
            except ParameterError:  # the page compared runs it was given: they are not known here
                return set(), ""
        return set(results.setting_labels(runs)[1]), "swept: each setting's own value, in the tables below"
    if runs is None and step not in registry.names():  # a page of no step (10_real_clip) shows no run's settings
        return set(), ""
    if runs is None:
        return _not_the_runs(run_dir, step, resolved), "the preset's values, not this run's: it was trained elsewhere"
    return _not_the_synthesised(run_dir, runs, resolved, auto_train)


def synthesis_source(run_dir, run_dirs) -> tuple[list[Path], Path]:
    """(the runs the synthesis page reads, the folder whose record answers for its parameters): its
    ``run_dirs``, or ``run_dir`` and the runs inside it. Given runs elsewhere, a ``run_dir`` that is no folder
    of runs (the command's) is only where the synthesis is written: the first run's record answers."""
    runs = results.parse_run_dirs(run_dirs, run_dir)
    given_runs = run_dirs is not None
    return runs, Path(runs[0] if given_runs and RunDir(run_dir).kind in (None, "run") else run_dir)


def _not_the_runs(run_dir: Path, step: str, resolved: record.Resolved) -> set[str]:
    """The training and world settings of a run trained elsewhere that come from the preset and that ``step``
    does not read: every one but the model, and the world's where the step draws its embedded set from it
    (a step of no dataset reads what it declares). None for clipalign's own runs, or one about to be trained."""
    layout = RunDir(run_dir)
    # No training record of clipalign's (book.trained_elsewhere), asked before the run is found: a folder the page
    # is about to train has none yet either, nor checkpoints or a stream's manifest.
    if layout.train_record.exists() or (layout.source_manifest() is None and not layout.holds_others_checkpoints()):
        return set()
    dataset = step_dataset_parameter(step)
    if dataset is None:
        return set()
    read = {"model"} | (set(EVALUATION_WORLD_KEYS) if resolved.values[dataset] == "embedded" else set())
    return {name for name in record.TRAINING_KEYS
            if name not in read and resolved.sources[name].startswith("preset ")}


def _not_the_synthesised(run_dir: Path, runs: list[Path], resolved: record.Resolved,
                          auto_train: bool) -> tuple[set[str], str]:
    """(the training and world settings the synthesis's table leaves out, why). It reads the runs' tables, not
    their training: over several runs, every one (an audit read `seed 0 (preset default)` on the synthesis of
    seeds 0, 1 and 2); over one, those its own record does not give (a run trained elsewhere: the preset's) —
    unless the page is about to train that run with them (opened alone). A value the page's entry has from the
    preset is the run's own where its record gives that value (the command resolved the page before it trained the run
    with the preset's values: an audit read "not this run's" on a smoke book's seed); a run clipalign trained
    whose record lacks a setting (hand-edited, or older than the setting) is not said to be trained elsewhere;
    the one run of a folder of runs (``--seeds 3``: ``run_dir`` the folder, whose record holds no run's seed)
    has its own."""
    if len(runs) > 1:
        return set(record.TRAINING_KEYS), "each run's own: the introduction lists them run by run"
    from_preset = {name for name in record.TRAINING_KEYS if resolved.sources[name].startswith("preset ")}
    if Path(runs[0]).resolve() != Path(run_dir).resolve():
        return from_preset, "the run's own: the introduction lists them"
    layout = RunDir(runs[0])
    if auto_train and not layout.is_run and layout.source_manifest() is None and not layout.tables_only():
        return set(), ""  # ensure_run trains it with these
    recorded, where = record.recorded_training(runs[0])
    why = (f"its training record ({where}) does not give them" if where == TRAIN_RECORD
           else "it was trained elsewhere")
    # the run's own where its record gives that same value (the record's other value: the preset's is not the run's)
    own = {name for name in from_preset if name in recorded and record.same_value(
        name, config.coerce(name, recorded[name], resolved.values[name]), resolved.values[name])}
    return from_preset - own, f"the preset's values, not this run's: {why}"


def open_training(namespace: dict) -> dict:
    """The training page's parameters: resolved against the run's record (a run being resumed keeps its
    settings), shown, and recorded."""
    _opened(namespace)
    resolved = record.for_page(namespace, namespace["run_dir"], "train")
    record.write_entry(namespace["run_dir"], "train", resolved)
    return resolved.params


def open_experiment(namespace: dict, page: str) -> tuple[list[Path], dict]:
    """(the sweep folders or runs to compare, the parameters) for an experiment's chapter ``page`` on the folder
    ``run_dir``: its ``run_dirs``, else ``run_dir`` itself (every sweep folder in it). Its entry is recorded with
    its tables, as the sweep page's."""
    _opened(namespace)
    run_dir = namespace["run_dir"]
    resolved = record.for_page(namespace, run_dir, page)
    record.stage_entry(run_dir, page, resolved)
    if namespace.get("run_dirs") is not None:
        return results.parse_run_dirs(namespace["run_dirs"], run_dir), resolved.params
    return [Path(run_dir)], resolved.params


def open_sweep(namespace: dict) -> tuple[list[Path], dict]:
    """(the runs to compare, the parameters) for the sweep page: its ``run_dirs``, else the runs the sweep
    record in ``run_dir`` lists. Its entry is recorded with its tables."""
    _opened(namespace)
    run_dir = namespace["run_dir"]
    resolved = record.for_page(namespace, run_dir, registry.SWEEP_PAGE, show=False)
    record.stage_entry(run_dir, registry.SWEEP_PAGE, resolved)
    runs = sweep_runs(run_dir, namespace.get("run_dirs"))
    _show_parameters(namespace, Path(run_dir), registry.SWEEP_PAGE, resolved, runs)
    return runs, resolved.params


def sweep_runs(run_dir, run_dirs) -> list[Path]:
    """The runs the sweep page compares: its ``run_dirs``, else those the sweep record in ``run_dir`` lists."""
    return results.parse_run_dirs(run_dirs, run_dir) if run_dirs is not None else sweep.sweep_run_dirs(run_dir)


def open_runs(namespace: dict) -> tuple[list[Path], dict]:
    """(the runs to synthesise, the parameters) for the synthesis notebook: its ``run_dirs``, or ``run_dir``
    and the runs inside it (``results.parse_run_dirs``). A single run opened alone (Colab) is trained and
    its missing analysis tables measured first (``auto_train``), through the library."""
    _opened(namespace)
    run_dir = namespace["run_dir"]
    # a single run given elsewhere is the one trained and measured (an audit: the empty output folder was
    # trained, then the page refused the run it was given)
    runs, source = synthesis_source(run_dir, namespace.get("run_dirs"))
    resolved = record.for_page(namespace, source, registry.synthesis().name, show=False)
    _show_parameters(namespace, source, registry.synthesis().name, resolved, runs)
    if len(runs) == 1 and _auto_train(namespace):
        ensure_run(runs[0], resolved)
    missing = [str(run) for run in runs if not Path(run).is_dir()]
    if missing:
        raise CheckpointError(f"run_dir {missing[0]} does not exist: run the pipeline there first (clipalign run "
                              f"--out {shell_arg(missing[0])}), or leave auto_train on to train and measure it here")
    record.stage_entry(run_dir, registry.synthesis().name, resolved)  # recorded with its tables
    return runs, resolved.params


def ensure_run(run_dir: str | Path, resolved: record.Resolved) -> Path:
    """For the synthesis page opened alone: train the run if ``run_dir`` holds none, then measure every
    analysis step whose tables are missing (``measure.measure_step``, in this process)."""
    run_dir = Path(run_dir).resolve()
    layout = RunDir(run_dir)
    if layout.tables_only():  # shared without its weights: its tables are what the synthesis reads
        return run_dir
    checkpoints.discover_or_train(run_dir, resolved.params, True, resolved.unless_preset("model"))
    for step in layout.missing_analyses():
        say(f"`{run_dir}` lacks the tables of step {step}: measuring it first")
        measure.measure_step(run_dir, step, resolved.preset, resolved.given())
    return run_dir

