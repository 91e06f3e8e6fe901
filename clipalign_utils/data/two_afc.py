"""2AFC similarity sets as the ``similarity`` step reads them: reference, first (p0) and second (p1)
candidate images, plus one row per triplet with ``p``, the fraction of judges choosing p1 as closer.

One entry point, :func:`load_two_afc`, for three sources:

- ``embedded``: a low-level set built offline from bundled photos and world renders, two kinds of
  damage per triplet, judged by a *reference panel* of five full-reference metrics — not people
  (see :mod:`.two_afc_embedded`).
- ``bapps``: BAPPS 2AFC (Zhang et al., 2018), low-level distortions judged by people.
- ``nights``: NIGHTS (Fu et al., 2023), mid-level variations (pose, layout, colour, content) of
  generated images judged by people: the mid-level question needs it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..choices import similarity_options_problem
from ..errors import ParameterError
from .bapps import load_bapps
from .image_sets import ArrayImages, FileImages, ImageSet, PatchImages
from .iqa import MAX_PATCHES_PER_IMAGE, resolve_resize
from .nights import load_nights
from .registry import get_dataset, register_dataset
from .roots import open_root
from .two_afc_embedded import make_embedded_two_afc

PROTOCOLS = ("all", "votes6")
DEFAULT_EMBEDDED_IMAGE_SIZE = 32
# Input size for file images when the run does not fix the model's (open_clip's default).
DEFAULT_FILE_IMAGE_SIZE = 224
HUMAN_JUDGMENTS = {
    "bapps": "the fraction of people (2 per triplet in train, 5 in val) who chose p1 as closer, "
             "Zhang et al. (2018), BAPPS",
    "nights": "the share of people who chose the second (right) image as closer, Fu et al. (2023), NIGHTS",
}
ROOT_HINTS = {
    "bapps": "the folder holding BAPPS's 2afc/ (e.g. -p similarity_root=data/bapps/dataset)",
    "nights": "the folder holding NIGHTS's data.csv, ref/ and distort/, or its parent "
              "(e.g. -p similarity_root=data/nights)",
}


@dataclass
class TwoAFCData:
    """Triplet i is (ref[i], p0[i], p1[i]); ``triplets`` row i describes it.

    ``triplets`` columns: subset, p (fraction of judges choosing p1 as closer) and, per source, more:
    embedded adds reference, distortion0, level0, distortion1, level1 and choice_<member> for each
    panel member; the real sets add id, the three paths (and NIGHTS votes).
    """

    ref: ImageSet
    p0: ImageSet
    p1: ImageSet
    triplets: pd.DataFrame
    name: str
    ground_truth: str  # who judged, in words
    # the choices the loader read, for a set that offers them (None: the embedded set has one split and every
    # triplet; BAPPS keeps every triplet): what the page says the set is
    protocol: str | None = None
    split: str | None = None
    panel: tuple[str, ...] = field(default_factory=tuple)  # embedded: the metrics that vote
    # how real images met the model's input: iqa_resize with auto resolved (``iqa.resolve_resize``); None: the
    # embedded set, drawn at the model's size
    resize_mode: str | None = None

    def __len__(self) -> int:
        return len(self.triplets)

    @property
    def subsets(self) -> list[str]:
        return sorted(self.triplets["subset"].astype(str).unique())

    @property
    def judged_by_people(self) -> bool:
        return not self.panel

    def panel_choices(self) -> np.ndarray | None:
        """(n_triplets, n_members) choices of the panel (1 = p1 closer, 0 = p0, ½ = tie); None for people."""
        if not self.panel:
            return None
        return self.triplets[[f"choice_{member}" for member in self.panel]].to_numpy(dtype=float)

    @property
    def patches_per_image(self) -> int:
        """Items per image in ref, p0 and p1 (more than 1 under resize=patches)."""
        return self.ref.patches_per_image

    def images(self, indices) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(ref, p0, p1) of the triplets at ``indices``, each an (n, H, W, 3) array, for figures
        (with patches, each image's middle patch: what the model sees at its scale)."""
        per = self.patches_per_image

        def take(images: ImageSet) -> np.ndarray:
            items = [int(i) * per + per // 2 for i in indices]
            return np.stack([images.arrays(item, item + 1)[0] for item in items])
        return take(self.ref), take(self.p0), take(self.p1)


def load_two_afc(dataset: str, root=None, *, protocol: str = "all", split: str | None = None,
                 image_size: int | None = None, seed: int = 0, texture_scale: float = 1.0,
                 resize: str = "crop", object_placement: str = "varied") -> TwoAFCData:
    """The 2AFC set ``dataset`` names: ``embedded`` (built offline, no downloads), or ``bapps`` /
    ``nights`` read from ``root`` in their official layouts (the names of the dataset registry's
    ``similarity`` task).

    ``protocol``: ``all`` (every triplet) or ``votes6`` (NIGHTS only: triplets with at least 6 votes,
    as DreamSim reports). ``split``: None or "" = the dataset's evaluation split (BAPPS ``val``,
    NIGHTS ``test``); BAPPS also has ``train``, NIGHTS ``train`` and ``val``; the embedded set has
    only ``test``. ``image_size``: the embedded set's image size (default 32, as the world), or the
    size real images are resized to at load (default 224). ``seed``, ``texture_scale`` and
    ``object_placement`` (for the world renders among its references) shape the embedded set only. ``resize`` (the IQA step's
    ``iqa_resize``: auto, patches, resize, crop) says how real images meet the model's input, as for
    IQA: with patches a triplet's distances are the means over patches at the same positions.

    A registered loader is called with these keywords (root, protocol, split, image_size, seed,
    texture_scale, resize, object_placement); it picks its own default split and rejects a protocol it does not have.
    """
    loader = get_dataset("similarity", dataset)
    if protocol not in PROTOCOLS:
        raise ParameterError(f"similarity_protocol={protocol!r}: choose one of {', '.join(PROTOCOLS)}")
    return loader(root=root, protocol=protocol, split=split or None, image_size=image_size, seed=seed,
                  texture_scale=texture_scale, resize=resize, object_placement=object_placement)


def _check_options(dataset: str, protocol: str, split: str | None) -> None:
    problem = similarity_options_problem(dataset, protocol, split)
    if problem:
        raise ParameterError(problem)


@register_dataset("similarity", "embedded")
def embedded_set(*, protocol: str, split: str | None, image_size: int | None, seed: int, texture_scale: float,
                 object_placement: str = "varied", **_) -> TwoAFCData:
    """The embedded set (one split, ``test``) at ``image_size`` px (default 32)."""
    _check_options("embedded", protocol, split)
    built = make_embedded_two_afc(image_size=image_size or DEFAULT_EMBEDDED_IMAGE_SIZE, seed=seed,
                                  texture_scale=texture_scale, object_placement=object_placement)
    members = ", ".join(built.panel)
    ground_truth = (f"a reference panel of {len(built.panel)} full-reference metrics ({members}), not people: "
                    f"p = the fraction of panel members judging p1 closer to the reference")
    return TwoAFCData(ArrayImages(built.ref, "two_afc_embedded_ref"), ArrayImages(built.p0, "two_afc_embedded_p0"),
                      ArrayImages(built.p1, "two_afc_embedded_p1"), built.triplets, "embedded", ground_truth,
                      panel=built.panel)


@register_dataset("similarity", "bapps")
def bapps_set(*, root, protocol: str, split: str | None, image_size: int | None, resize: str, **_) -> TwoAFCData:
    """BAPPS 2AFC read from ``root``: ``split`` (default val), every triplet."""
    _check_options("bapps", protocol, split)
    split = split or "val"
    table = open_root("similarity", "bapps", root, lambda r: load_bapps(r, split), ROOT_HINTS["bapps"])
    return _file_set("bapps", table, None, split, image_size, resize)


@register_dataset("similarity", "nights")
def nights_set(*, root, protocol: str, split: str | None, image_size: int | None, resize: str, **_) -> TwoAFCData:
    """NIGHTS read from ``root``: ``split`` (default test), the triplets ``protocol`` keeps."""
    split = split or "test"
    table = open_root("similarity", "nights", root, lambda r: load_nights(r, split, protocol), ROOT_HINTS["nights"])
    return _file_set("nights", table, protocol, split, image_size, resize)


def _file_set(dataset: str, table: pd.DataFrame, protocol: str | None, split: str, image_size: int | None,
              resize: str) -> TwoAFCData:
    """A real set's triplets as images of ``image_size`` px (default 224), met by ``resize``."""
    size = image_size or DEFAULT_FILE_IMAGE_SIZE
    mode = resolve_resize(resize, size)

    def fitted(column: str) -> ImageSet:
        paths, name = table[column].tolist(), f"{dataset}_{split}_{column.removesuffix('_path')}"
        if mode == "patches":
            return PatchImages(paths, name, size, MAX_PATCHES_PER_IMAGE)
        return FileImages(paths, name, size=size, fit=mode)
    return TwoAFCData(fitted("ref_path"), fitted("p0_path"), fitted("p1_path"),
                      table, dataset, HUMAN_JUDGMENTS[dataset], protocol, split, resize_mode=mode)
