"""Saliency correspondence: MIT-benchmark metrics, model saliency maps, and the ground-truth loaders."""
from __future__ import annotations

import json
import re
import warnings

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.io import savemat

from clipalign_utils.data import world
from clipalign_utils.data.saliency import (SALIENCY_SPLIT, cue_conflict_saliency, embedded_saliency,
                                           load_saliency, region_masks, render_with_mask)
from clipalign_utils.errors import DatasetError, ParameterError
from clipalign_utils.metrics import saliency as M
from clipalign_utils.steps.saliency import maps as S


# ---------------------------------------------------------------------------- metrics
def test_cc_hand_computed_and_identity():
    s = np.array([[1.0, 2.0], [3.0, 4.0]])
    d = np.array([[1.0, 2.0], [3.0, 5.0]])
    # deviations (-1.5, -.5, .5, 1.5) and (-1.75, -.75, .25, 2.25): products sum to 6.5
    assert M.cc(s, d) == pytest.approx(6.5 / np.sqrt(5.0 * 8.75))
    assert M.cc(d, d) == pytest.approx(1.0)


def test_nss_uses_sample_std():
    s = np.array([[0.0, 1.0], [2.0, 3.0]])  # mean 1.5, sample std sqrt(5/3)
    fix = np.array([[0, 0], [0, 1]])
    assert M.nss(s, fix) == pytest.approx(1.5 / np.sqrt(5 / 3))
    assert M.nss(s, np.array([[1, 0], [0, 1]])) == pytest.approx(0.0)


def test_sim_hand_computed():
    s = np.array([[0.0, 1.0], [1.0, 2.0]])  # -> [[0, .25], [.25, .5]]
    d = np.array([[1.0, 0.0], [0.0, 1.0]])  # -> [[.5, 0], [0, .5]]
    assert M.sim(s, d) == pytest.approx(0.5)
    assert M.sim(d, d) == pytest.approx(1.0)
    assert M.sim(np.zeros((2, 2)), d) == 0.0  # an all-zero map stays zero (Matlab)


def test_kld_hand_computed():
    d = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert M.kld(np.ones((2, 2)), d) == pytest.approx(np.log(2.0), abs=1e-12)
    assert M.kld(d, d) == pytest.approx(0.0, abs=1e-12)


def test_constant_map_gives_nan_cc_nss():
    density = np.array([[0.1, 0.5, 0.2], [0.3, 0.9, 0.1], [0.0, 0.2, 0.4]])
    fix = density > 0.45
    constant = np.full((3, 3), 0.7)
    assert np.isnan(M.cc(constant, density))
    assert np.isnan(M.nss(constant, fix))
    assert np.isnan(M.sim(constant, density))  # min-max of a constant is 0/0 in the Matlab code too
    assert np.isfinite(M.kld(constant, density))  # a uniform distribution is a valid prediction
    # Constants whose float64 mean is rounded (0.3 × 32² averages to 0.30000000000000004: a std of 5e-17,
    # not 0) are constant too: NSS would z-score the rounding to ±1 and CC come out as ±4e-17.
    fix32 = np.zeros((32, 32), bool)
    fix32[3, 4:19] = True
    density32 = np.add.outer(np.arange(32.0), np.arange(32.0))
    for value in (0.3, 1 / 3, 1 / 49, 0.1):
        rounded = np.full((32, 32), value)
        assert rounded.std(ddof=1) != 0  # the case: a naive std == 0 test lets it through
        assert np.isnan(M.nss(rounded, fix32)) and np.isnan(M.cc(rounded, density32))
        assert np.isnan(M.cc(density32, rounded))


def test_map_equal_to_ground_truth():
    rng = np.random.default_rng(0)
    density = rng.random((4, 4))
    assert M.cc(density, density) == pytest.approx(1.0)
    assert M.sim(density, density) == pytest.approx(1.0)
    assert M.kld(density, density) == pytest.approx(0.0, abs=1e-9)


def test_auc_judd_hand_computed():
    s = np.array([[0.1, 0.4], [0.3, 0.9]])  # min-max -> [[0, .375], [.25, 1]]
    # fixations at .375 and .25: ROC (0,0) (.5,.5) (.5,1) (1,1) -> area .125 + .5
    assert M.auc_judd(s, np.array([[0, 1], [1, 0]]), jitter=False) == pytest.approx(0.625)
    assert M.auc_judd(s, np.array([[0, 1], [0, 1]]), jitter=False) == pytest.approx(1.0)
    # the Matlab default jitter (< 1e-7) does not move a map without ties
    assert M.auc_judd(s, np.array([[0, 1], [1, 0]])) == pytest.approx(0.625, abs=1e-5)


def test_sauc_hand_computed():
    s = np.array([[0.0, 0.45, 1.0], [0.65, 0.85, 0.15], [0.2, 0.2, 0.2]])
    fix = np.zeros((3, 3), bool)
    fix[1, 1] = fix[0, 1] = True  # .85 and .45
    other = np.zeros((3, 3), bool)
    other[1, 0] = other[1, 2] = True  # .65 and .15: all other fixations are used, any split
    # thresholds .8, .7, …, 0: ROC (0,0) (0,.5) (.5,.5) (.5,1) (1,1) -> .25 + .5 (3 of 4 pairs ordered)
    assert M.sauc(s, fix, other, n_splits=5) == pytest.approx(0.75)
    # fixations on other images where this one's are: a pure centre bias earns 0.5
    assert M.sauc(s, fix, fix, n_splits=3) == pytest.approx(0.5)


def _matlab_split_auc(at_fixations, negatives, step=0.1):
    """One split's ROC area as AUC_shuffled.m and AUC_Borji.m compute it: thresholds fliplr(0:step:top), top
    the largest value in play; true positives over the fixations, false positives over the negatives."""
    thresholds = (np.arange(int(np.floor(max(at_fixations.max(), negatives.max()) / step + 1e-9)) + 1) * step)[::-1]
    tp = np.concatenate([[0.0], (at_fixations[None, :] >= thresholds[:, None]).sum(1) / at_fixations.size, [1.0]])
    fp = np.concatenate([[0.0], (negatives[None, :] >= thresholds[:, None]).sum(1) / negatives.size, [1.0]])
    return M._trapezoid(tp, fp)


def _sauc_one_split_at_a_time(saliency_map, fixations, other, n_splits, step, seed):
    """The shuffled AUC as the MIT benchmark's Matlab code computes it, split by split."""
    s = M._minmax(np.asarray(saliency_map, dtype=float)).ravel()
    at_fixations, other_index = s[fixations.ravel()], np.flatnonzero(other.ravel())
    n_other = min(at_fixations.size, other_index.size)
    rng = np.random.default_rng(seed)
    return float(np.mean([_matlab_split_auc(at_fixations, s[rng.permutation(other_index)[:n_other]], step)
                          for _ in range(n_splits)]))


def _random_maps(rng, largest: int, fixated: float):
    """A random saliency map of random size and skew, with a random binary fixation map (at least one)."""
    h, w = rng.integers(6, largest, size=2)
    fixations = rng.random((h, w)) < rng.uniform(0.01, fixated)
    fixations[0, 0] = True
    return rng.random((h, w)) ** rng.uniform(0.3, 4), fixations


@pytest.mark.parametrize("step", [0.1, 0.01])
def test_sauc_scores_its_splits_together_with_the_same_arithmetic_as_one_at_a_time(step):
    rng = np.random.default_rng(3)
    for trial in range(40):
        saliency_map, fixations = _random_maps(rng, 60, 0.1)
        h, w = fixations.shape
        other = rng.random((h, w)) < rng.uniform(0.05, 0.4)  # more than the fixations: each split its own top
        other[-1, -1] = True
        assert M.sauc(saliency_map, fixations, other, n_splits=30, step=step, seed=trial) == \
            _sauc_one_split_at_a_time(saliency_map, fixations, other, 30, step, trial)


def test_auc_borji_against_the_matlab_code_and_by_hand():
    """AUC_Borji.m split by split (negatives: pixels drawn anywhere, with replacement, as many as the
    fixations; false positives over them), on the same draws; and by hand: a map that is 1 exactly at the
    fixations scores 1 − f/2 per split, f the share of its negatives that land on fixations."""
    rng = np.random.default_rng(5)
    for trial in range(20):
        saliency_map, fixations = _random_maps(rng, 40, 0.2)
        s = M._minmax(saliency_map).ravel()
        at_fixations = s[fixations.ravel()]
        draws = np.random.default_rng(trial).integers(0, s.size, size=(30, at_fixations.size))
        aucs = [_matlab_split_auc(at_fixations, negatives) for negatives in s[draws]]
        assert M.auc_borji(saliency_map, fixations, n_splits=30, seed=trial) == pytest.approx(np.mean(aucs), abs=1e-12)
    fixations = np.zeros((16, 16), bool)
    fixations[4:12, 4:12] = True  # a quarter of the pixels
    exact = M.auc_borji(fixations.astype(float), fixations, n_splits=100, seed=1)
    shares = fixations.ravel()[np.random.default_rng(1).integers(0, 256, size=(100, 64))].mean(axis=1)
    assert exact == pytest.approx(np.mean(1 - shares / 2), abs=1e-12)
    assert exact == pytest.approx(1 - 0.25 / 2, abs=0.015)
    # a centre bias scores well here (negatives everywhere), near chance on sAUC (negatives at fixations)
    centre = M.centre_gaussian((16, 16))
    assert M.auc_borji(centre, fixations) > 0.8 and M.sauc(centre, fixations, fixations) == pytest.approx(0.5)
    assert np.isnan(M.auc_borji(centre, np.zeros((16, 16), bool)))


def test_auc_borji_needs_two_fixations_as_the_matlab_code_does():
    """AUC_Borji.m returns NaN when ``sum(fixationMap(:)>0)<=1``; AUC_shuffled.m and AUC_Judd.m score one fixation.
    By hand, on a 3 × 3 map min–max normalised to 0 … 1 with one fixation at its maximum: AUC-Judd's ROC is
    (0,0) (0,1) (1,1), area 1; sAUC's negatives at .5 (the other image's one fixation): thresholds 1, .9, …, 0 give
    (0,0) (0,1) … (1,1), area 1."""
    s = np.array([[0.0, 0.25, 0.5], [0.25, 1.0, 0.25], [0.0, 0.25, 0.0]])
    one = np.zeros((3, 3), bool)
    one[1, 1] = True
    other = np.zeros((3, 3), bool)
    other[0, 2] = True
    assert np.isnan(M.auc_borji(s, one))
    assert M.auc_judd(s, one, jitter=False) == pytest.approx(1.0)
    assert M.sauc(s, one, other, n_splits=4) == pytest.approx(1.0)
    scores = M.image_scores(s, s, one, other, n_splits=4)
    assert np.isnan(scores["auc_borji"]) and scores["sauc"] == pytest.approx(1.0)
    # two fixated pixels, both at the map's top value 1, the rest 0: each split's ROC is (0,0) (f,1) (1,1), f the
    # share of its two negatives that land on a fixated pixel, area 1 − f/2; draws landing on 2 of 9 pixels
    two = one.copy()
    two[0, 0] = True
    binary = two.astype(float)
    draws = np.random.default_rng(0).integers(0, 9, size=(100, 2))
    f = two.ravel()[draws].mean(axis=1)
    assert M.auc_borji(binary, two, n_splits=100, seed=0) == pytest.approx(np.mean(1 - f / 2), abs=1e-12)
    assert M.image_scores(binary, binary, two, other, n_splits=100)["auc_borji"] == \
        pytest.approx(np.mean(1 - f / 2), abs=1e-12)


def _one_map_at_a_time(s, density, fixations, other, seed, n_splits):
    """Every metric as written before the ground truth's share was prepared once per image (the whole-map
    expressions, the draws made per metric), for the prepared path to equal bit for bit."""
    nan = float("nan")
    d = density
    fixated = fixations > 0

    def constant(m):
        return bool(np.ptp(m) == 0)

    def sim_normalise(m):
        return m if not m.any() else M._minmax(m) / M._minmax(m).sum()

    out = {}
    if constant(s) or constant(d):
        out["cc"] = nan
    else:
        sc, dc = s - s.mean(), d - d.mean()
        out["cc"] = float((sc * dc).sum() / np.sqrt((sc * sc).sum() * (dc * dc).sum()))
    std = s.std(ddof=1)
    out["nss"] = nan if constant(s) or not fixated.any() else float(((s - s.mean()) / std)[fixated].mean())
    sn, dn = sim_normalise(s), sim_normalise(d)
    out["sim"] = nan if np.isnan(sn).all() or np.isnan(dn).all() else float(np.minimum(sn, dn).sum())
    q, p = (s / s.sum() if s.any() else s), (d / d.sum() if d.any() else d)
    out["kld"] = float((p * np.log(M.MATLAB_EPS + p / (q + M.MATLAB_EPS))).sum())
    jittered = M._minmax(s + np.random.default_rng(seed).random(s.shape) / 1e7).ravel()
    at = jittered[fixated.ravel()]
    above = jittered.size - np.searchsorted(np.sort(jittered), np.sort(at)[::-1], side="left")
    i = np.arange(1, at.size + 1)
    out["auc_judd"] = float(M._trapezoid(np.r_[0.0, i / at.size, 1.0],
                                         np.r_[0.0, (above - i) / (jittered.size - at.size), 1.0]))
    flat = M._minmax(s).ravel()
    other_index = np.flatnonzero(other.ravel())
    rng = np.random.default_rng(seed)
    shuffled = np.stack([flat[rng.permutation(other_index)[:min(at.size, other_index.size)]] for _ in range(n_splits)])
    uniform = flat[np.random.default_rng(seed).integers(0, flat.size, size=(n_splits, at.size))]
    if np.isnan(flat).all():  # a map without range
        return {**out, "sauc": nan, "auc_borji": nan}
    return {**out, "sauc": M._mean_split_auc(flat[fixated.ravel()], shuffled, 0.1),
            "auc_borji": M._mean_split_auc(flat[fixated.ravel()], uniform, 0.1) if at.size > 1 else nan}


def test_an_images_prepared_ground_truth_scores_every_map_as_the_metrics_do_one_at_a_time():
    """The ground truth's share of each metric is made once per image and shared by every checkpoint's map (a
    full-HD image's scores took 131 ms a map): the same floats as each metric written out for one map, whatever
    map came before (nothing shared is written into), whatever its memory layout (a review found KLD summed in
    place moving the last digit of a transposed map's) and on any number of threads."""
    rng = np.random.default_rng(11)
    truths, maps, expected = [], [], []
    for trial in range(12):
        saliency_map, fixations = _random_maps(rng, 50, 0.1)
        density = rng.random(fixations.shape) ** 3
        other = rng.random(fixations.shape) < 0.2
        truth = M.ImageTruth.of(density, fixations, other, seed=trial, n_splits=20)
        for s in (saliency_map, saliency_map[::-1].copy(), np.full(fixations.shape, 0.5),
                  np.asfortranarray(saliency_map ** 2)):  # a transposed layout: sums follow memory order
            truths.append(truth)
            maps.append(s)
            expected.append(_one_map_at_a_time(s, density, fixations, other, trial, 20))
            assert M.image_scores(s, density, fixations, other, seed=trial, n_splits=20) == \
                pytest.approx(expected[-1], abs=0, rel=0, nan_ok=True)
    for threads in (1, 3):
        table = M.score_truths(maps, truths, first=5, threads=threads)
        assert table["image"].tolist() == list(range(5, 5 + len(maps)))
        for row, want in zip(table.to_dict("records"), expected):
            assert {k: row[k] for k in want} == pytest.approx(want, abs=0, rel=0, nan_ok=True)
    assert np.isnan(expected[2]["cc"]) and np.isnan(expected[2]["sauc"])  # the constant map, as before
    # Nothing to score gives NaN, as it did, where preparing the truth first had raised (a review's fuzz): an
    # image of no pixels, and no splits on an image without fixations
    empty = M.image_scores(np.zeros((0, 6)), np.zeros((0, 6)), np.zeros((0, 6)), np.zeros((0, 6)), n_splits=3)
    assert empty["kld"] == 0 and all(np.isnan(v) for k, v in empty.items() if k != "kld")
    no_splits = M.image_scores(rng.random((5, 6)), rng.random((5, 6)), np.zeros((5, 6)), rng.random((5, 6)) > 0.5,
                               n_splits=0)
    assert np.isfinite(no_splits["cc"]) and np.isnan(no_splits["sauc"]) and np.isnan(no_splits["auc_borji"])
    with pytest.raises(ParameterError, match="one shape"):
        M.ImageTruth.of(np.ones((4, 5)), np.ones((5, 4)), np.ones((5, 4)))


def test_the_saliency_benchmark_compares_the_two_paths_on_identical_values():
    """benchmarks/saliency.py, at a small size: both paths timed, the values identical, the last line the ratio."""
    import subprocess
    import sys

    from clipalign_utils.registry import REPO_ROOT

    done = subprocess.run([sys.executable, str(REPO_ROOT / "benchmarks" / "saliency.py"), "--images", "3", "--maps",
                           "2", "--size", "64x48"], capture_output=True, text=True, cwd=REPO_ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert lines[0].startswith("3 images at 64×48, 2 maps each")
    assert "  values identical: True" in lines
    assert re.fullmatch(r"the step's path: \d\.\d\d of the one-map-at-a-time time \(\d+\.\d ms a map against "
                        r"\d+\.\d\)", lines[-1])


def test_a_density_reads_as_its_channels_mean_a_grey_file_without_making_them(tmp_path):
    """A release's grey density (mode L) is read as it is; an RGB one as the mean of its channels; a truncated
    one is one line naming the file."""
    from clipalign_utils.data.saliency_base import read_grey

    rng = np.random.default_rng(2)
    grey = rng.integers(0, 256, (30, 40), dtype=np.uint8)
    Image.fromarray(grey).save(tmp_path / "grey.jpg", quality=90)
    decoded = np.asarray(Image.open(tmp_path / "grey.jpg").convert("RGB")).astype(np.float64).mean(axis=2)
    assert read_grey(tmp_path / "grey.jpg").dtype == np.float64
    assert np.array_equal(read_grey(tmp_path / "grey.jpg"), decoded)
    colour = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    Image.fromarray(colour).save(tmp_path / "colour.png")
    assert np.array_equal(read_grey(tmp_path / "colour.png"), colour.astype(np.float64).mean(axis=2))
    (tmp_path / "cut.jpg").write_bytes((tmp_path / "grey.jpg").read_bytes()[:200])
    with pytest.raises(DatasetError, match=r"cut\.jpg is not a readable image \(OSError\)"):
        read_grey(tmp_path / "cut.jpg")


def test_other_fixations_union_and_rescaling():
    a = np.zeros((4, 4), bool)
    a[0, 0] = True
    b = np.zeros((8, 8), bool)
    b[7, 7] = True
    union = M.other_fixations([a, b, a.copy()], 0, n_other=10)
    assert union[0, 0] and union[3, 3] and union.sum() == 2


def test_resized_map_and_centre_gaussian():
    g = M.centre_gaussian((6, 8))
    assert g.shape == (6, 8) and g.max() <= 1 and np.unravel_index(g.argmax(), g.shape) in {(2, 3), (2, 4), (3, 3), (3, 4)}
    assert M.cc(M.centre_gaussian((3, 4)), M.centre_gaussian((6, 8))) > 0.95


def test_summarize_rows_and_bootstrap():
    rng = np.random.default_rng(1)
    densities = [rng.random((5, 5)) for _ in range(6)]
    fixations = [d > 0.7 for d in densities]
    table = M.score_saliency(densities, densities, fixations, n_boot=50, seed=0)
    assert list(table.columns) == M.SUMMARY_COLUMNS and list(table["metric"]) == list(M.METRICS)
    row = table.set_index("metric")
    assert row.loc["cc", "value"] == pytest.approx(1.0) and row.loc["cc", "n_images"] == 6
    assert (table["value_lo"] <= table["value"] + 1e-12).all() and (table["value"] <= table["value_hi"] + 1e-12).all()
    constant = M.score_saliency([np.ones((5, 5))] * 6, densities, fixations, n_boot=20)
    assert constant.set_index("metric").loc["cc", "n_images"] == 0  # CC undefined on every image


def test_region_shares():
    mask = np.zeros((4, 4), bool)
    mask[:2] = True
    table = M.region_shares([np.pad(np.ones((2, 4)), ((0, 2), (0, 0)))], {"top": [mask]})
    assert table.loc[0, "share"] == 1.0 and table.loc[0, "area"] == 0.5 and table.loc[0, "enrichment"] == 2.0


# --------------------------------------------------------------------------- embedded data
def test_render_with_mask_matches_world_and_cue_conflict():
    config = world.WorldConfig()
    cue = cue_conflict_saliency(1, 3, config)
    np.testing.assert_array_equal(cue.images.images, world.make_cue_conflict(1, 3, config).images)
    rng = np.random.default_rng([0, SALIENCY_SPLIT, 0, 5])
    image, alpha = render_with_mask(2, 4, config, rng)
    outside = image[alpha == 0]
    assert (outside == outside[0]).all()  # the background is one colour: the mask is the silhouette's
    assert alpha.max() == 1.0
    masks = region_masks(alpha)
    assert not (masks["contour"] & masks["interior"]).any() and masks["interior"].any()
    assert (masks["contour"] | masks["interior"] | masks["background"]).all()


def test_embedded_set():
    data = load_saliency("embedded", None, image_size=32, seed=0, n_images=16)
    assert len(data) == 16 and "synthetic" in data.ground_truth
    density, fixations = data.target(0)
    assert density.shape == fixations.shape == (32, 32) and density.sum() == pytest.approx(1.0)
    assert 0 < fixations.sum() <= 24
    assert list(data.labels[:8]) == list(range(8)) and set(data.regions) == {"contour", "interior", "background"}
    again = embedded_saliency(16, 0, world.WorldConfig())
    np.testing.assert_array_equal(again.target(3)[1], data.target(3)[1])
    # fixations concentrate on the silhouette: its blurred density beats the centre prior alone
    assert M.nss(density, fixations) > M.nss(M.centre_gaussian((32, 32)), fixations)


def test_dispatch_errors():
    with pytest.raises(ParameterError, match="saliency_dataset"):
        load_saliency("salicon", None, image_size=32, seed=0, n_images=4)
    with pytest.raises(DatasetError, match="saliency_root"):
        load_saliency("mit1003", "", image_size=32, seed=0, n_images=4)


# ------------------------------------------------------------------------- real layouts
def _jpeg(path, array, quality=75):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, "JPEG", quality=quality)


def _points(shape, n, seed):
    rng = np.random.default_rng(seed)
    fix = np.zeros(shape, bool)
    fix[rng.integers(0, shape[0], n), rng.integers(0, shape[1], n)] = True
    return fix


def test_mit1003_layout(tmp_path):
    rng = np.random.default_rng(0)
    fixations = {}
    for name, shape in (("i05", (40, 56)), ("i11", (56, 40))):
        _jpeg(tmp_path / "ALLSTIMULI" / f"{name}.jpeg", rng.integers(0, 255, (*shape, 3), dtype=np.uint8))
        fixations[name] = _points(shape, 12, len(name) + shape[0])
        _jpeg(tmp_path / "ALLFIXATIONMAPS" / f"{name}_fixPts.jpg", fixations[name].astype(np.uint8) * 255)
        _jpeg(tmp_path / "ALLFIXATIONMAPS" / f"{name}_fixMap.jpg", rng.integers(0, 255, shape, dtype=np.uint8))
    (tmp_path / "ALLSTIMULI" / "Thumbs.db").write_bytes(b"\x00\x01")
    (tmp_path / "ALLFIXATIONMAPS" / "makeFixationMaps.m").write_text("% script")
    data = load_saliency("mit1003", tmp_path, image_size=32, seed=0, n_images=None)
    assert data.names == ["i05", "i11"] and (data.labels == -1).all()
    density, fix = data.target(1)
    assert density.shape == (56, 40)
    # JPEG rings around each point (non-zero neighbours); the > 127 threshold recovers the points exactly
    raw = np.asarray(Image.open(tmp_path / "ALLFIXATIONMAPS" / "i11_fixPts.jpg").convert("L"))
    assert (raw > 0).sum() > fixations["i11"].sum()
    np.testing.assert_array_equal(fix, fixations["i11"])
    assert data.images.batch(0, 2).shape == (2, 32, 32, 3)  # whole images, squashed to the model's input
    # The page's examples (arrays) are the pixels the encoder sees (batch): squashed, not cropped.
    whole = np.asarray(Image.open(tmp_path / "ALLSTIMULI" / "i05.jpeg").convert("RGB").resize((32, 32), Image.BICUBIC))
    np.testing.assert_array_equal(data.images.arrays(0, 1)[0], whole)
    np.testing.assert_array_equal(data.images.arrays(0, 2), data.images.batch(0, 2).numpy())
    (tmp_path / "ALLFIXATIONMAPS" / "i11_fixMap.jpg").unlink()
    with pytest.raises(DatasetError, match="i11_fixMap.jpg"):
        load_saliency("mit1003", tmp_path, image_size=32, seed=0, n_images=None)


def test_mit1003_stimuli_in_pysaliency_natural_order(tmp_path):
    # Real MIT1003 names whose numbers differ in length: pysaliency natsorts them (100296082 before
    # 1000022926), where a plain sort compares digit by digit and puts 1000022926 first; a first-N subset
    # must be pysaliency's first N.
    names = ["i1000022926", "i100296082", "i05june05_static_street_boston_p1010764", "i2", "i10"]
    for k, name in enumerate(names):
        _jpeg(tmp_path / "ALLSTIMULI" / f"{name}.jpeg", np.full((16, 16, 3), 20 * k, np.uint8))
        _jpeg(tmp_path / "ALLFIXATIONMAPS" / f"{name}_fixPts.jpg", _points((16, 16), 3, k).astype(np.uint8) * 255)
        _jpeg(tmp_path / "ALLFIXATIONMAPS" / f"{name}_fixMap.jpg", np.full((16, 16), 9, np.uint8))
    natural = ["i2", "i05june05_static_street_boston_p1010764", "i10", "i100296082", "i1000022926"]
    assert load_saliency("mit1003", tmp_path, image_size=16, seed=0, n_images=0).names == natural
    assert load_saliency("mit1003", tmp_path, image_size=16, seed=0, n_images=4).names == natural[:4]


def test_cat2000_layout(tmp_path):
    rng = np.random.default_rng(0)
    base = tmp_path / "trainSet"
    expected = {}
    for category, name in (("Action", "001"), ("Art", "002")):
        _jpeg(base / "Stimuli" / category / f"{name}.jpg", rng.integers(0, 255, (27, 48, 3), dtype=np.uint8))
        _jpeg(base / "FIXATIONMAPS" / category / f"{name}.jpg", rng.integers(0, 255, (27, 48), dtype=np.uint8))
        expected[category] = _points((27, 48), 9, len(category))
        (base / "FIXATIONLOCS" / category).mkdir(parents=True, exist_ok=True)
        savemat(base / "FIXATIONLOCS" / category / f"{name}.mat", {"fixLocs": expected[category].astype(np.uint8)})
    (base / "Stimuli" / "Action" / "Thumbs.db").write_bytes(b"junk")
    data = load_saliency("cat2000", tmp_path, image_size=32, seed=0, n_images=0)
    assert data.names == ["Action/001", "Art/002"]
    np.testing.assert_array_equal(data.target(1)[1], expected["Art"])
    assert data.target(0)[0].shape == (27, 48)
    others = data.others(n_other=10)
    np.testing.assert_array_equal(others[0], expected["Art"])
    (base / "FIXATIONLOCS" / "Art" / "002.mat").write_bytes(b"not a mat file at all")
    broken = load_saliency("cat2000", base, image_size=32, seed=0, n_images=0)
    with pytest.raises(DatasetError, match="002.mat"):
        broken.target(1)
    (base / "FIXATIONMAPS" / "Action" / "001.jpg").unlink()
    with pytest.raises(DatasetError, match="001.jpg"):
        load_saliency("cat2000", tmp_path, image_size=32, seed=0, n_images=0)


def test_a_file_sets_ground_truth_decodes_each_density_once(tmp_path, monkeypatch):
    # The shuffled-AUC negatives read every image's fixations; they read the fixations file alone, where
    # they had decoded the image's density too (a full-HD JPEG's 40 ms, a second time when the image's own
    # ground truth is prepared).
    from fixtures_real import make_cat2000

    from clipalign_utils.data import saliency_base
    from clipalign_utils.steps.saliency.analysis import GroundTruth

    make_cat2000(tmp_path, per_category=3)
    decoded = []
    read_grey = saliency_base.read_grey
    monkeypatch.setattr(saliency_base, "read_grey", lambda path: decoded.append(path.name) or read_grey(path))
    data = load_saliency("cat2000", tmp_path, image_size=32, seed=0, n_images=0)
    truth = GroundTruth.of(data, n_other=10, seed=0)
    assert len(truth.truths) == len(data) == 6
    assert sorted(decoded) == sorted(["001.jpg", "002.jpg", "003.jpg"] * 2)  # each of the 6 densities once
    fixations = [data.target(i)[1] for i in range(len(data))]
    for i, other in enumerate(data.others(n_other=10, seed=0)):  # the union of the 5 others' fixations
        np.testing.assert_array_equal(other, np.logical_or.reduce([f for j, f in enumerate(fixations) if j != i]))
    # the fixations' read still checks the density's header, as the step reads every image's fixations before
    # any map is made: a file that is not an image, or not the fixations' size, stops it there
    (tmp_path / "trainSet" / "FIXATIONMAPS" / "Art" / "002.jpg").write_bytes(b"not a jpeg")
    Image.new("L", (40, 27)).save(tmp_path / "trainSet" / "FIXATIONMAPS" / "Action" / "003.jpg")
    damaged = load_saliency("cat2000", tmp_path, image_size=32, seed=0, n_images=0)
    with pytest.raises(DatasetError, match=r"Art/002.jpg is not a readable image"):
        damaged.fixation_points(data.names.index("Art/002"))
    with pytest.raises(DatasetError, match=r"Action/003.jpg is 40×27 px but fixLocs in .*Action/003.mat is 48×27"):
        damaged.fixation_points(data.names.index("Action/003"))



def test_saliency_releases_one_level_down_beside_residue_and_with_their_extra_files(tmp_path):
    from fixtures_real import make_cat2000, make_mit1003

    from clipalign_utils.data.cat2000 import load_cat2000
    from clipalign_utils.data.mit1003 import load_mit1003

    # MIT1003's two archives unpacked into a folder of their own, beside a zip's __MACOSX copy (AppleDouble
    # files under the same names), which sorts first and once was taken for the release
    download = tmp_path / "mit"
    make_mit1003(download / "MIT1003", n=3)
    for part in ("ALLSTIMULI", "ALLFIXATIONMAPS"):
        (download / "__MACOSX" / part).mkdir(parents=True)
        (download / "__MACOSX" / part / "._i0.jpeg").write_bytes(b"\x00\x05\x16\x07")
    mit = load_mit1003(download, image_size=32)
    assert mit.names == ["i0", "i1", "i2"]
    assert load_mit1003(download, image_size=32, n_images=2).names == ["i0", "i1"]
    with pytest.raises(ParameterError, match=r"^saliency_n_images=-1: give a count >= 0"):
        load_mit1003(download, image_size=32, n_images=-1)  # not "all but the last"

    # CAT2000 whose categories carry the release's Output/ folders of model maps, one level down too
    cat_root = make_cat2000(tmp_path / "cat" / "CAT2000")
    output = cat_root / "trainSet" / "Stimuli" / "Action" / "Output"
    output.mkdir()
    _jpeg(output / "001_SaliencyMap.jpg", np.zeros((27, 48), np.uint8))
    beside = cat_root / "trainSet" / "Stimuli" / "Output"  # … or beside the categories (pysaliency drops both)
    beside.mkdir()
    _jpeg(beside / "001.jpg", np.zeros((27, 48), np.uint8))
    (tmp_path / "cat" / ".DS_Store").write_bytes(b"junk")
    names = ["Action/001", "Action/002", "Art/001", "Art/002"]
    assert load_cat2000(tmp_path / "cat", image_size=32).names == names
    assert load_cat2000(cat_root, image_size=32).names == names == load_cat2000(cat_root / "trainSet", image_size=32).names
    with pytest.raises(ParameterError, match="saliency_n_images=-2"):
        load_cat2000(cat_root, image_size=32, n_images=-2)
    # a subset is spread over the categories (the release's first 100 stimuli are all Action's)
    assert load_cat2000(cat_root, image_size=32, n_images=2).names == ["Action/001", "Art/001"]
    assert load_cat2000(cat_root, image_size=32, n_images=3).names == ["Action/001", "Action/002", "Art/001"]
    assert load_cat2000(cat_root, image_size=32, n_images=9).names == names
    three = make_cat2000(tmp_path / "three", categories=("Action", "Affective", "Art"), per_category=3)
    assert load_cat2000(three, image_size=32, n_images=5).names == ["Action/001", "Action/002", "Affective/001",
                                                                    "Affective/002", "Art/001"]


# ------------------------------------------------------------------------------ SmoothGrad
def _toy_embed(x):
    """An 'embedding' whose first coordinate depends only on pixels [1:3, 1:3]."""
    return torch.stack([(x[:, :, 1:3, 1:3] ** 2).sum((1, 2, 3)), torch.ones(len(x))], dim=1)


def test_smoothgrad_mass_on_the_pixels_that_matter():
    x = torch.rand(3, 3, 6, 6) + 0.5
    targets = torch.tensor([[1.0, 0.0]] * 3)
    maps = S.smoothgrad(_toy_embed, x, targets, n_samples=6, noise=0.1, seed=0)
    assert maps.shape == (3, 6, 6) and (maps >= 0).all()
    inside = maps[:, 1:3, 1:3].sum((1, 2))
    assert torch.allclose(inside, maps.sum((1, 2))) and (inside > 0).all()
    one_by_one = torch.cat([S.smoothgrad(_toy_embed, x[i:i + 1], targets[i:i + 1], n_samples=6, noise=0.1,
                                         seed=0, first_index=i) for i in range(3)])
    assert torch.allclose(one_by_one, maps)  # batching does not change a map
    with pytest.raises(ParameterError):
        S.smoothgrad(_toy_embed, x, targets, n_samples=0)


def test_smoothgrad_is_the_cosine_not_the_norm():
    # the embedding's norm grows with the pixels but its direction does not: the cosine's gradient is zero
    x = torch.rand(2, 3, 4, 4) + 0.1
    maps = S.smoothgrad(lambda v: v.flatten(1).sum(1, keepdim=True).repeat(1, 2), x, torch.ones(2, 2),
                        n_samples=2, noise=0.05)
    assert torch.allclose(maps, torch.zeros_like(maps), atol=1e-6)


def test_smoothgrad_on_open_clip_and_checkpoint_cache(tmp_path):
    from clipalign_utils import models
    from clipalign_utils.encoder import Encoder
    from clipalign_utils.steps.saliency.maps import checkpoint_saliency

    model = models.create_model("tiny", seed=0)
    path = tmp_path / "epoch_0.pt"
    torch.save({"state_dict": model.state_dict()}, path)
    data = load_saliency("embedded", None, image_size=32, seed=0, n_images=4)
    templates = world.CAPTION_TEMPLATES[:1]
    encoder = Encoder(path, "clipalign-tiny", 32, device="cpu", batch_size=8, cache_dir=tmp_path / "cache")
    result = checkpoint_saliency(encoder, data.images, data.labels, data.classnames, templates, n_samples=2)
    assert result.maps.shape == (4, 32, 32) and np.isfinite(result.maps).all() and (result.maps >= 0).all()
    assert list(result.target_source) == ["label"] * 4
    fresh = Encoder(path, "clipalign-tiny", 32, device="cpu", batch_size=8, cache_dir=tmp_path / "cache")
    again = checkpoint_saliency(fresh, data.images, data.labels, data.classnames, templates, n_samples=2)
    assert fresh._model is None  # served from the cache without loading the model
    np.testing.assert_array_equal(again.maps, result.maps)
    unknown = checkpoint_saliency(fresh, data.images, np.full(4, -1), data.classnames, templates, n_samples=2)
    assert list(unknown.target_source) == ["zero_shot"] * 4 and unknown.target_class.min() >= 0
    with pytest.raises(ParameterError, match="ViT"):
        S.attention_rollout(model, torch.zeros(1, 3, 32, 32))
    up = S.upsample(result.maps, (64, 48))
    assert up.shape == (4, 64, 48)


# --------------------------------------------------------------------------------- rollout
def _tiny_vit(tmp_path, layers):
    import open_clip

    name = f"saliency-test-vit-{layers}"
    config = {"embed_dim": 16,
              "vision_cfg": {"image_size": 16, "layers": layers, "width": 32, "head_width": 16, "patch_size": 8},
              "text_cfg": {"context_length": 8, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}}
    (tmp_path / f"{name}.json").write_text(json.dumps(config))
    open_clip.add_model_config(tmp_path / f"{name}.json")
    torch.manual_seed(0)
    return open_clip.create_model(name, pretrained=None).eval()


def test_rollout_one_block_equals_hand_computation(tmp_path):
    model = _tiny_vit(tmp_path, layers=1)
    x = torch.randn(2, 3, 16, 16)
    rollout = S.attention_rollout(model, x)
    assert rollout.shape == (2, 2, 2) and (rollout >= 0).all()
    block = model.visual.transformer.resblocks[0]
    captured = []
    hook = block.ln_1.register_forward_hook(lambda _m, _i, out: captured.append(out))
    with torch.no_grad():
        model.visual(x)
        hook.remove()
        h = captured[0]
        if not getattr(model.visual.transformer, "batch_first", True):
            h = h.transpose(0, 1)
        # torch's own attention weights (averaged over heads), then (A + I) / 2
        _, weights = block.attn(h, h, h, need_weights=True, average_attn_weights=True)
    expected = ((weights + torch.eye(weights.shape[-1])) / 2)[:, 0, 1:].reshape(2, 2, 2)
    torch.testing.assert_close(rollout, expected, atol=1e-5, rtol=1e-4)


def test_rollout_several_blocks(tmp_path):
    model = _tiny_vit(tmp_path, layers=3)
    rollout = S.attention_rollout(model, torch.randn(3, 3, 16, 16))
    assert rollout.shape == (3, 2, 2) and (rollout >= 0).all() and (rollout.sum((1, 2)) <= 1 + 1e-6).all()


def test_saliency_figures():
    import matplotlib

    matplotlib.use("Agg")
    import pandas as pd

    from clipalign_utils.plots import saliency as P

    rows = [{"checkpoint": c, "epoch": e, "metric": m, "value": 0.5, "value_lo": 0.4, "value_hi": 0.6}
            for c, e in (("centre_bias", np.nan), ("epoch_0", 0.0), ("epoch_1", 1.0)) for m in M.METRICS]
    shown = [ax.get_title() for ax in P.metrics_vs_epoch(pd.DataFrame(rows)).axes if ax.get_visible()]
    assert shown == [P.METRIC_TITLES[m] for m in M.METRICS] and "AUC-Borji ↑" in shown
    summary = pd.DataFrame([{"set": "saliency_embedded", "checkpoint": c, "epoch": e, "region": r, "share": 0.3,
                             "share_lo": 0.2, "share_hi": 0.4, "area": 0.2}
                            for c, e in (("epoch_0", 0.0), ("epoch_1", 1.0)) for r in ("contour", "interior")])
    P.region_share_vs_epoch(summary)
    P.saliency_maps_grid(np.zeros((1, 8, 8, 3), np.uint8), [np.ones((8, 8))], {"epoch_0": [np.ones((8, 8))]})
    matplotlib.pyplot.close("all")


# ------------------------------------------------------------------ the step page's sentences and figures
def _saliency_table(sauc=(0.1, 0.3, 0.2)):
    """Checkpoints epoch_0..2 with the headline sAUC ``sauc``, NSS 1, 2, 3 and no CC (constant maps), and the
    three baselines (each 0.9 [0.85, 0.95] on sAUC, NSS and CC)."""
    import pandas as pd

    rows = [{"checkpoint": b, "epoch": np.nan, "metric": m, "value": 0.9, "value_lo": 0.85,
             "value_hi": 0.95} for b in ("centre_bias", "object_silhouette", "shuffled_silhouette")
            for m in ("sauc", "cc", "nss")]
    for k, value in enumerate(sauc):
        rows.append({"checkpoint": f"epoch_{k}", "epoch": float(k), "metric": "sauc", "value": value,
                     "value_lo": value - 0.1, "value_hi": value + 0.1})
        rows.append({"checkpoint": f"epoch_{k}", "epoch": float(k), "metric": "nss", "value": 1.0 + k,
                     "value_lo": 0.5 + k, "value_hi": 1.5 + k})
        rows.append({"checkpoint": f"epoch_{k}", "epoch": float(k), "metric": "cc", "value": np.nan,
                     "value_lo": np.nan, "value_hi": np.nan})
    return {"saliency": pd.DataFrame(rows)}


def _per_image(sauc: dict):
    """saliency_per_image rows: {checkpoint: its sAUC per image}, the baselines without an epoch."""
    import pandas as pd

    return pd.DataFrame([{"image": i, "sauc": value, "checkpoint": checkpoint,
                          "epoch": float(checkpoint.split("_")[1]) if checkpoint.startswith("epoch_") else np.nan}
                         for checkpoint, values in sauc.items() for i, value in enumerate(values)])


def test_a_checkpoint_beats_the_centre_bias_on_the_same_images_by_hand():
    """above_centre_bias: each checkpoint's difference from the centre bias image by image, its interval over the
    same draws of images; lower is better for KLD; an image undefined for the checkpoint is left out of its mean."""
    from clipalign_utils.metrics.peak import mean_replicates
    from clipalign_utils.metrics.stats import percentile_interval
    from clipalign_utils.steps.saliency.page import above_centre_bias

    per_image = _per_image({"centre_bias": [0.5, 0.5, 0.5, 0.5], "epoch_0": [0.4, 0.4, 0.45, 0.4],
                            "epoch_1": [0.6, 0.7, 0.6, 0.65], "epoch_2": [0.7, 0.3, 0.8, 0.4],
                            "epoch_3": [np.nan, np.nan, np.nan, np.nan]})
    assert above_centre_bias(per_image, "sauc", 200, 0) == (1, 3)  # epoch_3 has no value to compare
    # epoch_2's interval by hand: its differences (0.2, −0.2, 0.3, −0.1) on the draws every checkpoint shares
    lo, hi = percentile_interval(mean_replicates(np.array([[0.2, -0.2, 0.3, -0.1]]), None, 200, 0)[0])
    assert lo < 0 < hi
    # KLD: lower is better, so epoch_0's lower values beat the centre bias and epoch_1's do not
    kld = per_image.rename(columns={"sauc": "kld"})
    assert above_centre_bias(kld, "kld", 200, 0) == (1, 3)
    # an image the checkpoint leaves undefined is out of its mean, not a loss: epoch_1 beats it on the other three
    gap = _per_image({"centre_bias": [0.5, 0.5, 0.5, 0.5], "epoch_1": [0.6, np.nan, 0.6, 0.65]})
    assert above_centre_bias(gap, "sauc", 200, 0) == (1, 1)


def test_map_checkpoints_pick_first_best_sauc_and_last():
    from clipalign_utils.steps.saliency import analysis as step

    def columns(sauc):
        return step.map_checkpoints(_saliency_table(sauc)["saliency"], "epoch_0", "epoch_2")

    # the baselines' sAUC (0.9) is not a checkpoint's
    assert columns((0.1, 0.3, 0.2)) == {"first\n(epoch_0)": "epoch_0", "best sAUC\n(epoch_1)": "epoch_1",
                                        "last\n(epoch_2)": "epoch_2"}
    # a checkpoint with two roles is titled with both (a review: the first, also the best, read "best sAUC" alone)
    assert columns((0.1, 0.2, 0.3)) == {"first\n(epoch_0)": "epoch_0", "best sAUC and last\n(epoch_2)": "epoch_2"}
    assert columns((0.3, 0.2, 0.1)) == {"first and best sAUC\n(epoch_0)": "epoch_0", "last\n(epoch_2)": "epoch_2"}
    # no sAUC defined: no best to name
    assert columns((np.nan, np.nan, np.nan)) == {"first\n(epoch_0)": "epoch_0", "last\n(epoch_2)": "epoch_2"}


def test_curve_sentences_and_score_table_by_hand():
    from clipalign_utils.steps.saliency import analysis as step, page as step_page

    tables = _saliency_table()
    assert step_page.curve_sentences(tables) == [
        "sAUC: 0.100 at epoch 0, best 0.300 [0.200, 0.400] at epoch 1 (inside the run), 0.200 [0.100, 0.300] at "
        "the last checkpoint (epoch 2); centre bias 0.900 [0.850, 0.950]",
        "CC: undefined at every checkpoint (constant maps)",
        "NSS: 1.000 at epoch 0, best 3.000 [2.500, 3.500] at epoch 2 (at the last checkpoint), 3.000 [2.500, "
        "3.500] at the last checkpoint (epoch 2); centre bias 0.900 [0.850, 0.950]"]
    table = tables["saliency"]
    table.loc[(table["checkpoint"] == "centre_bias") & (table["metric"] == "sauc"), ["value", "value_lo", "value_hi"]] = \
        (0.05, 0.0, 0.15)
    table.loc[(table["checkpoint"] == "object_silhouette") & (table["metric"] == "sauc"), "value_lo"] = 0.25
    # per image: epoch_1 beats the centre bias on every image, epoch_2 on two of four by more than it loses on
    # the others (mean +0.05, but a resample of the two losing images loses), epoch_0 loses everywhere
    per_image = _per_image({"centre_bias": [0.5, 0.5, 0.5, 0.5], "epoch_0": [0.4, 0.4, 0.45, 0.4],
                            "epoch_1": [0.6, 0.7, 0.6, 0.65], "epoch_2": [0.7, 0.3, 0.8, 0.4]})
    tables = {"saliency": table, "saliency_per_image": per_image}
    params = {"n_boot": 200, "eval_seed": 0}
    assert step_page.baseline_sentence(tables, params) == (
        "sAUC baselines: centre bias 0.050 [0.000, 0.150]; object silhouette 0.900 [0.250, 0.950]; shuffled "
        "silhouette 0.900 [0.850, 0.950] — 1 of 3 checkpoints above the centre bias (the interval of their "
        "difference on the same images lies above 0), 1 reach the object silhouette's")
    # a real dataset's one baseline is one (CAT2000's page read "sAUC baselines: centre bias …"; a reader)
    centre_only = table[~table["checkpoint"].isin(["object_silhouette", "shuffled_silhouette"])]
    assert step_page.baseline_sentence({**tables, "saliency": centre_only}, params) == (
        "sAUC baseline: centre bias 0.050 [0.000, 0.150] — 1 of 3 checkpoints above the centre bias (the interval "
        "of their difference on the same images lies above 0)")
    shown = step.score_table(tables)
    assert shown.index.tolist() == ["centre_bias", "object_silhouette", "shuffled_silhouette", "epoch_0", "epoch_1",
                                    "epoch_2"]
    assert shown.loc["epoch_1", "sauc"] == 0.3 and shown.loc["epoch_2", "nss"] == 3.0


def test_a_lower_is_better_metrics_best_checkpoint_is_its_lowest():
    """KLD: lower is better, so "best" is the lowest value, with its own interval and where it lies (mutation
    audit: reading KLD's best as its highest went unnoticed)."""
    import pandas as pd

    from clipalign_utils.steps.saliency import page as step_page

    table = pd.DataFrame([{"checkpoint": f"epoch_{k}", "epoch": float(k), "metric": "kld", "value": v,
                           "value_lo": v - 0.1, "value_hi": v + 0.1} for k, v in enumerate((0.9, 0.4, 0.6))])
    assert step_page.curve_sentence(table, "kld") == (
        "KLD: 0.900 at epoch 0, best 0.400 [0.300, 0.500] at epoch 1 (inside the run), 0.600 [0.500, 0.700] at the "
        "last checkpoint (epoch 2)")


def test_an_sauc_curve_at_chance_at_every_checkpoint_has_no_peak_to_read():
    """A reader review of random ViT-B-32 weights: every sAUC interval held 0.5, yet page 8 read a best checkpoint
    "inside the run" as if it were a peak; and a tie to within rounding is the earliest checkpoint's."""
    import pandas as pd

    from clipalign_utils.steps.saliency import page as step_page

    values = (0.50, 4 / 9 + 0.1, 0.5444444444444445)
    table = pd.DataFrame([{"checkpoint": f"epoch_{k}", "epoch": float(k), "metric": "sauc", "value": v,
                           "value_lo": v - 0.1, "value_hi": v + 0.1} for k, v in enumerate(values)])
    assert step_page.curve_sentence(table, "sauc").endswith(
        "best 0.544 [0.444, 0.644] at epoch 1 (inside the run), 0.544 [0.444, 0.644] at the last checkpoint (epoch 2)"
        "; sAUC is not distinguishable from chance (0.5) at any checkpoint (every checkpoint's interval contains "
        "it): there is no peak to read")
    table["metric"] = "nss"  # no chance level declared for it: nothing said
    assert "chance" not in step_page.curve_sentence(table, "nss")
    one = table.iloc[[2]].assign(metric="sauc")  # one checkpoint: no best or last to name
    assert step_page.curve_sentence(one, "sauc") == (
        "sAUC: 0.544 [0.444, 0.644] at the one checkpoint (epoch 2); sAUC is not distinguishable from chance (0.5) "
        "at any checkpoint (every checkpoint's interval contains it): there is no peak to read")


def test_early_peak_sentences_read_the_paired_test():
    import pandas as pd

    from clipalign_utils.steps.saliency import page as step_page

    test = {"dataset": "embedded", "method": "smoothgrad", "metric": "sauc", "early_end": 5 / 3, "n_early": 4,
            "final_epoch": 5.0, "final_value": 0.615, "early_drop": -0.026, "lo": -0.054, "hi": -0.004,
            "early_peak_epoch": 1.0, "early_peak_value": 0.589, "n_items": 24}
    curve = pd.DataFrame({"checkpoint": ["centre_bias", "epoch_1", "epoch_5"], "metric": "sauc", "epoch": [np.nan, 1, 5],
                          "value": [0.7, 0.589, 0.615]})
    assert step_page.early_peak_sentences({"saliency": curve, "saliency_peak": pd.DataFrame([test])}) == [
        "early window: 0 < epoch ≤ 0.333 × 5 = 1.67 (4 checkpoints)",
        "best early sAUC 0.589 (epoch 1) − final 0.615 = -0.026, paired 95 % interval [-0.054, -0.004] over 24 "
        "images: below 0 — the final checkpoint is better aligned than any early one"]
    assert step_page.early_peak_sentences({"saliency": pd.DataFrame()}) == []  # no checkpoint to test
    # a long trajectory's window end in plain digits (:.3g wrote 1e+03; a review)
    long = {**test, "early_end": 1000.0, "final_epoch": 3000.0}
    assert step_page.early_peak_sentences({"saliency": curve, "saliency_peak": pd.DataFrame([long])})[0] == (
        "early window: 0 < epoch ≤ 0.333 × 3000 = 1000 (4 checkpoints)")
    # every checkpoint's sAUC interval holds chance (0.5): no peak to read, whatever the paired interval says
    at_chance = curve.assign(value_lo=[0.65, 0.45, 0.49], value_hi=[0.75, 0.62, 0.7])
    above = pd.DataFrame([{**test, "early_drop": 0.02, "lo": 0.004, "hi": 0.05}])
    assert step_page.early_peak_sentences({"saliency": at_chance, "saliency_peak": above})[1].endswith(
        "24 images: above 0 — the best early checkpoint scores higher than the final one; but sAUC is not "
        "distinguishable from chance (0.5) at any checkpoint (every checkpoint's interval contains it): there is no "
        "peak to read")
    assert step_page.early_peak_sentences({"saliency": at_chance.assign(metric="nss"),  # no chance level declared
                                           "saliency_peak": above.assign(metric="nss")})[1].endswith(
        "above 0, but the curve peaks later, at epoch 5: it ends below its best early value without an early peak")


def test_region_sentences_by_hand():
    import pandas as pd

    from clipalign_utils.plots.saliency import region_share_vs_epoch
    from clipalign_utils.steps.saliency import page as step_page

    assert step_page.region_sentences({"saliency": pd.DataFrame()}) == [
        "no region masks for this dataset: the contour/interior view needs the embedded world"]
    rows = [{"set": s, "checkpoint": f"epoch_{e}", "epoch": float(e), "region": r, "share": share + e / 10,
             "share_lo": share + e / 10 - 0.01, "share_hi": share + e / 10 + 0.01, "area": area + e / 100}
            for s in ("saliency_embedded", "saliency_cue_conflict") for e in (1, 0)
            for r, share, area in (("contour", 0.2, 0.1), ("interior", 0.3, 0.25), ("background", 0.5, 0.65))]
    said = step_page.region_sentences({"saliency_regions": pd.DataFrame(rows)})
    # the sets as the figure's panels title them, not the tables' names
    assert said == [f"{s}: contour share 0.200 → 0.300 [0.290, 0.310] (area 0.105); interior share 0.300 → 0.400 "
                    f"[0.390, 0.410] (area 0.255)" for s in ("embedded", "cue conflict")]
    titles = [ax.get_title() for ax in region_share_vs_epoch(pd.DataFrame(rows)).axes]
    assert [line.split(":")[0] for line in said] == titles


def test_data_sentences(tmp_path):
    from types import SimpleNamespace

    from clipalign_utils.steps.saliency import analysis as step, page as step_page

    data = step.SaliencyData(load_saliency("embedded", None, image_size=32, seed=0, n_images=3), None, (), ())
    run = SimpleNamespace(checkpoints=[0, 1], model_name="clipalign-tiny", image_size=None)
    params = {"saliency_method": "smoothgrad", "saliency_samples": 2, "saliency_noise": 0.15}
    assert step_page.data_sentences(run, params, data) == [
        "2 checkpoints of clipalign-tiny; the embedded set: 3 images; method smoothgrad (2 noisy copies, noise 0.15)",
        f"ground truth: {data.scored.ground_truth}"]
    assert step_page.data_sentences(run, {**params, "saliency_method": "rollout"}, data)[0].endswith(
        "method rollout (the class token's attention, class-agnostic, on the patch grid)")  # no ViT config: no sides
    vit = SimpleNamespace(checkpoints=[0], model_name="ViT-B-32", image_size=None)  # 224 px, 32-px patches
    assert step_page.data_sentences(vit, {**params, "saliency_method": "rollout"}, data)[0].endswith(
        "method rollout (the class token's attention, class-agnostic, on the 7×7 patch grid)")
    forced = SimpleNamespace(checkpoints=[0], model_name="ViT-B-32", image_size=64)  # force_image_size
    rollout = {**params, "saliency_method": "rollout"}
    assert "on the 2×2 patch grid" in step_page.data_sentences(forced, rollout, data)[0]

    # CAT2000's subset says how many categories it spans
    from fixtures_real import make_cat2000

    cat = step.SaliencyData(load_saliency("cat2000", make_cat2000(tmp_path, categories=("Action", "Art", "Fractal")),
                                          image_size=32, seed=0, n_images=4), None, (), ())
    assert step_page.data_sentences(vit, params, cat)[0].startswith(
        "1 checkpoint of ViT-B-32; dataset CAT2000: 4 images of 3 categories; method smoothgrad")
    one = step.SaliencyData(load_saliency("cat2000", tmp_path, image_size=32, seed=0, n_images=1), None, (), ())
    assert ": 1 image of 1 category;" in step_page.data_sentences(vit, params, one)[0]


def test_step_measures_and_draws_the_maps_from_the_cache(tmp_path, monkeypatch):
    """The step on two untrained tiny checkpoints: its tables, and the maps figure read back from the cache. Its
    images scored a few at a time (a real set's full-resolution ground truth is not held whole: an audit saw
    CAT2000 pass 19 GB) give the same tables, every image with its own index and seed."""
    import matplotlib

    matplotlib.use("Agg")
    from clipalign_utils import checkpoints, config, models
    from clipalign_utils.steps.saliency import analysis as step, page as step_page

    (tmp_path / "checkpoints").mkdir()
    for epoch in (0, 1):
        torch.save({"state_dict": models.create_model("tiny", 32, seed=epoch).state_dict()},
                   tmp_path / "checkpoints" / f"epoch_{epoch}.pt")
    (tmp_path / "params.txt").write_text(f"model: {models.open_clip_name('tiny')}\nforce_image_size: 32\n")
    run = checkpoints.discover_run(tmp_path)
    params = config.resolve("smoke", device="cpu", saliency_n_images=3, saliency_samples=1, saliency_cue_per_pair=0,
                            n_boot=10)
    data = step.load(run, params)
    tables = step.measure(run, params, data)
    # the world's images have masks; the peak test resamples images of the checkpoints (not the baseline)
    assert set(tables) == {"saliency", "saliency_per_image", "saliency_regions", "saliency_peak"}
    assert list(tables["saliency"].columns) == step.SALIENCY_COLUMNS
    from clipalign_utils.metrics.peak import mean_peak_test

    per_image = tables["saliency_per_image"]
    expected = mean_peak_test(per_image[~per_image["checkpoint"].isin(step.BASELINES)], "sauc", "image", n_boot=10,
                              seed=config.bootstrap_seed(params))
    peak = tables["saliency_peak"].iloc[0]
    assert peak["metric"] == "sauc" and peak["n_items"] == 3 and peak["final_epoch"] == 1.0
    assert peak["final_value"] == pytest.approx(expected["final_value"])
    sauc = tables["saliency"].query("metric == 'sauc' and checkpoint == 'epoch_1'")["value"].iloc[0]
    assert peak["final_value"] == pytest.approx(sauc)  # the peak test's curve is the table's sAUC
    # every interval is the bootstrap stream's, as the peak test's (they were SmoothGrad's: an audit)
    from clipalign_utils.metrics.saliency import summarize

    ours = per_image[per_image["checkpoint"] == "epoch_1"]
    pandas_rows = summarize(ours, n_boot=10, seed=config.bootstrap_seed(params)).set_index("metric")
    table = tables["saliency"].query("checkpoint == 'epoch_1'").set_index("metric")
    assert np.allclose(table.loc[pandas_rows.index, ["value_lo", "value_hi"]].to_numpy(dtype=float),
                       pandas_rows[["value_lo", "value_hi"]].to_numpy(dtype=float), equal_nan=True)
    assert set(tables["saliency_regions"]["set"]) == {data.scored.images.name}
    cached = sorted((tmp_path / "cache").iterdir())
    import pandas

    monkeypatch.setattr(step, "IMAGES_AT_A_TIME", 2)  # 3 images: two passes
    in_parts = step.measure(run, params, data)
    for name, table in tables.items():
        pandas.testing.assert_frame_equal(in_parts[name], table)
    assert list(tables["saliency_per_image"]["image"][:3]) == [0, 1, 2]
    fig = step_page.maps_figure(run, params, data, tables)
    assert sorted((tmp_path / "cache").iterdir()) == cached  # nothing computed again
    titles = [ax.get_title() for ax in fig.axes[:fig.axes[0].get_gridspec().ncols]]
    assert titles[:2] == ["image", "ground truth (density)"]
    assert titles[2:] == list(step.map_checkpoints(tables["saliency"], "epoch_0", "epoch_1"))
    matplotlib.pyplot.close("all")


# ------------------------------------------------------------------------------ baselines
def test_on_the_embedded_set_shuffled_auc_ranks_the_baselines():
    """Objects anywhere in the frame, fixations on them with a weak centre prior: on the headline sAUC the
    object's own silhouette scores far above a centre Gaussian, and another image's silhouette near chance.
    With the centred world (objects near the middle) the centre prior and the object cannot be told apart."""
    from clipalign_utils.steps.saliency import BASELINES, HEADLINE
    from clipalign_utils.steps.saliency.analysis import GroundTruth, baseline_rows

    scores = {}
    for placement in ("varied", "centred"):
        data = load_saliency("embedded", None, image_size=32, seed=0, n_images=24, object_placement=placement)
        table, per_image = baseline_rows(data, GroundTruth.of(data), method="smoothgrad", n_boot=200, seed=0)
        assert list(dict.fromkeys(table["checkpoint"])) == list(BASELINES)
        assert per_image.groupby("checkpoint").size().eq(24).all()
        scores[placement] = table[table["metric"] == HEADLINE].set_index("checkpoint")["value"]
    varied = scores["varied"]
    assert varied["object_silhouette"] >= 0.7 and varied["centre_bias"] <= 0.6
    assert varied["object_silhouette"] - varied["centre_bias"] >= 0.15
    assert abs(varied["shuffled_silhouette"] - 0.5) < 0.06
    centred = scores["centred"]
    assert centred["object_silhouette"] - centred["centre_bias"] < 0.1


def test_object_placement_moves_objects_and_keeps_the_rest_of_each_item():
    """``varied`` spreads the objects' centres (and makes them smaller, so they fit anywhere); ``centred`` is the first worlds' placement, and
    both draw the same numbers after the pose, so an item's texture, colour and caption do not change."""
    from clipalign_utils.data import world

    centres, areas = {}, {}
    for placement in ("varied", "centred"):
        config = world.WorldConfig(32, object_placement=placement)
        items = [world.make_pair(k, 0, config, "test") for k in range(64)]
        alphas = [world.shape_alpha(world.SHAPES[k % 8], 32, np.random.default_rng([0, 1, 0, k]), placement)
                  for k in range(64)]
        ys, xs = zip(*[np.argwhere(a > 0.5).mean(axis=0) for a in alphas])
        centres[placement] = np.std(xs) + np.std(ys)
        areas[placement] = np.mean([a.sum() for a in alphas])
        if placement == "varied":
            captions = [item[3] for item in items]
            textures = [item[2] for item in items]
        else:
            assert [item[3] for item in items] == captions and [item[2] for item in items] == textures
    assert centres["varied"] > 2 * centres["centred"] and areas["varied"] < areas["centred"]
    with pytest.raises(ParameterError, match="object_placement must be one of varied, centred"):
        world.WorldConfig(32, object_placement="corner")


def test_reading_the_result_follows_whose_fixations():
    from types import SimpleNamespace

    from clipalign_utils.steps.saliency.page import reading_sentences

    vit = SimpleNamespace(model_name="ViT-B-32", image_size=None)
    smoothgrad, rollout = {"saliency_method": "smoothgrad"}, {"saliency_method": "rollout"}
    world = SimpleNamespace(scored=SimpleNamespace(silhouettes=[np.ones((2, 2))], name="embedded", ground_truth="x"))
    assert reading_sentences(world, vit, smoothgrad)[0].startswith("on the embedded set every number here measures "
                                                                   "agreement with a *synthetic* observer")
    assert "the class token draws from" in reading_sentences(world, vit, rollout)[0]
    people = SimpleNamespace(scored=SimpleNamespace(silhouettes=None, name="mit1003",
                                                    ground_truth="15 free-viewing observers"))
    said = reading_sentences(people, vit, smoothgrad)
    assert said[0].startswith("on MIT1003 the ground truth is people's free-viewing fixations (15 free-viewing "
                              "observers): these numbers say whether the model's evidence for its class lies where")
    assert not any("synthetic" in line or "saliency_dataset=" in line for line in said)
    assert said[1].startswith("the model sees each photograph squeezed to its 224-px input, so its maps have the "
                              "input's resolution;")
    said = reading_sentences(people, vit, rollout)  # class-agnostic, on the patch grid the model's sizes give
    assert "these numbers say whether the patches the class token draws from (attention rollout: class-agnostic, " \
           "the same map whatever the class) lies where people look" in said[0]
    assert "evidence for its class" not in " ".join(said)
    assert said[1].startswith("the model sees each photograph squeezed to its 224-px input, so its maps are the "
                              "7×7 patch grid, one value per patch;")
    assert not any("small model" in line for line in said)


def test_other_fixations_never_include_the_image_itself():
    """sAUC's negatives come from *other* images: with two images, image 0's are image 1's fixations only."""
    from clipalign_utils.metrics.saliency import other_fixations

    a = np.zeros((4, 4), dtype=bool)
    a[0, 0] = a[1, 2] = True
    b = np.zeros((4, 4), dtype=bool)
    b[3, 3] = True
    for seed in range(5):
        np.testing.assert_array_equal(other_fixations([a, b], 0, n_other=10, seed=seed), b)
        np.testing.assert_array_equal(other_fixations([a, b], 1, n_other=10, seed=seed), a)


def test_other_fixations_rescale_rows_by_height():
    from clipalign_utils.metrics.saliency import other_fixations

    target = np.zeros((4, 4), dtype=bool)
    small = np.zeros((2, 4), dtype=bool)
    small[1, 3] = True  # row 1 of 2 -> row 2 of 4; column 3 of 4 stays 3
    union = other_fixations([target, small], 0)
    assert np.argwhere(union).tolist() == [[2, 3]]


def test_region_shares_use_the_maps_magnitude():
    from clipalign_utils.metrics.saliency import region_shares

    mask = np.array([[True, False], [False, False]])
    table = region_shares([np.array([[-1.0, 1.0], [0.0, 0.0]])], {"corner": [mask]})
    assert table.loc[0, ["share", "area", "enrichment"]].tolist() == pytest.approx([0.5, 0.25, 2.0])


def test_cat2000_pairs_each_stimulus_with_its_own_categorys_fixations(tmp_path):
    """CAT2000 names its stimuli 001.jpg, 002.jpg … in every category: a stimulus's fixations are its own
    category's file of the same name (a mutation audit found only differently named fixtures told them apart)."""
    from fixtures_real import make_cat2000
    from scipy.io import loadmat

    from clipalign_utils.data.cat2000 import load_cat2000

    make_cat2000(tmp_path)  # Action/001, Action/002, Art/001, Art/002, each with its own random fixations
    data = load_cat2000(tmp_path, image_size=32)
    assert data.names == ["Action/001", "Action/002", "Art/001", "Art/002"]
    for i, name in enumerate(data.names):
        expected = np.nonzero(loadmat(tmp_path / "trainSet" / "FIXATIONLOCS" / f"{name}.mat")["fixLocs"])
        rows, cols, shape = data.fixation_points(i)
        assert shape == (27, 48)
        assert sorted(zip(rows.tolist(), cols.tolist())) == sorted(zip(*(e.tolist() for e in expected))), name


# ------------------------------------------------------------------- audit: hand-computed values
def test_every_metric_on_one_hand_computed_3x4_map():
    """One 3×4 map, three fixations, a density and three other-image fixations, each metric by hand as the
    MIT benchmark's code defines it (ties in AUC-Judd counted with the fixations, as AUC_Judd.m does)."""
    s = np.array([[1, 2, 2, 0], [3, 2, 5, 1], [0, 4, 2, 1]], float)  # sum 23, mean 23/12, Σs² 69
    d = np.array([[0, 1, 0, 0], [0, 0, 2, 0], [0, 1, 0, 1]], float)  # sum 5, mean 5/12, Σd² 7
    fix = np.zeros((3, 4), bool)
    fix[1, 2] = fix[0, 1] = fix[2, 1] = True  # values 5, 2, 4
    other = np.zeros((3, 4), bool)
    other[1, 0] = other[0, 0] = other[2, 2] = True  # values 3, 1, 2: all three used in every split
    ss, dd = 69 - 23 ** 2 / 12, 7 - 5 ** 2 / 12
    assert M.nss(s, fix) == pytest.approx((11 / 3 - 23 / 12) / np.sqrt(ss / 11), rel=1e-12)  # 1.16276
    assert M.cc(s, d) == pytest.approx((17 - 23 * 5 / 12) / np.sqrt(ss * dd), rel=1e-12)  # 0.67008
    # SIM: min-max then over the sum: s/23 and d/5; the minimum is s/23 wherever d > 0 (2 + 5 + 4 + 1)
    assert M.sim(s, d) == pytest.approx(12 / 23, rel=1e-12)
    # KL(P‖Q), P = d/5, Q = s/23, over P's support
    assert M.kld(s, d) == pytest.approx(.2 * np.log(2.3) + .4 * np.log(1.84) + .2 * np.log(1.15) + .2 * np.log(4.6),
                                        rel=1e-12)
    # AUC-Judd on s/5: thresholds 1, .8, .4; #{S ≥ t} = 1, 2, 7; fp = 0, 0, 4/9 of the 9 others, tp = 1/3, 2/3, 1:
    # the three others tied at .4 count as above the threshold .4 (area 25/27, not the tie-halving 24.5/27)
    assert M.auc_judd(s, fix, jitter=False) == pytest.approx(25 / 27, rel=1e-12)
    # sAUC: fixated 1, .8, .4 against .6, .2, .4: pairs ordered 7 of 9, the pair tied at .4 counts a half
    assert M.sauc(s, fix, other, n_splits=4) == pytest.approx(7.5 / 9, rel=1e-12)
    # a 1×2 map resized onto 1×4 (bilinear, pixel centres): the ends clamp, the inner pixels interpolate
    np.testing.assert_allclose(M.resize_map(np.array([[0.0, 1.0]]), (1, 4)), [[0.0, 0.25, 0.75, 1.0]], atol=1e-7)


def test_sauc_keeps_the_top_threshold_when_the_largest_value_is_a_multiple_of_the_step():
    """Matlab's 0:step:top ends at top when top is a multiple of step, though top/step rounds below it
    (0.29/0.01 = 28.999999999999996): the fixation at .29 then ranks above the negative at .285."""
    s = np.array([[1.0, 0.29, 0.285, 0.0]])
    fix, other = np.array([[0, 1, 0, 0]]), np.array([[0, 0, 1, 0]])
    assert M.sauc(s, fix, other, n_splits=2, step=0.01) == pytest.approx(1.0)
    assert M.sauc(s, other, fix, n_splits=2, step=0.01) == pytest.approx(0.0)


def test_centre_gaussian_by_hand():
    # (2, 4), sigma .25: rows at ∓1 σ, columns at −1.5, −.5, .5, 1.5 σ; peak 1 at the centre
    y, x = np.array([-1.0, 1.0]), np.array([-1.5, -0.5, 0.5, 1.5])
    np.testing.assert_allclose(M.centre_gaussian((2, 4)), np.exp(-0.5 * (y[:, None] ** 2 + x[None, :] ** 2)),
                               rtol=1e-12)
    assert M.centre_gaussian((3, 5))[1, 2] == 1.0


def test_other_fixations_union_exactly_n_other_images_as_the_sets_negatives_do():
    """Borji's M: the union of exactly ``n_other`` other images' fixations; the step's negatives
    (``SaliencySet.others``) are :func:`other_fixations` of the same maps, rescaled the same way."""
    from clipalign_utils.data.saliency_base import SaliencySet

    distinct = [np.zeros((8, 8), bool) for _ in range(13)]
    for k, m in enumerate(distinct):  # one fixation each, at a place of its own
        m.flat[5 * k] = True
    for n_other in (3, 10):
        for seed in (1, 2):
            assert M.other_fixations(distinct, 0, n_other=n_other, seed=seed).sum() == n_other
    maps = [m if k % 2 == 0 else m.reshape(4, 16) for k, m in enumerate(distinct)]  # sizes differ: rescaled
    targets = [(m.astype(float), m) for m in maps]
    data = SaliencySet(images=None, names=[str(k) for k in range(13)], labels=np.full(13, -1), classnames=(),
                       name="t", ground_truth="", load_target=targets.__getitem__)
    for seed in (0, 4):
        others = data.others(n_other=10, seed=seed)
        for i in range(13):
            np.testing.assert_array_equal(others[i], M.other_fixations(maps, i, n_other=10, seed=seed))
    # row 3 of a 4-row map lands on row 6 of an 8-row one (3 × 8 // 4), column 9 of 16 on column 4 of 8
    small = np.zeros((4, 16), bool)
    small[3, 9] = True
    pair = SaliencySet(images=None, names=["a", "b"], labels=np.full(2, -1), classnames=(), name="t",
                       ground_truth="", load_target=[(np.ones((8, 8)), np.eye(8, dtype=bool)),
                                                     (small.astype(float), small)].__getitem__)
    assert np.argwhere(pair.others()[0]).tolist() == [[6, 4]]


def test_appledouble_files_beside_the_stimuli_are_not_stimuli(tmp_path):
    """A zip made on a Mac and unpacked without __MACOSX puts ._<name> files beside each stimulus: they carry
    an image suffix but are not images, and have no ground truth."""
    from fixtures_real import make_cat2000, make_mit1003

    from clipalign_utils.data.cat2000 import load_cat2000
    from clipalign_utils.data.mit1003 import load_mit1003

    mit = make_mit1003(tmp_path / "mit", n=2)
    (mit / "ALLSTIMULI" / "._i0.jpeg").write_bytes(b"\x00\x05\x16\x07")
    assert load_mit1003(mit, image_size=16).names == ["i0", "i1"]
    cat = make_cat2000(tmp_path / "cat", per_category=1)
    (cat / "trainSet" / "Stimuli" / "Art" / "._001.jpg").write_bytes(b"\x00\x05\x16\x07")
    assert load_cat2000(cat, image_size=16).names == ["Action/001", "Art/001"]


def test_smoothgrad_sums_the_channels_magnitudes():
    """|∂cos/∂x| summed over colour channels (Smilkov et al.), not |Σ ∂cos/∂x|: an embedding e = Σ(red − green)
    with target (1, 0) has cos = e / √(e² + 1), whose derivative 1 / (e² + 1)^1.5 enters red and green with
    opposite signs; without noise every pixel's map is twice it."""
    x = torch.rand(2, 3, 4, 4)

    def embed(v):
        return torch.stack([(v[:, 0] - v[:, 1]).sum((1, 2)), torch.ones(len(v))], dim=1)

    maps = S.smoothgrad(embed, x, torch.tensor([[1.0, 0.0]] * 2), n_samples=1, noise=0.0)
    e = (x[:, 0] - x[:, 1]).sum((1, 2)).double()
    expected = (2 / (e ** 2 + 1) ** 1.5)[:, None, None].expand(2, 4, 4)
    torch.testing.assert_close(maps.double(), expected, rtol=1e-4, atol=1e-7)


def test_rollout_multiplies_the_blocks_later_on_the_left(tmp_path):
    """Abnar & Zuidema: rollout = Â_L ⋯ Â_1, Â = (A + I) / 2, the class token's row of the product; with two
    blocks, (Â_2 Â_1)[0, 1:] from torch's own attention weights."""
    model = _tiny_vit(tmp_path, layers=2)
    x = torch.randn(2, 3, 16, 16)
    captured = []
    blocks = model.visual.transformer.resblocks
    hooks = [b.ln_1.register_forward_hook(lambda _m, _i, out: captured.append(out)) for b in blocks]
    with torch.no_grad():
        model.visual(x)
        for hook in hooks:
            hook.remove()
        hat = []
        for block, h in zip(blocks, captured):
            if not getattr(model.visual.transformer, "batch_first", True):
                h = h.transpose(0, 1)
            _, weights = block.attn(h, h, h, need_weights=True, average_attn_weights=True)
            hat.append((weights + torch.eye(weights.shape[-1])) / 2)
    expected = (hat[1] @ hat[0])[:, 0, 1:].reshape(2, 2, 2)
    torch.testing.assert_close(S.attention_rollout(model, x), expected, atol=1e-5, rtol=1e-4)
    assert not torch.allclose((hat[0] @ hat[1])[:, 0, 1:].reshape(2, 2, 2), expected, atol=1e-4)


# ---- the metrics' guards (an audit): the exact error for a wrong shape, NaN where a metric is undefined
def test_saliency_metrics_refuse_maps_that_are_not_2d():
    # every metric reads 2-D maps; a stray channel axis would otherwise be resized or compared silently
    with pytest.raises(ParameterError, match=r"^a saliency map must be 2-D; got shape \(1, 2, 2\)$"):
        M.resize_map(np.zeros((1, 2, 2)), (2, 2))
    with pytest.raises(ParameterError, match=r"^a fixation map must be 2-D; got shape \(3,\)$"):
        M.nss(np.zeros((1, 3)), np.array([0, 1, 0]))
    with pytest.raises(ParameterError, match=r"^a ground-truth map must be 2-D; got shape \(3,\)$"):
        M.cc(np.zeros((1, 3)), np.array([0.0, 1.0, 0.0]))
    with pytest.raises(ParameterError, match=r"^a ground-truth map must be 2-D; got shape \(1, 1, 3\)$"):
        M.ImageTruth.of(np.zeros((1, 1, 3)), np.zeros((1, 3)), np.zeros((1, 3)))
    with pytest.raises(ParameterError, match=r"^other_fixations must have the fixation map's shape \(2, 2\); "
                                             r"got \(2, 3\)$"):
        M.sauc(np.eye(2), np.eye(2), np.zeros((2, 3)))


def test_cc_is_nan_when_the_product_of_the_spreads_underflows_or_overflows():
    # both maps vary, but Σ s² rounds to 0 (or inf): the quotient would be 0/0 (inf/inf), not a correlation
    density = np.array([[0.0, 1.0]])
    assert np.isnan(M.cc(np.array([[0.0, 1e-200]]), density))
    with np.errstate(over="ignore"):
        assert np.isnan(M.cc(np.array([[0.0, 1e200]]), density))
    assert M.cc(np.array([[0.0, 1e-100]]), density) == pytest.approx(1.0)


def test_auc_judd_is_nan_for_a_constant_map_without_jitter_and_when_every_pixel_is_fixated():
    # a constant map has no threshold order (its min-max is 0/0); with every pixel fixated there is no negative
    fixations = np.array([[1, 0], [0, 0]])
    assert np.isnan(M.auc_judd(np.ones((2, 2)), fixations, jitter=False))
    assert not np.isnan(M.auc_judd(np.ones((2, 2)), fixations, jitter=True))  # Matlab's jitter breaks the tie
    with warnings.catch_warnings():  # nan said outright, not a 0/0 false-positive rate's
        warnings.simplefilter("error")
        assert np.isnan(M.auc_judd(np.array([[1.0, 2.0], [3.0, 4.0]]), np.ones((2, 2)), jitter=False))
    # one negative below both fixations: every threshold has tp rising with fp 0, area 1
    assert M.auc_judd(np.array([[1.0, 2.0], [3.0, 0.0]]), np.array([[1, 1], [1, 0]]), jitter=False) == 1.0


def test_centre_gaussian_refuses_a_non_positive_or_nan_sigma():
    for sigma in (0, -1.0, float("nan")):
        with pytest.raises(ParameterError, match=r"^sigma must be > 0; got "):
            M.centre_gaussian((3, 3), sigma=sigma)


def test_scoring_many_images_refuses_lists_of_different_lengths():
    # map i is scored against truth i: lists of different lengths would pair the wrong images
    maps, densities, fixations = [np.eye(2)], [np.eye(2), np.eye(2)], [np.eye(2)]
    with pytest.raises(ParameterError, match=r"^densities and fixation maps must be as many; got 2 and 1$"):
        M.image_truths(densities, fixations)
    with pytest.raises(ParameterError, match=r"^saliency maps and ground truths must be as many; got 1 and 0$"):
        M.score_truths(maps, [])
    with pytest.raises(ParameterError, match=r"^saliency maps, densities and fixation maps must be as many; got "
                                             r"1, 2 and 1$"):
        M.score_images(maps, densities, fixations)
    with pytest.raises(ParameterError, match=r"^saliency maps, densities and fixation maps must be as many; got "
                                             r"1, 1 and 2$"):
        M.score_images(maps, fixations, densities)


# ---- maps: guards and branches of SmoothGrad and rollout on hand-made towers (an audit)
class _Block(torch.nn.Module):
    def __init__(self, d=4, heads=2, attn=None):
        super().__init__()
        self.ln_1 = torch.nn.LayerNorm(d)
        self.attn = torch.nn.MultiheadAttention(d, heads, batch_first=True) if attn is None else attn


class _TokenViT(torch.nn.Module):
    """A ViT tower reduced to what rollout reads: it takes tokens (N, L, D) and runs the first ``run`` blocks."""

    def __init__(self, n_blocks=1, grid=(2, 2), run=None, attn=None):
        super().__init__()
        torch.manual_seed(0)
        self.transformer = torch.nn.Module()
        self.transformer.resblocks = torch.nn.ModuleList([_Block(attn=attn) for _ in range(n_blocks)])
        self.grid_size, self.class_embedding, self.run = grid, torch.nn.Parameter(torch.zeros(4)), run

    def forward(self, x):
        for block in list(self.transformer.resblocks)[:self.run]:
            h = block.ln_1(x)
            x = x + block.attn(h, h, h, need_weights=False)[0]
        return x


def test_smoothgrad_refuses_negative_or_nan_noise_and_mismatched_shapes():
    x, targets = torch.rand(2, 3, 4, 4), torch.ones(2, 2)
    for noise in (-0.1, float("nan")):
        with pytest.raises(ParameterError, match=r"^noise must be >= 0 \(a fraction of the input range\); got "):
            S.smoothgrad(_toy_embed, x, targets, noise=noise)
    with pytest.raises(ParameterError, match=r"^inputs must be \(N, C, H, W\) and targets \(N, D\) with the same N; "
                                             r"got \(2, 3, 4, 4\) and \(3, 2\)$"):
        S.smoothgrad(_toy_embed, x, torch.ones(3, 2))
    with pytest.raises(ParameterError, match=r"got \(2, 4, 4\) and \(2, 2\)$"):  # N agrees, a channel axis missing
        S.smoothgrad(_toy_embed, x[:, 0], targets)
    # no noise is legitimate: every sample is the input itself
    assert torch.isfinite(S.smoothgrad(_toy_embed, x, torch.tensor([[1.0, 0.0]] * 2), noise=0.0)).all()


def test_rollout_refuses_a_block_without_multihead_attention():
    model = _TokenViT(attn=torch.nn.Linear(4, 4))
    with pytest.raises(ParameterError, match=r"^saliency_method=rollout: block 0 of the vision tower is _Block "
                                             r"without an nn\.MultiheadAttention; use smoothgrad$"):
        S.attention_rollout(model, torch.zeros(1, 5, 4))


def test_rollout_refuses_a_tower_that_skips_a_block_or_whose_tokens_do_not_fill_its_grid():
    with pytest.raises(ParameterError, match=r"^rollout captured 1 attention inputs for 2 blocks$"):
        S.attention_rollout(_TokenViT(n_blocks=2, run=1), torch.randn(1, 5, 4))
    with pytest.raises(ParameterError, match=r"^rollout: 4 patch tokens do not fill the 2×3 grid$"):
        S.attention_rollout(_TokenViT(grid=(2, 3)), torch.randn(1, 5, 4))
    # 1 class token + 2×2 patches: the class token's row of (A + I) / 2
    model, x = _TokenViT(), torch.randn(2, 5, 4)
    block = model.transformer.resblocks[0]
    with torch.no_grad():
        h = block.ln_1(x)
        weights = block.attn(h, h, h, need_weights=True, average_attn_weights=True)[1]
    expected = ((weights + torch.eye(5)) / 2)[:, 0, 1:].reshape(2, 2, 2)
    torch.testing.assert_close(S.attention_rollout(model, x), expected, atol=1e-6, rtol=1e-5)


def test_attention_weights_read_separate_query_and_key_projections():
    # vdim ≠ embed_dim: torch keeps q, k and v in separate weights and in_proj_weight is None
    torch.manual_seed(1)
    attn = torch.nn.MultiheadAttention(4, 2, batch_first=True, vdim=3).eval()
    assert attn.in_proj_weight is None
    with torch.no_grad():
        attn.in_proj_bias.normal_()
        h, v = torch.randn(2, 5, 4), torch.randn(2, 5, 3)
        expected = attn(h, h, v, need_weights=True, average_attn_weights=False)[1]
        torch.testing.assert_close(S.attention_weights(attn, h), expected, atol=1e-6, rtol=1e-5)


def test_saliency_targets_need_class_names_and_checkpoint_saliency_refuses_an_unknown_method():
    with pytest.raises(ParameterError, match=r"^saliency targets need class names \(for the zero-shot text "
                                             r"embeddings\)$"):
        S.saliency_targets(None, None, np.array([0]), [], ["a {}"])
    with pytest.raises(ParameterError, match=r"^saliency_method='gradcam': choose one of smoothgrad, rollout$"):
        S.checkpoint_saliency(None, None, np.array([0]), ["a"], ["a {}"], method="gradcam")


def test_rollout_never_asks_for_zero_shot_targets(monkeypatch):
    # rollout is class-agnostic: no zero-shot pass over the classes; the known labels are reported, unknown ones empty
    from types import SimpleNamespace

    def no_targets(*args):
        raise AssertionError("saliency_targets called for rollout")

    monkeypatch.setattr(S, "saliency_targets", no_targets)
    keys = []
    encoder = SimpleNamespace(_cached=lambda key, make, on_disk: keys.append(key) or np.zeros((2, 7, 7)))
    images = SimpleNamespace(identity="two images")
    result = S.checkpoint_saliency(encoder, images, np.array([3, -1]), ["a"] * 1000, ["a {}"], method="rollout")
    assert result.maps.shape == (2, 7, 7)
    assert keys == [{"images": "two images", "kind": "saliency", "method": "rollout"}]
    assert result.target_class[0] == 3 and np.isnan(result.target_class[1])
    assert list(result.target_source) == ["label", "none"]
    with pytest.raises(AssertionError, match="saliency_targets called"):  # smoothgrad still needs them
        S.checkpoint_saliency(encoder, images, np.array([3, -1]), ["a"], ["a {}"], method="smoothgrad")


def test_rollout_maps_of_a_set_are_computed_a_batch_at_a_time_as_all_at_once(monkeypatch):
    # _compute's rollout branch: the tower checked first, then encoder.batch_size images per pass, concatenated
    from types import SimpleNamespace

    tokens, read = torch.randn(3, 5, 4), []
    images = type("Images", (), {"batch": staticmethod(lambda s, e: read.append((s, e)) or tokens[s:e]),
                                 "__len__": lambda self: 3})()
    monkeypatch.setattr(S, "preprocess_batch", lambda batch, size, mean, std: batch)
    encoder = SimpleNamespace(model=_TokenViT(), batch_size=2, device="cpu", _size=None, _mean=None, _std=None)
    maps = S._compute(encoder, images, None, None, None, "rollout", 1, 0.0, 0)
    assert maps.dtype == np.float32 and maps.shape == (3, 2, 2) and read == [(0, 2), (2, 3)]
    np.testing.assert_allclose(maps, S.attention_rollout(encoder.model, tokens).numpy(), rtol=1e-5, atol=1e-6)
    # a tower rollout cannot read is refused before any image is read
    encoder.model, images.batch = torch.nn.Linear(2, 2), None
    with pytest.raises(ParameterError, match=r"^saliency_method=rollout needs a ViT vision tower"):
        S._compute(encoder, images, None, None, None, "rollout", 1, 0.0, 0)


# ---- the step's branches on hand-made tables (an audit)
def test_region_summary_means_each_groups_finite_shares_and_is_nan_for_a_group_without_one():
    # one row per (set, checkpoint, epoch, region); a map without saliency (share nan) is left out of the share
    import pandas as pd

    from clipalign_utils.metrics.stats import bootstrap_mean_ci
    from clipalign_utils.steps.saliency import analysis as step

    regions = pd.DataFrame({"image": [0, 1, 2, 0, 1], "region": ["contour"] * 3 + ["interior"] * 2,
                            "share": [0.2, 0.4, np.nan, np.nan, np.nan], "area": [0.1, 0.3, 0.2, 0.5, 0.7],
                            "enrichment": [2.0, 4.0 / 3, np.nan, np.nan, np.nan], "set": "s", "checkpoint": "e0",
                            "epoch": 0.0})
    out = step.region_summary(regions, n_boot=50, seed=3).set_index("region")
    assert out.loc["contour", "share"] == pytest.approx(0.3) and out.loc["contour", "n_images"] == 2
    assert (out.loc["contour", "share_lo"], out.loc["contour", "share_hi"]) == bootstrap_mean_ci([0.2, 0.4], 50, 3)
    assert out.loc["contour", "area"] == pytest.approx(0.2)
    # the mean enrichment is over the images that have one (pandas skips nan), as the share's mean is
    assert out.loc["contour", "enrichment"] == pytest.approx((2.0 + 4.0 / 3) / 2)
    interior = out.loc["interior"]
    assert np.isnan(interior[["share", "share_lo", "share_hi"]].astype(float)).all() and interior["n_images"] == 0
    assert interior["area"] == pytest.approx(0.6)


def test_peak_checkpoint_skips_baselines_and_undefined_values_and_takes_kld_at_its_lowest():
    import pandas as pd

    from clipalign_utils.steps.saliency import analysis as step

    table = pd.DataFrame({"checkpoint": ["centre_bias", "e0", "e1", "e2", "centre_bias", "e0", "e1"],
                          "metric": ["sauc"] * 4 + ["kld"] * 3, "value": [0.99, 0.6, np.nan, 0.7, 0.1, 2.0, 1.5]})
    assert step.peak_checkpoint(table, "sauc") == "e2"  # the baseline's 0.99 and e1's nan are not candidates
    assert step.peak_checkpoint(table, "kld") == "e1"  # lower is better; the baseline's 0.1 is not a candidate
    assert step.peak_checkpoint(table, "cc") is None
    assert step.peak_checkpoint(table[table["checkpoint"].isin(["centre_bias", "e1"])], "sauc") is None


def test_chunks_cover_the_set_four_images_at_a_time_and_an_empty_set_as_one_empty_chunk():
    from clipalign_utils.steps.saliency import analysis as step

    assert step._chunks(9) == [range(0, 4), range(4, 8), range(8, 9)]
    assert step._chunks(4) == [range(0, 4)]
    assert step._chunks(0) == [range(0)]


def test_baseline_maps_are_the_centre_bias_alone_without_silhouettes_and_the_next_images_when_shuffled():
    from types import SimpleNamespace

    from clipalign_utils.steps.saliency import analysis as step

    truth = step.GroundTruth(truths=[SimpleNamespace(shape=(2, 3)), SimpleNamespace(shape=(2, 3))], first=1)
    maps = step.baseline_maps(SimpleNamespace(silhouettes=None), truth)
    assert list(maps) == ["centre_bias"]
    np.testing.assert_array_equal(maps["centre_bias"][1], M.centre_gaussian((2, 3)))
    silhouettes = np.arange(3)[:, None, None] * np.ones((3, 2, 3), dtype=np.float32)  # image i: all i
    maps = step.baseline_maps(SimpleNamespace(silhouettes=silhouettes), truth)
    assert [m[0, 0] for m in maps["object_silhouette"]] == [1.0, 2.0]  # images 1 and 2, their own
    assert [m[0, 0] for m in maps["shuffled_silhouette"]] == [2.0, 0.0]  # the next image's, the last wraps to 0


def test_measure_writes_the_peak_only_with_checkpoints_and_the_regions_only_where_there_are_any(monkeypatch):
    # a run scored on baselines alone has no early peak to test; a set without region masks no region summary
    import pandas as pd
    from types import SimpleNamespace

    from clipalign_utils.steps.saliency import analysis as step

    table = pd.DataFrame({"checkpoint": ["centre_bias"], "dataset": ["d"], "method": ["smoothgrad"]})
    per_image = pd.DataFrame({"checkpoint": ["centre_bias"], "image": [0], "sauc": [0.5]})
    empty = pd.DataFrame(columns=["image", "region", "share", "area", "enrichment", "set", "checkpoint", "epoch"])
    monkeypatch.setattr(step, "saliency_over_checkpoints",
                        lambda *args, **kwargs: step.SaliencyResults(table, per_image, empty))
    run = SimpleNamespace(layout=SimpleNamespace(cache=None))
    params = {"n_boot": 10, "device": "cpu", "eval_batch_size": 2, "eval_seed": 0, "saliency_method": "smoothgrad",
              "saliency_samples": 1, "saliency_noise": 0.1}
    data = step.SaliencyData(SimpleNamespace(stimulus_files=None), None, ("a",), ("{}",))  # no files: no file column
    assert set(step.measure(run, params, data)) == {"saliency", "saliency_per_image"}


def test_saliency_summary_columns_are_none_without_rows_and_read_the_first_method_only():
    import pandas as pd

    from clipalign_utils.steps.saliency import analysis as step

    assert step.summary_columns(pd.DataFrame(columns=["checkpoint", "metric", "method"]), None, "s") is None
    rows = [{"checkpoint": c, "dataset": "d", "method": method, "metric": "sauc", "value": v, "value_lo": v - 0.1,
             "value_hi": v + 0.1} for method, c, v in (("smoothgrad", "e0", 0.6), ("rollout", "e0", 0.9),
                                                      ("smoothgrad", "e1", 0.7))]
    out = step.summary_columns(pd.DataFrame(rows), None, "s").set_index("checkpoint")
    assert out["saliency_sauc"].tolist() == [0.6, 0.7] and out["saliency_sauc_lo"].tolist() == pytest.approx([0.5, 0.6])
    assert out["saliency_dataset"].tolist() == ["d", "d"]
    assert out[["saliency_cc", "saliency_nss_hi"]].isna().all().all()  # metrics the table does not have: nan


def test_the_per_image_table_of_a_file_set_names_each_image_by_its_file_last(tmp_path, monkeypatch):
    # saliency_per_image.csv named a CAT2000 image by its index alone; its file (below trainSet/Stimuli) is added
    # as the last column, the others as they were
    import pandas as pd
    from fixtures_real import make_cat2000

    from clipalign_utils.steps.saliency import analysis as step

    make_cat2000(tmp_path, per_category=2)
    scored = load_saliency("cat2000", tmp_path, image_size=32, seed=0, n_images=0)
    assert scored.stimulus_files == ["Action/001.jpg", "Action/002.jpg", "Art/001.jpg", "Art/002.jpg"]
    per_image = pd.DataFrame({"image": [3, 0], "sauc": [0.5, 0.6], "checkpoint": "centre_bias", "epoch": np.nan})
    results = step.SaliencyResults(pd.DataFrame({"checkpoint": ["centre_bias"]}), per_image, pd.DataFrame())
    monkeypatch.setattr(step, "saliency_over_checkpoints", lambda *args, **kwargs: results)
    run = type("Run", (), {"layout": type("Layout", (), {"cache": tmp_path})()})()
    data = step.SaliencyData(scored, None, (), ("a photo of a {}.",))
    from clipalign_utils import config

    params = config.resolve("smoke", device="cpu")
    table = step.measure(run, params, data)["saliency_per_image"]
    assert list(table.columns) == [*per_image.columns, "file"]
    assert table["file"].tolist() == ["Art/002.jpg", "Action/001.jpg"]


def test_the_progress_bars_name_the_set_as_the_pages_do(monkeypatch):
    # they said "reading embedded's fixations", "scoring mit1003": the set's id, not its name
    import tqdm

    from clipalign_utils.steps.saliency import analysis as step

    said = []

    class Named(Exception):
        """Both bars named: the scoring needs no model here."""

    class Bar:
        def __init__(self, *args, desc="", **kwargs):
            said.append(desc)

        def __enter__(self):
            if len(said) == 2:
                raise Named
            return self

        def __exit__(self, *exc):
            return False

        def update(self, n):
            pass

    monkeypatch.setattr(tqdm, "tqdm", Bar)
    monkeypatch.setattr(step, "run_encoders", lambda *args, **kwargs: iter(()))
    scored = load_saliency("embedded", None, image_size=32, seed=0, n_images=2)
    with pytest.raises(Named):
        step.saliency_over_checkpoints(None, scored, ("a {}.",), progress=True)
    assert said == ["reading the embedded set's fixations", "scoring the embedded set"]


def test_the_per_image_table_writes_the_target_class_as_an_integer_beside_the_baselines_empty_rows(tmp_path,
                                                                                                  monkeypatch):
    # the baselines' rows have no target class: the column was float and the csv read "154.0"
    import io

    import pandas as pd

    from clipalign_utils import config
    from clipalign_utils.io import table_bytes
    from clipalign_utils.steps.saliency import analysis as step

    scored = load_saliency("embedded", None, image_size=32, seed=0, n_images=2)
    per_image = pd.DataFrame({"image": [0, 0], "sauc": [0.5, 0.6], "checkpoint": ["centre_bias", "epoch_1"],
                              "epoch": [np.nan, 1.0], "target_class": [np.nan, 154.0],
                              "target_source": [np.nan, "label"]})
    results = step.SaliencyResults(pd.DataFrame({"checkpoint": ["centre_bias"]}), per_image, pd.DataFrame())
    monkeypatch.setattr(step, "saliency_over_checkpoints", lambda *args, **kwargs: results)
    monkeypatch.setattr(step, "peak_table", lambda *args, **kwargs: pd.DataFrame())
    run = type("Run", (), {"layout": type("Layout", (), {"cache": tmp_path})()})()
    table = step.measure(run, config.resolve("smoke", device="cpu"), step.SaliencyData(scored, None, (), ()))
    csv = table_bytes(table["saliency_per_image"]).decode()
    assert ",154,label" in csv and "154.0" not in csv
    assert pd.read_csv(io.StringIO(csv))["target_class"].tolist()[1] == 154  # read back as before
