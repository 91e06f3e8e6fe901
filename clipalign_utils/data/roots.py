"""Opening the folder a user gives for a real dataset: the one call every real-dataset loader makes."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, TypeVar

from ..errors import DatasetError
from .registry import dataset_parameter, root_parameter

T = TypeVar("T")


def open_root(task: str, dataset: str, root, read: Callable[..., T], hint: str) -> T:
    """``read(root)`` for ``task``'s real dataset ``dataset``.

    No folder given: one error naming both parameters and ``hint`` (what to pass). A dataset error from
    ``read`` (folder missing, file malformed) is prefixed by the root parameter unless it names it already.
    """
    parameter = root_parameter(task)
    if root is None or not str(root).strip():
        raise DatasetError(f"{dataset_parameter(task)}={dataset} needs {parameter}: {hint}")
    if Path(root).expanduser().is_file():
        raise DatasetError(f"{parameter}={str(root)!r} is a file, not the dataset's folder: "
                           + (f"unpack the archive first (clipalign fetch {dataset} --to DIR downloads, unpacks and "
                              f"verifies a release)" if is_archive(Path(root)) else hint))
    try:
        return read(root)
    except DatasetError as error:
        if parameter in str(error):
            raise
        raise DatasetError(f"{parameter}={str(root)!r}: {error}") from None



# The image files a folder-of-images release may hold (LPIPS's loader takes these by extension too).
IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm"})

# What archives and desktops leave beside a dataset's own files: AppleDouble files and macOS's __MACOSX
# folder (zips made on a Mac), hidden files, Windows' thumbnail caches.
RESIDUE_NAMES = frozenset({"__macosx", "thumbs.db", "desktop.ini"})


ARCHIVE_SUFFIXES = (".zip", ".tar", ".tgz", ".gz", ".bz2", ".xz", ".rar", ".7z")


def is_archive(path: Path) -> bool:
    """``path`` is named like an archive (``cifar-100-python.tar.gz``, ``trainSet.zip``)."""
    return path.name.lower().endswith(ARCHIVE_SUFFIXES)


def is_residue(path: Path) -> bool:
    """``path`` is not part of a dataset: a hidden name (``.DS_Store``, ``._x.png``), ``__MACOSX``,
    ``Thumbs.db`` or ``desktop.ini``."""
    return path.name.startswith(".") or path.name.lower() in RESIDUE_NAMES


def subfolders(folder: Path) -> list[Path]:
    """``folder``'s sub-folders in name order, residue (``__MACOSX``, hidden folders) left out."""
    return [sub for sub in sorted(folder.iterdir()) if sub.is_dir() and not is_residue(sub)]


def release_folder(root: Path, name: str) -> Path | None:
    """``root/name``, else the first ``sub/name`` among :func:`subfolders` of ``root`` (an archive unpacked
    into a folder of its own); None if neither."""
    if (root / name).is_dir():
        return root / name
    return next((sub / name for sub in subfolders(root) if (sub / name).is_dir()), None)


@dataclass(frozen=True)
class Release:
    """A real dataset's folder as its release lays it out: each listed sub-folder indexed by lower-cased
    file name (lookups ignore the release's case quirks), each listed file's path."""

    root: Path
    folders: dict[str, dict[str, Path]]
    files: dict[str, Path]


def open_release(root, parameter: str, release: str, folders: tuple[str, ...] = (),
                 files: tuple[str, ...] = ()) -> Release:
    """``root`` (the value of ``parameter``), or the one folder inside it that does (an archive unpacked into a
    folder of its own), checked to hold ``release``'s ``folders`` and ``files``; one DatasetError naming the first
    thing missing and what the folder should hold."""
    parts = [f"{f}/" for f in folders] + list(files)
    holding = " and ".join([", ".join(parts[:-1]), parts[-1]] if len(parts) > 1 else parts)
    root = Path(root).expanduser().absolute()
    if not root.is_dir():
        raise DatasetError(f"{parameter} '{root}' does not exist: point it at the folder holding {holding}")
    expected = f"{parameter} '{root}' should hold {release}'s {holding}"
    wanted = [(name, Path.is_dir) for name in folders] + [(name, Path.is_file) for name in files]
    if not all(present(root / name) for name, present in wanted):
        below = [sub for sub in subfolders(root) if all(present(sub / name) for name, present in wanted)]
        if len(below) == 1:  # an archive unpacked into a folder of its own: read it there, as release_folder does
            root = below[0]
    for name, present in wanted:
        if not present(root / name):
            raise DatasetError(f"{root / name} not found: {expected}")
    indexed = {name: {p.name.lower(): p for p in (root / name).iterdir() if p.is_file()} for name in folders}
    return Release(root, indexed, {name: root / name for name in files})
