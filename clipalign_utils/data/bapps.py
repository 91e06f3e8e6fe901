"""BAPPS 2AFC (Zhang et al., 2018, "The Unreasonable Effectiveness of Deep Features as a Perceptual
Metric") in its official layout, as richzhang/PerceptualSimilarity's ``TwoAFCDataset`` reads it:

    <root>/2afc/<split>/<subset>/ref/000000.png
    <root>/2afc/<split>/<subset>/p0/000000.png
    <root>/2afc/<split>/<subset>/p1/000000.png
    <root>/2afc/<split>/<subset>/judge/000000.npy     (float array of shape (1,): fraction choosing p1)

Splits ``train`` (subsets traditional, cnn, mix; 2 judgments per triplet) and ``val`` (traditional,
cnn, superres, deblur, color, frameinterp; 5 judgments), the one everybody reports. Subsets are
taken as found on disk. The four files of a triplet share a stem.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from clipalign_utils.data.roots import IMAGE_EXTENSIONS, is_residue, release_folder, subfolders
from clipalign_utils.errors import DatasetError, ParameterError

SPLITS = ("train", "val")
PARTS = ("ref", "p0", "p1", "judge")
# What each part's files end with (LPIPS's loader takes images by extension and judgments as .npy).
SUFFIXES = {"ref": IMAGE_EXTENSIONS, "p0": IMAGE_EXTENSIONS, "p1": IMAGE_EXTENSIONS, "judge": frozenset({".npy"})}
COLUMNS = ["subset", "id", "ref_path", "p0_path", "p1_path", "p"]


def bapps_folder(root) -> Path:
    """The ``2afc`` folder: ``root`` itself or ``root/2afc``."""
    root = Path(root).expanduser().absolute()
    if not root.is_dir():
        raise DatasetError(f"'{root}' does not exist: point it at BAPPS's folder holding 2afc/ (or at 2afc/ itself)")
    if (root / "2afc").is_dir():
        return root / "2afc"
    if root.name.lower() == "2afc" or any((root / split).is_dir() for split in SPLITS):
        return root
    below = release_folder(root, "2afc")  # an archive unpacked into a folder of its own
    if below is not None:
        return below
    raise DatasetError(f"'{root}' holds no 2afc/ folder: point it at BAPPS's folder holding 2afc/{{train,val}}/")


def _files_by_stem(folder: Path, suffixes: frozenset[str]) -> dict[str, Path]:
    """A part's files by stem: those ending in ``suffixes`` (any case); a stray Thumbs.db or readme is not a
    triplet's."""
    return {p.stem: p for p in sorted(folder.iterdir())
            if p.is_file() and not is_residue(p) and p.suffix.lower() in suffixes}


def read_judge(path: Path) -> float:
    """The fraction of people who chose p1, from a judge .npy (one number in [0, 1])."""
    try:
        with open(path, "rb") as handle:
            if handle.read(6) != b"\x93NUMPY":  # np.load reads anything else as a pickle and says so
                raise DatasetError(f"{path} is not a .npy file (no NumPy header): replace it with the release's copy")
        value = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        raise DatasetError(f"{path} is not a readable .npy file ({type(error).__name__}: {error})") from None
    value = np.asarray(value)
    if value.size != 1 or not np.issubdtype(value.dtype, np.number):
        raise DatasetError(f"{path}: expected one number (the fraction choosing p1), got an array of shape "
                           f"{value.shape} and dtype {value.dtype}")
    p = float(value.reshape(-1)[0])
    if not np.isfinite(p) or not 0.0 <= p <= 1.0:
        raise DatasetError(f"{path}: the fraction choosing p1 must lie in [0, 1], got {p!r}")
    return p


def load_bapps(root, split: str = "val") -> pd.DataFrame:
    """One row per triplet, subsets in name order and triplets in stem order.

    Columns: subset, id (the file stem), ref_path, p0_path, p1_path (str), p (fraction choosing p1).
    """
    if split not in SPLITS:
        raise ParameterError(f"similarity_split={split!r}: BAPPS has the splits {', '.join(SPLITS)} "
                             f"(val is the evaluation split)")
    base = bapps_folder(root)
    split_dir = base / split
    if not split_dir.is_dir():
        found = sorted(p.name for p in base.iterdir() if p.is_dir())
        raise DatasetError(f"{split_dir} not found: BAPPS's 2afc/ should hold {' and '.join(SPLITS)} "
                           f"(found: {', '.join(found) or 'nothing'})")
    subsets = [p.name for p in subfolders(split_dir)]
    if not subsets:
        raise DatasetError(f"{split_dir} holds no subset folders (e.g. traditional/, cnn/)")
    rows = []
    for subset in subsets:
        folder = split_dir / subset
        parts = {}
        for part in PARTS:
            if not (folder / part).is_dir():
                raise DatasetError(f"{folder / part} not found: every BAPPS subset holds {', '.join(PARTS)}/")
            parts[part] = _files_by_stem(folder / part, SUFFIXES[part])
        stems = sorted(set().union(*(set(files) for files in parts.values())))
        for stem in stems:
            missing = [part for part in PARTS if stem not in parts[part]]
            if missing:
                present = next(parts[part][stem] for part in PARTS if stem in parts[part])
                suffix = {"judge": ".npy"}
                names = ", ".join(str(folder / part / f"{stem}{suffix.get(part, '.png')}") for part in missing)
                raise DatasetError(f"triplet {stem} of {folder} is incomplete: {names} not found "
                                   f"(but {present} exists)")
            rows.append((subset, stem, str(parts["ref"][stem]), str(parts["p0"][stem]), str(parts["p1"][stem]),
                         read_judge(parts["judge"][stem])))
    if not rows:
        raise DatasetError(f"{split_dir} holds no triplets")
    return pd.DataFrame(rows, columns=COLUMNS)
