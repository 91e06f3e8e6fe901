"""The step registry: the one list of the pipeline's steps, their notebooks and the tables they write.

Each analysis step is one registry entry (:class:`Step`): its name (what ``clipalign run --only`` takes),
its notebook (a jupytext py:percent source, ``notebooks/<notebook>.py`` unless the entry names another
folder), the metric tables it writes with their contract columns (:class:`Table`, the schema every
reader and test uses), the steps it needs first, and whether it is the synthesis (run last, over one run
or several). The runner, the multi-run and sweep loops, ``results``, the book and the CLI read this
module; nothing else lists steps, notebooks or pages. Where a run keeps what a step writes, and whether
a step is done there, is the run directory's business (``layout.RunDir``).

This module imports nothing of the package but ``errors``, so any layer may read it.

Adding a step: write its module (``clipalign_utils/steps/<name>.py``), its notebook and tests, then add
one :func:`register` call below (or call it at run time: a test registers a toy step that way).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Mapping

from .errors import ParameterError

REPO_ROOT = Path(__file__).resolve().parent.parent


def _installed_notebooks() -> Path:
    """The notebook sources installed with the package (``pip install`` from git, as in Colab):
    pyproject's data-files put them in ``<prefix>/share/clipalign/notebooks``."""
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        dist = distribution("clipalign")
        for file in dist.files or ():
            if file.name == "01_train.py" and file.parent.name == "notebooks":
                return Path(dist.locate_file(file)).resolve().parent
    except PackageNotFoundError:
        pass
    return REPO_ROOT / "notebooks"


# The checkout's notebooks/ (an editable install, the CLI), else the installed copies.
NOTEBOOK_DIR = REPO_ROOT / "notebooks" if (REPO_ROOT / "notebooks").is_dir() else _installed_notebooks()


@dataclass(frozen=True)
class Table:
    """A metric table ``RUN_DIR/metrics/<name>.csv``.

    ``columns``: its contract columns in order (DESIGN.md; more columns are welcome).
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
class Step:
    """One pipeline step. ``notebook_dir`` None = :data:`NOTEBOOK_DIR`; ``module`` names the step's
    computation (``clipalign_utils.steps.<name>``) for readers; ``title`` is for listings."""

    name: str
    notebook: str
    tables: tuple[Table, ...] = ()
    depends: tuple[str, ...] = ()
    synthesis: bool = False
    module: str | None = None
    title: str = ""
    notebook_dir: Path | None = field(default=None, compare=False)

    @property
    def source(self) -> Path:
        """The notebook's jupytext source."""
        return Path(self.notebook_dir or NOTEBOOK_DIR) / f"{self.notebook}.py"


_REGISTRY: dict[str, Step] = {}
# Notebooks that are book pages but not steps of a run: comparisons over several runs.
# name -> a line on what produces them.
PAGES: dict[str, str] = {}


def register(step: Step, replace: bool = False) -> Step:
    """Add ``step``. Steps run in registration order, the synthesis always last; a step's ``depends`` must
    be registered already. Its table names must be new. Returns ``step``."""
    if step.name in _REGISTRY and not replace:
        raise ParameterError(f"step {step.name!r} is registered already")
    unknown = [d for d in step.depends if d not in _REGISTRY]
    if unknown:
        raise ParameterError(f"step {step.name!r} depends on unregistered step(s) {', '.join(unknown)}")
    if step.synthesis and any(s.synthesis for s in _REGISTRY.values() if s.name != step.name):
        raise ParameterError(f"step {step.name!r}: there is a synthesis step already ({synthesis().name})")
    taken = {t.name: s.name for s in _REGISTRY.values() if s.name != step.name for t in s.tables}
    clash = [t.name for t in step.tables if t.name in taken]
    if clash:
        raise ParameterError(f"step {step.name!r}: table(s) {', '.join(clash)} belong to another step")
    _REGISTRY[step.name] = step
    return step


def unregister(name: str) -> None:
    """Remove a step (tests that register one at run time)."""
    dependants = [s.name for s in _REGISTRY.values() if name in s.depends]
    if dependants:
        raise ParameterError(f"step {name!r} is needed by {', '.join(dependants)}")
    _REGISTRY.pop(name, None)


def steps() -> list[Step]:
    """Every step in execution order: registration order, the synthesis last."""
    ordered = list(_REGISTRY.values())
    return [s for s in ordered if not s.synthesis] + [s for s in ordered if s.synthesis]


def names() -> list[str]:
    return [s.name for s in steps()]


def get(name: str) -> Step:
    """The step called ``name`` (ParameterError naming the steps otherwise)."""
    if name not in _REGISTRY:
        raise ParameterError(f"unknown step {name!r}; steps: {', '.join(names())}")
    return _REGISTRY[name]


def synthesis() -> Step:
    found = [s for s in _REGISTRY.values() if s.synthesis]
    if not found:
        raise ParameterError("no synthesis step is registered")
    return found[0]


def per_run_steps() -> list[Step]:
    """The steps each run executes itself (everything but the synthesis), in order."""
    return [s for s in steps() if not s.synthesis]


def analysis_steps() -> list[Step]:
    """The per-run steps that write metric tables (what the synthesis reads)."""
    return [s for s in per_run_steps() if s.tables]


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
    return sorted({s.notebook for s in steps()} | set(PAGES))


def notebook_source(notebook: str) -> Path:
    """The jupytext source of a step's or a page's notebook."""
    for s in steps():
        if s.notebook == notebook:
            return s.source
    return NOTEBOOK_DIR / f"{notebook}.py"


class StepNotebooks(Mapping):
    """A live read-only view {step name: notebook name}, in execution order (``pipeline.STEPS``)."""

    def __getitem__(self, name: str) -> str:
        if name not in _REGISTRY:
            raise KeyError(name)
        return _REGISTRY[name].notebook

    def __iter__(self) -> Iterator[str]:
        return iter(names())

    def __len__(self) -> int:
        return len(_REGISTRY)

    def __repr__(self) -> str:
        return f"StepNotebooks({dict(self)!r})"


# ------------------------------------------------------------------------------------------------
# The study's steps and tables (DESIGN.md "Pipeline steps" and "Metric tables").

IQA = Table("iqa", ("checkpoint", "epoch", "dataset", "distance", "distortion", "srcc", "srcc_lo", "srcc_hi",
                    "krcc", "plcc", "n_pairs"),
            required=("checkpoint", "epoch", "dataset", "distance", "distortion", "srcc", "srcc_lo", "srcc_hi"))
SHAPE_BIAS = Table("shape_bias", ("checkpoint", "epoch", "dataset", "shape_bias", "lo", "hi", "shape_fraction",
                                  "texture_fraction", "neither_fraction", "n_images"),
                   required=("checkpoint", "epoch", "dataset", "shape_bias", "lo", "hi"))
NOISE = Table("noise", ("checkpoint", "epoch", "dataset", "sigma", "accuracy", "lo", "hi", "normalized_drop",
                        "chance_corrected_drop", "n_images"),
              required=("checkpoint", "epoch", "dataset", "sigma", "accuracy", "lo", "hi", "normalized_drop"))
TWO_AFC = Table("two_afc", ("checkpoint", "epoch", "dataset", "subset", "distance", "score", "score_lo", "score_hi",
                            "n_triplets"))
SALIENCY = Table("saliency", ("checkpoint", "epoch", "dataset", "method", "metric", "value", "value_lo", "value_hi",
                              "n_images"))
# saliency.csv's baseline rows have this in their checkpoint column (epoch nan).
SALIENCY_BASELINE = "centre_bias"
TRADEOFF = Table("tradeoff", ("checkpoint", "epoch"))

register(Step("train", "01_train", title="train the model, keep checkpoints",
              module="clipalign_utils.train"))
register(Step("iqa", "02_iqa_alignment", (IQA,), depends=("train",), module="clipalign_utils.steps.iqa",
              title="alignment with image-quality judgments"))
register(Step("shape", "03_shape_texture_bias", (SHAPE_BIAS,), depends=("train",), module="clipalign_utils.steps.shape",
              title="shape vs texture bias on cue-conflict images"))
register(Step("noise", "04_noise_robustness", (NOISE,), depends=("train",), module="clipalign_utils.steps.noise",
              title="zero-shot accuracy under Gaussian noise"))
register(Step("similarity", "07_similarity", (TWO_AFC,), depends=("train",),
              module="clipalign_utils.steps.similarity", title="2AFC perceptual similarity"))
register(Step("saliency", "08_saliency", (SALIENCY,), depends=("train",),
              module="clipalign_utils.steps.saliency", title="saliency correspondence"))
register(Step("tradeoff", "05_tradeoff_synthesis", (TRADEOFF,), depends=("iqa", "shape", "noise"),
              synthesis=True, module="clipalign_utils.steps.tradeoff",
              title="the synthesis: verdicts on the paper's claims"))

PAGES["06_sweep"] = "the comparison of a sweep's runs (clipalign sweep; the full preset's drivers)"
PAGES["09_quality_experiment"] = "the quality-variation experiment: its sweeps compared (a page when the run holds it)"
SWEEP_PAGE = "06_sweep"
