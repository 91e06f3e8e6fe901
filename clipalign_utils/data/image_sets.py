"""Image sets the encoder reads: in-memory arrays or files on disk, each with a stable identity.

The identity is what the embedding cache is keyed on: the pixel content for arrays,
(path, size, mtime) for files, so a changed dataset is never served stale embeddings.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ..errors import DatasetError


class ImageSet:
    name: str
    identity: str

    def __len__(self) -> int:
        raise NotImplementedError

    def batch(self, start: int, stop: int) -> torch.Tensor:
        """Images start..stop as an (n, H, W, 3) tensor, uint8 or float in [0, 1]."""
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

    def __len__(self) -> int:
        return len(self.images)

    def batch(self, start: int, stop: int) -> torch.Tensor:
        return torch.from_numpy(self.images[start:stop])


def read_rgb(path: str | Path) -> np.ndarray:
    """An image file as (H, W, 3) uint8; a file that is not a readable image is a DatasetError."""
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise DatasetError(f"{path} is not a readable image ({type(error).__name__}): "
                           f"remove it from the dataset folder or replace it") from None


class FileImages(ImageSet):
    """Image files; images of different sizes are resized to the first one's before stacking
    (the encoder then resizes and centre-crops to the model's input as open_clip does)."""

    def __init__(self, paths: Sequence[str | Path], name: str, size: int | None = None):
        self.paths = [Path(p) for p in paths]
        self.name = name
        self.size = size
        stats = [(str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in self.paths]
        self.identity = f"files:{size}:" + hashlib.sha1(repr(stats).encode()).hexdigest()

    def __len__(self) -> int:
        return len(self.paths)

    def batch(self, start: int, stop: int) -> torch.Tensor:
        arrays = [read_rgb(p) for p in self.paths[start:stop]]
        if self.size:
            arrays = [_resize_shorter_and_crop(a, self.size) for a in arrays]
        else:
            shape = arrays[0].shape[:2]
            arrays = [a if a.shape[:2] == shape else
                      np.asarray(Image.fromarray(a).resize(shape[::-1], Image.BICUBIC)) for a in arrays]
        return torch.from_numpy(np.stack(arrays))


def _resize_shorter_and_crop(image: np.ndarray, size: int) -> np.ndarray:
    h, w = image.shape[:2]
    scale = size / min(h, w)
    resized = Image.fromarray(image).resize((max(size, round(w * scale)), max(size, round(h * scale))),
                                            Image.BICUBIC)
    left, top = (resized.width - size) // 2, (resized.height - size) // 2
    return np.asarray(resized.crop((left, top, left + size, top + size)))
