"""The embedded shape–texture world: a procedural stand-in for natural images.

Every image is a silhouette (one of 8 shape classes) at a random pose, scale and
colour, filled with one of 8 texture families, on a plain background. Each shape
class has a *canonical* texture; training images use it with probability
``texture_correlation``, otherwise one of the other textures. So texture is a
shortcut that usually works and shape is the cue that always works — the
situation of natural images, where fur usually means cat.

Captions describe the object only ("a photo of a star."), like alt-text.
The same renderer makes training pairs, a held-out test set and cue-conflict
images (shape of class i with the canonical texture of class j != i).

Web photos also vary in photographic quality (noise, blur, compression, exposure, colour) and their
captions never say so. With ``quality_variation`` > 0, that fraction of the *training* images is
degraded by one of the embedded IQA distortion families (``quality_families``) at a random level
1-5, caption unchanged; held-out splits (test, cue_conflict, iqa) always stay clean.

Every image is a pure function of (seed, split, index[, epoch]): any item can be
re-made in any order, in any process, which keeps training resumable and the
datasets identical across notebooks without storing them.
"""
from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image

from ..choices import OBJECT_PLACEMENTS
from ..errors import ParameterError
from .distortions import DISTORTIONS, LEVELS

SHAPES = ("circle", "square", "triangle", "star", "cross", "heart", "hexagon", "crescent")
TEXTURES = ("stripes", "checkerboard", "dots", "waves", "blobs", "brick", "grass", "gravel")
# Shape i's canonical texture is TEXTURES[i].
# Texture families cut from scikit-image photos of the same name (kept out of the embedded IQA set).
TEXTURE_PHOTOS = ("brick", "grass", "gravel")
CAPTION_TEMPLATES = (
    "a photo of a {}.",
    "a {}.",
    "a picture of a {}.",
    "an image of a {}.",
    "a photo of the {}.",
    "a drawing of a {}.",
)
# Split codes keep the random streams of the splits disjoint.
SPLITS = {"train": 0, "test": 1, "cue_conflict": 2, "iqa": 3}

# The period of procedural textures, in pixels of a 32 px image, at texture_scale 1.
BASE_TEXTURE_PERIOD = 5.0
SUPERSAMPLE = 2  # shape masks are drawn at 2x and averaged: anti-aliased edges
# The distortion families a training image may be degraded by (the embedded IQA families).
QUALITY_FAMILIES = tuple(DISTORTIONS)
# Appended to an item's seed: the degradation draws from its own stream, so turning quality
# variation on leaves every image's content (shape, pose, texture, colour, caption) as it was.
QUALITY_STREAM = 7

# texture_scale's range: a period from a quarter pixel to 1.25 image sides of a 32 px image (it scales with the size).
MIN_TEXTURE_SCALE, MAX_TEXTURE_SCALE = 0.05, 8.0

# The largest world: an epoch of 12,800 images at 1024 px is 40 GB of pixels already.
MAX_IMAGE_SIZE = 1024


@dataclass(frozen=True)
class WorldConfig:
    image_size: int = 32
    texture_correlation: float = 0.8
    texture_scale: float = 1.0  # multiplies every texture's period; > 1 = coarser texture
    object_placement: str = "varied"  # "varied": anywhere it fits, varied size; "centred": near the centre
    quality_variation: float = 0.0  # fraction of training images degraded; 0 = all clean
    quality_families: tuple[str, ...] = QUALITY_FAMILIES  # drawn uniformly per degraded image

    def __post_init__(self):
        # at most MAX_IMAGE_SIZE: an epoch's images are drawn whole (100,000 px asked for 894 GiB, after the folder)
        if not (isinstance(self.image_size, int) and 16 <= self.image_size <= MAX_IMAGE_SIZE):
            raise ParameterError(f"image_size must be an integer from 16 to {MAX_IMAGE_SIZE}, got {self.image_size!r}")
        if not 0.0 <= self.texture_correlation <= 1.0:
            raise ParameterError(
                f"texture_correlation must lie in [0, 1], got {self.texture_correlation!r}")
        if not self.texture_scale > 0:
            raise ParameterError(f"texture_scale must be > 0, got {self.texture_scale!r}")
        # Beyond these the blobs' random field is drawn at (32 / (5 * scale))² cells (1e-6: 298 TiB) or resized to
        # about (1 + 10 * scale / 32) image sides (1e6 at 32 px: 1.5e7 px a side): a MemoryError inside training,
        # after the run's folder is made. A period under a quarter pixel or above 1.25 image sides is no texture.
        if not MIN_TEXTURE_SCALE <= self.texture_scale <= MAX_TEXTURE_SCALE:
            raise ParameterError(f"texture_scale must lie in [{MIN_TEXTURE_SCALE:g}, {MAX_TEXTURE_SCALE:g}] (the "
                                 f"texture period, {BASE_TEXTURE_PERIOD:g} px of a 32 px image at 1), got "
                                 f"{self.texture_scale!r}")
        if self.object_placement not in OBJECT_PLACEMENTS:
            raise ParameterError(f"object_placement must be one of {', '.join(OBJECT_PLACEMENTS)}, "
                                 f"got {self.object_placement!r}")
        if isinstance(self.quality_variation, bool) or not (
                isinstance(self.quality_variation, (int, float)) and 0.0 <= self.quality_variation <= 1.0):
            raise ParameterError(f"quality_variation must lie in [0, 1], got {self.quality_variation!r}")
        # Frozen: normalise through object.__setattr__ (a list or "a,b" string becomes a tuple).
        object.__setattr__(self, "quality_families", check_quality_families(self.quality_families))

    @property
    def texture_period(self) -> float:
        return BASE_TEXTURE_PERIOD * self.texture_scale * self.image_size / 32


# The parameters evaluation_world reads: the world an embedded evaluation set is drawn from.
EVALUATION_WORLD_KEYS = ("image_size", "texture_correlation", "texture_scale", "object_placement")


def evaluation_world(params: dict) -> WorldConfig:
    """The world an embedded evaluation set is drawn from, by a run's resolved parameters: its image size
    and texture settings, clean images (quality variation is a training condition only)."""
    return WorldConfig(params["image_size"], params["texture_correlation"], params["texture_scale"],
                       object_placement=params["object_placement"])


def training_world(params: dict) -> WorldConfig:
    """The world a run trains on: :func:`evaluation_world` with the parameters' quality variation."""
    return dataclasses.replace(evaluation_world(params), quality_variation=params["quality_variation"],
                               quality_families=params["quality_families"])


def check_quality_families(families) -> tuple[str, ...]:
    """``families`` (a sequence of names, or one comma-separated string) as a tuple of known names."""
    if isinstance(families, str):
        families = families.split(",")
    names = tuple(name for name in (str(item).strip() for item in families) if name)
    if not names:
        raise ParameterError(f"parameter quality_families: no family given; choose from {', '.join(QUALITY_FAMILIES)}")
    unknown = [name for name in names if name not in QUALITY_FAMILIES]
    if unknown:
        raise ParameterError(f"parameter quality_families: unknown family {', '.join(map(repr, unknown))}; "
                             f"choose from {', '.join(QUALITY_FAMILIES)}")
    if len(set(names)) != len(names):
        raise ParameterError(f"parameter quality_families: a family is repeated ({', '.join(names)})")
    return names


@dataclass
class WorldSample:
    """Images (N,S,S,3) uint8 with their shape and texture class indices and captions; for training
    images, ``degradations`` holds each image's (family, level), or None where it is clean."""

    images: np.ndarray
    shape_labels: np.ndarray
    texture_labels: np.ndarray
    captions: list[str]
    degradations: list | None = None

    def __len__(self) -> int:
        return len(self.images)


# --------------------------------------------------------------------------- shapes
# Every image draws its numbers from its own generator in one fixed order (see render); its pixels are
# computed with other items' at once, class by class (a per-item loop of small numpy calls was 0.4 ms an
# image, most of it call overhead). Elementwise arithmetic is the per-item arithmetic, so the images are the
# same bytes either way (tests/test_world_render.py holds their digests).
def _regular_polygon_radius(theta, n):
    """Boundary radius of a regular n-gon of circumradius 1 in direction theta."""
    sector = 2 * np.pi / n
    return np.cos(np.pi / n) / np.cos(np.mod(theta, sector) - np.pi / n)


def _shape_inside(shape: str, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Boolean mask of a shape in canonical coordinates (object spans about [-1, 1])."""
    # Radius and angle only for the shapes that use them (arctan2 was a fifth of drawing an image).
    if shape == "circle":
        return np.hypot(x, y) < 0.9
    if shape == "square":
        return np.maximum(np.abs(x), np.abs(y)) < 0.72
    if shape == "triangle":
        return np.hypot(x, y) < _regular_polygon_radius(np.arctan2(y, x) + np.pi / 2, 3)
    if shape == "hexagon":
        return np.hypot(x, y) < 0.95 * _regular_polygon_radius(np.arctan2(y, x), 6)
    if shape == "star":
        spike = np.abs(np.mod(np.arctan2(y, x) + np.pi / 2, 2 * np.pi / 5) - np.pi / 5) / (np.pi / 5)
        return np.hypot(x, y) < 0.42 + 0.6 * spike
    if shape == "cross":
        return ((np.abs(x) < 0.3) & (np.abs(y) < 0.95)) | ((np.abs(y) < 0.3) & (np.abs(x) < 0.95))
    if shape == "heart":
        u, v = x * 1.15, -y * 1.15 + 0.25
        return (u**2 + v**2 - 1) ** 3 - u**2 * v**3 < 0
    if shape == "crescent":
        return (np.hypot(x, y) < 0.95) & (np.hypot(x - 0.45, y) > 0.72)
    raise ParameterError(f"unknown shape {shape!r}; known: {', '.join(SHAPES)}")


# Object half-extent as a fraction of the image side, per placement; "varied" puts the centre anywhere the
# object fits whole, "centred" within 0.1 of the side from the image centre.
HALF_EXTENT = {"centred": (0.30, 0.42), "varied": (0.15, 0.30)}


def _draw_pose(rng: np.random.Generator, placement: str) -> tuple[float, float, np.ndarray]:
    """(angle, half-extent, centre's offset from the image centre), all as fractions of the side but the
    angle. Both placements draw three numbers after the angle, so the rest of an item's random stream
    (texture, colour, caption) is the same for both."""
    angle = rng.uniform(0, 2 * np.pi)
    half = rng.uniform(*HALF_EXTENT[placement])
    reach = 0.1 if placement == "centred" else 0.5 - half
    return angle, half, rng.uniform(-reach, reach, size=2)


# How far from its centre each shape reaches, in canonical units: no point farther is inside (the square's
# corner 0.72·√2, the star's spike 1.02, the heart's lobes about 1.09; tests/test_world_render.py checks it).
REACH = {"circle": 0.9, "square": 1.02, "triangle": 1.0, "star": 1.02, "cross": 1.0, "heart": 1.1,
         "hexagon": 0.95, "crescent": 0.95}


def _shape_alphas(shape: str, size: int, poses: list) -> np.ndarray:
    """Anti-aliased coverage (N, size, size) in [0, 1] of one shape at each of N poses (_draw_pose's)."""
    n, side = len(poses), size * SUPERSAMPLE
    angle = np.array([pose[0] for pose in poses])[:, None, None]
    scale = np.array([pose[1] for pose in poses]) * size  # half-extent in pixels
    centre = size / 2 + np.array([pose[2] for pose in poses]) * size
    coords = _supersampled_coordinates(size)
    # Only a window around each object is computed (the pixels beyond its reach are outside): the same
    # width for the N items, the first index of each item's window per axis.
    reach = REACH[shape] * scale * (1 + 1e-6) + 1 / SUPERSAMPLE
    first = np.floor((centre - reach[:, None]) * SUPERSAMPLE - 0.5).astype(np.int64)
    last = np.ceil((centre + reach[:, None]) * SUPERSAMPLE - 0.5).astype(np.int64)
    width = int(min(side, (last - first).max() + 1))
    first = np.clip(first, 0, side - width)
    window = first[:, :, None] + np.arange(width)  # (N, 2, width): supersampled pixel indices
    # A row and a column per item broadcast to its grid: each pixel's arithmetic is meshgrid's, without copies.
    gx = (coords[window[:, 0]] - centre[:, :1])[:, None, :]
    gy = (coords[window[:, 1]] - centre[:, 1:])[:, :, None]
    cos, sin, scale = np.cos(angle), np.sin(angle), scale[:, None, None]
    x = (cos * gx + sin * gy) / scale
    y = (-sin * gx + cos * gy) / scale
    inside = np.zeros((n, side, side), np.uint8)
    inside[np.arange(n)[:, None, None], window[:, 1, :, None], window[:, 0, None, :]] = _shape_inside(shape, x, y)
    # The mean of each 2×2 block of 0s and 1s: an exact count over 4.
    blocks = sum(inside[:, i::SUPERSAMPLE, j::SUPERSAMPLE] for i in range(SUPERSAMPLE) for j in range(SUPERSAMPLE))
    return blocks.astype(np.float32) / np.float32(SUPERSAMPLE ** 2)


def shape_alpha(shape: str, size: int, rng: np.random.Generator, placement: str = "centred") -> np.ndarray:
    """Anti-aliased coverage (size, size) in [0, 1] of one shape at a random pose (``placement``: see
    HALF_EXTENT), drawn from ``rng`` as render draws it."""
    return _shape_alphas(shape, size, [_draw_pose(rng, placement)])[0]


@lru_cache(maxsize=8)
def _supersampled_coordinates(size: int) -> np.ndarray:
    coords = (np.arange(size * SUPERSAMPLE) + 0.5) / SUPERSAMPLE
    coords.flags.writeable = False
    return coords


# ------------------------------------------------------------------------- textures
@lru_cache(maxsize=8)
def _pixel_grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows, columns) of a size × size image as float32 (np.mgrid's), made once per size."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    yy.flags.writeable = xx.flags.writeable = False
    return yy, xx


@lru_cache(maxsize=None)
def _texture_photo(name: str) -> np.ndarray:
    """Grey-level texture photo that scikit-image ships, contrast-stretched to [0, 1]."""
    import skimage.data

    photo = getattr(skimage.data, name)().astype(np.float32)
    if photo.ndim == 3:
        photo = photo.mean(axis=2)
    lo, hi = np.percentile(photo, [2, 98])
    return np.clip((photo - lo) / (hi - lo), 0, 1)


@lru_cache(maxsize=None)
def _texture_photo_image(name: str) -> Image.Image:
    return Image.fromarray(_texture_photo(name))


def _photo_crop(size: int, period: float, photo: np.ndarray) -> int:
    """The side of a photo's crop whose features land at about the procedural period after resizing."""
    return int(np.clip(size * 40 / period, 16, min(photo.shape) - 1))


def _blob_cells(size: int, period: float) -> int:
    return max(2, int(np.ceil(size / period)) + 2)


def _draw_texture(texture: str, size: int, period: float, rng: np.random.Generator) -> tuple:
    """A texture's numbers: tilt, two phases, then the blobs' coarse field or a photo crop's corner."""
    tilt, phase_u, phase_v = rng.uniform(-0.25, 0.25), rng.uniform(0, period), rng.uniform(0, period)
    if texture == "blobs":
        cells = _blob_cells(size, period)
        return tilt, phase_u, phase_v, rng.standard_normal((cells, cells)).astype(np.float32)
    if texture in TEXTURE_PHOTOS:
        photo = _texture_photo(texture)
        crop = _photo_crop(size, period, photo)
        top = rng.integers(0, photo.shape[0] - crop)
        return tilt, phase_u, phase_v, (top, rng.integers(0, photo.shape[1] - crop))
    return tilt, phase_u, phase_v, None


def _texture_patterns(texture: str, size: int, period: float, draws: list) -> np.ndarray:
    """Patterns (N, size, size) in [0, 1] of one texture family, one per item's _draw_texture numbers: random
    phase and slight tilt."""
    if texture == "blobs":
        # Smooth random field thresholded at its median: irregular spots of about one period.
        side = int(_blob_cells(size, period) * period)
        fields = [np.asarray(Image.fromarray(draw[3]).resize((side, side), Image.BICUBIC))[:size, :size]
                  for draw in draws]
        return np.stack([(field > np.median(field)).astype(np.float32) for field in fields])
    if texture in TEXTURE_PHOTOS:
        photo = _texture_photo_image(texture)  # cropped by PIL: the same pixels as a numpy slice's, no copy
        crop = _photo_crop(size, period, _texture_photo(texture))
        return np.stack([np.asarray(photo.crop((left, top, left + crop, top + crop)).resize(
            (size, size), Image.BILINEAR), dtype=np.float32) for top, left in (draw[3] for draw in draws)])
    yy, xx = _pixel_grid(size)
    tilt, phase_u, phase_v = (np.array([draw[k] for draw in draws])[:, None, None] for k in range(3))
    u = np.cos(tilt) * xx + np.sin(tilt) * yy + phase_u
    v = -np.sin(tilt) * xx + np.cos(tilt) * yy + phase_v
    k = 2 * np.pi / period
    if texture == "stripes":
        return (np.sin(k * v) > 0).astype(np.float32)
    if texture == "checkerboard":
        return (np.sin(k * u) * np.sin(k * v) > 0).astype(np.float32)
    if texture == "dots":
        du, dv = np.mod(u, period) - period / 2, np.mod(v, period) - period / 2
        return (np.hypot(du, dv) < 0.3 * period).astype(np.float32)
    if texture == "waves":
        return (np.sin(k * u + 1.5 * np.sin(0.5 * k * v)) > 0).astype(np.float32)
    raise ParameterError(f"unknown texture {texture!r}; known: {', '.join(TEXTURES)}")


# ---------------------------------------------------------------------------- images
def render(shape: int, texture: int, config: WorldConfig, rng: np.random.Generator) -> np.ndarray:
    """One (S, S, 3) uint8 image: shape class `shape` filled with texture family `texture`.

    From ``rng``, in this order: the pose (shape_alpha's four numbers), the texture's numbers, the fill
    colour, the background's grey level and its tint."""
    return render_many([shape], [texture], config, [rng])[0]


def render_many(shapes, textures, config: WorldConfig, rngs: list) -> np.ndarray:
    """Images (N, S, S, 3) uint8: ``render(shapes[i], textures[i], config, rngs[i])`` for every i, the
    pixels computed for all items at once."""
    return render_with_coverage(shapes, textures, config, rngs)[0]


def render_with_coverage(shapes, textures, config: WorldConfig, rngs: list) -> tuple[np.ndarray, np.ndarray]:
    """``render_many``'s images and each silhouette's coverage (N, S, S) in [0, 1] (``shape_alpha``'s, from
    the same draws)."""
    shapes, textures = np.asarray(shapes, dtype=np.int64), np.asarray(textures, dtype=np.int64)
    n, size, period = len(rngs), config.image_size, config.texture_period
    for labels, names, kind in ((shapes, SHAPES, "shape"), (textures, TEXTURES, "texture")):
        if len(labels) != n or np.any((labels < 0) | (labels >= len(names))):
            raise ParameterError(f"{kind} labels must be {n} integers in 0..{len(names) - 1}, got {labels.tolist()[:8]}")
    poses = [_draw_pose(rng, config.object_placement) for rng in rngs]
    texture_draws = [_draw_texture(TEXTURES[texture], size, period, rng) for texture, rng in zip(textures, rngs)]
    colours = np.stack([rng.uniform(0.35, 1.0, size=3).astype(np.float32) for rng in rngs])
    alpha, pattern = np.empty((n, size, size), np.float32), np.empty((n, size, size), np.float32)
    for label, name in enumerate(SHAPES):
        if len(items := np.flatnonzero(shapes == label)):
            alpha[items] = _shape_alphas(name, size, [poses[i] for i in items])
    for label, name in enumerate(TEXTURES):
        if len(items := np.flatnonzero(textures == label)):
            pattern[items] = _texture_patterns(name, size, period, [texture_draws[i] for i in items])
    fill = colours[:, None, None, :] * (0.25 + 0.75 * pattern[..., None])
    # Background luminance on the far side of the fill's, so the silhouette stays visible.
    bright = fill.reshape(n, -1).mean(axis=1) > 0.45
    grey = np.array([rng.uniform(0.0, 0.25) if light else rng.uniform(0.7, 0.95) for light, rng in zip(bright, rngs)])
    tint = np.stack([rng.uniform(-0.05, 0.05, size=3) for rng in rngs])
    background = np.clip(grey[:, None] + tint, 0, 1).astype(np.float32)[:, None, None, :]
    image = alpha[..., None] * fill + (1 - alpha[..., None]) * background
    return np.round(image * 255).astype(np.uint8), alpha


def _item_rng(seed: int, split: str, index: int, epoch: int = 0) -> np.random.Generator:
    return np.random.default_rng([seed, SPLITS[split], epoch, index])


def _sample_texture(shape: int, correlation: float, rng: np.random.Generator) -> int:
    if rng.uniform() < correlation:
        return shape
    return int((shape + rng.integers(1, len(TEXTURES))) % len(TEXTURES))


def _quality_rng(seed: int, index: int, epoch: int) -> np.random.Generator:
    return np.random.default_rng([seed, SPLITS["train"], epoch, index, QUALITY_STREAM])


def _draw_degradation(config: WorldConfig, rng: np.random.Generator) -> tuple[str, int] | None:
    # The coin comes first, so the images degraded at a smaller quality_variation stay degraded
    # (by the same family and level) at a larger one: settings of a sweep are nested.
    if rng.uniform() >= config.quality_variation:
        return None
    family = config.quality_families[rng.integers(len(config.quality_families))]
    return family, int(rng.integers(LEVELS[0], LEVELS[-1] + 1))


def training_degradation(index: int, seed: int, epoch: int, config: WorldConfig) -> tuple[str, int] | None:
    """(family, level) that degrades training item `index` of `epoch`, or None (clean).

    Degraded with probability ``config.quality_variation``; the family is uniform over
    ``config.quality_families`` and the level uniform over the integers 1..5 (the IQA levels).
    A pure function of (seed, index, epoch, config), like the image itself."""
    return _draw_degradation(config, _quality_rng(seed, index, epoch))


def degrade(image: np.ndarray, family: str, level: int, rng: np.random.Generator) -> np.ndarray:
    """A uint8 image after one distortion family at an integer level 1..5."""
    degraded = DISTORTIONS[family](image.astype(np.float32) / 255.0, level, rng)
    return np.round(np.clip(degraded, 0, 1) * 255).astype(np.uint8)


def _chunk(size: int) -> int:
    """Items rendered together: about 2M supersampled pixels (16 MB a float64 array), at least one."""
    return max(1, (1 << 21) // (size * SUPERSAMPLE) ** 2)


def _parts(n: int, size: int) -> list[slice]:
    """Items 0..n in the chunks they are rendered in."""
    chunk = _chunk(size)
    return [slice(begin, min(n, begin + chunk)) for begin in range(0, n, chunk)]


def make_pair(index: int, seed: int, config: WorldConfig, split: str = "train", epoch: int = 0):
    """Training/test item `index`: (image, shape label, texture label, caption). Classes cycle
    through the index, so any contiguous range is class-balanced. Training images may be
    degraded (see training_degradation); other splits are always clean."""
    sample = make_pairs(1, seed, config, split, epoch, start=index)
    return sample.images[0], int(sample.shape_labels[0]), int(sample.texture_labels[0]), sample.captions[0]


def make_pairs(n: int, seed: int, config: WorldConfig, split: str = "train", epoch: int = 0,
               start: int = 0, progress: bool = False, workers: int = 1) -> WorldSample:
    """Items start..start+n of a split (see make_pair), drawn by ``workers`` threads (numpy and PIL work
    outside the GIL: on two cores, two threads take about two thirds of one's time). The items are the same
    whatever the number."""
    from tqdm import tqdm  # plain text bars: no widget library needed in notebooks

    images = np.empty((n, config.image_size, config.image_size, 3), np.uint8)
    shapes = (np.arange(start, start + n) % len(SHAPES)).astype(np.int64)
    textures, captions, degradations = np.empty(n, np.int64), [None] * n, [None] * n
    degraded = split == "train" and config.quality_variation > 0

    def draw(part: slice) -> int:
        # An item's stream: its texture's coin, render's numbers, then its caption's template.
        rngs = [_item_rng(seed, split, start + i, epoch) for i in range(part.start, part.stop)]
        textures[part] = [_sample_texture(int(shape), config.texture_correlation, rng)
                          for shape, rng in zip(shapes[part], rngs)]
        images[part] = render_many(shapes[part], textures[part], config, rngs)
        captions[part] = [CAPTION_TEMPLATES[rng.integers(len(CAPTION_TEMPLATES))].format(SHAPES[shape])
                          for shape, rng in zip(shapes[part], rngs)]
        for i in range(part.start, part.stop) if degraded else ():
            quality_rng = _quality_rng(seed, start + i, epoch)
            degradations[i] = _draw_degradation(config, quality_rng)
            if degradations[i] is not None:  # the distortion's own noise continues the same stream
                images[i] = degrade(images[i], *degradations[i], quality_rng)
        return part.stop - part.start

    parts = _parts(n, config.image_size)
    with tqdm(total=n, desc=f"world:{split}", disable=not progress, leave=False) as bar:
        if workers > 1 and len(parts) > 1:
            with ThreadPoolExecutor(workers) as pool:
                for done in pool.map(draw, parts):
                    bar.update(done)
        else:
            for part in parts:
                bar.update(draw(part))
    return WorldSample(images, shapes, textures, captions, degradations if split == "train" else None)


def make_items(indices, seed: int, config: WorldConfig, split: str = "train", epoch: int = 0) -> WorldSample:
    """The items of a split at ``indices``, in that order: each exactly as :func:`make_pairs` draws it (an
    item's numbers are its own), without drawing the ones between."""
    items = [make_pairs(1, seed, config, split, epoch, start=int(i)) for i in indices]
    return WorldSample(np.concatenate([item.images for item in items]),
                       np.concatenate([item.shape_labels for item in items]),
                       np.concatenate([item.texture_labels for item in items]),
                       [item.captions[0] for item in items],
                       [item.degradations[0] for item in items] if split == "train" else None)


def make_test_set(n_per_class: int, seed: int, config: WorldConfig) -> WorldSample:
    """Held-out images from the training distribution (same texture_correlation), balanced."""
    return make_pairs(n_per_class * len(SHAPES), seed, config, split="test")


def make_cue_conflict(n_per_pair: int, seed: int, config: WorldConfig) -> WorldSample:
    """Shape of class i with the canonical texture of class j != i, every ordered pair n times."""
    pairs = [(i, j) for i in range(len(SHAPES)) for j in range(len(TEXTURES)) if i != j]
    n = len(pairs) * n_per_pair
    shapes, textures = (np.array([pairs[k % len(pairs)][side] for k in range(n)], np.int64) for side in (0, 1))
    images = np.empty((n, config.image_size, config.image_size, 3), np.uint8)
    for part in _parts(n, config.image_size):
        images[part] = render_many(shapes[part], textures[part], config,
                                   [_item_rng(seed, "cue_conflict", k) for k in range(part.start, part.stop)])
    captions = [CAPTION_TEMPLATES[0].format(SHAPES[s]) for s in shapes]
    return WorldSample(images, shapes, textures, captions)
