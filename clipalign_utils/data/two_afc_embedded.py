"""An offline low-level 2AFC set, in the spirit of BAPPS's ``traditional`` subset.

Each triplet is a reference image and two damaged versions of it, p0 and p1, carrying *different
kinds* of damage (two of the TID2013-style families of :mod:`.distortions`) of close perceived
strength, so which one is closer to the reference is a real question. References are bundled
scikit-image photographs (not the three used as training textures by the shape–texture world) and
a few renders of the world itself.

Nobody judged these triplets. A *reference panel* of five classical full-reference metrics that
need no learned weights votes instead: HaarPSI, MDSI, VSI, FSIM (chromatic) and MS-GMSD
(chromatic), each a published model of human quality judgments. ``p`` = the fraction of panel
members that judge p1 closer to the reference (a tie counts ½). The panel is not people: it stands
in for them, and how often its members agree with each other bounds what "agreement" can mean.

Like the embedded IQA set, the panel sees the images enlarged by ``observer_scale`` (bicubic, the
"observer view" of :mod:`.iqa_embedded`), as a person would view a small image on screen.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from clipalign_utils.data import world
from clipalign_utils.data.distortions import DISTORTIONS, LEVELS, apply_distortion
from clipalign_utils.data.iqa_embedded import (
    PHOTO_LOADERS,
    _observer_view,
    observer_quality,
    reference_photos,
    resize_square,
)
from clipalign_utils.errors import ParameterError
from clipalign_utils.prose import plural

# The world's photo textures (brick, grass, gravel) are what the model trains on: not references here.
TRAINING_TEXTURE_PHOTOS: tuple[str, ...] = tuple(name for name in world.TEXTURES if name in PHOTO_LOADERS)
TWO_AFC_PHOTOS: tuple[str, ...] = tuple(
    name for name in ("astronaut", "camera", "chelsea", "coffee", "rocket", "motorcycle", "coins", "moon",
                      "hubble_deep_field")
    if name in PHOTO_LOADERS and name not in TRAINING_TEXTURE_PHOTOS)
N_WORLD_REFERENCES = 6  # renders of the first 6 shape classes
PANEL: tuple[str, ...] = ("haarpsi", "mdsi", "vsi", "fsim", "ms_gmsd")
_SEED_STREAM = 16  # keeps this set's noise apart from the IQA set's (which seeds [seed, ref, family])
_WORLD_STREAM = 1016  # world renders of this set: a stream disjoint from world.SPLITS' codes
_BATCH = 16


@dataclass
class EmbeddedTwoAFC:
    """Triplet i is (ref[i], p0[i], p1[i]), all uint8 (N, S, S, 3); ``triplets`` row i describes it.

    ``triplets`` columns: subset (photo | world), p (panel fraction choosing p1), reference,
    distortion0, level0, distortion1, level1, and choice_<member> per panel member (1 = p1 closer,
    0 = p0 closer, 0.5 = tie).
    """

    ref: np.ndarray
    p0: np.ndarray
    p1: np.ndarray
    triplets: pd.DataFrame
    panel: tuple[str, ...]
    observer_scale: int


# ---------------------------------------------------------------------------- panel members
def _distance_from_quality(name: str) -> Callable:
    def member(references, distorted, reference_index, scale):
        return 1.0 - observer_quality(references, distorted, reference_index, name, scale)
    return member


def _vsi(x, y):
    import piq  # here, not at the top: a cached set never scores (data/cache.py)

    return 1.0 - piq.vsi(x, y, data_range=1.0, reduction="none")


def _fsim(x, y):
    import piq

    return 1.0 - piq.fsim(x, y, data_range=1.0, reduction="none", chromatic=True)


def _ms_gmsd(x, y):
    import piq

    return piq.multi_scale_gmsd(x, y, data_range=1.0, reduction="none", chromatic=True)


def _distance_from_piq(metric: Callable) -> Callable:
    def member(references, distorted, reference_index, scale):
        import torch

        reference_index = torch.as_tensor(np.asarray(reference_index), dtype=torch.long)
        out = [np.zeros(0)]
        with torch.no_grad():
            reference_views = _observer_view(references, scale)
            for start in range(0, len(distorted), _BATCH):
                x = _observer_view(distorted[start:start + _BATCH], scale)
                out.append(metric(x, reference_views[reference_index[start:start + _BATCH]]).double().numpy())
        return np.concatenate(out)
    return member


# Distance of each distorted image to its reference, one function per member (lower = closer).
PANEL_DISTANCES: dict[str, Callable] = {
    "haarpsi": _distance_from_quality("haarpsi"),  # 1 − HaarPSI
    "mdsi": _distance_from_quality("mdsi"),  # MDSI (a deviation)
    "vsi": _distance_from_piq(_vsi),  # 1 − VSI
    "fsim": _distance_from_piq(_fsim),  # 1 − FSIMc
    "ms_gmsd": _distance_from_piq(_ms_gmsd),  # MS-GMSDc (a deviation)
}
# MS-GMSD's 4 scales need 17 px; HaarPSI and MDSI 32 (see iqa_embedded.OBSERVER_MIN_SIZE).
PANEL_MIN_SIZE = 32


def panel_distances(references: np.ndarray, distorted: np.ndarray, reference_index, observer_scale: int = 3,
                    panel=PANEL) -> np.ndarray:
    """(len(distorted), len(panel)) distances of ``distorted[i]`` to ``references[reference_index[i]]``."""
    unknown = [name for name in panel if name not in PANEL_DISTANCES]
    if unknown:
        raise ParameterError(f"unknown panel {plural(len(unknown), 'member')} {unknown}; "
                             f"allowed: {', '.join(PANEL_DISTANCES)}")
    if not isinstance(observer_scale, (int, np.integer)) or observer_scale < 1:
        raise ParameterError(f"observer_scale must be a positive integer, got {observer_scale!r}")
    if references.shape[1] * observer_scale < PANEL_MIN_SIZE:
        raise ParameterError(f"the panel needs images of at least {PANEL_MIN_SIZE} px after enlarging; "
                             f"image_size x observer_scale = {references.shape[1] * observer_scale}")
    with _one_thread():
        return np.stack([PANEL_DISTANCES[name](references, distorted, reference_index, observer_scale)
                         for name in panel], axis=1)


@contextmanager
def _one_thread():
    """Run torch on one thread, then restore: the panel's many small tensors gain nothing from more,
    and on a busy 2-core machine two threads ran 2-3x slower (9.9 s vs 26 s wall for the default set)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def choices_from_distances(d0, d1) -> np.ndarray:
    """A judge's choice per triplet from its distances (a panel member's, a model's): 1 = p1 closer (d1 < d0),
    0 = p0 closer, 0.5 = tie, nan where either distance is not finite (no decision, as the 2AFC score has none:
    a nan is neither closer nor equal, and had read as a tie)."""
    d0, d1 = np.asarray(d0, dtype=float), np.asarray(d1, dtype=float)
    choices = np.where(d1 < d0, 1.0, np.where(d0 < d1, 0.0, 0.5))
    return np.where(np.isfinite(d0) & np.isfinite(d1), choices, np.nan)


# ------------------------------------------------------------------------------- references
def world_renders(image_size: int, seed: int, n: int = N_WORLD_REFERENCES, texture_scale: float = 1.0,
                  object_placement: str = "varied") -> dict[str, np.ndarray]:
    """``n`` renders of the shape–texture world (shape k mod 8, a random texture), on their own stream."""
    config = world.WorldConfig(int(image_size), texture_scale=float(texture_scale), object_placement=object_placement)
    renders = {}
    for k in range(n):
        rng = np.random.default_rng([int(seed), _WORLD_STREAM, k])
        shape = k % len(world.SHAPES)
        texture = int(rng.integers(len(world.TEXTURES)))
        renders[f"world_{world.SHAPES[shape]}_{world.TEXTURES[texture]}_{k}"] = world.render(shape, texture, config,
                                                                                              rng)
    return renders


def make_embedded_two_afc(
    image_size: int = 32,
    seed: int = 0,
    n_per_reference: int = 18,
    photos=TWO_AFC_PHOTOS,
    n_world: int = N_WORLD_REFERENCES,
    texture_scale: float = 1.0,
    object_placement: str = "varied",
    observer_scale: int = 3,
    panel=PANEL,
) -> EmbeddedTwoAFC:
    """Triplets of a reference and two differently damaged versions, with the panel's vote.

    Per reference, every distortion family is applied once at a level drawn from 1..5; a variant
    that leaves the pixels unchanged (desaturating a grey photo) is dropped. Every pair of variants
    is a candidate triplet (two different families). Each member's distances are z-scored over the
    whole set, a variant's *strength* is the mean z over members, and per reference the
    ``n_per_reference`` pairs of closest strength are kept: damage of close perceived strength, so
    the panel's choice is not a foregone conclusion. p0/p1 order is random. Deterministic in ``seed``.

    Cost: the default (9 photos + 6 renders, ~115 damaged images, 270 triplets at 32 px, panel view
    96 px) takes about 5 s of one CPU core, most of it VSI and FSIM.
    """
    if not isinstance(image_size, (int, np.integer)) or image_size < 16:
        raise ParameterError(f"image_size must be an integer >= 16, got {image_size!r}")
    if not isinstance(n_per_reference, (int, np.integer)) or n_per_reference < 1:
        raise ParameterError(f"n_per_reference must be a positive integer, got {n_per_reference!r}")
    clash = [name for name in photos if name in TRAINING_TEXTURE_PHOTOS]
    if clash:
        which = f"photo {clash} is one of" if len(clash) == 1 else f"photos {clash} are"
        raise ParameterError(f"{which} the world's training textures: not references for 2AFC")
    sources = {name: resize_square(image, image_size) for name, image in reference_photos(photos).items()}
    kinds = {name: "photo" for name in sources}
    for name, image in world_renders(image_size, seed, n_world, texture_scale, object_placement).items():
        sources[name], kinds[name] = image, "world"
    names = list(sources)
    references = np.stack([sources[name] for name in names])

    families = list(DISTORTIONS)
    rng = np.random.default_rng([int(seed), _SEED_STREAM])
    variants, rows = [], []  # rows: (reference_index, family, level)
    for ref_index in range(len(names)):
        levels = rng.integers(LEVELS[0], LEVELS[-1] + 1, size=len(families))
        for family_index, (family, level) in enumerate(zip(families, levels)):
            state = np.random.SeedSequence([int(seed), _SEED_STREAM, ref_index, family_index]).generate_state(1)[0]
            pixels = np.round(apply_distortion(references[ref_index], family, int(level), int(state)) * 255.0)
            pixels = pixels.astype(np.uint8)
            if np.array_equal(pixels, references[ref_index]):
                continue
            variants.append(pixels)
            rows.append((ref_index, family, int(level)))
    variants = np.stack(variants)
    variant_ref = np.array([row[0] for row in rows])
    distances = panel_distances(references, variants, variant_ref, observer_scale, panel)
    spread = distances.std(axis=0)
    strength = ((distances - distances.mean(axis=0)) / np.where(spread > 0, spread, 1.0)).mean(axis=1)

    picked = []  # (variant a, variant b)
    for ref_index in range(len(names)):
        own = np.flatnonzero(variant_ref == ref_index)
        pairs = [(a, b) for i, a in enumerate(own) for b in own[i + 1:]
                 if not np.array_equal(variants[a], variants[b])]
        order = rng.permutation(len(pairs))  # random tie-break, then the closest strengths first
        gaps = np.array([abs(strength[a] - strength[b]) for a, b in pairs])
        keep = order[np.argsort(gaps[order], kind="stable")][:n_per_reference]
        picked.extend(pairs[k] for k in sorted(keep))
    swap = rng.random(len(picked)) < 0.5
    first = np.array([b if s else a for (a, b), s in zip(picked, swap)], dtype=int)
    second = np.array([a if s else b for (a, b), s in zip(picked, swap)], dtype=int)

    # a member without a finite distance casts a tie (½), as before: a nan vote would make p nan and
    # metrics.two_afc.panel_agreement refuse the set
    choices = np.nan_to_num(choices_from_distances(distances[first], distances[second]), nan=0.5)
    triplets = pd.DataFrame({
        "subset": [kinds[names[variant_ref[a]]] for a in first],
        "p": choices.mean(axis=1),
        "reference": [names[variant_ref[a]] for a in first],
        "distortion0": [rows[a][1] for a in first],
        "level0": [rows[a][2] for a in first],
        "distortion1": [rows[b][1] for b in second],
        "level1": [rows[b][2] for b in second],
    })
    for k, member in enumerate(panel):
        triplets[f"choice_{member}"] = choices[:, k]
    return EmbeddedTwoAFC(ref=references[variant_ref[first]], p0=variants[first], p1=variants[second],
                          triplets=triplets, panel=tuple(panel), observer_scale=int(observer_scale))
