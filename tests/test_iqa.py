"""The iqa step: dataset glue on official-layout fixtures, scores by hand, the notebook end to end."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import fixtures_real
from fixtures_real import kadid10k_dmos, make_kadid10k, make_tid2013, tid2013_mos

from helpers import assert_same_table, notebook_text
from clipalign_utils import checkpoints, config
from clipalign_utils.checkpoints import Checkpoint, Run
from clipalign_utils.data.iqa import load_iqa
from clipalign_utils.data.iqa_embedded import OBSERVER_SOURCES, OBSERVER_TID2013_SRCC
from clipalign_utils.errors import DatasetError, ParameterError
from clipalign_utils.metrics.iqa import iqa_table
from clipalign_utils.metrics.stats import spearman
from clipalign_utils.orchestration.pipeline import run_step
from clipalign_utils.steps.iqa import analysis as iqa_step, page as iqa_page

CONTRACT_COLUMNS = ["checkpoint", "epoch", "dataset", "distance", "distortion", "srcc", "srcc_lo", "srcc_hi",
                    "krcc", "plcc", "pearson", "n_pairs"]
PAIR_COLUMNS = ["reference", "reference_index", "distorted_index", "distortion", "level", "quality"]


# --- dataset glue ------------------------------------------------------------------------------

def _check_indices(data, table_paths):
    """Row i's reference_index / distorted_index point at the files the loader listed for it."""
    refs, dists = data.references.paths, data.distorted.paths
    assert len(refs) == len(set(refs))
    assert [str(refs[i]) for i in data.pairs["reference_index"]] == table_paths["reference_path"]
    assert [str(dists[i]) for i in data.pairs["distorted_index"]] == table_paths["distorted_path"]


def test_tid2013_through_load_iqa(tmp_path):
    root = make_tid2013(tmp_path)  # 3 references x distortions (1, 8, 10) x levels (1, 2, 3)
    data = load_iqa("tid2013", str(root), config.resolve("smoke"), image_size=32)
    assert data.name == "tid2013" and data.observer is None and "human" in data.ground_truth
    assert list(data.pairs.columns) == PAIR_COLUMNS
    assert len(data) == 27 and len(data.references) == 3 and len(data.distorted) == 27
    assert data.pairs["distorted_index"].tolist() == list(range(27))
    assert data.pairs["reference_index"].tolist() == [0] * 9 + [1] * 9 + [2] * 9
    assert data.pairs["reference"].tolist() == ["I01"] * 9 + ["I02"] * 9 + ["I03"] * 9
    # case quirks: the last reference is stored lower case, the last distorted image upper case
    assert [p.name for p in data.references.paths] == ["I01.BMP", "I02.BMP", "i03.bmp"]
    assert data.distorted.paths[-1].name == "I03_10_3.BMP"
    reference_names = ["I01.BMP"] * 9 + ["I02.BMP"] * 9 + ["i03.bmp"] * 9
    distorted_names = [f"i{r:02d}_{d:02d}_{lv}.bmp" for r in (1, 2, 3) for d in (1, 8, 10) for lv in (1, 2, 3)]
    distorted_names[-1] = "I03_10_3.BMP"
    expected_paths = {"reference_path": [str(root / "reference_images" / n) for n in reference_names],
                      "distorted_path": [str(root / "distorted_images" / n) for n in distorted_names]}
    _check_indices(data, expected_paths)
    row = data.pairs.iloc[13]  # i02_08_2.bmp
    assert (row["distortion"], row["level"]) == ("gaussian_blur", 2)
    assert row["quality"] == pytest.approx(tid2013_mos(2, 8, 2))
    assert data.distorted_images([0, 26]).shape == (2, 32, 32, 3)
    # examples: one pair per distortion of the reference, at the middle level (2 of 1, 2, 3)
    examples = data.example_pairs(1)
    assert examples["distorted_index"].tolist() == [10, 13, 16] and set(examples["level"]) == {2}
    assert data.reference_image(2).shape == (32, 32, 3)


def test_kadid10k_through_load_iqa(tmp_path):
    root = make_kadid10k(tmp_path)  # 2 references x distortions (1, 10, 25) x levels (1, 3, 5)
    data = load_iqa("kadid10k", str(root), config.resolve("smoke"), image_size=32)
    assert data.name == "kadid10k" and data.observer is None
    assert list(data.pairs.columns) == PAIR_COLUMNS and len(data) == 18 and len(data.references) == 2
    expected = {"reference_path": [str(root / "images" / f"I{r:02d}.png") for r in (1, 2) for _ in range(9)],
                "distorted_path": [str(root / "images" / f"I{r:02d}_{d:02d}_{lv:02d}.png")
                                   for r in (1, 2) for d in (1, 10, 25) for lv in (1, 3, 5)]}
    _check_indices(data, expected)
    assert data.pairs["distortion"].iloc[:9].tolist() == (
        ["gaussian_blur"] * 3 + ["jpeg"] * 3 + ["contrast_change"] * 3)
    assert data.pairs["quality"].tolist() == pytest.approx(
        [kadid10k_dmos(r, d, lv) for r in (1, 2) for d in (1, 10, 25) for lv in (1, 3, 5)])


def test_real_images_default_to_224(tmp_path):
    data = load_iqa("kadid10k", str(make_kadid10k(tmp_path)), config.resolve("smoke"))
    assert data.distorted.batch(0, 1).shape == (1, 224, 224, 3)


def test_malformed_mos_line_through_load_iqa(tmp_path):
    root = make_tid2013(tmp_path)
    mos = root / "mos_with_names.txt"
    lines = mos.read_bytes().split(b"\r\n")
    lines[4] = b"4.5"  # a MOS without a file name
    mos.write_bytes(b"\r\n".join(lines))
    with pytest.raises(DatasetError) as info:
        load_iqa("tid2013", str(root), config.resolve("smoke"), image_size=32)
    message = str(info.value)
    assert str(mos) in message and "line 5" in message and "'4.5'" in message
    assert "iqa_root" in message
    assert message.count("line ") == 1  # one error, for the one bad line


def test_an_index_cut_short_is_noted_with_the_images_it_leaves_out(tmp_path):
    # A download of mos_with_names.txt that stopped at a line's end reads as a smaller release: the images it
    # no longer lists are named on the page. A complete index (the other fixtures) has no such note.
    root = make_tid2013(tmp_path / "tid")  # 27 lines (and one blank), CRLF
    mos = root / "mos_with_names.txt"
    lines = mos.read_bytes().split(b"\r\n")
    mos.write_bytes(b"\r\n".join(lines[:-5]) + b"\r\n")  # the last four images' lines (and the final newline)
    data = load_iqa("tid2013", str(root), config.resolve("smoke"), image_size=32)
    assert len(data) == 23
    assert data.unlisted == ("i03_08_3.bmp", "i03_10_1.bmp", "i03_10_2.bmp", "I03_10_3.BMP")  # names, any case
    assert data.unlisted_note == (
        "note: the folder of distorted images holds 4 that mos_with_names.txt does not list (i03_08_3.bmp, "
        "i03_10_1.bmp, i03_10_2.bmp, …); only the 23 it lists are scored (the full release lists 3000). A "
        "truncated or edited mos_with_names.txt? Replace it with the release's copy to score them all")
    assert data.unlisted_note in iqa_page.describe_data(_run(tmp_path), data, {"distance": "cosine"})

    root = make_kadid10k(tmp_path / "kadid")  # 18 rows; the references (I01.png) are not distorted images
    dmos = root / "dmos.csv"
    dmos.write_text("\n".join(dmos.read_text().splitlines()[:-1]) + "\n")
    data = load_iqa("kadid10k", str(root), config.resolve("smoke"), image_size=32)
    assert data.unlisted == ("I02_25_05.png",) and "dmos.csv does not list (I02_25_05.png)" in data.unlisted_note
    assert "full release lists 10125" in data.unlisted_note
    assert load_iqa("kadid10k", str(make_kadid10k(tmp_path / "whole")), config.resolve("smoke"),
                    image_size=32).unlisted_note is None


@pytest.mark.parametrize("dataset", ["tid2013", "kadid10k"])
@pytest.mark.parametrize("root", ["", "   ", "does/not/exist", "empty"])
def test_bad_root_names_the_parameter(tmp_path, monkeypatch, dataset, root):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="iqa_root"):
        load_iqa(dataset, root, config.resolve("smoke"), image_size=32)


def test_unknown_dataset_is_a_parameter_error():
    with pytest.raises(ParameterError, match="iqa_dataset.*embedded, tid2013, kadid10k"):
        load_iqa("live", "", config.resolve("smoke"))


def test_embedded_through_load_iqa():
    params = config.resolve("smoke", iqa_levels=(5,))
    data = load_iqa("embedded", "", params)
    assert data.name == "embedded" and list(data.pairs.columns) == PAIR_COLUMNS
    assert data.observer == "haarpsi" and data.observer_srcc_tid2013 == OBSERVER_TID2013_SRCC["haarpsi"]
    assert data.observer_source == OBSERVER_SOURCES["haarpsi"] and "not a human" in data.ground_truth
    assert data.pairs["distorted_index"].tolist() == list(range(len(data)))
    assert set(data.pairs["level"]) == {5}
    world_refs = sorted({r for r in data.pairs["reference"] if r.startswith("world_")})
    assert len(world_refs) == 4 and len(data.references) == 14  # 10 bundled photographs + 4 world images
    assert data.references.images.shape == (14, 32, 32, 3) and data.references.images.dtype == np.uint8
    assert data.distorted.images.shape == (len(data), 32, 32, 3)
    assert data.pairs["reference_index"].between(0, 13).all()
    assert data.pairs["quality"].between(0, 1).all()


# --- scores by hand ----------------------------------------------------------------------------

def test_iqa_table_on_hand_computed_ranks():
    # test_metrics covers the perfect and reversed orders; here one swapped pair in 4.
    # −distance ranks [1, 2, 4, 3] against quality ranks [1, 2, 3, 4]: Σd² = 2,
    # SRCC = 1 − 6·2 / (4·15) = 0.8; Kendall: 5 concordant, 1 discordant of 6 → 4/6.
    # Type "b" is reversed: SRCC = KRCC = −1.
    pairs = pd.DataFrame({
        "reference": ["r1", "r1", "r2", "r2", "r1", "r1", "r2"],
        "distortion": ["a"] * 4 + ["b"] * 3,
        "quality": [1.0, 2.0, 3.0, 4.0, 1.0, 2.0, 3.0],
        "model_distance": [0.4, 0.3, 0.1, 0.2, 0.1, 0.2, 0.3],
    })
    table = iqa_table(pairs, distance_col="model_distance", n_boot=20).set_index("distortion")
    assert table.loc["a", "srcc"] == pytest.approx(0.8)
    assert table.loc["a", "krcc"] == pytest.approx(4 / 6)
    assert table.loc["b", "srcc"] == pytest.approx(-1.0) and table.loc["b", "krcc"] == pytest.approx(-1.0)
    assert table["n_pairs"].to_dict() == {"all": 7, "a": 4, "b": 3}


# --- the page's sentences and figures, on hand-made tables -----------------------------------------

# Three checkpoints; overall SRCC 0.2, 0.6, 0.4 (peak at epoch 1, inside training); per type a and b.
OVERALL_SRCC = {0: (0.2, 0.1, 0.3), 1: (0.6, 0.5, 0.7), 2: (0.4, 0.3, 0.55)}  # epoch: (srcc, lo, hi)
TYPE_SRCC = {0: {"a": 0.1, "b": 0.3}, 1: {"a": 0.9, "b": -0.2}, 2: {"a": 0.5, "b": 0.7}}
PLCC = {0: 0.5, 1: 0.4, 2: 0.3}  # peaks at the first checkpoint


def _iqa_table(overall=OVERALL_SRCC) -> pd.DataFrame:
    rows = []
    for epoch, (srcc, lo, hi) in overall.items():
        common = {"checkpoint": f"epoch_{epoch}", "epoch": float(epoch), "dataset": "tid2013", "distance": "euclidean"}
        rows.append({**common, "distortion": "all", "srcc": srcc, "srcc_lo": lo, "srcc_hi": hi, "krcc": srcc / 2,
                     "plcc": PLCC[epoch], "pearson": srcc - 0.05, "n_pairs": 5, "iqa_resize": "patches"})
        rows += [{**common, "distortion": name, "srcc": value, "srcc_lo": value - 0.1, "srcc_hi": value + 0.1,
                  "krcc": value, "plcc": value, "pearson": value, "n_pairs": 2 + (name == "b"), "iqa_resize": "patches"}
                 for name, value in TYPE_SRCC[epoch].items()]
    return pd.DataFrame(rows)[iqa_step.IQA_COLUMNS]


def _pairs_table(epochs=(0, 1, 2)) -> pd.DataFrame:
    # At every checkpoint: level 1 distances 0.1, 0.3 (median 0.2), level 2 1, 2, 3 (median 2), times (epoch + 1).
    return pd.DataFrame([{"checkpoint": f"epoch_{e}", "epoch": float(e), "reference": f"r{k % 2}",
                          "distortion": "ab"[k >= 2], "level": level, "quality": 5.0 - level - k / 10,
                          "model_distance": distance * (e + 1)}
                         for e in epochs
                         for k, (level, distance) in enumerate([(1, 0.1), (1, 0.3), (2, 1.0), (2, 2.0), (2, 3.0)])])


def _run(run_dir: Path, seen=()) -> Run:
    if seen:
        (run_dir / "train_params.json").write_text(json.dumps({"quality_variation": 0.5,
                                                               "quality_families": list(seen)}))
    return Run(run_dir, "clipalign-tiny", 32, [Checkpoint(Path(f"epoch_{e}.pt"), float(e)) for e in (0, 1, 2)])


def _tables(run_dir: Path | None = None, overall=OVERALL_SRCC) -> dict[str, pd.DataFrame]:
    iqa = _iqa_table(overall)
    tables = {"iqa": iqa, "iqa_pairs": _pairs_table()}
    if run_dir is not None:
        tables["iqa_families"] = iqa_step.family_alignment(iqa, run_dir)[1]
    return tables


@pytest.fixture(scope="module")
def tid2013_data(tmp_path_factory):
    root = make_tid2013(tmp_path_factory.mktemp("tid2013"))  # 3 references x distortions (1, 8, 10) x levels 1-3
    return load_iqa("tid2013", str(root), config.resolve("smoke"), image_size=32)


def test_peak_sentences_on_a_hand_made_table():
    assert iqa_page.peak_sentences(_tables()) == [
        "SRCC at the first checkpoint (epoch 0): 0.200",
        "SRCC peaks at epoch 1: 0.600 [0.500, 0.700]",
        "final checkpoint (epoch 2): 0.400 [0.300, 0.550]",
        "drop from peak to final: 0.200; the peak is inside training (neither the first nor the last checkpoint)",
        "the final checkpoint's interval excludes the peak value"]
    # rising to the end: the peak is the last checkpoint, whose interval holds it
    rising = {0: (0.2, 0.1, 0.3), 1: (0.3, 0.2, 0.4), 2: (0.5, 0.4, 0.6)}
    lines = iqa_page.peak_sentences(_tables(overall=rising))
    assert lines[1] == "SRCC peaks at epoch 2: 0.500 [0.400, 0.600]"
    assert lines[3:] == ["drop from peak to final: 0.000; the peak is at an end of training",
                         "the final checkpoint's interval includes the peak value"]
    # one checkpoint (a single public model streamed): no peak, drop or end to name
    one = _tables()
    one = {"iqa": one["iqa"][one["iqa"]["epoch"] == 2], "iqa_pairs": one["iqa_pairs"][one["iqa_pairs"]["epoch"] == 2]}
    assert iqa_page.peak_sentences(one) == [
        "one checkpoint (epoch 2): SRCC 0.400 [0.300, 0.550]; a peak and a decline need several checkpoints of the run"]


def test_sentences_over_one_reference_say_no_interval_and_no_verdict():
    """A streamed trajectory over one TID2013 reference read "0.417 [0.417, 0.417]", "the final checkpoint's
    interval excludes the peak value" and "paired 95 % interval [-0.467, -0.467] over 1 references: below 0" (an
    audit): a bootstrap over one reference has no spread. Its table's lo = hi (written before the bootstrap said
    so) or nan: no interval either way, and no verdict."""
    tables = _tables()
    tables["iqa_pairs"] = tables["iqa_pairs"].assign(reference="r0")
    assert iqa_page.peak_sentences(tables)[1:] == [
        "SRCC peaks at epoch 1: 0.600 (no interval: one reference)",
        "final checkpoint (epoch 2): 0.400 (no interval: one reference)",
        "drop from peak to final: 0.200; the peak is inside training (neither the first nor the last checkpoint)"]
    test = {"early_end": 2 / 3, "n_early": 1, "n_references": 1, "final_epoch": 2.0, "final_srcc": 0.4,
            "early_drop": -0.467, "early_peak_epoch": 0.5, "early_peak_srcc": -0.067}
    for lo, hi in [(-0.467, -0.467), (np.nan, np.nan)]:
        lines = iqa_page.early_peak_sentences({"iqa": tables["iqa"], "iqa_peak": pd.DataFrame([{**test, "lo": lo,
                                                                                                   "hi": hi}])})
        assert lines[1] == ("best early SRCC -0.067 (epoch 0.5) − final 0.400 = -0.467 over 1 reference: no interval "
                            "(one reference), so no verdict on an early peak")


def test_peak_table_and_checkpoint_table():
    peaks = iqa_step.peak_table(_tables())
    assert peaks.index.tolist() == ["srcc", "krcc", "plcc", "pearson"]
    assert peaks["peak_epoch"].tolist() == [1.0, 1.0, 0.0, 1.0]
    assert peaks["peak_value"].tolist() == pytest.approx([0.6, 0.3, 0.5, 0.55])
    assert peaks["drop_from_peak"].tolist() == pytest.approx([0.2, 0.1, 0.2, 0.2])
    assert peaks["peak_is_interior"].tolist() == [True, True, False, True]
    # a table written before `pearson` existed: the other three
    older = {**_tables(), "iqa": _tables()["iqa"].drop(columns="pearson")}
    assert iqa_step.peak_table(older).index.tolist() == ["srcc", "krcc", "plcc"]
    shown = iqa_step.checkpoint_table(_tables())
    assert shown.columns.tolist() == ["checkpoint", "epoch", "srcc", "srcc_lo", "srcc_hi", "krcc", "plcc", "pearson",
                                      "n_pairs", "iqa_resize"]
    assert shown["checkpoint"].tolist() == ["epoch_0", "epoch_1", "epoch_2"] and shown.index.tolist() == [0, 1, 2]
    assert shown["srcc"].tolist() == [0.2, 0.6, 0.4]


def test_distortion_sentences_name_the_worst_and_best_type_at_peak_and_final():
    assert iqa_page.distortion_sentences(_tables()) == [
        "peak checkpoint (epoch 1): worst aligned b (-0.200), best a (0.900)",
        "final checkpoint (epoch 2): worst aligned a (0.500), best b (0.700)"]
    # a type whose SRCC is undefined is neither worst nor best (an audit found "best b (nan)")
    tables = _tables()
    iqa = tables["iqa"]
    iqa.loc[(iqa["checkpoint"] == "epoch_2") & (iqa["distortion"] == "b"), "srcc"] = np.nan
    assert iqa_page.distortion_sentences(tables)[1] == (
        "final checkpoint (epoch 2): only a has a defined SRCC (0.500); undefined for b")
    iqa.loc[(iqa["checkpoint"] == "epoch_2") & (iqa["distortion"] == "a"), "srcc"] = np.nan
    assert iqa_page.distortion_sentences(tables)[1] == (
        "final checkpoint (epoch 2): SRCC undefined for every distortion type")
    tables["iqa"] = iqa[(iqa["checkpoint"] != "epoch_2") | (iqa["distortion"] == "all")]  # no per-type rows
    assert iqa_page.distortion_sentences(tables) == [
        "peak checkpoint (epoch 1): worst aligned b (-0.200), best a (0.900)"]
    one = _tables()
    one = {"iqa": one["iqa"][one["iqa"]["epoch"] == 2], "iqa_pairs": one["iqa_pairs"][one["iqa_pairs"]["epoch"] == 2]}
    assert iqa_page.distortion_sentences(one) == [  # a run of one checkpoint: said once
        "the one checkpoint (epoch 2): worst aligned a (0.500), best b (0.700)"]


@pytest.mark.parametrize("lo, hi, peak_epoch, verdict", [
    (0.05, 0.3, 0.5, "above 0 — an early peak and a decline"),
    # the best early value beats the final one, but the curve's maximum is past the window (claim 1: inconclusive)
    (0.05, 0.3, 1.0, "above 0, but the curve peaks later, at epoch 1: it ends below its best early value without an "
                     "early peak"),
    (0.05, 0.3, 0.0, "above 0, but the curve peaks at the untrained model (epoch 0): it ends below its best early "
                     "value without an early peak"),
    (-0.3, -0.05, 0.5, "below 0 — the final checkpoint is better aligned than any early one"),
    (-0.1, 0.3, 0.5, "includes 0 — no clear early peak")])
def test_early_peak_sentences(lo, hi, peak_epoch, verdict):
    test = {"dataset": "tid2013", "distance": "euclidean", "early_end": 2 / 3, "n_early": 1, "n_references": 3,
            "final_epoch": 2.0, "final_srcc": 0.4, "early_drop": 0.1, "lo": lo, "hi": hi, "early_peak_epoch": 0.5,
            "early_peak_srcc": 0.5}
    curve = pd.DataFrame({"checkpoint": ["epoch_0", "epoch_a", "epoch_b", "epoch_2"], "distortion": "all",
                          "epoch": [0.0, 0.5, 1.0, 2.0],
                          "srcc": [0.6 if peak_epoch == 0.0 else 0.2, 0.5, 0.55 if peak_epoch == 1.0 else 0.45, 0.4]})
    assert iqa_page.early_peak_sentences({"iqa": curve, "iqa_peak": pd.DataFrame([test])}) == [
        "early window: 0 < epoch ≤ 0.333 × 2 = 0.667 (1 checkpoint)",
        f"best early SRCC 0.500 (epoch 0.5) − final 0.400 = 0.100, paired 95 % interval [{lo:.3f}, {hi:.3f}] "
        f"over 3 references: {verdict}"]
    empty = {**test, "n_early": 0, "early_drop": np.nan, "lo": np.nan, "hi": np.nan}
    assert iqa_page.early_peak_sentences({"iqa": curve, "iqa_peak": pd.DataFrame([empty])}) == [
        "early window: 0 < epoch ≤ 0.333 × 2 = 0.667 (0 checkpoints)"]
    # checkpoints in the window, none with a value: no test, said so (a review found nan printed as one)
    undefined = {**empty, "n_early": 2, "early_peak_epoch": np.nan, "early_peak_srcc": np.nan}
    assert iqa_page.early_peak_sentences({"iqa": curve, "iqa_peak": pd.DataFrame([undefined])}) == [
        "early window: 0 < epoch ≤ 0.333 × 2 = 0.667 (2 checkpoints)",
        "SRCC is undefined at every early checkpoint: no early-peak test"]


def test_a_curve_peaking_at_the_early_windows_last_epoch_reads_as_an_early_peak():
    """The window is 0 < epoch ≤ early_end, ends included, as the synthesis' claim judges it: a curve peaking at
    epoch early_end exactly is an early peak, not "peaks later" (mutation audit: < for ≤ went unnoticed)."""
    test = {"early_end": 1.0, "n_early": 1, "n_references": 3, "final_epoch": 3.0, "final_srcc": 0.4,
            "early_drop": 0.2, "lo": 0.05, "hi": 0.3, "early_peak_epoch": 1.0, "early_peak_srcc": 0.6}
    curve = pd.DataFrame({"checkpoint": [f"epoch_{e}" for e in range(4)], "distortion": "all",
                          "epoch": [0.0, 1.0, 2.0, 3.0], "srcc": [0.2, 0.6, 0.5, 0.4]})
    assert iqa_page.early_peak_sentences({"iqa": curve, "iqa_peak": pd.DataFrame([test])}) == [
        "early window: 0 < epoch ≤ 0.333 × 3 = 1 (1 checkpoint)",
        "best early SRCC 0.600 (epoch 1) − final 0.400 = 0.200, paired 95 % interval [0.050, 0.300] over 3 "
        "references: above 0 — an early peak and a decline"]


def test_family_sentences_and_figure_split_seen_from_unseen(tmp_path):
    run = _run(tmp_path, seen=("a",))
    tables = _tables(tmp_path)
    # seen a: 0.1, 0.9, 0.5; unseen b: 0.3, -0.2, 0.7; their mean: 0.2, 0.35, 0.6; overall: 0.2, 0.6, 0.4
    assert iqa_page.family_sentences(tables, run) == [
        "families seen in training: a",
        "seen families: peak 0.900 at epoch 1, final 0.500 at epoch 2 (drop from peak 0.400)",
        "unseen families: peak 0.700 at epoch 2, final 0.700 at epoch 2 (drop from peak 0.000)",
        "all families: peak 0.600 at epoch 2, final 0.600 at epoch 2 (drop from peak 0.000)",
        "all pairs (overall): peak 0.600 at epoch 1, final 0.400 at epoch 2 (drop from peak 0.200)"]
    left, right = iqa_page.families_figure(tables, run).axes
    assert [line.get_color() for line in left.get_lines()] == ["tab:red", "tab:blue"]  # a seen, b unseen
    assert len(right.get_lines()) == 4
    clean = _tables(tmp_path / "clean")  # quality_variation 0: a clean world, every family unseen
    (tmp_path / "clean").mkdir(exist_ok=True)
    (tmp_path / "clean" / "train_params.json").write_text(json.dumps({"quality_variation": 0.0}))
    lines = iqa_page.family_sentences(clean, _run(tmp_path / "clean"))
    assert lines[0] == "families seen in training: none (a clean training world)"
    assert [line.split(":")[0] for line in lines[1:]] == ["unseen families", "all families", "all pairs (overall)"]
    # no train_params.json: a run trained elsewhere, whose training data clipalign does not know (an audit read
    # "none (a clean training world)" on a streamed RN50 trajectory)
    elsewhere = iqa_page.family_sentences(_tables(tmp_path / "elsewhere"), _run(tmp_path / "elsewhere"))
    assert elsewhere[0] == "families seen in training: unknown (a run trained elsewhere)"
    # nor which are unseen: an audit read "unseen families: peak 0.500 …" below it (the figure draws no such curve)
    assert elsewhere[1:] == lines[2:] and not any("seen families" in line for line in elsewhere[1:])
    one = {name: table[table["epoch"] == 2] for name, table in _tables(tmp_path / "elsewhere").items()}
    assert iqa_page.family_sentences(one, _run(tmp_path / "elsewhere"))[1:] == [  # one checkpoint: no peak or drop
        "all families: 0.600 at epoch 2", "all pairs (overall): 0.400 at epoch 2"]


def test_a_streamed_runs_input_size_and_an_upscale_are_said_as_they_are(tmp_path):
    """An audit read "3 checkpoints of RN50 (None px input)" and "downsampling 0.0714286×" on a streamed RN50
    trajectory (no recorded input size) over TID2013's 16 px fixture images: the model's own size, and the
    images upscaled 14× to meet it."""
    root = make_tid2013(tmp_path / "tid")  # 24 × 16 px images
    data = load_iqa("tid2013", str(root), config.resolve("smoke"), image_size=None, resize="crop")
    streamed = Run(tmp_path, "RN50", None, [Checkpoint(Path(f"epoch_{e}.pt"), float(e)) for e in (1, 2, 3)])
    assert iqa_page.describe_data(streamed, data, {"distance": "cosine"})[0] == (
        "3 checkpoints of RN50 (224 px input); dataset TID2013 (24 × 16 px images): 27 distorted images of 3 "
        "references, 3 distortion "
        "types, levels 1, 2, 3; distance: cosine; iqa_resize: crop (1 patch per image, upsampling 14×)")
    assert data.scaling == "upsampling 14×"
    assert replace(data, downsampling=1 / 3).scaling == "upsampling 3×"
    assert replace(data, downsampling=512 / 224).scaling == "downsampling 2.29×"
    assert replace(data, downsampling=1.0).scaling == "downsampling 1×"  # the embedded set's, as it was
    unknown = replace(streamed, model_name="a-model-without-a-config")  # no size known: the clause left out
    assert iqa_page.describe_data(unknown, data, {"distance": "cosine"})[0].startswith(
        "3 checkpoints of a-model-without-a-config; dataset TID2013 (24 × 16 px images):")


def test_distance_sentences_and_scatter_figure(tid2013_data):
    tables, params = _tables(), {"distance": "euclidean"}
    # the last checkpoint's distances are 3× the base ones: medians 0.6 (level 1) and 6 (level 2)
    assert iqa_page.distance_sentences(tables, params) == [
        "last checkpoint, median euclidean distance by level: level 1: 0.6000, level 2: 6.0000"]
    axes = iqa_page.scatter_figure(tables, tid2013_data, params).axes
    assert [ax.get_title() for ax in axes] == ["peak, epoch 1: SRCC 0.600", "last, epoch 2: SRCC 0.400"]
    assert axes[0].get_xlabel() == "quality (TID2013; higher = better)"
    assert axes[0].get_ylabel() == "euclidean distance (log scale)"  # every distance positive: a plain log axis
    rising = _tables(overall={0: (0.2, 0.1, 0.3), 1: (0.3, 0.2, 0.4), 2: (0.5, 0.4, 0.6)})
    assert [ax.get_title() for ax in iqa_page.scatter_figure(rising, tid2013_data, params).axes] == [
        "peak = last, epoch 2: SRCC 0.500"]


def test_layer_sentences():
    assert iqa_page.layer_sentences(_tables()) == [
        "layers='final': only the image embedding was scored (run with -p layers=all for every block)"]
    layers = pd.DataFrame({"checkpoint": ["epoch_0"] * 2 + ["epoch_0.5"] * 2, "epoch": [0.0, 0.0, 0.5, 0.5],
                           "layer": ["stem", "final"] * 2, "srcc": [0.7, 0.2, 0.1, 0.45]})
    # a table written before the layers' intervals: the sentences without them
    assert iqa_page.layer_sentences({**_tables(), "iqa_layers": layers}) == [
        "epoch 0: most aligned layer stem (SRCC 0.700; the image embedding, final, 0.200)",
        "epoch 0.5: most aligned layer final (SRCC 0.450; the image embedding, final, 0.450)"]
    # with them; a checkpoint whose every layer is undefined (NaN weights) is left out, not a crash
    layers = layers.assign(srcc_lo=layers["srcc"] - 0.1, srcc_hi=layers["srcc"] + 0.1)
    undefined = pd.DataFrame({"checkpoint": "epoch_1", "epoch": 1.0, "layer": ["stem", "final"], "srcc": np.nan,
                              "srcc_lo": np.nan, "srcc_hi": np.nan})
    vit = pd.DataFrame({"checkpoint": "epoch_0", "epoch": 0.0, "layer": ["embeddings", "final"], "srcc": [0.6, 0.3]})
    assert iqa_page.layer_sentences({**_tables(), "iqa_layers": vit}) == [
        "epoch 0: most aligned layer embeddings (the tokens entering the first block) (SRCC 0.600; the image "
        "embedding, final, 0.300)"]
    assert iqa_page.layer_sentences({**_tables(), "iqa_layers": pd.concat([layers, undefined])}) == [
        "epoch 0: most aligned layer stem (SRCC 0.700 [0.600, 0.800]; the image embedding, final, 0.200)",
        "epoch 0.5: most aligned layer final (SRCC 0.450 [0.350, 0.550]; the image embedding, final, 0.450)"]
    # the best block against the embedding (iqa_best_block): what its interval says, each way
    blocks = pd.DataFrame({"checkpoint": ["epoch_0", "epoch_0.5", "epoch_1"], "best_block": ["stem", "stem", None],
                           "margin": [0.5, -0.35, np.nan], "margin_lo": [0.2, -0.5, np.nan],
                           "margin_hi": [0.7, -0.1, np.nan]})
    said = iqa_page.layer_sentences({**_tables(), "iqa_layers": pd.concat([layers, undefined]),
                                     "iqa_best_block": blocks})
    assert said == [
        "epoch 0: most aligned layer stem (SRCC 0.700 [0.600, 0.800]; the image embedding, final, 0.200); best block "
        "(stem) minus the embedding, the block chosen again on every resample: +0.500 [+0.200, +0.700]: a block beats "
        "the embedding",
        "epoch 0.5: most aligned layer final (SRCC 0.450 [0.350, 0.550]; the image embedding, final, 0.450); best "
        "block (stem) minus the embedding, the block chosen again on every resample: -0.350 [-0.500, -0.100]: the "
        "embedding beats every block"]
    blocks.loc[0, ["margin_lo", "margin_hi"]] = [-0.1, 0.9]
    assert iqa_page.layer_sentences({**_tables(), "iqa_layers": layers, "iqa_best_block": blocks})[0].endswith(
        "+0.500 [-0.100, +0.900]: no block can be told from the embedding")


def test_data_sentences_on_tid2013(tid2013_data, tmp_path):
    assert iqa_page.describe_data(_run(tmp_path), tid2013_data, {"distance": "euclidean"}) == [
        "3 checkpoints of clipalign-tiny (32 px input); dataset TID2013 (24 × 16 px images): 27 distorted images "
        "of 3 references, 3 distortion types, "
        "levels 1, 2, 3; distance: euclidean; iqa_resize: patches (1 patch per image, downsampling 1×)"]
    with pytest.MonkeyPatch.context() as patch:  # several patches per image: the plural
        patch.setattr(type(tid2013_data), "patches_per_image", property(lambda data: 4))
        assert iqa_page.describe_data(_run(tmp_path), tid2013_data, {"distance": "euclidean"})[0].endswith(
            "iqa_resize: patches (4 patches per image, downsampling 1×)")
    assert iqa_page.ground_truth_sentences(tid2013_data) == [
        "quality scores: mean opinion scores (MOS) of human observers, Ponomarenko et al. (2015)"]
    medians = [np.median([tid2013_mos(r, d, level) for r in (1, 2, 3) for d in (1, 8, 10)]) for level in (1, 2, 3)]
    assert iqa_page.level_sentences(tid2013_data) == [
        "quality by level (median over all references and distortions): "
        + ", ".join(f"level {level}: {m:.3f}" for level, m in zip((1, 2, 3), medians))]
    # the embedded set says what its references are: photographs, and renders named world_<shape>_<texture>
    pairs = tid2013_data.pairs.assign(reference=tid2013_data.pairs["reference"].map(
        {"I01": "astronaut", "I02": "coffee", "I03": "world_star_dots"}))
    embedded = replace(tid2013_data, name="embedded", pairs=pairs)
    assert "27 distorted images of 3 references (2 photographs scikit-image ships, 1 renders of the held-out " \
           "world), 3 distortion types" in iqa_page.describe_data(_run(tmp_path), embedded, {"distance": "euclidean"})[0]
    observed = replace(tid2013_data, observer="haarpsi", observer_srcc_tid2013=0.8732, observer_source="a paper")
    lines = iqa_page.ground_truth_sentences(observed)
    assert len(lines) == 4 and lines[1].endswith("published SRCC with TID2013's human MOS: 0.873")
    assert lines[2] == "source: a paper" and lines[3].startswith("its scores are not human judgments")


def test_absent_combinations_are_counted_named_and_explained(tid2013_data):
    # TID2013's grid is complete (the sentences above have no such line); drop two of its pairs by hand.
    pairs = tid2013_data.pairs
    first, second = pairs["reference"].unique()[:2]
    kind = pairs["distortion"].iloc[0]
    gone = (pairs["distortion"] == kind) & (((pairs["reference"] == first) & (pairs["level"] == 2))
                                            | ((pairs["reference"] == second) & (pairs["level"] == 3)))
    thinned = replace(tid2013_data, pairs=pairs[~gone])
    assert iqa_page.absent_sentences(thinned) == [
        f"25 of the 27 reference × type × level combinations are scored; 2 are absent ({kind} on {first} (level 2), "
        f"{second} (level 3))"]
    # The embedded set says why: the saturation change leaves the 4 grey photos as they are.
    data = load_iqa("embedded", "", config.resolve("smoke", iqa_levels=(5,)))
    assert len(data) == 14 * 8 - 4
    assert iqa_page.absent_sentences(data) == [
        "108 of the 112 reference × type × level combinations are scored; 4 are absent (change_of_color_saturation "
        "on camera, coins, moon, clock): a distortion that leaves a reference's pixels unchanged (desaturating a "
        "grey photo) makes no pair that anyone could rank, so the set leaves it out"]


def test_data_figures_on_tid2013(tid2013_data):
    titles = [ax.get_title() for ax in iqa_page.examples_figure(tid2013_data, reference=1).axes if ax.get_title()]
    # reference I02 and its middle level (2) of each distortion, in name order
    assert titles == ["reference: I02"] + [f"{name}\nlevel 2, quality {tid2013_mos(2, code, 2):.2f}" for name, code
                                           in [("additive gaussian noise", 1), ("gaussian blur", 8),
                                               ("jpeg compression", 10)]]
    (ax,) = iqa_page.alignment_figure(_tables(), tid2013_data, {"distance": "euclidean"}).axes
    assert ax.get_title() == "alignment with TID2013 quality (euclidean distance)"  # its display name, not its id


# --- the notebook end to end -------------------------------------------------------------------

def _notebook_text(run_dir: Path) -> str:
    return notebook_text(run_dir / "notebooks" / "02_iqa_alignment.ipynb")


def _check_tables(run_dir: Path, dataset: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    table = pd.read_csv(run_dir / "metrics" / "iqa.csv")
    assert list(table.columns[: len(CONTRACT_COLUMNS)]) == CONTRACT_COLUMNS
    run = checkpoints.discover_run(run_dir)
    overall = table[table["distortion"] == "all"]
    assert overall["checkpoint"].tolist() == [c.name for c in run.checkpoints]  # one 'all' row each
    assert overall["epoch"].tolist() == [c.epoch for c in run.checkpoints]
    assert np.isfinite(overall[["srcc", "krcc", "plcc", "pearson"]].to_numpy()).all()
    assert (table["n_pairs"] > 0).all() and (table["dataset"] == dataset).all()
    assert (table["distance"] == "normalized_euclidean").all()
    assert (overall["srcc_lo"] <= overall["srcc"]).all() and (overall["srcc"] <= overall["srcc_hi"]).all()
    # the per-type rows partition the pairs
    assert (table[table["distortion"] != "all"].groupby("checkpoint")["n_pairs"].sum()
            == overall.set_index("checkpoint")["n_pairs"]).all()

    pairs = pd.read_csv(run_dir / "metrics" / "iqa_pairs.csv")
    for checkpoint, rows in pairs.groupby("checkpoint"):
        row = overall[overall["checkpoint"] == checkpoint].iloc[0]
        assert len(rows) == row["n_pairs"]
        assert spearman(-rows["model_distance"].to_numpy(), rows["quality"].to_numpy()) == pytest.approx(row["srcc"])
    for name in ("iqa_examples", "iqa_alignment_vs_epoch", "iqa_srcc_per_distortion", "iqa_distance_vs_quality"):
        assert (run_dir / "figures" / f"{name}.png").stat().st_size > 0
    return table, pairs


def test_notebook_smoke_embedded(smoke_run_copy, smoke_pipeline):
    run_step("iqa", smoke_run_copy, "smoke", {}, progress=False)
    assert_same_table(smoke_run_copy, smoke_pipeline, "iqa")
    table, pairs = _check_tables(smoke_run_copy, "embedded")
    assert set(pairs["level"]) == {1, 3, 5}  # the smoke preset's iqa_levels
    text = _notebook_text(smoke_run_copy)
    assert "SRCC peaks at epoch" in text and "drop from peak to final" in text
    # computed sentences are prose (Markdown output), not printed lines
    prose = notebook_text(smoke_run_copy / "notebooks" / "02_iqa_alignment.ipynb", markdown_only=True)
    assert "SRCC peaks at epoch" in prose and "early window: 0 < epoch" in prose
    assert f"{OBSERVER_TID2013_SRCC['haarpsi']:.3f}" in text and OBSERVER_SOURCES["haarpsi"] in text
    assert "not human judgments" in text
    # measure alone (its data loaded by default) returns every table the page wrote, and nothing else
    tables = iqa_step.measure(checkpoints.discover_run(smoke_run_copy), config.resolve("smoke"))
    assert list(tables) == ["iqa", "iqa_pairs", "iqa_peak", "iqa_families"]  # no iqa_layers: layers="final"
    for name, table in tables.items():
        assert table.to_csv(index=False) == (smoke_run_copy / "metrics" / f"{name}.csv").read_text(), name


def test_notebook_smoke_tid2013(smoke_run_copy, tmp_path):
    root = make_tid2013(tmp_path / "tid2013")
    run_step("iqa", smoke_run_copy, "smoke", {"iqa_dataset": "tid2013", "iqa_root": str(root)}, progress=False)
    table, _ = _check_tables(smoke_run_copy, "tid2013")
    assert set(table["distortion"]) == {"all", "additive_gaussian_noise", "gaussian_blur", "jpeg_compression"}
    assert (table.loc[table["distortion"] == "all", "n_pairs"] == 27).all()
    assert "reference observer" not in _notebook_text(smoke_run_copy)


def test_notebook_scores_every_layer(smoke_run_copy):
    run_step("iqa", smoke_run_copy, "smoke", {"layers": "all"}, progress=False)
    layers = pd.read_csv(smoke_run_copy / "metrics" / "iqa_layers.csv")
    iqa = pd.read_csv(smoke_run_copy / "metrics" / "iqa.csv")
    n_checkpoints = iqa["checkpoint"].nunique()
    assert list(layers["layer"].iloc[:6]) == ["stem", "layer1", "layer2", "layer3", "layer4", "final"]
    assert len(layers) == 6 * n_checkpoints and layers["srcc"].notna().all()
    # The "final" layer is the image embedding: its scores, interval and count are the overall row of iqa.csv.
    assert list(layers.columns) == ["checkpoint", "epoch", "dataset", "distance", "layer", "srcc", "srcc_lo", "srcc_hi",
                                    "krcc", "plcc", "pearson", "n_pairs"]
    scores = ["srcc", "srcc_lo", "srcc_hi", "krcc", "plcc", "pearson", "n_pairs"]
    final = layers[layers["layer"] == "final"].set_index("checkpoint")[scores]
    overall = iqa[iqa["distortion"] == "all"].set_index("checkpoint")[scores]
    pd.testing.assert_frame_equal(final.sort_index(), overall.sort_index())
    assert (layers["srcc_lo"] <= layers["srcc"]).all() and (layers["srcc"] <= layers["srcc_hi"]).all()
    assert (smoke_run_copy / "figures" / "iqa_layers.png").stat().st_size > 0
    # the best block against the embedding, per checkpoint: its scores are the layers table's
    best = pd.read_csv(smoke_run_copy / "metrics" / "iqa_best_block.csv")
    assert list(best.columns) == ["checkpoint", "epoch", "dataset", "distance", "best_block", "best_srcc", "final_srcc",
                                  "margin", "margin_lo", "margin_hi", "n_blocks"]
    blocks = layers[layers["layer"] != "final"]
    top = blocks.loc[blocks.groupby("checkpoint", sort=False)["srcc"].idxmax()].set_index("checkpoint")
    best = best.set_index("checkpoint")
    assert list(best.index) == list(top.index) and (best["best_block"] == top["layer"]).all()
    np.testing.assert_array_equal(best["best_srcc"], top["srcc"])
    np.testing.assert_array_equal(best["final_srcc"], final.loc[best.index, "srcc"])
    np.testing.assert_allclose(best["margin"], best["best_srcc"] - best["final_srcc"], atol=1e-12)
    assert (best["n_blocks"] == 5).all() and (best["margin_lo"] <= best["margin_hi"]).all()
    assert "minus the embedding, the block chosen again on every resample" in _notebook_text(smoke_run_copy)
    # measured again with the embedding alone, the per-layer table of the first measurement goes with it
    run_step("iqa", smoke_run_copy, "smoke", {"layers": "final"}, progress=False)
    assert not (smoke_run_copy / "metrics" / "iqa_layers.csv").exists()
    assert not (smoke_run_copy / "metrics" / "iqa_best_block.csv").exists()
    assert not (smoke_run_copy / "figures" / "iqa_layers.png").exists()


def test_notebook_rejects_unknown_layers(smoke_run_copy):
    # Refused when the parameters are resolved, before any kernel starts: no failed notebook either.
    with pytest.raises(ParameterError, match="layers='some'.*choose one of final, all"):
        run_step("iqa", smoke_run_copy, "smoke", {"layers": "some"}, progress=False)
    assert not list((smoke_run_copy / "notebooks").glob("02_iqa_alignment*"))


def test_distances_differ_on_raw_embeddings_and_the_early_peak_is_tested(smoke_run_copy):
    """On raw embeddings euclidean and cosine are different measures: their SRCCs differ on a real run."""
    srcc = {}
    for kind in ("euclidean", "cosine"):
        run_step("iqa", smoke_run_copy, "smoke", {"distance": kind}, progress=False)
        table = pd.read_csv(smoke_run_copy / "metrics" / "iqa.csv")
        assert (table["distance"] == kind).all() and (table["iqa_resize"] == "patches").all()
        srcc[kind] = table.loc[table["distortion"] == "all", "srcc"].to_numpy()
    assert not np.allclose(srcc["euclidean"], srcc["cosine"], atol=1e-3)
    peak = pd.read_csv(smoke_run_copy / "metrics" / "iqa_peak.csv").iloc[0]
    assert peak["distance"] == "cosine" and peak["n_early"] >= 1
    assert peak["lo"] <= peak["early_drop"] <= peak["hi"]
    assert "early window: 0 < epoch" in _notebook_text(smoke_run_copy)
    notebook = json.loads((smoke_run_copy / "notebooks" / "02_iqa_alignment.ipynb").read_text())
    tables = "".join("".join(output.get("data", {}).get("text/plain", "")) for cell in notebook["cells"]
                     for output in cell.get("outputs", []))
    assert all(kind in tables for kind in ("cosine", "euclidean", "normalized_euclidean"))  # side by side


def test_tid2013_patches_keep_native_resolution(smoke_run_copy, tmp_path, monkeypatch):
    root = make_tid2013(tmp_path / "tid2013")
    run_step("iqa", smoke_run_copy, "smoke", {"iqa_dataset": "tid2013", "iqa_root": str(root),
                                              "iqa_resize": "resize"}, progress=False)
    squashed = pd.read_csv(smoke_run_copy / "metrics" / "iqa.csv")
    assert (squashed["iqa_resize"] == "resize").all()
    # Images larger than the 32 px input: auto tiles them into native-resolution patches.
    monkeypatch.setattr(fixtures_real, "SIZE", (96, 64))
    large = make_tid2013(tmp_path / "tid2013_large")
    data = load_iqa("tid2013", str(large), config.resolve("smoke"), image_size=32, resize="auto")
    assert data.resize_mode == "patches" and data.patches_per_image == 3 * 2 and data.downsampling == 1
    assert len(data.references) == 3 * 6 and len(data.distorted) == 27 * 6
    assert data.downsampling_note is None
    shrunk = load_iqa("tid2013", str(large), config.resolve("smoke"), image_size=8, resize="crop")
    assert shrunk.downsampling == 8 and "shrinks the TID2013 images 8.0×" in shrunk.downsampling_note


def test_summary_columns_read_the_overall_row_at_the_distance_asked_for():
    table = pd.DataFrame({"checkpoint": ["a", "a", "a", "b"], "epoch": [0.0, 0.0, 0.0, 1.0], "dataset": "toy",
                          "distance": ["cosine", "euclidean", "euclidean", "euclidean"],
                          "distortion": ["all", "all", "blur", "all"], "srcc": [0.1, 0.2, 0.3, 0.4],
                          "srcc_lo": [0.0, 0.15, 0.25, 0.35], "srcc_hi": [0.2, 0.25, 0.35, 0.45]})
    read = iqa_step.summary_columns(table, "euclidean", Path("iqa.csv"))
    assert list(read.columns) == ["checkpoint", "epoch", "iqa_dataset", "distance", "iqa_srcc", "iqa_srcc_lo",
                                  "iqa_srcc_hi"]
    assert read[["checkpoint", "iqa_srcc", "iqa_srcc_lo", "iqa_srcc_hi"]].values.tolist() == [
        ["a", 0.2, 0.15, 0.25], ["b", 0.4, 0.35, 0.45]]


def test_layer_scores_score_every_block_and_the_embedding_as_iqa_csv_does():
    """layer_scores with a stub encoder: one row per block and one for the embedding (``final``), each with the
    SRCC of −distance against quality and its interval resampling reference images; the best block's row."""
    from types import SimpleNamespace

    from clipalign_utils.metrics.iqa import block_pair_statistics, block_distance
    from clipalign_utils.metrics.stats import bootstrap_spearman_grouped

    rng = np.random.default_rng(0)
    n_refs, per_ref = 4, 3
    quality = rng.random(n_refs * per_ref)
    pairs = pd.DataFrame({"reference": np.repeat([f"r{i}" for i in range(n_refs)], per_ref),
                          "reference_index": np.repeat(np.arange(n_refs), per_ref),
                          "distorted_index": np.arange(n_refs * per_ref), "quality": quality})
    data = SimpleNamespace(pairs=pairs, patches_per_image=1, references="refs", distorted="dist", name="toy")
    # block "aligned": distance falls as quality rises; block "anti": it rises with quality
    ref = rng.normal(size=(n_refs * per_ref, 2, 3))
    damage = (1.0 - quality)[:, None, None] * rng.normal(size=ref.shape)
    blocks = {"aligned": block_pair_statistics(ref, ref + damage),
              "anti": block_pair_statistics(ref, ref + quality[:, None, None] * rng.normal(size=ref.shape))}
    encoder = SimpleNamespace(encode_block_pairs=lambda references, distorted, reference_rows, distorted_rows: blocks)
    final = rng.random(n_refs * per_ref)  # the embedding's distances, as iqa.csv scored them
    params = {"distance": "euclidean", "n_boot": 200, "eval_seed": 0}
    checkpoint = Checkpoint(Path("epoch_1.pt"), 1.0)
    rows, best = iqa_step.layer_scores(checkpoint, encoder, data, params, final)
    by_layer = pd.DataFrame(rows).set_index("layer")
    assert list(by_layer.index) == ["aligned", "anti", "final"]
    references = pairs["reference"].to_numpy()
    seed = config.bootstrap_seed(params)
    for layer, distances in (("aligned", block_distance(blocks["aligned"], "euclidean")),
                             ("anti", block_distance(blocks["anti"], "euclidean")), ("final", final)):
        row = by_layer.loc[layer]
        assert row["srcc"] == pytest.approx(spearman(-distances, quality))
        assert (row["srcc_lo"], row["srcc_hi"]) == pytest.approx(
            bootstrap_spearman_grouped(-distances, quality, references, n_boot=200, seed=seed))
        assert row["n_pairs"] == n_refs * per_ref
    assert by_layer.loc["aligned", "srcc"] > 0 > by_layer.loc["anti", "srcc"]
    assert best["best_block"] == "aligned" and best["n_blocks"] == 2
    assert best["margin"] == pytest.approx(by_layer.loc["aligned", "srcc"] - by_layer.loc["final", "srcc"])
    assert best["margin_lo"] <= best["margin"] <= best["margin_hi"]


# ---- measure's layers="all" tables, compare_distances and seen_families' clean world, on stubs (an audit)
def _stub_iqa(n_refs=3, per_ref=3):
    """IQA data of hand-made features and an encoder whose image features and block outputs are those arrays."""
    from types import SimpleNamespace

    from clipalign_utils.metrics.iqa import block_pair_statistics

    rng = np.random.default_rng(0)
    n = n_refs * per_ref
    quality = rng.random(n)
    pairs = pd.DataFrame({"reference": np.repeat([f"r{i}" for i in range(n_refs)], per_ref),
                          "reference_index": np.repeat(np.arange(n_refs), per_ref), "distorted_index": np.arange(n),
                          "distortion": np.tile(["blur", "noise", "jpeg"], n_refs), "level": 1, "quality": quality})
    data = SimpleNamespace(pairs=pairs, patches_per_image=1, references="refs", distorted="dist", name="toy",
                           resize_mode="squash")
    features = {"refs": rng.normal(size=(n_refs, 4)), "dist": rng.normal(size=(n, 4))}
    ref = rng.normal(size=(n, 2, 3))
    blocks = {"block1": block_pair_statistics(ref, ref + rng.normal(size=ref.shape))}
    encoder = SimpleNamespace(encode_images=features.__getitem__,
                              encode_block_pairs=lambda references, distorted, reference_rows, distorted_rows: blocks)
    return data, encoder, features


def test_measure_with_every_layer_adds_each_checkpoints_layer_rows_and_best_block_row(tmp_path, monkeypatch):
    # layers="all": iqa_layers holds layer_scores' rows of every checkpoint in order, iqa_best_block one row each
    from helpers import fake_run

    from clipalign_utils.metrics.iqa import pair_distances

    run = fake_run(tmp_path, epochs=(0, 1))
    data, encoder, features = _stub_iqa()
    monkeypatch.setattr(iqa_step, "_encoders", lambda run, params: [(c, encoder) for c in run.checkpoints])
    params = {"distance": "euclidean", "n_boot": 20, "eval_seed": 0, "layers": "all"}
    tables = iqa_step.measure(run, params, data)
    final = pair_distances(features["refs"], features["dist"], data.pairs["reference_index"],
                           data.pairs["distorted_index"], "euclidean")
    expected_rows, expected_best = [], []
    for checkpoint in run.checkpoints:
        rows, best = iqa_step.layer_scores(checkpoint, encoder, data, params, final)
        expected_rows += rows
        expected_best.append(best)
    pd.testing.assert_frame_equal(tables["iqa_layers"],
                                  pd.DataFrame(expected_rows, columns=iqa_step.LAYER_COLUMNS))
    pd.testing.assert_frame_equal(tables["iqa_best_block"],
                                  pd.DataFrame(expected_best, columns=iqa_step.BEST_BLOCK_COLUMNS))
    assert tables["iqa_layers"]["layer"].tolist() == ["block1", "final"] * 2
    # any other setting: no per-layer tables (io.write_tables removes those left from before)
    assert set(iqa_step.measure(run, {**params, "layers": "final"}, data)) == {"iqa", "iqa_pairs", "iqa_peak",
                                                                             "iqa_families"}


def test_compare_distances_scores_the_last_checkpoint_under_each_distance_by_hand(tmp_path, monkeypatch):
    # ref (1, 0); distorted (2, 0), (1, .5), (1, 1.5), quality 3, 2, 1: cosine distances 0 < .11 < .45 rank as
    # the quality does (SRCC 1); Euclidean 1, .5, 1.5 puts the best image second (SRCC 1 − 6·2/(3·8) = .5)
    from types import SimpleNamespace

    from helpers import fake_run

    run = fake_run(tmp_path, epochs=(0, 1, 2))
    pairs = pd.DataFrame({"reference": "r", "reference_index": 0, "distorted_index": [0, 1, 2],
                          "quality": [3.0, 2.0, 1.0]})
    data = SimpleNamespace(pairs=pairs, patches_per_image=1, references="refs", distorted="dist")
    features = {"refs": np.array([[1.0, 0.0]]), "dist": np.array([[2.0, 0.0], [1.0, 0.5], [1.0, 1.5]])}
    asked = []

    def run_encoder(run, checkpoint, device, batch_size, cache):
        asked.append(checkpoint)
        return SimpleNamespace(encode_images=features.__getitem__)

    monkeypatch.setattr(iqa_step, "run_encoder", run_encoder)
    table = iqa_step.compare_distances(run, {"device": "cpu", "eval_batch_size": 2}, data).set_index("distance")
    assert asked == [run.checkpoints[-1]]
    assert list(table.columns) == ["srcc", "krcc", "plcc", "pearson"]
    assert table.loc["cosine", "srcc"] == pytest.approx(1.0)
    assert table.loc["euclidean", "srcc"] == pytest.approx(0.5)
    assert table.loc["euclidean", "krcc"] == pytest.approx(1 / 3)  # 2 concordant pairs, 1 discordant


def test_seen_families_are_none_for_a_clean_world_even_with_families_recorded(tmp_path):
    # quality_variation 0: the families listed were never applied; > 0: they were
    from clipalign_utils.layout import RunDir

    record = RunDir(tmp_path).train_record
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps({"quality_variation": 0.0, "quality_families": ["gaussian_blur"]}))
    assert iqa_step.seen_families(tmp_path) == ()
    record.write_text(json.dumps({"quality_variation": 0.5, "quality_families": ["gaussian_blur"]}))
    assert iqa_step.seen_families(tmp_path) == ("gaussian_blur",)
    record.write_text(json.dumps({"quality_families": ["gaussian_blur"]}))  # no quality_variation: a clean world
    assert iqa_step.seen_families(tmp_path) == ()


def test_a_kadid10k_page_names_the_dataset_and_the_image_size_its_files_have(tmp_path):
    # page 2 named TID2013's 512 × 384 images on a KADID-10k run, and every figure the id kadid10k
    data = load_iqa("kadid10k", str(make_kadid10k(tmp_path)), config.resolve("smoke"), image_size=32)
    run = Run(tmp_path, "RN50", 224, [Checkpoint(Path("epoch_0.pt"), 0.0)])
    width, height = fixtures_real.SIZE
    assert f"; dataset KADID-10k ({width} × {height} px images): " in iqa_page.describe_data(
        run, data, {"distance": "cosine"})[0]
    (ax,) = iqa_page.alignment_figure(_tables(), data, {"distance": "euclidean"}).axes
    assert ax.get_title() == "alignment with KADID-10k quality (euclidean distance)"
    axes = iqa_page.scatter_figure(_tables(), data, {"distance": "euclidean"}).axes
    assert axes[0].get_xlabel() == "quality (KADID-10k; higher = better)"
    source = (Path(__file__).parents[1] / "notebooks" / "02_iqa_alignment.py").read_text(encoding="utf-8")
    assert "512 × 384 TID2013" not in source  # the run's size is the computed line's


def test_a_curve_reversed_at_every_checkpoint_is_said_to_rank_quality_in_reverse():
    """A reader review: random weights, every SRCC negative with its interval below 0, read "SRCC peaks at epoch 1:
    -0.300" and "below 0 — the final checkpoint is better aligned than any early one": the peak is the least
    reversed, and the final checkpoint less reversed, not aligned."""
    reversed_ = {0: (-0.5, -0.6, -0.4), 1: (-0.3, -0.4, -0.2), 2: (-0.4, -0.5, -0.3)}
    tables = _tables(overall=reversed_)
    said = ("every checkpoint's SRCC interval lies below 0: the model ranks quality in reverse at every checkpoint "
            "(the peak is the least reversed)")
    assert iqa_page.peak_sentences(tables)[1] == f"SRCC peaks at epoch 1: -0.300 [-0.400, -0.200]; {said}"
    test = {"early_end": 2 / 3, "n_early": 1, "n_references": 3, "final_epoch": 2.0, "final_srcc": -0.1,
            "early_drop": -0.2, "early_peak_epoch": 0.5, "early_peak_srcc": -0.3, "lo": -0.3, "hi": -0.1}
    lines = iqa_page.early_peak_sentences({**tables, "iqa_peak": pd.DataFrame([test])})
    assert lines[1].endswith("over 3 references: below 0 — the final checkpoint scores higher than any early one; "
                             f"but {said}")
    # one checkpoint's interval reaches 0: not reversed throughout, the sentences as before
    crossing = {**reversed_, 2: (-0.1, -0.2, 0.05)}
    assert iqa_page.peak_sentences(_tables(overall=crossing))[1] == "SRCC peaks at epoch 2: -0.100 [-0.200, 0.050]"
    lines = iqa_page.early_peak_sentences({**_tables(overall=crossing), "iqa_peak": pd.DataFrame([test])})
    assert lines[1].endswith("below 0 — the final checkpoint is better aligned than any early one")


def test_a_curve_at_chance_at_every_checkpoint_has_no_early_peak_to_read():
    """Every checkpoint's SRCC interval holds 0 (random weights): a paired interval above 0 says the best early
    checkpoint scores higher than the final one, not "an early peak and a decline" (the no-peak rule pages 5, 7, 8
    and 10 follow; the note of 2026-12-07 had left the early-peak sentences out of it)."""
    at_chance = {0: (0.05, -0.2, 0.3), 1: (0.2, -0.05, 0.4), 2: (-0.05, -0.3, 0.2)}
    tables = _tables(overall=at_chance)
    said = ("SRCC is not distinguishable from chance (0) at any checkpoint (every checkpoint's interval contains it): "
            "there is no peak to read")
    assert iqa_page.peak_sentences(tables)[1] == f"SRCC peaks at epoch 1: 0.200 [-0.050, 0.400]; {said}"
    test = {"early_end": 2 / 3, "n_early": 1, "n_references": 3, "final_epoch": 2.0, "final_srcc": -0.05,
            "early_drop": 0.25, "early_peak_epoch": 0.5, "early_peak_srcc": 0.2, "lo": 0.05, "hi": 0.45}
    lines = iqa_page.early_peak_sentences({**tables, "iqa_peak": pd.DataFrame([test])})
    assert lines[1].endswith("over 3 references: above 0 — the best early checkpoint scores higher than the final "
                             f"one; but {said}")
    below = {**test, "early_drop": -0.2, "lo": -0.3, "hi": -0.1}
    lines = iqa_page.early_peak_sentences({**tables, "iqa_peak": pd.DataFrame([below])})
    assert lines[1].endswith(f"below 0 — the final checkpoint scores higher than any early one; but {said}")
    # one checkpoint above chance: a peak to read, the sentences as before
    lines = iqa_page.early_peak_sentences({**_tables(overall={**at_chance, 1: (0.3, 0.1, 0.5)}),
                                           "iqa_peak": pd.DataFrame([below])})
    assert lines[1].endswith("below 0 — the final checkpoint is better aligned than any early one")
