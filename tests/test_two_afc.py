"""2AFC similarity: the score, the reference panel, the embedded set and the BAPPS / NIGHTS loaders."""
from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from clipalign_utils.data.bapps import load_bapps
from clipalign_utils.data.image_sets import ArrayImages, FileImages
from clipalign_utils.data.nights import load_nights
from clipalign_utils.data.two_afc import TwoAFCData, load_two_afc
from clipalign_utils.data.two_afc_embedded import (
    PANEL,
    TRAINING_TEXTURE_PHOTOS,
    TWO_AFC_PHOTOS,
    make_embedded_two_afc,
)
from clipalign_utils.errors import DatasetError, ParameterError
from clipalign_utils.metrics.two_afc import (
    TABLE_COLUMNS,
    panel_agreement,
    panel_p,
    two_afc_ceiling,
    two_afc_score,
    two_afc_scores,
    two_afc_table,
)
from helpers import fake_run


# ----------------------------------------------------------------------------------- the score
def test_score_per_triplet_by_hand():
    d0 = [0.1, 0.5, 0.3, 0.2, 0.4, 0.7]
    d1 = [0.2, 0.4, 0.3, 0.2, 0.1, 0.9]
    p = [0.0, 1.0, 0.6, 0.2, 0.8, 0.4]
    # p0 closer & nobody chose p1 -> 1; p1 closer & all chose p1 -> 1; ties -> 1/2 whatever p;
    # p1 closer with 80 % for p1 -> 0.8; p0 closer with 40 % for p1 -> 0.6.
    expected = [1.0, 1.0, 0.5, 0.5, 0.8, 0.6]
    np.testing.assert_allclose(two_afc_scores(d0, d1, p), expected)
    assert two_afc_score(d0, d1, p) == pytest.approx(np.mean(expected))


def test_score_disagreeing_model_and_nan_distances():
    np.testing.assert_allclose(two_afc_scores([0.1, 0.9], [0.9, 0.1], [0.75, 0.25]), [0.25, 0.25])
    scores = two_afc_scores([np.nan, 0.1], [0.2, 0.3], [0.5, 0.3])
    assert np.isnan(scores[0]) and scores[1] == pytest.approx(0.7)
    assert two_afc_score([np.nan, 0.1], [0.2, 0.3], [0.5, 0.3]) == pytest.approx(0.7)


def test_score_rejects_p_outside_unit_interval_and_length_mismatch():
    with pytest.raises(ParameterError, match=r"\[0, 1\]"):
        two_afc_scores([0.1], [0.2], [1.5])
    with pytest.raises(ParameterError, match="same length"):
        two_afc_scores([0.1, 0.2], [0.2], [0.5])


def test_ceiling_is_the_majority_share():
    assert two_afc_ceiling([0.0, 1.0, 0.6, 0.2]) == pytest.approx((1 + 1 + 0.6 + 0.8) / 4)


def test_table_overall_and_per_subset_with_bootstrap_interval():
    triplets = pd.DataFrame({
        "subset": ["a", "a", "b", "b", "b"],
        "d0": [0.1, 0.5, 0.3, 0.2, 0.4],
        "d1": [0.2, 0.4, 0.3, 0.1, 0.1],
        "p": [0.0, 1.0, 0.6, 0.2, 0.8],
    })
    table = two_afc_table(triplets, n_boot=200, seed=1)
    assert list(table.columns) == TABLE_COLUMNS == ["subset", "score", "score_lo", "score_hi", "n_triplets"]
    assert table["subset"].tolist() == ["all", "a", "b"]
    scores = dict(zip(table["subset"], table["score"]))
    assert scores["a"] == pytest.approx(1.0)
    assert scores["b"] == pytest.approx((0.5 + 0.2 + 0.8) / 3)
    assert scores["all"] == pytest.approx((1 + 1 + 0.5 + 0.2 + 0.8) / 5)
    assert table["n_triplets"].tolist() == [5, 2, 3]
    for row in table.itertuples():
        assert row.score_lo <= row.score + 1e-12 and row.score <= row.score_hi + 1e-12
    a = table[table["subset"] == "a"].iloc[0]
    assert a.score_lo == a.score_hi == 1.0  # every resample of two perfect triplets scores 1
    with pytest.raises(ParameterError, match="d0_col"):
        two_afc_table(triplets.drop(columns="d0"))


def test_triplets_sharing_a_reference_are_resampled_whole():
    """The embedded set's references each have many triplets (an audit: they were resampled one by one, though
    IQA resamples references): the interval draws whole references; a set whose references are each one
    triplet's (BAPPS, NIGHTS) keeps the triplet draw, bit for bit."""
    from clipalign_utils.metrics.stats import bootstrap_ci_grouped, bootstrap_mean_ci

    triplets = pd.DataFrame({
        "subset": ["a", "a", "a", "b", "b", "b"],
        "reference": ["r1", "r1", "r2", "r3", "r3", "r3"],
        "d0": [0.1, 0.5, 0.3, 0.2, 0.4, 0.1],
        "d1": [0.2, 0.4, 0.3, 0.1, 0.1, 0.3],
        "p": [0.0, 1.0, 0.6, 0.2, 0.8, 0.5],
    })
    scores = np.array([1.0, 1.0, 0.5, 0.2, 0.8, 0.5])
    table = two_afc_table(triplets, n_boot=300, seed=3).set_index("subset")
    expected = bootstrap_ci_grouped(triplets["reference"].to_numpy(), lambda rows: scores[rows].mean(), n_boot=300,
                                    seed=3)
    assert (table.loc["all", "score_lo"], table.loc["all", "score_hi"]) == pytest.approx(expected)
    # one reference: every resample is it, no spread, so no interval (not one of no width)
    assert table.loc["b", "score"] == pytest.approx(0.5) and table.loc["b", ["score_lo", "score_hi"]].isna().all()
    alone = two_afc_table(triplets.assign(reference=range(6)), n_boot=300, seed=3).set_index("subset")
    assert (alone.loc["all", "score_lo"], alone.loc["all", "score_hi"]) == bootstrap_mean_ci(scores, n_boot=300, seed=3)


# ------------------------------------------------------------------------------------ the panel
def test_panel_p_and_agreement_by_hand():
    choices = np.array([[1, 1, 1], [0, 0, 1], [1, 0, 0.5], [0, 0, 0]], dtype=float)
    np.testing.assert_allclose(panel_p(choices), [1.0, 1 / 3, 0.5, 0.0])
    summary = panel_agreement(choices, ["a", "b", "c"])
    # pairs (a,b): 1,1,0,1 -> 0.75; (a,c): 1,0,0.5,1 -> 0.625; (b,c): 1,0,0.5,1 -> 0.625
    pairwise = dict(zip(zip(summary["pairwise"]["member_a"], summary["pairwise"]["member_b"]),
                        summary["pairwise"]["agreement"]))
    assert pairwise == pytest.approx({("a", "b"): 0.75, ("a", "c"): 0.625, ("b", "c"): 0.625})
    assert summary["pairwise_agreement"] == pytest.approx((0.75 + 0.625 + 0.625) / 3)
    assert summary["unanimous_fraction"] == pytest.approx(0.5)
    assert summary["ceiling"] == pytest.approx((1 + 2 / 3 + 0.5 + 1) / 4)
    assert summary["n_members"] == 3 and summary["n_triplets"] == 4
    with pytest.raises(ParameterError):
        panel_agreement(np.array([[0.3, 1.0]]))


# ------------------------------------------------------------------------------- embedded set
SMALL = dict(image_size=32, photos=("chelsea", "camera"), n_world=1, n_per_reference=4)


def test_embedded_set_is_deterministic_and_seed_dependent():
    first = make_embedded_two_afc(seed=3, **SMALL)
    again = make_embedded_two_afc(seed=3, **SMALL)
    other = make_embedded_two_afc(seed=4, **SMALL)
    for name in ("ref", "p0", "p1"):
        np.testing.assert_array_equal(getattr(first, name), getattr(again, name))
    pd.testing.assert_frame_equal(first.triplets, again.triplets)
    assert not (np.array_equal(first.p0, other.p0) and np.array_equal(first.p1, other.p1))
    assert len(first.triplets) == 3 * 4
    assert first.ref.dtype == first.p0.dtype == first.p1.dtype == np.uint8
    assert first.ref.shape == first.p0.shape == first.p1.shape == (12, 32, 32, 3)


def test_embedded_triplets_pair_different_damage_and_vote_consistently():
    built = make_embedded_two_afc(seed=0, **SMALL)
    t = built.triplets
    assert (t["distortion0"] != t["distortion1"]).all()
    assert set(t["subset"]) == {"photo", "world"}
    choices = t[[f"choice_{m}" for m in built.panel]].to_numpy()
    np.testing.assert_allclose(t["p"], choices.mean(axis=1))
    assert t["p"].between(0, 1).all()
    assert not any(np.array_equal(a, b) for a, b in zip(built.p0, built.p1))


def test_embedded_p0_p1_order_is_random_and_kept_pairs_are_the_closest_in_strength():
    from clipalign_utils.data.distortions import DISTORTIONS
    from clipalign_utils.data.two_afc_embedded import panel_distances

    small = dict(image_size=32, photos=("chelsea",), n_world=1, seed=0)
    every = make_embedded_two_afc(n_per_reference=100, **small)  # all 28 pairs of each reference's 8 variants
    t = every.triplets
    order = list(DISTORTIONS)
    first_earlier = t["distortion0"].map(order.index) < t["distortion1"].map(order.index)
    assert 0.25 < first_earlier.mean() < 0.75  # p0/p1 swapped at random
    # Each variant's strength (mean z-scored panel distance over all variants), as the set computes it.
    variants = {}
    for i, row in t.iterrows():
        variants[row["reference"], row["distortion0"]] = (every.ref[i], every.p0[i])
        variants[row["reference"], row["distortion1"]] = (every.ref[i], every.p1[i])
    keys = sorted(variants)
    refs = np.stack([variants[k][0] for k in keys])
    d = panel_distances(refs, np.stack([variants[k][1] for k in keys]), np.arange(len(keys)), every.observer_scale)
    z = ((d - d.mean(axis=0)) / d.std(axis=0)).mean(axis=1)
    strength = dict(zip(keys, z))
    gap = lambda frame: (frame["reference"], abs(frame.apply(
        lambda r: strength[r["reference"], r["distortion0"]] - strength[r["reference"], r["distortion1"]], axis=1)))
    kept = make_embedded_two_afc(n_per_reference=3, **small).triplets
    for reference in kept["reference"].unique():
        all_gaps = np.sort(gap(t[t["reference"] == reference])[1].to_numpy())
        kept_gaps = gap(kept[kept["reference"] == reference])[1].to_numpy()
        assert len(kept_gaps) == 3 and kept_gaps.max() <= all_gaps[2] + 1e-9, (reference, kept_gaps, all_gaps[:4])


def test_embedded_photos_exclude_the_world_training_textures():
    assert set(TRAINING_TEXTURE_PHOTOS) == {"brick", "grass", "gravel"}
    assert not set(TWO_AFC_PHOTOS) & set(TRAINING_TEXTURE_PHOTOS)
    with pytest.raises(ParameterError, match=r"^photo \['brick'\] is one of the world's training textures"):
        make_embedded_two_afc(photos=("brick",), n_world=0)


@pytest.fixture(scope="module")
def embedded():
    start_wall, start_cpu = time.perf_counter(), time.process_time()
    data = load_two_afc("embedded", None, image_size=32, seed=0)
    wall, cpu = time.perf_counter() - start_wall, time.process_time() - start_cpu
    print(f"\nembedded 2AFC set: {len(data)} triplets in {wall:.1f} s wall, {cpu:.1f} s CPU")
    return data


def test_default_embedded_set_size_images_and_panel_agreement(embedded):
    assert embedded.split is None and embedded.protocol is None  # one split, every triplet: no choice to name
    assert isinstance(embedded, TwoAFCData)
    assert 200 <= len(embedded) <= 400
    for images in (embedded.ref, embedded.p0, embedded.p1):
        assert isinstance(images, ArrayImages) and len(images) == len(embedded)
    assert embedded.panel == PANEL
    assert "not people" in embedded.ground_truth and not embedded.judged_by_people
    assert {"subset", "p", "distortion0", "level0", "distortion1", "level1"} <= set(embedded.triplets.columns)
    summary = panel_agreement(embedded.panel_choices(), embedded.panel)
    for key in ("pairwise_agreement", "unanimous_fraction", "ceiling"):
        assert 0.0 <= summary[key] <= 1.0
    assert summary["ceiling"] >= 0.5
    print(f"panel: pairwise agreement {summary['pairwise_agreement']:.3f}, unanimous "
          f"{summary['unanimous_fraction']:.3f}, ceiling {summary['ceiling']:.3f}")
    ref, p0, p1 = embedded.images([0, 1])
    assert ref.shape == p0.shape == p1.shape == (2, 32, 32, 3)


# ----------------------------------------------------------------------------------- BAPPS
def _png(path, value):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), (value, value, value)).save(path)


def _bapps(root, split="val", subsets=("traditional", "cnn"), n=3):
    judges = {}
    for subset in subsets:
        for k in range(n):
            stem = f"{k:06d}"
            folder = root / "2afc" / split / subset
            for part, value in (("ref", 100), ("p0", 90 + k), ("p1", 120 + k)):
                _png(folder / part / f"{stem}.png", value)
            (folder / "judge").mkdir(parents=True, exist_ok=True)
            p = round(0.2 * k + (0.1 if subset == "cnn" else 0.0), 2)
            np.save(folder / "judge" / f"{stem}.npy", np.array([p], dtype=np.float32))
            judges[(subset, stem)] = p
    return judges


@pytest.mark.parametrize("as_2afc", [False, True])
def test_bapps_reads_the_official_layout(tmp_path, as_2afc):
    judges = _bapps(tmp_path)
    table = load_bapps(tmp_path / "2afc" if as_2afc else tmp_path, "val")
    assert table["subset"].tolist() == ["cnn"] * 3 + ["traditional"] * 3
    for row in table.itertuples():
        assert row.p == pytest.approx(judges[(row.subset, row.id)])
        assert row.ref_path.endswith(f"{row.subset}/ref/{row.id}.png")
        assert row.p0_path.endswith(f"{row.subset}/p0/{row.id}.png")
        assert row.p1_path.endswith(f"{row.subset}/p1/{row.id}.png")



def test_bapps_stray_files_are_not_triplets(tmp_path):
    # A copy that passed through Windows or a Mac: Thumbs.db among the images, a readme beside the subsets,
    # a __MACOSX folder as a subset, AppleDouble ._ files in a part.
    judges = _bapps(tmp_path)
    cnn = tmp_path / "2afc" / "val" / "cnn"
    (cnn / "ref" / "Thumbs.db").write_bytes(b"thumbnails")
    (cnn / "judge" / "readme.txt").write_text("fraction choosing p1")
    (cnn / "p0" / "._000000.png").write_bytes(b"\x00\x05\x16\x07")
    (tmp_path / "2afc" / "val" / "readme.txt").write_text("6 subsets")
    (tmp_path / "2afc" / "val" / "__MACOSX" / "cnn").mkdir(parents=True)
    table = load_bapps(tmp_path, "val")
    assert table["subset"].tolist() == ["cnn"] * 3 + ["traditional"] * 3
    assert sorted(zip(table["subset"], table["id"])) == sorted(judges)


def test_bapps_through_load_two_afc(tmp_path):
    _bapps(tmp_path, split="train", subsets=("mix",), n=2)
    data = load_two_afc("bapps", str(tmp_path), split="train", image_size=16)
    assert data.name == "bapps" and data.split == "train" and data.protocol is None and data.judged_by_people
    assert isinstance(data.p0, FileImages) and len(data) == 2
    ref, p0, p1 = data.images([1])
    assert ref.shape == (1, 16, 16, 3) and p1[0, 0, 0, 0] == 121
    with pytest.raises(DatasetError, match="val"):  # the default split, absent here
        load_two_afc("bapps", str(tmp_path))


def test_bapps_missing_file_is_named(tmp_path):
    _bapps(tmp_path)
    missing = tmp_path / "2afc" / "val" / "cnn" / "p1" / "000001.png"
    missing.unlink()
    with pytest.raises(DatasetError, match=str(missing)):
        load_bapps(tmp_path)
    (tmp_path / "2afc" / "val" / "cnn" / "judge" / "000002.npy").unlink()
    with pytest.raises(DatasetError, match="similarity_root"):
        load_two_afc("bapps", str(tmp_path))


@pytest.mark.parametrize("judge", [np.array([1.5]), np.array([-0.1]), np.array([0.2, 0.3]), np.array([np.nan])])
def test_bapps_bad_judge_is_named(tmp_path, judge):
    _bapps(tmp_path, subsets=("traditional",), n=2)
    path = tmp_path / "2afc" / "val" / "traditional" / "judge" / "000001.npy"
    np.save(path, judge)
    with pytest.raises(DatasetError, match=str(path)):
        load_bapps(tmp_path)


def test_bapps_unreadable_judge_is_named(tmp_path):
    _bapps(tmp_path, subsets=("traditional",), n=1)
    path = tmp_path / "2afc" / "val" / "traditional" / "judge" / "000000.npy"
    path.write_text("not numpy")
    with pytest.raises(DatasetError, match=str(path)):
        load_bapps(tmp_path)
    path.write_bytes(b"\x80\x04garbage")  # np.load would call it pickled data, and blame allow_pickle
    with pytest.raises(DatasetError, match=rf"^{path} is not a \.npy file \(no NumPy header\): replace it"):
        load_bapps(tmp_path)
    with pytest.raises(ParameterError, match=r"^similarity_split='test': BAPPS has the splits train, val"):
        load_bapps(tmp_path, "test")


# ----------------------------------------------------------------------------------- NIGHTS
# Columns reordered against the official id,left_vote,right_vote,votes,ref_path,left_path,right_path,
# split,is_imagenet, with extra columns (prompt, category) mixed in.
NIGHTS_HEADER = "right_path,prompt,split,votes,id,ref_path,left_vote,category,right_vote,left_path,is_imagenet"


def _nights(parent, rows, header=NIGHTS_HEADER):
    """rows: (id, left_vote, right_vote, votes, split, is_imagenet); images in the official layout."""
    folder = parent / "nights"
    lines = [header]
    for k, (tid, left, right, votes, split, imagenet) in enumerate(rows):
        d, f = f"{k // 2:03d}", f"{k:03d}"
        _png(folder / "ref" / d / f"{f}.png", 100)
        _png(folder / "distort" / d / f"{f}_0.png", 80 + k)
        _png(folder / "distort" / d / f"{f}_1.png", 150 + k)
        values = {"id": tid, "left_vote": left, "right_vote": right, "votes": votes, "split": split,
                  "is_imagenet": imagenet, "ref_path": f"ref/{d}/{f}.png", "left_path": f"distort/{d}/{f}_0.png",
                  "right_path": f"distort/{d}/{f}_1.png", "prompt": "An image of a cat", "category": "cat",
                  "something_else": "x"}
        lines.append(",".join(str(values[name]) for name in header.split(",")))
    (folder / "data.csv").write_text("\n".join(lines) + "\n")
    return folder


NIGHTS_ROWS = [
    (10, 0, 6, 6, "test", "True"),
    (11, 5, 2, 7, "test", "False"),
    (12, 3, 2, 5, "test", "True"),
    (13, 4, 4, 8, "train", "False"),
    (14, 1, 0, 1, "val", "False"),
]


def test_nights_reads_columns_by_name_from_the_parent_folder(tmp_path):
    folder = _nights(tmp_path, NIGHTS_ROWS)
    table = load_nights(tmp_path, "test", "all")  # the parent of nights/
    assert table["id"].tolist() == ["10", "11", "12"]
    np.testing.assert_allclose(table["p"], [6 / 6, 2 / 7, 2 / 5])  # right_vote / votes
    assert table["subset"].tolist() == ["imagenet", "no_imagenet", "imagenet"]
    assert table["p0_path"].iloc[1] == str(folder / "distort" / "000" / "001_0.png")  # left = _0
    assert table["p1_path"].iloc[1] == str(folder / "distort" / "000" / "001_1.png")  # right = _1
    assert table["ref_path"].iloc[2] == str(folder / "ref" / "001" / "002.png")
    assert load_nights(folder, "test")["id"].tolist() == ["10", "11", "12"]  # the folder itself
    assert load_nights(folder / "ref", "train")["id"].tolist() == ["13"]  # its ref/ subfolder


def test_nights_votes6_and_splits(tmp_path):
    _nights(tmp_path, NIGHTS_ROWS)
    assert load_nights(tmp_path, "test", "votes6")["id"].tolist() == ["10", "11"]
    assert load_nights(tmp_path, "val")["p"].tolist() == [0.0]
    data = load_two_afc("nights", str(tmp_path), protocol="votes6", image_size=8)
    assert data.split == "test" and data.protocol == "votes6" and len(data) == 2
    ref, p0, p1 = data.images([0])
    assert p0[0, 0, 0, 0] == 80 and p1[0, 0, 0, 0] == 150


def test_nights_split_all_is_every_row_as_the_authors_score(tmp_path):
    # the paper's authors score every row of data.csv (train, val and test: 20,019 triplets), their
    # normalized-euclidean scales taken over them all
    _nights(tmp_path, NIGHTS_ROWS)
    assert load_nights(tmp_path, "all")["id"].tolist() == ["10", "11", "12", "13", "14"]
    assert load_nights(tmp_path, "all", "votes6")["id"].tolist() == ["10", "11", "13"]
    data = load_two_afc("nights", str(tmp_path), split="all", image_size=8)
    assert data.split == "all" and len(data) == 5
    with pytest.raises(ParameterError, match="similarity_split='every': NIGHTS's splits are train, val, test, or all"):
        load_nights(tmp_path, "every")


def test_nights_votes_given_as_fractions(tmp_path):
    # DreamSim's loader feeds right_vote to the 2AFC formula as is: a share in [0, 1] also works.
    _nights(tmp_path, [(0, 0, 1, 6, "test", "True"), (1, 1, 0, 7, "test", "True"), (2, 0.25, 0.75, 8, "test", 1)])
    np.testing.assert_allclose(load_nights(tmp_path)["p"], [1.0, 0.0, 0.75])


def test_nights_inconsistent_votes_are_named(tmp_path):
    folder = _nights(tmp_path, [(0, 0, 6, 6, "test", "True"), (1, 2, 2, 7, "test", "True")])
    with pytest.raises(DatasetError, match=rf"{folder / 'data.csv'} line 3"):
        load_nights(tmp_path)


@pytest.mark.parametrize("column", ["right_vote", "votes", "left_path", "split"])
def test_nights_csv_without_a_needed_column_is_named(tmp_path, column):
    header = ",".join(name if name != column else "something_else" for name in NIGHTS_HEADER.split(","))
    folder = _nights(tmp_path, NIGHTS_ROWS, header=header)
    with pytest.raises(DatasetError, match=rf"{folder / 'data.csv'} has no column '{column}'"):
        load_nights(tmp_path)


def test_nights_unknown_split_is_named_not_dropped(tmp_path):
    # A row cut short ("tes") used to fall out of every split unseen; " Test " is the test split.
    _nights(tmp_path, [(0, 0, 6, 6, " Test ", "True"), (1, 2, 5, 7, "test", "True")])
    assert load_nights(tmp_path)["id"].tolist() == ["0", "1"]
    folder = _nights(tmp_path, [(0, 0, 6, 6, "test", "True"), (1, 2, 5, 7, "tes", "True")])
    with pytest.raises(DatasetError, match=rf"{folder / 'data.csv'} line 3: split must be one of train, val, "
                                           rf"test.*got 'tes'"):
        load_nights(tmp_path)


def test_nights_missing_image_is_named(tmp_path):
    folder = _nights(tmp_path, NIGHTS_ROWS)
    missing = folder / "distort" / "000" / "001_1.png"
    missing.unlink()
    with pytest.raises(DatasetError, match=str(missing)):
        load_nights(tmp_path)
    with pytest.raises(DatasetError, match="similarity_root"):
        load_two_afc("nights", str(tmp_path))


def test_nights_root_without_csv(tmp_path):
    with pytest.raises(DatasetError, match="data.csv"):
        load_nights(tmp_path)


def test_nights_paths_written_from_the_parent_folder_are_found(tmp_path):
    # A data.csv whose paths start at the folder above (nights/ref/000/000.png, as a copy written from the
    # dataset's parent has them) names the same images.
    folder = _nights(tmp_path, NIGHTS_ROWS[:2])
    csv_path = folder / "data.csv"
    csv_path.write_text("\n".join(["id,left_vote,right_vote,votes,ref_path,left_path,right_path,split,is_imagenet",
                                   "10,0,6,6,nights/ref/000/000.png,nights/distort/000/000_0.png,"
                                   "nights/distort/000/000_1.png,test,True",
                                   "11,5,2,7,nights/ref/000/001.png,nights/distort/000/001_0.png,"
                                   "nights/distort/000/001_1.png,test,False"]) + "\n")
    table = load_nights(folder, "test")
    assert table["ref_path"].tolist() == [str(folder / "ref" / "000" / "000.png"),
                                          str(folder / "ref" / "000" / "001.png")]
    assert table["p0_path"].tolist() == [str(folder / "distort" / "000" / "000_0.png"),
                                         str(folder / "distort" / "000" / "001_0.png")]
    assert table["p1_path"].tolist() == [str(folder / "distort" / "000" / "000_1.png"),
                                         str(folder / "distort" / "000" / "001_1.png")]
    np.testing.assert_allclose(table["p"], [6 / 6, 2 / 7])


# ----------------------------------------------------------------------------------- dispatch
def test_dispatch_rejects_unknown_names_and_missing_roots(tmp_path):
    with pytest.raises(ParameterError, match="similarity_dataset"):
        load_two_afc("tid2013", None)
    with pytest.raises(ParameterError, match="similarity_protocol"):
        load_two_afc("nights", str(tmp_path), protocol="majority")
    with pytest.raises(ParameterError, match="votes6"):
        load_two_afc("bapps", str(tmp_path), protocol="votes6")
    with pytest.raises(ParameterError, match="split"):
        load_two_afc("embedded", None, split="train")
    with pytest.raises(ParameterError, match="split"):
        load_two_afc("nights", str(tmp_path), split="dev")
    for dataset in ("bapps", "nights"):
        with pytest.raises(DatasetError, match="similarity_root"):
            load_two_afc(dataset, None)
        with pytest.raises(DatasetError, match="similarity_root"):
            load_two_afc(dataset, str(tmp_path / "absent"))


# ----------------------------------------------------------------------------------- plots
def test_figures_draw(small_data):  # the small set: the default one is drawn once, for the tests that need it
    from clipalign_utils.plots.two_afc import score_curve, triplet_examples

    table = pd.DataFrame({"checkpoint": ["e0", "e0", "e1", "e1"], "epoch": [0.0, 0.0, 1.0, 1.0],
                          "subset": ["all", "photo", "all", "photo"], "score": [0.55, 0.6, 0.6, 0.62],
                          "score_lo": [0.5, 0.52, 0.55, 0.57], "score_hi": [0.6, 0.66, 0.65, 0.68],
                          "n_triplets": [10, 5, 10, 5]})
    assert score_curve(table, ceiling=0.9) is not None
    ref, p0, p1 = small_data.images([0, 1])
    assert triplet_examples(ref, p0, p1, ["right", "wrong"], suptitle="x") is not None


# ------------------------------------------------------------------------- the similarity step
@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A run of two randomly initialised tiny checkpoints (no training: seconds)."""
    import torch

    from clipalign_utils import checkpoints, models

    run_dir = tmp_path_factory.mktemp("two_afc_run")
    (run_dir / "checkpoints").mkdir()
    for epoch, seed in (("0", 0), ("1", 1)):
        model = models.create_model("tiny", 32, seed=seed)
        torch.save({"state_dict": model.state_dict()}, run_dir / "checkpoints" / f"epoch_{epoch}.pt")
    (run_dir / "params.txt").write_text(f"model: {models.open_clip_name('tiny')}\nforce_image_size: 32\n")
    return checkpoints.discover_run(run_dir)


@pytest.fixture(scope="module")
def small_data():
    built = make_embedded_two_afc(seed=0, **SMALL)
    return TwoAFCData(ArrayImages(built.ref, "r"), ArrayImages(built.p0, "a"), ArrayImages(built.p1, "b"),
                      built.triplets, "embedded", "a panel, not people", "all", "test", built.panel)


STEP_PARAMS = dict(distance="cosine", device="cpu", eval_batch_size=64, n_boot=20, eval_seed=0, layers="final")


def test_step_scores_every_checkpoint_and_picks_examples(tiny_run, small_data):
    from clipalign_utils.steps.similarity import analysis as step, page as step_page

    tables = step.measure(tiny_run, STEP_PARAMS, small_data)
    assert set(tables) == {"two_afc", "two_afc_per_triplet", "two_afc_peak"}
    from clipalign_utils.config import bootstrap_seed
    from clipalign_utils.metrics.peak import mean_peak_test

    peak = tables["two_afc_peak"].iloc[0]
    expected = mean_peak_test(tables["two_afc_per_triplet"], "score", "triplet", n_boot=20,
                              seed=bootstrap_seed(STEP_PARAMS))
    assert peak["distance"] == "cosine" and peak["n_items"] == 12
    assert peak["final_value"] == pytest.approx(tables["two_afc"]["score"].iloc[3])  # epoch_1, subset all
    assert all(peak[k] == pytest.approx(v, nan_ok=True) for k, v in expected.items())
    table = tables["two_afc"]
    assert list(table.columns) == step.CSV_COLUMNS
    assert table["checkpoint"].tolist() == ["epoch_0"] * 3 + ["epoch_1"] * 3
    assert table["subset"].tolist() == ["all", "photo", "world"] * 2
    assert table["score"].between(0, 1).all() and (table["n_triplets"].iloc[:3] == [12, 8, 4]).all()
    assert (tiny_run.run_dir / "cache").is_dir()  # the run's embedding cache
    again = step.measure(tiny_run, STEP_PARAMS, small_data)
    for name in tables:  # from the embedding cache, identical
        pd.testing.assert_frame_equal(tables[name], again[name])

    per_triplet = tables["two_afc_per_triplet"]
    assert list(per_triplet.columns) == step.PER_TRIPLET_COLUMNS and len(per_triplet) == 24
    last = step.scored_triplets(small_data, tables, "epoch_1")
    assert last["triplet"].tolist() == list(range(12)) and set(small_data.triplets.columns) <= set(last.columns)
    overall = step.overall(tables)
    assert last["score"].mean() == pytest.approx(overall["score"].iloc[-1])
    assert step.score_table(tables).columns.tolist() == ["checkpoint", "epoch", "score", "score_lo", "score_hi",
                                                         "n_triplets"]
    examples = step.example_triplets(last, n=2)
    assert set(examples["outcome"]) <= {"right", "wrong"} and len(examples) <= 4
    clear = examples[(examples["p"] - 0.5).abs() >= 0.2]
    assert len(clear) == len(examples)
    right = examples[examples["outcome"] == "right"]
    assert ((right["model_choice"] == 1.0) == (right["p"] > 0.5)).all()
    assert len(step_page.example_titles(examples)) == len(examples)
    figures = step_page.example_figures(small_data, tables, seed=0)
    assert set(figures) <= {"two_afc_examples_first", "two_afc_examples_last"}
    if "two_afc_examples_first" in figures:
        assert figures["two_afc_examples_first"]._suptitle.get_text() == "first checkpoint (epoch 0)"  # once
    assert step_page.curve_figure(small_data, tables).axes[0].get_title() == \
        "2AFC agreement with embedded judges (cosine distance)"
    import matplotlib.pyplot as plt

    plt.close("all")


def test_every_layer_chooses_as_the_authors_per_layer_code_measures(tiny_run, small_data):
    """layers=all: each block's d0 and d1 by hand from its whole outputs, as the authors' NIGHTS code computes
    them (per channel, the mean over tokens of the squared difference, divided by its mean over both candidates
    and every triplet; the root of the mean over channels), then scored; ``final`` is two_afc.csv's score."""
    from clipalign_utils.encoder import run_encoder
    from clipalign_utils.metrics.two_afc import two_afc_scores
    from clipalign_utils.steps.similarity import analysis as step, page as step_page

    params = {**STEP_PARAMS, "distance": "normalized_euclidean", "layers": "all", "eval_batch_size": 5}
    tables = step.measure(tiny_run, params, small_data)
    layers = tables["two_afc_layers"]
    assert list(layers.columns) == step.LAYER_COLUMNS
    blocks = ["stem", "layer1", "layer2", "layer3", "layer4"]
    assert layers["layer"].tolist() == (blocks + ["final"]) * 2 and (layers["n_triplets"] == 12).all()
    final = layers[layers["layer"] == "final"]["score"].to_numpy()
    np.testing.assert_allclose(final, step.overall(tables)["score"].to_numpy(), rtol=1e-12)
    p = small_data.triplets["p"].to_numpy()
    for checkpoint in tiny_run.checkpoints:
        encoder = run_encoder(tiny_run, checkpoint, "cpu", 64, None)
        ref, p0, p1 = (encoder.encode_layers(images) for images in (small_data.ref, small_data.p0, small_data.p1))
        for block in blocks:
            d = [((ref[block] - other[block]).astype(float) ** 2).mean(axis=1) for other in (p0, p1)]
            means = (d[0].mean(axis=0) + d[1].mean(axis=0)) / 2
            d0, d1 = (np.sqrt(np.where(means > 0, x / np.where(means > 0, means, 1), 0).mean(axis=1)) for x in d)
            row = layers[(layers["checkpoint"] == checkpoint.name) & (layers["layer"] == block)].iloc[0]
            assert row["score"] == pytest.approx(two_afc_scores(d0, d1, p).mean(), abs=1e-12), (checkpoint.name, block)
            assert row["score_lo"] <= row["score"] <= row["score_hi"]
    again = step.measure(tiny_run, params, small_data)  # the block statistics from the cache, identical
    pd.testing.assert_frame_equal(again["two_afc_layers"], layers)
    pd.testing.assert_frame_equal(again["two_afc_best_block"], tables["two_afc_best_block"])
    # the best block against the embedding: on the layers' scores, its interval over the triplets' resamples
    best = tables["two_afc_best_block"].set_index("checkpoint")
    assert list(best.columns) == step.BEST_BLOCK_COLUMNS[1:]
    top = layers[layers["layer"] != "final"].loc[lambda t: t.groupby("checkpoint", sort=False)["score"].idxmax()]
    assert list(best["best_block"]) == list(top["layer"]) and list(best["best_score"]) == list(top["score"])
    np.testing.assert_allclose(best["margin"], top["score"].to_numpy() - final, atol=1e-12)
    assert (best["n_blocks"] == 5).all() and (best["margin_lo"] <= best["margin_hi"]).all()
    best = layers.loc[layers.groupby("checkpoint", sort=False)["score"].idxmax()]
    sentences = step_page.layer_sentences(tables)
    assert sentences[0].startswith(f"epoch 0: most agreeing layer {best['layer'].iloc[0]} (2AFC score "
                                   f"{best['score'].iloc[0]:.3f} [") and f"the image embedding, final, {final[0]:.3f})" in sentences[0]
    assert "minus the embedding, the block chosen again on every resample: " in sentences[0]
    assert len(sentences) == 2
    assert step_page.layer_figure(tables).axes[0].get_title() == "2AFC score of each vision block's output over training"
    assert step_page.layer_figure({}) is None
    assert step_page.layer_sentences({}) == [
        "layers='final': only the image embedding was scored (run with -p layers=all for every block)"]
    import matplotlib.pyplot as plt

    plt.close("all")


def test_notebook_scores_every_layer(smoke_run_copy):
    import json

    from clipalign_utils.orchestration.pipeline import run_step
    from helpers import notebook_text

    # after the IQA step with every layer, as a whole run with -p layers=all does: the block names are then in the
    # cache, and the 2AFC step's first encoding must load the model itself (a README audit found it did not)
    run_step("iqa", smoke_run_copy, "smoke", {"layers": "all"}, progress=False)
    run_step("similarity", smoke_run_copy, "smoke", {"layers": "all"}, progress=False)
    metrics = smoke_run_copy / "metrics"
    layers, two_afc = pd.read_csv(metrics / "two_afc_layers.csv"), pd.read_csv(metrics / "two_afc.csv")
    final = layers[layers["layer"] == "final"].set_index("checkpoint")["score"]
    overall = two_afc[two_afc["subset"] == "all"].set_index("checkpoint")["score"]
    pd.testing.assert_series_equal(final.sort_index(), overall.sort_index(), check_names=False)
    assert len(layers) == 6 * len(overall) and layers["score"].between(0, 1).all()
    assert len(pd.read_csv(metrics / "two_afc_best_block.csv")) == len(overall)
    assert (smoke_run_copy / "figures" / "two_afc_layers.png").stat().st_size > 0
    text = notebook_text(smoke_run_copy / "notebooks" / "07_similarity.ipynb")
    assert "most agreeing layer" in text
    steps = json.loads((smoke_run_copy / "record.json").read_text())["steps"]
    assert steps["similarity"]["parameters"]["layers"] == "all"
    # measured again with the embedding alone, the per-layer table and its figure go
    run_step("similarity", smoke_run_copy, "smoke", {"layers": "final"}, progress=False)
    assert not (metrics / "two_afc_layers.csv").exists() and not (metrics / "two_afc_best_block.csv").exists()
    assert not (smoke_run_copy / "figures" / "two_afc_layers.png").exists()


def test_a_clear_lean_is_symmetric_about_one_half():
    from clipalign_utils.steps.similarity.analysis import leans_clearly

    p = pd.Series([0.3, 0.7, 3.5 / 5, 1.5 / 5, 0.31, 0.69, 0.0, 1.0, 0.5])
    assert abs(0.7 - 0.5) < 0.2  # why |p − ½| ≥ 0.2 left p = 0.7 out
    assert leans_clearly(p).tolist() == [True, True, True, True, False, False, True, True, False]


# --- the page's sentences and figures, from hand-made tables ----------------------------------------------
def _judged(p_choices, name="embedded", panel=("a", "b"), protocol=None, split=None):
    """Five triplets judged by a two-member panel (choices per triplet), or by people (panel=()); the embedded
    set's loader reads no split or protocol."""
    a, b = zip(*p_choices)
    triplets = pd.DataFrame({
        "subset": ["photo", "photo", "world", "world", "world"], "p": [(x + y) / 2 for x, y in p_choices],
        "distortion0": ["gaussian_blur", "jpeg", "mean_shift", "jpeg", "contrast_change"], "level0": [1, 2, 1, 3, 2],
        "distortion1": ["jpeg", "mean_shift", "gaussian_blur", "contrast_change", "jpeg"], "level1": [2, 1, 3, 1, 1],
        "choice_a": a, "choice_b": b})
    return TwoAFCData(None, None, None, triplets, name, "a two-metric panel", protocol, split, panel)


CLEAR = [(0, 0), (1, 1), (0, 1), (1, 1), (0, 0)]  # p = 0, 1, 0.5, 1, 0


def _per_triplet(choices_by_checkpoint):
    rows = []
    for epoch, (name, choices) in enumerate(choices_by_checkpoint.items()):
        for triplet, choice in enumerate(choices):
            rows.append({"checkpoint": name, "epoch": float(epoch), "triplet": triplet, "d0": 1.0 - choice,
                         "d1": float(choice), "model_choice": float(choice), "score": 0.0})
    return {"two_afc_per_triplet": pd.DataFrame(rows)}


def _two_afc(scores=(0.6, 0.7, 0.65)):
    rows = []
    for epoch, score in enumerate(scores):
        rows.append({"checkpoint": f"epoch_{epoch}", "epoch": float(epoch), "dataset": "embedded", "subset": "all",
                     "distance": "cosine", "score": score, "score_lo": score - 0.05, "score_hi": score + 0.05,
                     "n_triplets": 5})
        rows.append({**rows[-1], "subset": "photo", "score": 0.99, "n_triplets": 2})
    return {"two_afc": pd.DataFrame(rows)}


def test_data_judge_and_vote_sentences():
    from types import SimpleNamespace

    from clipalign_utils.steps.similarity import analysis as step, page as step_page

    data = _judged(CLEAR)
    run = SimpleNamespace(checkpoints=[0, 1, 2], model_name="clipalign-tiny")
    assert step_page.data_sentences(run, {"distance": "cosine"}, data) == [
        "3 checkpoints of clipalign-tiny; the embedded set: 5 triplets in subsets photo (2), world (3); "
        "distance: cosine"]
    # a split and a protocol only where the loader read them (NIGHTS both, BAPPS its split)
    nights = _judged(CLEAR, name="nights", panel=(), protocol="votes6", split="test")
    assert step_page.data_sentences(run, {"distance": "cosine"}, nights)[0].startswith(
        "3 checkpoints of clipalign-tiny; dataset NIGHTS (split test, protocol votes6): 5 triplets")
    bapps = _judged(CLEAR, name="bapps", panel=(), split="val")
    assert "dataset BAPPS (split val): 5 triplets" in step_page.data_sentences(run, {"distance": "cosine"}, bapps)[0]
    # pairwise agreement (1 + 1 + 0 + 1 + 1) / 5; unanimous on 4 of 5; ceiling mean(max(p, 1 − p)) = 4.5 / 5
    assert step_page.judge_sentences(data) == [
        "judges: a two-metric panel",
        "panel of 2: pairwise agreement 0.800, unanimous on 80.0% of triplets; ceiling 0.900",
        "these are metrics, not people: a model agreeing with the panel agrees with low-level models of people"]
    assert step.panel_table(data).to_dict("records") == [{"member_a": "a", "member_b": "b", "agreement": 0.8}]
    assert step_page.vote_sentences(data) == ["share of judges choosing p1: 0: 2, 0.5: 1, 1: 2"]
    people = _judged(CLEAR, name="nights", panel=())
    assert step_page.judge_sentences(people) == ["judges: a two-metric panel",
                                            "ceiling (always choosing the people's majority): 0.900"]
    assert step.panel_table(people).empty


def test_curve_sentences_by_hand():
    from clipalign_utils.steps.similarity import page as step_page

    tables = _two_afc()  # the photo rows (0.99) are not the overall score
    assert step_page.curve_sentences(_judged(CLEAR), tables) == [
        "2AFC score at the first checkpoint (epoch 0): 0.600",
        "peak at epoch 1: 0.700; last checkpoint (epoch 2): 0.650 [0.600, 0.700]; chance 0.5, ceiling 0.900",
        "the last checkpoint closes 38% of the gap from chance to the ceiling"]  # 0.15 / 0.4
    # below chance it closes none (it read "closes -25%"): how far below, as a share of that gap
    assert step_page.curve_sentences(_judged(CLEAR), _two_afc(scores=(0.6, 0.7, 0.4)))[-1] == (
        "the last checkpoint lies below chance, by 25% of the gap from chance to the ceiling")  # 0.1 / 0.4
    split = _judged([(0, 1)] * 5)  # p = ½ everywhere: the ceiling is chance
    assert step_page.curve_sentences(split, tables)[-1] == "the judges are split on every triplet: the ceiling is chance"
    one = _two_afc(scores=(0.65,))  # one checkpoint: no peak to name
    assert step_page.curve_sentences(_judged(CLEAR), one) == [
        "one checkpoint (epoch 0): 2AFC score 0.650 [0.600, 0.700]; chance 0.5, ceiling 0.900; a peak and a decline "
        "need several checkpoints of the run",
        "the last checkpoint closes 38% of the gap from chance to the ceiling"]


def test_early_peak_sentences_read_the_paired_test(tmp_path):
    from clipalign_utils.steps.similarity import page as step_page

    test = {"dataset": "embedded", "distance": "cosine", "early_end": 5 / 3, "n_early": 4, "final_epoch": 5.0,
            "final_value": 0.61, "early_drop": 0.0125, "lo": -0.011, "hi": 0.049, "early_peak_epoch": 1.0,
            "early_peak_value": 0.6225, "n_items": 270}
    scores = pd.DataFrame({"subset": "all", "epoch": [0.0, 1.0, 5.0], "score": [0.5, 0.6225, 0.61]})
    assert step_page.early_peak_sentences({"two_afc": scores, "two_afc_peak": pd.DataFrame([test])}) == [
        "early window: 0 < epoch ≤ 0.333 × 5 = 1.67 (4 checkpoints)",
        "best early 2AFC score 0.623 (epoch 1) − final 0.610 = 0.013, paired 95 % interval [-0.011, 0.049] over "
        "270 triplets: includes 0 — no clear early peak"]
    # the embedded set's triplets share references, which the test resamples whole (two_afc_peak's n_groups)
    grouped = pd.DataFrame([{**test, "n_groups": 15}])
    assert step_page.early_peak_sentences({"two_afc": scores, "two_afc_peak": grouped})[1].endswith(
        "over 270 triplets (their 15 references resampled whole): includes 0 — no clear early peak")
    # all of one reference: a bootstrap over it has no spread (an audit read IQA's "[-0.467, -0.467] over 1
    # references: below 0"), so no interval and no verdict
    one = pd.DataFrame([{**test, "n_groups": 1, "lo": np.nan, "hi": np.nan}])
    assert step_page.early_peak_sentences({"two_afc": scores, "two_afc_peak": one})[1].endswith(
        "over 270 triplets (their 1 reference resampled whole): no interval (one reference), so no verdict on an "
        "early peak")
    # every checkpoint's interval holds chance: the early checkpoints score higher, no peak to read
    at_chance = scores.assign(score_lo=[0.4, 0.45, 0.44], score_hi=[0.6, 0.7, 0.66])
    above = pd.DataFrame([{**test, "lo": 0.002, "hi": 0.03}])
    assert step_page.early_peak_sentences({"two_afc": at_chance, "two_afc_peak": above})[1].endswith(
        "270 triplets: above 0 — the best early checkpoint scores higher than the final one; but the 2AFC score is "
        "not distinguishable from chance (0.5) at any checkpoint (every checkpoint's interval contains it): there is "
        "no peak to read")
    assert step_page.early_peak_sentences({"two_afc": at_chance.assign(score_lo=[0.4, 0.55, 0.44]),
                                           "two_afc_peak": above})[1].endswith("above 0 — an early peak and a decline")


def test_iqa_sentences_by_hand(tmp_path):
    from clipalign_utils.steps.similarity import page as step_page

    run, tables = fake_run(tmp_path), _two_afc()
    assert step_page.iqa_sentences(run, {"distance": "cosine"}, tables) == [
        "no iqa.csv in this run: run the iqa step to compare the two curves"]
    (tmp_path / "metrics").mkdir()
    pd.DataFrame({"epoch": [0.0, 1.0, 2.0, 0.0, 1.0], "distortion": ["all", "all", "all", "blur", "all"],
                  "distance": ["cosine"] * 4 + ["euclidean"], "srcc": [0.3, 0.5, 0.4, 0.9, 0.9]}
                 ).to_csv(tmp_path / "metrics" / "iqa.csv", index=False)
    assert step_page.iqa_sentences(run, {"distance": "cosine"}, tables) == [
        "IQA SRCC peaks at epoch 1 (0.500) and ends 0.100 below it; the 2AFC score peaks at epoch 1 (0.700) and "
        "ends 0.050 below it: the same checkpoint"]
    assert step_page.iqa_sentences(run, {"distance": "euclidean"}, _two_afc((0.6, 0.65, 0.7)))[0].endswith(
        "the 2AFC score peaks at epoch 2 (0.700) and ends 0.000 below it: different checkpoints")
    assert step_page.iqa_sentences(run, {"distance": "normalized_euclidean"}, tables) == [
        "iqa.csv holds no normalized_euclidean rows: run the iqa step with this distance to compare"]
    assert step_page.iqa_sentences(run, {"distance": "cosine"}, _two_afc((0.6,))) == []  # one checkpoint: no peaks


def test_example_checkpoints_and_sentences_by_hand():
    from clipalign_utils.steps.similarity import analysis as step, page as step_page

    data = _judged(CLEAR)
    # epoch_0 picks every clear majority; epoch_2 goes against it on triplets 0, 3 and 4 (2 is a split vote)
    tables = _per_triplet({"epoch_0": [0, 1, 0.5, 1, 0], "epoch_1": [1, 1, 1, 1, 1], "epoch_2": [1, 1, 0, 0, 1]})
    assert step.example_checkpoints(tables) == {"first": "epoch_0", "last": "epoch_2"}
    assert step.against_panel(step.scored_triplets(data, tables, "epoch_2"))["triplet"].tolist() == [0, 3, 4]
    assert step_page.example_sentences(data, tables) == [
        "first checkpoint: 0 clear triplets chosen against the panel; damage most often involved: ",
        "last checkpoint: 3 clear triplets chosen against the panel; damage most often involved: jpeg (3), "
        "contrast change (2), gaussian blur (1)"]
    people = _judged(CLEAR, name="nights", panel=())
    assert step_page.example_sentences(people, tables) == []  # no kinds of damage to count for people
    split = _judged([(0, 1)] * 5)
    assert step_page.example_sentences(split, tables) == ["epoch_0: no triplet with a clear majority",
                                                     "epoch_2: no triplet with a clear majority"]
    assert step_page.example_figures(split, tables, seed=0) == {}
    one = _per_triplet({"epoch_0": [0, 1, 0.5, 1, 0]})
    assert step.example_checkpoints(one) == {"first": "epoch_0"}


def test_triplets_figure_labels(small_data):
    from clipalign_utils.steps.similarity import page as step_page

    fig = step_page.triplets_figure(small_data, seed=0)
    labels = [text.get_text() for ax in fig.axes for text in ax.texts]
    shown = small_data.triplets.sample(n=4, random_state=0)
    assert labels == [f"p(p1 closer) = {row.p:.2f}\n{step_page.damage(row)}" for row in shown.itertuples()]
    assert fig._suptitle.get_text() == "embedded triplets"
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_real_triplets_follow_iqa_resize(tmp_path):
    """A 32 px model sees BAPPS's 64 px images as native-resolution patches: 2 × 2 per image, the
    triplet's distances the means over patches at the same positions."""
    from clipalign_utils.metrics.iqa import pair_distances

    rng = np.random.default_rng(0)
    for part in ("ref", "p0", "p1", "judge"):
        (tmp_path / "2afc" / "val" / "traditional" / part).mkdir(parents=True)
    for i in range(3):
        for part in ("ref", "p0", "p1"):
            Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(
                tmp_path / "2afc" / "val" / "traditional" / part / f"{i:06d}.png")
        np.save(tmp_path / "2afc" / "val" / "traditional" / "judge" / f"{i:06d}.npy", np.array([0.5]))
    data = load_two_afc("bapps", str(tmp_path), image_size=32, resize="auto")
    assert data.patches_per_image == 4 and len(data.ref) == 12
    cropped = load_two_afc("bapps", str(tmp_path), image_size=32, resize="crop")
    assert cropped.patches_per_image == 1 and len(cropped.ref) == 3
    features = np.arange(12, dtype=float)[:, None]
    np.testing.assert_allclose(pair_distances(features, features + 1, [0, 1, 2], [0, 1, 2], "euclidean", 4), 1.0)


@pytest.mark.parametrize("patches", [1, 3])
def test_both_candidates_are_measured_with_one_normalized_euclidean_metric(patches):
    """d0 and d1 share one per-dimension scale (over the set's 2N pairs, by hand below): a candidate identical to
    the other is a tie, and swapping p0 and p1 of some triplets swaps their distances and nothing else (with a
    scale per candidate set, the audit's example gave d0 = 1.0488 and d1 = 1.0190 for identical candidates)."""
    from types import SimpleNamespace

    from clipalign_utils.steps.similarity.analysis import triplet_distances

    rng = np.random.default_rng(0)
    n, dims = 6, 5
    ref, p0, p1 = (rng.normal(size=(n * patches, dims)) * [1, 2, 3, 4, 5] for _ in range(3))
    p1[:patches] = p0[:patches]  # triplet 0: the candidates are the same image
    encoder = SimpleNamespace(encode_images=lambda images: images)
    data = type("Data", (), {"ref": ref, "p0": p0, "p1": p1, "patches_per_image": patches,
                             "__len__": lambda self: n})()
    d0, d1 = triplet_distances(encoder, data, "normalized_euclidean")
    squared = np.concatenate([(ref - p0) ** 2, (ref - p1) ** 2])
    scale = squared.mean(axis=0)
    by_hand = np.sqrt((squared / scale).mean(axis=1)).reshape(2 * n, patches).mean(axis=1)
    np.testing.assert_allclose(np.concatenate([d0, d1]), by_hand, rtol=1e-12)
    assert d0[0] == d1[0]
    swap = np.repeat(np.arange(n) % 2 == 1, patches)[:, None]
    data.p0, data.p1 = np.where(swap, p1, p0), np.where(swap, p0, p1)
    e0, e1 = triplet_distances(encoder, data, "normalized_euclidean")
    odd = np.arange(n) % 2 == 1
    np.testing.assert_allclose(e0, np.where(odd, d1, d0), rtol=1e-12)
    np.testing.assert_allclose(e1, np.where(odd, d0, d1), rtol=1e-12)


def test_reading_the_result_follows_who_judged():
    """The page's closing words were the embedded set's, whatever set it read (a real-data audit: a NIGHTS
    page ended by telling the reader to run NIGHTS)."""
    from types import SimpleNamespace

    from clipalign_utils.steps.similarity.page import reading_sentences

    params = {"similarity_protocol": "all", "iqa_resize": "auto"}
    embedded = reading_sentences(SimpleNamespace(panel=("ssim", "mdsi"), name="embedded"), params)
    assert embedded[0].startswith("on the embedded set the score measures agreement with a panel of low-level metrics")
    assert "-p similarity_dataset=nights" in embedded[1]
    nights = reading_sentences(SimpleNamespace(panel=(), name="nights"), params)
    assert nights[0].startswith("on NIGHTS the score is agreement with people's votes on mid-level variations")
    assert nights[1].startswith("protocol `all`: every triplet of the split")
    assert "the triplets with at least 6 votes" in reading_sentences(
        SimpleNamespace(panel=(), name="nights"), {**params, "similarity_protocol": "votes6"})[1]
    bapps = reading_sentences(SimpleNamespace(panel=(), name="bapps"), params)
    assert bapps[0].startswith("on BAPPS the score is agreement with people's 2AFC judgments")
    assert not any("similarity_dataset=nights" in line or "panel" in line for line in nights + bapps)
    assert nights[-1] == bapps[-1] == (  # (no resolved mode on the data: what was asked, not a guess)
        "the model sees the images as the IQA step does (`iqa_resize=auto`): as the IQA step resolves it for the "
        "model's input size")


def test_the_best_block_is_compared_over_the_triplets_every_layer_decides():
    """A review: each layer's mean was over its own decided triplets, so a layer with a zero vector's undecided
    triplets was compared with the others over fewer items."""
    import warnings

    from clipalign_utils.steps.similarity.analysis import best_block

    triplets = pd.DataFrame({"p": [1.0, 1.0, 0.0, 0.0]})  # judges: p1 nearer in the first two, p0 in the others
    right, wrong = (np.array([1.0, 1.0, 0.0, 0.0]), np.array([0.0, 0.0, 1.0, 1.0]))  # d0, d1 choosing right
    layers = {"stem": (np.array([1.0, np.nan, 0.0, 1.0]), np.array([0.0, 0.0, 1.0, 0.0])),  # right, ?, right, wrong
              "final": (np.array([1.0, 0.0, 0.0, 0.0]), np.array([0.0, 1.0, 1.0, 1.0]))}  # right, wrong, right, right
    # each layer's own score, as two_afc_layers.csv has it: stem 2/3 of its three, final 3/4
    test = best_block(layers, triplets, [2 / 3, 3 / 4], n_boot=50, seed=0)
    # over the three triplets both decide: stem 2/3, final 3/3 (not 2/3 against 3/4)
    assert (test["best_score"], test["final_score"]) == pytest.approx((2 / 3, 1.0))
    assert test["margin"] == pytest.approx(-1 / 3) and test["n_blocks"] == 1
    every = best_block({"stem": (right, wrong), "final": (right, wrong)}, triplets, [1.0, 1.0], n_boot=50, seed=0)
    assert (every["margin"], every["margin_lo"], every["margin_hi"]) == (0.0, 0.0, 0.0)
    # a block that decides no triplet is out of the test, not every triplet with it (a review: all nan)
    dead = (np.full(4, np.nan), np.full(4, np.nan))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # (nor a warning)
        test = best_block({"stem": dead, "layer1": (right, wrong), "final": (right, wrong)}, triplets,
                          [np.nan, 1.0, 1.0], n_boot=50, seed=0)
    assert (test["best_block"], test["best_score"], test["final_score"], test["n_blocks"]) == ("layer1", 1.0, 1.0, 1)
    assert (test["margin"], test["margin_lo"], test["margin_hi"]) == (0.0, 0.0, 0.0)
    nothing = best_block({"stem": dead, "final": dead}, triplets, [np.nan, np.nan], n_boot=50, seed=0)
    assert nothing["n_blocks"] == 0 and np.isnan(nothing["margin"])


def test_a_judges_choice_counts_a_tie_as_one_half():
    from clipalign_utils.data.two_afc_embedded import choices_from_distances as member_choices

    # d0 > d1: p1 closer (1); equal: tie (½); d0 < d1: p0 closer (0)
    np.testing.assert_array_equal(member_choices([3.0, 2.0, 1.0], [1.0, 2.0, 3.0]), [1.0, 0.5, 0.0])


def test_two_afc_table_interval_uses_its_level():
    from clipalign_utils.metrics.two_afc import two_afc_table

    scores = np.array([1.0, 0.0, 0.5, 1.0, 0.8, 0.2, 0.9, 0.4])
    # d1 < d0 always: each triplet's score is p
    triplets = pd.DataFrame({"d0": 2.0, "d1": 1.0, "p": scores, "subset": "x"})
    table = two_afc_table(triplets, n_boot=200, seed=3, level=0.5)
    rows = np.random.default_rng(3).integers(0, scores.size, size=(200, scores.size))
    expected = np.quantile(scores[rows].mean(axis=1), [0.25, 0.75])
    assert table.loc[0, ["score_lo", "score_hi"]].tolist() == pytest.approx(expected.tolist())


def test_score_triplets_records_the_models_choice_and_score_by_hand():
    from clipalign_utils.steps.similarity.analysis import against_panel, score_triplets

    triplets = pd.DataFrame({"p": [0.9, 0.9, 0.2, 0.1]})
    # p0 closer (credit 1 − p = 0.1), p1 closer (credit p = 0.9), a tie (½), p1 closer against a clear p0 majority
    scored = score_triplets(triplets, d0=[0.1, 0.5, 0.3, 0.6], d1=[0.2, 0.4, 0.3, 0.2])
    assert scored["model_choice"].tolist() == [0.0, 1.0, 0.5, 1.0]
    assert scored["score"].tolist() == pytest.approx([0.1, 0.9, 0.5, 0.1])
    # the model goes against a clear majority on triplets 0 and 3 (the tie is no choice)
    assert against_panel(scored).index.tolist() == [0, 3]


def test_a_distance_that_is_not_finite_is_no_choice_neither_right_nor_wrong():
    from clipalign_utils.data.two_afc_embedded import choices_from_distances
    from clipalign_utils.steps.similarity.analysis import against_panel, example_triplets, score_triplets

    # nan or inf on either side: no decision (nan), as the score is nan; it had read as a tie (0.5)
    np.testing.assert_array_equal(choices_from_distances([np.nan, 1.0, np.inf, 2.0], [1.0, np.nan, 1.0, 1.0]),
                                  [np.nan, np.nan, np.nan, 1.0])
    triplets = pd.DataFrame({"p": [0.9, 0.1, 0.9, 0.1]})
    # triplet 0: no decision against a clear p1 majority; 1: p1 chosen against a clear p0 majority (wrong);
    # 2: p1 chosen with the majority (right); 3: no decision
    scored = score_triplets(triplets, d0=[np.nan, 0.5, 0.5, 0.2], d1=[0.2, 0.4, 0.4, np.nan])
    assert np.isnan(scored["model_choice"][[0, 3]]).all() and np.isnan(scored["score"][[0, 3]]).all()
    assert against_panel(scored).index.tolist() == [1]
    examples = example_triplets(scored.assign(triplet=range(4)), n=3, seed=0)
    assert examples[["triplet", "outcome"]].values.tolist() == [[2, "right"], [1, "wrong"]]


def test_a_panel_member_without_a_finite_distance_still_leaves_a_vote_panel_agreement_reads(monkeypatch):
    """choices_from_distances also makes the panel's choices (p = their mean): a member whose distance is nan on
    one image (a metric's 0/0 on a flat crop) would give a nan choice, p would turn nan and panel_agreement (which
    takes choices "as in choices_from_distances") refuse the whole set. The member's vote stays a tie."""
    from clipalign_utils.data import two_afc_embedded
    from clipalign_utils.metrics.two_afc import panel_agreement

    original = two_afc_embedded.PANEL_DISTANCES["mdsi"]

    def flaky(references, distorted, reference_index, scale):
        distances = original(references, distorted, reference_index, scale)
        distances[0] = np.nan
        return distances

    monkeypatch.setitem(two_afc_embedded.PANEL_DISTANCES, "mdsi", flaky)
    data = two_afc_embedded.make_embedded_two_afc(image_size=32, photos=("chelsea",), n_world=0, n_per_reference=100)
    choices = data.triplets[[f"choice_{member}" for member in data.panel]].to_numpy(dtype=float)
    assert np.isin(choices, (0.0, 0.5, 1.0)).all() and (choices == 0.5).any()
    assert np.isfinite(data.triplets["p"]).all()
    assert panel_agreement(choices, data.panel)["n_triplets"] == len(data.triplets)


# ---- the embedded set's argument checks (an audit): each refused with its one-line reason before any work
def test_panel_distances_refuse_an_unknown_member_a_bad_observer_scale_and_images_too_small_for_the_panel():
    from clipalign_utils.data.two_afc_embedded import panel_distances

    images = np.zeros((1, 16, 16, 3), dtype=np.uint8)
    with pytest.raises(ParameterError, match=r"^unknown panel member \['ssim'\]; allowed: haarpsi, mdsi, vsi, "
                                             r"fsim, ms_gmsd$"):
        panel_distances(images, images, [0], panel=("haarpsi", "ssim"))
    for scale in (0, 2.0, "3"):  # a float or a string is not an integer scale, even where its value would do
        with pytest.raises(ParameterError, match=rf"^observer_scale must be a positive integer, got {scale!r}$"):
            panel_distances(images, images, [0], observer_scale=scale)
    # 16 px × 1 = 16 < 32: HaarPSI and MDSI need 32 px; 16 × 2 = 32 is enough (the bound is inclusive)
    with pytest.raises(ParameterError, match=r"^the panel needs images of at least 32 px after enlarging; "
                                             r"image_size x observer_scale = 16$"):
        panel_distances(images, images, [0], observer_scale=1)
    assert panel_distances(images, images, [0], observer_scale=2, panel=("ms_gmsd",)).shape == (1, 1)


def test_embedded_two_afc_refuses_a_small_or_non_integer_image_size_and_no_pairs_per_reference():
    for size in (15, 32.0):
        with pytest.raises(ParameterError, match=rf"^image_size must be an integer >= 16, got {size!r}$"):
            make_embedded_two_afc(image_size=size, n_world=0)
    for n in (0, 1.0):
        with pytest.raises(ParameterError, match=rf"^n_per_reference must be a positive integer, got {n!r}$"):
            make_embedded_two_afc(n_per_reference=n, n_world=0)
    # 16 px passes the size check (the bound is inclusive): the next check is the one that refuses
    with pytest.raises(ParameterError, match=r"^n_per_reference must be a positive integer, got 0$"):
        make_embedded_two_afc(image_size=16, n_per_reference=0, n_world=0)



def test_a_bapps_page_names_the_dataset_as_its_release_does(tmp_path):
    # "2AFC agreement with bapps judges": the id, where the reader knows the set as BAPPS
    from types import SimpleNamespace

    from clipalign_utils.steps.similarity import page

    _bapps(tmp_path, n=2)
    data = load_two_afc("bapps", str(tmp_path), image_size=16)
    run = SimpleNamespace(checkpoints=[None], model_name="RN50")
    assert page.data_sentences(run, {"distance": "cosine"}, data)[0].startswith("1 checkpoint of RN50; dataset BAPPS ")
    fig = page.triplets_figure(data, seed=0)
    assert fig._suptitle.get_text() == "BAPPS triplets"


def test_the_reading_says_what_auto_resolved_to_for_this_run(tmp_path):
    """A reader review: a ViT-B-32 run at 224 px, where `auto` resolved to `crop` (iqa.csv's iqa_resize column),
    read "a small model sees native-resolution patches by default"; the sentence says what the loader resolved."""
    from types import SimpleNamespace

    from clipalign_utils.data.iqa import resolve_resize
    from clipalign_utils.steps.similarity.page import reading_sentences

    params = {"similarity_protocol": "all", "iqa_resize": "auto"}
    for size, seen in ((224, "each image's shorter side resized to its input and the middle cropped, so a score "
                              "says how it judges the whole scene at its input size"),
                       (64, "native-resolution patches, so a score says how it judges local detail")):
        data = SimpleNamespace(panel=(), name="bapps", resize_mode=resolve_resize("auto", size))
        assert reading_sentences(data, params)[-1] == (
            f"the model sees the images as the IQA step does (`iqa_resize=auto`, here `{data.resize_mode}`): {seen}")
    data = SimpleNamespace(panel=(), name="bapps", resize_mode="resize")
    assert reading_sentences(data, {**params, "iqa_resize": "resize"})[-1] == (
        "the model sees the images as the IQA step does (`iqa_resize=resize`): each whole image squashed to its "
        "input, nothing cut, so a score says how it judges the whole scene at its input size")


def test_a_real_set_keeps_the_resize_mode_it_was_loaded_with(tmp_path):
    from PIL import Image

    from clipalign_utils.data import two_afc

    paths = {}
    for column in ("ref_path", "p0_path", "p1_path"):
        paths[column] = [str(tmp_path / f"{column}.png")]
        Image.new("RGB", (8, 8)).save(paths[column][0])
    table = pd.DataFrame({**paths, "p": [0.5], "subset": ["x"]})
    assert two_afc._file_set("bapps", table, None, "val", 224, "auto").resize_mode == "crop"
    assert two_afc._file_set("bapps", table, None, "val", 64, "auto").resize_mode == "patches"


def test_a_last_checkpoint_whose_interval_holds_chance_is_not_said_to_lie_below_it():
    """A reader review: random weights, the last checkpoint 0.438 [0.278, 0.597], read "lies below chance, by 22%
    of the gap from chance to the ceiling"; every checkpoint's interval holding chance, the score has no peak."""
    from clipalign_utils.steps.similarity import page as step_page

    tables = _two_afc(scores=(0.45, 0.55, 0.44))
    frame = tables["two_afc"]
    frame["score_lo"], frame["score_hi"] = frame["score"] - 0.16, frame["score"] + 0.16
    assert step_page.curve_sentences(_judged(CLEAR), tables)[1:] == [
        "peak at epoch 1: 0.550; last checkpoint (epoch 2): 0.440 [0.280, 0.600]; chance 0.5, ceiling 0.900",
        "the 2AFC score is not distinguishable from chance (0.5) at any checkpoint (every checkpoint's interval "
        "contains it): there is no peak to read",
        "the last checkpoint is not distinguishable from chance: its interval [0.280, 0.600] contains 0.5"]
    # its interval below chance: below, by its share of the gap (as before)
    assert step_page._closure_sentence(-0.25, 0.3, 0.45) == (
        "the last checkpoint lies below chance, by 25% of the gap from chance to the ceiling")


def test_page_7_says_the_iqa_curve_is_reversed_and_a_tie_is_no_late_peak(tmp_path):
    """A reader review: every SRCC interval below 0 read "IQA SRCC peaks at epoch 4 (-0.416)"; and 2AFC scores of
    4/9 at epochs 1 and 4, one 0.4444444444444444 and the other 0.4444444444444445, read "peaks at epoch 4"."""
    from types import SimpleNamespace

    from clipalign_utils.steps.similarity import page as step_page

    iqa = pd.DataFrame({"checkpoint": ["e0", "e1", "e2"], "epoch": [0.0, 1.0, 2.0], "distortion": "all",
                        "distance": "cosine", "srcc": [-0.5, -0.3, -0.4], "srcc_lo": [-0.6, -0.4, -0.5],
                        "srcc_hi": [-0.4, -0.2, -0.3]})
    iqa.to_csv(tmp_path / "iqa.csv", index=False)
    run = SimpleNamespace(layout=SimpleNamespace(table=lambda name: tmp_path / f"{name}.csv"))
    tied = 4 / 9 + 1e-16
    assert tied != 4 / 9
    tables = _two_afc(scores=(0.3, 4 / 9, 0.4, tied))
    assert step_page.iqa_sentences(run, {"distance": "cosine"}, tables) == [
        "IQA SRCC peaks at epoch 1 (-0.300) and ends 0.100 below it (every checkpoint's SRCC interval lies below 0: "
        "the model ranks quality in reverse at every checkpoint (the peak is the least reversed)); the 2AFC score "
        "peaks at epoch 1 (0.444) and ends 0.000 below it: the same checkpoint"]
