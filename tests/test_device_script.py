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
