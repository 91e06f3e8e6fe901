"""The runner and the CLI: the smoke pipeline end to end, --only, and one-line errors."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from clipalign_utils import checkpoints, cli, config, record, registry
from clipalign_utils.errors import ParameterError
from clipalign_utils.layout import RunDir

from clipalign_utils.orchestration import pipeline
from clipalign_utils.orchestration.pipeline import STEPS
from helpers import assert_step_tables, steps_that_only_mark_done


def test_smoke_pipeline_leaves_checkpoints_notebooks_and_tables(smoke_pipeline):
    run = checkpoints.discover_run(smoke_pipeline)
    epochs = [c.epoch for c in run.checkpoints]
    assert len(epochs) >= 5 and epochs[0] == 0 and sum(0 < e < 1 for e in epochs) >= 3
    assert epochs[-1] == config.resolve("smoke")["epochs"]
    saved = json.loads((smoke_pipeline / "record.json").read_text())
    for step, name in STEPS.items():
        executed = json.loads((smoke_pipeline / "notebooks" / f"{name}.ipynb").read_text())
        passed = executed["metadata"]["papermill"]["parameters"]
        assert passed["preset"] == "smoke"
        assert not any(o.get("output_type") == "error" for c in executed["cells"] for o in c.get("outputs", []))
        # The notebook was given the run's resolved record, every value it declares, as recorded.
        recorded = saved["steps"][step]["parameters"]
        declared = set(pipeline.notebook_parameters(step)) & set(recorded)
        assert declared and {k: passed[k] for k in declared} == {k: recorded[k] for k in declared}, step
    for step in STEPS:
        assert_step_tables(smoke_pipeline, step, [c.name for c in run.checkpoints])
    assert set(registry.tables()) >= {"two_afc", "saliency"}
    saliency = pd.read_csv(smoke_pipeline / "metrics" / "saliency.csv")
    assert registry.get("saliency").summary.baselines[0] in set(saliency["checkpoint"])
    assert set(saliency["metric"]) == {"cc", "nss", "sim", "kld", "auc_judd", "sauc", "auc_borji"}
    two_afc = pd.read_csv(smoke_pipeline / "metrics" / "two_afc.csv")
    assert "all" in set(two_afc["subset"]) and two_afc["score"].between(0, 1).all()
    # The synthesis reads both: their curves are in the checkpoint table and their claims are judged.
    from clipalign_utils import results

    table = results.checkpoint_table(smoke_pipeline)
    assert table[["two_afc_score", "saliency_sauc", "saliency_cc"]].notna().all().all()
    verdicts = pd.read_csv(smoke_pipeline / "metrics" / "tradeoff_verdicts.csv")
    assert {"mid-level similarity peaks early then declines",
            "saliency correspondence peaks early then declines"} <= set(verdicts["claim"])
    # the run trained with the preset's seed, which its record gives: the synthesis leaves none of it out (it
    # had said "left out (the preset's values, not this run's: it was trained elsewhere): seed")
    synthesis = (smoke_pipeline / "notebooks" / "05_tradeoff_synthesis.ipynb").read_text()
    assert "seed " in synthesis and "left out (" not in synthesis
    assert not list(smoke_pipeline.rglob("*.tmp*")) and not list(smoke_pipeline.rglob("*.failed.ipynb"))


def test_only_reruns_one_step_with_an_override(smoke_pipeline, tmp_path):
    import shutil

    run_dir = tmp_path / "run"
    shutil.copytree(smoke_pipeline, run_dir, ignore=shutil.ignore_patterns("book"))
    before = (run_dir / "metrics" / "shape_bias.csv").read_bytes()
    assert cli.main(["run", "--preset", "smoke", "--out", str(run_dir), "--only", "iqa",
                     "-p", "distance=euclidean"]) == 0
    iqa = pd.read_csv(run_dir / "metrics" / "iqa.csv")
    assert set(iqa["distance"]) == {"euclidean"}
    assert (run_dir / "metrics" / "shape_bias.csv").read_bytes() == before


@pytest.mark.parametrize("argv, message", [
    (["--preset", "huge"], "unknown preset 'huge'"),
    (["--only", "everything"], "unknown step 'everything'"),
    (["-p", "epochs"], "write parameters as name=value"),
    (["-p", "no_such_parameter=1"], "unknown parameter no_such_parameter"),
    (["-p", "distanse=euclidean"], "unknown parameter distanse: no notebook declares it (did you mean distance?)"),
    # values are checked before any folder is made or kernel started: one run, and the default's three seeds
    (["--preset", "smoke", "-p", "epochs=abc"], "parameter epochs='abc' has the wrong type"),
    (["--preset", "smoke", "-p", "n_boot=0"], "parameter n_boot must be positive"),
    (["-p", "quality_variation=2"], "parameter quality_variation must lie in [0, 1]"),
])
def test_cli_bad_arguments_give_one_line(argv, message, tmp_path, capsys):
    assert cli.main(["run", "--out", str(tmp_path / "run"), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_a_parameter_no_page_of_the_command_reads_is_said(tmp_path, monkeypatch, capsys):
    """An audit: -p interpolation_from=x without --only interpolation trained and measured a run as if unsaid."""
    ran = []
    monkeypatch.setattr(pipeline, "execute", lambda run_dir, steps, *args, **kwargs: ran.append(steps))
    assert cli.main(["run", "--preset", "smoke", "--out", str(tmp_path / "run"), "--only", "train", "-p",
                     "interpolation_from=x", "-p", "sigmas=0.1", "-p", "epochs=1"]) == 0
    assert ran == [["train"]]
    assert capsys.readouterr().out.splitlines() == [
        "note: no page this command runs reads -p interpolation_from (read by step interpolation: --only "
        "interpolation); -p sigmas (read by step noise: --only noise)"]
    pipeline.note_unread({"epochs": 1, "distance": "cosine"}, pipeline.step_notebooks(["train", "iqa"]))
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("step, table", [("similarity", "two_afc"), ("saliency", "saliency")])
def test_only_runs_each_new_step(step, table, smoke_run_copy):
    assert cli.main(["run", "--preset", "smoke", "--out", str(smoke_run_copy), "--only", step]) == 0
    assert (smoke_run_copy / "metrics" / f"{table}.csv").exists()
    assert (smoke_run_copy / "notebooks" / f"{STEPS[step]}.ipynb").exists()
    assert not (smoke_run_copy / "book").exists()  # --only builds no book


def test_a_dataset_folder_in_the_wrong_layout_is_refused_before_anything_runs(smoke_run_copy, tmp_path, capsys):
    """Read by its loader before a kernel starts or a run trains: one line naming the parameter and what the
    folder should hold; nothing written, nothing removed (the step's earlier page and table stay)."""
    (tmp_path / "empty-folder").mkdir()  # exists (so the CLI takes it) but is not TID2013's layout
    before = {p: p.read_bytes() for p in smoke_run_copy.rglob("*") if p.is_file()}
    for argv in (["--out", str(smoke_run_copy), "--only", "iqa"], ["--out", str(tmp_path / "new")]):
        code = cli.main(["run", "--preset", "smoke", *argv, "-p", "iqa_dataset=tid2013",
                         "-p", f"iqa_root={tmp_path / 'empty-folder'}"])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1, err
        assert "iqa_root" in err[0] and "empty-folder" in err[0] and "reference_images" in err[0]
    assert {p: p.read_bytes() for p in smoke_run_copy.rglob("*") if p.is_file()} == before
    assert not (tmp_path / "new").exists()


def test_failed_step_leaves_no_table(smoke_run_copy, tmp_path, capsys):
    """What only the page finds (an image in the listed layout that does not decode) fails the step: one
    line, no table, the partial notebook kept as .failed.ipynb; on a run that had the step, everything as it
    was (page, tables, figures, record), the .failed.ipynb beside them."""
    from fixtures_real import make_tid2013

    root = make_tid2013(tmp_path / "tid2013")
    broken = root / "distorted_images" / "i01_08_2.bmp"
    broken.write_bytes(b"not a bitmap")
    code = cli.main(["run", "--preset", "smoke", "--out", str(smoke_run_copy), "--only", "iqa",
                     "-p", "iqa_dataset=tid2013", "-p", f"iqa_root={root}"])
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("clipalign: error")]
    assert code == 2 and len(errors) == 1
    assert "i01_08_2.bmp" in errors[0]
    assert not (smoke_run_copy / "metrics" / "iqa.csv").exists()
    assert not (smoke_run_copy / "notebooks" / "02_iqa_alignment.ipynb").exists()
    assert (smoke_run_copy / "notebooks" / "02_iqa_alignment.failed.ipynb").exists()

    def outputs():
        return {p.relative_to(smoke_run_copy): p.read_bytes() for p in smoke_run_copy.rglob("*")
                if p.is_file() and "cache" not in p.parts and not p.name.endswith(".lock")}

    assert cli.main(["run", "--preset", "smoke", "--out", str(smoke_run_copy), "--only", "iqa"]) == 0
    before = outputs()
    assert (smoke_run_copy / "metrics" / "iqa.csv").exists() and before
    capsys.readouterr()
    assert cli.main(["run", "--preset", "smoke", "--out", str(smoke_run_copy), "--only", "iqa",
                     "-p", "iqa_dataset=tid2013", "-p", f"iqa_root={root}", "-p", "distance=cosine"]) == 2
    after = outputs()
    failed = after.pop(Path("notebooks") / "02_iqa_alignment.failed.ipynb")
    assert after == before and b"i01_08_2.bmp" in failed

def test_a_page_run_alone_that_fails_leaves_the_record_as_it_was(smoke_run_copy):
    """papermill by hand (here: the notebook run alone, no command around it to put things back): a page that
    fails before its tables are written records nothing, so the next plain run of it, the command's too,
    does not inherit the failed parameters (an audit found them inherited: tid2013 without its root, then
    every later iqa run failing with that error)."""
    record_path = smoke_run_copy / "record.json"

    def record_now():
        return record_path.read_bytes() if record_path.exists() else None

    pipeline.run_notebook("03_shape_texture_bias", smoke_run_copy, {"run_dir": str(smoke_run_copy),
                                                                    "preset": "smoke"}, progress=False)
    before = record_now()
    assert before is not None  # the shape page's entry
    with pytest.raises(pipeline.StepFailed, match="iqa_root"):
        pipeline.run_notebook("02_iqa_alignment", smoke_run_copy,
                              {"run_dir": str(smoke_run_copy), "preset": "smoke", "iqa_dataset": "tid2013"},
                              progress=False)
    assert record_now() == before
    # A plain run of the page succeeds; with a parameter changed, its entry is written with its tables.
    pipeline.run_notebook("02_iqa_alignment", smoke_run_copy,
                          {"run_dir": str(smoke_run_copy), "preset": "smoke", "distance": "cosine"}, progress=False)
    entry = json.loads(record_path.read_text())["steps"]["iqa"]
    assert entry["parameters"]["distance"] == "cosine" and entry["eval_sets"]
    assert set(pd.read_csv(smoke_run_copy / "metrics" / "iqa.csv")["distance"]) == {"cosine"}
    # The synthesis on a folder that is not there, auto_train off: that, not a missing table; nothing recorded.
    missing = smoke_run_copy.parent / "never-made"
    with pytest.raises(pipeline.StepFailed, match=f"run_dir {missing} does not exist"):
        pipeline.run_notebook("05_tradeoff_synthesis", smoke_run_copy.parent / "pages",
                              {"run_dir": str(missing), "preset": "smoke", "auto_train": False}, progress=False)
    assert not missing.exists()


def test_a_step_re_run_alone_says_the_synthesis_still_shows_the_tables_before(smoke_run_copy, monkeypatch, capsys):
    monkeypatch.setattr(pipeline, "execute", lambda *args, **kwargs: None)  # the steps' work is not the point
    synthesis = smoke_run_copy / "notebooks" / f"{registry.synthesis().notebook}.ipynb"
    pipeline.run_pipeline(smoke_run_copy, "smoke", "noise")
    assert "synthesis" not in capsys.readouterr().out  # no synthesis page yet: nothing to say
    synthesis.parent.mkdir(exist_ok=True)
    synthesis.write_text("{}")
    # (interpolation from a named checkpoint: its default, the IQA peak, reads an iqa.csv this run lacks)
    first = sorted((smoke_run_copy / "checkpoints").glob("epoch_*.pt"), key=lambda p: float(p.stem[6:]))[0].stem
    for only, says in (("noise", True), ("noise,tradeoff", False), ("interpolation", False)):
        pipeline.run_pipeline(smoke_run_copy, "smoke", only,
                              {"interpolation_from": first} if only == "interpolation" else None)
        printed = capsys.readouterr().out
        assert ("still shows the tables from before; --only noise,tradeoff re-runs it too" in printed) is says, only
    # One run of a folder of runs whose synthesis exists: that synthesis is named, with the command for every run.
    synthesis.unlink()
    folder = smoke_run_copy.parent / "runs"
    seed_run = folder / "tiny-seed0"
    smoke_run_copy.rename(seed_run.parent.mkdir() or seed_run)
    (folder / "notebooks").mkdir()
    (folder / "notebooks" / synthesis.name).write_text("{}")
    pipeline.run_pipeline(seed_run, "smoke", "noise")
    assert (f"the synthesis of {folder.resolve()} still shows this run's tables from before; clipalign run --out "
            f"{folder.resolve()} --only noise re-runs the step in every run" in capsys.readouterr().out)
    # Given another value, the command said would meet the other runs' old one in the synthesis and stop there,
    # every run's step re-run (an audit): it names the -p to give them all.
    pipeline.run_pipeline(seed_run, "smoke", "noise", {"sigmas": "0.1,0.3"})
    assert (f"clipalign run --out {folder.resolve()} --only noise -p sigmas=0.1,0.3 re-runs the step in every run"
            in capsys.readouterr().out)


def test_a_step_whose_embeddings_are_cached_imports_no_torch(smoke_run_copy):
    """A re-run reads its embeddings, saliency maps and evaluation sets from the caches with numpy: torch,
    torchvision, open_clip and piq (about 3 s of a command's first page) are never imported, and the tables
    are the same bytes."""
    steps = ("iqa", "shape", "noise", "similarity", "saliency")
    probe = ("import sys\nfrom clipalign_utils.orchestration import measure\n"
             f"for step in {steps!r}:\n    measure.measure_step({str(smoke_run_copy)!r}, step, 'smoke')\n"
             "print(sorted(m for m in ('torch', 'torchvision', 'open_clip', 'piq') if m in sys.modules))")
    subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)  # fills the caches
    tables = {path.name: path.read_bytes() for path in (smoke_run_copy / "metrics").glob("*.csv")}
    again = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert again.stdout.split() == ["[]"]
    assert {path.name: path.read_bytes() for path in (smoke_run_copy / "metrics").glob("*.csv")} == tables
    assert {"iqa.csv", "shape_bias.csv", "noise.csv", "two_afc.csv", "saliency.csv"} <= set(tables)


def _run_with_an_iqa_page(folder: Path) -> dict:
    """A run folder whose iqa page ran (its tables, figure and record entry; no checkpoints): its files' bytes."""
    from clipalign_utils import record

    (folder / "metrics").mkdir(parents=True)
    (folder / "figures").mkdir()
    (folder / "metrics" / "iqa.csv").write_text("distance\nnormalized_euclidean\n")
    (folder / "figures" / "iqa.png").write_bytes(b"the figure before")
    record.write_entry(folder, "iqa", record.resolve(folder, "smoke", {}))
    return _files(folder)


def _files(folder: Path) -> dict:
    return {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


_KILLED_MID_PAGE = """
import os, signal, sys
from pathlib import Path
from clipalign_utils import record
from clipalign_utils.orchestration import pipeline

run = Path(sys.argv[1])
def dies_half_way(name, run_dir, parameters, *args, **kwargs):  # the page's cells have written one table
    (run_dir / "metrics" / "iqa.csv").write_text("distance\\neuclidean\\n")
    os.kill(os.getpid(), signal.SIGKILL)
pipeline.run_notebook = dies_half_way
pipeline.run_page("02_iqa_alignment", run, record.resolve(run, "smoke", {"distance": "euclidean"}), entry="iqa")
"""


def test_a_page_killed_mid_way_is_put_back_by_the_next_command(tmp_path, capsys):
    """SIGKILL (a lost node, an out-of-memory kill, a scheduler's last word) leaves no clean-up run: the next
    command on the run puts back its tables, figures and record from before that page, says so, and only then
    reads the run (an audit found new tables beside the old page, and a record naming the killed parameters)."""
    run = tmp_path / "run"
    before = _run_with_an_iqa_page(run)
    killed = subprocess.run([sys.executable, "-c", _KILLED_MID_PAGE, str(run)], cwd=tmp_path)
    assert killed.returncode == -9
    assert (run / "metrics" / "iqa.csv").read_text() == "distance\neuclidean\n"  # half-written, as the audit saw
    assert json.loads((run / "record.json").read_text())["steps"]["iqa"]["parameters"]["distance"] == "euclidean"
    # any command on the run: here one that then stops at the missing checkpoints
    assert cli.main(["run", "--out", str(run), "--only", "iqa", "--no-book"]) == 2
    out, err = capsys.readouterr()
    assert out.splitlines()[0] == (f"note: {run}: a command stopped during page 02_iqa_alignment without cleaning "
                                   f"up (killed?); its tables, figures and record are put back as they were before "
                                   f"that page")
    assert "no checkpoints/ folder" in err
    assert _files(run) == before  # the saved copy gone too
    assert pipeline.recover_stopped_pages(run) == []


def test_a_page_killed_in_a_run_of_an_experiments_sweep_is_put_back_from_the_experiment(tmp_path):
    """A run two levels down (experiment/sweep/run): the command on the experiment's folder finds it too."""
    experiment = tmp_path / "experiment"
    run = experiment / "quality" / "tiny-seed0"
    before = _run_with_an_iqa_page(run)
    killed = subprocess.run([sys.executable, "-c", _KILLED_MID_PAGE, str(run)], cwd=tmp_path)
    assert killed.returncode == -9 and _files(run) != before
    assert pipeline.recover_stopped_pages(experiment) == ["02_iqa_alignment"]
    assert _files(run) == before


_KILLED_AT = """
import os, signal, sys
from pathlib import Path
from clipalign_utils import record
from clipalign_utils.orchestration import pipeline

run, moment = Path(sys.argv[1]), sys.argv[2]
real_replace = os.replace

def killed_after_one_move(src, dst):
    real_replace(src, dst)
    os.kill(os.getpid(), signal.SIGKILL)

def page(name, run_dir, parameters, *args, committing=None, **kwargs):
    (run_dir / "metrics" / "iqa.csv").write_text("distance\\neuclidean\\n")
    (run_dir / "figures" / "iqa.png").write_bytes(b"the new figure")
    if moment == "committed":  # finished: the page written, its commit marked, killed before it replaced the old one
        (run_dir / "notebooks").mkdir(exist_ok=True)
        (run_dir / "notebooks" / f".{name}.running.ipynb").write_text("the new page")
        committing()
        os.kill(os.getpid(), signal.SIGKILL)
    os.replace = killed_after_one_move  # failed: killed while putting back, after its first folder
    raise RuntimeError("the page failed")
pipeline.run_notebook = page
pipeline.run_page("02_iqa_alignment", run, record.resolve(run, "smoke", {"distance": "euclidean"}), entry="iqa")
"""


@pytest.mark.parametrize("moment", ["committed", "putting back"])
def test_a_page_killed_as_it_finished_or_while_put_back_leaves_page_and_tables_in_step(moment, tmp_path, capsys):
    """Killed once the page had finished but before it replaced the old one: the next command keeps the new
    page with its new tables. Killed half-way through putting a failed page's run back: the next command
    finishes putting it back (an audit found all of metrics/ deleted, and a new page beside old tables)."""
    run = tmp_path / "run"
    _run_with_an_iqa_page(run)
    (run / "notebooks").mkdir()
    (run / "notebooks" / "02_iqa_alignment.ipynb").write_text("the old page")
    before = _files(run)
    killed = subprocess.run([sys.executable, "-c", _KILLED_AT, str(run), moment], cwd=tmp_path)
    assert killed.returncode == -9
    put_back = pipeline.recover_stopped_pages(run)
    files = _files(run)
    if moment == "committed":
        assert put_back == [] and capsys.readouterr().out == ""
        assert files[Path("notebooks/02_iqa_alignment.ipynb")] == b"the new page"
        assert files[Path("metrics/iqa.csv")] == b"distance\neuclidean\n"
        assert files[Path("figures/iqa.png")] == b"the new figure"
        assert not (run / ".02_iqa_alignment.outputs-before").exists()
    else:
        assert put_back == ["02_iqa_alignment"] and files == before


def test_a_saved_copy_that_is_held_or_unfinished_is_not_put_back(tmp_path):
    """A copy another command holds (its page is running now) is refused, not restored under it; one without its
    lock file was being made when the command stopped, before the page changed anything: it is only removed."""
    import fcntl

    run = tmp_path / "run"
    before = _run_with_an_iqa_page(run)
    saved = run / ".02_iqa_alignment.outputs-before"
    (saved / "metrics").mkdir(parents=True)
    assert pipeline.recover_stopped_pages(run) == [] and not saved.exists() and _files(run) == before
    saved.mkdir()
    with open(saved / "held.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(ParameterError, match=f"{run}: another command is running page 02_iqa_alignment"):
            pipeline.recover_stopped_pages(run)
        assert pipeline.recover_stopped_pages(run, skip_held=True) == []  # a launcher's: the job's page, left alone
    assert _files(run) == {**before, saved.relative_to(run) / "held.lock": b""}


def test_sigterm_stops_a_command_as_ctrl_c_does(tmp_path, monkeypatch, capsys):
    """SIGTERM (kill, timeout, a scheduler's time limit) mid-page: the page's run is put back as it was, one line
    says so, exit status 143; Ctrl-C the same with 130. The handler is the caller's again afterwards."""
    import os
    import signal

    run = tmp_path / "run"
    before = _run_with_an_iqa_page(run)
    monkeypatch.setattr(pipeline, "check_steps", lambda *args: None)  # no checkpoints here: the page is faked
    monkeypatch.setattr(pipeline, "check_run", lambda *args: None)

    def stopped_half_way(signum):
        def page(name, run_dir, *args, **kwargs):
            (run_dir / "metrics" / "iqa.csv").write_text("distance\neuclidean\n")
            os.kill(os.getpid(), signum)
            raise AssertionError("not stopped")
        return page

    handler = signal.getsignal(signal.SIGTERM)
    ignored = signal.signal(signal.SIGINT, signal.default_int_handler)  # a command's Ctrl-C (xdist's worker: none)
    try:
        for signum, code, says in ((signal.SIGTERM, 143, "stopped by SIGTERM"), (signal.SIGINT, 130, "interrupted")):
            monkeypatch.setattr(pipeline, "run_notebook", stopped_half_way(signum))
            assert cli.main(["run", "--preset", "smoke", "--out", str(run), "--only", "iqa",
                             "-p", "distance=euclidean"]) == code
            (error,) = capsys.readouterr().err.strip().splitlines()
            assert error == (f"clipalign: {says}: the step it was running left the run as it was before that step "
                             f"(finished steps stay); the same command carries on")
            assert _files(run) == before
        # stopped just after the page's parameters were recorded, before it ran: the record is put back too
        real_entry = pipeline.record.write_entry

        def recorded_then_stopped(*args, **kwargs):
            real_entry(*args, **kwargs)
            os.kill(os.getpid(), signal.SIGTERM)
        monkeypatch.setattr(pipeline.record, "write_entry", recorded_then_stopped)
        assert cli.main(["run", "--preset", "smoke", "--out", str(run), "--only", "iqa",
                         "-p", "distance=euclidean"]) == 143
        assert _files(run) == before
    finally:
        signal.signal(signal.SIGINT, ignored)
    assert signal.getsignal(signal.SIGTERM) == handler


def test_a_relative_cache_dir_is_the_one_where_the_command_started(tmp_path, monkeypatch, capsys):
    """The pages' kernels run in the checkout: a relative $CLIPALIGN_CACHE_DIR reaches them absolute, as the
    folder beside the command (an audit found `relcache/` made inside the checkout)."""
    import os

    from clipalign_utils.orchestration import cli as command_line

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CLIPALIGN_CACHE_DIR", "relcache")
    assert command_line.main(["run", "--preset", "smoke", "--out", "run", "-p", "no_such_parameter=1"]) == 2
    assert os.environ["CLIPALIGN_CACHE_DIR"] == str(tmp_path / "relcache")
    assert "no_such_parameter" in capsys.readouterr().err and not (tmp_path / "run").exists()


def test_a_run_shared_without_its_weights_is_synthesised_again_from_its_tables(smoke_pipeline, tmp_path, capsys):
    """The synthesis reads tables only: a run copied without checkpoints/ (its tables shared) runs `--only
    tradeoff` (an audit was refused: 'has no checkpoints/ folder'); lacking a table, it is refused as before,
    before any page runs."""
    import shutil

    copy = tmp_path / "shared"
    shutil.copytree(smoke_pipeline, copy, ignore=shutil.ignore_patterns("checkpoints", "cache", "book"))
    (copy / "metrics" / "tradeoff.csv").unlink()
    assert cli.main(["run", "--out", str(copy), "--only", "tradeoff", "--no-book"]) == 0
    again, before = (pd.read_csv(run / "metrics" / "tradeoff.csv") for run in (copy, smoke_pipeline))
    assert set(again["run"]) == {"shared"} and again.drop(columns="run").equals(before.drop(columns="run"))
    (copy / "metrics" / "noise.csv").unlink()
    capsys.readouterr()
    assert cli.main(["run", "--out", str(copy), "--only", "tradeoff", "--no-book"]) == 2
    assert "has no checkpoints/ folder" in capsys.readouterr().err
    # a step that embeds: told the weights are what is missing (an audit read only of run_dir)
    assert cli.main(["run", "--out", str(copy), "--only", "noise", "--no-book"]) == 2
    assert ("has no checkpoints/ folder (its tables only: a step that embeds needs the weights; copy its checkpoints/ "
            "back): point run_dir (--out) at a training run") in capsys.readouterr().err
    # With its weights, every table there, but its training stopped early: refused as ever (a review found it not)
    stopped = tmp_path / "stopped"
    shutil.copytree(smoke_pipeline, stopped, ignore=shutil.ignore_patterns("cache", "book"))
    train_params = json.loads((stopped / "train_params.json").read_text())
    (stopped / "train_params.json").write_text(json.dumps({**train_params, "epochs": train_params["epochs"] + 5}))
    assert cli.main(["run", "--out", str(stopped), "--only", "tradeoff", "--no-book"]) == 2
    assert "training stopped at epoch" in capsys.readouterr().err


def test_a_pages_progress_bars_reach_the_terminal_and_its_warnings_do_not():
    """On a terminal the CLI shows a page's own bars as it runs (an audit waited 7 minutes on one saliency
    cell with nothing moving); the page's warnings stay in the executed notebook."""
    import io

    terminal = io.StringIO()
    bars = pipeline.KernelBars(terminal)
    bars.write("\rscoring mit1003:   0%|          | 0/1003 [00:00<?, ?image/s]")
    bars.write("\rscoring mit1003:  50%|#####     | 500/1003 [00:04<00:04, 120image/s]"
               "\rscoring mit1003: 100%|##########| 1003/1003 [00:08<00:00, 120image/s]\n")
    bars.write("/x/y.py:3: UserWarning: kept in the page\n  warnings.warn(\n")
    bars.write("\rcheckpoints:  50%|#####     | 1/2 [00:01<00:01,  1.0it/s]")
    bars.end_line()
    bars.end_line()  # a page that ends with its bar open: one line ended, once
    assert terminal.getvalue() == (
        "\rscoring mit1003:   0%|          | 0/1003 [00:00<?, ?image/s]"
        "\rscoring mit1003: 100%|##########| 1003/1003 [00:08<00:00, 120image/s]\n"
        "\rcheckpoints:  50%|#####     | 1/2 [00:01<00:01,  1.0it/s]\n")


def test_a_pages_progress_reaches_a_log_as_a_line_a_minute(monkeypatch):
    """Where stderr is a log (nohup, a cluster job's output), a long cell showed nothing until the step ended (an
    audit's saliency step: minutes per checkpoint); now its latest bar, as a line, once a minute at most."""
    import io

    clock = iter([0.0, 10.0, 59.0, 61.0, 70.0, 125.0])
    monkeypatch.setattr(pipeline.time, "monotonic", lambda: next(clock))
    log = io.StringIO()
    bars = pipeline.KernelBars(log, every=60)  # the clock: 0 at the page's start
    bars.write("\rscoring cat2000:   0%|          | 0/2000 [00:00<?, ?image/s]")  # 10 s: too soon
    bars.write("\rscoring cat2000:  10%|#         | 200/2000 [00:59<08:51, 3.4image/s]")  # 59 s: too soon
    bars.write("/x/y.py:3: UserWarning: kept in the page\n")
    bars.write("\rscoring cat2000:  11%|#         | 220/2000 [01:01<08:49, 3.4image/s]"
               "\rscoring cat2000:  12%|#2        | 240/2000 [01:05<08:40, 3.4image/s]")  # 61 s: the latest
    bars.write("\rscoring cat2000:  15%|#5        | 300/2000 [01:10<08:20, 3.4image/s]")  # 70 s: too soon
    bars.write("\rscoring cat2000:  35%|###5      | 700/2000 [02:05<03:52, 3.4image/s]\n")  # 125 s
    # a bar at its total is written whatever the clock (the clock is not read), once: tqdm draws it again
    # as it closes
    bars.write("\rscoring cat2000: 100%|##########| 2000/2000 [05:52<00:00, 3.4image/s]")
    bars.write("\rscoring cat2000: 100%|##########| 2000/2000 [05:52<00:00, 3.4image/s]\n")
    bars.write("\rcheckpoints: 100%|##########| 2/2 [06:00<00:00, 180s/it]\n")
    bars.end_line()
    assert log.getvalue() == ("scoring cat2000:  12%|#2        | 240/2000 [01:05<08:40, 3.4image/s]\n"
                              "scoring cat2000:  35%|###5      | 700/2000 [02:05<03:52, 3.4image/s]\n"
                              "scoring cat2000: 100%|##########| 2000/2000 [05:52<00:00, 3.4image/s]\n"
                              "checkpoints: 100%|##########| 2/2 [06:00<00:00, 180s/it]\n")


def test_a_download_s_bar_in_a_log_ends_at_100_percent_not_where_its_rounded_count_does():
    """Byte counts drawn rounded (915M/915M at 99.95 %) were taken for the bar's end, and its real end not
    written (a review)."""
    import io

    log = io.StringIO()
    bars = pipeline.KernelBars(log, every=3600)
    bars.write("\rx.zip:  99%|#########9| 915M/915M [00:31<00:00, 13.1MB/s]")
    bars.write("\rx.zip: 100%|##########| 915M/915M [00:31<00:00, 13.1MB/s]\n")
    bars.end_line()
    assert log.getvalue() == "x.zip: 100%|##########| 915M/915M [00:31<00:00, 13.1MB/s]\n"


def test_a_step_measured_in_the_commands_process_writes_its_bars_to_a_log_as_lines(monkeypatch):
    """A streamed run's checkpoints, a folder's other runs and torchrun's ranks measure outside any page's
    kernel: into a log, tqdm wrote its carriage-return frames (a README audit counted 17 in one log). Measured
    under ``measuring_bars``, each bar reaches the log once at its total, and other text goes through."""
    import io
    import sys

    from tqdm import tqdm

    log = io.StringIO()
    monkeypatch.setattr(sys, "stderr", log)
    with pipeline.measuring_bars():
        for _ in tqdm(range(3), desc="checkpoints", mininterval=0):
            pass
        print("a warning the step printed", file=sys.stderr)
    assert sys.stderr is log
    text = log.getvalue()
    assert "\r" not in text
    assert [line.split("|")[0] + "|" + line.split("|")[2].split("[")[0] for line in text.splitlines()
            if line.startswith("checkpoints")] == ["checkpoints: 100%| 3/3 "]
    assert text.endswith("a warning the step printed\n")
    # a nested bar (tqdm moves the cursor up for it): no terminal codes in the log, each bar once at its end
    log.seek(0)
    log.truncate()
    with pipeline.measuring_bars():
        for _ in tqdm(range(2), desc="checkpoints", mininterval=0):
            for _ in tqdm(range(2), desc="images", mininterval=0, leave=False):
                pass
    assert "\x1b" not in log.getvalue() and "\r" not in log.getvalue()
    assert [line.split(":")[0] for line in log.getvalue().splitlines()] == ["images", "checkpoints"]

    class KernelStream(io.StringIO):  # ipykernel's stream: never a tty, and the command reads its bars itself
        __module__ = "ipykernel.iostream"

    page = KernelStream()
    monkeypatch.setattr(sys, "stderr", page)
    with pipeline.measuring_bars():
        assert sys.stderr is page

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    with pipeline.measuring_bars():
        assert sys.stderr is terminal  # a terminal's bars are left to redraw in place


def test_the_known_parameters_an_unknown_one_is_told_of_are_those_p_takes(tmp_path, capsys):
    """The list named run_dir, preset and auto_train, which -p then refuses (an audit)."""
    assert cli.main(["run", "--out", str(tmp_path / "run"), "-p", "colour=red"]) == 2
    known = capsys.readouterr().err.strip().split("; known: ")[1].split(", ")
    assert "distance" in known and not {"run_dir", "preset", "auto_train", "run_dirs", "only"} & set(known)


def test_two_commands_starting_a_page_at_once_do_not_share_its_copy(tmp_path):
    """An audit started two `run --only iqa` at once: both made the page's copy in one folder, one deleting the
    other's (FileExistsError, exit 1). The copy is made under its process's own name and renamed into place held;
    the second command is told. A copy a killed command was making is removed once its process is gone."""
    from clipalign_utils.layout import RunDir

    run = tmp_path / "run"
    (run / "metrics").mkdir(parents=True)
    (run / "metrics" / "iqa.csv").write_text("a\n1\n")
    layout = RunDir(run)
    with pipeline._saved_outputs(layout, "02_iqa_alignment", None) as saved:
        assert (saved / "metrics" / "iqa.csv").read_text() == "a\n1\n"
        with pytest.raises(ParameterError, match=r"another command is running page 02_iqa_alignment there now"):
            with pipeline._saved_outputs(layout, "02_iqa_alignment", None):
                pass
        assert (saved / "held.lock").exists() and (saved / "metrics" / "iqa.csv").exists()  # the first's, intact
        with pytest.raises(ParameterError, match="another command is running page 02_iqa_alignment"):
            pipeline.recover_stopped_pages(run)
    assert not saved.exists() and sorted(p.name for p in run.iterdir()) == ["metrics"]
    host = pipeline._MAKER.rpartition("-")[0]
    gone, alive, elsewhere = (run / f".02_iqa_alignment.outputs-before.{maker}.making" for maker in
                              (f"{host}-{2**31 - 2}", f"{host}-{os.getpid()}", "another-node-1"))
    for making in (gone, alive, elsewhere):
        (making / "metrics").mkdir(parents=True)
    assert pipeline.recover_stopped_pages(run) == [] and not gone.exists()
    assert alive.exists() and elsewhere.exists()  # a live process's, and another machine's (a SLURM job's)


def test_a_full_disk_and_a_read_only_folder_are_one_line(tmp_path):
    import errno
    import shutil

    from clipalign_utils.orchestration.cli import disk_problem

    full = OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "run" / "metrics"))
    assert disk_problem(full) == (f"no space left on the disk ({tmp_path / 'run' / 'metrics'}): free some and run the "
                                  f"same command again")
    copied = shutil.Error([("a", "b", "[Errno 28] No space left on device")])  # shutil.copytree's gathered errors
    assert disk_problem(copied).startswith("no space left on the disk: free some")
    read_only = PermissionError(errno.EACCES, "Permission denied", "/runs/r/.book-building")
    assert disk_problem(read_only) == ("cannot write (/runs/r/.book-building): the folder is read-only to this user; "
                                       "make it writable, or copy the run somewhere writable and give that folder")
    assert disk_problem(FileNotFoundError(errno.ENOENT, "No such file", "x")) is None


def _fake_steps(monkeypatch):
    return steps_that_only_mark_done(monkeypatch)


def test_a_done_step_is_skipped_only_when_resuming(tmp_path, monkeypatch, capsys):
    """execute(resume=True) skips a step whose executed page is there; without resume (--only re-running a
    step) it is executed again: skipping it would leave the tables of before under a command that said it ran."""
    calls = _fake_steps(monkeypatch)
    run = RunDir(tmp_path / "r")
    run.notebooks.mkdir(parents=True)
    run.executed(registry.get("iqa").notebook).write_text("{}")
    smoke = record.resolve(None, "smoke", {})
    assert pipeline.execute(run.path, ["iqa", "shape"], smoke, progress=False, resume=True) == ["shape"]
    assert "iqa: skip (done)" in capsys.readouterr().out
    assert pipeline.execute(run.path, ["iqa", "shape"], smoke, progress=False) == ["iqa", "shape"]
    assert calls == [("r", "shape"), ("r", "iqa"), ("r", "shape")]


def test_a_page_killed_three_folders_down_is_put_back_from_the_top(tmp_path):
    """_page_folders looks three levels down (a folder of runs holding an experiment's sweeps and their runs):
    a page killed in such a run is put back by the command on the top folder."""
    top = tmp_path / "runs"
    run = top / "experiment" / "quality" / "tiny-seed0"
    before = _run_with_an_iqa_page(run)
    killed = subprocess.run([sys.executable, "-c", _KILLED_MID_PAGE, str(run)], cwd=tmp_path)
    assert killed.returncode == -9 and _files(run) != before
    assert pipeline.recover_stopped_pages(top) == ["02_iqa_alignment"]
    assert _files(run) == before


# ------------------------------------------------------------ in-process: branches the fast tier reached only slowly
@pytest.fixture
def tiny_page(tmp_path, monkeypatch):
    """A registered one-cell page, a kernel manager that starts nothing, and the discards run_notebook asks for."""
    from clipalign_utils.orchestration import kernel

    notebooks = tmp_path / "sources"
    notebooks.mkdir()
    (notebooks / "96_tiny.py").write_text("# ---\n# jupyter:\n#   kernelspec:\n#     display_name: Python 3\n"
                                          "#     language: python\n#     name: python3\n# ---\n\n"
                                          "# %% tags=[\"parameters\"]\nrun_dir = \"\"\n\n# %%\nx = 1\n")
    registry.register(registry.Step("tiny", "96_tiny", notebook_dir=notebooks))
    discards = []
    monkeypatch.setattr(kernel, "manager_for", lambda cwd: "manager")
    monkeypatch.setattr(kernel, "discard", lambda: discards.append(True))
    yield discards
    registry.unregister("tiny")


def test_a_page_whose_kernel_died_keeps_its_partial_copy_as_failed_and_says_why_in_one_line(tiny_page, tmp_path,
                                                                                            monkeypatch):
    # The OOM killer's doing, most often: the partial page is kept for debugging, the kernel discarded, the page
    # executed before removed (kept with keep_previous, for the caller to put back).
    import papermill
    from nbclient.exceptions import DeadKernelError

    def dies(source, partial, **kwargs):
        assert kwargs["km"] == "manager"
        Path(partial).write_text("partial")
        raise DeadKernelError("Kernel died")

    monkeypatch.setattr(papermill, "execute_notebook", dies)
    run = RunDir(tmp_path / "run")
    run.notebooks.mkdir(parents=True)
    for keep in (True, False):
        run.executed("96_tiny").write_text("before")
        with pytest.raises(pipeline.StepFailed, match=r"^page: its kernel died, most often for want of memory: lower "
                                                      r"eval_batch_size \(now 7\) with -p eval_batch_size=N, or "
                                                      r"analyse fewer images or checkpoints$"):
            pipeline.run_notebook("96_tiny", run.path, {"eval_batch_size": 7}, progress=False, label="page",
                                  keep_previous=keep)
        assert (run.notebooks / "96_tiny.failed.ipynb").read_text() == "partial"
        assert run.executed("96_tiny").exists() is keep
        assert sorted(p.name for p in run.notebooks.iterdir()) == ["96_tiny.failed.ipynb"] + ["96_tiny.ipynb"] * keep
    assert len(tiny_page) == 2  # one discard each time: no later page runs on a half-dead kernel


def test_a_page_whose_kernel_died_before_writing_anything_leaves_no_failed_copy(tiny_page, tmp_path, monkeypatch):
    import papermill
    from nbclient.exceptions import DeadKernelError

    def dies(source, partial, **kwargs):
        raise DeadKernelError("Kernel died")

    monkeypatch.setattr(papermill, "execute_notebook", dies)
    with pytest.raises(pipeline.StepFailed, match=r"\(now \?\)"):
        pipeline.run_notebook("96_tiny", tmp_path / "run", {}, progress=False)
    assert [p.name for p in (tmp_path / "run" / "notebooks").iterdir()] == []


def test_putting_back_replaces_the_tables_and_figures_the_page_wrote_with_the_saved_ones(tmp_path):
    # Saved metrics/ replaces the one the page changed; a figures/ that did not exist before the page is removed.
    layout = RunDir(tmp_path / "run")
    layout.metrics.mkdir(parents=True)
    (layout.metrics / "iqa.csv").write_text("before\n")
    with pipeline._saved_outputs(layout, "02_iqa_alignment", None) as saved:
        (layout.metrics / "iqa.csv").write_text("half-written\n")
        (layout.metrics / "new.csv").write_text("new\n")
        layout.figures.mkdir()
        (layout.figures / "a.png").write_text("png")
        pipeline._put_back(layout, saved)
        assert sorted(p.name for p in layout.path.iterdir() if not p.name.startswith(".")) == ["metrics"]
        assert [p.name for p in layout.metrics.iterdir()] == ["iqa.csv"]
        assert (layout.metrics / "iqa.csv").read_text() == "before\n" and not (saved / "metrics").exists()


def test_a_copys_maker_is_dead_only_when_a_process_of_this_machine_has_ended(monkeypatch):
    host = pipeline._MAKER.rpartition("-")[0]
    answers = {1: None, 2: ProcessLookupError, 3: PermissionError}

    def kill(pid, sig):
        assert sig == 0
        if answers[pid]:
            raise answers[pid]

    monkeypatch.setattr(os, "kill", kill)
    assert [pipeline._dead_here(f"{host}-{pid}") for pid in (1, 2, 3)] == [False, True, False]
    assert pipeline._dead_here(f"{host}-notapid") is False and pipeline._dead_here("elsewhere-2") is False


def test_a_steps_model_must_be_known_and_cuda_asked_for_must_be_there(monkeypatch):
    import types

    asked = []
    fake = types.SimpleNamespace(resolve_device=lambda device: asked.append(device))
    monkeypatch.setitem(sys.modules, "clipalign_utils.models", fake)
    pipeline.check_model_and_device({"model": "tiny", "device": "cpu"})
    pipeline.check_model_and_device({"device": "auto"})
    assert asked == []  # only cuda is asked about (torch imported for it alone)
    pipeline.check_model_and_device({"device": "cuda"})
    assert asked == ["cuda"]
    names = []
    monkeypatch.setattr("clipalign_utils.model_names.open_clip_name", lambda name: names.append(name))
    pipeline.check_model_and_device({"model": 5})
    pipeline.check_model_and_device({"device": "cpu"})
    assert names == ["5"]  # as a string, and only when the values have a model


def test_run_step_resolves_against_the_run_then_checks_then_executes_the_step(tmp_path, monkeypatch):
    # One step of a run (a page's own --only): the -p values split, resolved against the run, checked, executed.
    calls = []
    monkeypatch.setattr(pipeline, "check_steps", lambda run_dir, steps, resolved: calls.append(("check", steps)))
    monkeypatch.setattr(pipeline, "check_step_runs", lambda run_dir, steps, resolved: calls.append(("runs", steps)))
    monkeypatch.setattr(pipeline, "execute_step", lambda step, run_dir, resolved, extra, progress:
                        calls.append(("execute", step, run_dir, resolved.preset, resolved.params["n_boot"], extra,
                                      progress)) or "page")
    assert pipeline.run_step("iqa", str(tmp_path), "smoke", {"n_boot": "70"}, progress=False) == "page"
    assert calls == [("check", ["iqa"]), ("runs", ["iqa"]), ("execute", "iqa", tmp_path, "smoke", 70, {}, False)]
    with pytest.raises(ParameterError, match=r"^unknown parameter colour: no notebook declares it"):
        pipeline.run_step("iqa", tmp_path, "smoke", {"colour": "red"})  # only the step's page's names are taken


def test_only_runs_the_named_steps_in_registry_order_and_refuses_one_without_a_notebook(tmp_path, monkeypatch):
    ran = []
    monkeypatch.setattr(pipeline, "execute", lambda run_dir, steps, resolved, **kw: ran.append(list(steps)))
    monkeypatch.setattr(pipeline, "check_run", lambda *a: None)
    monkeypatch.setattr(pipeline, "check_step_runs", lambda *a: None)
    monkeypatch.setattr(pipeline, "check_steps", lambda *a: None)
    pipeline.run_pipeline(tmp_path / "run", "smoke", "shape,iqa")
    assert ran == [["iqa", "shape"]]
    registry.register(registry.Step("unwritten", "97_unwritten", notebook_dir=tmp_path))
    try:
        with pytest.raises(ParameterError, match=rf"^step 'unwritten' has no notebook yet \({tmp_path}/97_unwritten"):
            pipeline.run_pipeline(tmp_path / "run", "smoke", "unwritten")
    finally:
        registry.unregister("unwritten")
    assert ran == [["iqa", "shape"]]


def test_a_step_re_run_alone_names_the_synthesis_that_still_shows_the_tables_before(tmp_path, monkeypatch, capsys):
    # In-process (the slow test does it on a trained run): the run's own synthesis, else its folder's, else nothing;
    # nothing when the synthesis ran too or no step it reads did.
    synthesis = registry.synthesis()
    run = RunDir(tmp_path / "runs" / "tiny-seed0")
    run.notebooks.mkdir(parents=True)
    pipeline.note_stale_synthesis(run.path, ["noise"])
    assert capsys.readouterr().out == ""  # no synthesis anywhere
    run.executed(synthesis.notebook).write_text("{}")
    for steps in (["noise", synthesis.name], ["interpolation"]):
        pipeline.note_stale_synthesis(run.path, steps)
        assert capsys.readouterr().out == "", steps
    pipeline.note_stale_synthesis(run.path, ["iqa", "noise"])
    assert capsys.readouterr().out == (f"note: this run's synthesis ({synthesis.notebook}) still shows the tables "
                                       f"from before; --only iqa,noise,{synthesis.name} re-runs it too\n")
    run.executed(synthesis.notebook).unlink()
    folder = RunDir(run.path.parent)
    folder.notebooks.mkdir()
    folder.executed(synthesis.notebook).write_text("{}")
    pipeline.note_stale_synthesis(run.path, ["noise"])
    assert capsys.readouterr().out == ""  # not a run of the folder (no checkpoints): not that synthesis's
    run.checkpoints.mkdir()
    pipeline.note_stale_synthesis(run.path, ["noise"], {"sigmas": "0.1,0.3", "x": "a b"})
    assert capsys.readouterr().out == (f"note: the synthesis of {folder.path} still shows this run's tables from "
                                       f"before; clipalign run --out {folder.path} --only noise -p sigmas=0.1,0.3 "
                                       f"-p 'x=a b' re-runs the step in every run, then the synthesis\n")


def test_a_run_shows_its_parameters_before_its_steps():
    """nanoGPT's habit: the configuration in force is shown, not only kept in the run's record (an audit found it
    in record.json alone): the preset and what differs from it, with its source."""
    from clipalign_utils import record
    from clipalign_utils.orchestration.pipeline import parameters_line

    given = record.resolve(None, "smoke", {"epochs": 3, "distance": "cosine", "n_boot": 60})
    assert parameters_line("[sweep 1/2 a] ", given) == (
        "[sweep 1/2 a] parameters: preset smoke with n_boot=60 (given), distance=cosine (given), epochs=3 (given); "
        "every step's values and sources in record.json")
    assert parameters_line("", record.resolve(None, "default", {})) == (
        "parameters: preset default, unchanged; every step's values and sources in record.json")
