"""Notebook sources: each step's jupytext source declares a `parameters` cell, and the committed
.ipynb twin (what Colab opens) has the same cells."""
from __future__ import annotations

import jupytext
import pytest

from clipalign_utils import registry
from clipalign_utils.config import PRESETS
from clipalign_utils.pipeline import NOTEBOOK_DIR

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
def test_parameters_are_shared_names(name):
    import papermill

    declared = papermill.inspect_notebook(str(NOTEBOOK_DIR / f"{name}.ipynb"))
    assert {"run_dir", "preset"} <= set(declared)
    # Every other parameter is a preset key, so `-p name=value` means the same in every notebook.
    assert set(declared) - {"run_dir", "preset", "run_dirs", "auto_train"} <= set(PRESETS["default"])
