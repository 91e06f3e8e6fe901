"""Wheels for the packages the pipeline needs that the device machine's image lacks, into .whl/.

The GPU machine lent through the session's `device` tool has torch, numpy, pandas, matplotlib, seaborn,
scikit-image, timm and more (benchmarks/device_packages.txt), but not open_clip, piq, papermill or the
Jupyter kernel, and it cannot download. This walks the runtime requirements of this checkout's
environment (.venv, the versions the project is tested with), stops at what the image holds, and
downloads the rest for the image's Python (3.12, manylinux x86_64), without dependencies: the walk has
named them. The folder is carried to the machine (`carry: [".whl"]`) and benchmarks/gpu.sh installs it.

    .venv/bin/python scripts/device_wheels.py          # then: run(command="bash benchmarks/gpu.sh", carry=[".whl"])
"""
from __future__ import annotations

import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# What the pipeline imports at run time (pyproject's dependencies, less the book's: the device run has no book).
ROOTS = ["open_clip_torch", "piq", "papermill", "ipykernel", "jupytext", "submitit", "webdataset",
         "braceexpand", "psutil", "huggingface_hub", "requests", "tqdm", "seaborn", "scikit-image", "scipy", "natsort"]
PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64",
             "manylinux1_x86_64"]


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def device_packages(path: Path = REPO / "benchmarks" / "device_packages.txt") -> set[str]:
    return {normalized(line) for line in path.read_text().split("\n") if line.strip() and not line.startswith("#")}


# The image's Python, for the requirements' markers.
DEVICE_PYTHON = {"python_version": "3.12", "python_full_version": "3.12.3", "implementation_name": "cpython",
                 "platform_python_implementation": "CPython", "sys_platform": "linux", "platform_system": "Linux",
                 "platform_machine": "x86_64", "os_name": "posix", "extra": ""}


def to_carry(roots=ROOTS, held: set[str] | None = None) -> dict[str, str]:
    """{name: version} of the requirements reachable from ``roots`` in this environment, under the image's
    Python, that ``held`` lacks. A package the image holds is not walked further (its own requirements are
    met there). Raises if one to carry is not installed here (a requirement of Python 3.12 alone)."""
    from packaging.requirements import Requirement

    held = device_packages() if held is None else held
    versions, stack = {}, [normalized(root) for root in roots]
    while stack:
        name = stack.pop()
        if name in versions:
            continue
        versions[name] = None if name in held else metadata.version(name)
        if name in held:
            continue
        for line in metadata.requires(name) or []:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate(DEVICE_PYTHON):
                stack.append(normalized(requirement.name))
    return {name: version for name, version in sorted(versions.items()) if name not in held}


def main() -> int:
    carry = to_carry()
    folder = REPO / ".whl"
    exclude = REPO / ".git" / "info" / "exclude"  # never committed, nor copied by the device tool unless carried
    if exclude.parent.is_dir() and "/.whl/" not in (exclude.read_text().split() if exclude.exists() else []):
        with exclude.open("a") as handle:
            handle.write("/.whl/\n")
    command = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "--python-version",
               "3.12", "--implementation", "cp", "-d", str(folder)]
    for platform in PLATFORMS:
        command += ["--platform", platform]
    subprocess.run(command + [f"{name}=={version}" for name, version in carry.items()], check=True)
    size = sum(path.stat().st_size for path in folder.glob("*.whl")) / 2**20
    print(f"{len(carry)} wheels in {folder} ({size:.0f} MiB; the device tool carries up to 64 MiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
