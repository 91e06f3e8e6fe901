"""MIT1003 (Judd, Ehinger, Durand & Torralba, "Learning to predict where humans look", ICCV 2009)
in its official layout:

    <root>/ALLSTIMULI/<name>.jpeg                 1003 stimuli (a few other image suffixes accepted)
    <root>/ALLFIXATIONMAPS/<name>_fixMap.jpg      fixation density (grey, 0–255)
    <root>/ALLFIXATIONMAPS/<name>_fixPts.jpg      fixation locations, white on black

The fixation locations are stored as a JPEG, so compression rings around each white pixel and
leaves faint non-zero values nearby: a pixel counts as fixated when its grey level is above
``FIXATION_THRESHOLD`` = 127 (half the 8-bit range). Thresholding at > 0 would count those
artefacts (hundreds of pixels per image at JPEG quality 75) as fixations.
Files that are not images (Thumbs.db, .m scripts, hidden files) are ignored.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import DatasetError
from .roots import release_folder
from .saliency_base import SaliencySet, first_stimuli, image_files, paired_file_set, read_grey

FIXATION_THRESHOLD = 127
GROUND_TRUTH = ("MIT1003 (Judd et al. 2009): fixation maps ALLFIXATIONMAPS/*_fixMap.jpg, fixations = "
                f"pixels of *_fixPts.jpg above {FIXATION_THRESHOLD}; 15 observers, free viewing")


def _find_dir(root: Path, name: str) -> Path:
    found = release_folder(root, name)
    if found is not None:
        return found
    raise DatasetError(f"{root} has no {name}/ folder (expected the official MIT1003 layout: "
                       f"ALLSTIMULI/<name>.jpeg and ALLFIXATIONMAPS/<name>_fixMap.jpg, <name>_fixPts.jpg)")


def load_mit1003(root, *, image_size: int, n_images: int | None = None) -> SaliencySet:
    """The first ``n_images`` stimuli in natural name order, pysaliency's (all when None/0) with their ground truth.
    A stimulus without its fixation map or fixation-points file is a DatasetError naming the file."""
    root = Path(root).expanduser().absolute()
    if not root.is_dir():
        raise DatasetError(f"{root} is not a folder")
    stimuli_dir, maps_dir = _find_dir(root, "ALLSTIMULI"), _find_dir(root, "ALLFIXATIONMAPS")
    stimuli = image_files(stimuli_dir)
    if not stimuli:
        raise DatasetError(f"{stimuli_dir} holds no images")
    stimuli = first_stimuli(stimuli, n_images)
    return paired_file_set(
        stimuli_dir, stimuli, [p.stem for p in stimuli],
        lambda stimulus: (maps_dir / f"{stimulus.stem}_fixMap.jpg", maps_dir / f"{stimulus.stem}_fixPts.jpg"),
        lambda path: read_grey(path) > FIXATION_THRESHOLD, fixations_kind="fixation points", dataset="mit1003",
        image_size=image_size, ground_truth=GROUND_TRUTH)
