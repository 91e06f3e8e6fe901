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

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import ParameterError
from . import world
from .image_sets import ArrayImages, FileImages, ImageSet
from .roots import load_from_root, require_root
from .iqa_embedded import OBSERVER_SOURCES, make_embedded_iqa
from .kadid10k import load_kadid10k
from .tid2013 import load_tid2013

DATASETS = ("embedded", "tid2013", "kadid10k")
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

    def reference_image(self, index: int) -> np.ndarray:
        return self.references.batch(int(index), int(index) + 1)[0].numpy()

    def distorted_images(self, indices) -> np.ndarray:
        """The distorted images at ``indices`` as one (n, H, W, 3) array, for figures."""
        return np.stack([self.distorted.batch(int(i), int(i) + 1)[0].numpy() for i in indices])


def load_iqa(dataset: str, root: str, params: dict, image_size: int | None = None) -> IQAData:
    """The IQA set ``dataset`` names (``embedded``, or ``tid2013``/``kadid10k`` read from ``root``).

    ``params`` supplies image_size, iqa_levels, seed and reference_observer for the embedded set
    (and the world's texture settings for its world references). ``image_size`` is the model's
    input size, to which real images are resized at load (default 224) so memory stays small.
    """
    if dataset == "embedded":
        return _load_embedded(params)
    if dataset in ("tid2013", "kadid10k"):
        return _load_real(dataset, root, image_size or DEFAULT_FILE_IMAGE_SIZE)
    raise ParameterError(f"iqa_dataset={dataset!r}: choose one of {', '.join(DATASETS)}")


def world_references(params: dict, n: int = N_WORLD_REFERENCES) -> dict[str, np.ndarray]:
    """``n`` held-out shape–texture-world images of different shapes, named world_<shape>_<texture>."""
    config = world.WorldConfig(params["image_size"], params["texture_correlation"], params["texture_scale"])
    sample = world.make_test_set(1, params["seed"], config)
    picked = [int(np.flatnonzero(sample.shape_labels == shape)[0]) for shape in np.unique(sample.shape_labels)][:n]
    return {f"world_{world.SHAPES[sample.shape_labels[i]]}_{world.TEXTURES[sample.texture_labels[i]]}":
            sample.images[i] for i in picked}


def _load_embedded(params: dict) -> IQAData:
    iqa = make_embedded_iqa(image_size=params["image_size"], extra_references=world_references(params),
                            levels=params["iqa_levels"], seed=params["seed"],
                            observer=params["reference_observer"])
    pairs = iqa.pairs.assign(distorted_index=np.arange(len(iqa.pairs)))[PAIR_COLUMNS]
    return IQAData(ArrayImages(iqa.references, "iqa_embedded_references"),
                   ArrayImages(iqa.distorted, "iqa_embedded_distorted"), pairs.reset_index(drop=True),
                   "embedded", iqa.observer, iqa.observer_srcc_tid2013, OBSERVER_SOURCES[iqa.observer])


def _load_real(dataset: str, root: str, size: int) -> IQAData:
    require_root("iqa_dataset", dataset, "iqa_root", root,
                 f"the folder holding the dataset (e.g. -p iqa_root=data/{dataset})")
    table = load_from_root(load_tid2013 if dataset == "tid2013" else load_kadid10k, "iqa_root", root)
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
    return IQAData(FileImages(reference_paths, f"{dataset}_references", size=size),
                   FileImages(table["distorted_path"].tolist(), f"{dataset}_distorted", size=size),
                   pairs, dataset)

