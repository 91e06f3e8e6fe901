"""TID2013 in its official layout.

    <root>/reference_images/I01.BMP … I24.BMP, i25.bmp
    <root>/distorted_images/i01_01_1.bmp …        (i<ref>_<distortion>_<level>.bmp)
    <root>/mos_with_names.txt                     ("MOS name" per line, CRLF)

Higher MOS = better quality. File names are matched case-insensitively because
the release mixes cases (``I01.BMP`` next to ``i25.bmp``).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pandas as pd

from clipalign_utils.errors import DatasetError

from .roots import open_release

# Official order: the two-digit index in a distorted file name is the position here, from 01.
TID2013_DISTORTIONS = (
    "additive_gaussian_noise",
    "additive_noise_in_color_components",
    "spatially_correlated_noise",
    "masked_noise",
    "high_frequency_noise",
    "impulse_noise",
    "quantization_noise",
    "gaussian_blur",
    "image_denoising",
    "jpeg_compression",
    "jpeg2000_compression",
    "jpeg_transmission_errors",
    "jpeg2000_transmission_errors",
    "non_eccentricity_pattern_noise",
    "local_block_wise_distortions",
    "mean_shift",
    "contrast_change",
    "change_of_color_saturation",
    "multiplicative_gaussian_noise",
    "comfort_noise",
    "lossy_compression_of_noisy_images",
    "image_color_quantization_with_dither",
    "chromatic_aberrations",
    "sparse_sampling_and_reconstruction",
)

COLUMNS = ["reference", "reference_path", "distorted_path", "distortion", "level", "quality"]

# A distorted image's name; such a file that the index does not list is reported (a truncated index).
DISTORTED_NAME = re.compile(r"^i(\d{2})_(\d{2})_(\d)\.bmp$", re.IGNORECASE)
INDEX_FILE = "mos_with_names.txt"
RELEASE_DISTORTED = 3000  # 25 references × 24 distortions × 5 levels


def load_tid2013(root) -> pd.DataFrame:
    """One row per line of ``mos_with_names.txt``, in file order.

    Columns: reference ("I01"), reference_path, distorted_path (absolute str),
    distortion (snake_case name), level (int 1..5), quality (float MOS).
    """
    release = open_release(root, "iqa_root", "TID2013", ("reference_images", "distorted_images"),
                           (INDEX_FILE,))
    references, distorted = release.folders["reference_images"], release.folders["distorted_images"]
    mos_path = release.files[INDEX_FILE]

    rows = []
    seen: dict[str, int] = {}
    for lineno, line in enumerate(_read_lines(mos_path), start=1):
        text = line.strip()
        if not text:
            continue
        where = f"{mos_path} line {lineno}"
        quality, name = _parse_mos_line(text, where)
        match = DISTORTED_NAME.match(name)
        if match is None:
            raise DatasetError(f"{where}: expected a file name like 'i01_01_1.bmp', got {name!r}")
        ref_id, dist_id, level = (int(g) for g in match.groups())
        if not 1 <= dist_id <= len(TID2013_DISTORTIONS):
            raise DatasetError(f"{where}: distortion index {dist_id:02d} in '{name}' is not one of TID2013's 01..24")
        if not 1 <= level <= 5:
            raise DatasetError(f"{where}: level {level} in '{name}' is not in 1..5")
        if name.lower() in seen:
            raise DatasetError(f"{where}: '{name}' is listed twice (first on line {seen[name.lower()]})")
        seen[name.lower()] = lineno

        dist_path = distorted.get(name.lower())
        if dist_path is None:
            raise DatasetError(f"{where}: distorted image '{name}' not found in {release.root / 'distorted_images'}")
        reference = f"I{ref_id:02d}"
        ref_path = references.get(f"{reference}.bmp".lower())
        if ref_path is None:
            raise DatasetError(f"{where}: reference image '{_release_spelling(ref_id)}' for '{name}' not found in "
                               f"{release.root / 'reference_images'}")
        rows.append((reference, str(ref_path), str(dist_path), TID2013_DISTORTIONS[dist_id - 1], level, quality))

    if not rows:
        raise DatasetError(f"{mos_path} lists no images: expected 'MOS name' lines such as '5.51429 i01_01_1.bmp'")
    frame = pd.DataFrame(rows, columns=COLUMNS)
    return frame.astype({"level": "int64", "quality": "float64"})


def _release_spelling(ref_id: int) -> str:
    """A reference image's name as the release spells it: ``I01.BMP`` … ``I24.BMP``, then ``i25.bmp``."""
    return f"I{ref_id:02d}.BMP" if ref_id < 25 else f"i{ref_id:02d}.bmp"


def _read_lines(path: Path) -> list[str]:
    try:
        # newline=None folds the release's CRLF into '\n'; utf-8-sig drops a BOM if an editor added one, and a
        # DOS editor's end-of-file mark (Ctrl-Z) goes too.
        with open(path, encoding="utf-8-sig", newline=None) as f:
            return f.read().rstrip("\x1a").split("\n")
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: not a text file ({exc}); expected 'MOS name' lines") from exc


def _parse_mos_line(text: str, where: str) -> tuple[float, str]:
    parts = text.split()
    try:
        if len(parts) != 2:
            raise ValueError
        quality = float(parts[0])
    except ValueError:
        # repr: a line of control characters (a stray Ctrl-Z, a form feed) reads as what it holds, not as ''
        raise DatasetError(f"{where}: expected 'MOS name' (a number and a file name), got {text!r}") from None
    if not math.isfinite(quality):
        raise DatasetError(f"{where}: expected a finite MOS, got {parts[0]!r}")
    return quality, parts[1]
