"""Cue-conflict image sets: the shape of one class with the texture of another.

One entry point, :func:`load_cue_conflict`, for both sources the ``shape`` step reads:

- ``embedded``: the shape–texture world's cue-conflict split — shape class i filled with the
  canonical texture of class j ≠ i, every ordered pair equally often. Classes are
  ``world.SHAPES``; the texture label is the class whose canonical texture the image wears.
- ``geirhos``: the 1280 style-transfer stimuli of Geirhos et al. (2019) in their official
  layout (``<root>/<shape>/<shape><i>-<texture><j>.png``, 16 classes). Images whose shape equals
  their texture are kept; the shape-bias formula drops them.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import DatasetError
from . import world
from .geirhos import GEIRHOS_CLASSES, load_geirhos
from .image_sets import ArrayImages, FileImages, ImageSet
from .registry import get_dataset, register_dataset
from .roots import open_root

# Human shape bias on the Geirhos cue-conflict stimuli: the mean over the 10 subjects
# (subject-01 … subject-10) of bethgelab/model-vs-human's raw cue-conflict data, the observers of
# Geirhos et al., "ImageNet-trained CNNs are biased towards texture; increasing shape bias improves
# accuracy and robustness", ICLR 2019. A literature value, not computed here (the raw data are not
# shipped), and it describes the Geirhos stimuli only — no human has seen the embedded world.
HUMAN_SHAPE_BIAS = 0.96
HUMAN_SHAPE_BIAS_SOURCE = "Geirhos et al. 2019, model-vs-human cue-conflict subjects 1–10 (mean)"

# Input size for file images when the run does not fix the model's (open_clip's default).
DEFAULT_FILE_IMAGE_SIZE = 224


@dataclass
class CueConflictSet:
    """Images with their shape and texture class indices into ``classnames``.

    ``texture_names`` names what an image's texture *looks like* (for figure titles):
    the texture family in the embedded world ("dots"), the class itself for Geirhos ("cat").
    ``shape_sources`` and ``texture_sources``: the source images each image was made from, where images share
    them (Geirhos'), so that intervals resample sources; None where every image is drawn on its own (embedded).
    """

    images: ImageSet
    shape_labels: np.ndarray
    texture_labels: np.ndarray
    classnames: tuple[str, ...]
    name: str
    texture_names: tuple[str, ...]
    shape_sources: np.ndarray | None = None
    texture_sources: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.shape_labels)

    @property
    def n_conflicting(self) -> int:
        """Images whose shape and texture differ (the ones the shape bias counts)."""
        return int((self.shape_labels != self.texture_labels).sum())

    def example_images(self, indices) -> np.ndarray:
        """The images at `indices` as one (n, H, W, 3) array, for figures."""
        return np.stack([self.images.arrays(int(i), int(i) + 1)[0] for i in indices])


def load_cue_conflict(dataset: str, root: str, params: dict, image_size: int | None = None) -> CueConflictSet:
    """The cue-conflict set `dataset` names (``embedded`` or ``geirhos`` read from `root`; the names of the
    dataset registry's ``cue_conflict`` task).

    ``params`` supplies the world's settings (cue_conflict_per_pair, seed, image_size,
    texture_correlation, texture_scale). ``image_size`` is the model's input size, to which
    Geirhos files are resized at load (default 224) so memory stays small.

    A registered loader is called with the keywords root, size (the input size), world_config (the
    world's :class:`~.world.WorldConfig`), seed and per_pair.
    """
    loader = get_dataset("cue_conflict", dataset)
    config = world.evaluation_world(params)
    return loader(root=root, size=image_size or DEFAULT_FILE_IMAGE_SIZE, world_config=config, seed=params["eval_seed"],
                  per_pair=params["cue_conflict_per_pair"])


@register_dataset("cue_conflict", "embedded")
def embedded_set(*, world_config: world.WorldConfig, seed: int, per_pair: int, **_) -> CueConflictSet:
    """The world's cue-conflict split: ``per_pair`` images per ordered (shape, texture) pair."""
    sample = world.make_cue_conflict(per_pair, seed, world_config)
    return CueConflictSet(ArrayImages(sample.images, "cue_conflict_embedded"), sample.shape_labels,
                          sample.texture_labels, tuple(world.SHAPES), "embedded", tuple(world.TEXTURES))


@register_dataset("cue_conflict", "geirhos")
def geirhos_set(*, root, size: int, **_) -> CueConflictSet:
    """The Geirhos stimuli read from ``root``, resized to ``size`` px at load."""
    table = open_root("cue_conflict", "geirhos", root, load_geirhos,
                      "the folder holding the cue-conflict/ stimuli (one folder per class), "
                      "e.g. -p cue_conflict_root=data/cue-conflict")
    if not (table["shape"] != table["texture"]).any():
        raise DatasetError(f"cue_conflict_root={str(root)!r}: every image's texture matches its shape; "
                           "cue-conflict images need a texture from another class (<shape><i>-<texture><j>.png)")
    index = {name: k for k, name in enumerate(GEIRHOS_CLASSES)}
    return CueConflictSet(FileImages(table["path"].tolist(), "geirhos", size=size),
                          table["shape"].map(index).to_numpy(np.int64),
                          table["texture"].map(index).to_numpy(np.int64),
                          tuple(GEIRHOS_CLASSES), "geirhos", tuple(GEIRHOS_CLASSES),
                          table["shape_source"].to_numpy(str), table["texture_source"].to_numpy(str))
