"""KADID-10k in its official layout.

    <root>/images/I01.png …                  (81 references)
    <root>/images/I01_01_01.png …            (I<ref>_<distortion 01..25>_<level 01..05>.png)
    <root>/dmos.csv                          (header dist_img,ref_img,dmos,var)

In KADID-10k a higher DMOS means better quality, so ``quality`` is the DMOS as is.
"""

from __future__ import annotations

import csv
import math
import re
from pathlib import Path

import pandas as pd

from clipalign_utils.errors import DatasetError

from .roots import open_release

# Official order: the two-digit distortion index in a file name is the position here, from 01.
KADID10K_DISTORTIONS = (
    "gaussian_blur",
    "lens_blur",
    "motion_blur",
    "color_diffusion",
    "color_shift",
    "color_quantization",
    "color_saturation_1",
    "color_saturation_2",
    "jpeg2000",
    "jpeg",
    "white_noise",
    "white_noise_in_color_component",
    "impulse_noise",
    "multiplicative_noise",
    "denoise",
    "brighten",
    "darken",
    "mean_shift",
    "jitter",
    "non_eccentricity_patch",
    "pixelate",
    "quantization",
    "color_block",
    "high_sharpen",
    "contrast_change",
)

COLUMNS = ["reference", "reference_path", "distorted_path", "distortion", "level", "quality"]
HEADER = ("dist_img", "ref_img", "dmos", "var")

# A distorted image's name; such a file that the index does not list is reported (a truncated index).
DISTORTED_NAME = re.compile(r"^(i\d+)_(\d{2})_(\d{2})\.png$", re.IGNORECASE)
INDEX_FILE = "dmos.csv"
RELEASE_DISTORTED = 10125  # 81 references × 25 distortions × 5 levels
_REFERENCE_NAME = re.compile(r"^(i\d+)\.png$", re.IGNORECASE)


def load_kadid10k(root) -> pd.DataFrame:
    """One row per data row of ``dmos.csv``, in file order.

    Columns: reference ("I01"), reference_path, distorted_path (absolute str),
    distortion (snake_case name), level (int 1..5), quality (float DMOS).
    """
    release = open_release(root, "iqa_root", "KADID-10k", ("images",), (INDEX_FILE,))
    images_dir, images, csv_path = release.root / "images", release.folders["images"], release.files[INDEX_FILE]

    rows = []
    seen: dict[str, int] = {}
    try:
        with open(csv_path, encoding="utf-8-sig", newline="") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            columns = _check_header(header, csv_path)
            width = max(k + 1 for k, cell in enumerate(header) if cell.strip())  # a trailing comma adds no column
            for record in reader:
                if not any(cell.strip() for cell in record):
                    continue
                where = f"{csv_path} line {reader.line_num}"
                _check_width(record, width, where)
                row = _parse_row(record, columns, where, images, images_dir)
                name = record[columns["dist_img"]].strip().lower()
                if name in seen:
                    raise DatasetError(f"{where}: {record[columns['dist_img']].strip()!r} is listed twice "
                                       f"(first on line {seen[name]})")
                seen[name] = reader.line_num
                rows.append(row)
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{csv_path}: not a text file ({exc}); expected a CSV with header {','.join(HEADER)}") from exc
    except csv.Error as exc:
        raise DatasetError(f"{csv_path}: malformed CSV ({exc}); expected header {','.join(HEADER)}") from exc

    if not rows:
        raise DatasetError(f"{csv_path} lists no images: expected rows like 'I01_01_01.png,I01.png,4.57,0.496'")
    frame = pd.DataFrame(rows, columns=COLUMNS)
    return frame.astype({"level": "int64", "quality": "float64"})


def _check_header(header, csv_path: Path) -> dict[str, int]:
    """Column name → position; extra columns are allowed, the four official ones are required."""
    names = [cell.strip().strip('"').lower() for cell in header or []]
    missing = [name for name in HEADER if name not in names]
    if missing:
        raise DatasetError(
            f"{csv_path} line 1: expected header '{','.join(HEADER)}', got {','.join(header or [])!r}"
        )
    return {name: names.index(name) for name in HEADER}


def _check_width(record: list[str], width: int, where: str) -> None:
    """A row holds as many fields as the header (empty ones past it aside): a decimal comma (``4,57``) or a
    stray separator would otherwise shift every field after it and read as another number."""
    if len(record) < width or any(cell.strip() for cell in record[width:]):
        raise DatasetError(f"{where}: expected {width} fields as in the header ('{','.join(HEADER)}'), got "
                           f"{len(record)}: {','.join(record)!r}")


def _parse_row(record, columns, where, images, images_dir):
    dist_name = record[columns["dist_img"]].strip()
    ref_name = record[columns["ref_img"]].strip()
    dmos_text = record[columns["dmos"]].strip()

    match = DISTORTED_NAME.match(dist_name)
    if match is None:
        raise DatasetError(f"{where}: expected dist_img like 'I01_01_01.png', got {dist_name!r}")
    ref_match = _REFERENCE_NAME.match(ref_name)
    if ref_match is None:
        raise DatasetError(f"{where}: expected ref_img like 'I01.png', got {ref_name!r}")
    if ref_match.group(1).lower() != match.group(1).lower():
        raise DatasetError(f"{where}: dist_img '{dist_name}' does not belong to ref_img '{ref_name}'")
    dist_id, level = int(match.group(2)), int(match.group(3))
    if not 1 <= dist_id <= len(KADID10K_DISTORTIONS):
        raise DatasetError(f"{where}: distortion index {dist_id:02d} in '{dist_name}' is not one of KADID-10k's 01..25")
    if not 1 <= level <= 5:
        raise DatasetError(f"{where}: level {level:02d} in '{dist_name}' is not in 01..05")
    try:
        quality = float(dmos_text)
    except ValueError:
        quality = math.nan
    if not math.isfinite(quality):
        raise DatasetError(f"{where}: expected a number in column dmos, got {dmos_text!r}")

    dist_path = images.get(dist_name.lower())
    if dist_path is None:
        raise DatasetError(f"{where}: distorted image '{dist_name}' not found in {images_dir}")
    ref_path = images.get(ref_name.lower())
    if ref_path is None:
        raise DatasetError(f"{where}: reference image '{ref_name}' not found in {images_dir}")
    reference = "I" + ref_match.group(1)[1:]
    return reference, str(ref_path), str(dist_path), KADID10K_DISTORTIONS[dist_id - 1], level, quality
