"""Notebook sources: each step's jupytext source declares a `parameters` cell, and the committed
.ipynb twin (what Colab opens) has the same cells."""
from __future__ import annotations

import jupytext
import pytest

from clipalign_utils import registry
from clipalign_utils.config import PRESETS
from clipalign_utils.registry import NOTEBOOK_DIR

# Every notebook is a step's or a page's of the registry.
NOTEBOOKS = registry.notebook_pages()


def test_every_notebook_is_known():
    assert sorted(p.stem for p in NOTEBOOK_DIR.glob("*.py")) == sorted(NOTEBOOKS)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_ipynb_twin_matches_source(name):
    source = jupytext.read(NOTEBOOK_DIR / f"{name}.py")
    twin = jupytext.read(NOTEBOOK_DIR / f"{name}.ipynb")
    assert [(c.cell_type, c.source) for c in source.cells] == [(c.cell_type, c.source) for c in twin.cells], (
        f"notebooks/{name}.ipynb is stale: run `jupytext --to ipynb notebooks/{name}.py`")
    assert all(not c.get("outputs") for c in twin.cells if c.cell_type == "code")


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_a_page_opens_with_its_title(name):
    """The first cell is the page's title (a recorded page's note goes in after it; an empty first code cell, from a
    blank line too many after the jupytext header, put page 9's note above its title)."""
    first = jupytext.read(NOTEBOOK_DIR / f"{name}.py").cells[0]
    assert first.cell_type == "markdown" and first.source.startswith(f"# {int(name[:2])}. "), first


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_parameters_are_shared_names(name):
    import papermill

    declared = papermill.inspect_notebook(str(NOTEBOOK_DIR / f"{name}.ipynb"))
    assert {"run_dir", "preset"} <= set(declared)
    # Every other parameter is a preset key, so `-p name=value` means the same in every notebook; page 10 also
    # takes a streamed run's options (clipalign run --checkpoints, --at-epochs, --keep-weights, --only).
    from clipalign_utils.orchestration.stream import NOTEBOOK_OPTIONS

    own = NOTEBOOK_OPTIONS if name == "10_real_clip" else ()
    assert set(declared) - {"run_dir", "preset", "run_dirs", "auto_train", *own} <= set(PRESETS["default"])


def code_lines(cell_source: str) -> list[str]:
    """The lines of a code cell that are code: not blank, not a comment (jupytext's commented magics too)."""
    return [line for line in cell_source.splitlines() if line.strip() and not line.strip().startswith("#")]


def test_code_lines_count_code_only():
    assert code_lines("import x  # why\n\n# a comment\n    # %pip install y\nif x:\n    y()\n") == [
        "import x  # why", "if x:", "    y()"]


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_is_narrative_plus_calls(name):
    """Logic lives in the package: a page holds at most 60 lines of code (its parameters cell included)
    and defines nothing."""
    cells = [c.source for c in jupytext.read(NOTEBOOK_DIR / f"{name}.py").cells if c.cell_type == "code"]
    lines = [line for source in cells for line in code_lines(source)]
    assert len(lines) <= 60, f"notebooks/{name}.py has {len(lines)} code lines: move logic into its step module"
    defined = [line for line in lines if line.lstrip().startswith(("def ", "class ", "async def "))]
    assert not defined, f"notebooks/{name}.py defines {defined}: define it in the package"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_no_cell_ends_by_showing_the_tables_paths(name):
    """A cell's last expression is shown on the page: page 9 ended with ``write_tables(...)`` and printed the list of
    PosixPath it returns (a reader)."""
    import ast

    for cell in jupytext.read(NOTEBOOK_DIR / f"{name}.py").cells:
        if cell.cell_type != "code" or not cell.source.strip():
            continue
        python = [line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!"))]  # no magics
        body = ast.parse("\n".join(python)).body
        last = body[-1] if body else None
        shown = isinstance(last, ast.Expr) and isinstance(last.value, ast.Call) and getattr(last.value.func, "id", "")
        assert shown != "write_tables", f"notebooks/{name}.py: a cell ends with write_tables(...), shown on the page"


ENSEMBLE_CLAIM = r"CLIP's (\d+ )?ImageNet (prompt )?templates|template ensemble|prompt ensemble"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_no_page_asserts_the_template_ensemble_whatever_the_run_used(name):
    """A review read page 3's "(with CLIP's 80 ImageNet prompt templates)" on a `prompt_templates=single` run (its
    data line said 1): prose naming the ensemble says that `prompt_templates` picks it (by default)."""
    import re

    for cell in jupytext.read(NOTEBOOK_DIR / f"{name}.py").cells:
        if cell.cell_type == "markdown" and re.search(ENSEMBLE_CLAIM, cell.source):
            assert "`prompt_templates`" in cell.source and "by default" in cell.source, cell.source


def test_the_metrics_reference_says_the_ensemble_is_the_default():
    import re

    for paragraph in (NOTEBOOK_DIR.parent / "book" / "metrics.md").read_text().split("\n\n"):
        if re.search(ENSEMBLE_CLAIM, paragraph.replace("\n", " ")):
            assert "prompt_templates" in paragraph and "by default" in paragraph, paragraph
