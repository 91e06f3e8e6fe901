"""Image sets the encoder reads: in-memory arrays or files on disk, each with a stable identity.

The identity is what the embedding cache is keyed on: the pixel content for arrays, the names and bytes for
files (and how they are read), so a changed dataset is never served stale embeddings, even where a file was
replaced at the same size and time (an archive unpacked with its own timestamps), and a moved one keeps them.
"""
from __future__ import annotations

import hashlib
import os
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import DatasetError, ParameterError

if TYPE_CHECKING:  # torch is imported where a batch is made: a step whose embeddings are cached never needs it
    import torch


class ImageSet:
    name: str
    identity: str
    patches_per_image: int = 1  # items per source image (PatchImages cuts each into several)

    def __len__(self) -> int:
        raise NotImplementedError

    def arrays(self, start: int, stop: int) -> np.ndarray:
        """Images start..stop as an (n, H, W, 3) array, uint8 or float in [0, 1]."""
        raise NotImplementedError

    def batch(self, start: int, stop: int) -> torch.Tensor:
        """Images start..stop as an (n, H, W, 3) tensor (sharing :meth:`arrays`' memory), for the encoder."""
        import torch

        return torch.from_numpy(self.arrays(start, stop))

    def content_hash(self) -> str:
        """A sha256 of what the set holds, the same wherever it lies on disk (a run's record keeps it)."""
        raise NotImplementedError


class ArrayImages(ImageSet):
    """(N, H, W, 3) uint8, or float in [0, 1] (noisy images are kept unquantised)."""

    def __init__(self, images: np.ndarray, name: str):
        if images.ndim != 4 or images.shape[-1] != 3:
            raise DatasetError(f"image set {name!r}: expected (N, H, W, 3) images, got shape {images.shape}")
        self.images = np.ascontiguousarray(images)
        self.name = name
        digest = hashlib.sha1(self.images.view(np.uint8).data)
        self.identity = f"array:{self.images.dtype}:{self.images.shape}:{digest.hexdigest()}"

    def content_hash(self) -> str:
        return hashlib.sha256(self.identity.encode()).hexdigest()  # identity already digests the bytes

    def __len__(self) -> int:
        return len(self.images)

    def arrays(self, start: int, stop: int) -> np.ndarray:
        return self.images[start:stop]


@contextmanager
def opened_image(path: str | Path):
    """The image file opened with PIL; a file that is not a readable image, there or while it is decoded in the
    block, is a DatasetError."""
    try:
        with Image.open(path) as image:
            yield image
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise DatasetError(f"{path} is not a readable image ({type(error).__name__}): "
                           f"replace it with the release's copy of the file") from None


def read_rgb(path: str | Path) -> np.ndarray:
    """An image file as (H, W, 3) uint8; a file that is not a readable image is a DatasetError."""
    with opened_image(path) as image:
        return np.asarray(image.convert("RGB"))


FITS = ("crop", "resize")


# Each file's sha256, read once per process while the file stays the same inode, size, mtime and ctime (a
# file written or replaced since gets a new ctime, which no timestamp-restoring copy or unpacking can set).
_FILE_DIGESTS: dict[tuple, bytes] = {}


def _file_key(path: Path) -> tuple:
    """The file as it stands: a file written or replaced since has another (its ctime, at least)."""
    stat = path.stat()
    return str(path), stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns


def _file_digest(path: Path) -> bytes:
    key = _file_key(path)
    digest = _FILE_DIGESTS.get(key)
    if digest is None:
        with open(path, "rb") as handle:
            digest = _FILE_DIGESTS[key] = hashlib.file_digest(handle, "sha256").digest()
    return digest


def _files_content(paths: Sequence[Path], *settings) -> str:
    """A sha256 of the files' names and bytes (and the settings that say how they are read)."""
    digest = hashlib.sha256(repr(settings).encode())
    for path in paths:
        digest.update(path.name.encode())
        digest.update(_file_digest(path))
    return digest.hexdigest()


def kept_images_budget() -> int:
    """Bytes of decoded images every set together may keep: ``$CLIPALIGN_KEPT_IMAGES_GB``, else an eighth of the
    machine's memory and at least 512 MB. KADID-10k's 10,206 images kept for patches are 1.5 GB: within 512 MB,
    two thirds of them were decoded again at every checkpoint (an audit: a third of a 14-minute step)."""
    given = os.environ.get("CLIPALIGN_KEPT_IMAGES_GB")
    if given:
        try:
            return int(float(given) * 1e9)
        except ValueError:
            raise ParameterError(f"CLIPALIGN_KEPT_IMAGES_GB={given!r}: give a number of GB (2, 0.5)") from None
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not a POSIX system
        memory = 0
    return max(512 * 2**20, memory // 8)


class KeptImages:
    """Images an image set read from files, decoded and fitted, kept for its next pass: every checkpoint of a
    run reads the evaluation images again, and at a small model's input size decoding and resizing them
    costs more than the forward pass. Held by the set (freed with it) within a budget all sets share
    (:attr:`budget` bytes): kept until the budget is spent, then nothing more (the encoder walks a set in the
    same order at every checkpoint, where evicting the least recently used would keep nothing it reads next).
    Keyed by the file's path, inode, size, modification and change times and by how it was fitted, so a changed
    file is read again; kept arrays are read-only. Not pickled (an evaluation-set cache keeps the set, not these)."""

    budget: int | None = None  # bytes, :func:`kept_images_budget` at the first image kept
    used = 0  # by every set alive
    _lock = threading.RLock()  # re-entrant: a collection inside get() may run another set's __del__

    def __init__(self):
        self.images: dict[tuple, np.ndarray] = {}
        self.held = 0

    def get(self, path: Path, how: tuple, make: Callable[[], np.ndarray]) -> np.ndarray:
        key = (*_file_key(path), how)
        image = self.images.get(key)
        if image is not None:
            return image
        image = make()
        image.flags.writeable = False
        with KeptImages._lock:
            if KeptImages.budget is None:
                KeptImages.budget = kept_images_budget()
            if KeptImages.used + image.nbytes <= KeptImages.budget:
                self.images[key] = image
                self.held += image.nbytes
                KeptImages.used += image.nbytes
        return image

    def __del__(self):
        kind = type(self)  # not the module's global name, which may be gone when the interpreter exits
        with kind._lock:
            kind.used -= self.held

    def __getstate__(self) -> dict:
        return {}

    def __setstate__(self, state: dict) -> None:
        self.__init__()


class FileImages(ImageSet):
    """Image files, brought to ``size`` × ``size`` at load (``fit``: ``crop`` = shorter side to
    ``size`` then a centre crop, as open_clip's transform; ``resize`` = the whole image squashed to
    the square, nothing cut). Without ``size``, images of other sizes are resized to the first one's
    before stacking (the encoder then resizes and centre-crops to the model's input)."""

    def __init__(self, paths: Sequence[str | Path], name: str, size: int | None = None, fit: str = "crop"):
        if fit not in FITS:
            raise ValueError(f"fit must be one of {FITS}, got {fit!r}")
        self.paths = [Path(p) for p in paths]
        self.name = name
        self.size = size
        self.fit = fit
        self._kept = KeptImages()

    @property
    def identity(self) -> str:
        return f"files:{self.content_hash()}"

    def content_hash(self) -> str:
        return _files_content(self.paths, "files", self.size, self.fit)

    def __len__(self) -> int:
        return len(self.paths)

    def _fitted(self, path: Path) -> np.ndarray:
        if self.size and self.fit == "crop":
            return self._kept.get(path, ("crop", self.size), lambda: resize_shorter_and_crop(read_rgb(path), self.size))
        if self.size:
            return self._kept.get(path, ("resize", self.size), lambda: _resize(read_rgb(path), (self.size, self.size)))
        return self._kept.get(path, ("decoded",), lambda: read_rgb(path))

    def arrays(self, start: int, stop: int) -> np.ndarray:
        arrays = [self._fitted(p) for p in self.paths[start:stop]]
        if not self.size:
            shape = arrays[0].shape[:2]
            arrays = [a if a.shape[:2] == shape else _resize(a, shape) for a in arrays]
        return np.stack(arrays)


def tile_starts(length: int, size: int) -> list[int]:
    """Start offsets of ceil(length / size) windows of ``size`` that cover [0, length) exactly:
    evenly spaced, the first at 0 and the last ending at the edge (they overlap where
    ``size`` does not divide ``length``)."""
    if length <= size:
        return [0]
    count = -(-length // size)
    return [int(round(k * (length - size) / (count - 1))) for k in range(count)]


def patch_grid(height: int, width: int, size: int, max_patches: int) -> tuple[int, list[tuple[int, int]]]:
    """(factor, [(top, left), ...]): the smallest integer downscaling factor at which tiling the
    image with ``size`` × ``size`` patches needs at most ``max_patches`` of them, and the patches'
    positions in the downscaled image (which together cover all of it)."""
    factor = 1
    while True:
        h, w = max(size, round(height / factor)), max(size, round(width / factor))
        grid = [(top, left) for top in tile_starts(h, size) for left in tile_starts(w, size)]
        if len(grid) <= max_patches or (h == size and w == size):
            return factor, grid
        factor += 1


class PatchImages(ImageSet):
    """Image files cut into ``size`` × ``size`` patches at their native resolution (downscaled by
    the smallest integer factor that keeps at most ``max_patches`` patches per image), so a small
    model sees fine damage at the scale it was made. Item ``i * patches_per_image + k`` is patch k
    of image i; every image gets the same grid (images are first brought to the first image's
    size), so patch k of a reference and of its distorted version lie at the same position."""

    def __init__(self, paths: Sequence[str | Path], name: str, size: int, max_patches: int):
        self.paths = [Path(p) for p in paths]
        self.name = name
        self.size = size
        first = read_rgb(self.paths[0]) if self.paths else np.zeros((size, size, 3), np.uint8)
        self.native_shape = first.shape[:2]
        self.factor, self.grid = patch_grid(*self.native_shape, size, max_patches)
        self.patches_per_image = len(self.grid)
        self._last: tuple[int, np.ndarray] | None = None
        self.max_patches = max_patches
        self._kept = KeptImages()

    @property
    def identity(self) -> str:
        return f"patches:{self.content_hash()}"

    def content_hash(self) -> str:
        return _files_content(self.paths, "patches", self.size, self.max_patches)

    def __len__(self) -> int:
        return len(self.paths) * self.patches_per_image

    def _image(self, index: int) -> np.ndarray:
        if self._last is None or self._last[0] != index:  # a batch walks the patches of few images
            height, width = self.native_shape
            target = (max(self.size, round(height / self.factor)), max(self.size, round(width / self.factor)))

            def downscaled(path=self.paths[index]):
                image = read_rgb(path)
                return image if image.shape[:2] == target else _resize(image, target)
            self._last = (index, self._kept.get(self.paths[index], ("patches", target), downscaled))
        return self._last[1]

    def arrays(self, start: int, stop: int) -> np.ndarray:
        patches = []
        for item in range(start, stop):
            image = self._image(item // self.patches_per_image)
            top, left = self.grid[item % self.patches_per_image]
            patches.append(image[top:top + self.size, left:left + self.size])
        return np.stack(patches)


def _resize(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(H, W, 3) uint8 to ``shape`` = (height, width), bicubic."""
    return np.asarray(Image.fromarray(image).resize((int(shape[1]), int(shape[0])), Image.BICUBIC))


def shorter_side_to(height: int, width: int, size: int) -> tuple[int, int]:
    """(height, width) with the shorter side resized to ``size``, the longer truncated as torchvision's
    ``Resize(size)`` (open_clip's and CLIP's processor) computes it."""
    if height <= width:
        return size, int(size * width / height)
    return int(size * height / width), size


def centre_offsets(height: int, width: int, size: int) -> tuple[int, int]:
    """(top, left) of a ``size`` centre crop, rounded as torchvision's ``CenterCrop``."""
    return int(round((height - size) / 2.0)), int(round((width - size) / 2.0))


def resize_shorter_and_crop(image: np.ndarray, size: int) -> np.ndarray:
    """(H, W, 3) uint8 -> (size, size, 3): the shorter side resized to ``size`` (bicubic), centre crop —
    exactly open_clip's evaluation transform (torchvision's Resize and CenterCrop on a PIL image)."""
    new_h, new_w = shorter_side_to(*image.shape[:2], size)
    resized = Image.fromarray(image).resize((new_w, new_h), Image.BICUBIC)
    top, left = centre_offsets(new_h, new_w, size)
    return np.asarray(resized.crop((left, top, left + size, top + size)))
