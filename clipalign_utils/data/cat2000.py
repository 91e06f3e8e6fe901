"""CAT2000 (Borji & Itti, "CAT2000: A large scale fixation dataset for boosting saliency
research", 2015), training set, in its official layout:

    <root>/trainSet/Stimuli/<Category>/<nnn>.jpg        2000 stimuli, 20 categories, 1920×1080
    <root>/trainSet/FIXATIONMAPS/<Category>/<nnn>.jpg   fixation density (grey, 0–255)
    <root>/trainSet/FIXATIONLOCS/<Category>/<nnn>.mat   variable ``fixLocs``: binary map of fixated pixels

``root`` may be ``trainSet`` itself, the folder holding it, or the folder above that (the archive unpacked
into a folder of its own). Files that are not images
(e.g. Thumbs.db), sub-folders of a category and an ``Output`` folder beside the categories (some releases carry
``Output``) are ignored.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.io import loadmat

from ..errors import DatasetError
from .roots import release_folder, subfolders
from .saliency_base import SaliencySet, first_stimuli, image_files, paired_file_set

GROUND_TRUTH = ("CAT2000 train (Borji & Itti 2015): fixation maps trainSet/FIXATIONMAPS, fixations = "
                "nonzero pixels of fixLocs in trainSet/FIXATIONLOCS; 18 observers per image, free viewing")


def read_fixlocs(path: Path) -> np.ndarray:
    """The ``fixLocs`` binary map of one .mat file; an unreadable file or a missing variable is a DatasetError."""
    try:
        data = loadmat(str(path), variable_names=["fixLocs"])
    except Exception as error:  # scipy raises many types (ValueError, MatReadError, OSError…)
        raise DatasetError(f"{path} is not a readable .mat file ({type(error).__name__}): "
                           f"replace it from the CAT2000 release") from None
    if "fixLocs" not in data:
        raise DatasetError(f"{path} holds no variable fixLocs (the CAT2000 fixation locations)")
    fixations = np.asarray(data["fixLocs"])
    if fixations.ndim != 2:
        raise DatasetError(f"{path}: fixLocs must be a 2-D map; got shape {fixations.shape}")
    return fixations > 0


def load_cat2000(root, *, image_size: int, n_images: int | None = None) -> SaliencySet:
    """``n_images`` stimuli spread over the categories (:func:`spread_over_categories`; all when None/0), in
    (category, name) order, with their ground truth."""
    root = Path(root).expanduser().absolute()
    base = (release_folder(root, "trainSet") if root.is_dir() else None) or root
    stimuli_dir = base / "Stimuli"
    if not stimuli_dir.is_dir():
        raise DatasetError(f"{root} has no trainSet/Stimuli/ folder (expected the official CAT2000 layout: "
                           f"trainSet/{{Stimuli,FIXATIONMAPS}}/<Category>/<nnn>.jpg, "
                           f"trainSet/FIXATIONLOCS/<Category>/<nnn>.mat)")
    # pysaliency's loader drops every path through an "Output" folder; no CAT2000 category has that name
    categories = [folder for folder in subfolders(stimuli_dir) if folder.name != "Output"]
    stimuli = spread_over_categories([image_files(category) for category in categories], n_images)
    if not stimuli:
        raise DatasetError(f"{stimuli_dir} holds no images in category folders")
    return paired_file_set(
        stimuli_dir, stimuli, [f"{s.parent.name}/{s.stem}" for s in stimuli],
        lambda stimulus: (base / "FIXATIONMAPS" / stimulus.parent.name / stimulus.name,
                          base / "FIXATIONLOCS" / stimulus.parent.name / f"{stimulus.stem}.mat"),
        read_fixlocs, fixations_kind="fixation locations", fixations_in="fixLocs in ", dataset="cat2000",
        image_size=image_size, ground_truth=GROUND_TRUTH)


def spread_over_categories(per_category: list[list[Path]], n_images: int | None) -> list[Path]:
    """``n_images`` of the stimuli (``per_category``: each category's, in name order), the first of each category
    in turn, then the second of each, and so on, kept in (category, name) order; every stimulus when None or 0.
    The release's first stimuli would all be of its first category (Action holds 100): a subset of 24 is then
    one or two images of every category, as the full set mixes them."""
    stimuli = [s for files in per_category for s in files]
    first_stimuli(stimuli, n_images)  # (refuses a negative count)
    if not n_images or int(n_images) >= len(stimuli):
        return stimuli
    rank = {s: k for files in per_category for k, s in enumerate(files)}
    kept = set(sorted(stimuli, key=rank.__getitem__)[:int(n_images)])  # a stable sort: categories in order
    return [s for s in stimuli if s in kept]
