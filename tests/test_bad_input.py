"""Bad input through the CLI: one actionable error line naming the file or parameter, exit
status 2, and no metric table left behind."""
from __future__ import annotations

import pytest
from fixtures_real import make_geirhos, make_kadid10k, make_tid2013

from clipalign_utils import cli

STEP_TABLE = {"iqa": "iqa", "shape": "shape_bias", "noise": "noise", "train": None}


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
    (run_dir / "checkpoints" / "epoch_1.pt").write_bytes(b"truncated")
    return "shape", [], ["epoch_1.pt"]


CASES = [_malformed_mos, _malformed_dmos, _non_image_in_dataset, _wrong_type, _unknown_dataset, _corrupt_checkpoint]


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
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert "has no checkpoints/ folder" in error and str(empty) in error
    assert not (empty / "metrics").exists()
