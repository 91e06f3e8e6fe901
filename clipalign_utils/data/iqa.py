"""Full-reference IQA sets as the ``iqa`` step reads them: reference and distorted image sets
plus one row per (reference, distorted) pair with its ground-truth quality.

One entry point, :func:`load_iqa`, for the three sources:

- ``embedded``: bundled photographs and a few shape–texture-world images, distorted offline
  and scored by a reference observer (a full-reference metric calibrated against people on
  TID2013), because no human scores exist offline. The observer is not a human.
- ``tid2013``: TID2013 in its official layout, MOS (higher = better) from human observers.
- ``kadid10k``: KADID-10k in its official layout, DMOS (higher = better) from human observers.

Quality is always higher = better.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..choices import IQA_RESIZE
from ..errors import ParameterError
from . import kadid10k, tid2013, world
from .image_sets import ArrayImages, FileImages, ImageSet, PatchImages, read_rgb
from .iqa_embedded import OBSERVER_SOURCES, UNCHANGED_DROPPED, make_embedded_iqa
from .registry import display_name, get_dataset, register_dataset
from .roots import open_root

# iqa_resize=auto: inputs this small would erase fine damage if the whole image were squeezed in.
PATCHES_BELOW_INPUT = 128
# patches: at most this many input-size patches per image (the image is downscaled by the smallest
# integer factor that fits), so TID2013 stays minutes per checkpoint on a CPU: 512×384 at a 32 px
# input is 2× downscaled to 8 × 6 patches.
MAX_PATCHES_PER_IMAGE = 48
# A note is printed above this downsampling factor: most noise and compression damage is gone by then.
NOTE_DOWNSAMPLING_ABOVE = 4
# Input size for file images when the run does not fix the model's (open_clip's default).
DEFAULT_FILE_IMAGE_SIZE = 224
# World images added to the embedded references: a few, so the photographs still dominate.
N_WORLD_REFERENCES = 4
PAIR_COLUMNS = ["reference", "reference_index", "distorted_index", "distortion", "level", "quality"]
# Who produced the quality scores of the real datasets.
HUMAN_SCORES = {
    "tid2013": "mean opinion scores (MOS) of human observers, Ponomarenko et al. (2015)",
    "kadid10k": "differential mean opinion scores (DMOS) of crowd workers, Lin, Hosu & Saupe (2019)",
}


@dataclass
class IQAData:
    """``pairs`` row i compares ``references[reference_index]`` with ``distorted[distorted_index]``.

    ``observer`` names the full-reference metric that stands in for people (embedded set only;
    None when the scores are human), with its published TID2013 SRCC and source.
    """

    references: ImageSet
    distorted: ImageSet
    pairs: pd.DataFrame  # reference, reference_index, distorted_index, distortion, level, quality
    name: str
    observer: str | None = None
    observer_srcc_tid2013: float | None = None
    observer_source: str | None = None
    resize_mode: str = "patches"  # how images meet the model's input (iqa_resize, resolved)
    downsampling: float = 1.0  # native pixels per model-input pixel
    absent_reason: str | None = None  # why a reference × type × level combination can be missing
    # Distorted images in the release's folder that its index does not list (a truncated or edited index).
    unlisted: tuple[str, ...] = ()
    index_file: str | None = None  # the release's index of scores (mos_with_names.txt, dmos.csv)
    release_distorted: int | None = None  # how many distorted images the full release's index lists
    native_shape: tuple[int, int] | None = None  # (height, width) of a real set's first reference; None: embedded

    def absent(self) -> pd.DataFrame:
        """The reference × type × level combinations the pairs lack (distortion, level, reference), over the
        references, types and levels the pairs have."""
        grid = pd.MultiIndex.from_product([sorted(self.pairs["distortion"].unique()),
                                           sorted(self.pairs["level"].unique()),
                                           list(dict.fromkeys(self.pairs["reference"]))],
                                          names=["distortion", "level", "reference"])
        present = pd.MultiIndex.from_frame(self.pairs[["distortion", "level", "reference"]])
        return grid.difference(present, sort=False).to_frame(index=False)

    @property
    def patches_per_image(self) -> int:
        return self.references.patches_per_image

    @property
    def scaling(self) -> str:
        """How much the images are scaled to meet the model's input, in words: "downsampling 2.29×", or for
        images smaller than the input "upsampling 14×" (a factor below 1 read as 0.0714286×)."""
        if self.downsampling < 1:
            return f"upsampling {1 / self.downsampling:.3g}×"
        return f"downsampling {self.downsampling:.3g}×"

    @property
    def downsampling_note(self) -> str | None:
        """One sentence when the images are shrunk so much that fine damage may vanish, else None."""
        if self.downsampling <= NOTE_DOWNSAMPLING_ABOVE:
            return None
        return (f"note: iqa_resize={self.resize_mode} shrinks the {display_name(self.name)} images "
                f"{self.downsampling:.1f}× "
                f"to the model's input; most noise and compression damage is averaged away at that scale "
                f"(iqa_resize=patches keeps more of it)")

    @property
    def unlisted_note(self) -> str | None:
        """One sentence when the folder holds distorted images the index does not list, else None: a
        truncated download of the index scores fewer images and nothing else would say so."""
        if not self.unlisted:
            return None
        shown = ", ".join(self.unlisted[:3]) + (", …" if len(self.unlisted) > 3 else "")
        return (f"note: the folder of distorted images holds {len(self.unlisted)} that {self.index_file} does not "
                f"list ({shown}); only the {len(self)} it lists are scored (the full release lists "
                f"{self.release_distorted}). A truncated or edited {self.index_file}? Replace it with the "
                f"release's copy to score them all")

    def __len__(self) -> int:
        return len(self.pairs)

    @property
    def ground_truth(self) -> str:
        """Who scored the pairs, in words."""
        if self.observer is not None:
            return f"the reference observer {self.observer} (a full-reference metric, not a human)"
        return HUMAN_SCORES[self.name]

    def example_pairs(self, reference_index: int = 0) -> pd.DataFrame:
        """One pair per distortion type of one reference, at the level nearest its middle level."""
        pairs = self.pairs[self.pairs["reference_index"] == reference_index]
        levels = sorted(pairs["level"].unique())
        middle = levels[len(levels) // 2] if levels else 0
        return (pairs.assign(offset=(pairs["level"] - middle).abs()).sort_values(["distortion", "offset", "level"])
                .groupby("distortion").head(1).drop(columns="offset"))

    def _shown(self, images: ImageSet, index: int) -> np.ndarray:
        # With patches, the middle patch: the damage at the scale the model sees it.
        item = int(index) * images.patches_per_image + images.patches_per_image // 2
        return images.arrays(item, item + 1)[0]

    def reference_image(self, index: int) -> np.ndarray:
        """The reference image at ``index`` as the model sees it (its middle patch under iqa_resize=patches)."""
        return self._shown(self.references, index)

    def distorted_images(self, indices) -> np.ndarray:
        """The distorted images at ``indices`` as one (n, H, W, 3) array, for figures."""
        return np.stack([self._shown(self.distorted, i) for i in indices])


def resolve_resize(mode: str, input_size: int) -> str:
    """``iqa_resize`` with ``auto`` resolved: ``patches`` for inputs under 128 px, else ``crop``."""
    if mode not in IQA_RESIZE:
        raise ParameterError(f"iqa_resize={mode!r}: choose one of {', '.join(IQA_RESIZE)}")
    if mode == "auto":
        return "patches" if input_size < PATCHES_BELOW_INPUT else "crop"
    return mode


def load_iqa(dataset: str, root: str, params: dict, image_size: int | None = None,
             resize: str = "auto") -> IQAData:
    """The IQA set ``dataset`` names (``embedded``, or ``tid2013``/``kadid10k`` read from ``root``; the
    names of the dataset registry's ``iqa`` task).

    ``params`` supplies image_size, iqa_levels, seed and reference_observer for the embedded set
    (and the world's texture settings for its world references). ``image_size`` is the model's
    input size (default 224); ``resize`` (``iqa_resize``) says how real images meet it: ``patches``
    (native-resolution patches at the same positions in reference and distorted image; the pair's
    distance is the mean over patches), ``resize`` (the whole image squashed), ``crop`` (shorter
    side resized, centre crop, as open_clip's transform), ``auto`` (patches under 128 px, else crop).
    The embedded images are made at the model's input size: every mode leaves them as they are.

    A registered loader is called with the keywords root, size (the input size), mode (the resolved
    resize mode), world_config (the world's :class:`~.world.WorldConfig`), seed, levels and observer.
    """
    input_size = image_size or DEFAULT_FILE_IMAGE_SIZE
    mode = resolve_resize(resize, input_size)
    loader = get_dataset("iqa", dataset)
    config = world.evaluation_world(params)
    return loader(root=root, size=input_size, mode=mode, world_config=config, seed=params["eval_seed"],
                  levels=params["iqa_levels"], observer=params["reference_observer"])


def world_references(config: world.WorldConfig, seed: int, n: int = N_WORLD_REFERENCES) -> dict[str, np.ndarray]:
    """``n`` held-out shape–texture-world images of different shapes, named world_<shape>_<texture>."""
    sample = world.make_test_set(1, seed, config)
    picked = [int(np.flatnonzero(sample.shape_labels == shape)[0]) for shape in np.unique(sample.shape_labels)][:n]
    return {f"world_{world.SHAPES[sample.shape_labels[i]]}_{world.TEXTURES[sample.texture_labels[i]]}":
            sample.images[i] for i in picked}


@register_dataset("iqa", "embedded")
def embedded_set(*, mode: str, world_config: world.WorldConfig, seed: int, levels, observer: str, **_) -> IQAData:
    """The embedded set at the world's image size, scored by the reference ``observer``."""
    iqa = make_embedded_iqa(image_size=world_config.image_size, levels=levels, seed=seed, observer=observer,
                            extra_references=world_references(world_config, seed))
    pairs = iqa.pairs.assign(distorted_index=np.arange(len(iqa.pairs)))[PAIR_COLUMNS]
    return IQAData(ArrayImages(iqa.references, "iqa_embedded_references"),
                   ArrayImages(iqa.distorted, "iqa_embedded_distorted"), pairs.reset_index(drop=True),
                   "embedded", iqa.observer, iqa.observer_srcc_tid2013, OBSERVER_SOURCES[iqa.observer],
                   resize_mode=mode, absent_reason=UNCHANGED_DROPPED)


@register_dataset("iqa", "tid2013")
def tid2013_set(*, root, size: int, mode: str, **_) -> IQAData:
    """TID2013 read from ``root``, its images fitted to ``size`` px by ``mode``."""
    return _real_set("tid2013", tid2013.load_tid2013, tid2013, root, size, mode)


@register_dataset("iqa", "kadid10k")
def kadid10k_set(*, root, size: int, mode: str, **_) -> IQAData:
    """KADID-10k read from ``root``, its images fitted to ``size`` px by ``mode``."""
    return _real_set("kadid10k", kadid10k.load_kadid10k, kadid10k, root, size, mode)


def _fitted(paths: list[str], name: str, size: int, mode: str) -> ImageSet:
    if mode == "patches":
        return PatchImages(paths, name, size, MAX_PATCHES_PER_IMAGE)
    return FileImages(paths, name, size=size, fit=mode)


def _downsampling(native_shape: tuple[int, int], size: int, mode: str, references: ImageSet) -> float:
    height, width = native_shape
    if mode == "patches":
        return float(references.factor)
    if mode == "resize":
        return max(height, width) / size
    return min(height, width) / size


def unlisted_images(distorted_paths, name: re.Pattern) -> tuple[str, ...]:
    """The files named like a distorted image (``name``) in the folder of ``distorted_paths`` that are not
    among them, in name order (any case)."""
    listed = {Path(path).name.lower() for path in distorted_paths}
    folder = Path(distorted_paths[0]).parent
    unlisted = [p.name for p in folder.iterdir() if name.match(p.name) and p.name.lower() not in listed and p.is_file()]
    return tuple(sorted(unlisted, key=str.lower))


def _real_set(dataset: str, read, release, root, size: int, mode: str) -> IQAData:
    """``read`` loads the index; ``release`` is its module (tid2013, kadid10k): the index's and images' names."""
    table = open_root("iqa", dataset, root, read, f"the folder holding the dataset (e.g. -p iqa_root=data/{dataset})")
    reference_paths = list(dict.fromkeys(table["reference_path"]))  # first-appearance order
    position = {path: k for k, path in enumerate(reference_paths)}
    pairs = pd.DataFrame({
        "reference": table["reference"],
        "reference_index": table["reference_path"].map(position).astype("int64"),
        "distorted_index": np.arange(len(table)),
        "distortion": table["distortion"],
        "level": table["level"],
        "quality": table["quality"],
    })
    references = _fitted(reference_paths, f"{dataset}_references", size, mode)
    distorted = _fitted(table["distorted_path"].tolist(), f"{dataset}_distorted", size, mode)
    native_shape = read_rgb(reference_paths[0]).shape[:2]
    return IQAData(references, distorted, pairs, dataset, resize_mode=mode,
                   downsampling=_downsampling(native_shape, size, mode, references),
                   unlisted=unlisted_images(table["distorted_path"].tolist(), release.DISTORTED_NAME),
                   index_file=release.INDEX_FILE, release_distorted=release.RELEASE_DISTORTED,
                   native_shape=(int(native_shape[0]), int(native_shape[1])))

