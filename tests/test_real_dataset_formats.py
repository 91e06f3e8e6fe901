"""Real-dataset loaders on the paths the layout tests leave unread: malformed index files (each a one-line
DatasetError naming the file and line), release variants read as the release means them, and the image
sets' fallbacks. Tiny fixtures in the official layouts (fixtures_real)."""

import pickle

import numpy as np
import pytest
from fixtures_real import (
    kadid10k_dmos,
    make_bapps,
    make_cat2000,
    make_cifar100,
    make_kadid10k,
    make_mit1003,
    make_nights,
    make_tid2013,
    tid2013_mos,
)
from PIL import Image
from scipy.io import savemat

from clipalign_utils.data import image_sets
from clipalign_utils.data.bapps import load_bapps
from clipalign_utils.data.cat2000 import load_cat2000, read_fixlocs
from clipalign_utils.data.cifar100 import load_cifar100
from clipalign_utils.data.image_sets import ArrayImages, FileImages
from clipalign_utils.data.kadid10k import load_kadid10k
from clipalign_utils.data.mit1003 import load_mit1003
from clipalign_utils.data.nights import load_nights
from clipalign_utils.data.tid2013 import load_tid2013
from clipalign_utils.errors import DatasetError, ParameterError

KADID_HEADER = "dist_img,ref_img,dmos,var"


def _kadid_rows(root, *rows):
    """dmos.csv of the KADID-10k fixture at ``root`` holding the official header and ``rows``."""
    csv_path = root / "dmos.csv"
    csv_path.write_text("\n".join([KADID_HEADER, *rows]) + "\n")
    return csv_path


# --- KADID-10k ---------------------------------------------------------------


def test_kadid10k_blank_rows_and_rows_of_empty_fields_are_skipped(tmp_path):
    # A spreadsheet's export ends with ",,," rows, an editor leaves blank lines: neither is an image, and the
    # rows around them keep their values.
    root = make_kadid10k(tmp_path)
    _kadid_rows(root, f"I01_01_01.png,I01.png,{kadid10k_dmos(1, 1, 1)},0.25", "", ",,,",
                f"I02_10_03.png,I02.png,{kadid10k_dmos(2, 10, 3)},0.25", " , , , ")
    frame = load_kadid10k(root)
    assert frame["distorted_path"].tolist() == [str(root / "images" / "I01_01_01.png"),
                                                str(root / "images" / "I02_10_03.png")]
    assert frame["quality"].tolist() == [kadid10k_dmos(1, 1, 1), kadid10k_dmos(2, 10, 3)]
    assert frame["distortion"].tolist() == ["gaussian_blur", "jpeg"] and frame["level"].tolist() == [1, 3]


def test_kadid10k_header_only_lists_no_images(tmp_path):
    root = make_kadid10k(tmp_path)
    csv_path = _kadid_rows(root)
    with pytest.raises(DatasetError, match=rf"^{csv_path} lists no images: expected rows like 'I01_01_01\.png"):
        load_kadid10k(root)


def test_kadid10k_a_binary_or_runaway_index_is_named_as_such(tmp_path):
    # An index saved as a spreadsheet (not text), or an unclosed quote that swallows the rest of a big file
    # (csv's field limit): one line naming the file and the header expected.
    root = make_kadid10k(tmp_path)
    csv_path = root / "dmos.csv"
    csv_path.write_bytes(b"PK\x03\x04\xff\xfe\x00binary")
    with pytest.raises(DatasetError, match=rf"^{csv_path}: not a text file .*expected a CSV with header "
                                           rf"dist_img,ref_img,dmos,var$"):
        load_kadid10k(root)
    csv_path.write_text(KADID_HEADER + '\n"I01_01_01.png,I01.png,4.5,0.2\n' + "x" * 140_000 + "\n")
    with pytest.raises(DatasetError, match=rf"^{csv_path}: malformed CSV \(field larger than field limit"):
        load_kadid10k(root)


@pytest.mark.parametrize("row, message", [
    ("I01_01_01.jpg,I01.png,4.5,0.2", r"line 2: expected dist_img like 'I01_01_01\.png', got 'I01_01_01\.jpg'"),
    ("I01_1_1.png,I01.png,4.5,0.2", r"line 2: expected dist_img like 'I01_01_01\.png', got 'I01_1_1\.png'"),
    ("I01_01_01.png,I01.bmp,4.5,0.2", r"line 2: expected ref_img like 'I01\.png', got 'I01\.bmp'"),
    ("I01_26_01.png,I01.png,4.5,0.2", r"line 2: distortion index 26 in 'I01_26_01\.png' is not one of KADID-10k's"),
    ("I01_00_01.png,I01.png,4.5,0.2", r"line 2: distortion index 00 in 'I01_00_01\.png'"),
    ("I01_01_06.png,I01.png,4.5,0.2", r"line 2: level 06 in 'I01_01_06\.png' is not in 01\.\.05"),
    ("I01_01_00.png,I01.png,4.5,0.2", r"line 2: level 00 in 'I01_01_00\.png'"),
    ("I01_01_01.png,I01.png,nan,0.2", r"line 2: expected a number in column dmos, got 'nan'"),
])
def test_kadid10k_names_outside_the_release_are_refused_with_their_line(tmp_path, row, message):
    # 25 distortions × 5 levels, I<ref>_<dd>_<ll>.png: anything else is not a KADID-10k image (and index 26
    # would otherwise raise an IndexError, level 0 be read as a level).
    root = make_kadid10k(tmp_path)
    csv_path = _kadid_rows(root, row)
    with pytest.raises(DatasetError, match=rf"^{csv_path} {message}"):
        load_kadid10k(root)


def test_kadid10k_missing_reference_image_is_named(tmp_path):
    root = make_kadid10k(tmp_path)
    (root / "images" / "I02.png").unlink()
    csv_path = root / "dmos.csv"
    with pytest.raises(DatasetError, match=rf"^{csv_path} line 11: reference image 'I02\.png' not found in "
                                           rf"{root / 'images'}$"):
        load_kadid10k(root)


# --- TID2013 -----------------------------------------------------------------


@pytest.mark.parametrize("line, message", [
    ("5.0 i01_01_1.png", r"expected a file name like 'i01_01_1\.bmp', got 'i01_01_1\.png'"),
    ("5.0 i1_01_1.bmp", r"expected a file name like 'i01_01_1\.bmp', got 'i1_01_1\.bmp'"),
    ("5.0 i01_01_6.bmp", r"level 6 in 'i01_01_6\.bmp' is not in 1\.\.5"),
    ("5.0 i01_01_0.bmp", r"level 0 in 'i01_01_0\.bmp' is not in 1\.\.5"),
    ("nan i01_01_1.bmp", r"expected a finite MOS, got 'nan'"),
    ("inf i01_01_1.bmp", r"expected a finite MOS, got 'inf'"),
])
def test_tid2013_lines_outside_the_release_are_refused_with_their_line(tmp_path, line, message):
    root = make_tid2013(tmp_path)
    mos = root / "mos_with_names.txt"
    mos.write_bytes(f"6.11000 i01_01_1.bmp\r\n{line}\r\n".encode())
    with pytest.raises(DatasetError, match=rf"^{mos} line 2: {message}$"):
        load_tid2013(root)


def test_tid2013_an_empty_or_binary_index_is_named(tmp_path):
    root = make_tid2013(tmp_path)
    mos = root / "mos_with_names.txt"
    mos.write_bytes(b"\r\n\r\n")
    with pytest.raises(DatasetError, match=rf"^{mos} lists no images: expected 'MOS name' lines"):
        load_tid2013(root)
    mos.write_bytes(b"\xff\xfe5\x00.\x000\x00")  # saved as UTF-16 by an editor
    with pytest.raises(DatasetError, match=rf"^{mos}: not a text file .*expected 'MOS name' lines$"):
        load_tid2013(root)


def test_tid2013_upper_case_names_in_the_index_read_their_files(tmp_path):
    # The release mixes cases (I25 / i25): an index line in upper case reads the lower-case file, reference I03.
    root = make_tid2013(tmp_path)
    mos = root / "mos_with_names.txt"
    mos.write_bytes(b"4.25000 I03_08_2.BMP\r\n")
    frame = load_tid2013(root)
    assert frame["distorted_path"].tolist() == [str(root / "distorted_images" / "i03_08_2.bmp")]
    assert frame["reference_path"].tolist() == [str(root / "reference_images" / "i03.bmp")]
    assert frame["reference"].tolist() == ["I03"] and frame["quality"].tolist() == [4.25]
    assert frame["distortion"].tolist() == ["gaussian_blur"] and frame["level"].tolist() == [2]
    assert tid2013_mos(3, 8, 2) != 4.25  # the value is the index's, not the fixture's


# --- NIGHTS ------------------------------------------------------------------


def _nights_csv(folder, *rows, header="id,left_vote,right_vote,votes,ref_path,left_path,right_path,split,is_imagenet"):
    """data.csv of make_nights' folder with ``header`` and ``rows`` (paths of triplets 0..5 exist)."""
    csv_path = folder / "data.csv"
    csv_path.write_text("\n".join([header, *rows]) + "\n")
    return csv_path


def _triplet(k):
    d, f = f"{k // 2:03d}", f"{k:03d}"
    return f"ref/{d}/{f}.png,distort/{d}/{f}_0.png,distort/{d}/{f}_1.png"


def test_nights_release_column_order_with_prompt_reads_p_as_right_share(tmp_path):
    # The release's own data.csv: id, ref/left/right paths, the votes, split, is_imagenet and a prompt with a
    # comma in quotes. p is the share choosing the right (_1) image: right_vote / votes, not left_vote / votes.
    folder = make_nights(tmp_path)
    _nights_csv(folder, f'0,{_triplet(0)},1,5,6,test,True,"a photo of a cat, sitting"',
                f'1,{_triplet(1)},4,2,6,test,False,"a dog"',
                header="id,ref_path,left_path,right_path,left_vote,right_vote,votes,split,is_imagenet,prompt")
    table = load_nights(folder)
    np.testing.assert_allclose(table["p"], [5 / 6, 2 / 6])
    assert table["votes"].tolist() == [6.0, 6.0]
    assert table["p1_path"].tolist() == [str(folder / "distort" / "000" / "000_1.png"),
                                         str(folder / "distort" / "000" / "001_1.png")]
    assert table["subset"].tolist() == ["imagenet", "no_imagenet"]


def test_nights_the_fixture_reads_right_vote_over_votes(tmp_path):
    # make_nights: triplet k's judges prefer the right image k + 1 of 6 times.
    table = load_nights(make_nights(tmp_path))
    np.testing.assert_allclose(table["p"], [(k + 1) / 6 for k in range(6)])
    assert table["subset"].tolist() == ["imagenet", "no_imagenet"] * 3


def test_nights_without_is_imagenet_is_one_subset(tmp_path):
    # is_imagenet is optional (an older copy): every row is subset "nights", none is dropped.
    folder = make_nights(tmp_path, n=2)
    _nights_csv(folder, f"0,1,5,6,{_triplet(0)},test", f"1,3,3,6,{_triplet(1)},test",
                header="id,left_vote,right_vote,votes,ref_path,left_path,right_path,split")
    table = load_nights(folder)
    assert table["subset"].tolist() == ["nights", "nights"] and table["p"].tolist() == [5 / 6, 0.5]


@pytest.mark.parametrize("field, value, message", [
    ("votes", "six", r"line 3: column 'votes' must hold a non-negative number, got 'six'"),
    ("right_vote", "-1", r"line 3: column 'right_vote' must hold a non-negative number, got '-1'"),
    ("is_imagenet", "maybe", r"line 3: is_imagenet must be True or False, got 'maybe'"),
])
def test_nights_a_bad_field_is_named_with_its_line(tmp_path, field, value, message):
    folder = make_nights(tmp_path, n=2)
    fields = {"left_vote": "1", "right_vote": "5", "votes": "6", "is_imagenet": "True"}
    fields[field] = value
    csv_path = _nights_csv(folder, f"0,1,5,6,{_triplet(0)},test,True",
                           f"1,{fields['left_vote']},{fields['right_vote']},{fields['votes']},{_triplet(1)},test,"
                           f"{fields['is_imagenet']}")
    with pytest.raises(DatasetError, match=rf"^{csv_path} {message}$"):
        load_nights(folder)


def test_nights_an_unreadable_csv_is_named(tmp_path):
    folder = make_nights(tmp_path, n=1)
    csv_path = folder / "data.csv"
    csv_path.write_bytes(b"")
    with pytest.raises(DatasetError, match=rf"^{csv_path}: not a readable CSV \(EmptyDataError"):
        load_nights(folder)
    csv_path.write_bytes(b"id,left_vote\n\xff\xfe\x00\x81,1\n")
    with pytest.raises(DatasetError, match=rf"^{csv_path}: not a readable CSV \(UnicodeDecodeError"):
        load_nights(folder)


def test_nights_an_empty_split_or_protocol_is_named(tmp_path):
    folder = make_nights(tmp_path, n=2)
    csv_path = _nights_csv(folder, f"0,1,5,6,{_triplet(0)},test,True", f"1,1,4,5,{_triplet(1)},train,True")
    with pytest.raises(DatasetError, match=rf"^{csv_path} has no rows of split 'val' \(splits found: test, train\)$"):
        load_nights(folder, "val")
    with pytest.raises(DatasetError, match=rf"^{csv_path}: no 'train' row has votes >= 6 \(protocol votes6\)$"):
        load_nights(folder, "train", "votes6")
    assert load_nights(folder, "train")["p"].tolist() == [4 / 5]
    with pytest.raises(ParameterError, match=r"^similarity_protocol='votes5': choose one of all, votes6"):
        load_nights(folder, "test", "votes5")


# --- BAPPS -------------------------------------------------------------------


def test_bapps_judge_is_the_share_choosing_p1_in_stem_order(tmp_path):
    # judge/NNNNNN.npy holds the fraction of people choosing p1 (LPIPS's loader), subsets in name order
    # (cnn before traditional), triplets in stem order; float64 as the release stores it reads the same.
    root = make_bapps(tmp_path)
    np.save(root / "2afc" / "val" / "cnn" / "judge" / "000002.npy", np.array([0.8]))  # float64
    table = load_bapps(root)
    assert list(zip(table["subset"], table["id"])) == [("cnn", f"{k:06d}") for k in range(3)] + \
        [("traditional", f"{k:06d}") for k in range(3)]
    np.testing.assert_allclose(table["p"], [0.1, 0.3, 0.8, 0.0, 0.2, 0.4], atol=1e-6)
    assert table["p1_path"].iloc[0] == str(root / "2afc" / "val" / "cnn" / "p1" / "000000.png")


def test_bapps_folder_without_2afc_or_subsets_or_triplets_is_named(tmp_path):
    (tmp_path / "elsewhere").mkdir()
    with pytest.raises(DatasetError, match=r"holds no 2afc/ folder: point it at BAPPS's folder holding 2afc/"):
        load_bapps(tmp_path / "elsewhere")
    (tmp_path / "bapps" / "2afc" / "val").mkdir(parents=True)
    with pytest.raises(DatasetError, match=r"2afc/val holds no subset folders"):
        load_bapps(tmp_path / "bapps")
    for part in ("ref", "p0", "p1"):
        (tmp_path / "bapps" / "2afc" / "val" / "cnn" / part).mkdir(parents=True)
    with pytest.raises(DatasetError, match=r"2afc/val/cnn/judge not found: every BAPPS subset holds ref, p0, p1, "
                                           r"judge/"):
        load_bapps(tmp_path / "bapps")
    (tmp_path / "bapps" / "2afc" / "val" / "cnn" / "judge").mkdir()
    with pytest.raises(DatasetError, match=r"2afc/val holds no triplets$"):
        load_bapps(tmp_path / "bapps")


def test_bapps_truncated_judge_is_named(tmp_path):
    root = make_bapps(tmp_path, subsets=("cnn",), n=1)
    path = root / "2afc" / "val" / "cnn" / "judge" / "000000.npy"
    path.write_bytes(path.read_bytes()[:20])  # the NumPy magic, then the header cut short
    with pytest.raises(DatasetError, match=rf"^{path} is not a readable \.npy file \("):
        load_bapps(root)


# --- CIFAR-100 ---------------------------------------------------------------


def _cifar_test(parent, **changes):
    """The fixture's cifar-100-python/test batch pickled again with ``changes``; its path."""
    path = parent / "cifar-100-python" / "test"
    with open(path, "rb") as f:
        test = pickle.load(f, encoding="latin1")
    test.update(changes)
    with open(path, "wb") as f:
        pickle.dump(test, f, protocol=2)
    return path


@pytest.mark.parametrize("changes, message", [
    ({"data": np.zeros((4, 1024), np.uint8)}, r"expected 'data' of shape \(N, 3072\), got \(4, 1024\)"),
    ({"fine_labels": [0, 1, 2]}, r"expected 4 'fine_labels', got shape \(3,\)"),
    ({"fine_labels": [0, 1, 2, 100]}, r"'fine_labels' range 0\.\.100 does not fit the 100 'fine_label_names' in "),
    ({"fine_labels": [0, 1, 2, -1]}, r"'fine_labels' range -1\.\.2 does not fit"),
    ({"fine_labels": ["a", "b", "c", "d"]}, r"unreadable 'data' or 'fine_labels' \("),
])
def test_cifar100_a_test_batch_that_does_not_fit_is_named(tmp_path, changes, message):
    parent = make_cifar100(tmp_path, n=4)
    path = _cifar_test(parent, **changes)
    with pytest.raises(DatasetError, match=rf"^{path}: {message}"):
        load_cifar100(parent)


def test_cifar100_a_pickle_that_is_not_a_dict_is_named(tmp_path):
    parent = make_cifar100(tmp_path, n=2)
    meta = parent / "cifar-100-python" / "meta"
    with open(meta, "wb") as f:
        pickle.dump(["apple", "aquarium_fish"], f, protocol=2)
    with pytest.raises(DatasetError, match=rf"^{meta}: expected a pickled dict, got list$"):
        load_cifar100(parent)


# --- MIT1003 and CAT2000 -----------------------------------------------------


def test_mit1003_missing_maps_folder_or_stimuli_is_named(tmp_path):
    root = make_mit1003(tmp_path / "mit", n=2)
    for path in (root / "ALLFIXATIONMAPS").iterdir():
        path.unlink()
    (root / "ALLFIXATIONMAPS").rmdir()
    with pytest.raises(DatasetError, match=r"mit has no ALLFIXATIONMAPS/ folder \(expected the official MIT1003 "
                                           r"layout"):
        load_mit1003(root, image_size=16)
    (root / "ALLFIXATIONMAPS").mkdir()
    for path in (root / "ALLSTIMULI").iterdir():
        path.unlink()
    (root / "ALLSTIMULI" / "Thumbs.db").write_bytes(b"junk")
    with pytest.raises(DatasetError, match=r"ALLSTIMULI holds no images$"):
        load_mit1003(root, image_size=16)


def test_mit1003_fixation_points_are_the_bright_pixels_of_fixpts(tmp_path):
    # *_fixPts.jpg: white points on black; the fixations are the pixels above 127, the density is *_fixMap.jpg.
    root = make_mit1003(tmp_path, n=1)
    points = np.zeros((48, 64), np.uint8)
    points[5, 7] = points[30, 60] = 255
    Image.fromarray(points).save(root / "ALLFIXATIONMAPS" / "i0_fixPts.jpg", quality=95)
    data = load_mit1003(root, image_size=16)
    density, fixations = data.target(0)
    assert sorted(zip(*np.nonzero(fixations))) == [(5, 7), (30, 60)]
    expected = np.asarray(Image.open(root / "ALLFIXATIONMAPS" / "i0_fixMap.jpg").convert("L"))
    np.testing.assert_array_equal(np.asarray(density), expected)


def test_cat2000_fixlocs_without_the_variable_or_not_a_map_is_named(tmp_path):
    path = tmp_path / "001.mat"
    savemat(path, {"fixations": np.ones((4, 4))})
    with pytest.raises(DatasetError, match=rf"^{path} holds no variable fixLocs"):
        read_fixlocs(path)
    savemat(path, {"fixLocs": np.ones((2, 4, 4))})
    with pytest.raises(DatasetError, match=rf"^{path}: fixLocs must be a 2-D map; got shape \(2, 4, 4\)$"):
        read_fixlocs(path)
    savemat(path, {"fixLocs": np.array([[0, 2], [1, 0]], np.uint8)})
    assert read_fixlocs(path).tolist() == [[False, True], [True, False]]


def test_cat2000_stimuli_without_category_images_is_named(tmp_path):
    root = make_cat2000(tmp_path)
    stimuli = root / "trainSet" / "Stimuli"
    for category in ("Action", "Art"):
        for path in (stimuli / category).iterdir():
            path.unlink()
    (stimuli / "Output").mkdir()
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(stimuli / "Output" / "001.jpg")  # not a category
    with pytest.raises(DatasetError, match=rf"^{stimuli} holds no images in category folders$"):
        load_cat2000(root, image_size=16)


# --- image sets --------------------------------------------------------------


def test_array_images_refuse_a_shape_that_is_not_n_h_w_3():
    with pytest.raises(DatasetError, match=r"image set 'grey': expected \(N, H, W, 3\) images, got shape \(2, 8, 8\)"):
        ArrayImages(np.zeros((2, 8, 8), np.uint8), "grey")


def test_file_images_without_a_size_bring_others_to_the_first_ones(tmp_path):
    # No size: images decoded as they are, those of another size resized to the first one's before stacking.
    Image.fromarray(np.full((6, 10, 3), 40, np.uint8)).save(tmp_path / "a.png")
    Image.fromarray(np.full((12, 20, 3), 90, np.uint8)).save(tmp_path / "b.png")
    images = FileImages([tmp_path / "a.png", tmp_path / "b.png"], "two")
    batch = images.arrays(0, 2)
    assert batch.shape == (2, 6, 10, 3) and batch.dtype == np.uint8
    assert (batch[0] == 40).all() and (batch[1] == 90).all()
    with pytest.raises(ValueError, match=r"fit must be one of \('crop', 'resize'\), got 'stretch'"):
        FileImages([tmp_path / "a.png"], "one", size=4, fit="stretch")


def test_kept_images_budget_without_posix_memory_is_512_mb(monkeypatch):
    monkeypatch.delenv("CLIPALIGN_KEPT_IMAGES_GB", raising=False)

    def no_sysconf(name):
        raise ValueError(f"unrecognized configuration name {name}")
    monkeypatch.setattr(image_sets.os, "sysconf", no_sysconf)
    assert image_sets.kept_images_budget() == 512 * 2**20
