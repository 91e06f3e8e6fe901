"""Notebook sources: each step's jupytext source declares a `parameters` cell, and the committed
.ipynb twin (what Colab opens) has the same cells."""
from __future__ import annotations

import jupytext
import pytest

from clipalign_utils.config import PRESETS
from clipalign_utils.pipeline import NOTEBOOK_DIR, STEPS, notebook_parameters


@pytest.mark.parametrize("step", list(STEPS))
def test_ipynb_twin_matches_source(step):
    source = jupytext.read(NOTEBOOK_DIR / f"{STEPS[step]}.py")
    twin = jupytext.read(NOTEBOOK_DIR / f"{STEPS[step]}.ipynb")
    assert [(c.cell_type, c.source) for c in source.cells] == [(c.cell_type, c.source) for c in twin.cells], (
        f"notebooks/{STEPS[step]}.ipynb is stale: run `jupytext --to ipynb notebooks/{STEPS[step]}.py`")
    assert all(not c.get("outputs") for c in twin.cells if c.cell_type == "code")


@pytest.mark.parametrize("step", list(STEPS))
def test_parameters_are_shared_names(step):
    declared = notebook_parameters(step)
    assert {"run_dir", "preset"} <= set(declared)
    # Every other parameter is a preset key, so `-p name=value` means the same in every notebook.
    assert set(declared) - {"run_dir", "preset", "run_dirs"} <= set(PRESETS["default"])
