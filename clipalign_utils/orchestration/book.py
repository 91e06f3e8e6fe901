"""Build the Jupyter Book from an executed run directory.

The book's sources are the top-level ``_config.yml`` and ``_toc.yml``, the prose in ``book/``
and the executed notebooks in ``RUN_DIR/notebooks``; the notebook pages, and their order in the staged
``_toc.yml``, come from the step registry (``clipalign_utils.registry``). They are staged mirroring the
repository layout (so each page's Colab button points at the repository's ``notebooks/<name>.ipynb``), with a
generated page fragment describing the run. The build renders; it never executes a notebook again, and treats
every Sphinx warning as an error. It is staged and built in ``RUN_DIR/.book-building`` and replaces
``RUN_DIR/book`` only once built, so a build stopped or failed part-way never leaves a part-built book there.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from natsort import natsorted

from .. import registry, repository
from ..errors import ClipalignError, ParameterError, shell_arg
from ..layout import BOOK, BOOK_BUILDING, BOOK_FAILED, BOOK_FOLDERS, BOOK_REPLACED, RunDir
from ..registry import REPO_ROOT
from .publish import _portable, path_replacements, publishable as _publishable


class BookBuildFailed(ClipalignError):
    pass


# What a book is built from: a checkout's files. ``pip install`` (from a wheel, from git, in Colab) puts the
# package and its notebooks' sources in place, not the book's chapters.
BOOK_SOURCES = ("_config.yml", "_toc.yml", "book", "pyproject.toml")


def check_sources(command: str) -> None:
    """Refuse, before any work, a command that would end by building a book where the package is installed
    without the checkout that holds the book's sources (``BOOK_SOURCES``)."""
    missing = [name for name in BOOK_SOURCES if not (REPO_ROOT / name).exists()]
    if not missing:
        return
    from importlib.metadata import PackageNotFoundError, metadata

    try:
        urls = dict(url.split(", ", 1) for url in metadata("clipalign").get_all("Project-URL") or ())
    except PackageNotFoundError:
        urls = {}
    where = urls.get("Repository", "the project's repository")
    instead = "give --no-book to run without it, or " if command != "book" else ""
    raise ParameterError(f"the book is built from a checkout's {', '.join(missing)}, which the installed package "
                         f"does not hold: {instead}clone {where} and run clipalign {command} from that checkout")


SWEEP_PAGE = registry.SWEEP_PAGE
# The _toc.yml part whose chapters are the notebook pages (generated from the registry when staged).
NOTEBOOK_PART = "Notebooks (executed by the pipeline)"
# Chapter 6 of a book whose run directory holds no sweep.


def _complete_runs(run_dir: Path) -> list[Path]:
    """Complete run directories directly under ``run_dir`` (checkpoints, every per-run step executed), in
    name order; the staged book (``run_dir/book``) is none."""
    return [d.path for d in RunDir(run_dir).runs() if d.checkpoints.exists() and d.complete]


def _step_pages() -> tuple[list[str], str]:
    """(the per-run steps' notebooks, the synthesis's notebook)."""
    return [s.notebook for s in registry.per_run_steps()], registry.synthesis().notebook


def _inner_pages(run_dir: Path, name: str) -> list[Path]:
    """The executed notebook ``name`` of the folders directly inside ``run_dir`` (a sweep or an experiment
    there), in natural name order as a folder's runs are (``RunDir.runs``) — never a copy in one of the book's own
    folders."""
    return natsorted((path for path in run_dir.glob(f"*/notebooks/{name}.ipynb")
                      if path.parent.parent.name not in BOOK_FOLDERS), key=lambda path: path.parent.parent.name)


def _notebook_sources(run_dir: Path) -> tuple[dict[str, Path], Path]:
    """Executed notebook per page, and the run directory that trained the pages' model.

    What the directory is comes from its record (``RunDir.kind``): one run shows its own pages. A
    multi-run directory (``--seeds``/``--scales``, the default book) holds only the synthesis; its other pages come
    from its first complete run (sub-directories in name order). A sweep directory holds only the
    comparison (page 6); the step pages come from the first run of its plan. Page 6 is the directory's own
    sweep notebook, or that of a sweep directory inside it (the full preset's ``drivers``), if any.
    Other registered pages (``registry.pages()``) are shown when the directory holds them."""
    from .sweep import sweep_run_dirs

    per_run, synthesis = _step_pages()
    pages = per_run + [synthesis]
    folder = RunDir(run_dir)
    own = {name: folder.executed(name) for name in pages}
    sweep_page = folder.executed(SWEEP_PAGE)
    inner = _inner_pages(run_dir, SWEEP_PAGE)
    kind = folder.kind
    if kind is None and folder.source_record.exists():
        kind = "run"  # a trajectory streamed into a folder of its own
    if kind == "run":
        elsewhere = trained_elsewhere(run_dir)
        missing = ", ".join(name for name, path in own.items()
                            if not path.exists() and not (elsewhere and name == TRAIN_PAGE))
        if missing:
            again = (f"run its analyses first (clipalign run --out {shell_arg(run_dir)} --only "
                     f"{','.join(registry.analyses_and_synthesis())})" if elsewhere
                     else f"run the whole pipeline first (clipalign run --out {shell_arg(run_dir)})")
            raise BookBuildFailed(f"{folder.notebooks} lacks executed notebooks {missing}: {again}")
        sources, trained = {name: path for name, path in own.items() if path.exists()}, run_dir
    elif kind in ("sweep", "experiment"):
        # the step pages show the sweep's first run (an experiment's: its first finished sweep's)
        sweep_dir = run_dir if kind == "sweep" else (inner[0].parent.parent if inner else None)
        if sweep_dir is None or not RunDir(sweep_dir).executed(SWEEP_PAGE).exists():
            raise BookBuildFailed(f"{run_dir} is {'an' if kind == 'experiment' else 'a'} {kind} without its comparison "
                                  f"yet: finish it first "
                                  f"(run the same clipalign {kind} command again)")
        trained = sweep_run_dirs(sweep_dir)[0]
        sources = {name: RunDir(trained).executed(name) for name in pages}
        missing = [str(path) for path in sources.values() if not path.exists()]
        if missing:
            raise BookBuildFailed(f"the sweep's first run lacks {', '.join(missing)}: finish the sweep first "
                                  f"(run the same clipalign sweep command again)")
    elif kind == "runs":
        runs = _complete_runs(run_dir)
        if not runs or not own[synthesis].exists():
            raise BookBuildFailed(f"{run_dir} holds no complete run or no synthesis yet: run the whole pipeline "
                                  f"first (clipalign run --out {shell_arg(run_dir)})")
        trained = runs[0]
        sources = {name: RunDir(trained).executed(name) for name in per_run}
        sources[synthesis] = own[synthesis]
    else:
        raise BookBuildFailed(f"{run_dir} holds no run, runs, sweep or experiment: run the pipeline into it "
                              f"first (clipalign run --out {shell_arg(run_dir)})")
    if sweep_page.exists():
        sources[SWEEP_PAGE] = sweep_page
    elif inner:
        sources[SWEEP_PAGE] = inner[0]
    for name in registry.pages():
        # the directory's own page, or that of an experiment folder inside it (the full preset's quality)
        found = [folder.executed(name)] + _inner_pages(run_dir, name)
        found = [path for path in found if path.exists()]
        if name != SWEEP_PAGE and found:
            sources[name] = found[0]
    return sources, trained


TRAIN_PAGE = registry.get("train").notebook


def trained_elsewhere(run_dir: Path) -> bool:
    """A run clipalign did not train (no training record of its own): open_clip_train's logs analysed in place,
    a trajectory streamed with --checkpoints. Its book's page 1 says so (``trained_elsewhere_page``)."""
    return not RunDir(run_dir).train_record.exists()


def page_number(notebook: str) -> str:
    """A notebook page's chapter number: the digits its name starts with ("07_similarity" -> "7")."""
    digits = notebook.split("_", 1)[0]
    return str(int(digits)) if digits.isdigit() else notebook


def _page_list(notebooks) -> str:
    """"Pages 1–4, 7 and 8" style: consecutive chapter numbers joined by a dash."""
    numbers = sorted(int(n) for n in map(page_number, notebooks) if n.isdigit())
    runs, start = [], None
    for i, n in enumerate(numbers):
        start = n if start is None else start
        if i + 1 == len(numbers) or numbers[i + 1] != n + 1:
            runs.append(f"{start}" if start == n else f"{start}–{n}")
            start = None
    text = runs[0] if len(runs) == 1 else ", ".join(runs[:-1]) + " and " + runs[-1]
    return ("Page " if len(numbers) == 1 else "Pages ") + text


def _recorded_parameters(notebook: Path, name: str) -> dict:
    """The parameters a page was executed with, as its folder's record (``record.json``) holds them: the
    values of the parameters its notebook declares, ``preset`` first."""
    from .. import record
    from .pipeline import declared_parameters

    entry_name = _step_of(name)
    entry = record.read(notebook.parent.parent).get("steps", {}).get(entry_name)
    if entry is None:
        return {}
    declared = declared_parameters(name)
    return {"preset": entry["preset"], **{k: v for k, v in entry["parameters"].items()
                                          if k in declared and k not in ("run_dir", "run_dirs", "auto_train")}}


def _not_the_runs_parameters(notebook: Path, name: str) -> set[str]:
    """What page ``name``'s own table of parameters leaves out as not its runs' (the preset's seed on the
    synthesis of seeds 0, 1 and 2: the introduction showed `seed=0` beside the page's line leaving it out)."""
    from .. import record
    from .step_page import not_the_runs_parameters, synthesis_source

    folder, step = notebook.parent.parent, _step_of(name)
    entry = record.read(folder).get("steps", {}).get(step)
    if not entry:
        return set()
    try:
        resolved = record.Resolved.from_json(entry)
    except ParameterError:  # an entry this version no longer resolves (an older one's): its values as recorded
        return set()
    if step != registry.synthesis().name:
        return not_the_runs_parameters(folder, step, resolved)[0]
    runs, source = synthesis_source(folder, entry["parameters"].get("run_dirs"))
    return not_the_runs_parameters(source, step, resolved, runs)[0]


def stale_pages(sources: dict[str, Path]) -> list[str]:
    """The pages whose executed notebook ran with other values than its run's record now holds for the step
    (a page re-run by hand, papermill writing its notebook elsewhere, re-made the tables): shown, they would
    contradict the tables beside them. A value the notebook was not given is not compared."""
    from ..record import same_value

    stale = []
    for name, notebook in sources.items():
        recorded = _recorded_parameters(notebook, name)
        if not recorded or not notebook.is_file():
            continue
        ran = json.loads(notebook.read_text()).get("metadata", {}).get("papermill", {}).get("parameters", {})
        if any(key in ran and ran[key] is not None and not same_value(key, ran[key], value)
               for key, value in recorded.items() if key != "preset"):
            stale.append(name)
    return stale


def pages_on_changed_tables(sources: dict[str, Path]) -> dict[str, list[str]]:
    """{page: the tables it read that have changed since} for the pages whose record entry lists the tables
    they read (``record.changed_tables``): the folder's synthesis after one run's iqa was re-run with another
    distance would show numbers that no page beside it shows."""
    from .. import record

    changed = {}
    for name, notebook in sources.items():
        tables = record.changed_tables(notebook.parent.parent, _step_of(name))
        if tables:
            changed[name] = tables
    return changed


def _execute_again(pages: list[str], where: Path) -> str:
    """The command that executes ``pages`` (of one folder, ``where``) into it again."""
    steps = [step for step in map(_step_of, pages) if step in registry.names()]
    if steps:
        return f"clipalign run --out {shell_arg(where)} --only {','.join(steps)}"
    command = "sweep" if SWEEP_PAGE in pages else "experiment"
    return f"the clipalign {command} command that made {where} again (its finished runs are kept)"


def _step_of(page: str) -> str:
    """The step (record entry, ``--only`` name) whose notebook is ``page``; a page of no step is its own name."""
    return next((step.name for step in registry.steps() if step.notebook == page), page)


def _recorded_line(page: str) -> str:
    from . import recorded

    entry = recorded.index(page)
    return (f"This build ran no {recorded.PAGES[page]}: page {page_number(page)} shows the one recorded in "
            f"`book/recorded/{page}/` (measured at commit `{entry['commit']}`; the page says how).")


def _run_summary(run_dir: Path, sources: dict[str, Path], trained: Path, recorded_pages=(), placeholders=()) -> str:
    """Markdown describing which run produced the pages: preset, model, timings, checkpoints; and which pages
    this build did not produce (``recorded_pages``: shown as recorded; ``placeholders``: in their stead)."""
    from ..config import format_value  # values as -p takes them (0.02,0.05, not a list's repr)

    per_run, synthesis = _step_pages()
    lines = []
    if trained != run_dir:
        if sources[synthesis].parent.parent == run_dir:
            # the runs the table below lists, in its order (seed2 before seed10)
            others = ", ".join(f"`{d.name}`" for d in RunDir(run_dir).runs())
            lines += [f"{_page_list(per_run)} show the run `{trained.name}`; page {page_number(synthesis)} "
                      f"synthesises all runs of this directory: {others}.", ""] + _runs_table(run_dir)
        else:
            # the runs of the sweep the pages show, in its plan's order: an experiment's lie in its sweeps (the
            # intro listed none, "the first of this sweep's runs: .")
            from .sweep import sweep_run_dirs

            sweep_dir = trained.parent
            others = ", ".join(f"`{d.name}`" for d in sweep_run_dirs(sweep_dir))
            sweep = "this sweep's" if sweep_dir == run_dir else f"the sweep `{sweep_dir.relative_to(run_dir)}`'s"
            lines += [f"{_page_list(per_run + [synthesis])} show the run `{trained.name}`, the first of {sweep} "
                      f"runs: {others}.", ""]
    if SWEEP_PAGE in sources:
        sweep_dir = sources[SWEEP_PAGE].parent.parent
        where = "this directory" if sweep_dir == run_dir else f"`{sweep_dir.relative_to(run_dir)}`"
        lines += [f"Page {page_number(SWEEP_PAGE)} compares the runs of the sweep in {where}.", ""]
    elif SWEEP_PAGE in recorded_pages:
        lines += [_recorded_line(SWEEP_PAGE), ""]
    else:
        lines += [f"This build ran no sweep: page {page_number(SWEEP_PAGE)} says how to produce one.", ""]
    if "09_quality_experiment" in sources:
        experiment_dir = sources["09_quality_experiment"].parent.parent
        where = "this directory" if experiment_dir == run_dir else f"`{experiment_dir.relative_to(run_dir)}`"
        lines += [f"Page {page_number('09_quality_experiment')} compares the runs of the quality experiment in {where} (its settings table lists "
                  f"them).", ""]
    elif "09_quality_experiment" in recorded_pages:
        lines += [_recorded_line("09_quality_experiment"), ""]
    if placeholders:
        pages = registry.pages()
        lines += ["This build produced no " + "; no ".join(f"page {page_number(name)}, {pages[name].description}"
                                                          for name in sorted(placeholders))  # by chapter
                  + ": each of these pages says what it shows in its place (results recorded in the repository, or "
                    "none) and how to produce its own.", ""]
    lines += ["| | |", "|---|---|"]
    for name, notebook in sources.items():
        duration = json.loads(notebook.read_text())["metadata"].get("papermill", {}).get("duration")
        took = f"{duration:.0f} s" if isinstance(duration, (int, float)) else "?"
        not_theirs = _not_the_runs_parameters(notebook, name)
        shown = ", ".join(f"`{k}={format_value(v)}`"
                          for k, v in _shown_parameters(name, _recorded_parameters(notebook, name)).items()
                          if k not in not_theirs)
        lines.append(f"| `{name}` | {shown + '; ' if shown else ''}executed in {took} |")
    train_params = RunDir(trained).train_record
    if train_params.exists():
        record = json.loads(train_params.read_text())
        lines.append("| training | " + ", ".join(f"`{k}={format_value(v)}`" for k, v in record.items()) + " |")
    if trained_elsewhere(trained):  # a streamed run's checkpoints may lie elsewhere, or be measured and gone
        from ..checkpoints import run_files

        n_checkpoints = len(run_files(trained)[0])
    else:
        n_checkpoints = len(RunDir(trained).checkpoint_files())
    lines.append(f"| checkpoints | {n_checkpoints} |")
    return "\n".join(lines + [""] + _reproduce_lines(run_dir, trained)) + "\n"


def _shown_parameters(page: str, values: dict) -> dict:
    """A page's recorded values as the intro's table shows them (``record.shown_parameters``, which each page's
    own table of parameters shows too)."""
    from .. import record

    return record.shown_parameters(_step_of(page), values)


PATH_NOTE = "each `PATH` is your copy of that dataset, in its official layout, which `clipalign fetch` gets"


def _p_option(key: str, value) -> str:
    """``-p KEY=VALUE`` of a command shown in the book: the value as -p takes it, a dataset's root as PATH."""
    from ..config import format_value

    return "-p " + shell_arg(f"{key}={'PATH' if key.endswith('_root') else format_value(value)}")


def _reproduce_lines(run_dir: Path, trained: Path) -> list[str]:
    """How to make this book's run again: ``clipalign run`` with the run's preset and the values its pages
    were given beyond it (``-p``, from the records of the run and, for a folder of runs, of the folder; the
    parameters each page's notebook declares; a dataset's root shown as PATH, the reader's copy), the seed of
    a single run or a folder's seeds and scales (of the runs clipalign trained; a note names the others), a
    trajectory's source for a run trained elsewhere, the analyses of a folder whose every run was, and the
    optional steps it ran as a second command. A sweep's or an experiment's folder: the command that made it, from
    its plan (``_planned_command``)."""
    from .. import record
    from ..config import MULTI_RUN_PRESETS, PRESETS
    from ..results import run_identity, run_labels
    from .pipeline import declared_parameters

    if RunDir(run_dir).kind in ("sweep", "experiment"):  # ``trained`` is then one of its runs, not the book's folder
        return _planned_command(run_dir)
    elsewhere, folder = trained_elsewhere(trained), trained != run_dir
    runs = [run.path for run in RunDir(run_dir).runs()] if folder else [trained]
    # open_clip_train's logs put in a folder of runs: no seed or scale of ours makes them again
    others = [label for label, path in zip(run_labels(runs), runs) if trained_elsewhere(path)]
    none_ours = len(others) == len(runs)
    trained_steps = record.read(trained).get("steps", {})
    entries = list(trained_steps.items())
    if folder:
        entries += list(record.read(run_dir).get("steps", {}).items())
    given: dict[str, dict] = {"": {}}  # the main command's values, then each optional step's
    differing = set()
    for name, entry in entries:
        if name not in registry.names():
            continue
        declared = declared_parameters(registry.get(name).notebook)
        values = given.setdefault(name if registry.get(name).optional else "", {})
        for key, where in entry.get("sources", {}).items():
            if (key not in declared or where not in (record.GIVEN, record.CARRIED)
                    or key in record.MACHINE_KEYS or key in ("run_dir", "run_dirs", "preset")):
                continue
            if name != "train" and key in record.TRAINING_KEYS and not (key == "model" and none_ours):
                continue  # the run's training settings: its training page's entry says which were given
            if name == "train" and (key == "seed" or (folder and key == "model")):
                continue  # a run's seed, a folder's seeds and scales: options of their own below
            value = entry["parameters"][key]
            if key in values and values[key] != value:
                differing.add(key)
            values.setdefault(key, value)
    preset = record.run_preset(run_dir)
    options = [f"--preset {preset}"]
    if folder and none_ours:
        # each run's logs analysed where they lie: streamed with --checkpoints instead, a trajectory is a page
        # of the folder's book, not one of its runs (RunDir.runs), so the folder would have none to synthesise
        options.append(f"--only {','.join(registry.analyses_and_synthesis())}")
    elif folder:  # a folder of runs: the seeds and scales of those clipalign trained, where the preset's are others
        identities = [run_identity(path) for path in runs if not trained_elsewhere(path)]
        preset_plan = MULTI_RUN_PRESETS.get(preset, {})
        preset_runs = {"seed": preset_plan.get("seeds", ()),
                       "scale": preset_plan.get("scales", (PRESETS[preset]["model"],))}
        for option, key in (("--seeds", "seed"), ("--scales", "scale")):
            values = tuple(dict.fromkeys(str(identity[key]) for identity in identities))
            if values != tuple(map(str, preset_runs[key])):
                options.append(f"{option} {' '.join(values)}")
    elif elsewhere:
        # the steps it was analysed with: without --only, --checkpoints runs every analysis and the synthesis
        analysed = [name for name in registry.analyses_and_synthesis() if name in trained_steps]
        options += ["--checkpoints SOURCE"] + ([f"--only {','.join(analysed)}"] if analysed else [])
    else:
        options.append(f"-p seed={json.loads(RunDir(trained).train_record.read_text())['seed']}")

    def given_options(values: dict) -> list[str]:
        return [_p_option(key, value) for key, value in values.items()]

    out = f"runs/{run_dir.name}"
    commands = [f"bash scripts/setup.sh && .venv/bin/clipalign run {' '.join(options + given_options(given['']))} "
                f"--out {shell_arg(out)}"]
    commands += [f".venv/bin/clipalign run --out {shell_arg(out)} --only {name} {' '.join(given_options(values))}".rstrip()
                 for name, values in given.items() if name]
    notes = []
    if any(key.endswith("_root") for values in given.values() for key in values):
        notes.append(PATH_NOTE)
    if elsewhere and not folder:
        notes.append(f"`SOURCE` is {_source_named(trained)}")
    if folder and others:
        quoted = [f"`{label}`" for label in others]
        named = f"the runs {', '.join(quoted[:-1])} and {quoted[-1]}" if len(quoted) > 1 else f"the run {quoted[0]}"
        source = ("they were trained elsewhere, and each one's page 1 names its source" if len(quoted) > 1
                  else "it was trained elsewhere, and its page 1 names its source")
        notes.append(f"`{out}` must hold {named} first: {source}" if none_ours
                     else f"the command does not make {named}: {source}")
    if differing:
        notes.append(f"the pages ran with different values of {', '.join(f'`{k}`' for k in sorted(differing))}: "
                     "the command gives the first page's; re-run the others with `--only STEP -p NAME=VALUE`")
    return (["To reproduce it:", "", "```bash", *commands, "```"]
            + ([""] + [f"({'; '.join(notes)}.)"] if notes else []))


def _planned_command(folder: Path) -> list[str]:
    """How to make a sweep's or an experiment's book again: ``clipalign sweep`` or ``clipalign experiment`` with the
    preset and options its record (``sweep.json``, ``experiment.json``) keeps; a dataset's root shown as PATH. The
    drivers sweep of a multi-run preset (``clipalign run --preset full``) is made by that folder's command."""
    from ..config import DRIVERS_FOLDER, EXPERIMENT_FIXED, EXPERIMENTS, PRESETS, SWEEP_PRESETS, sweep_separator
    from .sweep import canonical

    kind = RunDir(folder).kind
    plan = json.loads(RunDir(folder).record(kind).read_text())
    preset = plan["preset"]
    parent = RunDir(folder.parent)
    if (kind == "sweep" and folder.name == DRIVERS_FOLDER and preset in SWEEP_PRESETS and parent.kind == "runs"
            and parent.runs()):
        made_by = _reproduce_lines(parent.path, parent.runs()[0].path)
        end = made_by.index("```", 3)  # the folder's commands, then this sweep's book (the command builds the folder's)
        book = f".venv/bin/clipalign book {shell_arg(f'runs/{parent.path.name}/{folder.name}')}"
        return made_by[:end] + [book] + made_by[end:]

    options = [f"--preset {preset}"]
    if kind == "sweep":
        if plan.get("one_at_a_time"):
            options.append("--one-at-a-time")
        # the swept values first, in the record's order (a grid's first parameter is its outermost), as -p takes
        # them: a list-valued parameter's values separated by ';'
        options += [_p_option(key, sweep_separator(PRESETS[preset].get(key)).join(values))
                    for key, values in plan["swept"].items()]
        options += [_p_option(key, value) for key, value in plan["fixed"].items()]
        given = list(plan["swept"]) + list(plan["fixed"])
        command = "sweep"
    else:
        name, sweeps = plan["experiment"], plan["sweeps"]
        # every sweep is given the experiment's fixed values and the command's -p: those that are not its own
        own = {key for values in EXPERIMENTS[name].values() for key in values}
        fixed = {key: canonical(key, value, preset) for key, value in EXPERIMENT_FIXED.get(name, {}).items()}
        shared = {key: canonical(key, value, preset)
                  for key, value in next(iter(sweeps.values()), {}).items() if key not in own}
        given = [key for key, value in shared.items() if fixed.get(key) != value]
        options += [_p_option(key, shared[key]) for key in given]
        if set(sweeps) != set(EXPERIMENTS[name]):  # in the experiment's order, as it runs them
            options.append(f"--only-sweeps {','.join(sweep for sweep in EXPERIMENTS[name] if sweep in sweeps)}")
        command = f"experiment {name}"
    lines = ["To reproduce it:", "", "```bash",
             f"bash scripts/setup.sh && .venv/bin/clipalign {command} {' '.join(options)} "
             f"--out {shell_arg(f'runs/{folder.name}')}", "```"]
    if any(key.endswith("_root") for key in given):
        lines += ["", f"({PATH_NOTE}.)"]
    return lines


def _source_named(run_dir: Path) -> str:
    """What ``--checkpoints SOURCE`` is for a run trained elsewhere, as its page 1 names it (a folder there is
    shortened: the reader gives their own copy)."""
    from ..sources import LAION_PREFIX

    manifest = RunDir(run_dir).source_manifest()
    if manifest is None:
        return "your copy of the open_clip_train run folder page 1 names"
    if manifest["source"].startswith(LAION_PREFIX):
        return f"the `{LAION_PREFIX}` run page 1 names"
    if re.match(r"^https?://", manifest["source"]):
        return "the URL template page 1 names"
    return "your copy of the checkpoint folder page 1 names"


def _runs_table(run_dir: Path) -> list[str]:
    """Markdown lines: one row per run of a multi-run directory with its scale, seed, checkpoints and
    training time (its executed 01_train notebook)."""
    from ..results import run_identity

    lines = ["| run | scale | seed | checkpoints | trained in |", "|---|---|---|---|---|"]
    for run in RunDir(run_dir).runs():
        identity = run_identity(run.path)
        train_notebook = run.executed(registry.get("train").notebook)
        duration = (json.loads(train_notebook.read_text())["metadata"].get("papermill", {}).get("duration")
                    if train_notebook.exists() else None)
        took = f"{duration:.0f} s" if isinstance(duration, (int, float)) else "?"
        lines.append(f"| `{run.name}` | {identity['scale']} | {identity['seed']} | "
                     f"{len(run.checkpoint_files())} | {took} |")
    return lines + [""]


def toc(pages) -> dict:
    """The repository's ``_toc.yml`` with its notebook part's chapters set to ``pages`` (notebook names,
    in the registry's page order)."""
    import yaml

    book_toc = yaml.safe_load((REPO_ROOT / "_toc.yml").read_text())
    part = next((p for p in book_toc.get("parts", []) if p.get("caption") == NOTEBOOK_PART), None)
    if part is None:
        raise BookBuildFailed(f"{REPO_ROOT / '_toc.yml'} has no part captioned {NOTEBOOK_PART!r}")
    order = registry.notebook_pages()
    ranked = sorted(pages, key=lambda name: (order.index(name) if name in order else len(order), name))
    part["chapters"] = [{"file": f"notebooks/{name}"} for name in ranked]
    return book_toc


def _path_replacements(run_dir: Path, sources: dict[str, Path]) -> list[tuple[str, str]]:
    """(absolute path, what the book shows instead), longest first: each run directory relative to the
    checkout (``runs/default``) or, outside it, to the run directory's parent; the checkout itself; a dataset's
    folder a page was given, by its name."""
    from ..record import shown_folder

    base = REPO_ROOT if run_dir.is_relative_to(REPO_ROOT) else run_dir.parent
    dirs = {run_dir} | {source.parent.parent.resolve() for source in sources.values()}
    pairs = [(str(d), os.path.relpath(d, base)) for d in dirs | _local_sources(dirs)]
    # A run moved or copied since its pages were executed: they hold the folder they ran in, shown as it is now.
    for source in sources.values():
        absolute = {key: value for key, value in _given(source).items()
                    if isinstance(value, str) and os.path.isabs(value)}
        executed_in, now = absolute.get("run_dir"), source.parent.parent.resolve()
        if executed_in and executed_in != str(now):
            pairs.append((executed_in, os.path.relpath(now, base)))
        # a dataset's folder by its name, as each page's table of parameters shows it: the reader's copy lies
        # elsewhere (the downloadable notebooks held the absolute folder the pages read)
        pairs += [(root, shown_folder(root)) for key, root in absolute.items() if key.endswith("_root")]
    return path_replacements(pairs)


def _given(notebook: Path) -> dict:
    """The parameters an executed page was given (papermill's record of them: its ``run_dir`` the folder it ran
    in, a ``<task>_root`` a dataset's); {} where it holds none."""
    try:
        given = json.loads(notebook.read_text())["metadata"]["papermill"]["parameters"]
    except (KeyError, TypeError, ValueError, OSError):
        return {}
    return given if isinstance(given, dict) else {}


def _local_sources(dirs) -> set[Path]:
    """The folders of checkpoints on this machine that streamed runs among ``dirs`` measured (``--checkpoints
    FOLDER``): page 10 names them, and the book shows them relative, as it shows the runs."""
    folders = set()
    for folder in dirs:
        manifest = RunDir(folder).source_manifest()
        if manifest and Path(manifest["source"]).is_absolute():
            folders.add(Path(manifest["source"]))
            folders |= {Path(c["source"]).parent for c in manifest["checkpoints"] if c.get("local")}
    return folders


def _published_page() -> str:
    """The intro's lines on where the book lives, from the one repository setting (pyproject.toml)."""
    url, tag = repository.read_setting(REPO_ROOT)
    return (f"The published copy of this book lives at <{repository.pages_url(url)}> once the repository's Pages "
            f"workflow has deployed it (it is rebuilt from <{url}> on every push to its main branch). Each notebook page offers its executed notebook for download (.ipynb), and its Colab "
            f"button opens the notebook of release `{tag}`, where it installs the package at that release and, run "
            f"alone, trains the run it needs first: the button and the install work once the repository is "
            f"published and carries the tag `{tag}`.\n")


def stage_book(run_dir: str | Path, folder: str = BOOK) -> Path:
    """Copy the book's sources and the executed notebooks into RUN_DIR/``folder``; return that folder."""
    run_dir = Path(run_dir).resolve()
    sources, trained = _notebook_sources(run_dir)
    stale = stale_pages(sources)
    if stale:
        where = sources[stale[0]].parent.parent
        raise BookBuildFailed(f"page {', '.join(stale)} in {where} was executed with other parameters than its "
                              f"tables were last made with (a page re-run by hand, its notebook written elsewhere): "
                              f"run {_execute_again(stale, where)} to execute it into the run, then build the book")
    changed = pages_on_changed_tables(sources)
    if changed:
        name, tables = next(iter(changed.items()))
        where = sources[name].parent.parent
        raise BookBuildFailed(f"page {name} in {where} was made from tables that have changed since "
                              f"({', '.join(tables)}): run {_execute_again([name], where)} to execute it again "
                              f"on them, then build the book")
    stage = run_dir / folder
    if stage.exists():
        shutil.rmtree(stage)
    stage.mkdir(parents=True)
    shutil.copy2(REPO_ROOT / "_config.yml", stage / "_config.yml")
    import yaml

    from . import recorded

    # Folder pages this build does not hold but the repository records (pages 6 and 9): the recorded page.
    recorded_pages = [name for name in recorded.PAGES if name not in sources and recorded.recorded_notebook(name)]
    # Other registered pages this build does not hold, shown as their placeholders (page 11 without the step, …).
    placeholders = {name: page for name, page in registry.pages().items()
                    if page.placeholder and name not in sources and name not in recorded_pages}
    elsewhere = TRAIN_PAGE not in sources  # a run trained elsewhere: page 1 says so
    pages = list(sources) + recorded_pages + list(placeholders) + ([TRAIN_PAGE] if elsewhere else [])
    (stage / "_toc.yml").write_text("# Staged by clipalign_utils.orchestration.book: the notebook pages come from the step registry.\n"
                                    + yaml.safe_dump(toc(pages), sort_keys=False, allow_unicode=True))
    shutil.copytree(REPO_ROOT / "book", stage / "book")
    (stage / "notebooks").mkdir()
    replacements = _path_replacements(run_dir, sources)
    for name, source in sources.items():
        notebook = _publishable(json.loads(source.read_text()), replacements)
        (stage / "notebooks" / f"{name}.ipynb").write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n")
    for name in recorded_pages:
        notebook = recorded.page_with_provenance(name)
        (stage / "notebooks" / f"{name}.ipynb").write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n")
    url, tag = repository.read_setting(REPO_ROOT)
    markdown_pages = {name: page.placeholder_text(stage / "notebooks") for name, page in placeholders.items()}
    if elsewhere:
        from ..steps.train.page import trained_elsewhere_page

        markdown_pages[TRAIN_PAGE] = _portable(trained_elsewhere_page(trained), replacements)
    for name, text in markdown_pages.items():
        # a Markdown page has no launch button: the notebook pages' Colab link, as a line of its own
        colab = f"\n\n[Open this page's notebook in Colab]({repository.colab_url(url, tag, name)}) (release `{tag}`).\n"
        (stage / "notebooks" / f"{name}.md").write_text(text.rstrip() + colab)
    generated = stage / "_generated"
    generated.mkdir()
    (generated / "run.md").write_text(_run_summary(run_dir, sources, trained, recorded_pages, list(placeholders)))
    (generated / "published.md").write_text(_published_page())
    if elsewhere:
        _embedded_world_figure(trained, generated / "world_examples.png", stage / "book" / "world.md")
    else:
        shutil.copy2(RunDir(trained).figure("world_training_pairs"), generated / "world_examples.png")
    return stage


def _embedded_world_figure(run_dir: Path, png: Path, chapter: Path) -> None:
    """For a run trained elsewhere, the world chapter's figure: pairs of the embedded world its evaluation
    sets are drawn from (the run's preset's), captioned as such rather than as the run's training pairs."""
    from .. import config, record
    from ..plots.common import png_bytes
    from ..steps.train.page import world_sample_figure

    png.write_bytes(png_bytes(world_sample_figure(config.resolve(record.run_preset(run_dir, None)))))
    text = chapter.read_text()
    if WORLD_CAPTION not in text:
        raise BookBuildFailed(f"{chapter} no longer captions its figure {WORLD_CAPTION!r}: update book.WORLD_CAPTION")
    chapter.write_text(text.replace(WORLD_CAPTION, "Pairs of the embedded world the evaluation sets are drawn from "
                                                   "(this run was trained elsewhere, on data of its own)."))


WORLD_CAPTION = "Training pairs of this run (title: shape class / texture family)."


def build_book(run_dir: str | Path) -> Path:
    """Stage and build the book in RUN_DIR/.book-building, then put it in place of RUN_DIR/book; return the
    HTML folder (RUN_DIR/book/_build/html). A failed build goes to RUN_DIR/.book-failed (its build.log) and
    leaves RUN_DIR/book as it was."""
    import fcntl

    run_dir = Path(run_dir).resolve()
    # One build of a folder at a time: a second removed the first's staging folder, and both failed (an audit).
    # The lock is the folder's own (flock on its descriptor): no lock file is left beside the book.
    held = os.open(run_dir, os.O_RDONLY)
    try:
        try:
            fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BookBuildFailed(f"another command is building the book of {run_dir} now; wait for it to finish (or "
                                  f"stop it), then build it again if its pages have changed since") from None
        return _build_book(run_dir)
    finally:
        os.close(held)


def _build_book(run_dir: Path) -> Path:
    for leftover in (BOOK_BUILDING, BOOK_REPLACED):  # from a build stopped part-way
        shutil.rmtree(run_dir / leftover, ignore_errors=True)
    stage = stage_book(run_dir, BOOK_BUILDING)
    # jupyter-book's own entry point run by this interpreter: its script is not always beside the interpreter
    # (Colab's /usr/local/bin, pip's --user ~/.local/bin)
    command = [sys.executable, "-c", "import sys; from jupyter_book.cli.main import main; sys.exit(main())",
               "build", str(stage), "--warningiserror", "--keep-going", "--quiet"]
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    (stage / "build.log").write_text(result.stdout + result.stderr)
    failed = run_dir / BOOK_FAILED
    shutil.rmtree(failed, ignore_errors=True)
    if result.returncode != 0:
        stage.rename(failed)
        kept = f"; {run_dir / BOOK} is the previous build" if (run_dir / BOOK).exists() else ""
        raise BookBuildFailed(f"the book build failed (exit {result.returncode}); see {failed / 'build.log'}{kept}")
    book, replaced = run_dir / BOOK, run_dir / BOOK_REPLACED
    if book.exists():
        book.rename(replaced)
    stage.rename(book)
    shutil.rmtree(replaced, ignore_errors=True)
    return book / "_build" / "html"
