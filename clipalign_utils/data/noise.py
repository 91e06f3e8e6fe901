"""Labelled image sets for the noise-robustness step, and the Gaussian noise itself.

``noise_dataset`` picks the images:

* ``embedded`` — held-out clean images of the shape–texture world, balanced over the 8 shape
  classes (``test_per_class`` each), labelled by shape.
* ``cifar100`` — the CIFAR-100 test split at ``noise_root`` with its 100 fine labels. For speed
  we keep a class-balanced, seeded subset of ``test_per_class`` images per class (in the
  release's order); the release has 100 per class, so ``test_per_class >= 100`` is the full
  10,000-image set.

Noise is added to pixels in [0, 1] before the model's normalisation (the encoder normalises),
clipped back to [0, 1] and kept as float32 — re-quantising to uint8 would erase most of a
small sigma. The noise of a level is a pure function of (noise_seed, sigma), so every
checkpoint sees exactly the same noisy images and the embedding cache (keyed on content)
encodes each noisy set once per checkpoint.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..choices import NOISE_AT
from ..errors import DatasetError, ParameterError
from . import world
from .cifar100 import load_cifar100
from .image_sets import ArrayImages, resize_shorter_and_crop
from .registry import get_dataset, register_dataset
from .roots import open_root

# Sigmas are keyed to the noise stream at this resolution: 0.05 and 0.0500001 share noise.
_SIGMA_RESOLUTION = 1e-6


@dataclass
class ClassificationSet:
    """Images uint8 (N, H, W, 3) with a class index per image into ``classnames``."""

    images: np.ndarray
    labels: np.ndarray
    classnames: tuple[str, ...]
    name: str

    def __len__(self) -> int:
        return len(self.images)


def load_noise_dataset(dataset: str, root, params: dict) -> ClassificationSet:
    """The clean images of ``dataset`` (``embedded`` or ``cifar100`` read from ``root``; the names of the
    dataset registry's ``noise`` task).

    Uses ``params`` keys test_per_class, seed, image_size, texture_correlation, texture_scale. A registered
    loader is called with the keywords root, per_class, seed and world_config (the world's
    :class:`~.world.WorldConfig`).
    """
    per_class = int(params["test_per_class"])
    if per_class < 1:
        raise ParameterError(f"test_per_class must be a positive integer; got {per_class!r}")
    loader = get_dataset("noise", dataset)
    config = world.evaluation_world(params)
    return loader(root=root, per_class=per_class, seed=params["eval_seed"], world_config=config)


@register_dataset("noise", "embedded")
def embedded_set(*, per_class: int, seed: int, world_config: world.WorldConfig, **_) -> ClassificationSet:
    """Held-out world images, ``per_class`` of each shape, labelled by shape."""
    sample = world.make_test_set(per_class, seed, world_config)
    return ClassificationSet(sample.images, sample.shape_labels, tuple(world.SHAPES), "embedded")


@register_dataset("noise", "cifar100")
def cifar100_set(*, root, per_class: int, seed: int, **_) -> ClassificationSet:
    """A seeded class-balanced subset (``per_class`` per class) of the CIFAR-100 test split at ``root``."""
    images, labels, classnames = open_root(
        "noise", "cifar100", root, load_cifar100,
        "set it to the extracted cifar-100-python/ folder (holding test and meta) or its parent "
        "(https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz)")
    if len(images) == 0:
        raise DatasetError(f"noise_root '{root}': the CIFAR-100 test pickle holds no images")
    keep = balanced_subset(labels, per_class, seed)
    return ClassificationSet(images[keep], labels[keep], tuple(classnames), "cifar100")


def balanced_subset(labels: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """Sorted indices of up to ``per_class`` images of every class, drawn without replacement.

    A class with at most ``per_class`` images keeps all of them, so a large ``per_class``
    returns every index.
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    chosen = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        chosen.append(members if members.size <= per_class else rng.choice(members, per_class, replace=False))
    return np.sort(np.concatenate(chosen)) if chosen else np.empty(0, dtype=np.int64)


def add_gaussian_noise(images: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    """uint8 images → float32 in [0, 1]: pixels/255 plus N(0, sigma²) noise per pixel and channel, clipped.

    The noise depends only on (seed, sigma) and the images' shape: the same call gives the same
    array, a different sigma a different draw (not a rescaled copy of the same one).
    """
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise ParameterError(f"add_gaussian_noise expects uint8 images; got {images.dtype}")
    sigma = float(sigma)
    if not (np.isfinite(sigma) and sigma >= 0):
        raise ParameterError(f"sigma must be a finite number >= 0; got {sigma!r}")
    if int(seed) < 0:
        raise ParameterError(f"noise_seed must be >= 0; got {seed!r}")
    clean = images.astype(np.float32) / 255
    if sigma == 0:
        return clean
    rng = np.random.default_rng([int(seed), int(round(sigma / _SIGMA_RESOLUTION))])
    noisy = clean + np.float32(sigma) * rng.standard_normal(images.shape, dtype=np.float32)
    return np.clip(noisy, 0.0, 1.0, out=noisy)




def noisy_image_sets(data: ClassificationSet, sigmas: Sequence[float], seed: int, noise_at: str = "native",
                     input_size: int | None = None) -> dict[float, ArrayImages]:
    """sigma → image set, for sigma 0 (the clean uint8 images) and each of ``sigmas``, ascending.

    ``noise_at``: ``native`` adds the noise to the images at their own size (the encoder then resizes
    the noisy image to the model's input, which smooths the noise when it shrinks the image);
    ``input`` first brings the images to ``input_size`` (shorter side resized, centre crop: the encoder's
    geometry, but through PIL's bicubic to uint8 where the encoder resizes floats with torch's antialiased
    bicubic, so the clean σ = 0 set differs from ``native``'s in the low bits) and adds the noise there, so σ
    is the noise the model actually sees. The two are the same when the images already have the input's size.
    Memory: one float32 copy of the images per sigma (about 120 MB each for all of CIFAR-100).
    """
    levels = sorted({0.0, *(float(s) for s in sigmas)})
    if levels[0] < 0:
        raise ParameterError(f"sigmas must be >= 0; got {list(sigmas)}")
    if noise_at not in NOISE_AT:
        raise ParameterError(f"noise_at={noise_at!r}: choose one of {', '.join(NOISE_AT)}")
    images = data.images
    if noise_at == "input" and input_size and images.shape[1:3] != (input_size, input_size):
        images = np.stack([resize_shorter_and_crop(image, input_size) for image in images])
    return {sigma: ArrayImages(images, f"{data.name}-sigma0") if sigma == 0 else
            ArrayImages(add_gaussian_noise(images, sigma, seed), f"{data.name}-sigma{sigma:g}")
            for sigma in levels}
