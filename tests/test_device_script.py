"""The GPU machine's prepared check (benchmarks/gpu.sh): the wheels scripts/device_wheels.py carries are
what the image lacks, walked through the requirements under the image's Python."""
from __future__ import annotations

import subprocess
import sys
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))

import device_wheels  # noqa: E402


def test_a_package_the_image_holds_is_neither_carried_nor_walked():
    # piq needs torchvision alone: held there, so piq is the one wheel, and torch (torchvision's) is not walked.
    assert device_wheels.to_carry(["piq"], held={"torchvision"}) == {"piq": metadata.version("piq")}
    # Nothing held: torchvision and what it needs (torch, numpy, pillow) are walked and carried.
    walked = device_wheels.to_carry(["piq"], held=set())
    assert {"piq", "torchvision", "torch", "numpy", "pillow"} <= set(walked)


def test_the_carried_set_against_the_image_list():
    held = device_wheels.device_packages()
    assert {"torch", "torchvision", "numpy", "pandas", "matplotlib", "seaborn", "scikit-image", "timm"} <= held
    carry = device_wheels.to_carry()
    # What the pipeline imports that the image lacks, and nothing the image has.
    assert {"open-clip-torch", "piq", "papermill", "ipykernel", "nbclient", "jupyter-client", "pyzmq",
            "ftfy"} <= set(carry)
    assert not set(carry) & held
    # Markers are read for the image's Python 3.12, not this one's: none of these is needed there.
    assert not {"exceptiongroup", "tomli", "appnope"} & set(carry)
    assert all(carry.values())


def test_the_gpu_script_parses_and_stops_without_wheels(tmp_path):
    script = REPO / "benchmarks" / "gpu.sh"
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    # A copy of the checkout without .whl: one line naming the fix, exit 2, nothing run.
    (tmp_path / "benchmarks").mkdir()
    (tmp_path / "benchmarks" / "gpu.sh").write_text(script.read_text())
    done = subprocess.run(["bash", "benchmarks/gpu.sh"], cwd=tmp_path, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "OUT": str(tmp_path / "out")})
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == ["gpu.sh: no wheels in .whl/: run scripts/device_wheels.py here, "
                                                "then carry .whl"]


def _fake_machine(tmp_path: Path, env_check_passes: bool = True) -> tuple[Path, dict]:
    """A copy of gpu.sh beside a carried wheel, with python3 and nvidia-smi stand-ins that log their arguments."""
    (tmp_path / "repo" / "benchmarks").mkdir(parents=True)
    (tmp_path / "repo" / "benchmarks" / "gpu.sh").write_text((REPO / "benchmarks" / "gpu.sh").read_text())
    (tmp_path / "repo" / ".whl").mkdir()
    (tmp_path / "repo" / ".whl" / "x-1-py3-none-any.whl").write_text("")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    check = "" if env_check_passes else 'case "$1" in -c) echo "ModuleNotFoundError: piq"; exit 1;; esac\n'
    (bin_dir / "python3").write_text(f'#!/bin/sh\necho "$@" >> "$CALLS"\n{check}exit 0\n')
    (bin_dir / "nvidia-smi").write_text("#!/bin/sh\necho 'NVIDIA H100, 81559 MiB, 550'\n")
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    (tmp_path / "tmp").mkdir()
    return tmp_path / "repo", {"PATH": f"{bin_dir}:/usr/bin:/bin", "OUT": str(tmp_path / "out"),
                               "CALLS": str(tmp_path / "calls.txt"), "TMPDIR": str(tmp_path / "tmp")}


def test_the_gpu_script_runs_the_parts_named_each_default_run_in_a_new_folder(tmp_path):
    """An audit: a second call on a warm machine resumed the first's default run from its fixed folder (its steps
    skipped, a near-zero time recorded); a part that failed could only be run again with all the others."""
    repo, env = _fake_machine(tmp_path)
    env["COMMIT"] = "abc1234"  # the call says which commit: the device's copy may hold no .git
    for _ in range(2):
        done = subprocess.run(["bash", "benchmarks/gpu.sh", "default"], cwd=repo, env=env, capture_output=True,
                              text=True)
        assert done.returncode == 0, done.stderr
    calls = (tmp_path / "calls.txt").read_text().splitlines()
    runs = [call for call in calls if "clipalign_utils.cli run" in call]
    assert len(runs) == 2 and not any("encoder.py" in call or "real_clip_cost.py" in call for call in calls)
    folders = [call.split("--out ")[1].split()[0] for call in runs]
    assert folders[0] != folders[1] and all(Path(f).parent == tmp_path / "tmp" for f in folders)
    times = (tmp_path / "out" / "times.txt").read_text().splitlines()
    assert len(times) == 2 and all(line.startswith("default: exit 0 in ") for line in times)
    assert (tmp_path / "out" / "device.txt").read_text().startswith("commit abc1234, ")
    # a misspelt part stops before anything is installed or run (it ran nothing, then failed on times.txt)
    done = subprocess.run(["bash", "benchmarks/gpu.sh", "defualt"], cwd=repo, env=env, capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.strip() == "gpu.sh: unknown part defualt (parts: encoder real_clip default)"
    assert (tmp_path / "calls.txt").read_text().splitlines() == calls


def test_the_gpu_script_stops_before_any_part_when_its_environment_fails(tmp_path):
    repo, env = _fake_machine(tmp_path, env_check_passes=False)
    done = subprocess.run(["bash", "benchmarks/gpu.sh"], cwd=repo, env=env, capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == "gpu.sh: the environment check failed (device.txt): no part was run"
    assert "ModuleNotFoundError: piq" in (tmp_path / "out" / "device.txt").read_text()
    assert not (tmp_path / "out" / "times.txt").exists()
    assert not any(".py" in call.split()[0] for call in (tmp_path / "calls.txt").read_text().splitlines())
