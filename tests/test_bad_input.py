"""Bad input through the CLI: one actionable error line naming the file or parameter, exit
status 2, and no metric table left behind."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from fixtures_real import make_geirhos, make_kadid10k, make_tid2013
from scipy.io import savemat
from test_saliency import _jpeg, _points
from test_two_afc import _bapps, _nights

from clipalign_utils import cli, registry
from clipalign_utils.errors import ParameterError

# The table(s) each step writes, from the registry (train writes none).
STEP_TABLE = {step.name: step.tables[0].name if step.tables else None for step in registry.steps()}


def _malformed_mos(tmp_path):
    root = make_tid2013(tmp_path / "tid2013")
    mos = root / "mos_with_names.txt"
    lines = mos.read_text().splitlines()
    lines[2] = "not-a-number i01_08_1.bmp"
    mos.write_text("\n".join(lines) + "\n")
    return "iqa", ["iqa_dataset=tid2013", f"iqa_root={root}"], ["mos_with_names.txt", "line 3"]


def _malformed_dmos(tmp_path):
    root = make_kadid10k(tmp_path / "kadid")
    (root / "dmos.csv").write_text("dist_img,ref_img,dmos,var\nI01_01_01.png,I01.png,high,0.1\n")
    return "iqa", ["iqa_dataset=kadid10k", f"iqa_root={root}"], ["dmos.csv", "line 2"]


def _non_image_in_dataset(tmp_path):
    root = make_geirhos(tmp_path / "geirhos")
    victim = sorted(root.glob("*/*.png"))[1]
    victim.write_bytes(b"this is not a png")
    return "shape", ["cue_conflict_dataset=geirhos", f"cue_conflict_root={root}"], [victim.name]


def _wrong_type(tmp_path):
    return "noise", ["test_per_class=many"], ["test_per_class='many'", "wrong type"]


def _unknown_dataset(tmp_path):
    return "noise", ["noise_dataset=imagenet"], ["noise_dataset='imagenet'", "cifar100"]


def _corrupt_checkpoint(tmp_path, run_dir):
    checkpoint = run_dir / "checkpoints" / "epoch_1.pt"
    checkpoint.unlink()  # a hard link to the shared smoke run's (conftest.smoke_run_copy)
    checkpoint.write_bytes(b"truncated")
    return "shape", [], ["epoch_1.pt"]


def _missing_similarity_root(tmp_path):
    root = tmp_path / "no-such-bapps"
    return "similarity", ["similarity_dataset=bapps", f"similarity_root={root}"], ["similarity_root", str(root)]


def _nights_csv_without_a_column(tmp_path):
    header = "id,left_vote,right_vote,ref_path,left_path,right_path,split,is_imagenet"  # no votes
    folder = _nights(tmp_path, [(0, 3, 2, 5, "test", True), (1, 1, 4, 5, "test", False)], header=header)
    return "similarity", ["similarity_dataset=nights", f"similarity_root={folder}"], ["data.csv", "votes"]


def _judge_out_of_range(tmp_path):
    _bapps(tmp_path / "bapps", subsets=("traditional",), n=2)
    judge = tmp_path / "bapps" / "2afc" / "val" / "traditional" / "judge" / "000001.npy"
    np.save(judge, np.array([1.5]))
    return "similarity", ["similarity_dataset=bapps", f"similarity_root={tmp_path / 'bapps'}"], [str(judge)]


def _mit1003(root):
    rng = np.random.default_rng(0)
    for name, shape in (("i05", (40, 56)), ("i11", (56, 40))):
        _jpeg(root / "ALLSTIMULI" / f"{name}.jpeg", rng.integers(0, 255, (*shape, 3), dtype=np.uint8))
        _jpeg(root / "ALLFIXATIONMAPS" / f"{name}_fixPts.jpg", _points(shape, 12, shape[0]).astype(np.uint8) * 255)
        _jpeg(root / "ALLFIXATIONMAPS" / f"{name}_fixMap.jpg", rng.integers(0, 255, shape, dtype=np.uint8))
    return root


def _missing_fixation_map(tmp_path):
    root = _mit1003(tmp_path / "mit1003")
    (root / "ALLFIXATIONMAPS" / "i11_fixMap.jpg").unlink()
    return "saliency", ["saliency_dataset=mit1003", f"saliency_root={root}"], ["i11_fixMap.jpg"]


def _unreadable_mat(tmp_path):
    base = tmp_path / "cat2000" / "trainSet"
    rng = np.random.default_rng(0)
    for category, name in (("Action", "001"), ("Art", "002")):
        _jpeg(base / "Stimuli" / category / f"{name}.jpg", rng.integers(0, 255, (27, 48, 3), dtype=np.uint8))
        _jpeg(base / "FIXATIONMAPS" / category / f"{name}.jpg", rng.integers(0, 255, (27, 48), dtype=np.uint8))
        (base / "FIXATIONLOCS" / category).mkdir(parents=True, exist_ok=True)
        savemat(base / "FIXATIONLOCS" / category / f"{name}.mat", {"fixLocs": _points((27, 48), 9, 3).astype(np.uint8)})
    (base / "FIXATIONLOCS" / "Art" / "002.mat").write_bytes(b"not a mat file at all")
    return "saliency", ["saliency_dataset=cat2000", f"saliency_root={base.parent}"], ["002.mat"]


CASES = [_malformed_mos, _malformed_dmos, _non_image_in_dataset, _wrong_type, _unknown_dataset, _corrupt_checkpoint,
         _missing_similarity_root, _nights_csv_without_a_column, _judge_out_of_range, _missing_fixation_map,
         _unreadable_mat]


@pytest.mark.parametrize("case", CASES, ids=[c.__name__.strip("_") for c in CASES])
def test_bad_input_gives_one_line_and_no_table(case, smoke_run_copy, tmp_path, capsys):
    if case is _corrupt_checkpoint:
        step, params, expected = case(tmp_path, smoke_run_copy)
    else:
        step, params, expected = case(tmp_path)
    argv = ["run", "--preset", "smoke", "--out", str(smoke_run_copy), "--only", step]
    for param in params:
        argv += ["-p", param]
    assert cli.main(argv) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("clipalign: error")]
    assert len(errors) == 1, errors
    for fragment in expected:
        assert fragment in errors[0], errors[0]
    assert not (smoke_run_copy / "metrics" / f"{STEP_TABLE[step]}.csv").exists()


def test_empty_run_dir_is_named(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli.main(["run", "--preset", "smoke", "--out", str(empty), "--only", "iqa"]) == 2
    (error,) = capsys.readouterr().err.strip().splitlines()  # one line, before any kernel or page
    assert "has no checkpoints/ folder" in error and str(empty) in error
    assert list(empty.iterdir()) == []  # no notebooks/, no failed page, no metrics/


def test_bad_input_is_answered_without_importing_torch(tmp_path):
    # The command line checks its input before anything heavy loads: torch, open_clip and piq take seconds.
    probe = ("import sys\nfrom clipalign_utils import cli\n"
             f"code = cli.main(['run', '--preset', 'smoke', '--out', {str(tmp_path)!r}, '--only', 'iqa'])\n"
             "print(code, sorted(m for m in ('torch', 'open_clip', 'piq') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["2", "[]"]


def test_a_dataset_folder_is_read_where_the_command_was_given_and_a_missing_one_refused_at_once(
        tmp_path, monkeypatch, capsys):
    """-p <task>_root=RELATIVE means relative to the command's working directory (the pages' kernels run in the
    repository's root); a folder that does not exist is one line before anything is made or a kernel starts."""
    from clipalign_utils.orchestration.cli import _parse_overrides

    (tmp_path / "data" / "tid2013").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "data")
    assert _parse_overrides(["iqa_root=tid2013", "epochs=2", "saliency_root="]) == {
        "iqa_root": str(tmp_path / "data" / "tid2013"), "epochs": "2", "saliency_root": ""}
    out = tmp_path / "run"
    assert cli.main(["run", "--preset", "smoke", "--out", str(out), "-p", "iqa_dataset=tid2013",
                     "-p", "iqa_root=tid2103"]) == 2
    (error,) = capsys.readouterr().err.strip().splitlines()
    assert error == (f"clipalign: error: -p iqa_root=tid2103: {tmp_path / 'data' / 'tid2103'} does not exist; point "
                     f"it at the dataset's folder in its official layout (clipalign fetch DATASET --to DIR makes one)")
    assert not out.exists()


# Each: the command's arguments after "clipalign", and what its one error line must say. None of them may make
# the --out folder: the values are checked before anything is made (an independent audit found each of these
# failing after the run's folder, a trained run or a whole sweep run, or with a traceback).
BEFORE_ANYTHING = [
    (["run", "--preset", "smoke", "-p", "image_size=7"], "image_size=7 does not fit model tiny"),
    (["run", "--preset", "smoke", "-p", "model=vit-tiny", "-p", "image_size=7"],
     "image_size must be an integer from 16 to 1024, got 7"),
    (["run", "--preset", "smoke", "-p", "model=vit-tiny", "-p", "image_size=100000"],
     "image_size must be an integer from 16 to 1024, got 100000"),
    # an audit: the observer was checked by the IQA step, after training (a sweep ran a whole setting first)
    (["run", "--preset", "smoke", "-p", "reference_observer=x"],
     "parameter reference_observer='x': choose one of haarpsi, ms_ssim, ssim, mdsi"),
    (["sweep", "--preset", "smoke", "-p", "reference_observer=ssim,x"], "parameter reference_observer='x'"),
    # an empty --preset was taken for none (the three-seed default run started)
    (["run", "--preset", ""], "unknown preset ''"),
    (["run", "--preset", "smoke", "--only", "iqa,iqa"], "--only 'iqa,iqa' names iqa twice"),
    (["run", "--preset", "smoke", "--only", "iqa,"], "--only 'iqa,' has an empty name"),
    (["experiment", "quality", "--preset", "smoke", "--only-sweeps", "partial,partial"],
     "--only-sweeps 'partial,partial' names partial twice"),
    (["experiment", "quality", "--preset", "smoke", "--only-sweeps", "partial,"], "--only-sweeps 'partial,' has an "
                                                                                 "empty name"),
    (["run", "--preset", "smoke", "-p", "texture_correlation=2"], "texture_correlation must lie in [0, 1]"),
    (["run", "--preset", "smoke", "-p", "texture_scale=0"], "texture_scale must be > 0"),
    (["run", "--preset", "smoke", "-p", "texture_scale=1e6"], "texture_scale must lie in [0.05, 8]"),
    (["run", "--preset", "smoke", "-p", "texture_scale=1e-6"], "texture_scale must lie in [0.05, 8]"),
    (["run", "--preset", "smoke", "-p", "model=nosuch"], "unknown model 'nosuch'"),
    (["run", "--preset", "smoke", "-p", "lr=-1"], "parameter lr must be positive, got -1.0"),
    (["run", "--preset", "smoke", "-p", "warmup=-5"], "parameter warmup must be >= 0, got -5"),
    (["run", "--preset", "smoke", "-p", "weight_decay=-1"], "parameter weight_decay must be >= 0"),
    (["run", "--preset", "smoke", "-p", "seed=-1"], "parameter seed must be >= 0 and below 2**64 (torch's generator), "
                                                   "got -1"),
    (["run", "--preset", "smoke", "--seeds", "-1"], "parameter seed must be >= 0 and below 2**64"),
    # torch's generator takes no seed of 2**64 (an audit: it failed in the training page, its folder made)
    (["run", "--preset", "smoke", "-p", "seed=18446744073709551616"], "got 18446744073709551616"),
    (["run", "--preset", "smoke", "-p", "eval_seed=18446744073709551616"], "parameter eval_seed must be >= 0 and below"),
    # two early steps named alike (a name keeps 4 decimals): the later would overwrite the earlier, epoch_0 included
    (["run", "--preset", "smoke", "-p", "samples_per_epoch=100004", "-p", "batch_size=2", "-p",
      "early_checkpoints=0.00003"], "early_checkpoints=3e-05: with 50002 optimiser steps an epoch, steps 0 and 2 "
                                   "would both be saved as epoch_0.pt (a name keeps 4 decimals)"),
    (["run", "--preset", "smoke", "-p", "samples_per_epoch=100004", "-p", "batch_size=2", "-p",
      "early_checkpoints=0.2469,0.24692"], "steps 12345 and 12346 would both be saved as epoch_0.2469.pt"),
    (["run", "--preset", "smoke", "-p", "sigmas=-0.1"], "parameter sigmas: every noise level must be >= 0"),
    (["run", "--preset", "smoke", "-p", "sigmas="], "give at least one noise level above 0"),
    (["run", "--preset", "smoke", "-p", "sigmas=0"], "give at least one noise level above 0"),
    (["run", "--preset", "smoke", "-p", "test_per_class=0"], "parameter test_per_class must be positive, got 0"),
    # the zero-shot prompts: refused before training (an audit found them refused by the shape step, after it)
    (["run", "--preset", "smoke", "-p", "prompt_templates=nobraces"], "parameter prompt_templates='nobraces': use"),
    (["run", "--preset", "smoke", "-p", "prompt_templates=a {} {x}."], "no other brace"),
    (["run", "--preset", "smoke", "-p", "prompt_templates=a {} }."], "no other brace"),
    # a timm image tower has no blocks layers=all reads: before training (an audit: refused by the IQA step, after it)
    (["run", "--preset", "smoke", "-p", "layers=all", "-p", "model=convnext_base"],
     "parameter layers=all: model convnext_base's image tower (timm's) has no blocks clipalign reads"),
    (["run", "--preset", "smoke", "-p", "n_perm=-1"], "parameter n_perm must be positive, got -1"),
    (["run", "--preset", "smoke", "-p", "alphas="], "parameter alphas: give at least one α"),
    (["run", "--preset", "smoke", "-p", "preset=full"], "-p preset: the command sets it from --preset"),
    (["run", "--preset", "smoke", "-p", "run_dir=/tmp"], "-p run_dir: the command sets it from --out"),
    (["run", "--preset", "smoke", "-p", "auto_train=maybe"], "-p auto_train: a notebook's own parameter"),
    (["run", "--preset", "smoke", "--only", ""], "--only '': name a step"),
    # a dataset's folder without its dataset: the embedded set would have been measured in its place
    (["run", "--preset", "smoke", "-p", "iqa_root=."],
     "is read only by a real dataset, but iqa_dataset is 'embedded': give iqa_dataset=tid2013 or kadid10k, or "
     "leave iqa_root out"),
    (["sweep", "--preset", "smoke", "-p", "saliency_root=.", "-p", "lr=0.001,0.002"],
     "but saliency_dataset is 'embedded': give saliency_dataset=mit1003 or cat2000"),
    (["run", "--preset", "smoke", "-p", "similarity_split=val"],
     "parameter similarity_split='val': the embedded set has one split, test"),
    (["run", "--preset", "smoke", "-p", "similarity_protocol=votes6"],
     "parameter similarity_protocol=votes6 applies to nights only"),
    (["sweep", "--preset", "smoke", "-p", "texture_correlation=0.5,2"], "texture_correlation must lie in [0, 1]"),
    (["experiment", "quality", "--preset", "smoke", "-p", "texture_scale=0"], "texture_scale must be > 0"),
    # a second audit: values every range check let through, and checks that came after training
    (["run", "--preset", "smoke", "-p", "lr=inf"], "parameter lr='inf' must be a finite number"),
    (["run", "--preset", "smoke", "-p", "weight_decay=nan"], "parameter weight_decay='nan' must be a finite number"),
    (["run", "--preset", "smoke", "-p", "texture_scale=inf"], "parameter texture_scale='inf' must be a finite number"),
    (["run", "--preset", "smoke", "-p", "sigmas=nan,0.1"], "parameter sigmas='nan' must be a finite number"),
    (["run", "--preset", "smoke", "-p", "sigmas=0.1,,0.2"], "parameter sigmas='0.1,,0.2' has an empty item"),
    (["run", "--preset", "smoke", "-p", "image_size=24"], "image_size=24 does not fit model tiny"),
    (["run", "--preset", "smoke", "-p", "image_size=63"], "use a multiple of 32, e.g. 64"),
    (["run", "--preset", "smoke", "-p", "batch_size=1", "-p", "samples_per_epoch=2"],
     "parameter batch_size must be at least 2"),
    (["run", "--preset", "smoke", "-p", "cue_conflict_per_pair=0"], "parameter cue_conflict_per_pair must be >= 1"),
    (["run", "--preset", "smoke", "-p", "saliency_n_images=0"], "the embedded set draws its images: give "
                                                                 "saliency_n_images >= 1"),
    (["run", "--preset", "smoke", "-p", "epochs=2", "-p", "epochs=3"], "-p epochs is given twice (2 and 3)"),
    (["sweep", "--preset", "smoke", "-p", "texture_correlation=0.5,,0.9"],
     "-p texture_correlation='0.5,,0.9' has an empty value"),
    (["experiment", "quality", "--preset", "smoke", "-p", "quality_variation=0.5"],
     "-p quality_variation: the quality experiment sets it per sweep (variation, partial, heldout)"),
    (["experiment", "quality", "--preset", "smoke", "--only-sweeps", ""], "--only-sweeps '': name a sweep"),
    (["run", "--preset", "full", "-p", "texture_correlation=0.9"],
     "-p texture_correlation: the quality experiment sets it per sweep (texture_control)"),
    (["run", "--preset", "full", "-p", "epochs=3"], "-p epochs: the full preset's drivers sweep varies it (12,24)"),
    (["run", "--preset", "smoke", "-p", "=3"], "-p '=3': write parameters as name=value"),
    # options of --checkpoints alone: without it, the whole pipeline would run and ignore them
    (["run", "--preset", "smoke", "--at-epochs", "1"], "--at-epochs and --keep-weights go with --checkpoints SOURCE"),
    (["run", "--preset", "smoke", "--keep-weights", "all"], "--at-epochs and --keep-weights go with --checkpoints"),
]


@pytest.mark.parametrize("argv, says", BEFORE_ANYTHING, ids=[" ".join(a[3:] if a[0] == "run" else a[:1] + a[-2:])
                                                             for a, _ in BEFORE_ANYTHING])
def test_a_bad_value_is_refused_before_any_folder_is_made(argv, says, tmp_path, capsys):
    out = tmp_path / "out"
    assert cli.main(argv + ["--out", str(out)]) == 2
    (error,) = capsys.readouterr().err.strip().splitlines()
    assert error.startswith("clipalign: error: ") and says in error, error
    assert not out.exists()


def test_an_out_folder_that_cannot_be_made_is_one_line(tmp_path, capsys):
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    cases = [("", "--out '': give a folder"), (str(a_file), f"{a_file} is a file; give a folder"),
             (str(a_file / "sub"), f"{a_file} is a file, so no folder can be made under it"),
             ("/proc/clipalign-nothing", "no folder can be made in /proc")]
    for out, says in cases:
        for command in (["run", "--preset", "smoke"], ["sweep", "--preset", "smoke", "-p", "distance=cosine,euclidean"],
                        ["experiment", "quality", "--preset", "smoke"]):
            assert cli.main(command + ["--out", out]) == 2
            (error,) = capsys.readouterr().err.strip().splitlines()
            assert says in error, (command, error)
    assert cli.main(["fetch", "kadid10k", "--to", str(a_file / "sub")]) == 2
    assert "--to" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]  # the probe for a makeable folder went too


def test_an_existing_out_folder_this_user_cannot_write_is_refused_before_anything_runs(tmp_path, monkeypatch,
                                                                                        capsys):
    """An audit: an existing read-only --out passed the checks (only a folder still to be made was probed), the
    run printed its first step, then failed naming an internal temporary file. The probe is faked (the tests may
    run as root, whom no mode bits stop): the folder refuses what is made in it, as a read-only one does."""
    import errno
    import tempfile

    from clipalign_utils.orchestration import book, pipeline

    read_only = tmp_path / "ro"
    run = read_only / "r"
    (run / "notebooks").mkdir(parents=True)  # a run made before, to re-run a step of (--only)
    made_in = tempfile.mkdtemp

    def mkdtemp(*args, dir=None, **kwargs):
        if dir is not None and Path(dir) in (read_only, run):
            raise PermissionError(errno.EACCES, "Permission denied", str(dir))
        return made_in(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkdtemp", mkdtemp)
    monkeypatch.setattr(pipeline, "run_pipeline", lambda *args, **kwargs: pytest.fail("the run began"))
    monkeypatch.setattr(book, "build_book", lambda *args, **kwargs: pytest.fail("the book build began"))
    advice = "is read-only to this user (Permission denied); make it writable, or copy it somewhere writable and " \
             "give that folder"
    commands = ((["run", "--preset", "smoke", "--out", str(read_only)], f"--out {read_only}", read_only),
                (["run", "--out", str(run), "--only", "iqa"], f"--out {run}", run),
                (["book", str(run)], f"clipalign book {run}", run))
    for argv, named, folder in commands:
        assert cli.main(argv) == 2, argv
        captured = capsys.readouterr()
        assert captured.err.strip() == f"clipalign: error: {named}: {folder} {advice}"
        assert captured.out == ""  # no step began ("[1/7] train: …")
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == ["ro", "ro/r", "ro/r/notebooks"]


@pytest.mark.parametrize("option, address", [("--url", "notaurl"), ("--url", "http://[::1"), ("--url", "file:///etc"),
                                             ("--mirror", "ftp://example.org"), ("--mirror", "https://")])
def test_fetch_refuses_an_address_it_cannot_download_from(option, address, tmp_path, capsys):
    assert cli.main(["fetch", "kadid10k", "--to", str(tmp_path / "data"), option, address]) == 2
    (error,) = capsys.readouterr().err.strip().splitlines()
    assert f"{option} {address!r}: give the http(s) address" in error
    assert not (tmp_path / "data").exists()


def test_argument_errors_are_one_line_too(capsys):
    for argv, says in ((["run", "--seeds", "a", "--out", "x"], "argument --seeds: invalid int value: 'a'"),
                       (["run", "--out", "x", "--only"], "argument --only: expected one argument"),
                       (["experiment", "nosuch", "--out", "x"], "invalid choice: 'nosuch'")):
        with pytest.raises(SystemExit) as exited:
            cli.main(argv)
        assert exited.value.code == 2
        (error,) = capsys.readouterr().err.strip().splitlines()
        assert says in error and error.endswith("--help)"), error


def test_an_out_folder_of_the_users_own_or_of_another_kind_is_refused_as_it_is(tmp_path, capsys):
    """A command writes notebooks/, metrics/, record.json… into --out: a folder clipalign did not make (the
    repository itself, in an audit: its notebooks were overwritten) is refused, and so is a folder of another kind
    (a sweep, more seeds or an experiment inside a finished run), both before anything is written."""
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("my notes")
    (mine / "notebooks").mkdir()  # one of clipalign's names, beside the user's file
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    cases = [(["run", "--preset", "smoke", "--out", str(mine)],
              f"--out {mine}: {mine} holds other files (notebooks, notes.txt) and no clipalign run; give a new or "
              f"empty folder"),
             (["sweep", "--preset", "smoke", "--out", str(run), "-p", "texture_correlation=0.5,0.9"],
              f"--out {run} is a run (checkpoints/); clipalign sweep makes a sweep there: give a new folder"),
             (["run", "--preset", "smoke", "--out", str(run), "--seeds", "0", "1"],
              f"--out {run} is a run (checkpoints/); clipalign run makes a folder of runs there: give a new folder"),
             (["experiment", "quality", "--preset", "smoke", "--out", str(run)],
              f"--out {run} is a run (checkpoints/); clipalign experiment makes an experiment there"),
             (["book", str(mine / "notes.txt")], "that is a file; give the folder a clipalign run"),
             (["fetch", "kadid10k", "--to", str(tmp_path / "data"), "--sha256", ""], "--sha256 '': give 1 SHA-256")]
    for argv, says in cases:
        assert cli.main(argv) == 2
        (error,) = capsys.readouterr().err.strip().splitlines()
        assert error.startswith("clipalign: error: ") and says in error, error
    assert sorted(p.name for p in mine.iterdir()) == ["notebooks", "notes.txt"]
    assert sorted(p.name for p in run.iterdir()) == ["checkpoints"] and not (tmp_path / "data").exists()


def test_a_folder_clipalign_began_is_its_own(tmp_path):
    """A command stopped before its records leaves only clipalign's names (a run's notebooks/, a runs folder's
    first run): the next command may carry on there."""
    from clipalign_utils.orchestration.cli import check_out_folder

    began = tmp_path / "began"
    (began / "tiny-seed0" / "notebooks").mkdir(parents=True)
    (began / ".02_iqa_alignment.outputs-before").mkdir()
    check_out_folder(str(began), "run", "runs")
    check_out_folder(str(tmp_path / "new"), "run", "run")
    (began / "tiny-seed0" / "draft.txt").write_text("x")  # … but not one holding the user's files
    with pytest.raises(ParameterError, match=r"holds other files \(tiny-seed0\) and no clipalign run"):
        check_out_folder(str(began), "run", "runs")


def test_training_never_touches_checkpoints_clipalign_did_not_train(tmp_path, capsys):
    """An open_clip_train run (params.txt, epoch_N.pt, no train_params.json) given to --only train: resuming it
    would rewrite the checkpoint before the latest without its optimizer state, then fail on the latest (no
    'step' key) and advise deleting it (an audit lost optimizer state so). Refused in one line naming what to
    run instead, every file as it was; the trainer itself refuses too (a training page run by hand)."""
    from clipalign_utils import config, train
    from clipalign_utils.errors import CheckpointError

    run = tmp_path / "logs" / "myrun"
    (run / "checkpoints").mkdir(parents=True)
    files = {run / "params.txt": b"model: RN50\nforce_image_size: 32\nseed: 0\n",
             run / "checkpoints" / "epoch_1.pt": b"\x80 an open_clip_train checkpoint, epoch 1",
             run / "checkpoints" / "epoch_2.pt": b"\x80 an open_clip_train checkpoint, epoch 2"}
    for path, data in files.items():
        path.write_bytes(data)
    assert cli.main(["run", "--preset", "smoke", "--out", str(run), "--only", "train"]) == 2
    (error,) = capsys.readouterr().err.strip().splitlines()
    assert f"{run / 'checkpoints'} holds checkpoints clipalign did not train" in error
    assert f"clipalign run --out {run} --only iqa,shape,noise,similarity,saliency,tradeoff" in error
    with pytest.raises(CheckpointError, match="holds checkpoints clipalign did not train"):
        train.train(run, config.resolve("smoke"), progress=False)
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == files


def test_a_value_option_given_twice_is_refused(tmp_path, capsys):
    """An audit: --preset smoke --preset default ran the default preset, --out a --out b wrote into b."""
    for argv, says in [(["run", "--preset", "smoke", "--preset", "default", "--out", str(tmp_path / "a")],
                        "--preset is given twice (smoke and default): give it once"),
                       (["sweep", "--out", str(tmp_path / "a"), "-p", "lr=1,2", "--out", str(tmp_path / "b")],
                        f"--out is given twice ({tmp_path / 'a'} and {tmp_path / 'b'})"),
                       (["run", "--seeds", "0", "1", "--seeds", "2", "--out", str(tmp_path / "a")],
                        "--seeds is given twice (0 1 and 2)")]:
        with pytest.raises(SystemExit) as stopped:
            cli.main(argv)
        (error,) = capsys.readouterr().err.strip().splitlines()
        assert stopped.value.code == 2 and says in error and error.startswith("clipalign "), error
    assert list(tmp_path.iterdir()) == []


def test_another_preset_for_a_runs_steps_is_refused(smoke_pipeline, capsys):
    """An audit: --preset default --only iqa on a smoke run measured iqa at the default's n_boot, its record then
    mixing two presets' values, and said nothing."""
    before = (smoke_pipeline / "record.json").read_bytes()
    assert cli.main(["run", "--preset", "default", "--out", str(smoke_pipeline), "--only", "iqa"]) == 2
    (error,) = capsys.readouterr().err.strip().splitlines()
    assert error == (f"clipalign: error: --preset default: {smoke_pipeline} was made with --preset smoke, whose values "
                     f"its steps resolve against; leave --preset out (-p sets a step's values), or give another --out")
    assert (smoke_pipeline / "record.json").read_bytes() == before
    assert not list((smoke_pipeline / "notebooks").glob("*.failed.ipynb"))
    # under --nproc, before torchrun's ranks measure with it (a review: refused only once they had)
    assert cli.main(["run", "--preset", "default", "--out", str(smoke_pipeline), "--only", "iqa", "--nproc", "2"]) == 2
    (error,) = capsys.readouterr().err.strip().splitlines()
    assert "was made with --preset smoke" in error
    assert (smoke_pipeline / "record.json").read_bytes() == before


def test_without_the_books_sources_a_command_that_ends_with_the_book_stops_before_it_starts(tmp_path, monkeypatch,
                                                                                               capsys):
    """Installed from a wheel or git, the package holds no _config.yml, _toc.yml or book/ (an audit's smoke run
    trained and measured for minutes, then stopped with a traceback at the book): the command asks for
    --no-book before anything is made; a step re-run, which builds no book, is not stopped."""
    from clipalign_utils.orchestration import book

    monkeypatch.setattr(book, "REPO_ROOT", tmp_path / "site-packages")
    out = tmp_path / "run"
    for argv in (["run", "--preset", "smoke", "--out", str(out)], ["sweep", "--preset", "smoke", "-p", "epochs=1,2",
                                                                     "--out", str(out)]):
        assert cli.main(argv) == 2
        (error,) = capsys.readouterr().err.strip().splitlines()
        assert error.startswith("clipalign: error: the book is built from a checkout's _config.yml, _toc.yml, book, "
                                "pyproject.toml, which the installed package does not hold: give --no-book to run "
                                "without it, or clone ") and error.endswith(f" and run clipalign {argv[0]} from that "
                                                                             "checkout")
        assert not out.exists()
    (tmp_path / "made").mkdir()
    assert cli.main(["book", str(tmp_path / "made")]) == 2
    (error,) = capsys.readouterr().err.strip().splitlines()
    assert "installed package does not hold: clone " in error and error.endswith("run clipalign book from that checkout")
    from argparse import Namespace

    from clipalign_utils.orchestration.cli import _ends_with_book

    def run(**given):
        return Namespace(**{"command": "run", "no_book": False, "only": None, "checkpoints": None, **given})

    assert _ends_with_book(run()) and _ends_with_book(run(command="sweep")) and _ends_with_book(run(command="book"))
    assert not any(_ends_with_book(run(**given)) for given in (
        {"no_book": True}, {"only": "iqa"}, {"checkpoints": "laion-scaling:x"}, {"command": "fetch"}))


def test_clipalign_book_on_a_folder_that_does_not_exist_is_one_line(tmp_path, capsys):
    assert cli.main(["book", str(tmp_path / "nope")]) == 2
    (error,) = capsys.readouterr().err.strip().splitlines()
    assert error == (f"clipalign: error: clipalign book {tmp_path / 'nope'}: no such folder; give the folder a "
                     f"clipalign run, sweep or experiment wrote (it holds notebooks/)")
