"""Run the study's notebooks with papermill: one execution loop for a run, several runs and a sweep.

Each step is one jupytext (py:percent) notebook, listed once in the step registry
(:mod:`clipalign_utils.registry`); its executed copy lands in ``RUN_DIR/notebooks/``. A run's parameters
are resolved once (``record.resolve``: the preset, the run's own training record, the ``-p`` values),
before any folder is made; each step's resolution is written into the run's ``record.json`` and its
notebook is given exactly those values. An executed notebook is written under a temporary name and
renamed when it succeeded, so a failed step never leaves a result-looking file: its partial output is
kept as ``<name>.failed.ipynb`` for debugging, and the run's record, tables, figures and the step's earlier
page are put back as they were.

The runner never builds the book: the CLI does, after a run (``clipalign_utils.orchestration.book``).
"""
from __future__ import annotations

import functools
import json
import os
import platform
import re
import shutil
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from types import MappingProxyType
from typing import Callable, Mapping, Sequence

from .. import record, registry
from ..checkpoints import check_run, check_trainable, discover_run
from ..config import PRESETS, format_value
from . import kernel, signals
from .publish import COUNT, PROGRESS_SEGMENT
from ..errors import FREE_SOME, ClipalignError, ParameterError, disk_full, shell_arg
from ..layout import PARTS, RUN_RECORD, RunDir, runs_in
from ..prose import plural
from ..record import Resolved
from ..registry import REPO_ROOT

# Step name -> notebook, in execution order: a live view of the registry.
STEPS = registry.StepNotebooks()


class StepFailed(ClipalignError):
    """A notebook raised; the message carries the notebook's own error line."""


def available_steps(optional: bool = False) -> list[str]:
    """The registered steps whose notebook source exists, in execution order; the optional ones (run only
    when ``--only`` names them) with ``optional``."""
    return [step.name for step in registry.steps() if step.source.exists() and (optional or not step.optional)]


def comma_names(option: str, text: str) -> list[str]:
    """The names of ``option``'s comma-separated ``text`` (``--only a,b``), as given; [] for none. An empty name
    (a stray comma) or one named twice is refused: each is a typo for something else as often as not."""
    names = [name.strip() for name in text.split(",")]
    if not any(names):
        return []
    if not all(names):
        raise ParameterError(f"{option} {text!r} has an empty name: separate the names by single commas")
    twice = next((name for k, name in enumerate(names) if name in names[:k]), None)
    if twice:
        raise ParameterError(f"{option} {text!r} names {twice} twice: give each once")
    return names


def only_steps(only: str) -> list[str]:
    """``--only a,b``'s step names (:func:`comma_names`), each checked against the registry (an unknown one: one
    line naming the known steps), in execution order."""
    names = comma_names("--only", only)
    if not names:
        raise ParameterError(f"--only {only!r}: name a step (one of {', '.join(registry.names())}), or leave "
                             f"--only out to run them all")
    for name in names:
        registry.get(name)
    order = registry.names()
    return sorted(names, key=order.index)


def measured_steps(only: str | None) -> list[str]:
    """The analysis steps among ``--only``'s (every analysis step without it): those a checkpoint can be
    measured for alone, filling the cache (a streamed run's pass, a torchrun rank's share)."""
    names = None if only is None else only_steps(only)
    return [s.name for s in registry.analysis_steps() if names is None or s.name in names]


def _reads_checkpoints(step: str) -> bool:
    """Whether ``step`` reads a trained run's checkpoints, itself or through the steps it depends on."""
    depends = registry.get(step).depends
    return "train" in depends or any(_reads_checkpoints(d) for d in depends)


@functools.lru_cache(maxsize=None)
def _declared(source: Path, modified: float) -> Mapping[str, dict]:
    import jupytext
    import papermill

    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"clipalign-inspect-{os.getpid()}-{source.stem}.ipynb"
    jupytext.write(jupytext.read(source), tmp)
    try:
        return MappingProxyType(papermill.inspect_notebook(str(tmp)))
    finally:
        tmp.unlink(missing_ok=True)


def declared_parameters(notebook: str) -> Mapping[str, dict]:
    """The parameters the notebook ``notebook`` declares in its ``parameters`` cell, {name: papermill's
    description}, read once per version of the source."""
    source = registry.notebook_source(notebook)
    return _declared(source, source.stat().st_mtime)


def notebook_parameters(step: str) -> Mapping[str, dict]:
    """The parameters a step's notebook declares in its `parameters` cell (``step`` not a registered step:
    the page of that name, ``10_real_clip`` say)."""
    return declared_parameters(registry.get(step).notebook if step in registry.names() else step)


def split_given(overrides: Mapping, notebooks: Sequence[str], preset: str = "default") -> tuple[dict, dict]:
    """(preset parameters, other parameters the notebooks declare, such as ``run_dirs``) of ``overrides``;
    a name neither a preset nor any of ``notebooks`` knows is refused, naming the known ones."""
    known = {"run_dir", "preset"} | set(PRESETS[preset]) | read_by(notebooks)
    unknown = sorted(set(overrides) - known)
    if unknown:
        import difflib

        # (not the ones -p refuses: the command sets them, or papermill alone takes them)
        takes = sorted(known - set(registry.SET_BY_COMMAND) - set(registry.PAPERMILL_ONLY))
        near = ", ".join(match for name in unknown for match in difflib.get_close_matches(name, takes, n=1))
        raise ParameterError(f"unknown {plural(len(unknown), 'parameter')} {', '.join(unknown)}: "
                             f"no notebook declares {'it' if len(unknown) == 1 else 'them'}"
                             f"{f' (did you mean {near}?)' if near else ''}; known: {', '.join(takes)}")
    given = {k: v for k, v in overrides.items() if k in PRESETS[preset]}
    return given, {k: v for k, v in overrides.items() if k not in given and k not in ("run_dir", "preset")}


# the -p names said to be read by no page, since the command began (it may plan runs, a sweep, an experiment);
# cli.main clears it: a Python caller making several commands' calls clears it with forget_notes between them
_NOTED: set[str] = set()


def forget_notes() -> None:
    """A new command: each unread -p name is said once per command."""
    _NOTED.clear()


def read_by(notebooks: Sequence[str]) -> set[str]:
    """The parameters some page of ``notebooks`` declares."""
    return set().union(*(declared_parameters(notebook) for notebook in notebooks))


def readers(name: str) -> list[str]:
    """The steps, optional ones included, whose page reads ``name``."""
    return [step for step in available_steps(optional=True) if name in notebook_parameters(step)]


def note_unread(given: Mapping, notebooks: Sequence[str]) -> None:
    """A line naming the ``-p`` values that no page of ``notebooks`` reads, and the steps that would: a step's
    parameter given to a command that does not run the step would otherwise pass unnoticed (an audit:
    ``-p interpolation_from=x`` without ``--only interpolation`` trained and measured a run as if unsaid)."""
    read = read_by(notebooks)
    unread = [name for name in given if name not in read and name not in _NOTED]
    if not unread:
        return
    _NOTED.update(unread)
    said = "; ".join(f"-p {name}" + (f" (read by step {', '.join(steps)}: --only {steps[0]})"
                                     if (steps := readers(name)) else "") for name in unread)
    print(f"note: no page this command runs reads {said}", flush=True)


def step_notebooks(steps: Sequence[str]) -> list[str]:
    return [registry.get(step).notebook for step in steps]


LOG_PROGRESS_EVERY_S = 60  # where stderr is a log (a file, a job's output): a page's latest bar this often


_BAR_COUNT = re.compile(rf"\|\s*({COUNT})/({COUNT})")
_TERMINAL_CODES = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")  # tqdm's cursor moves for a nested bar: none in a log


def _ended_bar(bar: str) -> tuple[str, str] | None:
    """(description, "n/total") of a tqdm bar drawn at its total, else None (a byte count drawn rounded, 915M/915M,
    is at its total only at 100%)."""
    count = _BAR_COUNT.search(bar)
    if count is None or count.group(1) != count.group(2) or re.search(r"(?<!\d)(?!100%)\d+%\|", bar):
        return None
    return bar.split(":", 1)[0].strip(), f"{count.group(1)}/{count.group(2)}"


class KernelBars:
    """A page's stderr as the terminal sees it while the page runs: its progress bars, each redrawn in place,
    and not its warnings (the executed page keeps those). With ``every`` (seconds), for a log rather than a
    terminal: the latest bar as a line of its own, at most once in that many seconds from the page's start,
    so that a long cell (a real dataset's scoring, a checkpoint's embeddings) shows in the log that it moves,
    and every bar once at its total, so the log shows where each loop ended."""

    def __init__(self, stream, every: float | None = None, others: bool = False):
        # others: write what is not a bar through (a process's own stderr: warnings and errors stay)
        self.stream, self.open, self.every, self.others = stream, False, every, others
        self.text_open = False  # others: a line of text written through, not yet ended
        self.last = time.monotonic()
        self.ended = None  # the last bar written at its total: (its description, n/total)

    def write(self, text: str) -> int:
        lines = text.split("\n")  # not splitlines: a bar's redraws are '\r'-separated on one line
        for k, line in enumerate(lines):
            bars = [part for part in line.split("\r") if part.strip() and PROGRESS_SEGMENT.search(part)]
            if self.every is not None:  # a log: no cursor moves (tqdm's for a nested bar)
                bars = [_TERMINAL_CODES.sub("", part) for part in bars]
            # others: the text that is not a bar, without the cursor moves that would garble a log
            rest = [text for text in (_TERMINAL_CODES.sub("", part) for part in line.split("\r")
                                      if not PROGRESS_SEGMENT.search(part)) if text.strip()] if self.others else []
            if rest:
                self.end_line()
                self.stream.write("".join(rest))
                self.text_open = True
            if self.text_open and k < len(lines) - 1:  # the text's line ended
                self.stream.write("\n")
                self.text_open = False
            if bars and self.every is None:
                self.stream.write("\r" + bars[-1])
                self.open = True
            elif bars and (ended := _ended_bar(bars[-1])) and ended != self.ended:
                # a bar at its total, whatever the clock: the log shows each loop's end (tqdm draws it
                # again as it closes: once is enough)
                self.stream.write(bars[-1].strip() + "\n")
                self.stream.flush()
                self.ended = ended
            elif bars and not ended and (now := time.monotonic()) - self.last >= self.every:
                self.stream.write(bars[-1].strip() + "\n")
                self.stream.flush()
                self.last = now
            if k < len(lines) - 1:  # the line ended
                self.end_line()
        return len(text)

    def end_line(self) -> None:
        if self.open:
            self.stream.write("\n")
            self.open = False
        self.stream.flush()

    def flush(self) -> None:
        self.stream.flush()


@contextmanager
def measuring_bars():
    """While a step measures in this process (not in a page's kernel, whose bars :class:`KernelBars` reads):
    where stderr is a log, its progress bars as a page's are written there, each once at its total and the
    latest once a minute, not tqdm's carriage-return frames; everything else goes through. A terminal's
    stderr is left as it is."""
    # (a page's kernel: its stderr is ipykernel's stream, never a tty, and the command's KernelBars reads it)
    in_kernel = type(sys.stderr).__module__.startswith("ipykernel")
    if sys.stderr.isatty() or in_kernel or isinstance(sys.stderr, KernelBars):
        yield
        return
    original = sys.stderr
    sys.stderr = KernelBars(original, every=LOG_PROGRESS_EVERY_S, others=True)
    try:
        yield
    finally:
        sys.stderr.end_line()
        sys.stderr = original


def run_notebook(name: str, run_dir: Path, parameters: Mapping, progress: bool = True,
                 label: str | None = None, keep_previous: bool = False,
                 committing: Callable[[], object] | None = None) -> Path:
    """Execute the notebook <name> (a step's or a page's, see the registry) into RUN_DIR/notebooks/<name>.ipynb,
    passing those of ``parameters`` it declares. If it fails, its partial copy is kept as <name>.failed.ipynb
    and the page executed before is removed, or kept with ``keep_previous`` (the caller puts back what it
    was made from)."""
    import jupytext
    import papermill
    from nbclient.exceptions import DeadKernelError
    from papermill.exceptions import PapermillExecutionError

    label = label or f"notebook {name}"
    out_dir = RunDir(run_dir).notebooks
    out_dir.mkdir(parents=True, exist_ok=True)
    source = out_dir / f".{name}.source.ipynb"
    jupytext.write(jupytext.read(registry.notebook_source(name)), source)
    declared = declared_parameters(name)
    passed = {k: v for k, v in parameters.items() if k in declared}
    final, partial = out_dir / f"{name}.ipynb", out_dir / f".{name}.running.ipynb"
    manager = kernel.manager_for(str(REPO_ROOT))
    bars = KernelBars(sys.stderr) if progress else KernelBars(sys.stderr, every=LOG_PROGRESS_EVERY_S)
    try:
        # Saved once, at the end (or where a cell fails), not after every cell: a page's PNGs made each
        # save slower than the cell before it (182 saves were 1.8 s of a five-page re-run).
        # The page's own progress bars (training, each checkpoint's embeddings, the images scored) as it runs,
        # on a terminal in place, in a log a line a minute: a real dataset's step can take minutes in one cell.
        papermill.execute_notebook(str(source), str(partial), parameters=passed, request_save_on_cell_execute=False,
                                   kernel_name="python3", progress_bar=False, stderr_file=bars,
                                   cwd=str(REPO_ROOT), km=manager)
    except DeadKernelError:
        # The kernel was killed (by the OOM killer, most often): one line, not papermill's traceback.
        kernel.discard()
        if partial.exists():
            os.replace(partial, out_dir / f"{name}.failed.ipynb")
        if not keep_previous:
            final.unlink(missing_ok=True)
        raise StepFailed(f"{label}: its kernel died, most often for want of memory: lower eval_batch_size "
                         f"(now {parameters.get('eval_batch_size', '?')}) with -p eval_batch_size=N, or analyse "
                         f"fewer images or checkpoints") from None
    except PapermillExecutionError as error:
        # A cell that raised may have left module state half-changed (a context not exited, a thread, a cache):
        # the next page gets a new kernel, so that its numbers are the ones it would get after a clean run.
        kernel.discard()
        os.replace(partial, out_dir / f"{name}.failed.ipynb")
        if not keep_previous:
            final.unlink(missing_ok=True)
        message = str(error.evalue).strip().splitlines()[0] if str(error.evalue).strip() else ""
        full = f"; the disk is full: {FREE_SOME}" if disk_full(message) else ""
        raise StepFailed(f"{label} failed ({error.ename}: {message}){full}; "
                         f"see {out_dir / (name + '.failed.ipynb')}") from None
    except BaseException:
        kernel.discard()  # interrupted mid-cell: no later notebook runs on that kernel
        raise
    finally:
        bars.end_line()
        source.unlink(missing_ok=True)
        kernel.release_clients()
        if kernel.fresh_kernels():
            kernel.discard()
    if committing is not None:  # the caller's last word before the finished page takes the old one's place
        committing()
    os.replace(partial, final)
    (out_dir / f"{name}.failed.ipynb").unlink(missing_ok=True)
    return final


def run_page(name: str, run_dir: Path, resolved: Resolved, extra: Mapping | None = None, progress: bool = True,
             label: str | None = None, entry: str | None = None) -> Path:
    """Record ``resolved`` in the run's record.json (as ``entry``, default the notebook's name), then execute
    the notebook ``name`` with exactly those values (and ``extra``: ``run_dirs``, say). A failed notebook
    leaves the run as it was: its record, tables, figures and the page executed before (a re-run with a
    dataset that will not decode, or stopped with Ctrl-C, does not cost the earlier result), beside
    <name>.failed.ipynb."""
    layout = RunDir(run_dir)
    recover_stopped_pages(run_dir)
    before = layout.run_record.read_bytes() if layout.run_record.exists() else None
    parameters = {"run_dir": str(run_dir), "auto_train": False,  # a step that finds no checkpoints fails
                  **resolved.to_json()["parameters"], "preset": resolved.preset, **(extra or {})}
    with _saved_outputs(layout, name, before) as outputs:
        try:
            record.write_entry(run_dir, entry or name, resolved)
            return run_notebook(name, run_dir, parameters, progress, label, keep_previous=True,
                                committing=lambda: (outputs / _COMMITTED).touch())
        except BaseException:
            with signals.deferred():  # a second Ctrl-C or SIGTERM must not stop the putting back half-way
                _settle(layout, name, outputs)
            raise


_SAVED_SUFFIX = ".outputs-before"  # .<notebook>.outputs-before beside metrics/
_SAVED_COMPLETE = "held.lock"  # made last: a saved copy without it was stopped while it was being made
_MAKING = ".making"  # .<notebook>.outputs-before.<host>-<pid>.making: a copy being made, renamed into place once whole
_MAKER = f"{platform.node() or 'host'}-{os.getpid()}".replace(".", "_")
_COMMITTED = "page-finished"  # made just before the finished page replaces the one before: keep, do not put back
_FOLDERS = "folders.json"  # which of metrics/ and figures/ existed before the page


def _running_elsewhere(folder: Path, name: str) -> ParameterError:
    return ParameterError(f"{folder}: another command is running page {name} there now; wait for it to finish (or "
                          f"stop it) before running this one")


@contextmanager
def _saved_outputs(layout: RunDir, name: str, record_before: bytes | None):
    """A copy of the run folder's tables, figures and record.json (a few MB) beside them, to put back if the page
    fails or is stopped: its cells write tables and figures as they go. It is held (an flock) while the page
    runs and removed after; one left behind, unheld, is a command killed mid-page (SIGKILL, a lost node), which
    the next command on the run puts back (:func:`recover_stopped_pages`), or keeps the page if it had finished."""
    import fcntl

    saved = layout.path / f".{name}{_SAVED_SUFFIX}"
    # Made under a name of this process's own, then renamed into place whole and held: two commands starting the
    # page at once each made the copy in the one folder, and one deleted the other's (an audit: FileExistsError).
    making = layout.path / f".{name}{_SAVED_SUFFIX}.{_MAKER}{_MAKING}"
    shutil.rmtree(making, ignore_errors=True)
    making.mkdir(parents=True)
    try:
        existed = []
        for folder in (layout.metrics, layout.figures):
            if folder.is_dir():
                shutil.copytree(folder, making / folder.name)
                existed.append(folder.name)
        (making / _FOLDERS).write_text(json.dumps(existed))
        if record_before is not None:
            (making / layout.run_record.name).write_bytes(record_before)
    except BaseException:
        shutil.rmtree(making, ignore_errors=True)
        raise
    with open(making / _SAVED_COMPLETE, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        try:
            os.rename(making, saved)  # (the lock goes with the file)
        except OSError:  # another command's copy is in place: its page runs now
            shutil.rmtree(making, ignore_errors=True)
            raise _running_elsewhere(layout.path, name) from None
        try:
            yield saved
        finally:
            shutil.rmtree(saved, ignore_errors=True)


def _settle(layout: RunDir, name: str, saved: Path) -> bool:
    """The run made consistent after page ``name`` stopped: a page that had finished (its commit marker in
    ``saved``) is kept, put in place if the stop came before that; else its tables, figures and record are put
    back (:func:`_put_back`). Returns whether they were put back."""
    if (saved / _COMMITTED).exists():
        running = layout.notebooks / f".{name}.running.ipynb"
        if running.exists():
            os.replace(running, layout.notebooks / f"{name}.ipynb")
        return False
    _put_back(layout, saved)
    return True


def _put_back(layout: RunDir, saved: Path) -> None:
    """The run's tables, figures and record.json as ``saved`` holds them (a record it lacks: none). Repeatable:
    stopped half-way, it finishes on the next call (a folder already moved back is not in ``saved`` any more, and
    one that did not exist before is removed), and ``saved`` is removed only by the caller, after it."""
    existed = json.loads((saved / _FOLDERS).read_text())
    for folder in (layout.metrics, layout.figures):
        if (saved / folder.name).is_dir():
            shutil.rmtree(folder, ignore_errors=True)
            os.replace(saved / folder.name, folder)
        elif folder.name not in existed:
            shutil.rmtree(folder, ignore_errors=True)
    kept = saved / layout.run_record.name
    record.restore(layout.path, kept.read_bytes() if kept.exists() else None)


def _page_folders(root: Path, depth: int = 3) -> list[Path]:
    """``root`` and the folders below it that can hold pages: a folder of runs, a sweep's, an experiment's sweeps
    and their runs (three levels), never a run's own parts (checkpoints, cache, …) or hidden folders."""
    folders = [root]
    if depth and root.is_dir():
        for child in sorted(root.iterdir()):
            if child.is_dir() and child.name not in PARTS and not child.name.startswith("."):
                folders += _page_folders(child, depth - 1)
    return folders


def _dead_here(maker: str) -> bool:
    """Whether ``maker`` (a copy's ``<host>-<pid>``) is a process of this machine that has ended. A copy another
    machine is making on a shared disk (a SLURM job's) is not this machine's to judge: False."""
    host, _, pid = maker.rpartition("-")
    if host != _MAKER.rpartition("-")[0]:
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except (ValueError, PermissionError, OverflowError):
        return False
    return False


def recover_stopped_pages(run_dir: str | Path, skip_held: bool = False) -> list[str]:
    """Put back what a command killed mid-page (SIGKILL, an out-of-time job, a lost node: nothing ran its
    clean-up) left half-written in ``run_dir`` or the runs, sweeps and experiments below it: the tables, figures
    and record.json from before that page, with a note (the page executed before it is still in place); a page
    killed once it had finished is kept, with its tables (:func:`_settle`). Returns the pages put back. A copy
    still held is a page another command is running now: ParameterError, or left alone with ``skip_held`` (a
    launcher's command, whose jobs may be running pages)."""
    import fcntl

    put_back = []
    for folder in _page_folders(Path(run_dir)):
        for making in folder.glob(f".*{_SAVED_SUFFIX}.*{_MAKING}"):  # a command killed while making its copy
            if _dead_here(making.name[:-len(_MAKING)].rsplit(".", 1)[-1]):
                shutil.rmtree(making, ignore_errors=True)
        for saved in sorted(folder.glob(f".*{_SAVED_SUFFIX}")):
            name = saved.name[1:-len(_SAVED_SUFFIX)]
            lock = saved / _SAVED_COMPLETE
            if not lock.exists():  # stopped while saving, before the page changed anything
                shutil.rmtree(saved, ignore_errors=True)
                continue
            notebooks = RunDir(folder).notebooks
            with open(lock) as held:
                try:
                    fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    if skip_held:  # a launcher's job running it now: left to that job
                        continue
                    raise _running_elsewhere(folder, name) from None
                with signals.deferred():
                    restored = _settle(RunDir(folder), name, saved)
            shutil.rmtree(saved, ignore_errors=True)
            for leftover in (f".{name}.running.ipynb", f".{name}.source.ipynb"):
                (notebooks / leftover).unlink(missing_ok=True)
            if restored:
                print(f"note: {folder}: a command stopped during page {name} without cleaning up (killed?); its "
                      f"tables, figures and record are put back as they were before that page", flush=True)
                put_back.append(name)
    return put_back


def execute_step(step: str, run_dir: Path, resolved: Resolved, extra: Mapping | None = None,
                 progress: bool = True) -> Path:
    """Execute one step's notebook into RUN_DIR/notebooks/ with the resolved parameters (and what the step
    was given before, :func:`for_step`)."""
    return run_page(registry.get(step).notebook, run_dir, for_step(run_dir, step, resolved), extra, progress,
                    label=f"step {step}", entry=step)


def for_step(run_dir: str | Path, step: str, resolved: Resolved) -> Resolved:
    """``resolved`` as step (or page) ``step`` runs with it on ``run_dir``: with what its page was given last
    time where nothing is given now (``record.for_step``, over the parameters its notebook declares)."""
    return record.for_step(run_dir, step, resolved, notebook_parameters(step))


def check_steps(run_dir: str | Path, steps: Sequence[str], resolved: Resolved) -> None:
    """What ``steps`` will run with on ``run_dir``, checked before any folder is made or kernel started: each
    step's carried values (:func:`for_step`), and every real dataset its page reads, read by its loader
    (``data.fetch.check_real_datasets``): a folder in the wrong layout is one line here, not a page failing
    after training."""
    from ..data.fetch import check_real_datasets

    for step in steps:
        declared = notebook_parameters(step)
        values = record.for_step(run_dir, step, resolved, declared).values
        check_real_datasets({name: value for name, value in values.items() if name in declared})
        check_model_and_device(values)


def check_step_runs(run_dir: str | Path, steps: Sequence[str], resolved: Resolved) -> None:
    """Each step's ``check_run`` (a parameter naming something in the run: a checkpoint) on the run
    ``run_dir``, with the values the step gets there: once the folder is known to hold a run, before any
    folder is made or kernel started (a folder of runs: each run, ``multirun.rerun_step``)."""
    for step in steps:
        check = registry.get(step).check_run
        if check is not None:
            check(discover_run(run_dir, resolved.unless_preset("model")), for_step(run_dir, step, resolved).values,
                  steps)


def check_model_and_device(values: Mapping) -> None:
    """The model a step builds names a scale or an open_clip model (open_clip is asked only for a name that is
    not a scale), and ``device=cuda`` finds a GPU (torch is imported only to ask that): one line here rather
    than a page failing after the run's folder is made."""
    from ..model_names import open_clip_name

    if "model" in values:
        open_clip_name(str(values["model"]))
    if values.get("device") == "cuda":
        from ..models import resolve_device

        resolve_device("cuda")


def run_step(step: str, run_dir: Path, preset: str | None = None, overrides: Mapping | None = None,
             progress: bool = True) -> Path:
    """Resolve ``overrides`` against the run (its record, ``preset`` or the run's own) and execute the step's
    notebook; return the executed notebook's path."""
    preset = record.run_preset(run_dir, preset)
    given, extra = split_given(dict(overrides or {}), [registry.get(step).notebook], preset)
    resolved = record.resolve(run_dir, preset, given)
    check_steps(run_dir, [step], resolved)
    check_step_runs(run_dir, [step], resolved)
    return execute_step(step, Path(run_dir), resolved, extra, progress)


# ----------------------------------------------------------------------------------- the loop
# Each step's lines in the command's output, "[2/6] iqa: 02_iqa_alignment -> RUN/notebooks" as it starts and
# "[2/6] iqa done in 5 s" as it ends: written by execute, read back from a job's log by launch._step_running.
_STARTS, _ENDS = " -> ", " done in "
_STEP_LINE = re.compile(rf"\[\d+/\d+\] (?P<step>[\w-]+)(?:: \S+{_STARTS}|(?P<ended>{_ENDS}))")


def step_started_line(prefix: str, notebook: str, notebooks: Path, note: str = "") -> str:
    return f"{prefix}: {notebook}{_STARTS}{notebooks}{note}"


def step_ended_line(prefix: str, seconds: float) -> str:
    return f"{prefix}{_ENDS}{seconds:.0f} s"


def parameters_line(prefix: str, resolved: Resolved) -> str:
    """The configuration a run's steps run with, shown before them: the preset and each value that is not the
    preset's, with where it came from (the run's record keeps every step's values and sources)."""
    preset = PRESETS.get(resolved.preset, {})
    changed = [f"{name}={format_value(value)} ({resolved.sources[name]})" for name, value in resolved.values.items()
               if name in preset and format_value(value) != format_value(preset[name])]
    return (f"{prefix}parameters: preset {resolved.preset}" + (" with " + ", ".join(changed) if changed else
                                                              ", unchanged")
            + f"; every step's values and sources in {RUN_RECORD}")


def step_in_line(line: str) -> tuple[str, bool] | None:
    """(the step, whether it ended) of a line :func:`step_started_line` or :func:`step_ended_line` wrote,
    anywhere in ``line`` (a job's log prefixes it with its tag); None for any other line."""
    match = _STEP_LINE.search(line)
    return None if match is None else (match["step"], match["ended"] is not None)


def execute(run_dir: str | Path, steps: Sequence[str], resolved: Resolved, *, extra: Mapping | None = None,
            progress: bool = True, tag: str = "", resume: bool = False,
            instead: Callable[[str, str], bool] | None = None, note: Callable[[], str] | None = None) -> list[str]:
    """The one execution loop: run each step of ``steps`` (names, in order) into ``run_dir`` with the run's
    resolved parameters.

    ``resume``: a step whose executed notebook exists is skipped. ``instead(step, prefix)``, when given,
    may do a step's work another way (a sweep shares a training) and return True to skip running it.
    ``note()`` adds text to each step's start line (a time estimate). ``tag`` prefixes every line.
    Returns the steps it executed.
    """
    run_dir = Path(run_dir)
    executed = []
    print(parameters_line(tag, resolved), flush=True)
    for number, step in enumerate(steps, 1):
        prefix = f"{tag}[{number}/{len(steps)}] {step}"
        if resume and RunDir(run_dir).done(step):
            print(f"{prefix}: skip (done)", flush=True)
            continue
        if instead is not None and instead(step, prefix):
            continue
        started = time.time()
        print(step_started_line(prefix, registry.get(step).notebook, run_dir / "notebooks", note() if note else ""),
              flush=True)
        execute_step(step, run_dir, resolved, extra, progress)
        print(step_ended_line(prefix, time.time() - started), flush=True)
        executed.append(step)
    return executed


def run_pipeline(out: str | Path, preset: str | None = None, only: str | None = None,
                 overrides: dict | None = None, progress: bool = True) -> Path:
    """Run every step (or `only` one) into `out`; return the run directory. (The CLI builds the book.)
    ``preset`` None: the run's recorded preset, else ``default``."""
    run_dir = Path(out).resolve()
    preset = record.run_preset(run_dir, preset)
    steps = available_steps()
    if only is not None:
        names = only_steps(only)
        missing = [name for name in names if name not in available_steps(optional=True)]
        if missing:
            raise ParameterError(f"step {missing[0]!r} has no notebook yet ({registry.get(missing[0]).source})")
        steps = names
    given, extra = split_given(dict(overrides or {}), step_notebooks(steps), preset)
    resolved = record.resolve(run_dir, preset, given)  # the one resolution: before any folder is made
    check_steps(run_dir, steps, resolved)
    if "train" in steps:
        check_trainable(run_dir)
    elif (any(_reads_checkpoints(step) for step in steps)
          and not (list(steps) == [registry.synthesis().name] and RunDir(run_dir).tables_only())):
        # A folder without a run fails here, in one line, not after a kernel has started and a page has run.
        check_run(run_dir, resolved.unless_preset("model"))
        check_step_runs(run_dir, steps, resolved)
    note_unread(given, step_notebooks(steps))
    run_dir.mkdir(parents=True, exist_ok=True)
    execute(run_dir, steps, resolved, extra=extra, progress=progress)
    if only is not None:
        note_stale_synthesis(run_dir, steps, given)
    return run_dir


def note_stale_synthesis(run_dir: Path, steps: Sequence[str], given: Mapping | None = None) -> None:
    """After ``--only`` re-ran ``steps`` in one run: a line saying which synthesis page (the run's own, or the
    folder of runs' it belongs to) still shows the tables from before, and the command that re-makes it: for a
    folder, with this command's ``given`` parameters (its other runs keep what they were given last, so the
    synthesis would find the runs' tables measured two ways)."""
    synthesis = registry.synthesis().name
    fed = {step.name for step in registry.per_run_steps()}  # what the synthesis reads: not the optional steps
    if synthesis in steps or not fed & set(steps):
        return
    again = ",".join(steps)
    if RunDir(run_dir).done(synthesis):
        print(f"note: this run's synthesis ({registry.synthesis().notebook}) still shows the tables from before; "
              f"--only {again},{synthesis} re-runs it too", flush=True)
    elif run_dir in [run.resolve() for run in runs_in(run_dir.parent)] and RunDir(run_dir.parent).done(synthesis):
        same = "".join(f" -p {shell_arg(f'{name}={value}')}" for name, value in (given or {}).items())
        print(f"note: the synthesis of {run_dir.parent} still shows this run's tables from before; clipalign run "
              f"--out {shell_arg(run_dir.parent)} --only {again}{same} re-runs the step in every run, then the "
              f"synthesis", flush=True)
