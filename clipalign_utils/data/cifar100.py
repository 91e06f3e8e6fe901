"""CIFAR-100 test split in its official "python version" layout.

    <parent>/cifar-100-python/test     pickle: data (N×3072 uint8: R, G, B planes of 32×32),
                                               fine_labels, coarse_labels, filenames, batch_label
    <parent>/cifar-100-python/meta     pickle: fine_label_names, coarse_label_names

Both pickles were written by Python 2, hence ``encoding="latin1"``; a copy re-saved by Python 3 with bytes
keys (``b"data"``) reads the same. ``root`` may be ``cifar-100-python`` itself or its parent.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from clipalign_utils.data.roots import release_folder
from clipalign_utils.errors import DatasetError
from clipalign_utils.prose import plural


def load_cifar100(root) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Return (images uint8 (N, 32, 32, 3), fine labels int64 (N,), class names).

    Class names have '_' replaced by ' ' ("maple_tree" → "maple tree") so they read
    naturally in zero-shot prompts.
    """
    folder = _find_folder(root)
    test_path, meta_path = folder / "test", folder / "meta"
    test = _load_pickle(test_path, ("data", "fine_labels"))
    meta = _load_pickle(meta_path, ("fine_label_names",))

    try:
        data = np.asarray(test["data"], dtype=np.uint8)
        labels = np.asarray(test["fine_labels"], dtype=np.int64)
        names = [(name.decode("latin1") if isinstance(name, bytes) else str(name)).replace("_", " ")
                 for name in meta["fine_label_names"]]
    except (TypeError, ValueError, OverflowError) as exc:
        raise DatasetError(f"{test_path}: unreadable 'data' or 'fine_labels' ({exc})") from exc
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise DatasetError(f"{test_path}: expected 'data' of shape (N, 3072), got {data.shape}")
    if labels.shape != (data.shape[0],):
        raise DatasetError(f"{test_path}: expected {data.shape[0]} 'fine_labels', got shape {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= len(names)):
        raise DatasetError(
            f"{test_path}: 'fine_labels' range {labels.min()}..{labels.max()} does not fit the "
            f"{len(names)} 'fine_label_names' in {meta_path}"
        )
    # Rows are channel-major (1024 R, then 1024 G, then 1024 B); go to height × width × channel.
    images = np.ascontiguousarray(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    return images, labels, names


def _find_folder(root) -> Path:
    root = Path(root).expanduser().absolute()
    if not root.is_dir():
        raise DatasetError(
            f"noise_root '{root}' does not exist: point it at the cifar-100-python/ folder "
            "(holding test and meta) or its parent"
        )
    # the folder itself, its cifar-100-python/, or that of a folder inside (an archive unpacked into its own)
    candidates = [root, release_folder(root, "cifar-100-python") or root / "cifar-100-python"]
    for folder in candidates:
        if (folder / "test").is_file() and (folder / "meta").is_file():
            return folder
    for folder in candidates:
        found = [name for name in ("test", "meta") if (folder / name).is_file()]
        if found:  # half of the pair: name the file that is missing
            missing = "meta" if found == ["test"] else "test"
            raise DatasetError(f"{folder / missing} not found: CIFAR-100's python version holds test and meta "
                               f"side by side ({folder / found[0]} is there)")
    raise DatasetError(
        f"noise_root '{root}' holds neither test and meta nor cifar-100-python/test and meta: "
        "point it at the extracted CIFAR-100 python version"
    )


def _load_pickle(path: Path, keys: tuple[str, ...]) -> dict:
    try:
        with open(path, "rb") as f:
            obj = pickle.load(f, encoding="latin1")
    except Exception as exc:  # a corrupt pickle can raise almost anything
        raise DatasetError(f"{path}: not a readable CIFAR-100 pickle ({type(exc).__name__}: {exc})") from exc
    if not isinstance(obj, dict):
        raise DatasetError(f"{path}: expected a pickled dict, got {type(obj).__name__}")
    # A copy re-saved by Python 3 after loading with encoding="bytes" keeps b"data", b"fine_labels", …
    obj = {key.decode("latin1") if isinstance(key, bytes) else key: value for key, value in obj.items()}
    missing = [key for key in keys if key not in obj]
    if missing:
        raise DatasetError(f"{path}: missing {plural(len(missing), 'key')} {', '.join(map(repr, missing))}; "
                           f"expected {', '.join(keys)}")
    return obj
