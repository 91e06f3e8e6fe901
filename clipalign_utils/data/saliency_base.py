"""The shared pieces of the saliency sets: the set type, lazily read maps, and file-image helpers
(the MIT1003 and CAT2000 loaders and :mod:`.saliency` build on them; re-exported by :mod:`.saliency`)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from natsort import natsorted

from ..errors import DatasetError, ParameterError
from .image_sets import FileImages, ImageSet, opened_image
from .roots import IMAGE_EXTENSIONS, is_residue

Target = tuple[np.ndarray, np.ndarray]  # (density float64 H×W, fixations bool H×W)


class LazyMaps(Sequence):
    """A read-on-demand sequence: item i is ``load(i)``."""

    def __init__(self, n: int, load: Callable[[int], np.ndarray]):
        self._n, self._load = n, load

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self._load(j) for j in range(*i.indices(self._n))]
        if not -self._n <= i < self._n:
            raise IndexError(i)
        return self._load(i % self._n)


@dataclass
class SaliencySet:
    """Images with their ground truth.

    ``labels`` index ``classnames`` where an image's class is known, −1 where it is not (the
    model's top-1 zero-shot class is then the saliency target). ``target(i)`` reads image i's
    (density, fixations) at the ground truth's own resolution; ``regions`` holds optional masks
    per image by region name (``contour``, ``interior``, ``background``); ``silhouettes`` the object's
    coverage (in [0, 1]) per image where it is known (the embedded sets), for the silhouette baselines.
    """

    images: ImageSet
    names: list[str]
    labels: np.ndarray
    classnames: tuple[str, ...]
    name: str
    ground_truth: str
    load_target: Callable[[int], Target]
    regions: dict[str, list[np.ndarray]] = field(default_factory=dict)
    texture_labels: np.ndarray | None = None
    silhouettes: list[np.ndarray] | None = None  # the object's coverage per image, where it is known
    # image i's fixations without decoding its density, where a set can (40 ms a full-HD JPEG, which the image's
    # own ground truth decodes anyway): the shuffled-AUC negatives read every image's fixations
    load_fixations: Callable[[int], np.ndarray] | None = None
    # image i's file below the release's stimuli folder (POSIX, e.g. "Action/001.jpg"), where the set is read from
    # files: the per-image table names the image by it, beside its index
    stimulus_files: list[str] | None = None
    _points: dict = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.names)

    def target(self, i: int) -> Target:
        return self.load_target(i)

    @property
    def densities(self) -> LazyMaps:
        return LazyMaps(len(self), lambda i: self.target(i)[0])

    @property
    def fixation_maps(self) -> LazyMaps:
        return LazyMaps(len(self), lambda i: self.target(i)[1])

    def fixation_points(self, i: int) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
        """(rows, cols, shape) of image i's fixated pixels, kept after the first read."""
        if i not in self._points:
            fixations = self.load_fixations(i) if self.load_fixations else self.target(i)[1]
            rows, cols = np.nonzero(fixations)
            self._points[i] = (rows, cols, fixations.shape)
        return self._points[i]

    def others(self, n_other: int = 10, seed: int = 0) -> LazyMaps:
        """Per image, the union of the fixations of ``n_other`` random other images (rescaled to
        its size): the shuffled-AUC negatives, the same for every model scored on this set."""
        def load(i):
            *_, shape = self.fixation_points(i)
            candidates = np.array([j for j in range(len(self)) if j != i], dtype=int)
            chosen = np.random.default_rng([seed, i]).permutation(candidates)[:int(n_other)]
            union = np.zeros(shape, dtype=bool)
            for j in chosen:
                rows, cols, source = self.fixation_points(int(j))
                union[np.minimum(rows * shape[0] // source[0], shape[0] - 1),
                      np.minimum(cols * shape[1] // source[1], shape[1] - 1)] = True
            return union
        return LazyMaps(len(self), load)

    def example_images(self, indices) -> np.ndarray:
        """The images at ``indices`` as the model sees them, (n, S, S, 3), for figures."""
        return np.stack([self.images.arrays(int(i), int(i) + 1)[0] for i in indices])


def squashed_file_images(paths: Sequence[str | Path], name: str, size: int) -> ImageSet:
    """Whole images squashed to size × size (aspect ratio not kept, nothing cropped)."""
    return FileImages(paths, name, size, fit="resize")


# ------------------------------------------------------------------------------ embedded


def file_saliency_set(stimuli: list[Path], names: list[str], load_target: Callable[[int], Target], *,
                      dataset: str, image_size: int, ground_truth: str,
                      load_fixations: Callable[[int], np.ndarray] | None = None,
                      stimulus_files: list[str] | None = None) -> SaliencySet:
    """A SaliencySet over image files whose classes are unknown (labels −1)."""
    return SaliencySet(images=squashed_file_images(stimuli, f"saliency_{dataset}", image_size), names=names,
                       labels=np.full(len(stimuli), -1, dtype=np.int64), classnames=(), name=dataset,
                       ground_truth=ground_truth, load_target=load_target, load_fixations=load_fixations,
                       stimulus_files=stimulus_files)


def paired_file_set(stimuli_dir: Path, stimuli: list[Path], names: list[str],
                    files: Callable[[Path], tuple[Path, Path]], read_fixations: Callable[[Path], np.ndarray], *,
                    fixations_kind: str, fixations_in: str = "", dataset: str, image_size: int,
                    ground_truth: str) -> SaliencySet:
    """:func:`file_saliency_set` for a layout with two ground-truth files per stimulus: ``files(stimulus)``
    = (fixation density, fixations). A missing file is a DatasetError naming the stimulus (its path below
    ``stimuli_dir``) and what is missing ("fixation map" or ``fixations_kind``) when the set is built; the
    density is read as grey levels (:func:`read_grey`), the fixations with ``read_fixations`` (a boolean
    map), when a target is asked for, and both must have the same size (``fixations_in`` prefixes the
    fixations file in that error, e.g. "fixLocs in ")."""
    pairs = []
    for stimulus in stimuli:
        pair = files(stimulus)
        for path, what in zip(pair, ("fixation map", fixations_kind)):
            if not path.is_file():
                raise DatasetError(f"stimulus {stimulus.relative_to(stimuli_dir).as_posix()} has no {what}: "
                                   f"{path} is missing")
        pairs.append(pair)

    def same_size(density_shape: tuple[int, ...], fixations: np.ndarray, i: int) -> np.ndarray:
        if tuple(density_shape) != fixations.shape:
            raise DatasetError(f"{pairs[i][0]} is {density_shape[1]}×{density_shape[0]} px but {fixations_in}"
                               f"{pairs[i][1]} is {fixations.shape[1]}×{fixations.shape[0]} px")
        return fixations

    def load_target(i: int) -> Target:
        density = read_grey(pairs[i][0])
        return density, same_size(density.shape, read_fixations(pairs[i][1]), i)

    def load_fixations(i: int) -> np.ndarray:
        # the density's header only (PIL reads no pixels until asked): a file that is not an image, or not the
        # fixations' size, is refused here, where the step reads every image's fixations before any map is made
        with opened_image(pairs[i][0]) as density:
            width, height = density.size
        return same_size((height, width), read_fixations(pairs[i][1]), i)

    return file_saliency_set(stimuli, names, load_target, dataset=dataset, image_size=image_size,
                             ground_truth=ground_truth, load_fixations=load_fixations,
                             stimulus_files=[stimulus.relative_to(stimuli_dir).as_posix() for stimulus in stimuli])


def image_files(folder: Path) -> list[Path]:
    """The image files directly in ``folder`` in natural name order, as pysaliency lists a release's stimuli
    (``i2.jpeg`` before ``i10.jpeg``), so a first-N subset is the same images; Thumbs.db, .m files and hidden
    files ignored."""
    return natsorted((p for p in folder.iterdir()
                      if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not is_residue(p)),
                     key=lambda p: p.name)


def first_stimuli(stimuli: list[Path], n_images: int | None) -> list[Path]:
    """The first ``n_images`` of ``stimuli`` (all when None or 0); a negative count is refused rather than
    read as Python's "all but the last"."""
    if n_images is not None and int(n_images) < 0:
        raise ParameterError(f"saliency_n_images={n_images}: give a count >= 0 (0 for every image)")
    return stimuli[:int(n_images)] if n_images else stimuli


def read_grey(path: Path) -> np.ndarray:
    """An image file as (H, W) float64 grey levels 0–255, the mean of its RGB channels (DatasetError if
    unreadable). A grey file (mode L, as the releases' densities are) is read as it is: its three equal channels'
    mean is its value exactly, and a full-HD JPEG density reads in 40 ms rather than 59 without making them."""
    with opened_image(path) as image:
        if image.mode == "L":
            return np.asarray(image, dtype=np.float64)
        return np.asarray(image.convert("RGB")).astype(np.float64).mean(axis=2)
