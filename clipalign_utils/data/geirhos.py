"""Geirhos et al. (2019) cue-conflict stimuli in their official layout.

    <root>/cue-conflict/<shape_class>/<shape><i>-<texture><j>.png
    e.g.  cue-conflict/airplane/airplane1-bicycle2.png   (shape airplane, texture bicycle)

``root`` may be the ``cue-conflict`` folder itself or its parent. Files without an
image extension (a README, .DS_Store) are skipped; images are decoded only when encoded
(``image_sets.read_rgb`` turns an undecodable file into a DatasetError naming it).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from clipalign_utils.data.roots import IMAGE_EXTENSIONS, is_residue
from clipalign_utils.errors import DatasetError

GEIRHOS_CLASSES = (
    "airplane", "bear", "bicycle", "bird", "boat", "bottle", "car", "cat",
    "chair", "clock", "dog", "elephant", "keyboard", "knife", "oven", "truck",
)  # fmt: skip

# The ImageNet (ILSVRC-2012) class indices of each category, as model-vs-human maps a 1,000-way decision onto
# the 16 (bethgelab/model-vs-human, modelvshuman/helper/human_categories.py, MIT licence, © Robert Geirhos
# 2021): for shape_classifier=imagenet.
IMAGENET_INDICES = {
    "airplane": (404,),
    "bear": (294, 295, 296, 297),
    "bicycle": (444, 671),
    "bird": (8, 10, 11, 12, 13, 14, 15, 16, 18, 19, 20, 22, 23, 24, 80, 81, 82, 83, 87, 88, 89, 90, 91, 92, 93,
             94, 95, 96, 98, 99, 100, 127, 128, 129, 130, 131, 132, 133, 135, 136, 137, 138, 139, 140, 141, 142,
             143, 144, 145),
    "boat": (472, 554, 625, 814, 914),
    "bottle": (440, 720, 737, 898, 899, 901, 907),
    "car": (436, 511, 817),
    "cat": (281, 282, 283, 284, 285, 286),
    "chair": (423, 559, 765, 857),
    "clock": (409, 530, 892),
    "dog": (152, 153, 154, 155, 156, 157, 158, 159, 160, 161, 162, 163, 164, 165, 166, 167, 168, 169, 170, 171,
            172, 173, 174, 175, 176, 177, 178, 179, 180, 181, 182, 183, 184, 185, 186, 187, 188, 189, 190, 191,
            193, 194, 195, 196, 197, 198, 199, 200, 201, 202, 203, 205, 206, 207, 208, 209, 210, 211, 212, 213,
            214, 215, 216, 217, 218, 219, 220, 221, 222, 223, 224, 225, 226, 228, 229, 230, 231, 232, 233, 234,
            235, 236, 237, 238, 239, 240, 241, 243, 244, 245, 246, 247, 248, 249, 250, 252, 253, 254, 255, 256,
            257, 259, 261, 262, 263, 265, 266, 267, 268),
    "elephant": (385, 386),
    "keyboard": (508, 878),
    "knife": (499,),
    "oven": (766,),
    "truck": (555, 569, 656, 675, 717, 734, 864, 867),
}  # fmt: skip


def load_geirhos(root) -> pd.DataFrame:
    """One row per image, sorted by path. Columns: path (absolute str), shape, texture, shape_source and
    texture_source (the source images it was made from, as its name gives them: ``airplane1-bicycle2.png`` is
    shape source ``airplane1`` in the style of texture source ``bicycle2``; the stimuli reuse each).

    Images whose shape equals their texture are kept; the shape-bias formula drops them.
    """
    root = Path(root).expanduser().absolute()
    if not root.is_dir():
        raise DatasetError(
            f"cue_conflict_root '{root}' does not exist: point it at the cue-conflict/ folder "
            "(holding one folder per class) or its parent"
        )
    folder = root / "cue-conflict" if (root / "cue-conflict").is_dir() else root

    rows = []
    for class_dir in sorted(folder.iterdir()):
        if not class_dir.is_dir() or is_residue(class_dir):
            continue
        if class_dir.name not in GEIRHOS_CLASSES:
            raise DatasetError(
                f"{class_dir}: unknown class folder '{class_dir.name}'; expected one of {', '.join(GEIRHOS_CLASSES)}"
                + _stimuli_hint(folder)
            )
        for path in sorted(class_dir.iterdir()):
            if path.is_file() and not is_residue(path) and path.suffix.lower() in IMAGE_EXTENSIONS:
                texture = _texture_of(path)  # (a name without '-' is refused here)
                rows.append((str(path), class_dir.name, texture, *path.stem.rsplit("-", 1)))

    if not rows:
        raise DatasetError(
            f"no images found in {folder}: expected <shape_class>/<shape><i>-<texture><j>.png, "
            "e.g. airplane/airplane1-bicycle2.png"
        )
    return pd.DataFrame(sorted(rows), columns=["path", "shape", "texture", "shape_source", "texture_source"])


# texture-vs-shape's own stimuli/ folder holds the cue-conflict images in a sub-folder of this name, beside
# edges/, filled-silhouettes/ and others (rgeirhos/texture-vs-shape).
TEXTURE_VS_SHAPE_FOLDER = "style-transfer-preprocessed-512"


def _stimuli_hint(folder: Path) -> str:
    if (folder / TEXTURE_VS_SHAPE_FOLDER).is_dir():
        return f" (this is texture-vs-shape's stimuli/ folder: give cue_conflict_root='{folder / TEXTURE_VS_SHAPE_FOLDER}')"
    if (folder / "stimuli" / TEXTURE_VS_SHAPE_FOLDER).is_dir():
        return (f" (this is the texture-vs-shape repository: give "
                f"cue_conflict_root='{folder / 'stimuli' / TEXTURE_VS_SHAPE_FOLDER}')")
    return ""


def _texture_of(path: Path) -> str:
    if "-" not in path.stem:
        raise DatasetError(f"{path}: expected a name like '<shape><i>-<texture><j>.png', e.g. 'airplane1-bicycle2.png'")
    texture = "".join(ch for ch in path.stem.rsplit("-", 1)[1] if not ch.isdigit())
    if texture not in GEIRHOS_CLASSES:
        raise DatasetError(
            f"{path}: texture '{texture}' (after the last '-', digits removed) is not one of "
            f"{', '.join(GEIRHOS_CLASSES)}"
        )
    return texture
