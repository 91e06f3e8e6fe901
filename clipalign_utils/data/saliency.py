"""Saliency ground truth: images with where people look (a fixation density and fixation locations).

One entry point, :func:`load_saliency`, for the three sources the ``saliency`` step reads:

- ``embedded`` (default, offline, *synthetic*): shape–texture world images whose object
  silhouette is known. The "fixation density" is the silhouette, Gaussian-blurred and mixed with
  a weak centre prior; "fixations" are drawn from it (seeded). No human looked at these images: it
  asks whether the model looks at the object, wherever the world put it (``object_placement``).
  Each image also carries contour / interior / background masks and its silhouette (the map of
  the ``object_silhouette`` baseline).
- ``mit1003``: Judd et al. (2009), official layout (see :mod:`.mit1003`).
- ``cat2000``: Borji & Itti (2015), training set, official layout (see :mod:`.cat2000`).

File images are resized whole to ``image_size`` × ``image_size`` (aspect ratio not kept, no
crop) so that a model's saliency map covers the whole image and can be resized back onto the
ground truth. :func:`cue_conflict_saliency` gives the world's cue-conflict images (identical to
``world.make_cue_conflict``) with their contour and interior masks.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage

from ..errors import ParameterError
from . import world
from .image_sets import ArrayImages, FileImages, ImageSet, read_rgb  # noqa: F401
from .saliency_base import (LazyMaps, SaliencySet, Target,  # noqa: F401
                            file_saliency_set, image_files, read_grey, squashed_file_images)
from .registry import get_dataset, register_dataset
from .roots import open_root

# Input size for file images when the run does not fix the model's (open_clip's default).
DEFAULT_FILE_IMAGE_SIZE = 224
# The embedded set's random stream: a split code of its own, disjoint from world.SPLITS (0–3).
SALIENCY_SPLIT = 17
# Embedded ground truth: blur of the silhouette (fraction of the image side), weight of the centre
# prior in the density (weak: fixations follow the object), its spread (fraction of the side) and
# fixations drawn per image.
EMBEDDED_BLUR = 1 / 16
EMBEDDED_CENTRE_WEIGHT = 0.1
EMBEDDED_CENTRE_SIGMA = 0.25
EMBEDDED_FIXATIONS = 24
EMBEDDED_GROUND_TRUTH = (
    "synthetic: the object's silhouette blurred (σ = {blur:.3g} px) mixed with a centre prior "
    "(weight {w:g}); {k} fixations per image drawn from it (seed {seed}); no human observers")

def centre_prior(shape: tuple[int, int], sigma: float = EMBEDDED_CENTRE_SIGMA) -> np.ndarray:
    """A Gaussian at the centre, σ = sigma × height / width, peak 1 (the form of the centre baseline)."""
    y = ((np.arange(shape[0]) + 0.5) / shape[0] - 0.5) / sigma
    x = ((np.arange(shape[1]) + 0.5) / shape[1] - 0.5) / sigma
    return np.exp(-0.5 * (y[:, None] ** 2 + x[None, :] ** 2))


def render_with_mask(shape: int, texture: int, config: world.WorldConfig,
                     rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``world.render(shape, texture, config, rng)`` and the silhouette's coverage (S, S) in [0, 1]."""
    images, coverage = world.render_with_coverage([shape], [texture], config, [rng])
    return images[0], coverage[0]


def region_masks(alpha: np.ndarray, width: int | None = None) -> dict[str, np.ndarray]:
    """Masks of a silhouette's ``contour`` (pixels within ``width`` px of its edge, either side),
    ``interior`` (inside, farther than that) and ``background`` (outside, farther than that).
    ``width`` defaults to 1 px per 32 px of image side."""
    inside = np.asarray(alpha) >= 0.5
    width = int(width or max(1, round(inside.shape[0] / 32)))
    interior = ndimage.binary_erosion(inside, iterations=width, border_value=0)
    outer = ndimage.binary_dilation(inside, iterations=width)
    return {"contour": outer & ~interior, "interior": interior, "background": ~outer}


def embedded_target(alpha: np.ndarray, rng: np.random.Generator, n_fixations: int = EMBEDDED_FIXATIONS,
                    blur: float = EMBEDDED_BLUR, centre_weight: float = EMBEDDED_CENTRE_WEIGHT) -> Target:
    """Synthetic ground truth of one image: (density summing to 1, binary map of drawn fixations)."""
    size = alpha.shape[0]
    blurred = ndimage.gaussian_filter(np.asarray(alpha, dtype=np.float64), sigma=blur * size, mode="constant")
    centre = centre_prior(alpha.shape)
    density = (1 - centre_weight) * blurred / blurred.sum() + centre_weight * centre / centre.sum()
    density /= density.sum()
    drawn = rng.choice(density.size, size=int(n_fixations), p=density.ravel())
    fixations = np.zeros(density.size, dtype=bool)
    fixations[drawn] = True
    return density, fixations.reshape(density.shape)


def _embedded_items(n_images: int, seed: int, config: world.WorldConfig):
    """Item k: shape k mod 8, its canonical texture with probability texture_correlation (the
    training distribution), rendered from the saliency split's own stream."""
    for k in range(n_images):
        rng = np.random.default_rng([seed, SALIENCY_SPLIT, 0, k])
        shape = k % len(world.SHAPES)
        texture = shape if rng.uniform() < config.texture_correlation else \
            int((shape + rng.integers(1, len(world.TEXTURES))) % len(world.TEXTURES))
        image, alpha = render_with_mask(shape, texture, config, rng)
        yield k, shape, texture, image, alpha


def _set_from_items(items, name: str, seed: int, description: str) -> SaliencySet:
    images, shapes, textures, targets, regions = [], [], [], [], {"contour": [], "interior": [], "background": []}
    silhouettes = []
    for k, shape, texture, image, alpha in items:
        images.append(image)
        silhouettes.append(alpha)
        shapes.append(shape)
        textures.append(texture)
        targets.append(embedded_target(alpha, np.random.default_rng([seed, SALIENCY_SPLIT, 1, k])))
        for region, mask in region_masks(alpha).items():
            regions[region].append(mask)
    if not images:
        raise ParameterError("the saliency set would be empty: n_images must be at least 1")
    return SaliencySet(images=ArrayImages(np.stack(images), name), names=[f"{name}_{k:04d}" for k in range(len(images))],
                       labels=np.array(shapes, dtype=np.int64), classnames=tuple(world.SHAPES), name="embedded",
                       ground_truth=description, load_target=targets.__getitem__, regions=regions,
                       texture_labels=np.array(textures, dtype=np.int64), silhouettes=silhouettes)


def _description(size: int, seed: int) -> str:
    return EMBEDDED_GROUND_TRUTH.format(blur=EMBEDDED_BLUR * size, w=EMBEDDED_CENTRE_WEIGHT,
                                        k=EMBEDDED_FIXATIONS, seed=seed)


def embedded_saliency(n_images: int, seed: int, config: world.WorldConfig) -> SaliencySet:
    """``n_images`` world images (classes cycling, so a multiple of 8 is balanced) with synthetic ground truth."""
    return _set_from_items(_embedded_items(int(n_images), seed, config), "saliency_embedded", seed,
                           _description(config.image_size, seed))


def cue_conflict_saliency(n_per_pair: int, seed: int, config: world.WorldConfig) -> SaliencySet:
    """The world's cue-conflict images — pixel for pixel those of ``world.make_cue_conflict(n_per_pair,
    seed, config)`` — with silhouette masks (``regions``: contour, interior, background), shape labels
    and texture labels, and the same synthetic ground truth as the embedded set."""
    pairs = [(i, j) for i in range(len(world.SHAPES)) for j in range(len(world.TEXTURES)) if i != j]

    def items():
        for k in range(len(pairs) * int(n_per_pair)):
            shape, texture = pairs[k % len(pairs)]
            # world.make_cue_conflict's stream for item k (world._item_rng(seed, "cue_conflict", k)).
            rng = np.random.default_rng([seed, world.SPLITS["cue_conflict"], 0, k])
            image, alpha = render_with_mask(shape, texture, config, rng)
            yield k, shape, texture, image, alpha

    return _set_from_items(items(), "saliency_cue_conflict", seed, _description(config.image_size, seed))


# ---------------------------------------------------------------------------- dispatch
def load_saliency(dataset: str, root: str | Path | None, *, image_size: int | None, seed: int,
                  n_images: int | None, texture_correlation: float = 0.8,
                  texture_scale: float = 1.0, object_placement: str = "varied") -> SaliencySet:
    """The saliency set ``dataset`` names (the names of the dataset registry's ``saliency`` task).

    - ``embedded``: ``n_images`` world images at ``image_size`` px (the world's size, 32 by default),
      world settings ``texture_correlation``, ``texture_scale`` and ``object_placement``, ground truth
      drawn with ``seed``.
    - ``mit1003`` / ``cat2000``: read from ``root`` (official layout); ``n_images`` stimuli (``None`` or 0 = all)
      in natural name order, as pysaliency lists them, shown to the model at ``image_size`` (default 224):
      MIT1003's first, CAT2000's spread over its 20 categories (each one's first stimulus, then each one's
      second, …).

    A registered loader is called with these keywords (root, image_size, seed, n_images,
    texture_correlation, texture_scale, object_placement).
    """
    loader = get_dataset("saliency", dataset)
    return loader(root=root, image_size=image_size, seed=seed, n_images=n_images,
                  texture_correlation=texture_correlation, texture_scale=texture_scale,
                  object_placement=object_placement)


@register_dataset("saliency", "embedded")
def embedded_set(*, image_size: int | None, seed: int, n_images: int | None, texture_correlation: float,
                 texture_scale: float, object_placement: str = "varied", **_) -> SaliencySet:
    """:func:`embedded_saliency` from the dispatcher's keywords (``image_size`` default 32)."""
    config = world.WorldConfig(int(image_size or 32), texture_correlation, texture_scale,
                               object_placement=object_placement)
    if not n_images or int(n_images) < 1:
        raise ParameterError(f"saliency_dataset=embedded needs n_images >= 1; got {n_images!r}")
    return embedded_saliency(int(n_images), seed, config)


@register_dataset("saliency", "mit1003")
def mit1003_set(*, root, image_size: int | None, n_images: int | None, **_) -> SaliencySet:
    """MIT1003 read from ``root``: the first ``n_images`` stimuli (all when None/0) at ``image_size`` px."""
    from .mit1003 import load_mit1003

    size = int(image_size or DEFAULT_FILE_IMAGE_SIZE)
    return open_root("saliency", "mit1003", root, lambda r: load_mit1003(r, image_size=size, n_images=n_images),
                     "the MIT1003 folder holding ALLSTIMULI and ALLFIXATIONMAPS")


@register_dataset("saliency", "cat2000")
def cat2000_set(*, root, image_size: int | None, n_images: int | None, **_) -> SaliencySet:
    """CAT2000's training set read from ``root``: the first ``n_images`` stimuli (all when None/0)."""
    from .cat2000 import load_cat2000

    size = int(image_size or DEFAULT_FILE_IMAGE_SIZE)
    return open_root("saliency", "cat2000", root, lambda r: load_cat2000(r, image_size=size, n_images=n_images),
                     "the CAT2000 folder holding trainSet (or trainSet itself)")
