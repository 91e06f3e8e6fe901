"""Generated evaluation sets kept on disk, so that a step re-run on a run, and the other seeds' runs of a
command (which share ``eval_seed`` and so their evaluation sets), read the sets instead of drawing them
again. Drawing the embedded sets, with their reference observer's scores and judges' panels, is most of a
re-run's cost once the embeddings are cached.

One file per set of inputs, ``<cache>/evaluation/<step>-<key>.pkl``: the key hashes the step, the
resolved parameters but those no set is drawn from (the training ``seed``: evaluation sets are drawn from
``eval_seed``; and what only the measurement reads: ``distance``, ``layers``, ``n_boot``, ``device``,
``eval_batch_size``;
``tests/test_record.py`` loads every step's sets without them), the run's input size and the package's
source, so any change to one of these draws the sets again, and a cached set is what the code would draw
now. ``<cache>`` is ``$CLIPALIGN_CACHE_DIR``, else ``$XDG_CACHE_HOME/clipalign``, else
``~/.cache/clipalign``; the least recently used files go once it holds more than ``$CLIPALIGN_CACHE_GB``
(default 2) GB. Only generated sets are kept: a step reading a real dataset from its root (a
``*_dataset`` other than ``embedded``) loads it every time, since the files under the root may change.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import pickle
from pathlib import Path
from typing import Any, Callable

from ..io import atomic_write

# Parameters that do not reach the evaluation sets (see the module's docstring): a step re-run with another
# distance reads the sets it drew before.
NOT_IN_KEY = ("seed", "distance", "layers", "n_boot", "device", "eval_batch_size")


def cache_root() -> Path:
    if os.environ.get("CLIPALIGN_CACHE_DIR"):
        return Path(os.environ["CLIPALIGN_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "clipalign"


@functools.lru_cache(maxsize=1)
def source_hash() -> str:
    """sha256 over the package's source (paths and contents): its Python and the model configs it registers with
    open_clip. Any change to them is a new key, here and in the embedding cache (``encoder.Encoder``)."""
    package = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in source_files(package):
        digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def source_files(package: Path) -> list[Path]:
    """What :func:`source_hash` reads: the package's Python files and its model configs."""
    return sorted([*package.rglob("*.py"), *package.glob("model_configs/*.json")])


# The libraries that draw the embedded sets (Pillow's JPEG encoder, scikit-image's photos and filters, scipy's
# blurs, piq's reference observers, numpy's generators): an upgrade may draw other pixels from the same seed.
DRAWN_WITH = ("numpy", "pillow", "scipy", "scikit-image", "piq", "torch")


@functools.lru_cache(maxsize=1)
def library_versions() -> dict[str, str | None]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in DRAWN_WITH:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found


def generated_only(params: dict) -> bool:
    """Whether every dataset the parameters name is an embedded (generated) one."""
    return all(value == "embedded" for name, value in params.items() if name.endswith("_dataset"))


def key(step: str, params: dict, image_size: int | None) -> str:
    inputs = {name: value for name, value in dict(params).items() if name not in NOT_IN_KEY}
    described = json.dumps({"step": step, "params": inputs, "image_size": image_size, "source": source_hash(),
                            "libraries": library_versions()}, sort_keys=True, default=repr)
    return hashlib.sha256(described.encode()).hexdigest()


def cached(step: str, run: Any, params: dict, load: Callable[[], Any]) -> Any:
    """``load()``, or what an earlier call with the same key kept; a bare stand-in for a run (no run
    directory) and real datasets always load."""
    if getattr(run, "run_dir", None) is None or not generated_only(params):
        return load()
    wanted = key(step, params, getattr(run, "image_size", None))
    path = cache_root() / "evaluation" / f"{step}-{wanted[:32]}.pkl"
    if path.exists():
        try:
            with path.open("rb") as handle:
                kept = pickle.load(handle)
            if kept.get("key") == wanted:
                os.utime(path)  # recently used
                return kept["data"]
        except Exception:  # unreadable, or written by another version of a class: draw again and replace it
            pass
    data = load()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda tmp: tmp.write_bytes(pickle.dumps({"key": wanted, "data": data},
                                                                    protocol=pickle.HIGHEST_PROTOCOL)))
        prune(path.parent)
    except OSError:  # a read-only or full cache costs time, not results
        pass
    return data


def prune(folder: Path, limit_gb: float | None = None) -> None:
    """Delete the least recently used files until ``folder`` holds at most ``limit_gb`` GB."""
    limit = float(os.environ.get("CLIPALIGN_CACHE_GB", 2) if limit_gb is None else limit_gb) * 1e9
    files = sorted(folder.glob("*.pkl"), key=lambda p: p.stat().st_mtime)
    total = sum(p.stat().st_size for p in files)
    for path in files[:-1]:  # the newest stays, however large
        if total <= limit:
            break
        total -= path.stat().st_size
        path.unlink(missing_ok=True)
