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


def load_geirhos(root) -> pd.DataFrame:
    """One row per image, sorted by path. Columns: path (absolute str), shape, texture.

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
                rows.append((str(path), class_dir.name, _texture_of(path)))

    if not rows:
        raise DatasetError(
            f"no images found in {folder}: expected <shape_class>/<shape><i>-<texture><j>.png, "
            "e.g. airplane/airplane1-bicycle2.png"
        )
    return pd.DataFrame(sorted(rows), columns=["path", "shape", "texture"])


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
