"""``clipalign fetch`` against a server on 127.0.0.1 only. Each release's archive is written in that release's
own format and internal layout (TID2013 a RAR without a top folder, KADID-10k and NIGHTS zips with their
top folder, CIFAR-100, cue-conflict and BAPPS gzipped tars, MIT1003 its pair of zips, CAT2000 a zip of
trainSet/), fetched by ``--url`` or ``--mirror``, and then read by the dataset's own loader with the fixture's
item count. Offline, a 404, a transfer cut short, a truncated or wrong archive, a file the index names
missing, a published checksum or ``--sha256`` that does not match: each is one line, exit 2, and no folder
a loader would accept. RAR itself is checked on the samples rarfile's source distribution ships."""
from __future__ import annotations

import dataclasses
import errno
import hashlib
import io
import json
import zlib
from pathlib import Path

import pytest

from clipalign_utils import cli
from clipalign_utils.data import fetch
from clipalign_utils.data.bapps import load_bapps
from clipalign_utils.data.cat2000 import load_cat2000
from clipalign_utils.data.cifar100 import load_cifar100
from clipalign_utils.data.geirhos import load_geirhos
from clipalign_utils.data.kadid10k import load_kadid10k
from clipalign_utils.data.mit1003 import load_mit1003
from clipalign_utils.data.nights import load_nights
from clipalign_utils.data.tid2013 import load_tid2013
from clipalign_utils.errors import DatasetError, ParameterError
from clipalign_utils.orchestration.publish import PROGRESS_SEGMENT
from fixtures_real import (make_bapps, make_cat2000, make_cifar100, make_geirhos, make_kadid10k, make_mit1003,
                           make_nights, make_tid2013, stored_rar, tar_folder, zip_folder)
from helpers import FileServer, start_server

RAR_SAMPLES = Path(__file__).parent / "data" / "rarfile"


def _pack(name: str, src: Path, served: Path) -> None:
    """``name``'s release archive(s) into ``served``, in its format and internal layout."""
    if name == "tid2013":
        stored_rar(make_tid2013(src), src, served / "tid2013.rar")  # the .rar has no top folder
    elif name == "kadid10k":
        zip_folder(make_kadid10k(src / "kadid10k"), src, served / "kadid10k.zip")
    elif name == "cifar100":
        tar_folder(make_cifar100(src) / "cifar-100-python", src, served / "cifar-100-python.tar.gz")
    elif name == "geirhos":
        tar_folder(make_geirhos(src), src, served / "cue-conflict.tar.gz")
    elif name == "bapps":  # LPIPS's script unpacks it into dataset/2afc: the tar's top folder is val/
        tar_folder(make_bapps(src) / "2afc" / "val", src / "2afc", served / "twoafc_val.tar.gz")
    elif name == "nights":
        zip_folder(make_nights(src), src, served / "nights.zip")
    elif name == "mit1003":
        make_mit1003(src)
        for folder in ("ALLSTIMULI", "ALLFIXATIONMAPS"):
            zip_folder(src / folder, src, served / f"{folder}.zip")
    elif name == "cat2000":
        zip_folder(make_cat2000(src) / "trainSet", src, served / "trainSet.zip")


# What each loader reads from the fetched folder, and how many items the fixture holds.
READ = {
    "tid2013": (lambda root: len(load_tid2013(root)), 27),
    "kadid10k": (lambda root: len(load_kadid10k(root)), 18),
    "cifar100": (lambda root: len(load_cifar100(root)[0]), 10),
    "geirhos": (lambda root: len(load_geirhos(root)), 9),
    "bapps": (lambda root: len(load_bapps(root, "val")), 6),
    "nights": (lambda root: len(load_nights(root, "test")), 6),
    "mit1003": (lambda root: len(load_mit1003(root, image_size=32)), 4),
    "cat2000": (lambda root: len(load_cat2000(root, image_size=32)), 4),
}


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture
def server(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    handler = type("Files", (FileServer,), {"root": served, "gets": {}, "truncate": set(), "sent": {}})
    httpd, address = start_server(handler)
    yield served, address, handler
    httpd.shutdown()
    httpd.server_close()


def _serve(name: str, tmp_path: Path, served: Path, monkeypatch, checksums: str = "fixture") -> None:
    """Pack ``name`` into ``served``. Where the release has a published checksum, ``checksums`` says which
    the fetch holds it to: the fixture's own ("fixture", so the published-checksum path runs on every
    fetch), the release's ("published"), or none ("none")."""
    _pack(name, tmp_path / "src", served)
    release = fetch.RELEASES[name]
    if checksums != "published":
        def replaced(archive):
            if archive.checksum is None or checksums == "none":
                return dataclasses.replace(archive, checksum=None)
            return dataclasses.replace(archive, checksum=f"md5:{_md5(served / archive.file_name)}")

        archives = tuple(replaced(a) for a in release.archives)
        monkeypatch.setitem(fetch.RELEASES, name, dataclasses.replace(release, archives=archives))
        if name == "cifar100" and checksums == "fixture":
            pickles = tmp_path / "src" / "cifar-100-python"
            monkeypatch.setattr(fetch, "CIFAR100_FILE_MD5", {f: _md5(pickles / f) for f in ("test", "meta")})


def _fetch(capsys, *args) -> tuple[int, str, str]:
    """The command's exit status, stdout, and stderr without its progress bars (drawn there as in a log)."""
    code = cli.main(["fetch", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, _without_bars(err)


def _without_bars(err: str) -> str:
    return "".join(line for line in err.splitlines(True) if not PROGRESS_SEGMENT.search(line))


def _nothing_accepted(to: Path, name: str, kept: bool = False) -> None:
    """``to`` (if it is there at all) holds nothing: no dataset folder, no staging folder; with ``kept``, only
    the downloads folder a stopped fetch leaves for the next one to resume (and no loader reads it)."""
    left = sorted(p.name for p in to.iterdir()) if to.exists() else []
    assert left == ([f".fetch-{name}.partial"] if kept else []), left
    with pytest.raises(DatasetError):
        READ[name][0](to / name)


@pytest.mark.parametrize("name", list(fetch.RELEASES))
def test_each_release_is_fetched_unpacked_verified_and_read_by_its_loader(name, server, tmp_path, monkeypatch,
                                                                         capsys):
    served, address, handler = server
    _serve(name, tmp_path, served, monkeypatch)
    release = fetch.RELEASES[name]
    to = tmp_path / "data"
    # A multi-archive release only by --mirror; tid2013 by --mirror too, the rest by --url.
    source = (["--mirror", address + "/"] if len(release.archives) > 1 or name == "tid2013"
              else ["--url", f"{address}/{release.archives[0].file_name}"])
    code, out, err = _fetch(capsys, name, "--to", to, *source)
    assert code == 0, err
    read, expected = READ[name]
    assert read(to / name) == expected
    task = release.task
    assert out.splitlines()[-1] == f"read it with: -p {task}_dataset={name} -p {task}_root={to / name}"
    assert sorted(p.name for p in to.iterdir()) == [name]  # no staging folder, no archive left
    assert handler.gets == {a.file_name: 1 for a in release.archives}
    # Fetched again: verified where it is, not downloaded twice.
    code, out, _ = _fetch(capsys, name, "--to", to, *source)
    assert code == 0 and "already there, verified" in out
    assert handler.gets == {a.file_name: 1 for a in release.archives}


def test_a_404_offline_and_a_transfer_cut_short_are_one_line_and_leave_nothing(server, tmp_path, monkeypatch,
                                                                                capsys):
    served, address, handler = server
    _serve("nights", tmp_path, served, monkeypatch)
    to = tmp_path / "data"
    missing = f"{address}/moved/nights.zip"
    code, _, err = _fetch(capsys, "nights", "--to", to, "--url", missing)
    assert code == 2 and err.count("\n") == 1 and missing in err and "404" in err
    _nothing_accepted(to, "nights")
    offline = "http://127.0.0.1:9/nights.zip"  # the discard port: nothing listens
    code, _, err = _fetch(capsys, "nights", "--to", to, "--url", offline)
    assert code == 2 and err.count("\n") == 1 and offline in err and "download failed" in err
    _nothing_accepted(to, "nights")
    handler.truncate.add("nights.zip")  # Content-Length promises more than is sent
    monkeypatch.setattr(fetch, "DOWNLOAD_CHUNK", 1)  # (the chunk being read as it stops is lost)
    code, _, err = _fetch(capsys, "nights", "--to", to, "--mirror", address)
    assert code == 2 and err.count("\n") == 1 and f"{address}/nights.zip" in err
    _nothing_accepted(to, "nights", kept=True)  # what came is kept: the same command resumes it
    size = (served / "nights.zip").stat().st_size
    assert err.rstrip().endswith(f"; {size // 2} bytes of nights.zip kept in {to / '.fetch-nights.partial'}: "
                                 f"the same command resumes there")


@pytest.mark.parametrize("name", ["tid2013", "kadid10k", "geirhos"])  # a RAR, a zip, a tar.gz
def test_a_truncated_archive_served_whole_is_refused(name, server, tmp_path, monkeypatch, capsys):
    served, address, _ = server
    _serve(name, tmp_path, served, monkeypatch, checksums="none")
    archive = served / fetch.RELEASES[name].archives[0].file_name
    archive.write_bytes(archive.read_bytes()[:archive.stat().st_size * 2 // 3])
    url = f"{address}/{archive.name}"
    to = tmp_path / "data"
    to.mkdir()  # a folder the user made stays, empty
    code, _, err = _fetch(capsys, name, "--to", to, "--url", url)
    assert code == 2 and err.count("\n") == 1 and url in err, err
    assert to.is_dir()
    _nothing_accepted(to, name)


def test_checksums_the_published_one_and_sha256_each_stop_the_fetch(server, tmp_path, monkeypatch, capsys):
    served, address, _ = server
    _serve("cifar100", tmp_path, served, monkeypatch, checksums="published")
    to = tmp_path / "data"
    url = f"{address}/cifar-100-python.tar.gz"
    # The fixture is not the release torchvision lists: its MD5 differs from the published one.
    code, _, err = _fetch(capsys, "cifar100", "--to", to, "--url", url)
    assert code == 2 and err.count("\n") == 1 and url in err and "eb9058c3a382ffc7106e4002c42a8d85" in err
    _nothing_accepted(to, "cifar100")
    # A repackaging under another name is not held to the official file's checksum, but to --sha256.
    (served / "cifar100-copy.tgz").write_bytes((served / "cifar-100-python.tar.gz").read_bytes())
    monkeypatch.setattr(fetch, "CIFAR100_FILE_MD5", {f: _md5(tmp_path / "src" / "cifar-100-python" / f)
                                                     for f in ("test", "meta")})
    copy = f"{address}/cifar100-copy.tgz"
    code, _, err = _fetch(capsys, "cifar100", "--to", to, "--url", copy, "--sha256", "0" * 64)
    assert code == 2 and err.count("\n") == 1 and copy in err and "--sha256" in err
    _nothing_accepted(to, "cifar100")
    sha256 = hashlib.sha256((served / "cifar100-copy.tgz").read_bytes()).hexdigest()
    code, _, err = _fetch(capsys, "cifar100", "--to", to, "--url", copy, "--sha256", sha256.upper())
    assert code == 0, err
    assert READ["cifar100"][0](to / "cifar100") == 10


def test_a_file_the_index_names_but_the_archive_lacks_and_an_error_page_are_refused(server, tmp_path,
                                                                                     monkeypatch, capsys):
    served, address, _ = server
    src = tmp_path / "src"
    make_kadid10k(src / "kadid10k")
    (src / "kadid10k" / "images" / "I02_25_05.png").unlink()  # still listed in dmos.csv
    zip_folder(src / "kadid10k", src, served / "kadid10k.zip")
    to = tmp_path / "data"
    code, _, err = _fetch(capsys, "kadid10k", "--to", to, "--mirror", address)
    assert code == 2 and err.count("\n") == 1 and "I02_25_05.png" in err and "dmos.csv" in err
    _nothing_accepted(to, "kadid10k")
    (served / "kadid10k.zip").write_text("<html><body>Service Unavailable</body></html>")
    code, _, err = _fetch(capsys, "kadid10k", "--to", to, "--mirror", address)
    assert code == 2 and err.count("\n") == 1 and "neither a zip, a tar nor a RAR" in err
    _nothing_accepted(to, "kadid10k")


@pytest.mark.parametrize("args, message", [
    (["nope", "--to", "{to}"], "choose one of tid2013, kadid10k"),
    (["mit1003", "--to", "{to}", "--url", "http://127.0.0.1:9/a.zip"], "use --mirror BASE"),
    (["nights", "--to", "{to}", "--url", "http://127.0.0.1:9/a.zip", "--mirror", "http://127.0.0.1:9"],
     "give one"),
    (["nights", "--to", "{to}", "--sha256", "abc"], "--sha256 'abc'"),
    (["nights", "--to", "{to}", "--sha256", "g" * 64], "--sha256 'gggg"),  # 64 characters, not hex
    (["mit1003", "--to", "{to}", "--sha256", "0" * 64], "give 2 SHA-256"),
    # given empty (an unset shell variable), not taken for "not given" (an audit: the official host was fetched)
    (["nights", "--to", "{to}", "--url", ""], "--url '': give the http(s) address of the archive"),
    (["nights", "--to", "{to}", "--mirror", ""], "--mirror '': give the http(s) address"),
    (["nights", "--to", "{to}", "--url", "", "--mirror", "http://127.0.0.1:9"], "give one"),
])
def test_bad_arguments_are_one_line_before_any_folder_is_made(args, message, tmp_path, capsys):
    to = tmp_path / "data"
    code, _, err = _fetch(capsys, *[a.format(to=to) for a in args])
    assert code == 2 and err.count("\n") == 1 and message in err
    assert not to.exists()


def test_an_incomplete_folder_already_there_is_named_not_overwritten(server, tmp_path, monkeypatch, capsys):
    served, address, handler = server
    _serve("nights", tmp_path, served, monkeypatch)
    (tmp_path / "data" / "nights").mkdir(parents=True)
    code, _, err = _fetch(capsys, "nights", "--to", tmp_path / "data", "--mirror", address)
    assert code == 2 and "exists but is not a complete NIGHTS" in err and handler.gets == {}


@pytest.mark.parametrize("sample", ["rar3-solid.rar", "rar5-solid.rar"])
def test_rar_samples_unpack_with_the_tools_that_read_them(sample, tmp_path):
    """rarfile's samples (compressed, solid; RAR 3 and RAR 5): two 2,048-byte files of CRC-32 0xc5b7e6a2, per
    their .exp listings. unar reads the RAR 3 one, libarchive the RAR 5 one; the default order reads both."""
    readers = {"rar3-solid.rar": ("unar",), "rar5-solid.rar": ("libarchive",)}[sample]
    for tools in (fetch.RAR_TOOLS, readers):
        if tools == ("unar",) and not fetch.shutil.which("unar"):
            continue
        dest = tmp_path / "-".join(tools)
        fetch.unpack(RAR_SAMPLES / sample, dest, rar_tools=tools)
        files = sorted(dest.iterdir())
        assert [(p.name, p.stat().st_size, zlib.crc32(p.read_bytes())) for p in files] == [
            ("stest1.txt", 2048, 0xC5B7E6A2), ("stest2.txt", 2048, 0xC5B7E6A2)]
    if sample == "rar3-solid.rar":
        with pytest.raises(DatasetError, match="solid RAR archive, which libarchive cannot unpack: install unar"):
            fetch.unpack(RAR_SAMPLES / sample, tmp_path / "alone", rar_tools=("libarchive",))


def test_every_release_is_a_dataset_its_task_reads_and_names_where_its_url_is_published():
    from clipalign_utils.data.registry import dataset_names

    assert list(fetch.RELEASES) == ["tid2013", "kadid10k", "cifar100", "geirhos", "bapps", "nights", "mit1003",
                                    "cat2000"]
    for release in fetch.RELEASES.values():
        assert release.name in dataset_names(release.task)
        for archive in release.archives:
            assert archive.url.startswith(("http://", "https://")) and archive.source
            assert archive.checksum is None or archive.checksum.split(":")[0] in ("md5", "sha256")


def test_the_readme_and_the_scale_page_give_every_fetch_command():
    root = Path(__file__).parent.parent
    readme, scale = (root / "README.md").read_text(), (root / "book" / "scale.md").read_text()
    for name, release in fetch.RELEASES.items():
        assert f"| `{name}`" in readme, name
        assert f"`clipalign fetch {name} --to /data` | `{release.task}_dataset={name}`" in scale, name


def test_repacked_archives_are_found_where_their_loader_reads_and_an_unread_one_is_never_verified(
        server, tmp_path, monkeypatch, capsys):
    """Archives as people repack them, from an audit: BAPPS with its own dataset/2afc/ inside (unpacked into
    2afc/, it passed as verified with no triplet counted and the similarity step then refused the folder); a
    BAPPS archive with no split at all is refused; the texture-vs-shape repository's zip, whose stimuli/
    holds edges/, silhouettes/, … beside the cue-conflict style-transfer-preprocessed-512/ (edges/ was taken
    for the stimuli, and refused)."""
    served, address, _ = server
    for name in ("bapps", "geirhos"):
        monkeypatch.setitem(fetch.RELEASES, name, dataclasses.replace(
            fetch.RELEASES[name], archives=tuple(dataclasses.replace(a, checksum=None)
                                                 for a in fetch.RELEASES[name].archives)))
    make_bapps(tmp_path / "repack" / "dataset")
    tar_folder(tmp_path / "repack" / "dataset", tmp_path / "repack", served / "bapps_repacked.tar.gz")
    code, out, err = _fetch(capsys, "bapps", "--to", tmp_path / "a", "--url", f"{address}/bapps_repacked.tar.gz")
    assert code == 0, err
    assert "6 val triplets" in out and len(load_bapps(tmp_path / "a" / "bapps", "val")) == 6
    (tmp_path / "empty" / "2afc" / "other").mkdir(parents=True)
    (tmp_path / "empty" / "2afc" / "other" / "x.txt").write_text("x")
    tar_folder(tmp_path / "empty" / "2afc", tmp_path / "empty", served / "no_split.tar.gz")
    code, _, err = _fetch(capsys, "bapps", "--to", tmp_path / "b", "--url", f"{address}/no_split.tar.gz")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "holds no BAPPS" in err
    _nothing_accepted(tmp_path / "b", "bapps")
    stimuli = tmp_path / "repo" / "texture-vs-shape-master" / "stimuli"
    for kind in ("edges", "filled-silhouettes", "silhouettes"):
        (stimuli / kind / "airplane").mkdir(parents=True)
        (stimuli / kind / "airplane" / "airplane1.png").write_bytes(b"not a cue-conflict image")
    make_geirhos(stimuli).rename(stimuli / "style-transfer-preprocessed-512")
    zip_folder(tmp_path / "repo", tmp_path / "repo", served / "texture-vs-shape-master.zip")
    code, out, err = _fetch(capsys, "geirhos", "--to", tmp_path / "c", "--url",
                            f"{address}/texture-vs-shape-master.zip")
    assert code == 0, err
    assert len(load_geirhos(tmp_path / "c" / "geirhos")) == READ["geirhos"][1]


def test_an_interrupted_fetch_says_so_not_what_a_run_does(tmp_path, monkeypatch, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(fetch, "fetch", interrupted)
    assert cli.main(["fetch", "kadid10k", "--to", str(tmp_path / "d")]) == 130
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line == ("clipalign: interrupted: nothing of the download was kept in --to; the same command fetches "
                    "it again")


def test_a_stored_rar_whose_data_fail_their_checksum_is_refused_without_another_reader(tmp_path):
    """unar finds a stored member's CRC wrong; libarchive does not check it and would take the damage for the
    file (an audit found a corrupt TID2013 'verified'): no other reader is tried after a checksum failure."""
    if not fetch.shutil.which("unar"):
        pytest.skip("unar is not installed")
    src = tmp_path / "src"
    (src / "set").mkdir(parents=True)
    (src / "set" / "a.bmp").write_bytes(bytes(range(256)) * 8)
    archive = stored_rar(src / "set", src, tmp_path / "set.rar")
    fetch.unpack(archive, tmp_path / "whole")  # intact, it unpacks
    assert (tmp_path / "whole" / "set" / "a.bmp").read_bytes() == bytes(range(256)) * 8
    damaged = bytearray(archive.read_bytes())
    damaged[-200] ^= 0xFF  # a byte of a.bmp's data (the end block is 7 bytes)
    archive.write_bytes(bytes(damaged))
    with pytest.raises(DatasetError, match=r"set\.rar: a damaged RAR archive: its data fail the archive's own "
                                           r"checksum \(unar: .*a\.bmp"):
        fetch.unpack(archive, tmp_path / "damaged")
    assert not any((tmp_path / "damaged").rglob("*.bmp")) and not list(tmp_path.glob(".set.rar.*"))


def test_what_unar_leaves_short_of_its_listing_is_refused(tmp_path, monkeypatch):
    """unar says OK and exits 0 where a full disk left its files empty: the files written are held to lsar's
    listing, and the free space to the listing's total before unpacking."""
    if not fetch.shutil.which("unar"):
        pytest.skip("unar is not installed")
    src = tmp_path / "src"
    (src / "set").mkdir(parents=True)
    (src / "set" / "a.bmp").write_bytes(b"x" * 1000)
    archive = stored_rar(src / "set", src, tmp_path / "set.rar")
    listed = fetch._rar_listing(archive)
    assert listed is None or list(listed.values()) == [1000]
    monkeypatch.setattr(fetch, "_rar_listing", lambda path: {"set/a.bmp": 1000, "set/b.bmp": 500})
    with pytest.raises(DatasetError, match=r"unar wrote 1 files of 1000 bytes where the archive lists 2 of 1500"):
        fetch.unpack(archive, tmp_path / "short", rar_tools=("unar", "libarchive"))
    assert not any((tmp_path / "short").rglob("*.bmp"))  # and libarchive was not tried after it
    usage = fetch.shutil.disk_usage(tmp_path)
    monkeypatch.setattr(fetch.shutil, "disk_usage", lambda path: usage._replace(free=1200))
    with pytest.raises(DatasetError, match=rf"^{tmp_path / 'full'}: no space left while unpacking set\.rar \(it "
                                           r"needs 1500 bytes, 1200 bytes free on its disk\): free space there, or "
                                           r"fetch into another --to$"):
        fetch.unpack(archive, tmp_path / "full", rar_tools=("unar",))


def test_a_full_disk_is_said_as_such_not_as_a_damaged_archive(server, tmp_path, monkeypatch, capsys):
    served, address, _ = server
    _serve("nights", tmp_path, served, monkeypatch)
    to = tmp_path / "data"
    usage = fetch.shutil.disk_usage(tmp_path)
    monkeypatch.setattr(fetch.shutil, "disk_usage", lambda path: usage._replace(free=10))
    code, _, err = _fetch(capsys, "nights", "--to", to, "--mirror", address)
    # named by --to, not the hidden staging folder the archive unpacks into
    assert code == 2 and err.count("\n") == 1 and f"{to}: no space left while unpacking nights.zip (it needs " in err
    assert "10 bytes free on its disk): free space there, or fetch into another --to" in err and "damaged" not in err
    _nothing_accepted(to, "nights", kept=True)  # the archive is not at fault: kept, not downloaded again
    assert f"; nights.zip whole kept in {to / '.fetch-nights.partial'}: the same command resumes there" in err
    monkeypatch.undo()
    _serve("nights", tmp_path / "again", served, monkeypatch)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(fetch, "write_json", full)
    fetch.shutil.rmtree(to)
    code, _, err = _fetch(capsys, "nights", "--to", to, "--mirror", address)
    assert code == 2 and err.count("\n") == 1, err
    assert f"{to}: no space left while downloading nights.zip (" in err and " free on its disk): free space" in err
    _nothing_accepted(to, "nights")


class _Failing(FileServer):
    def _serve(self, body: bool):
        if self.path.startswith("/500/"):
            self.send_response(500)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        super()._serve(body)


def test_a_failed_fetch_leaves_no_folder_it_made_and_a_server_error_is_not_a_missing_file(tmp_path, capsys):
    served = tmp_path / "served"
    served.mkdir()
    httpd, address = start_server(type("Files", (_Failing,), {"root": served, "gets": {}, "truncate": set()}))
    try:
        deep = tmp_path / "a" / "b" / "c"
        code, _, err = _fetch(capsys, "nights", "--to", deep, "--url", f"{address}/500/nights.zip")
        assert code == 2 and err.count("\n") == 1 and "HTTP 500: the server failed (try again later" in err, err
        assert not (tmp_path / "a").exists()  # every folder it made, gone
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_two_fetches_into_one_folder_do_not_share_a_staging_folder(tmp_path, capsys):
    to = tmp_path / "data"
    to.mkdir()
    held = fetch._lock(to / ".fetch-nights.lock", fetch.RELEASES["nights"], to)
    try:
        code, _, err = _fetch(capsys, "nights", "--to", to, "--url", "http://127.0.0.1:9/nights.zip")
        assert code == 2 and err.count("\n") == 1 and f"another clipalign fetch nights into {to} is running" in err
    finally:
        fetch._unlock(held)
    assert not any(to.iterdir())
    # the lock released and its file gone, a fetch goes ahead (here, to the discard port's refusal)
    code, _, err = _fetch(capsys, "nights", "--to", to, "--url", "http://127.0.0.1:9/nights.zip")
    assert code == 2 and "download failed" in err and not any(to.iterdir())


def test_a_file_system_without_flock_fetches_without_the_lock(tmp_path, monkeypatch, capsys):
    """Only a lock another fetch holds means "running": where flock is not supported (ENOLCK on some NFS), the fetch
    goes on, and a failure leaves neither the lock file nor the folder it made."""
    import fcntl

    def unsupported(*args):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", unsupported)
    to = tmp_path / "data"
    code, _, err = _fetch(capsys, "nights", "--to", to, "--url", "http://127.0.0.1:9/nights.zip")
    assert code == 2 and "download failed" in err and "another clipalign fetch" not in err
    assert not to.exists()


def test_unar_status_not_a_file_name_says_a_member_is_damaged(tmp_path):
    if not fetch.shutil.which("unar"):
        pytest.skip("unar is not installed")
    src = tmp_path / "src"
    (src / "set").mkdir(parents=True)
    (src / "set" / "checksum_failed_cases.txt").write_text("a file named like unar's failure")
    fetch.unpack(stored_rar(src / "set", src, tmp_path / "set.rar"), tmp_path / "out", rar_tools=("unar",))
    assert (tmp_path / "out" / "set" / "checksum_failed_cases.txt").read_text() == "a file named like unar's failure"


def test_a_file_where_the_dataset_folder_goes_is_named_as_such(tmp_path, capsys):
    to = tmp_path / "data"
    to.mkdir()
    (to / "nights").write_text("not a folder")
    code, _, err = _fetch(capsys, "nights", "--to", to, "--url", "http://127.0.0.1:9/nights.zip")
    assert code == 2 and err.count("\n") == 1 and f"{to / 'nights'} is a file, where the fetch would put" in err


def test_the_parameters_said_after_a_fetch_are_quoted_and_name_a_train_only_bapps_split(tmp_path):
    root = tmp_path / "my data" / "bapps"
    (root / "2afc" / "train").mkdir(parents=True)
    said = fetch.Fetched(fetch.RELEASES["bapps"], root, "6 train triplets").parameters()
    assert said == (f"-p similarity_dataset=bapps -p 'similarity_root={root}' -p similarity_split=train")
    (root / "2afc" / "val").mkdir()
    assert fetch.Fetched(fetch.RELEASES["bapps"], root, "").parameters().endswith(f"'similarity_root={root}'")


def test_a_download_cut_short_resumes_where_it_stopped(server, tmp_path, monkeypatch, capsys):
    """A fetch cut short (the network, Ctrl-C) kept the bytes it had; the same command asks for the rest only
    (an HTTP Range request), unless the file on the server changed since (If-Range), and the dataset is
    read whole. A wrong archive (its checksum) is not kept: the next fetch starts afresh."""
    served, address, handler = server
    _serve("kadid10k", tmp_path, served, monkeypatch)
    size = (served / "kadid10k.zip").stat().st_size
    monkeypatch.setattr(fetch, "DOWNLOAD_CHUNK", 1000)  # the chunk being read when the transfer stops is lost
    to = tmp_path / "data"
    handler.truncate.add("kadid10k.zip")
    assert _fetch(capsys, "kadid10k", "--to", to, "--mirror", address)[0] == 2
    handler.truncate.clear()
    handler.sent.clear()
    code, _, err = _fetch(capsys, "kadid10k", "--to", to, "--mirror", address)
    assert code == 0, err
    assert handler.sent == {"kadid10k.zip": size - size // 2 // 1000 * 1000}  # the rest only
    assert len(load_kadid10k(to / "kadid10k")) == READ["kadid10k"][1]
    assert sorted(p.name for p in to.iterdir()) == ["kadid10k"]  # the downloads folder gone with the fetch

    # The file on the server changed since the first half came: its ETag differs, so it comes whole.
    fetch.shutil.rmtree(to)
    handler.truncate.add("kadid10k.zip")
    assert _fetch(capsys, "kadid10k", "--to", to, "--mirror", address)[0] == 2
    handler.truncate.clear()
    with open(served / "kadid10k.zip", "ab") as archive:
        archive.write(b"\0")  # (one byte more at its end: another file, which a zip reader still reads)
    monkeypatch.setattr(fetch, "RELEASES", {**fetch.RELEASES, "kadid10k": dataclasses.replace(
        fetch.RELEASES["kadid10k"], archives=(dataclasses.replace(
            fetch.RELEASES["kadid10k"].archives[0], checksum=f"md5:{_md5(served / 'kadid10k.zip')}"),))})
    handler.sent.clear()
    code, _, err = _fetch(capsys, "kadid10k", "--to", to, "--mirror", address)
    assert code == 0, err
    assert handler.sent == {"kadid10k.zip": size + 1}

    # A server that ignores ranges sends the whole file again: written from its start, not after the part kept.
    fetch.shutil.rmtree(to)
    handler.truncate.add("kadid10k.zip")
    assert _fetch(capsys, "kadid10k", "--to", to, "--mirror", address)[0] == 2
    handler.truncate.clear()
    handler.ranges = False
    handler.sent.clear()
    code, _, err = _fetch(capsys, "kadid10k", "--to", to, "--mirror", address)
    assert code == 0, err
    assert handler.sent == {"kadid10k.zip": size + 1}
    handler.ranges = True

    # Bytes that fail the archive's checksum are not kept for the next fetch.
    fetch.shutil.rmtree(to)
    monkeypatch.setattr(fetch, "RELEASES", {**fetch.RELEASES, "kadid10k": dataclasses.replace(
        fetch.RELEASES["kadid10k"], archives=(dataclasses.replace(fetch.RELEASES["kadid10k"].archives[0],
                                                                  checksum="md5:" + "0" * 32),))})
    code, _, err = _fetch(capsys, "kadid10k", "--to", to, "--mirror", address)
    assert code == 2 and "the download is corrupt" in err and "kept in" not in err
    _nothing_accepted(to, "kadid10k")


def test_an_interrupted_download_says_what_it_kept(server, tmp_path, monkeypatch, capsys):
    served, address, handler = server
    _serve("nights", tmp_path, served, monkeypatch)
    to = tmp_path / "data"
    original = fetch.write_json

    def interrupted(path, state):  # Ctrl-C once the archive's bytes are all on disk, before it is unpacked
        original(path, state)
        if state.get("complete"):
            raise KeyboardInterrupt

    monkeypatch.setattr(fetch, "write_json", interrupted)
    handler.gets.clear()
    assert cli.main(["fetch", "nights", "--to", str(to), "--mirror", address]) == 130
    (line,) = _without_bars(capsys.readouterr().err).strip().splitlines()
    assert line == (f"clipalign: interrupted: nights.zip whole kept in {to / '.fetch-nights.partial'}: the same "
                    f"command resumes there")
    monkeypatch.undo()
    _serve("nights", tmp_path / "again", served, monkeypatch)
    code, _, err = _fetch(capsys, "nights", "--to", to, "--mirror", address)
    assert code == 0, err
    assert handler.gets == {"nights.zip": 1}  # the whole archive kept: not fetched again


def test_what_cannot_be_resumed_is_not_kept_and_an_encoded_transfer_is_read_whole(server, tmp_path, monkeypatch,
                                                                                capsys):
    """A server that gives no validator: the part received is not said to resume (the next fetch would take it
    whole), nor kept. A server that gzips the transfer although identity was asked: read decoded, not failed
    for its byte count. A release of two archives cut in its second: the first is not fetched again (a review)."""
    served, address, handler = server
    _serve("nights", tmp_path, served, monkeypatch)
    to = tmp_path / "data"
    handler.etag = False
    handler.truncate.add("nights.zip")
    monkeypatch.setattr(fetch, "DOWNLOAD_CHUNK", 1)
    code, _, err = _fetch(capsys, "nights", "--to", to, "--mirror", address)
    assert code == 2 and "kept in" not in err, err
    _nothing_accepted(to, "nights")
    handler.etag, handler.gzip = True, True
    handler.truncate.clear()
    code, _, err = _fetch(capsys, "nights", "--to", to, "--mirror", address)
    assert code == 0, err
    assert len(load_nights(to / "nights", "test")) == READ["nights"][1]
    handler.gzip = False

    _serve("mit1003", tmp_path / "mit", served, monkeypatch)
    handler.truncate.add("ALLFIXATIONMAPS.zip")
    handler.gets.clear()
    code, _, err = _fetch(capsys, "mit1003", "--to", to, "--mirror", address)
    assert code == 2 and "ALLSTIMULI.zip whole" in err and " bytes of ALLFIXATIONMAPS.zip" in err, err
    handler.truncate.clear()
    assert _fetch(capsys, "mit1003", "--to", to, "--mirror", address)[0] == 0
    assert handler.gets == {"ALLSTIMULI.zip": 1, "ALLFIXATIONMAPS.zip": 2}
    assert len(load_mit1003(to / "mit1003", image_size=32)) == READ["mit1003"][1]


def test_a_part_of_another_version_is_not_spliced_and_a_missing_unpacker_keeps_the_archive(server, tmp_path,
                                                                                          monkeypatch, capsys):
    """A server that vouches by Last-Modified and ignores If-Range serves a range of the file it has now: a part
    kept of the old file, with the rest of the new, failed to unpack; the new date starts the file afresh. A
    machine without a RAR unpacker deleted the whole archive it had downloaded (a review)."""
    import sys

    served, address, handler = server
    _serve("kadid10k", tmp_path, served, monkeypatch)
    to = tmp_path / "data"
    handler.etag, handler.last_modified, handler.honours_if_range = False, "Sun, 06 Dec 2026 10:00:00 GMT", False
    handler.truncate.add("kadid10k.zip")
    monkeypatch.setattr(fetch, "DOWNLOAD_CHUNK", 1000)
    code, _, err = _fetch(capsys, "kadid10k", "--to", to, "--mirror", address)
    assert code == 2 and "bytes of kadid10k.zip kept in" in err, err
    handler.truncate.clear()
    archive = served / "kadid10k.zip"
    archive.write_bytes(b"\0" + archive.read_bytes())  # another version, dated later (a zip reads past a prefix)
    handler.last_modified = "Sun, 06 Dec 2026 11:00:00 GMT"
    monkeypatch.setattr(fetch, "RELEASES", {**fetch.RELEASES, "kadid10k": dataclasses.replace(
        fetch.RELEASES["kadid10k"], archives=(dataclasses.replace(
            fetch.RELEASES["kadid10k"].archives[0], checksum=f"md5:{_md5(archive)}"),))})
    code, _, err = _fetch(capsys, "kadid10k", "--to", to, "--mirror", address)
    assert code == 0, err

    _serve("tid2013", tmp_path / "tid", served, monkeypatch)
    handler.etag, handler.last_modified = True, None
    monkeypatch.setattr(fetch.shutil, "which", lambda name: None)  # no unar, no lsar
    monkeypatch.setitem(sys.modules, "libarchive", None)  # and no libarchive
    handler.gets.clear()
    code, _, err = _fetch(capsys, "tid2013", "--to", to, "--mirror", address)
    assert code == 2 and "install unar" in err and "tid2013.rar whole kept in" in err, err
    monkeypatch.undo()
    _serve("tid2013", tmp_path / "tid_again", served, monkeypatch)
    if fetch.shutil.which("unar"):
        assert _fetch(capsys, "tid2013", "--to", to, "--mirror", address)[0] == 0
        assert handler.gets == {"tid2013.rar": 1}  # not downloaded again


def test_a_part_left_by_a_killed_fetch_without_a_validator_is_fetched_afresh(server, tmp_path, monkeypatch, capsys):
    """A fetch killed outright (SIGKILL: nothing cleaned up) from a server that gave no validator leaves a part whose
    state names none: the next fetch starts it afresh (it crashed reading the missing validator: a re-read)."""
    served, address, handler = server
    _serve("nights", tmp_path, served, monkeypatch)
    to = tmp_path / "data"
    downloads = to / ".fetch-nights.partial"
    downloads.mkdir(parents=True)
    (downloads / "nights.zip").write_bytes(b"the first bytes of another attempt")
    (downloads / "nights.zip.json").write_text(json.dumps({"url": f"{address}/nights.zip", "validator": None,
                                                           "size": None}))
    code, _, err = _fetch(capsys, "nights", "--to", to, "--mirror", address)
    assert code == 0, err
    assert sorted(p.name for p in to.iterdir()) == ["nights"]


def test_a_gzipped_archive_labelled_as_gzip_encoded_is_kept_as_served(server, tmp_path, monkeypatch, capsys):
    """Apache's "AddEncoding x-gzip .gz" serves a .tar.gz as it is, with Content-Encoding: x-gzip. The archive
    was decoded as it came, so a .tar was kept under the .tar.gz name and failed the published MD5. Its bytes
    are the file's, as curl and wget keep them: checked, and resumed where a transfer is cut."""
    served, address, handler = server
    _serve("cifar100", tmp_path, served, monkeypatch)  # held to the fixture archive's MD5
    handler.gz_labelled = True
    to = tmp_path / "data"
    handler.truncate.add("cifar-100-python.tar.gz")
    code, _, err = _fetch(capsys, "cifar100", "--to", to, "--mirror", address)
    assert code == 2 and "kept in" in err, err
    handler.truncate.clear()
    handler.sent.clear()
    code, _, err = _fetch(capsys, "cifar100", "--to", to, "--mirror", address)
    assert code == 0, err
    whole = (served / "cifar-100-python.tar.gz").stat().st_size
    assert handler.sent == {"cifar-100-python.tar.gz": whole - whole // 2}  # the rest only
    assert len(load_cifar100(to / "cifar100")[0]) == READ["cifar100"][1]


def test_the_default_source_is_the_release_s_own_url_and_a_mirror_s_trailing_slash_is_one(server, tmp_path,
                                                                                            monkeypatch, capsys):
    """Without --url or --mirror each archive comes from the release's own URL (here on 127.0.0.1); --mirror
    BASE/ asks BASE/<file name>, not BASE//<file name> (a server may not take the two for one)."""
    served, address, handler = server
    _serve("mit1003", tmp_path, served, monkeypatch)
    release = fetch.RELEASES["mit1003"]
    monkeypatch.setitem(fetch.RELEASES, "mit1003", dataclasses.replace(release, archives=tuple(
        dataclasses.replace(a, url=f"{address}/{a.file_name}") for a in release.archives)))
    to = tmp_path / "data"
    code, out, err = _fetch(capsys, "mit1003", "--to", to)
    assert code == 0, err
    assert handler.gets == {"ALLSTIMULI.zip": 1, "ALLFIXATIONMAPS.zip": 1}
    assert len(load_mit1003(to / "mit1003", image_size=32)) == READ["mit1003"][1]
    code, _, err = _fetch(capsys, "nights", "--to", tmp_path / "other", "--mirror", f"{address}/moved/")
    assert code == 2 and err.count("\n") == 1 and f"{address}/moved/nights.zip: HTTP 404" in err, err


def test_cifar100_s_pickles_are_held_to_torchvision_s_md5s_when_fetched_and_when_found_there(server, tmp_path,
                                                                                              monkeypatch, capsys):
    """An archive under another name (no published checksum to hold it to) whose pickles are not torchvision's
    is refused; a fetched folder whose pickle was re-saved since is named, not taken as already there."""
    served, address, handler = server
    _serve("cifar100", tmp_path, served, monkeypatch, checksums="none")  # torchvision's pickle MD5s stay
    (served / "cifar-100-python.tar.gz").rename(served / "cifar100-copy.tgz")
    to = tmp_path / "data"
    copy = f"{address}/cifar100-copy.tgz"
    code, _, err = _fetch(capsys, "cifar100", "--to", to, "--url", copy)
    assert code == 2 and err.count("\n") == 1 and "torchvision's CIFAR100 list" in err, err
    _nothing_accepted(to, "cifar100")
    pickles = tmp_path / "src" / "cifar-100-python"
    monkeypatch.setattr(fetch, "CIFAR100_FILE_MD5", {f: _md5(pickles / f) for f in ("test", "meta")})
    assert _fetch(capsys, "cifar100", "--to", to, "--url", copy)[0] == 0
    import pickle

    test = to / "cifar100" / "cifar-100-python" / "test"
    test.write_bytes(pickle.dumps(pickle.loads(test.read_bytes(), encoding="latin1"), protocol=4))  # re-saved
    assert READ["cifar100"][0](to / "cifar100") == READ["cifar100"][1]  # the loader still reads it
    handler.gets.clear()
    code, _, err = _fetch(capsys, "cifar100", "--to", to, "--url", copy)
    assert code == 2 and err.count("\n") == 1 and "exists but is not a complete CIFAR-100" in err, err
    assert "torchvision's CIFAR100 list" in err and handler.gets == {}


def test_a_member_that_would_leave_the_folder_is_not_written_outside_it(server, tmp_path, monkeypatch, capsys):
    """A tar member ../…: the fetch is refused (the tar 'data' filter); a zip member ../… is written inside (zipfile
    strips it), and the dataset is read; a RAR member ..\\… read by libarchive is refused. Nothing lands outside."""
    import tarfile
    import zipfile

    import fixtures_real

    served, address, _ = server
    _serve("geirhos", tmp_path, served, monkeypatch, checksums="none")
    with tarfile.open(served / "cue-conflict.tar.gz", "r:gz") as tf:
        members = [(m, tf.extractfile(m).read() if m.isfile() else None) for m in tf.getmembers()]
    with tarfile.open(served / "cue-conflict.tar.gz", "w:gz") as tf:
        for member, data in members:
            tf.addfile(member, io.BytesIO(data) if data is not None else None)
        outside = tarfile.TarInfo("../../escaped.txt")
        outside.size = 7
        tf.addfile(outside, io.BytesIO(b"escaped"))
    to = tmp_path / "deep" / "data"
    code, _, err = _fetch(capsys, "geirhos", "--to", to, "--url", f"{address}/cue-conflict.tar.gz")
    assert code == 2 and err.count("\n") == 1 and "cue-conflict.tar.gz" in err and "escaped.txt" in err, err
    assert "with a member that would be written outside its folder, refused" in err
    assert not list(tmp_path.rglob("escaped.txt"))
    _nothing_accepted(to, "geirhos")

    _serve("nights", tmp_path / "n", served, monkeypatch, checksums="none")
    with zipfile.ZipFile(served / "nights.zip", "a") as zf:
        zf.writestr("../../escaped.txt", "escaped")
    code, _, err = _fetch(capsys, "nights", "--to", to, "--url", f"{address}/nights.zip")
    assert code == 0, err
    assert not list(tmp_path.rglob("escaped.txt")) and sorted(p.name for p in to.iterdir()) == ["nights"]

    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "a.txt").write_text("escaped")
    monkeypatch.setattr(fixtures_real, "_members", lambda folder, under: [("set/../../escaped.txt",
                                                                          tmp_path / "r" / "a.txt")])
    archive = stored_rar(tmp_path / "r", tmp_path, tmp_path / "r" / "set.rar")
    with pytest.raises(DatasetError, match=r"set\.rar: member .*escaped\.txt' would leave the folder"):
        fetch.unpack(archive, tmp_path / "r" / "x" / "y", rar_tools=("libarchive",))
    assert not list(tmp_path.rglob("escaped.txt"))


def test_what_a_killed_fetch_left_is_not_taken_as_done(server, tmp_path, monkeypatch, capsys):
    """A fetch killed outright (nothing cleaned up) leaves its staging folder, maybe holding a dataset folder
    half-unpacked: the next fetch starts it anew, and none of it reaches DIR/<dataset>. A download whose state
    says complete but whose file is shorter than the size recorded (cut since) is fetched again, not unpacked."""
    served, address, handler = server
    _serve("nights", tmp_path, served, monkeypatch)
    to = tmp_path / "data"
    stale = to / ".fetch-nights" / "unpacked" / "nights"
    stale.mkdir(parents=True)
    (stale / "stale.txt").write_text("from the fetch that was killed")
    (stale / "data.csv").write_text("id\n")
    code, _, err = _fetch(capsys, "nights", "--to", to, "--mirror", address)
    assert code == 0, err
    assert sorted(p.name for p in to.iterdir()) == ["nights"] and not (to / "nights" / "stale.txt").exists()
    assert len(load_nights(to / "nights", "test")) == READ["nights"][1]

    fetch.shutil.rmtree(to)
    downloads = to / ".fetch-nights.partial"
    downloads.mkdir(parents=True)
    whole = (served / "nights.zip").read_bytes()
    (downloads / "nights.zip").write_bytes(whole[:len(whole) // 2])
    (downloads / "nights.zip.json").write_text(json.dumps({"url": f"{address}/nights.zip", "validator": '"x"',
                                                           "size": len(whole), "complete": True}))
    handler.gets.clear()
    code, _, err = _fetch(capsys, "nights", "--to", to, "--mirror", address)
    assert code == 0, err
    assert handler.gets == {"nights.zip": 1} and sorted(p.name for p in to.iterdir()) == ["nights"]


def test_a_bapps_folder_without_a_split_is_not_already_there_and_the_api_refuses_a_file_for_to(server, tmp_path,
                                                                                              capsys):
    """DIR/bapps holding a 2afc/ with neither train nor val is named, not said to be verified (nothing fetched);
    fetch() called directly refuses a file for ``to`` before making anything (the CLI's own check comes first)."""
    _, address, handler = server
    (tmp_path / "data" / "bapps" / "2afc" / "other").mkdir(parents=True)
    code, _, err = _fetch(capsys, "bapps", "--to", tmp_path / "data", "--mirror", address)
    assert code == 2 and err.count("\n") == 1 and "exists but is not a complete BAPPS" in err, err
    assert handler.gets == {}
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    with pytest.raises(ParameterError, match=f"^--to {a_file}: a file, not a folder$"):
        fetch.fetch("nights", a_file, mirror=address, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file", "data", "served"]
