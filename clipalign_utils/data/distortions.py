"""TID2013-style distortion families for small images, five severity levels each.

Every family is a function ``(image, level, rng) -> image`` on float32 HxWx3 arrays in
[0, 1]; the result is clipped to [0, 1]. Names follow TID2013's distortion types
(Ponomarenko et al., 2015). Levels are tuned for the 32-64 px images a small model
sees: level 1 is barely visible at that size, level 5 is strong.

Random families draw one noise field per call and scale or threshold it by level, so
with the same seed a higher level is the same corruption, only stronger.
"""

from __future__ import annotations

import io
from typing import Callable

import numpy as np
from PIL import Image

from clipalign_utils.errors import ParameterError

LEVELS = (1, 2, 3, 4, 5)

# One row per family: the parameter used at levels 1..5 (values in [0, 1] image units
# unless stated). Tuned on the embedded photos at 32 px so that mean HaarPSI falls from
# about 0.9-1.0 at level 1 to 0.2-0.5 at level 5; mean_shift stays milder (about 0.9)
# because HaarPSI, like most metrics, barely sees a uniform brightness change.
LEVEL_PARAMETERS: dict[str, dict[str, tuple[float, ...]]] = {
    "additive_gaussian_noise": {"sigma": (0.012, 0.025, 0.05, 0.09, 0.15)},
    "gaussian_blur": {"sigma_px": (0.5, 0.7, 1.0, 1.4, 2.0)},
    "jpeg_compression": {"quality": (90, 60, 35, 18, 8)},
    "contrast_change": {"contrast": (0.85, 0.7, 0.55, 0.4, 0.25)},
    "mean_shift": {"shift": (0.04, 0.08, 0.13, 0.19, 0.26)},
    "change_of_color_saturation": {"saturation": (0.8, 0.6, 0.4, 0.2, 0.0)},
    "impulse_noise": {"fraction": (0.002, 0.005, 0.01, 0.025, 0.06)},
    "quantization_noise": {"grey_levels": (32, 16, 8, 5, 3)},
}

# ITU-R BT.601 luma weights, as in JPEG and TID2013's colour handling.
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def _param(family: str, level: int) -> float:
    (values,) = LEVEL_PARAMETERS[family].values()
    return values[level - 1]


def _finish(image: np.ndarray) -> np.ndarray:
    return np.clip(image, 0.0, 1.0).astype(np.float32, copy=False)


def additive_gaussian_noise(image: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    """Add zero-mean Gaussian noise, independent per pixel and channel."""
    noise = rng.standard_normal(image.shape, dtype=np.float32)
    return _finish(image + _param("additive_gaussian_noise", level) * noise)


def gaussian_blur(image: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    """Blur each channel with a Gaussian kernel (sigma in pixels)."""
    sigma = _param("gaussian_blur", level)
    from scipy.ndimage import gaussian_filter  # here: the command's process imports this module, not scipy.ndimage

    return _finish(gaussian_filter(image, sigma=(sigma, sigma, 0), mode="reflect"))


def jpeg_compression(image: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    """Round-trip through PIL's JPEG encoder at a quality that falls with level."""
    pil = Image.fromarray(_to_uint8(image))
    buffer = io.BytesIO()
    pil.save(buffer, format="JPEG", quality=int(_param("jpeg_compression", level)))
    buffer.seek(0)
    decoded = np.asarray(Image.open(buffer).convert("RGB"), dtype=np.float32) / 255.0
    return _finish(decoded)


def contrast_change(image: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    """Pull every value towards the image mean (contrast decrease)."""
    mean = image.mean()
    return _finish(mean + _param("contrast_change", level) * (image - mean))


def mean_shift(image: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    """Shift brightness by a constant, towards whichever end has more room.

    Dark images get brighter and bright ones darker, so clipping cannot hide the shift.
    """
    direction = 1.0 if image.mean() < 0.5 else -1.0
    return _finish(image + direction * _param("mean_shift", level))


def change_of_color_saturation(image: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    """Blend towards the luma image (desaturation); a no-op on grey images."""
    grey = (image @ _LUMA)[..., None]
    return _finish(grey + _param("change_of_color_saturation", level) * (image - grey))


def impulse_noise(image: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    """Salt-and-pepper noise: a fraction of pixels set to black or white (all channels)."""
    height, width = image.shape[:2]
    # An exact count (at least one) rather than a per-pixel coin: on a 32 px image a 0.2 %
    # coin would often hit nothing. Taking the first n of one random order makes the
    # corrupted set grow with level for a fixed seed.
    count = max(1, round(_param("impulse_noise", level) * height * width))
    hit = rng.permutation(height * width)[:count]
    salt = rng.random(count) < 0.5
    out = image.copy().reshape(height * width, -1)
    out[hit[salt]] = 1.0
    out[hit[~salt]] = 0.0
    return _finish(out.reshape(image.shape))


def quantization_noise(image: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    """Quantise each channel to fewer grey levels."""
    steps = _param("quantization_noise", level) - 1
    return _finish(np.round(image * steps) / steps)


DISTORTIONS: dict[str, Callable[[np.ndarray, int, np.random.Generator], np.ndarray]] = {
    "additive_gaussian_noise": additive_gaussian_noise,
    "gaussian_blur": gaussian_blur,
    "jpeg_compression": jpeg_compression,
    "contrast_change": contrast_change,
    "mean_shift": mean_shift,
    "change_of_color_saturation": change_of_color_saturation,
    "impulse_noise": impulse_noise,
    "quantization_noise": quantization_noise,
}


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)


def check_distortion(name: str, level: int) -> None:
    """Raise ParameterError unless ``name`` is a known family and ``level`` is 1..5."""
    if name not in DISTORTIONS:
        raise ParameterError(f"unknown distortion {name!r}; allowed: {', '.join(DISTORTIONS)}")
    if isinstance(level, bool) or not isinstance(level, (int, np.integer)) or level not in LEVELS:
        raise ParameterError(f"distortion level must be an integer 1..5, got {level!r}")


def apply_distortion(image: np.ndarray, name: str, level: int, seed: int) -> np.ndarray:
    """Distort ``image`` (float in [0, 1] or uint8, HxWx3); deterministic given ``seed``."""
    check_distortion(name, level)
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ParameterError(f"image must be HxWx3, got shape {image.shape}")
    if image.dtype == np.uint8:
        image = image.astype(np.float32) / 255.0
    image = image.astype(np.float32, copy=False)
    return DISTORTIONS[name](image, int(level), np.random.default_rng(seed))
