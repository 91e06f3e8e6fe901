"""Tiny copies of the real datasets in their official on-disk layouts, and their releases' archive formats.

Each ``make_*`` writes into ``root`` and returns the path a user would pass as the
dataset root. Values are deterministic so tests can check them by hand. ``zip_folder``, ``tar_folder`` and
``stored_rar`` pack a folder the way a release is packed.
"""

from __future__ import annotations

import io
import pickle
import struct
import tarfile
import zipfile
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

SIZE = (24, 16)  # width, height: small, and not square so a transposed array would show


def _write_image(path: Path, seed: int) -> None:
    pixels = np.random.default_rng(seed).integers(0, 256, size=(SIZE[1], SIZE[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)


def tid2013_mos(ref: int, distortion: int, level: int) -> float:
    """The MOS the TID2013 fixture writes for i<ref>_<distortion>_<level>.bmp."""
    return round(7.0 - level + ref / 10 + distortion / 100, 5)


def make_tid2013(root, n_refs=3, distortions=(1, 8, 10), levels=(1, 2, 3), crlf=True) -> Path:
    """TID2013 with the release's case quirks.

    References I01.BMP, I02.BMP, … but the last one lower case (i03.bmp), like the
    release's i25.bmp. Distorted names are lower case except the very last image,
    stored upper case (I03_10_3.BMP) while the MOS file lists it lower case.
    ``mos_with_names.txt`` has one blank line in the middle and CRLF endings if ``crlf``.
    """
    root = Path(root)
    (root / "reference_images").mkdir(parents=True, exist_ok=True)
    (root / "distorted_images").mkdir(parents=True, exist_ok=True)
    lines = []
    for ref in range(1, n_refs + 1):
        ref_name = f"i{ref:02d}.bmp" if ref == n_refs else f"I{ref:02d}.BMP"
        _write_image(root / "reference_images" / ref_name, seed=ref)
        for distortion in distortions:
            for level in levels:
                name = f"i{ref:02d}_{distortion:02d}_{level}.bmp"
                on_disk = name.upper() if (ref, distortion, level) == (n_refs, distortions[-1], levels[-1]) else name
                _write_image(root / "distorted_images" / on_disk, seed=1000 * ref + 10 * distortion + level)
                lines.append(f"{tid2013_mos(ref, distortion, level):.5f} {name}")
    lines.insert(len(lines) // 2, "")
    newline = "\r\n" if crlf else "\n"
    (root / "mos_with_names.txt").write_bytes((newline.join(lines) + newline).encode("ascii"))
    return root


def kadid10k_dmos(ref: int, distortion: int, level: int) -> float:
    """The DMOS the KADID-10k fixture writes for I<ref>_<distortion>_<level>.png."""
    return round(5.0 - 0.5 * level + ref / 10 + distortion / 100, 3)


def make_kadid10k(root, n_refs=2, distortions=(1, 10, 25), levels=(1, 3, 5)) -> Path:
    """KADID-10k: images/I01.png, images/I01_01_01.png, dmos.csv (dist_img,ref_img,dmos,var)."""
    root = Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    lines = ["dist_img,ref_img,dmos,var"]
    for ref in range(1, n_refs + 1):
        _write_image(root / "images" / f"I{ref:02d}.png", seed=ref)
        for distortion in distortions:
            for level in levels:
                name = f"I{ref:02d}_{distortion:02d}_{level:02d}.png"
                _write_image(root / "images" / name, seed=1000 * ref + 10 * distortion + level)
                lines.append(f"{name},I{ref:02d}.png,{kadid10k_dmos(ref, distortion, level)},0.25")
    (root / "dmos.csv").write_text("\n".join(lines) + "\n")
    return root


def make_geirhos(root, classes=("airplane", "bear", "cat"), per_class=3) -> Path:
    """cue-conflict/<shape>/<shape><i>-<texture><j>.png under ``root``; returns the cue-conflict folder.

    Image i of class c takes its texture from class (c + i) mod len(classes), so image 0 of
    every class is shape == texture. Texture indices run past 9 (e.g. "bear12") to check
    that all digits are removed. A README.txt sits in the first class folder.
    """
    folder = Path(root) / "cue-conflict"
    for c, shape in enumerate(classes):
        (folder / shape).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            texture = classes[(c + i) % len(classes)]
            _write_image(folder / shape / f"{shape}{i + 1}-{texture}{10 + i}.png", seed=100 * c + i)
    (folder / classes[0] / "README.txt").write_text("not an image\n")
    return folder


def cifar100_fine_names() -> list[str]:
    """100 fine class names; the first few are real ones with underscores."""
    real = ["apple", "aquarium_fish", "baby", "bear", "beaver", "maple_tree", "pickup_truck"]
    return real + [f"class_{k}" for k in range(len(real), 100)]


def make_cifar100(root, n=10) -> Path:
    """cifar-100-python/test and meta, pickled (protocol 2) like the Python 2 release.

    Image k has label (7 * k) % 100 and channel planes filled with k (R), 100 + k (G),
    200 - k (B), except pixel (row 1, col 2) of image 0 which is (11, 22, 33).
    Returns the parent folder (the one holding cifar-100-python/).
    """
    folder = Path(root) / "cifar-100-python"
    folder.mkdir(parents=True, exist_ok=True)
    planes = np.zeros((n, 3, 32, 32), dtype=np.uint8)
    for k in range(n):
        planes[k, 0], planes[k, 1], planes[k, 2] = k, 100 + k, 200 - k
    planes[0, :, 1, 2] = (11, 22, 33)
    test = {
        "filenames": [f"image_{k}.png" for k in range(n)],
        "batch_label": "testing batch 1 of 1",
        "fine_labels": [(7 * k) % 100 for k in range(n)],
        "coarse_labels": [k % 20 for k in range(n)],
        "data": planes.reshape(n, 3072),
    }
    meta = {
        "fine_label_names": cifar100_fine_names(),
        "coarse_label_names": [f"superclass_{k}" for k in range(20)],
    }
    with open(folder / "test", "wb") as f:
        pickle.dump(test, f, protocol=2)
    with open(folder / "meta", "wb") as f:
        pickle.dump(meta, f, protocol=2)
    return Path(root)


def make_nights(root, n=6) -> Path:
    """nights/data.csv (the official columns: id, left_vote, right_vote, votes, ref_path, left_path,
    right_path, split, is_imagenet) and its ref/ and distort/ images, every triplet in the test split;
    triplet k's judges prefer the right image k + 1 of 6 times. Returns the nights folder."""
    folder = Path(root) / "nights"
    lines = ["id,left_vote,right_vote,votes,ref_path,left_path,right_path,split,is_imagenet"]
    for k in range(n):
        d, f = f"{k // 2:03d}", f"{k:03d}"
        for name, seed in ((f"ref/{d}/{f}.png", 7000 + k), (f"distort/{d}/{f}_0.png", 7100 + k),
                           (f"distort/{d}/{f}_1.png", 7200 + k)):
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            _write_image(folder / name, seed)
        right = (k % 6) + 1
        lines.append(f"{k},{6 - right},{right},6,ref/{d}/{f}.png,distort/{d}/{f}_0.png,distort/{d}/{f}_1.png,test,"
                     f"{k % 2 == 0}")
    (folder / "data.csv").write_text("\n".join(lines) + "\n")
    return folder


def make_mit1003(root, n=4) -> Path:
    """ALLSTIMULI/i<k>.jpeg and ALLFIXATIONMAPS/i<k>_fixPts.jpg, i<k>_fixMap.jpg (MIT1003's layout), image
    sizes alternating landscape and portrait, a dozen fixation points each. Returns ``root``."""
    root = Path(root)
    (root / "ALLSTIMULI").mkdir(parents=True, exist_ok=True)
    (root / "ALLFIXATIONMAPS").mkdir(parents=True, exist_ok=True)
    for k in range(n):
        rng = np.random.default_rng(9000 + k)
        shape = (48, 64) if k % 2 == 0 else (64, 48)
        Image.fromarray(rng.integers(0, 256, (*shape, 3), dtype=np.uint8)).save(root / "ALLSTIMULI" / f"i{k}.jpeg")
        points = np.zeros(shape, np.uint8)
        points[rng.integers(0, shape[0], 12), rng.integers(0, shape[1], 12)] = 255
        Image.fromarray(points).save(root / "ALLFIXATIONMAPS" / f"i{k}_fixPts.jpg", quality=95)
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(root / "ALLFIXATIONMAPS" / f"i{k}_fixMap.jpg")
    return root


def make_bapps(root, split="val", subsets=("traditional", "cnn"), n=3) -> Path:
    """2afc/<split>/<subset>/{ref,p0,p1}/NNNNNN.png and judge/NNNNNN.npy (the fraction choosing p1, 0.2 k
    (+ 0.1 in cnn)) under ``root``; returns ``root``."""
    root = Path(root)
    for subset in subsets:
        folder = root / "2afc" / split / subset
        for k in range(n):
            for part, seed in (("ref", 100), ("p0", 90 + k), ("p1", 120 + k)):
                (folder / part).mkdir(parents=True, exist_ok=True)
                _write_image(folder / part / f"{k:06d}.png", seed)
            (folder / "judge").mkdir(parents=True, exist_ok=True)
            np.save(folder / "judge" / f"{k:06d}.npy",
                    np.array([0.2 * k + (0.1 if subset == "cnn" else 0.0)], dtype=np.float32))
    return root


def make_cat2000(root, categories=("Action", "Art"), per_category=2) -> Path:
    """trainSet/{Stimuli,FIXATIONMAPS}/<Category>/<nnn>.jpg and trainSet/FIXATIONLOCS/<Category>/<nnn>.mat
    (variable fixLocs), plus a Thumbs.db; returns ``root``."""
    from scipy.io import savemat

    base = Path(root) / "trainSet"
    for c, category in enumerate(categories):
        for k in range(1, per_category + 1):
            rng = np.random.default_rng(100 * c + k)
            for folder in ("Stimuli", "FIXATIONMAPS", "FIXATIONLOCS"):
                (base / folder / category).mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (27, 48, 3), dtype=np.uint8)).save(
                base / "Stimuli" / category / f"{k:03d}.jpg")
            Image.fromarray(rng.integers(0, 256, (27, 48), dtype=np.uint8)).save(
                base / "FIXATIONMAPS" / category / f"{k:03d}.jpg")
            fixations = np.zeros((27, 48), np.uint8)
            fixations[rng.integers(0, 27, 9), rng.integers(0, 48, 9)] = 1
            savemat(base / "FIXATIONLOCS" / category / f"{k:03d}.mat", {"fixLocs": fixations})
    (base / "Stimuli" / categories[0] / "Thumbs.db").write_bytes(b"junk")
    return Path(root)


def _members(folder: Path, under: Path) -> list[tuple[str, Path]]:
    return [(path.relative_to(under).as_posix(), path) for path in sorted(Path(folder).rglob("*")) if path.is_file()]


def zip_folder(folder, under, archive) -> Path:
    """``folder``'s files into the zip ``archive``, named by their path below ``under``."""
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, path in _members(folder, Path(under)):
            zf.write(path, name)
    return Path(archive)


def tar_folder(folder, under, archive) -> Path:
    """``folder`` (its directories too) into the gzipped tar ``archive``, named by their path below ``under``."""
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(folder, arcname=Path(folder).relative_to(under).as_posix())
    return Path(archive)


def _rar_block(head_type: int, flags: int, body: bytes) -> bytes:
    head = struct.pack("<BHH", head_type, flags, 7 + len(body)) + body
    return struct.pack("<H", zlib.crc32(head) & 0xFFFF) + head


def stored_rar(folder, under, archive) -> Path:
    """``folder``'s files as a RAR 4 archive with every file stored (method 0x30), the format RARLAB's
    technote describes: marker block, main header, one file header (CRC-16 of the header, CRC-32 of the
    data) before each file's bytes, end-of-archive block. Made as WinRAR makes it (the TID2013 release was):
    host OS Win32, paths with backslashes. No free tool writes RAR, so the tests write it."""
    out = io.BytesIO()
    out.write(b"Rar!\x1a\x07\x00" + _rar_block(0x73, 0, bytes(6)))
    dos_time = (2013 - 1980) << 25 | 1 << 21 | 1 << 16
    for name, path in _members(folder, Path(under)):
        data, raw = path.read_bytes(), name.replace("/", "\\").encode()
        body = struct.pack("<IIBIIBBHI", len(data), len(data), 2, zlib.crc32(data), dos_time, 20, 0x30,
                           len(raw), 0x20) + raw
        out.write(_rar_block(0x74, 0x8000, body) + data)
    out.write(_rar_block(0x7B, 0x4000, b""))
    Path(archive).write_bytes(out.getvalue())
    return Path(archive)
