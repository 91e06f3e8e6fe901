"""How a recorded page (book/recorded/<page>/) is written and executed again, on hand-made folders with the
page's execution faked: what ``record_page`` and ``execute_again`` leave where, what recorded.json says, the
command line. No papermill, no git."""
from __future__ import annotations

import json
import os

import pytest

from clipalign_utils.errors import ParameterError
from clipalign_utils.orchestration import recorded
from clipalign_utils.registry import REPO_ROOT

EXECUTED = {"commit": "fedcba9", "date": "2026-12-07"}


def _sweep(path):
    (path / "run-a" / "metrics").mkdir(parents=True)
    (path / "run-a" / "metrics" / "iqa.csv").write_text("checkpoint,srocc\nepoch_1,0.5\n")
    (path / "run-a" / "train_params.json").write_text('{"seed": 0}')
    (path / "sweep.json").write_text('{"runs": [{"name": "run-a"}]}')
    (path / "record.json").write_text(json.dumps({"steps": {"06_sweep": {"preset": "default", "values": {}}}}))
    return path


def _fake_execution(monkeypatch, fail=False):
    """execute_page as the page would: its notebook (naming the folder it ran in), a figure and a table of its
    own written into the folder; the folders it ran in, listed."""
    ran = []

    def execute_page(page, folder, progress=False):
        ran.append(folder)
        if fail:
            raise KeyboardInterrupt
        (folder / "notebooks").mkdir()
        (folder / "figures").mkdir()
        (folder / "figures" / "sweep.png").write_bytes(b"png")
        (folder / "metrics" / "sweep_verdicts.csv").parent.mkdir(exist_ok=True)
        (folder / "metrics" / "sweep_verdicts.csv").write_text("verdict\nnew\n")
        notebook = folder / "notebooks" / f"{page}.ipynb"
        notebook.write_text(json.dumps({"cells": [{"cell_type": "code", "metadata": {}, "source": "", "outputs": [
            {"output_type": "stream", "name": "stdout", "text": f"read {folder}/run-a/metrics/iqa.csv\n"}]}],
            "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
        return notebook

    monkeypatch.setattr(recorded, "execute_page", execute_page)
    monkeypatch.setattr(recorded, "_executed_here", lambda: dict(EXECUTED))
    return ran


def test_record_page_writes_the_tables_the_page_and_its_index_and_no_notebook_or_figure(tmp_path, monkeypatch):
    ran = _fake_execution(monkeypatch)
    root = tmp_path / "recorded"
    target = recorded.record_page("06_sweep", _sweep(tmp_path / "sweep"), ["clipalign sweep …"], "abc1234",
                                  left_out="epochs=24", machine="2 CPU cores", date="2026-12-04", root=root)
    assert target == root / "06_sweep" and ran[0].name == "folder" and ran[0].parent.parent == root
    files = sorted(str(p.relative_to(target)) for p in target.rglob("*") if p.is_file())
    assert files == ["06_sweep.ipynb", "folder/metrics/sweep_verdicts.csv", "folder/record.json",
                     "folder/run-a/metrics/iqa.csv", "folder/run-a/train_params.json", "folder/sweep.json",
                     "recorded.json"]
    assert json.loads((target / "recorded.json").read_text()) == {
        "page": "06_sweep", "commit": "abc1234", "date": "2026-12-04", "machine": "2 CPU cores",
        "commands": ["clipalign sweep …"], "left_out": "epochs=24", "executed": EXECUTED}
    # the page names the folder as it will be in the repository, not the staging folder it ran in
    shown = os.path.relpath(target / "folder", REPO_ROOT)
    page = json.loads((target / "06_sweep.ipynb").read_text())
    assert page["cells"][0]["outputs"][0]["text"] == f"read {shown}/run-a/metrics/iqa.csv\n"
    assert sorted(p.name for p in root.iterdir()) == ["06_sweep"]  # no staging folder left
    assert recorded.recorded_notebook("06_sweep", root) == target / "06_sweep.ipynb"


def test_record_page_names_this_machine_when_not_told(tmp_path, monkeypatch):
    _fake_execution(monkeypatch)
    monkeypatch.setattr(recorded, "this_machine", lambda: "16 CPU cores (x86_64, Some CPU)")
    target = recorded.record_page("06_sweep", _sweep(tmp_path / "sweep"), ["c"], "abc", root=tmp_path / "r")
    assert json.loads((target / "recorded.json").read_text())["machine"] == "16 CPU cores (x86_64, Some CPU)"


def test_a_failed_execution_keeps_the_previous_record_and_leaves_no_staging(tmp_path, monkeypatch):
    root = tmp_path / "recorded"
    (root / "06_sweep").mkdir(parents=True)
    (root / "06_sweep" / "recorded.json").write_text("previous")
    ran = _fake_execution(monkeypatch, fail=True)
    with pytest.raises(KeyboardInterrupt):
        recorded.record_page("06_sweep", _sweep(tmp_path / "sweep"), ["c"], "abc", root=root)
    assert ran and not ran[0].parent.exists()
    assert sorted(p.name for p in root.iterdir()) == ["06_sweep"]
    assert (root / "06_sweep" / "recorded.json").read_text() == "previous"


def test_execute_again_runs_on_the_shipped_tables_and_records_the_commit_that_executed_it(tmp_path, monkeypatch):
    """The runs' tables and the index stay those recorded; the page, its own tables and ``executed`` are new."""
    _fake_execution(monkeypatch)
    root = tmp_path / "recorded"
    with pytest.raises(ParameterError, match=r"^book/recorded/06_sweep records no page to execute again$"):
        recorded.execute_again("06_sweep", root)
    target = recorded.record_page("06_sweep", _sweep(tmp_path / "sweep"), ["c"], "abc1234", machine="m",
                                  date="2026-12-04", root=root)
    index = json.loads((target / "recorded.json").read_text())
    (target / "folder" / "metrics" / "sweep_verdicts.csv").write_text("verdict\nold\n")
    (target / "folder" / "run-a" / "metrics" / "iqa.csv").write_text("as measured\n")
    os.symlink("run-a", target / "folder" / "base")  # the drivers sweep's linked base run, kept a link
    ran = _fake_execution(monkeypatch)
    monkeypatch.setattr(recorded, "_executed_here", lambda: {"commit": "0000001", "date": "2026-12-08"})
    assert recorded.execute_again("06_sweep", root) == target
    assert ran[0] != target / "folder"  # executed on a copy, beside
    assert json.loads((target / "recorded.json").read_text()) == {
        **index, "executed": {"commit": "0000001", "date": "2026-12-08"}}
    assert (target / "folder" / "run-a" / "metrics" / "iqa.csv").read_text() == "as measured\n"
    assert (target / "folder" / "metrics" / "sweep_verdicts.csv").read_text() == "verdict\nnew\n"
    assert (target / "folder" / "base").is_symlink()
    assert not (target / "folder" / "notebooks").exists() and not (target / "folder" / "figures").exists()


def test_execute_page_refuses_a_folder_without_the_pages_entry_and_runs_it_with_its_entry(tmp_path, monkeypatch):
    from clipalign_utils.orchestration import pipeline

    (tmp_path / "record.json").write_text('{"steps": {}}')
    with pytest.raises(ParameterError, match=rf"^{tmp_path / 'record.json'} has no entry for 06_sweep: finish the "
                                             r"sweep or experiment first"):
        recorded.execute_page("06_sweep", tmp_path)
    entry = {"preset": "default", "parameters": {"n_boot": 10}, "sources": {"n_boot": "given"}}
    (tmp_path / "record.json").write_text(json.dumps({"steps": {"06_sweep": entry}}))
    calls = []
    monkeypatch.setattr(pipeline, "run_page", lambda *args, **kwargs: calls.append((args, kwargs)) or "page")
    assert recorded.execute_page("06_sweep", tmp_path, progress=True) == "page"
    (page, folder, resolved), kwargs = calls[0]
    assert (page, folder, resolved.preset) == ("06_sweep", tmp_path, "default")
    assert resolved.values["n_boot"] == 10 and resolved.sources["n_boot"] == "given"  # the value the sweep resolved
    assert kwargs == {"progress": True, "label": "page 06_sweep on its recorded tables"}


def test_this_machine_names_the_cores_architecture_and_cpu_model(monkeypatch):
    import platform
    from pathlib import Path

    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    monkeypatch.setattr(platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(platform, "processor", lambda: "")
    real = Path.read_text
    cpuinfo = {"text": "processor\t: 0\nmodel name\t: AMD EPYC 7B13\nflags\t: x\n"}

    def read_text(self, *args, **kwargs):
        if str(self) == "/proc/cpuinfo":
            if cpuinfo["text"] is None:
                raise OSError("no /proc")
            return cpuinfo["text"]
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", read_text)
    assert recorded.this_machine() == "4 CPU cores (x86_64, AMD EPYC 7B13)"
    cpuinfo["text"] = None  # no /proc (macOS): the processor platform names, else none
    assert recorded.this_machine() == "4 CPU cores (x86_64)"
    monkeypatch.setattr(platform, "processor", lambda: "arm")
    assert recorded.this_machine() == "4 CPU cores (x86_64, arm)"


def test_the_commit_that_executed_a_page_is_the_checkouts_or_unknown(monkeypatch):
    import datetime
    import subprocess

    calls = []

    def run(command, **kwargs):
        calls.append(command)
        return subprocess.CompletedProcess(command, 0, "abc1234\n", "")

    monkeypatch.setattr(subprocess, "run", run)
    assert recorded._executed_here() == {"commit": "abc1234", "date": datetime.date.today().isoformat()}
    assert calls == [["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"]]
    monkeypatch.setattr(subprocess, "run", lambda command, **kwargs: subprocess.CompletedProcess(command, 128, "", ""))
    assert recorded._executed_here()["commit"] == "unknown"  # no git, or not a checkout


def test_the_command_line_records_or_executes_again(tmp_path, monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(recorded, "execute_again", lambda page, progress=False: calls.append(page) or tmp_path / page)
    assert recorded.main(["09_quality_experiment", "--again"]) == 0
    assert calls == ["09_quality_experiment"]
    assert capsys.readouterr().out == f"executed 09_quality_experiment again in {tmp_path / '09_quality_experiment'}\n"

    def refused(page, progress=False):
        raise ParameterError("book/recorded/06_sweep records no page to execute again")

    monkeypatch.setattr(recorded, "execute_again", refused)
    assert recorded.main(["06_sweep", "--again"]) == 2
    assert capsys.readouterr().err == "error: book/recorded/06_sweep records no page to execute again\n"
    with pytest.raises(SystemExit) as stopped:  # recording needs its folder, commands and commit
        recorded.main(["06_sweep", str(tmp_path), "--commit", "abc"])
    assert stopped.value.code == 2 and "needs FOLDER, --command and --commit" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        recorded.main(["06_sweep", str(tmp_path), "--command", "c"])
    monkeypatch.setattr(recorded, "record_page", lambda *args, **kwargs: calls.append((args, kwargs)) or tmp_path)
    assert recorded.main(["06_sweep", "runs/drivers", "--command", "c1", "--command", "c2", "--commit", "abc",
                          "--left-out", "epochs=24", "--date", "2026-12-04", "--machine", "m"]) == 0
    assert calls[-1] == (("06_sweep", "runs/drivers", ["c1", "c2"], "abc", "epochs=24", "m", "2026-12-04"),
                         {"progress": False})
    assert capsys.readouterr().out == f"recorded 06_sweep in {tmp_path}\n"
