"""An offline IQA set: bundled photographs, TID2013-style distortions, a reference observer.

No human opinion scores exist offline, so a classical full-reference metric from ``piq``
stands in for the human observer; its published rank correlation with TID2013's MOS says
how human-like it is. The model and the observer see the same uint8 pixels: the model at
``image_size``, the observer after both images are enlarged by ``observer_scale``, as a
person would view a small image on screen (and at a size where the metric is valid).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np
import pandas as pd
from PIL import Image
from skimage import data as skdata
from tqdm import tqdm  # plain text bars: no widget library needed in notebooks

from clipalign_utils.data.distortions import DISTORTIONS, LEVELS, apply_distortion, check_distortion
from clipalign_utils.errors import ParameterError
from clipalign_utils.prose import plural

if TYPE_CHECKING:  # piq and torch where the observer scores: a cached set never imports them (data/cache.py)
    import torch

# Real photographs that ship inside the scikit-image wheel (no pooch download).
PHOTO_LOADERS: dict[str, Callable[[], np.ndarray]] = {
    "astronaut": skdata.astronaut,
    "camera": skdata.camera,
    "chelsea": skdata.chelsea,
    "coffee": skdata.coffee,
    "rocket": skdata.rocket,
    "motorcycle": lambda: skdata.stereo_motorcycle()[0],
    "coins": skdata.coins,
    "moon": skdata.moon,
    "brick": skdata.brick,
    "grass": skdata.grass,
    "gravel": skdata.gravel,
    "hubble_deep_field": skdata.hubble_deep_field,
    "clock": skdata.clock,
    "immunohistochemistry": skdata.immunohistochemistry,
}
# None of the photos the world's training textures are cut from (world.TEXTURE_PHOTOS): a model
# trained on those textures would be judged on images it has seen.
DEFAULT_PHOTOS: tuple[str, ...] = (
    "astronaut", "camera", "chelsea", "coffee", "rocket",
    "motorcycle", "coins", "moon", "clock", "immunohistochemistry",
)

# Spearman rank correlation with TID2013 MOS (3000 distorted images), as published.
OBSERVER_TID2013_SRCC: dict[str, float] = {
    "haarpsi": 0.873,
    "mdsi": 0.890,
    "ms_ssim": 0.787,
    "ssim": 0.637,
}
OBSERVER_SOURCES: dict[str, str] = {
    "haarpsi": (
        "Reisenhofer, Bosse, Kutyniok & Wiegand (2018), A Haar wavelet-based perceptual "
        "similarity index for image quality assessment, Signal Processing: Image "
        "Communication 61, 33-43; TID2013 SROCC 0.8732 (also reproduced by piq's benchmark)"
    ),
    "mdsi": (
        "Nafchi, Shahkolaei, Hedjam & Cheriet (2016), Mean deviation similarity index: "
        "efficient and reliable full-reference image quality evaluator, IEEE Access 4, "
        "5579-5590 (arXiv:1608.07433); TID2013 SROCC 0.8899 (as tabulated in piq's README)"
    ),
    "ms_ssim": (
        "Ponomarenko et al. (2015), Image database TID2013: peculiarities, results and "
        "perspectives, Signal Processing: Image Communication 30, 57-77; MS-SSIM SROCC "
        "0.787 (as tabulated in piq's README)"
    ),
    "ssim": (
        "Ponomarenko et al. (2015), Image database TID2013: peculiarities, results and "
        "perspectives, Signal Processing: Image Communication 30, 57-77; SSIM SROCC 0.637 "
        "(as tabulated in piq's README)"
    ),
}


def _haarpsi(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    import piq

    # subsample=False: the views arrive 2x2-averaged already (see _PREAVERAGED).
    return piq.haarpsi(x, y, data_range=1.0, reduction="none", subsample=False)


def _ms_ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    import piq

    return piq.multi_scale_ssim(x, y, data_range=1.0, reduction="none")


def _ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    import piq

    return piq.ssim(x, y, data_range=1.0, reduction="none")


def _mdsi(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    import piq

    # MDSI is a deviation (0 = identical); 1 - MDSI turns it into a quality, rank-preserving.
    return 1.0 - piq.mdsi(x, y, data_range=1.0, reduction="none")


OBSERVERS: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "haarpsi": _haarpsi,
    "ms_ssim": _ms_ssim,
    "ssim": _ssim,
    "mdsi": _mdsi,
}
# piq's MS-SSIM needs (11 - 1) * 2**4 + 1 pixels a side; the others are happy at 32.
OBSERVER_MIN_SIZE = {"haarpsi": 32, "ms_ssim": 161, "ssim": 11, "mdsi": 32}

# HaarPSI's first step is a 2x2 average of its YIQ input (piq's subsample=True). Averaging
# the RGB view instead is identical (the colour transform is per pixel and linear) and
# makes piq's slow colour conversion run on a quarter of the pixels: ~2x faster overall.
_PREAVERAGED = {"haarpsi"}
# Small batches stay in cache: on CPU, 16 pairs a call ran faster than 64 or 128.
_OBSERVER_BATCH = 16
_PROGRESS_FROM = 512  # pairs; fewer take only a few seconds


@dataclass
class IQASet:
    """Reference and distorted images (uint8) and one row per distorted image in ``pairs``."""

    references: np.ndarray  # (R, S, S, 3) uint8
    reference_names: list[str]
    distorted: np.ndarray  # (P, S, S, 3) uint8; row i belongs to pairs.iloc[i]
    pairs: pd.DataFrame  # reference, reference_index, distortion, level, quality
    observer: str
    observer_srcc_tid2013: float
    name: str = "embedded"


def reference_photos(names: Sequence[str] = DEFAULT_PHOTOS) -> dict[str, np.ndarray]:
    """Load bundled scikit-image photographs as square (center-cropped) uint8 RGB arrays."""
    unknown = [name for name in names if name not in PHOTO_LOADERS]
    if unknown:
        raise ParameterError(f"unknown {plural(len(unknown), 'photo')} {unknown}; allowed: {', '.join(PHOTO_LOADERS)}")
    return {name: center_crop(_to_rgb_uint8(PHOTO_LOADERS[name]())) for name in names}


def _to_rgb_uint8(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ParameterError(f"reference images must be uint8, got {image.dtype}")
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ParameterError(f"reference images must be HxW or HxWx3, got shape {image.shape}")
    return np.ascontiguousarray(image[..., :3])


def center_crop(image: np.ndarray) -> np.ndarray:
    """The largest centred square of ``image``."""
    height, width = image.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    return image[top : top + side, left : left + side]


def resize_square(image: np.ndarray, size: int) -> np.ndarray:
    """Center-crop and resize to ``size`` x ``size`` with PIL's antialiased bicubic filter."""
    square = center_crop(_to_rgb_uint8(image))
    return np.asarray(Image.fromarray(square).resize((size, size), Image.Resampling.BICUBIC))


def _bicubic_matrix(size: int, scale: int) -> torch.Tensor:
    """(size*scale, size) matrix M with M @ X @ M.T == torch's bicubic upsampling of X."""
    # Bicubic resampling is separable and linear, so two small matmuls replace torch's
    # per-pixel CPU kernel (several times slower); the matrix is its response to one-hots.
    import torch
    import torch.nn.functional as F

    one_hots = torch.eye(size).reshape(size, 1, 1, size)
    response = F.interpolate(one_hots, size=(1, size * scale), mode="bicubic", align_corners=False)
    return response[:, 0, 0, :].T.contiguous()


def _observer_view(images: np.ndarray, scale: int, average: bool = False) -> torch.Tensor:
    """uint8 (N,S,S,3) -> float (N,3,S*scale,S*scale) in [0, 1], enlarged bicubically.

    ``average`` then 2x2-averages the view, as HaarPSI itself would first do.
    """
    import torch
    import torch.nn.functional as F

    view = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255.0
    if scale > 1:
        upsample = _bicubic_matrix(images.shape[1], scale)
        view = (upsample @ view @ upsample.T).clamp_(0.0, 1.0)
    return F.avg_pool2d(view, kernel_size=2) if average else view


def _check_observer(observer: str, image_size: int, observer_scale: int) -> None:
    if observer not in OBSERVERS:
        raise ParameterError(f"unknown observer {observer!r}; allowed: {', '.join(OBSERVERS)}")
    if not isinstance(observer_scale, (int, np.integer)) or observer_scale < 1:
        raise ParameterError(f"observer_scale must be a positive integer, got {observer_scale!r}")
    side = image_size * observer_scale
    if side < OBSERVER_MIN_SIZE[observer]:
        raise ParameterError(
            f"observer {observer!r} needs images of at least {OBSERVER_MIN_SIZE[observer]} px "
            f"after enlarging; image_size x observer_scale = {side}: raise observer_scale"
        )


def observer_quality(
    references: np.ndarray,
    distorted: np.ndarray,
    reference_index: np.ndarray,
    observer: str = "haarpsi",
    observer_scale: int = 8,
) -> np.ndarray:
    """Observer quality (higher = better, 1 = identical) of ``distorted[i]`` against
    ``references[reference_index[i]]``; all uint8 (N,S,S,3)."""
    import torch

    _check_observer(observer, references.shape[1], observer_scale)
    metric, average = OBSERVERS[observer], observer in _PREAVERAGED
    reference_index = torch.tensor(np.asarray(reference_index), dtype=torch.long)
    starts = range(0, len(distorted), _OBSERVER_BATCH)
    progress = {"desc": f"observer {observer}", "disable": len(distorted) < _PROGRESS_FROM, "leave": False}
    scores = [np.zeros(0)]
    with torch.no_grad():
        reference_views = _observer_view(references, observer_scale, average)
        for start in tqdm(starts, **progress):
            stop = start + _OBSERVER_BATCH
            x = _observer_view(distorted[start:stop], observer_scale, average)
            y = reference_views[reference_index[start:stop]]
            scores.append(metric(x, y).double().numpy())
    return np.clip(np.concatenate(scores), 0.0, 1.0)


UNCHANGED_DROPPED = ("a distortion that leaves a reference's pixels unchanged (desaturating a grey photo) makes "
                     "no pair that anyone could rank, so the set leaves it out")


def make_embedded_iqa(
    image_size: int = 32,
    extra_references: dict[str, np.ndarray] | None = None,
    distortions: Sequence[str] | None = None,
    levels: Sequence[int] = LEVELS,
    seed: int = 0,
    observer: str = "haarpsi",
    observer_scale: int = 8,
    photos: Sequence[str] = DEFAULT_PHOTOS,
) -> IQASet:
    """Distort each reference at ``image_size`` and score every pair with the observer.

    A pair whose distorted pixels equal the reference's (e.g. desaturating a grey photo)
    is dropped: nobody could rank it, and it would add only ties.
    """
    if not isinstance(image_size, (int, np.integer)) or image_size < 8:
        raise ParameterError(f"image_size must be an integer >= 8, got {image_size!r}")
    _check_observer(observer, image_size, observer_scale)
    distortions = list(DISTORTIONS) if distortions is None else list(distortions)
    for name in distortions:
        for level in levels:
            check_distortion(name, level)

    sources = reference_photos(photos)
    for name, image in (extra_references or {}).items():
        if name in sources:
            raise ParameterError(f"extra reference {name!r} clashes with a bundled photo name")
        sources[name] = image
    names = list(sources)
    references = np.stack([resize_square(sources[name], image_size) for name in names])

    rows, distorted = [], []
    family_index = {name: i for i, name in enumerate(DISTORTIONS)}
    for ref_index, ref_name in enumerate(names):
        for name in distortions:
            # One seed per (reference, family), shared by its levels: a stronger level is
            # the same noise, only stronger, so severity ranks stay clean.
            pair_seed = np.random.SeedSequence([seed, ref_index, family_index[name]])
            pair_seed = int(pair_seed.generate_state(1)[0])
            for level in levels:
                image = apply_distortion(references[ref_index], name, level, pair_seed)
                pixels = np.round(image * 255.0).astype(np.uint8)
                if np.array_equal(pixels, references[ref_index]):
                    continue
                distorted.append(pixels)
                rows.append((ref_name, ref_index, name, int(level)))

    distorted = (
        np.stack(distorted) if distorted else np.zeros((0, image_size, image_size, 3), np.uint8)
    )
    pairs = pd.DataFrame(rows, columns=["reference", "reference_index", "distortion", "level"])
    pairs["quality"] = observer_quality(
        references, distorted, pairs["reference_index"].to_numpy(), observer, observer_scale
    )
    return IQASet(
        references=references,
        reference_names=names,
        distorted=distorted,
        pairs=pairs,
        observer=observer,
        observer_srcc_tid2013=OBSERVER_TID2013_SRCC[observer],
    )
