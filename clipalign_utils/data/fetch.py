"""``clipalign fetch DATASET --to DIR``: a real benchmark downloaded, verified and unpacked into the
official layout its loader reads.

:data:`RELEASES` is the one table of where each release lives: every archive's official URL with the
page or code that publishes it, and the release's checksum where its publisher gives one. A fetch

1. downloads each archive with requests (progress bar) into a hidden folder ``DIR/.fetch-<dataset>.partial/``,
   where a download cut short (the network, Ctrl-C, a full disk) stays for the same command to resume (an
   HTTP Range request, see :func:`_download`); the archive is checked against its published checksum where
   there is one; ``--url`` replaces a single-archive release's URL, ``--mirror BASE`` every archive's host
   (BASE + the archive's file name); ``--sha256`` is checked as well;
2. unpacks it into a hidden staging folder ``DIR/.fetch-<dataset>/``: zip and tar with the standard library
   (tar with its ``data`` filter), RAR with unar or libarchive; the archives are deleted once the release is
   verified (until then a stopped fetch keeps them, and the same command does not fetch them again);
3. finds the release's root in what was unpacked and reads it with the dataset's own loader, which checks
   that every file the release's own index names is there (``mos_with_names.txt``, ``dmos.csv``,
   ``data.csv``, the judge files, each stimulus's fixation files; CIFAR-100's pickles by torchvision's
   published MD5s);
4. only then renames the root to ``DIR/<dataset>``.

Any failure (offline, a 404 or a server error, a truncated or wrong archive, a checksum mismatch, a RAR
member failing its own CRC, a full disk, a file the index names missing) is a
:class:`~clipalign_utils.errors.DatasetError` naming the URL or file, after the staging folder and every
folder the fetch made are removed: ``DIR`` never holds a folder that a loader would accept and that was not
verified. Only the downloads folder may stay, holding the bytes received of an archive not known to be wrong
(the error says so); a wrong archive (its checksum, a damaged archive) is deleted, for the next fetch to get
it afresh. A second fetch of the same release into the same ``DIR`` while one runs is refused (a lock file
beside the staging folder), as the two would share it.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import tarfile
import urllib.parse
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

from ..errors import NO_SPACE, DatasetError, ParameterError, shell_arg
from ..io import write_json
from ..prose import counted
from .registry import TASKS, dataset_parameter, root_parameter
from .roots import open_root, subfolders


@dataclass(frozen=True)
class Archive:
    """One file of a release: its official ``url``, the ``checksum`` published for it (``"md5:…"`` /
    ``"sha256:…"``, None where there is none) and ``source``, where both are published."""

    url: str
    checksum: str | None
    source: str
    into: str = ""  # the sub-folder the publisher's own script unpacks it into (BAPPS: 2afc/)

    @property
    def file_name(self) -> str:
        return self.url.rstrip("/").rsplit("/", 1)[-1].split("?")[0]


@dataclass(frozen=True)
class Release:
    """A real dataset as its authors release it, and where its loader finds it.

    ``is_root(folder)`` tells the unpacked folder a loader reads (the one ``<task>_root`` names);
    ``verify(root)`` reads it with the loader and returns what it counted (e.g. "3000 distorted images
    listed in mos_with_names.txt"), raising DatasetError for anything the release's index names but is
    missing."""

    name: str
    title: str
    task: str
    archives: tuple[Archive, ...]
    layout: str
    is_root: Callable[[Path], bool]
    verify: Callable[[Path], str]
    # Checks of the files against their published checksums, made by a fetch only (a user's own copy of a
    # release may be re-saved; the loader reads it all the same).
    checksums: Callable[[Path], None] = lambda root: None
    # What a run reads of it, given the run's parameters (check_real_datasets); None: all of it (verify).
    read_for_run: Callable[[Path, Mapping], str] | None = None


# ------------------------------------------------------------------------------------- verification
def _verify_tid2013(root: Path) -> str:
    from .tid2013 import load_tid2013

    table = load_tid2013(root)
    return (f"{len(table)} distorted images listed in mos_with_names.txt and their "
            f"{table['reference'].nunique()} reference images")


def _verify_kadid10k(root: Path) -> str:
    from .kadid10k import load_kadid10k

    table = load_kadid10k(root)
    return f"{len(table)} distorted images listed in dmos.csv and their {table['reference'].nunique()} references"


# torchvision.datasets.CIFAR100.test_list / .meta: the MD5 of each pickle inside the archive.
CIFAR100_FILE_MD5 = {"test": "f0ef6b0ae62326f3e7ffdfab6717acfc", "meta": "7973b15100ade9c7d40fb424638fde48"}


def _cifar100_checksums(root: Path) -> None:
    for name, md5 in CIFAR100_FILE_MD5.items():
        path = root / "cifar-100-python" / name
        if path.is_file() and file_hash(path, "md5") != md5:
            raise DatasetError(f"{path}: MD5 {file_hash(path, 'md5')} is not the published {md5} "
                               f"(torchvision's CIFAR100 list)")


def _verify_cifar100(root: Path) -> str:
    from .cifar100 import load_cifar100

    images, _, names = load_cifar100(root)
    return f"{len(images)} test images of {len(names)} classes"


def _verify_geirhos(root: Path) -> str:
    from .geirhos import load_geirhos

    table = load_geirhos(root)
    return (f"{len(table)} images named <shape><i>-<texture><j>, {table['shape'].nunique()} shape classes, "
            f"{int((table['shape'] != table['texture']).sum())} with conflicting cues")


def _verify_bapps(root: Path) -> str:
    from .bapps import SPLITS, load_bapps

    counts = [f"{len(load_bapps(root, split))} {split} triplets" for split in SPLITS if (root / "2afc" / split).is_dir()]
    if not counts:  # find_root takes only such a folder; said here too, so that nothing unread passes as verified
        raise DatasetError(f"{root / '2afc'} holds neither {' nor '.join(SPLITS)}")
    return ", ".join(counts) + " (ref, p0, p1 and judge files of each)"


def _is_bapps(folder: Path) -> bool:
    """A folder whose 2afc/ holds a split (an archive repacked with its own dataset/2afc/ unpacks one level down)."""
    from .bapps import SPLITS

    return any((folder / "2afc" / split).is_dir() for split in SPLITS)


def _bapps_split(root: Path, values: Mapping) -> str:
    from .bapps import load_bapps

    split = values.get("similarity_split") or "val"
    return f"{len(load_bapps(root, split))} {split} triplets"


def _nights_split(root: Path, values: Mapping) -> str:
    from .nights import load_nights

    split, protocol = values.get("similarity_split") or "test", values.get("similarity_protocol") or "all"
    return f"{len(load_nights(root, split, protocol))} {split} triplets ({protocol})"


def _verify_nights(root: Path) -> str:
    import pandas as pd

    from .nights import load_nights, nights_folder

    table = pd.read_csv(nights_folder(root) / "data.csv", dtype=str, keep_default_na=False)
    splits = table["split"].str.strip().str.lower() if "split" in table.columns else pd.Series([], dtype=str)
    counts = [f"{len(load_nights(root, split, 'all'))} {split}" for split in ("train", "val", "test")
              if (splits == split).any()] or [f"{len(load_nights(root, 'test', 'all'))} test"]
    return "triplets listed in data.csv, every ref and distort file present: " + ", ".join(counts)


def _verify_mit1003(root: Path) -> str:
    from .mit1003 import load_mit1003

    return f"{len(load_mit1003(root, image_size=224))} stimuli, each with its _fixMap.jpg and _fixPts.jpg"


def _verify_cat2000(root: Path) -> str:
    from .cat2000 import load_cat2000

    n = len(load_cat2000(root, image_size=224))
    return f"{n} training stimuli, each with its fixation map and FIXATIONLOCS .mat"


def _is_cue_conflict(folder: Path) -> bool:
    from .geirhos import GEIRHOS_CLASSES, TEXTURE_VS_SHAPE_FOLDER

    # texture-vs-shape's stimuli/ holds class folders of edges, silhouettes, … beside the cue-conflict ones
    if folder.name != TEXTURE_VS_SHAPE_FOLDER and (folder.parent / TEXTURE_VS_SHAPE_FOLDER).is_dir():
        return False
    return any((folder / name).is_dir() for name in GEIRHOS_CLASSES)


def _has(*names: str) -> Callable[[Path], bool]:
    return lambda folder: all((folder / name).exists() for name in names)


# --------------------------------------------------------------------------------------- releases
# Every URL and checksum is quoted from the source beside it; "md5:…" where the publisher, or the
# well-kept loader that downloads the release, checks one. No checksum is published for the others.
RELEASES: dict[str, Release] = {release.name: release for release in (
    Release("tid2013", "TID2013 (Ponomarenko et al. 2015)", "iqa", (
        Archive("http://www.ponomarenko.info/tid2013/tid2013.rar", "md5:2c42bec2407adc49cf4d7858daf8f99b",
                "the authors' page ponomarenko.info/tid2013.htm; MD5 checked by google-deepmind/dm_nevis "
                "(datasets_storage/handlers/tid.py)"),),
        "reference_images/, distorted_images/, mos_with_names.txt", _has("mos_with_names.txt"), _verify_tid2013),
    Release("kadid10k", "KADID-10k (Lin, Hosu & Saupe 2019)", "iqa", (
        Archive("https://datasets.vqa.mmsp-kn.de/archives/kadid10k.zip", None,
                "the authors' page database.mmsp-kn.de/kadid-10k-database.html; photosynthesis-team/piq "
                "tests/results_benchmark.py"),),
        "images/, dmos.csv", _has("dmos.csv", "images"), _verify_kadid10k),
    Release("cifar100", "CIFAR-100, python version (Krizhevsky 2009)", "noise", (
        Archive("https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz", "md5:eb9058c3a382ffc7106e4002c42a8d85",
                "pytorch/vision torchvision/datasets/cifar.py (CIFAR100.url, tgz_md5)"),),
        "cifar-100-python/test, cifar-100-python/meta", _has("cifar-100-python/test", "cifar-100-python/meta"),
        _verify_cifar100, _cifar100_checksums),
    Release("geirhos", "cue-conflict stimuli (Geirhos et al. 2019), model-vs-human release", "cue_conflict", (
        Archive("https://github.com/bethgelab/model-vs-human/releases/download/v0.1/cue-conflict.tar.gz", None,
                "bethgelab/model-vs-human modelvshuman/utils.py (release v0.1, {NAME}.tar.gz)"),),
        "<shape_class>/<shape><i>-<texture><j>.png", _is_cue_conflict, _verify_geirhos),
    # The val split only, the one 2AFC scores are reported on (LPIPS's download_dataset_valonly.sh, 1.1 GB);
    # the train split is --url …/twoafc_train.tar.gz into another --to.
    Release("bapps", "BAPPS 2AFC, validation split (Zhang et al. 2018)", "similarity", (
        Archive("https://perceptual-similarity.s3.us-west-2.amazonaws.com/dataset/twoafc_val.tar.gz", None,
                "richzhang/PerceptualSimilarity scripts/download_dataset_valonly.sh (the host since October "
                "2023; before, people.eecs.berkeley.edu/~rich.zhang/projects/2018_perceptual/dataset/)",
                into="2afc"),),
        "2afc/val/<subset>/{ref,p0,p1,judge}/", _is_bapps, _verify_bapps, read_for_run=_bapps_split),
    Release("nights", "NIGHTS (Fu et al. 2023)", "similarity", (
        Archive("https://data.csail.mit.edu/nights/nights.zip", None,
                "ssundaram21/dreamsim dataset/download_dataset.sh"),),
        "data.csv, ref/, distort/", _has("data.csv", "ref", "distort"), _verify_nights, read_for_run=_nights_split),
    Release("mit1003", "MIT1003 (Judd et al. 2009)", "saliency", (
        Archive("http://people.csail.mit.edu/tjudd/WherePeopleLook/ALLSTIMULI.zip",
                "md5:0d7df8b954ecba69b6796e77b9afe4b6",
                "the authors' page people.csail.mit.edu/tjudd/WherePeopleLook; MD5 checked by matthias-k/pysaliency "
                "(external_datasets/mit.py)"),
        Archive("http://people.csail.mit.edu/tjudd/WherePeopleLook/ALLFIXATIONMAPS.zip", None,
                "the authors' page people.csail.mit.edu/tjudd/WherePeopleLook")),
        "ALLSTIMULI/, ALLFIXATIONMAPS/", _has("ALLSTIMULI", "ALLFIXATIONMAPS"), _verify_mit1003),
    Release("cat2000", "CAT2000, training set (Borji & Itti 2015)", "saliency", (
        Archive("http://saliency.mit.edu/trainSet.zip", "md5:56ad5c77e6c8f72ed9ef2901628d6e48",
                "saliency.mit.edu; URL and MD5 from matthias-k/pysaliency (external_datasets/cat2000.py)"),),
        "trainSet/{Stimuli,FIXATIONMAPS,FIXATIONLOCS}/<Category>/", _has("trainSet/Stimuli"), _verify_cat2000),
)}


# --------------------------------------------------------------------- a user's own folder, before a run

def check_real_datasets(values: Mapping) -> None:
    """Read each real dataset that ``values`` (a step's resolved parameters) names from its ``<task>_root``
    with the dataset's loader, as ``clipalign fetch`` verifies a release: a folder in the wrong layout is one
    DatasetError naming the parameter and what the folder should hold, raised before a run trains or a
    kernel starts (not by a page after training, or after the step's previous page was removed). Each
    folder is read once per process."""
    for task in TASKS:
        name = values.get(dataset_parameter(task))
        release = RELEASES.get(name)
        if release is None or release.task != task:  # the embedded set, or a dataset registered at run time
            continue
        # the part a run reads (a 2AFC set's split, its protocol), else the whole release
        chosen = (tuple((k, values.get(k)) for k in ("similarity_split", "similarity_protocol"))
                  if release.read_for_run is not None else ())
        open_root(task, name, values.get(root_parameter(task)),
                  lambda root: _read(name, str(Path(root).absolute()), chosen),
                  f"the folder holding {release.title} in its official layout ({release.layout}); "
                  f"clipalign fetch {name} --to DIR makes one")


@functools.lru_cache(maxsize=None)
def _read(name: str, root: str, chosen: tuple[tuple[str, str | None], ...]) -> str:
    release = RELEASES[name]
    if release.read_for_run is None:
        return release.verify(Path(root))
    return release.read_for_run(Path(root), dict(chosen))


# ------------------------------------------------------------------------------------------ helpers
def file_hash(path: Path, algorithm: str = "sha256") -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def archive_urls(release: Release, url: str | None = None, mirror: str | None = None) -> list[str]:
    """The URL of each of ``release``'s archives: the official one, ``url`` (a single-archive release
    only) or ``mirror`` + the archive's file name."""
    # (given empty, as an unset shell variable gives it, it is refused, not taken for "not given": that would
    # download from the official host)
    if url is not None and mirror is not None:
        raise ParameterError("--url and --mirror: give one (--url for a single archive, --mirror for a host "
                             "holding every archive by its file name)")
    if url is not None:
        if len(release.archives) > 1:
            names = ", ".join(a.file_name for a in release.archives)
            raise ParameterError(f"--url: {release.name} has {len(release.archives)} archives ({names}); "
                                 f"use --mirror BASE, where BASE/<file name> serves each")
        return [_web_address(url, "--url", "the archive")]
    if mirror is not None:
        base = _web_address(mirror, "--mirror", "the folder holding the archives").rstrip("/")
        return [base + "/" + a.file_name for a in release.archives]
    return [a.url for a in release.archives]


def _web_address(text: str, flag: str, what: str) -> str:
    """``text`` checked to be an http(s) address (what the downloads go through), else one ParameterError."""
    try:
        parts = urllib.parse.urlsplit(text.strip())
        valid = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:  # a malformed host such as 'http://[::1'
        valid = False
    if not valid:
        raise ParameterError(f"{flag} {text!r}: give the http(s) address of {what} (e.g. "
                             f"https://my.mirror.example/datasets{'' if flag == '--mirror' else '/ARCHIVE.zip'})")
    return text.strip()


def _sha256_list(text: str | None, release: Release) -> list[str | None]:
    if text is None:
        return [None] * len(release.archives)
    values = [v.strip().lower() for v in text.split(",")]
    if len(values) != len(release.archives) or not all(
            len(v) == 64 and all(c in "0123456789abcdef" for c in v) for v in values):
        raise ParameterError(f"--sha256 {text!r}: give {counted(len(release.archives), 'SHA-256 hex digest')} of 64 "
                             f"characters for {release.name} ({', '.join(a.file_name for a in release.archives)}), "
                             f"comma-separated in that order")
    return values


# A transfer cut short loses the chunk it was reading (urllib3 raises without handing it over): this much at most.
DOWNLOAD_CHUNK = 1 << 16


def _download(url: str, folder: Path, file_name: str, progress: bool) -> Path:
    """``url`` into ``folder/file_name``, resumable: the bytes received stay in that file, with the URL and the
    server's validator (a strong ETag, else Last-Modified) beside it in ``file_name.json``; a later call asks
    only for the rest (an HTTP Range request with If-Range: a file changed on the server since comes whole
    again, as does one from a server that gives no validator or ignores ranges). Complete once every byte the
    server announced is there; a complete file is not fetched again."""
    import requests
    import urllib3
    from tqdm.auto import tqdm

    path = folder / file_name
    state_path = _state_path(path)
    state = _read_state(state_path) if path.exists() else {}
    if state.get("url") != url:  # another source's bytes (or none): from the start
        state = {}
    if state.get("complete") and path.stat().st_size == state.get("size"):
        return path
    done = path.stat().st_size if state.get("validator") else 0
    # identity: the bytes written are the file's, so their count is the Content-Length's
    headers = {"Accept-Encoding": "identity"}
    if done:
        headers.update({"Range": f"bytes={done}-", "If-Range": state["validator"]})
    try:
        with requests.get(url, stream=True, timeout=60, headers=headers) as response:
            if response.status_code == 416:  # nothing after what was kept: not this file's beginning
                return _download_afresh(url, folder, file_name, progress)
            response.raise_for_status()
            etag = response.headers.get("ETag", "")
            resumed = bool(done) and response.status_code == 206 and _range_start(response) == done
            now = etag if (state.get("validator") or "").startswith('"') else response.headers.get("Last-Modified")
            if resumed and now != state["validator"]:  # a range of another version (a server ignoring If-Range)
                return _download_afresh(url, folder, file_name, progress)
            start = done if resumed else 0
            encoding = response.headers.get("Content-Encoding", "identity").lower()
            # A gzipped archive served with its own compression named as the encoding (Apache's "AddEncoding x-gzip
            # .gz"): its bytes are the file, the published checksum's, and are kept as they come, as curl and wget
            # keep them. Any other encoded body (gzip although identity was asked for) is decoded as it comes: its
            # byte count is not the Content-Length's, nor are ranges of it the file's, so it is neither checked
            # nor resumed.
            labelled = encoding in ("gzip", "x-gzip") and file_name.endswith((".gz", ".tgz"))
            encoded = encoding not in ("identity", "") and not labelled
            length = response.headers.get("Content-Length", "")
            size = start + int(length) if length.isdigit() and not encoded else None
            validator = None if encoded else (
                (etag if etag and not etag.startswith("W/") else None) or response.headers.get("Last-Modified"))
            with open(path, "ab" if resumed else "wb") as out, \
                    tqdm(total=size, initial=start, desc=file_name, unit="B", unit_scale=True,
                         disable=not progress) as bar:
                state = {"url": url, "validator": validator, "size": size}
                write_json(state_path, state)  # (after the file is opened: a fresh one is empty by then)
                for chunk in (response.raw.stream(DOWNLOAD_CHUNK, decode_content=False) if labelled
                              else response.iter_content(chunk_size=DOWNLOAD_CHUNK)):
                    out.write(chunk)
                    bar.update(len(chunk))
    except requests.exceptions.HTTPError as error:
        status = error.response.status_code if error.response is not None else "?"
        if isinstance(status, int) and status >= 500:
            raise DatasetError(f"{url}: HTTP {status}: the server failed (try again later, or pass --mirror BASE "
                               f"to fetch it from elsewhere)") from None
        raise DatasetError(f"{url}: HTTP {status}: the file is not there (pass --url or --mirror to fetch it "
                           f"from elsewhere)") from None
    except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError) as error:  # (the raw stream's)
        raise DatasetError(f"{url}: download failed ({type(error).__name__}: {_short(error)}): check the network "
                           f"or pass --mirror BASE") from None
    except OSError as error:
        if error.errno in NO_SPACE:
            raise _no_space(folder, f"downloading {file_name}") from None
        raise
    got = path.stat().st_size
    if size is not None and got != size:
        raise DatasetError(f"{url}: download failed (the transfer ended at {got} of {size} bytes): check the "
                           f"network or pass --mirror BASE")
    write_json(state_path, {**state, "size": got, "complete": True})
    return path


def _download_afresh(url: str, folder: Path, file_name: str, progress: bool) -> Path:
    """What was kept of ``file_name`` is not a part of the file now served: forgotten, and the file fetched whole."""
    _forget(folder / file_name)
    return _download(url, folder, file_name, progress)


def _range_start(response) -> int | None:
    """The first byte a 206 response holds (its Content-Range: ``bytes START-END/SIZE``)."""
    try:
        return int(response.headers["Content-Range"].split()[1].split("-")[0])
    except (KeyError, IndexError, ValueError):
        return None


def _state_path(archive: Path) -> Path:
    """Where a download's state (its URL, the server's validator, its size, whether complete) lies: beside it."""
    return archive.with_name(archive.name + ".json")


def _read_state(path: Path) -> dict:
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def _kept(folder: Path) -> str:
    """What a failed fetch leaves in its downloads folder for the next one (whole archives, and parts a server's
    validator lets it resume; any other part is deleted), said in a clause ('' if nothing)."""
    kept = []
    for state_path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        state, archive = _read_state(state_path), state_path.with_suffix("")  # (the inverse of _state_path)
        size = archive.stat().st_size if archive.is_file() else 0
        if state.get("complete") and size == state.get("size"):
            kept.append(f"{archive.name} whole")
        elif state.get("validator") and size:
            kept.append(f"{_size(size)} of {archive.name}")
        else:
            _forget(archive)
    return f"{', '.join(kept)} kept in {folder}: the same command resumes there" if kept else ""


class _NoSpace(DatasetError):
    """The disk filled: nothing wrong with the archive."""


def _no_space(folder: Path, doing: str, needed: int | None = None) -> DatasetError:
    # named by the folder the user gave, not the hidden staging folder inside it (gone by the time they read it)
    where = next(p for p in (folder, *folder.parents) if not any(part.startswith(".fetch-") for part in p.parts))
    need = f"it needs {_size(needed)}, " if needed else ""
    return _NoSpace(f"{where}: no space left while {doing} ({need}{_size(_free(folder))} free on its disk): "
                    f"free space there, or fetch into another --to")


def _free(folder: Path) -> int:
    """Free bytes on the disk that holds ``folder`` (or would: its nearest existing parent)."""
    return shutil.disk_usage(next(p for p in (folder, *folder.parents) if p.exists())).free


def _size(size: int) -> str:
    return f"{size / 1e9:.2f} GB" if size >= 1e8 else f"{size / 1e6:.1f} MB" if size >= 1e5 else f"{size} bytes"


def _make_room(dest: Path, needed: int, archive: Path) -> None:
    """Refuse before unpacking what the disk cannot hold (an unpacker may not say so: unar writes empty files
    on a full disk and reports success)."""
    if _free(dest) < needed:
        raise _no_space(dest, f"unpacking {archive.name}", needed)


def _check(path: Path, url: str, checksum: str | None, said: str) -> None:
    """``path``'s digest against ``checksum`` ("md5:…" / "sha256:…"); ``said`` says who gives it."""
    if checksum:
        algorithm, expected = checksum.split(":")
        got = file_hash(path, algorithm)
        if got != expected.lower():
            name = {"md5": "MD5", "sha256": "SHA-256"}[algorithm]
            raise DatasetError(f"{url}: its {name} is {got}, not {expected} {said}: the download is corrupt, "
                               f"or not that file")


def _short(error: Exception) -> str:
    return " ".join(str(error).split())[:300]


# unar (The Unarchiver) reads every RAR version, solid archives included; libarchive reads RAR5 and non-solid
# RAR4 but stops at a solid RAR4 ("RAR solid archive support unavailable"). No free tool writes RAR.
RAR_TOOLS = ("unar", "libarchive")


def _kind(path: Path) -> str:
    with open(path, "rb") as f:
        head = f.read(8)
    if head.startswith(b"Rar!\x1a\x07"):
        return "rar"
    if zipfile.is_zipfile(path) or head.startswith(b"PK"):
        return "zip"
    if head.startswith(b"\x1f\x8b") or tarfile.is_tarfile(path):
        return "tar"
    return "unknown"


def unpack(archive: Path, dest: Path, progress: bool = False, rar_tools: tuple[str, ...] = RAR_TOOLS) -> None:
    """Every member of ``archive`` (zip, tar[.gz|.bz2|.xz] or RAR, told by its first bytes) under ``dest``;
    member paths that would leave ``dest`` are refused. A damaged archive is a DatasetError naming it."""
    from tqdm.auto import tqdm

    kind = _kind(archive)
    dest.mkdir(parents=True, exist_ok=True)
    try:
        if kind == "zip":
            with zipfile.ZipFile(archive) as zf:
                _make_room(dest, sum(member.file_size for member in zf.infolist()), archive)
                # ZipFile.extract strips absolute paths and '..'; reading each member checks its CRC.
                for member in tqdm(zf.infolist(), desc=f"unpacking {archive.name}", unit="file", disable=not progress):
                    zf.extract(member, dest)
        elif kind == "tar":
            with tarfile.open(archive) as tf:
                for member in tqdm(tf, desc=f"unpacking {archive.name}", unit="file", disable=not progress):
                    tf.extract(member, dest, filter="data")
        elif kind == "rar":
            _unpack_rar(archive, dest, progress, rar_tools)
        else:
            raise DatasetError(f"{archive.name}: neither a zip, a tar nor a RAR archive (an error page saved "
                               f"instead of the archive?)")
    except DatasetError:
        raise
    except OSError as error:
        if error.errno in NO_SPACE:
            raise _no_space(dest, f"unpacking {archive.name}") from None
        raise DatasetError(f"{archive.name}: a damaged or truncated {kind} archive "
                           f"({type(error).__name__}: {_short(error)})") from None
    except tarfile.FilterError as error:  # tarfile's data filter: a member's path or link leaves the folder
        raise DatasetError(f"{archive.name}: a {kind} archive with a member that would be written outside its "
                           f"folder, refused ({type(error).__name__}: {_short(error)})") from None
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, ValueError) as error:
        raise DatasetError(f"{archive.name}: a damaged or truncated {kind} archive "
                           f"({type(error).__name__}: {_short(error)})") from None


_RAR_HELP = "install unar (Debian/Ubuntu: apt-get install unar; macOS: brew install unar)"


class _NoTool(DatasetError):
    """No unpacker on this machine reads the archive: nothing wrong with the archive (a fetch keeps it)."""


def _unpack_rar(archive: Path, dest: Path, progress: bool, tools: tuple[str, ...] = RAR_TOOLS) -> None:
    """RAR through the first of ``tools`` that unpacks it whole (each has gaps: unar stops at some RAR5
    headers, libarchive at solid RAR4); each try goes to a folder of its own, merged into ``dest`` after."""
    listing = _rar_listing(archive) if "unar" in tools else None
    if listing is not None:
        _make_room(dest, sum(listing.values()), archive)
    attempts = {"unar": functools.partial(_unar, listing=listing), "libarchive": _libarchive}
    failures = []
    for tool in tools:
        trial = dest.parent / f".{archive.name}.{tool}"
        shutil.rmtree(trial, ignore_errors=True)
        trial.mkdir(parents=True)
        try:
            attempts[tool](archive, trial, progress)
        except _DamagedData:
            # the archive's own checksums failed: another reader would not find it whole (libarchive does not
            # check a stored RAR4 member's CRC, so it would take the damage for the file)
            shutil.rmtree(trial, ignore_errors=True)
            raise
        except DatasetError as error:
            failures.append(error)
            shutil.rmtree(trial, ignore_errors=True)
            continue
        _merge(trial, dest)
        shutil.rmtree(trial, ignore_errors=True)
        return
    missing = all(isinstance(failure, _NoTool) for failure in failures)
    raise (_NoTool if missing else DatasetError)(
        "; ".join(map(str, failures)) if failures else f"{archive.name} is a RAR archive: {_RAR_HELP}")


def _merge(source: Path, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for child in source.iterdir():
        target = dest / child.name
        if child.is_dir() and target.is_dir():
            _merge(child, target)
        else:
            child.replace(target)


class _DamagedData(DatasetError):
    """A RAR member whose data fail the archive's own checksum: no other reader is tried."""


def _rar_listing(archive: Path) -> dict[str, int] | None:
    """Each file member's name and size as lsar (unar's companion) lists them; None without lsar, or where it
    cannot list the archive (unar's own failure then says why)."""
    import subprocess

    lsar = shutil.which("lsar")
    if lsar is None:
        return None
    listed = subprocess.run([lsar, "-j", str(archive)], capture_output=True, text=True, errors="replace")
    try:
        contents = json.loads(listed.stdout)["lsarContents"]
    except (ValueError, KeyError, TypeError):
        return None
    return {str(entry.get("XADFileName")): int(entry.get("XADFileSize", 0)) for entry in contents
            if not entry.get("XADIsDirectory") and not entry.get("XADIsLink")}


def _unar(archive: Path, dest: Path, progress: bool, listing: dict[str, int] | None = None) -> None:
    """``archive`` under ``dest`` by unar; what it writes held to ``listing`` (lsar's) where there is one."""
    import subprocess

    from tqdm.auto import tqdm

    unar = shutil.which("unar")
    if unar is None:
        raise _NoTool(f"{archive.name} is a RAR archive and this machine has no unar: {_RAR_HELP}")
    # -no-directory: the members go straight under dest, as the publisher laid them out.
    command = [unar, "-force-overwrite", "-no-directory", "-output-directory", str(dest), str(archive)]
    lines = []
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          errors="replace") as process, \
            tqdm(desc=f"unpacking {archive.name}", unit="file", total=listing and len(listing),
                 disable=not progress) as bar:
        for line in process.stdout:
            lines.append(line.strip())
            if line.rstrip().endswith("OK."):
                bar.update()
    # unar's status follows the member's name after "... " (a name may itself say "checksum")
    damaged = [line for line in lines if "... " in line and "checksum" in line.rsplit("... ", 1)[1].lower()
               and not line.endswith("OK.")]
    if damaged:
        raise _DamagedData(f"{archive.name}: a damaged RAR archive: its data fail the archive's own checksum "
                           f"(unar: {_short(Exception(damaged[0]))}); fetch it again")
    if process.returncode != 0:
        said = next((line for line in reversed(lines) if line), f"exit status {process.returncode}")
        raise DatasetError(f"{archive.name}: a damaged or truncated RAR archive (unar: {_short(Exception(said))})")
    if listing is not None:
        # unar says "OK." and exits 0 where it could not write a file (a full disk leaves it empty)
        files = [p for p in dest.rglob("*") if p.is_file()]
        written, expected = sum(p.stat().st_size for p in files), sum(listing.values())
        if len(files) != len(listing) or written != expected:
            raise _DamagedData(f"{archive.name}: unar wrote {len(files)} files of {written} bytes where the archive "
                               f"lists {len(listing)} of {expected} (a full disk? {_size(_free(dest))} "
                               f"free on its disk): free space, or fetch into another --to")


def _libarchive(archive: Path, dest: Path, progress: bool) -> None:
    try:
        import libarchive
    except (ImportError, OSError, AttributeError) as error:  # AttributeError: no libarchive.so found
        raise _NoTool(f"{archive.name} is a RAR archive and this machine has neither unar nor libarchive "
                      f"({error}): {_RAR_HELP}") from None
    from tqdm.auto import tqdm

    # Written member by member (libarchive's own extract works in the current directory): directories and
    # regular files only, each checked to stay under ``dest``; links are neither followed nor made.
    try:
        with libarchive.file_reader(str(archive)) as entries, \
                tqdm(desc=f"unpacking {archive.name}", unit="file", disable=not progress) as bar:
            for entry in entries:
                target = dest / entry.pathname
                if not target.resolve().is_relative_to(dest.resolve()):
                    raise DatasetError(f"{archive.name}: member {entry.pathname!r} would leave the folder")
                if entry.isdir:
                    target.mkdir(parents=True, exist_ok=True)
                elif entry.isfile:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with open(target, "wb") as out:
                        for block in entry.get_blocks():
                            out.write(block)
                bar.update()
    except libarchive.ArchiveError as error:
        if "solid" in str(error).lower():
            raise _NoTool(f"{archive.name} is a solid RAR archive, which libarchive cannot unpack: "
                          f"{_RAR_HELP}") from None
        raise DatasetError(f"{archive.name}: a damaged or truncated RAR archive ({_short(error)})") from None


def find_root(unpacked: Path, release: Release, depth: int = 4) -> Path:
    """The folder under ``unpacked`` (itself included, breadth first, ``depth`` levels) that ``release``'s
    loader reads."""
    level = [unpacked]
    for _ in range(depth + 1):
        for folder in level:
            if release.is_root(folder):
                return folder
        level = [p for folder in level for p in subfolders(folder)]
    found = ", ".join(sorted(p.name for p in unpacked.iterdir())) or "nothing"
    raise DatasetError(f"it holds no {release.title} folder ({release.layout}), only: {found}")


# -------------------------------------------------------------------------------------------- fetch
@dataclass(frozen=True)
class Fetched:
    release: Release
    root: Path
    counted: str
    already: bool = False

    def parameters(self) -> str:
        from .registry import dataset_parameter, root_parameter

        words = [f"-p {dataset_parameter(self.release.task)}={self.release.name}",
                 f"-p {shell_arg(f'{root_parameter(self.release.task)}={self.root}')}"]
        if self.release.name == "bapps" and not (self.root / "2afc" / "val").is_dir():
            from .bapps import SPLITS  # a train-only copy (--url …/twoafc_train.tar.gz): the run reads val unless told

            words += [f"-p similarity_split={split}" for split in SPLITS if (self.root / "2afc" / split).is_dir()][:1]
        return " ".join(words)


def release_named(name: str) -> Release:
    if name not in RELEASES:
        raise ParameterError(f"fetch {name!r}: not a dataset clipalign fetches; choose one of {', '.join(RELEASES)}")
    return RELEASES[name]


def fetch(name: str, to, url: str | None = None, mirror: str | None = None, sha256: str | None = None,
          progress: bool = True) -> Fetched:
    """Fetch release ``name`` into ``to/<name>`` (see the module's docstring); the arguments are checked
    before anything is created. A folder already there is verified and kept, not fetched again."""
    release = release_named(name)
    urls = archive_urls(release, url, mirror)
    expected = _sha256_list(sha256, release)
    to = Path(to).expanduser()
    if to.exists() and not to.is_dir():
        raise ParameterError(f"--to {to}: a file, not a folder")
    final = to / release.name
    if final.exists() and not final.is_dir():
        raise DatasetError(f"{final} is a file, where the fetch would put the {release.title} folder: move it, "
                           f"or fetch into another --to")
    if final.exists():
        try:
            release.checksums(final)
            counted = release.verify(final)
        except DatasetError as error:
            raise DatasetError(f"{final} exists but is not a complete {release.title} ({error}): remove it, "
                               f"or fetch into another --to") from None
        return Fetched(release, final, counted, already=True)

    # the folders this fetch makes (deepest first): a failed fetch leaves none of them behind
    created = [p for p in (to, *to.parents) if not p.exists()]
    staging = to / f".fetch-{release.name}"
    downloads = to / f".fetch-{release.name}.partial"  # kept when a fetch stops short: the next one resumes
    lock, locked = None, False
    try:
        to.mkdir(parents=True, exist_ok=True)
        lock = _lock(to / f".fetch-{release.name}.lock", release, to)
        locked = True
        if final.exists():  # another fetch finished it while this one waited for nothing: verify and keep it
            lock = _unlock(lock)
            return fetch(name, to, url, mirror, sha256, progress)
        shutil.rmtree(staging, ignore_errors=True)  # a fetch that was killed left its staging folder
        (staging / "unpacked").mkdir(parents=True)
        downloads.mkdir(exist_ok=True)
        for archive, source_url, digest in zip(release.archives, urls, expected):
            # The published checksum is the official file's: it holds for a copy of that file (a mirror
            # serves it by name, as does a --url ending in its name), not for a repackaging elsewhere.
            same_file = source_url.rstrip("/").rsplit("/", 1)[-1].split("?")[0] == archive.file_name
            path = _download(source_url, downloads, archive.file_name, progress)
            try:
                if same_file:
                    _check(path, source_url, archive.checksum, f"as published ({archive.source})")
                _check(path, source_url, digest and f"sha256:{digest}", "as --sha256 says")
                try:
                    unpack(path, staging / "unpacked" / archive.into, progress)
                except DatasetError as error:
                    raise type(error)(f"{source_url}: {error}") from None  # (a full disk stays one)
            except DatasetError as error:
                if not isinstance(error, (_NoSpace, _NoTool)):  # the archive is wrong: the next fetch starts afresh
                    _forget(path)
                raise
            # (kept until the whole release is verified: a fetch stopped in a later archive does not fetch it again)
        try:
            root = find_root(staging / "unpacked", release)
            release.checksums(root)
            counted = release.verify(root)
        except DatasetError as error:
            shutil.rmtree(downloads, ignore_errors=True)  # the archives' contents are wrong: none is kept
            raise DatasetError(f"{' + '.join(urls)}: unpacked, but {error}") from None
        root.rename(final)
    except BaseException as error:
        kept = ""
        if locked:  # (not another fetch's staging folder)
            shutil.rmtree(staging, ignore_errors=True)
            kept = _kept(downloads)
            if not kept:
                shutil.rmtree(downloads, ignore_errors=True)
            _unlock(lock)
        for folder in created:
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        if kept and isinstance(error, DatasetError):
            raise DatasetError(f"{error}; {kept}") from None
        if kept and isinstance(error, KeyboardInterrupt):
            raise KeyboardInterrupt(kept) from None
        raise
    shutil.rmtree(staging, ignore_errors=True)
    shutil.rmtree(downloads, ignore_errors=True)
    _unlock(lock)
    return Fetched(release, final, counted)


def _forget(archive: Path) -> None:
    """An archive and its download state gone."""
    archive.unlink(missing_ok=True)
    _state_path(archive).unlink(missing_ok=True)


def _lock(path: Path, release: Release, to: Path):
    """An exclusive lock on ``path`` (held by the open file returned): two fetches of one release into one folder
    would share, and remove, one staging folder."""
    import fcntl

    while True:
        existed = path.exists()
        handle = open(path, "a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise DatasetError(f"another clipalign fetch {release.name} into {to} is running (it holds "
                               f"{path.name}): wait for it to finish, or fetch into another --to") from None
        except OSError:  # a file system without flock (some NFS or SMB mounts): fetch without the lock
            handle.close()
            if not existed:
                path.unlink(missing_ok=True)
            return None
        try:
            if os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino:
                return handle
        except FileNotFoundError:
            pass
        handle.close()  # locked a file the fetch before removed as it finished: lock the name's new one


def _unlock(handle) -> None:
    """Remove the lock file and release it (removed first: a fetch that opens the name after finds a new file)."""
    if handle is None:
        return None
    try:
        os.unlink(handle.name)
    except FileNotFoundError:
        pass
    handle.close()
    return None
