"""Loaders for TID2013, KADID-10k, Geirhos cue-conflict and CIFAR-100 on tiny official-layout fixtures."""

import pickle
from pathlib import Path

import numpy as np
import pytest
from fixtures_real import (
    cifar100_fine_names,
    kadid10k_dmos,
    make_bapps,
    make_cifar100,
    make_geirhos,
    make_kadid10k,
    make_tid2013,
    tid2013_mos,
)

from clipalign_utils.data.bapps import load_bapps
from clipalign_utils.data.cifar100 import load_cifar100
from clipalign_utils.data.geirhos import GEIRHOS_CLASSES, load_geirhos
from clipalign_utils.data.image_sets import read_rgb
from clipalign_utils.data.kadid10k import load_kadid10k
from clipalign_utils.data.tid2013 import load_tid2013
from clipalign_utils.errors import ClipalignError, DatasetError

IQA_COLUMNS = ["reference", "reference_path", "distorted_path", "distortion", "level", "quality"]


# --- TID2013 -----------------------------------------------------------------


def test_tid2013_rows_and_a_known_line(tmp_path):
    root = make_tid2013(tmp_path)
    frame = load_tid2013(root)
    assert list(frame.columns) == IQA_COLUMNS
    assert len(frame) == 3 * 3 * 3
    assert frame["level"].dtype == np.int64 and frame["quality"].dtype == np.float64

    row = frame[frame["distorted_path"].str.endswith("i02_08_2.bmp")].iloc[0]
    assert row["reference"] == "I02"
    assert row["reference_path"] == str(root / "reference_images" / "I02.BMP")
    assert row["distorted_path"] == str(root / "distorted_images" / "i02_08_2.bmp")
    assert row["distortion"] == "gaussian_blur"
    assert row["level"] == 2
    assert row["quality"] == pytest.approx(7.0 - 2 + 0.2 + 0.08)
    assert Path(row["distorted_path"]).is_absolute()


def test_tid2013_distortion_names_and_file_order(tmp_path):
    frame = load_tid2013(make_tid2013(tmp_path, n_refs=1, distortions=(1, 24), levels=(5,)))
    assert frame["distortion"].tolist() == ["additive_gaussian_noise", "sparse_sampling_and_reconstruction"]
    assert frame["level"].tolist() == [5, 5]


def test_tid2013_case_quirks(tmp_path):
    root = make_tid2013(tmp_path)
    frame = load_tid2013(root)
    # Last reference is stored lower case (like the release's i25.bmp), the others upper case.
    last = frame[frame["reference"] == "I03"].iloc[0]
    assert last["reference_path"] == str(root / "reference_images" / "i03.bmp")
    assert frame[frame["reference"] == "I01"].iloc[0]["reference_path"].endswith("I01.BMP")
    # Listed lower case in the MOS file, stored upper case on disk.
    upper = frame.iloc[-1]
    assert upper["distorted_path"] == str(root / "distorted_images" / "I03_10_3.BMP")
    assert upper["quality"] == pytest.approx(tid2013_mos(3, 10, 3))


@pytest.mark.parametrize("crlf", [True, False])
def test_tid2013_line_endings(tmp_path, crlf):
    root = make_tid2013(tmp_path, crlf=crlf)
    assert (b"\r\n" in (root / "mos_with_names.txt").read_bytes()) == crlf
    frame = load_tid2013(root)
    assert len(frame) == 27
    assert not frame["distorted_path"].str.contains("\r").any()



def test_tid2013_a_dos_end_of_file_mark_is_not_a_line(tmp_path):
    root = make_tid2013(tmp_path)
    mos = root / "mos_with_names.txt"
    mos.write_bytes(mos.read_bytes() + b"\x1a")  # Ctrl-Z, as DOS editors end a file
    assert len(load_tid2013(root)) == 27


def _replace_mos_line(root: Path, index: int, line: bytes) -> tuple[Path, bytes]:
    """Line ``index`` of ``root``'s mos_with_names.txt (CRLF, as released) replaced by ``line``: (the file, the
    line it held)."""
    mos = root / "mos_with_names.txt"
    lines = mos.read_bytes().split(b"\r\n")
    held, lines[index] = lines[index], line
    mos.write_bytes(b"\r\n".join(lines))
    return mos, held


def test_tid2013_malformed_line_names_file_and_line(tmp_path):
    root = make_tid2013(tmp_path)
    mos, _ = _replace_mos_line(root, 6, b"abc")
    with pytest.raises(DatasetError) as info:
        load_tid2013(root)
    message = str(info.value)
    assert str(mos) in message and "line 7" in message
    assert "'MOS name'" in message and "'abc'" in message
    # a control character alone (a stray Ctrl-Z): shown as what it is, not as an empty ''
    _replace_mos_line(root, 6, b"\x1a")
    with pytest.raises(DatasetError, match=r"line 7: .*got '\\x1a'$"):
        load_tid2013(root)


def test_tid2013_bad_distortion_index(tmp_path):
    root = make_tid2013(tmp_path)
    mos = root / "mos_with_names.txt"
    mos.write_text("5.0 i01_25_1.bmp\n")
    with pytest.raises(DatasetError, match=r"line 1: distortion index 25"):
        load_tid2013(root)


def test_tid2013_missing_images_are_named(tmp_path):
    root = make_tid2013(tmp_path)
    (root / "distorted_images" / "i01_08_2.bmp").unlink()
    with pytest.raises(DatasetError, match=r"i01_08_2\.bmp"):
        load_tid2013(root)

    root = make_tid2013(tmp_path / "again")
    (root / "reference_images" / "I02.BMP").unlink()
    with pytest.raises(DatasetError, match=r"reference image 'I02\.BMP'"):
        load_tid2013(root)

    # the 25th reference is named as the release spells it (i25.bmp, not I25.BMP)
    root = make_tid2013(tmp_path / "i25", n_refs=25, distortions=(1,), levels=(1,))
    (root / "reference_images" / "i25.bmp").unlink()
    with pytest.raises(DatasetError, match=r"line 2[56]: reference image 'i25\.bmp' for 'i25_01_1\.bmp' not found"):
        load_tid2013(root)


def test_tid2013_missing_root_names_parameter(tmp_path):
    with pytest.raises(DatasetError, match=r"iqa_root '.*nowhere' does not exist.*reference_images/"):
        load_tid2013(tmp_path / "nowhere")
    assert issubclass(DatasetError, ClipalignError)


def test_iqa_loaders_on_the_wrong_folder_name_what_they_expect(tmp_path):
    tid, kadid = make_tid2013(tmp_path / "tid"), make_kadid10k(tmp_path / "kadid")
    with pytest.raises(DatasetError, match=r"reference_images not found: iqa_root '.*kadid' should hold"):
        load_tid2013(kadid)
    with pytest.raises(DatasetError, match=r"images not found: iqa_root '.*tid' should hold KADID-10k's"):
        load_kadid10k(tid)


# --- KADID-10k ---------------------------------------------------------------


def test_kadid10k_rows_and_values(tmp_path):
    root = make_kadid10k(tmp_path)
    frame = load_kadid10k(root)
    assert list(frame.columns) == IQA_COLUMNS
    assert len(frame) == 2 * 3 * 3
    row = frame[frame["distorted_path"].str.endswith("I02_25_03.png")].iloc[0]
    assert row["reference"] == "I02"
    assert row["reference_path"] == str(root / "images" / "I02.png")
    assert row["distorted_path"] == str(root / "images" / "I02_25_03.png")
    assert row["distortion"] == "contrast_change"
    assert row["level"] == 3
    assert row["quality"] == pytest.approx(5.0 - 1.5 + 0.2 + 0.25)
    assert row["quality"] == pytest.approx(kadid10k_dmos(2, 25, 3))
    assert set(frame["distortion"]) == {"gaussian_blur", "jpeg", "contrast_change"}
    assert set(frame["level"]) == {1, 3, 5}


def test_kadid10k_bad_header(tmp_path):
    root = make_kadid10k(tmp_path)
    csv_path = root / "dmos.csv"
    csv_path.write_text("image,reference,score\n" + csv_path.read_text().split("\n", 1)[1])
    with pytest.raises(DatasetError) as info:
        load_kadid10k(root)
    message = str(info.value)
    assert str(csv_path) in message and "line 1" in message and "dist_img,ref_img,dmos,var" in message


def test_kadid10k_bad_row_names_line(tmp_path):
    root = make_kadid10k(tmp_path)
    csv_path = root / "dmos.csv"
    lines = csv_path.read_text().splitlines()
    fields = lines[3].split(",")
    fields[2] = "high"
    lines[3] = ",".join(fields)
    csv_path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetError, match=r"dmos\.csv line 4: expected a number in column dmos, got 'high'"):
        load_kadid10k(root)


def test_kadid10k_row_wider_than_the_header_or_listed_twice_is_refused(tmp_path):
    root = make_kadid10k(tmp_path)
    csv_path = root / "dmos.csv"
    header, first, *rest = csv_path.read_text().splitlines()
    # a decimal comma splits the DMOS: read by position it was 4.0, silently
    csv_path.write_text("\n".join([header, "I01_01_01.png,I01.png,4,57,0.496", *rest]) + "\n")
    with pytest.raises(DatasetError, match=r"dmos\.csv line 2: expected 4 fields as in the header .*got 5: "
                                           r"'I01_01_01\.png,I01\.png,4,57,0\.496'$"):
        load_kadid10k(root)
    csv_path.write_text("\n".join([header, first + ",,", *rest]) + "\n")  # empty fields past the header: kept
    assert len(load_kadid10k(root)) == 18
    csv_path.write_text("\n".join([header + ",source", first + ",lab", *rest]) + "\n")  # a declared extra column
    with pytest.raises(DatasetError, match=r"line 3: expected 5 fields"):
        load_kadid10k(root)
    csv_path.write_text("\n".join([header, first, *rest, first.replace("I01_01_01", "i01_01_01")]) + "\n")
    with pytest.raises(DatasetError, match=r"line 20: 'i01_01_01\.png' is listed twice \(first on line 2\)"):
        load_kadid10k(root)
    # an unclosed quote swallows the line break: the message stays one line
    csv_path.write_text("\n".join([header, *rest, '"' + first]) + "\n")
    with pytest.raises(DatasetError) as info:
        load_kadid10k(root)
    assert "\n" not in str(info.value) and "\\n" in str(info.value)


def test_a_release_unpacked_into_a_folder_of_its_own_is_read_there(tmp_path):
    """As every other loader does (release_folder): the one folder inside that holds the release."""
    kadid = make_kadid10k(tmp_path / "download" / "kadid10k")
    (tmp_path / "download" / "__MACOSX").mkdir()
    assert len(load_kadid10k(tmp_path / "download")) == len(load_kadid10k(kadid)) > 0
    tid = make_tid2013(tmp_path / "tid" / "tid2013")
    assert len(load_tid2013(tmp_path / "tid")) == len(load_tid2013(tid)) == 27
    # BAPPS and CIFAR-100 too (an audit found them the two that did not)
    make_bapps(tmp_path / "bapps" / "unpacked")
    assert len(load_bapps(tmp_path / "bapps", "val")) == len(load_bapps(tmp_path / "bapps" / "unpacked", "val")) > 0
    make_cifar100(tmp_path / "cifar" / "outer")
    assert len(load_cifar100(tmp_path / "cifar")[0]) == len(load_cifar100(tmp_path / "cifar" / "outer")[0]) > 0
    make_tid2013(tmp_path / "tid" / "copy")  # two candidates: no guess, the folder's missing part named
    with pytest.raises(DatasetError, match=r"tid/reference_images not found: iqa_root '.*tid' should hold TID2013's"):
        load_tid2013(tmp_path / "tid")


def test_kadid10k_missing_root_names_parameter(tmp_path):
    with pytest.raises(DatasetError, match=r"iqa_root '.*nowhere' does not exist"):
        load_kadid10k(tmp_path / "nowhere")


# --- Geirhos cue-conflict ----------------------------------------------------


def test_geirhos_classes():
    assert len(GEIRHOS_CLASSES) == 16 and list(GEIRHOS_CLASSES) == sorted(GEIRHOS_CLASSES)


def test_geirhos_rows_texture_parsing_and_readme_ignored(tmp_path):
    folder = make_geirhos(tmp_path)
    frame = load_geirhos(folder)
    assert list(frame.columns) == ["path", "shape", "texture", "shape_source", "texture_source"]
    assert len(frame) == 3 * 3  # README.txt is not a row
    assert frame["path"].tolist() == sorted(frame["path"])
    assert not frame["path"].str.endswith(".txt").any()

    row = frame[frame["path"].str.endswith("airplane2-bear11.png")].iloc[0]
    assert row["path"] == str(folder / "airplane" / "airplane2-bear11.png")
    assert (row["shape"], row["texture"]) == ("airplane", "bear")
    assert (row["shape_source"], row["texture_source"]) == ("airplane2", "bear11")  # the two source images
    # Shape == texture images are kept (one per class in the fixture).
    assert (frame["shape"] == frame["texture"]).sum() == 3



def test_geirhos_a_zip_made_on_a_mac_leaves_no_class(tmp_path):
    # Unzipped from an archive made on a Mac: __MACOSX/ (AppleDouble files) beside the class folders, and
    # ._ files and Thumbs.db within them.
    folder = make_geirhos(tmp_path)
    (folder / "__MACOSX" / "airplane").mkdir(parents=True)
    (folder / "__MACOSX" / "airplane" / "._airplane2-bear11.png").write_bytes(b"\x00\x05\x16\x07")
    (folder / "airplane" / "._airplane2-bear11.png").write_bytes(b"\x00\x05\x16\x07")
    (folder / "bear" / "Thumbs.db").write_bytes(b"thumbnails")
    frame = load_geirhos(folder)
    assert len(frame) == 3 * 3 and not frame["path"].str.contains("MACOSX|/\\._|Thumbs").any()

def test_geirhos_root_may_be_parent(tmp_path):
    folder = make_geirhos(tmp_path)
    assert load_geirhos(tmp_path).equals(load_geirhos(folder))


def test_geirhos_unknown_names_are_errors(tmp_path):
    folder = make_geirhos(tmp_path)
    stray = folder / "cat" / "cat9-zebra3.png"
    stray.write_bytes((folder / "cat" / "cat1-cat10.png").read_bytes())
    with pytest.raises(DatasetError, match=r"cat9-zebra3\.png.*texture 'zebra'"):
        load_geirhos(folder)
    stray.unlink()

    (folder / "zebra").mkdir()
    with pytest.raises(DatasetError, match=r"unknown class folder 'zebra'"):
        load_geirhos(folder)


def test_texture_vs_shape_stimuli_folder_points_to_its_cue_conflict_images(tmp_path):
    # rgeirhos/texture-vs-shape keeps them in stimuli/style-transfer-preprocessed-512, beside edges/ and others
    stimuli = tmp_path / "texture-vs-shape" / "stimuli"
    folder = make_geirhos(stimuli)
    folder.rename(stimuli / "style-transfer-preprocessed-512")
    (stimuli / "edges" / "airplane").mkdir(parents=True)
    with pytest.raises(DatasetError, match=r"unknown class folder 'edges'; .* \(this is texture-vs-shape's stimuli/ "
                                           r"folder: give cue_conflict_root='.*/stimuli/style-transfer-preprocessed-512'\)$"):
        load_geirhos(stimuli)
    assert len(load_geirhos(stimuli / "style-transfer-preprocessed-512")) == 9
    with pytest.raises(DatasetError, match=r"unknown class folder 'stimuli'; .* \(this is the texture-vs-shape "
                                           r"repository: give cue_conflict_root='.*/stimuli/style-transfer-preprocessed-512'\)$"):
        load_geirhos(stimuli.parent)  # the repository's root


def test_geirhos_missing_root_names_parameter(tmp_path):
    with pytest.raises(DatasetError, match=r"cue_conflict_root '.*nowhere' does not exist"):
        load_geirhos(tmp_path / "nowhere")


def test_read_image_decodes_and_names_broken_files(tmp_path):
    folder = make_geirhos(tmp_path)
    good = load_geirhos(folder)["path"].iloc[0]
    assert read_rgb(good).shape == (16, 24, 3)

    broken = folder / "bear" / "bear7-cat1.png"
    broken.write_bytes(b"not a png")
    assert str(broken) in load_geirhos(folder)["path"].tolist()  # listing does not decode
    with pytest.raises(DatasetError, match=r"bear7-cat1\.png is not a readable image .*: replace it with the release.s copy of the file$"):
        read_rgb(broken)


# --- CIFAR-100 ---------------------------------------------------------------


@pytest.mark.parametrize("as_parent", [True, False])
def test_cifar100_root_as_parent_or_folder(tmp_path, as_parent):
    parent = make_cifar100(tmp_path, n=10)
    images, labels, names = load_cifar100(parent if as_parent else parent / "cifar-100-python")
    assert images.shape == (10, 32, 32, 3) and images.dtype == np.uint8
    assert labels.dtype == np.int64 and labels.tolist() == [(7 * k) % 100 for k in range(10)]
    assert len(names) == 100


def test_cifar100_pixel_layout_and_class_names(tmp_path):
    images, labels, names = load_cifar100(make_cifar100(tmp_path, n=5))
    assert images[0, 1, 2].tolist() == [11, 22, 33]  # row 1, column 2, RGB
    assert images[3, 0, 0].tolist() == [3, 103, 197]
    assert images[3, 31, 31].tolist() == [3, 103, 197]
    assert names[1] == "aquarium fish" and names[5] == "maple tree" and names[6] == "pickup truck"
    assert names == [n.replace("_", " ") for n in cifar100_fine_names()]


def test_cifar100_corrupt_pickle_and_missing_key(tmp_path):
    parent = make_cifar100(tmp_path)
    test_path = parent / "cifar-100-python" / "test"
    test_path.write_bytes(b"\x80\x02garbage")
    with pytest.raises(DatasetError, match=r"cifar-100-python/test: not a readable CIFAR-100 pickle"):
        load_cifar100(parent)

    meta_path = parent / "cifar-100-python" / "meta"
    make_cifar100(tmp_path)
    with open(meta_path, "wb") as f:
        pickle.dump({"coarse_label_names": []}, f, protocol=2)
    with pytest.raises(DatasetError, match=r"cifar-100-python/meta: missing key 'fine_label_names'"):
        load_cifar100(parent)


def test_cifar100_resaved_with_bytes_keys_reads_the_same(tmp_path):
    """A common copy: the release loaded with encoding="bytes" and pickled again by Python 3 (b"data", b"apple")."""
    parent = make_cifar100(tmp_path / "release", n=5)
    expected = load_cifar100(parent)
    copy = tmp_path / "copy" / "cifar-100-python"
    copy.mkdir(parents=True)
    for name in ("test", "meta"):
        with open(parent / "cifar-100-python" / name, "rb") as f:
            as_bytes = pickle.load(f, encoding="bytes")
        as_bytes = {key.encode() if isinstance(key, str) else key: value for key, value in as_bytes.items()}
        if name == "meta":
            as_bytes[b"fine_label_names"] = [label.encode() for label in as_bytes[b"fine_label_names"]]
        with open(copy / name, "wb") as f:
            pickle.dump(as_bytes, f)
    images, labels, names = load_cifar100(copy)
    assert np.array_equal(images, expected[0]) and np.array_equal(labels, expected[1])
    assert names == expected[2] and names[5] == "maple tree"


def test_cifar100_half_of_the_pair_names_the_missing_file(tmp_path):
    parent = make_cifar100(tmp_path, n=2)
    (parent / "cifar-100-python" / "meta").unlink()
    with pytest.raises(DatasetError, match=r"cifar-100-python/meta not found: CIFAR-100's python version holds "
                                           r"test and meta side by side \(.*cifar-100-python/test is there\)$"):
        load_cifar100(parent)


def test_a_root_that_is_a_file_is_named_as_one_an_archive_to_unpack(tmp_path):
    from clipalign_utils.data.noise import cifar100_set

    archive = tmp_path / "cifar-100-python.tar.gz"  # the file fetch's list points at, not unpacked
    archive.write_bytes(b"\x1f\x8b\x08\x00")
    with pytest.raises(DatasetError, match=r"^noise_root='.*cifar-100-python\.tar\.gz' is a file, not the dataset's "
                                           r"folder: unpack the archive first \(clipalign fetch cifar100 --to DIR"):
        cifar100_set(root=str(archive), per_class=1, seed=0)
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DatasetError, match=r"notes\.txt' is a file, not the dataset's folder: set it to the extracted"):
        cifar100_set(root=str(tmp_path / "notes.txt"), per_class=1, seed=0)


def test_cifar100_missing_root_names_parameter(tmp_path):
    with pytest.raises(DatasetError, match=r"noise_root '.*nowhere' does not exist"):
        load_cifar100(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match=r"noise_root '.*empty' holds neither"):
        load_cifar100(tmp_path / "empty")


def test_each_real_dataset_a_run_names_is_read_before_it_runs_without_the_published_checksums(tmp_path):
    """check_real_datasets reads each named release with its loader (a wrong folder: one line naming the
    parameter and the layout); a user's own copy need not match the published checksums a fetch checks."""
    from clipalign_utils.data import fetch

    cifar = make_cifar100(tmp_path / "mine")  # pickled here: not the published MD5
    with pytest.raises(DatasetError, match="MD5"):
        fetch.RELEASES["cifar100"].checksums(cifar)
    fetch.check_real_datasets({"noise_dataset": "cifar100", "noise_root": str(cifar),
                               "iqa_dataset": "embedded", "iqa_root": str(tmp_path / "nowhere")})
    with pytest.raises(DatasetError) as error:
        fetch.check_real_datasets({"iqa_dataset": "tid2013", "iqa_root": str(cifar)})
    message = str(error.value)
    assert "iqa_root" in message and str(cifar) in message and "mos_with_names.txt" in message
    assert "\n" not in message
    with pytest.raises(DatasetError, match="cue_conflict_dataset=geirhos needs cue_conflict_root: .*clipalign fetch geirhos"):
        fetch.check_real_datasets({"cue_conflict_dataset": "geirhos", "cue_conflict_root": None})
    # A 2AFC set: the split (and protocol) the run asks for is what is read, so a missing split is found here.
    from fixtures_real import make_bapps

    bapps = make_bapps(tmp_path / "bapps", split="val")
    fetch.check_real_datasets({"similarity_dataset": "bapps", "similarity_root": str(bapps), "similarity_split": ""})
    with pytest.raises(DatasetError, match="similarity_root=.*2afc/train not found.*found: val"):
        fetch.check_real_datasets({"similarity_dataset": "bapps", "similarity_root": str(bapps),
                                   "similarity_split": "train"})


# --- audit (mutation testing): index parsing the fixtures above did not reach ----------------------------


def test_tid2013_a_line_listed_twice_is_refused(tmp_path):
    # A duplicated line would score one image twice (and weigh it double in every correlation).
    root = make_tid2013(tmp_path)  # 27 lines and one blank: 28 lines, CRLF
    mos = root / "mos_with_names.txt"
    mos.write_bytes(mos.read_bytes() + b"4.00000 I01_01_1.BMP\r\n")  # line 29, the name of line 1 in other case
    with pytest.raises(DatasetError, match=r"line 29: 'I01_01_1\.BMP' is listed twice \(first on line 1\)"):
        load_tid2013(root)


def test_tid2013_a_line_with_a_third_field_is_refused(tmp_path):
    # "MOS name" and nothing else: a third field (a standard deviation pasted in, a split name) is a different
    # file, not the release's index, and must not be read as if it were.
    root = make_tid2013(tmp_path)
    _, held = _replace_mos_line(root, 0, b"6.11000 i01_01_1.bmp 0.123")
    assert held == b"6.11000 i01_01_1.bmp"  # 7 - 1 + 0.1 + 0.01
    with pytest.raises(DatasetError, match=r"line 1: expected 'MOS name' .*got '6\.11000 i01_01_1\.bmp 0\.123'"):
        load_tid2013(root)


def test_kadid10k_columns_are_read_by_name_not_position(tmp_path):
    # Columns in another order (var before dmos, ref_img first) and a leading index column, as pandas writes a
    # re-saved copy: read by name, the values stay those of their columns.
    root = make_kadid10k(tmp_path)
    csv_path = root / "dmos.csv"
    csv_path.write_text("\n".join([",ref_img,dist_img,var,dmos",
                                   "0,I02.png,I02_25_03.png,0.25,3.95",  # 5 - 1.5 + 0.2 + 0.25
                                   "1,I01.png,I01_01_05.png,0.5,2.61"]) + "\n")  # 5 - 2.5 + 0.1 + 0.01
    frame = load_kadid10k(root)
    assert frame["distorted_path"].tolist() == [str(root / "images" / "I02_25_03.png"),
                                                str(root / "images" / "I01_01_05.png")]
    assert frame["reference_path"].tolist() == [str(root / "images" / "I02.png"), str(root / "images" / "I01.png")]
    assert frame["quality"].tolist() == [3.95, 2.61]
    assert frame["distortion"].tolist() == ["contrast_change", "gaussian_blur"]
    assert frame["level"].tolist() == [3, 5]


def test_kadid10k_a_distorted_image_paired_with_another_reference_is_refused(tmp_path):
    # I01_10_03.png is a distortion of I01.png; a row naming I02.png as its reference would compare it with the
    # wrong photograph.
    root = make_kadid10k(tmp_path)
    csv_path = root / "dmos.csv"
    lines = csv_path.read_text().splitlines()
    assert lines[5] == "I01_10_03.png,I01.png,3.7,0.25"
    lines[5] = "I01_10_03.png,I02.png,3.7,0.25"
    csv_path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetError, match=r"dmos\.csv line 6: dist_img 'I01_10_03\.png' does not belong to ref_img "
                                           r"'I02\.png'"):
        load_kadid10k(root)


def test_kadid10k_reference_id_ignores_the_case_of_the_names(tmp_path):
    # Names are matched in any case; the reference id is "I01" however a row spells it, so one photograph is
    # one reference.
    root = make_kadid10k(tmp_path)
    csv_path = root / "dmos.csv"
    lines = csv_path.read_text().splitlines()
    lines[1] = lines[1].lower()  # i01_01_01.png,i01.png,...
    csv_path.write_text("\n".join(lines) + "\n")
    frame = load_kadid10k(root)
    assert frame["reference"].tolist() == ["I01"] * 9 + ["I02"] * 9
    assert frame["reference_path"].iloc[0] == str(root / "images" / "I01.png")
    assert frame["distorted_path"].iloc[0] == str(root / "images" / "I01_01_01.png")


def test_geirhos_image_suffix_in_any_case(tmp_path):
    # A copy through Windows may spell the suffix upper case; the image is still one of the stimuli.
    folder = make_geirhos(tmp_path)
    (folder / "bear" / "bear2-cat11.png").rename(folder / "bear" / "bear2-cat11.PNG")
    frame = load_geirhos(folder)
    assert len(frame) == 9
    row = frame[frame["path"].str.endswith("bear2-cat11.PNG")].iloc[0]
    assert (row["shape"], row["texture"]) == ("bear", "cat")
