"""The step registry: the pipeline's steps, their notebooks, the tables they write, their parameters and
what each adds to the synthesis.

Each step is one :class:`Step`, registered by the ``__init__.py`` of its package
``clipalign_utils/steps/<step>/`` (beside its ``analysis.py``, the measurement, and ``page.py``, its
sentences and figures): its name (what ``clipalign run --only`` takes), its notebook (a jupytext py:percent
source, ``notebooks/<notebook>.py`` unless the entry names another folder), the metric tables it writes
with their contract columns (:class:`Table`), the steps it needs first, its own parameters (defaults,
per-preset values, choices, checks: ``config`` assembles the presets from them), and, for a step whose
curve joins the synthesis, its :class:`Summary` (the per-checkpoint column, its interval, baseline rows,
its claim). The synthesis' checkpoint table, verdicts, seed means, summary panels and the book's table of
contents follow from these entries; nothing else lists steps, notebooks, pages or claims.

The step packages are found on first use (:func:`discover`): their ``__init__`` modules import nothing but
this module and leaf modules (``choices``, ``errors``, ``model_names``, ``schedule``), so finding the steps imports
no measurement code; a step's ``analysis`` is
imported when it runs. Steps run in their notebooks' chapter order, the synthesis last.

This module imports nothing of the package but ``errors`` (and, to find the step packages, the ``steps``
package, which holds no code), so any layer may read it.

Adding a step: its package (``__init__.py`` with one :func:`register` call, ``analysis.py``), its
notebook and tests; or :func:`register` at run time (a test registers a toy step that way).
"""
from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, Collection, Iterator, Mapping

from .errors import ParameterError

# Parameters the notebooks declare for papermill that a command sets itself: a -p would be dropped or contradict it.
SET_BY_COMMAND = {"run_dir": "--out", "preset": "--preset", "checkpoints": "--checkpoints", "at_epochs": "--at-epochs",
                  "keep_weights": "--keep-weights", "only": "--only"}
PAPERMILL_ONLY = ("run_dirs", "auto_train")  # the command gives the runs, and trains with its train step

REPO_ROOT = Path(__file__).resolve().parent.parent


def checkout_or_installed(folder: str, name: str) -> Path:
    """``folder/name`` of the checkout (an editable install, the CLI) where it is there, else the copy installed
    with the package (``pip install`` from a wheel or git, as in Colab): pyproject's data-files put it in
    ``<prefix>/share/clipalign/<folder>``. The checkout's path when neither is there."""
    ours = REPO_ROOT / folder / name
    if ours.exists():
        return ours
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        dist = distribution("clipalign")
        for file in dist.files or ():
            if file.name == name and file.parent.name == folder:
                return Path(dist.locate_file(file)).resolve()
    except PackageNotFoundError:
        pass
    return ours


# The checkout's notebooks/, else the installed copies.
NOTEBOOK_DIR = checkout_or_installed("notebooks", "01_train.py").parent


def dataset_parameters(task: str) -> dict[str, str]:
    """A dataset task's two parameters (``data.registry``): ``<task>_dataset`` (the embedded set by default;
    the names registered for the task are its choices) and ``<task>_root`` (a real dataset's folder)."""
    return {f"{task}_dataset": "embedded", f"{task}_root": ""}


@dataclass(frozen=True)
class Table:
    """A metric table ``RUN_DIR/metrics/<name>.csv``.

    ``columns``: its contract columns in order (the names users and scripts rely on; more columns are welcome).
    ``required``: the columns a reader needs (``results.read_metric`` checks them); default ``columns``.
    """

    name: str
    columns: tuple[str, ...]
    required: tuple[str, ...] | None = None

    @property
    def needed(self) -> tuple[str, ...]:
        return self.required if self.required is not None else self.columns

    def missing_columns(self, columns) -> list[str]:
        """The needed columns not among ``columns``."""
        return [c for c in self.needed if c not in set(columns)]


@dataclass(frozen=True)
class PeakClaim:
    """The claim that a step's summary curve peaks early then declines, judged on the paired early-peak test
    the step writes (``metrics.peak``): the table ``<prefix>_peak`` (one row: early_drop, lo, hi; per distance
    where it has a ``distance`` column), read into checkpoint_table as ``<prefix>_early_drop[_lo/_hi]``.

    ``label``: the measure's short name in the statistic ("srcc"); ``items``: what the bootstrap resamples."""

    claim: str
    label: str
    items: str
    prefix: str

    @property
    def table(self) -> str:
        return f"{self.prefix}_peak"


@dataclass(frozen=True)
class TrendClaim:
    """The claim that ``column`` of the synthesis' table moves ``direction`` (``falls`` or ``rises``) over
    training, judged in one run on the paired trend test its step writes (``metrics.trend``: Spearman ρ of epoch
    and value with an interval resampling the evaluation items, the table :func:`trend_table`, one row per
    claim's column, read into checkpoint_table as ``<column>_trend[_lo/_hi]``), over several seeds by the t
    interval of each seed's own ρ (``metrics.tradeoff.seed_trend_claim``); a column the table lacks gives no row
    unless ``required``."""

    claim: str
    column: str
    direction: str = "falls"
    required: bool = True


@dataclass(frozen=True)
class Summary:
    """What a step adds to the synthesis' per-checkpoint table (``results.checkpoint_table``).

    ``column``: its headline per-checkpoint measure (with ``column``_lo/_hi where it has an interval), named
    ``what`` on pages. ``function``: the name of a function in the step's module,
    ``(table, distance, path) -> DataFrame``:
    one row per checkpoint (column ``checkpoint``), given the step's first table read and checked, its
    ``baselines`` rows left out, the synthesis' distance (None = the table's own) and the table's path for
    messages. ``measures``: the columns it adds that are averaged over seeds, each ``(column, lo, hi)``
    (lo/hi None: no per-run interval); the first is the step's headline, named ``what`` on pages.
    ``required``: a run without the step's table cannot be synthesised (otherwise it joins when present).
    ``panel``: ``(y label, title)`` of its panel in the summary figure after the paper's four (None: none).
    ``claims``: its claims (:class:`PeakClaim`, :class:`TrendClaim`). ``chance``: the headline's value with no
    alignment (an SRCC of 0, a two-way choice's 0.5; None: none declared), the one place pages and figures read it
    from; ``below_chance``: what a page says where every checkpoint's interval lies below it ("": that it does)."""

    column: str
    what: str
    measures: tuple[tuple[str, str | None, str | None], ...]
    function: str = "summary_columns"
    baselines: tuple[str, ...] = ()
    required: bool = False
    panel: tuple[str, str] | None = None
    claims: tuple = ()
    chance: float | None = None
    below_chance: str = ""


@dataclass(frozen=True)
class Step:
    """One pipeline step. ``notebook_dir`` None = :data:`NOTEBOOK_DIR`; ``module`` names the step's
    computation (``clipalign_utils.steps.<name>.analysis``); ``title`` is for listings.

    Its own parameters: ``parameters`` (name → default; the type of the default is the parameter's type),
    ``presets`` (preset name → the values that differ there), ``choices`` (name → the allowed values) and
    ``check`` (called with the resolved parameters; raises ParameterError naming the parameter) and
    ``check_run`` (called before any folder is made with each run the step will measure, its
    ``checkpoints.Run``, the values the step gets there and the steps the command runs: for a parameter
    that names something in the run).
    ``dataset_options``: those of its parameters that say which part of its dataset it reads (a split, a
    protocol); with the dataset's root they describe that one dataset, so a re-run given another dataset
    does not carry them from the run's record (``record.for_step``). ``embedded_only``: those of its
    parameters that only its embedded set reads (a page on a real dataset does not list them as if they
    applied). ``summary``: what it adds to the synthesis (:class:`Summary`), None for none. ``optional``: the step runs
    only when ``--only`` names it (``clipalign run`` leaves it out; a run is complete without it); on a folder
    of runs its page runs once, over every run, and no synthesis follows."""

    name: str
    notebook: str
    tables: tuple[Table, ...] = ()
    depends: tuple[str, ...] = ()
    synthesis: bool = False
    module: str | None = None
    title: str = ""
    notebook_dir: Path | None = field(default=None, compare=False)
    parameters: Mapping[str, Any] = field(default_factory=dict, compare=False)
    presets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict, compare=False)
    choices: Mapping[str, Collection] = field(default_factory=dict, compare=False)
    check: Callable[[dict], None] | None = field(default=None, compare=False)
    check_run: Callable[[Any, Mapping, Collection[str]], None] | None = field(default=None, compare=False)
    dataset_options: tuple[str, ...] = field(default=(), compare=False)
    embedded_only: tuple[str, ...] = field(default=(), compare=False)
    summary: Summary | None = None
    optional: bool = False

    @property
    def source(self) -> Path:
        """The notebook's jupytext source."""
        return Path(self.notebook_dir or NOTEBOOK_DIR) / f"{self.notebook}.py"

    def summary_function(self) -> Callable:
        """The step's summary function (imports its module)."""
        return getattr(importlib.import_module(self.module), self.summary.function)


@dataclass(frozen=True)
class Page:
    """A notebook page of the book that is not a step of a run: a comparison over several runs (a sweep,
    an experiment's chapter), a trajectory from elsewhere. ``description``: what produces it.
    ``placeholder``: ``"module:function"`` returning the Markdown page a build shows when its folder holds
    no executed copy (None: the page is left out then); called with the folder the page goes in, where it
    may save the figures it shows (None: text only)."""

    notebook: str
    description: str
    notebook_dir: Path | None = field(default=None, compare=False)
    placeholder: str | None = None

    @property
    def source(self) -> Path:
        return Path(self.notebook_dir or NOTEBOOK_DIR) / f"{self.notebook}.py"

    def placeholder_text(self, folder: Path | None = None) -> str:
        module, _, function = self.placeholder.partition(":")
        return getattr(importlib.import_module(module), function)(folder)


_REGISTRY: dict[str, Step] = {}
_PAGES: dict[str, Page] = {}
# The sweep's comparison page (registered by clipalign_utils/steps/sweep): the orchestration names it.
SWEEP_PAGE = "06_sweep"
_discovery = {"state": "pending", "checked": -1}  # pending → running → done; the VERSION last checked
VERSION = [0]  # bumped by every (un)registration: config's presets are rebuilt when it changes


def discover() -> None:
    """Import every step package under ``clipalign_utils/steps`` once (their ``__init__`` modules register
    them). The steps' dependencies are checked at the first lookup after (a package imported directly is
    still registering while discovery runs)."""
    if _discovery["state"] != "pending":
        return
    _discovery["state"] = "running"
    from . import steps as package

    for found in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if found.ispkg:
            importlib.import_module(f"{package.__name__}.{found.name}")
    _discovery["state"] = "done"


def _check_depends(step: Step) -> None:
    unknown = [d for d in step.depends if d not in _REGISTRY]
    if unknown:
        raise ParameterError(f"step {step.name!r} depends on unregistered step{'' if len(unknown) == 1 else 's'} "
                             f"{', '.join(unknown)}")  # (not prose.plural: the registry imports only errors)


def _registry() -> dict[str, Step]:
    discover()
    if _discovery["checked"] != VERSION[0]:
        for step in _REGISTRY.values():
            _check_depends(step)
        _discovery["checked"] = VERSION[0]
    return _REGISTRY


def register(step: Step, replace: bool = False) -> Step:
    """Add ``step``. A step's ``depends`` must be registered (checked once discovery is over), its table
    names and parameter names must be new, and there is one synthesis. Returns ``step``."""
    discover()
    if step.name in _REGISTRY and not replace:
        raise ParameterError(f"step {step.name!r} is registered already")
    if _discovery["state"] == "done":
        _check_depends(step)
    others = [s for s in _REGISTRY.values() if s.name != step.name]
    if step.synthesis and any(s.synthesis for s in others):
        raise ParameterError(f"step {step.name!r}: there is a synthesis step already")
    taken = {t.name: s.name for s in others for t in s.tables}
    clash = [t.name for t in step.tables if t.name in taken]
    if clash:
        which = f"table {clash[0]} belongs" if len(clash) == 1 else f"tables {', '.join(clash)} belong"
        raise ParameterError(f"step {step.name!r}: {which} to another step")
    declared = {name: s.name for s in others for name in s.parameters}
    clash = [name for name in step.parameters if name in declared]
    if clash:
        which = f"parameter {clash[0]} is" if len(clash) == 1 else f"parameters {', '.join(clash)} are"
        raise ParameterError(f"step {step.name!r}: {which} declared by another step")
    _REGISTRY[step.name] = step
    VERSION[0] += 1
    return step


def register_page(page: Page) -> Page:
    """Add a comparison page (a book page that is not a step of a run)."""
    _PAGES[page.notebook] = page
    return page


def unregister(name: str) -> None:
    """Remove a step (tests that register one at run time)."""
    dependants = [s.name for s in _REGISTRY.values() if name in s.depends]
    if dependants:
        raise ParameterError(f"step {name!r} is needed by {', '.join(dependants)}")
    _REGISTRY.pop(name, None)
    VERSION[0] += 1


def steps() -> list[Step]:
    """Every step in execution order: its notebook's chapter order (the names sort by chapter number), the
    synthesis last."""
    ordered = sorted(_registry().values(), key=lambda s: s.notebook)
    return [s for s in ordered if not s.synthesis] + [s for s in ordered if s.synthesis]


def names() -> list[str]:
    return [s.name for s in steps()]


def get(name: str) -> Step:
    """The step called ``name`` (ParameterError naming the steps otherwise)."""
    if name not in _registry():
        raise ParameterError(f"unknown step {name!r}; steps: {', '.join(names())}")
    return _REGISTRY[name]


def synthesis() -> Step:
    found = [s for s in _registry().values() if s.synthesis]
    if not found:
        raise ParameterError("no synthesis step is registered")
    return found[0]


def per_run_steps() -> list[Step]:
    """The steps each run executes itself (everything but the synthesis and the optional steps), in order."""
    return [s for s in steps() if not s.synthesis and not s.optional]


def analysis_steps() -> list[Step]:
    """The per-run steps that write metric tables (what the synthesis reads)."""
    return [s for s in per_run_steps() if s.tables]


def analyses_and_synthesis() -> list[str]:
    """The step names that measure a run already trained and synthesise it (what ``--only`` names for a run
    trained elsewhere, and all a streamed run may run)."""
    return [s.name for s in analysis_steps()] + [synthesis().name]


def tables() -> dict[str, Table]:
    """Every registered table by name."""
    return {t.name: t for s in steps() for t in s.tables}


def table(name: str) -> Table:
    found = tables()
    if name not in found:
        raise ParameterError(f"unknown table {name!r}; tables: {', '.join(found)}")
    return found[name]


def step_of_table(name: str) -> Step:
    """The step that writes the table ``name``."""
    for s in steps():
        if any(t.name == name for t in s.tables):
            return s
    raise ParameterError(f"no registered step writes the table {name!r}")


def notebook_pages() -> list[str]:
    """Every notebook page of the book, steps and comparisons, in page order (their names sort by
    chapter number)."""
    return sorted({s.notebook for s in steps()} | set(pages()))


def notebook_source(notebook: str) -> Path:
    """The jupytext source of a step's or a page's notebook."""
    for s in [*steps(), *pages().values()]:
        if s.notebook == notebook:
            return s.source
    return NOTEBOOK_DIR / f"{notebook}.py"


def pages() -> Mapping[str, Page]:
    """The comparison pages by notebook name (read-only)."""
    discover()
    return MappingProxyType(_PAGES)


class StepNotebooks(Mapping):
    """A live read-only view {step name: notebook name} of the steps ``clipalign run`` executes (the
    optional ones left out), in execution order (``pipeline.STEPS``)."""

    def __getitem__(self, name: str) -> str:
        if name not in _registry() or _REGISTRY[name].optional:
            raise KeyError(name)
        return _REGISTRY[name].notebook

    def __iter__(self) -> Iterator[str]:
        return iter(s.name for s in steps() if not s.optional)

    def __len__(self) -> int:
        return sum(not s.optional for s in _registry().values())

    def __repr__(self) -> str:
        return f"StepNotebooks({dict(self)!r})"


# --- What the synthesis reads: the steps' summaries, in step order. ---

def summaries(required: bool | None = None) -> list[tuple[Step, Summary]]:
    """(step, its summary) for every step with one, in execution order; ``required`` True/False: only the
    steps a synthesis needs / only those that join when present."""
    return [(s, s.summary) for s in per_run_steps()
            if s.summary is not None and (required is None or s.summary.required == required)]


def summary_of(column: str) -> Summary | None:
    """The summary whose headline is ``column`` (None: no step's)."""
    return next((summary for _, summary in summaries() if summary.column == column), None)


def claims() -> list[tuple[Step, PeakClaim | TrendClaim]]:
    """(step, claim) for every claim of every summary, in step order."""
    return [(step, claim) for step, summary in summaries() for claim in summary.claims]


def peak_claims() -> list[tuple[Step, PeakClaim]]:
    return [(step, claim) for step, claim in claims() if isinstance(claim, PeakClaim)]


def trend_claims() -> list[tuple[Step, TrendClaim]]:
    return [(step, claim) for step, claim in claims() if isinstance(claim, TrendClaim)]


def trend_table(step: Step) -> str:
    """The table in which ``step`` writes its trend claims' paired tests (``metrics.trend``): one row per
    claim's column (``measure``)."""
    return f"{step.name}_trend"


def seed_measures() -> dict[str, tuple[str | None, str | None]]:
    """Every per-checkpoint measure the synthesis averages over seeds, {column: (lo, hi)}: the required
    steps' measures, then each paired early-peak test (``<prefix>_early_drop``), then the optional steps'."""
    measures = {column: (lo, hi) for _, summary in summaries(required=True) for column, lo, hi in summary.measures}
    for _, claim in peak_claims():
        drop = f"{claim.prefix}_early_drop"
        measures[drop] = (f"{drop}_lo", f"{drop}_hi")
    measures.update({column: (lo, hi) for _, summary in summaries(required=False)
                     for column, lo, hi in summary.measures})
    return measures
