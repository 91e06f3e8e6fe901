"""Pages 6 and 9 recorded in the repository (book/recorded/<page>/): what a record copies, the note above
a recorded page, and the shipped pages re-executed on their recorded tables."""
from __future__ import annotations

import json
import os
import shutil

import pytest

from clipalign_utils.errors import ParameterError
from clipalign_utils.orchestration import recorded
from clipalign_utils.registry import REPO_ROOT

from helpers import notebook_outputs


def _run(path, tables=("iqa", "iqa_pairs", "noise")):
    (path / "metrics").mkdir(parents=True)
    for table in tables:
        (path / "metrics" / f"{table}.csv").write_text("checkpoint,value\nepoch_1,0.5\n")
    (path / "record.json").write_text('{"steps": {}}')
    (path / "train_params.json").write_text('{"seed": 0}')
    for part in ("checkpoints", "cache", "notebooks", "figures"):
        (path / part).mkdir()
        (path / part / "x.bin").write_bytes(b"\0")


def test_copy_tables_keeps_records_and_summary_tables_and_follows_a_linked_run(tmp_path):
    source = tmp_path / "sweep"
    source.mkdir()
    (source / "sweep.json").write_text('{"runs": []}')
    _run(tmp_path / "elsewhere" / "tiny-seed0")
    os.symlink(tmp_path / "elsewhere" / "tiny-seed0", source / "base")  # the full preset links its base run
    _run(source / "texture_correlation-0.5")
    (source / "book" / "metrics").mkdir(parents=True)  # the staged book: never a run
    (source / "book" / "metrics" / "iqa.csv").write_text("x\n")
    copied = recorded.copy_tables(source, tmp_path / "copy")
    files = sorted(str(p.relative_to(tmp_path / "copy")) for p in (tmp_path / "copy").rglob("*") if p.is_file())
    assert files == ["base/metrics/iqa.csv", "base/metrics/noise.csv", "base/record.json", "base/train_params.json",
                     "sweep.json",
                     "texture_correlation-0.5/metrics/iqa.csv", "texture_correlation-0.5/metrics/noise.csv",
                     "texture_correlation-0.5/record.json", "texture_correlation-0.5/train_params.json"]
    assert copied == len(files)
    assert not (tmp_path / "copy" / "base").is_symlink()


def test_record_page_refuses_a_folder_of_another_kind_and_writes_nothing(tmp_path):
    _run(tmp_path / "run")
    root = tmp_path / "recorded"
    with pytest.raises(ParameterError, match=r"is not a sweep folder \(no sweep.json\)"):
        recorded.record_page("06_sweep", tmp_path / "run", ["clipalign sweep …"], "abc1234", root=root)
    with pytest.raises(ParameterError, match="the recorded pages are 06_sweep, 09_quality_experiment"):
        recorded.record_page("05_tradeoff_synthesis", tmp_path / "run", ["x"], "abc1234", root=root)
    assert not root.exists() or not list(root.iterdir())
    assert recorded.main(["06_sweep", str(tmp_path / "run"), "--command", "x", "--commit", "abc"]) == 2


def test_the_note_above_a_recorded_page_says_where_it_came_from(tmp_path):
    page = tmp_path / "06_sweep"
    page.mkdir()
    notebook = {"cells": [{"cell_type": "markdown", "metadata": {}, "source": "# 6. What drives the trade-off?"},
                          {"cell_type": "code", "metadata": {}, "source": "1", "outputs": []}],
                "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (page / "06_sweep.ipynb").write_text(json.dumps(notebook))
    assert recorded.recorded_notebook("06_sweep", tmp_path) is None  # no recorded.json: not a record
    (page / "recorded.json").write_text(json.dumps({
        "page": "06_sweep", "commit": "abc1234", "date": "2026-12-04", "machine": "2 CPU cores",
        "commands": ["clipalign sweep --preset full --one-at-a-time --out runs/drivers -p epochs=5,12"],
        "left_out": "epochs=24 (the longest run)"}))
    shown = recorded.page_with_provenance("06_sweep", tmp_path)
    assert [c["cell_type"] for c in shown["cells"]] == ["markdown", "markdown", "code"]
    note = shown["cells"][1]["source"]
    assert "This build ran no sweep" in note and "commit `abc1234` on 2026-12-04 on 2 CPU cores" in note
    assert "```bash\nclipalign sweep --preset full --one-at-a-time --out runs/drivers -p epochs=5,12\n```" in note
    assert "Left out: epochs=24 (the longest run)" in note
    assert "clipalign run --preset full" in note
    assert "the same seed measured by this build's code can differ in its numbers" in note
    assert "executed on them at commit" not in note  # a record that does not say which commit executed it
    index = json.loads((page / "recorded.json").read_text())
    (page / "recorded.json").write_text(json.dumps({**index, "executed": {"commit": "def5678", "date": "2026-12-06"}}))
    note = recorded.page_with_provenance("06_sweep", tmp_path)["cells"][1]["source"]
    assert "The page was executed on them at commit `def5678` (2026-12-06), whose rules its verdicts follow." in note


@pytest.mark.slow
@pytest.mark.parametrize("page", list(recorded.PAGES))
def test_the_shipped_page_is_what_its_recorded_tables_give(page, tmp_path):
    """The page the book shows is the page executed on the tables shipped beside it: executing it again on a
    copy of them gives the same tables, figures and sentences."""
    shipped = recorded.recorded_notebook(page)
    assert shipped is not None, f"book/recorded/{page} records no page"
    entry = recorded.index(page)
    assert entry["commit"] and entry["commands"] and entry["page"] == page
    folder = tmp_path / "folder"
    shutil.copytree(recorded.recorded_dir(page) / recorded.FOLDER, folder)
    assert not list(folder.rglob("*.pt")) and not list(folder.rglob("cache"))
    executed = recorded.execute_page(page, folder)
    fresh = recorded.publishable(executed, folder, os.path.relpath(recorded.recorded_dir(page) / recorded.FOLDER,
                                                                   REPO_ROOT))
    assert notebook_outputs(fresh) == notebook_outputs(json.loads(shipped.read_text()))
    for table in (recorded.recorded_dir(page) / recorded.FOLDER / "metrics").glob("*.csv"):
        assert (folder / "metrics" / table.name).read_bytes() == table.read_bytes(), table.name


def test_a_linked_run_keeps_its_name_in_the_folder(tmp_path):
    """Run labels are relative to the folder the runs share, links not followed, so a sweep whose base run
    is a link (the full preset's drivers) labels its tables as its recorded copy does."""
    from clipalign_utils.results import run_labels

    (tmp_path / "elsewhere" / "tiny-seed0").mkdir(parents=True)
    (tmp_path / "sweep" / "texture_correlation-0.5").mkdir(parents=True)
    os.symlink(tmp_path / "elsewhere" / "tiny-seed0", tmp_path / "sweep" / "base")
    runs = [tmp_path / "sweep" / "base", tmp_path / "sweep" / "texture_correlation-0.5"]
    assert run_labels(runs) == ["base", "texture_correlation-0.5"]
