"""Metric functions against values worked out by hand."""

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from clipalign_utils.errors import ParameterError
from clipalign_utils.metrics.iqa import (
    alignment_scores,
    embedding_distance,
    iqa_table,
    logistic_4,
    peak_summary,
    plcc_after_logistic,
)
from clipalign_utils.metrics.noise import accuracy_with_ci, mean_normalized_drop, noise_table, normalized_drop
from clipalign_utils.metrics.shape_bias import per_class_shape_bias, shape_bias_summary
from clipalign_utils.metrics.stats import (
    bootstrap_ci,
    bootstrap_ci_grouped,
    bootstrap_spearman_grouped,
    permutation_spearman,
    spearman,
)
from clipalign_utils.metrics.tradeoff import (
    monotone_trend,
    pairwise_relations,
    pareto_front,
    rises_then_falls,
    select_checkpoint,
    verdicts,
)

N_PERM = 2000


# --- distances ---------------------------------------------------------------------------------

def test_cosine_distance_does_not_assume_unit_norm():
    ref = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [3.0, 4.0]])
    dist = np.array([[0.0, 1.0], [2.0, 0.0], [-3.0, 0.0], [4.0, 3.0]])
    # orthogonal → 1; same direction, other length → 0; opposite → 2; 1 − 24/25
    np.testing.assert_allclose(embedding_distance(ref, dist, "cosine"), [1.0, 0.0, 2.0, 0.04])


def test_cosine_distance_of_zero_vector_is_nan():
    out = embedding_distance(np.zeros((1, 2)), np.ones((1, 2)), "cosine")
    assert np.isnan(out[0])


def test_euclidean_distance():
    np.testing.assert_allclose(embedding_distance(np.zeros((1, 2)), np.array([[3.0, 4.0]]), "euclidean"), [5.0])


def test_normalized_euclidean_by_hand():
    # ref = 0, dist = [[1, 2], [3, 0]] → squared differences [[1, 4], [9, 0]].
    # Per-dimension mean over the 2 pairs: dim0 (1 + 9)/2 = 5, dim1 (4 + 0)/2 = 2.
    # Divided: [[0.2, 2.0], [1.8, 0.0]]; mean over dims: [1.1, 0.9]; distance = sqrt of that.
    out = embedding_distance(np.zeros((2, 2)), np.array([[1.0, 2.0], [3.0, 0.0]]), "normalized_euclidean")
    np.testing.assert_allclose(out, np.sqrt([1.1, 0.9]))


def test_normalized_euclidean_ignores_dimension_that_never_differs():
    # dim1 differs in no pair (mean 0) → contributes 0; dim0 squared [1, 4], mean 2.5 → [0.4, 1.6] / 2 dims.
    ref = np.array([[1.0, 5.0], [2.0, 5.0]])
    dist = np.array([[2.0, 5.0], [4.0, 5.0]])
    np.testing.assert_allclose(embedding_distance(ref, dist, "normalized_euclidean"), np.sqrt([0.2, 0.8]))


def test_unknown_distance_names_parameter_and_choices():
    with pytest.raises(ParameterError, match="distance.*cosine, euclidean, normalized_euclidean"):
        embedding_distance(np.zeros((1, 2)), np.zeros((1, 2)), "manhattan")


def test_distance_shape_mismatch():
    with pytest.raises(ParameterError, match="same shape"):
        embedding_distance(np.zeros((2, 2)), np.zeros((3, 2)))


# --- IQA alignment -----------------------------------------------------------------------------

def test_alignment_sign_convention_on_monotone_set():
    quality = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    distance = np.array([0.9, 0.7, 0.6, 0.4, 0.3, 0.1])  # falls as quality rises: perfect alignment
    scores = alignment_scores(distance, quality)
    assert scores["srcc"] == pytest.approx(1.0)
    assert scores["krcc"] == pytest.approx(1.0)
    assert scores["plcc"] > 0.95
    flipped = alignment_scores(-distance, quality)
    assert flipped["srcc"] == pytest.approx(-1.0)
    assert flipped["krcc"] == pytest.approx(-1.0)
    assert flipped["plcc"] < -0.95
    # plain Pearson by hand: −distance and quality deviate by (−.4, −.2, −.1, .1, .2, .4) and (−2.5 … 2.5), so
    # r = 2.7 / √(0.42 · 17.5); the authors print −pearsonr(MOS, distance), the same number
    assert scores["pearson"] == pytest.approx(2.7 / np.sqrt(0.42 * 17.5), abs=1e-12)
    assert scores["pearson"] == pytest.approx(-stats.pearsonr(quality, distance)[0], abs=1e-12)
    assert flipped["pearson"] == pytest.approx(-scores["pearson"], abs=1e-12)


def test_alignment_constant_input_is_nan_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scores = alignment_scores(np.ones(5), np.arange(5.0))
        assert all(np.isnan(v) for v in scores.values())
        scores = alignment_scores(np.arange(5.0), np.full(5, 2.0))
        assert all(np.isnan(v) for v in scores.values())


def test_logistic_4_formula():
    # At x = b3 the curve is halfway between b2 and b1; b4's sign does not matter.
    assert logistic_4(0.5, 10.0, 2.0, 0.5, 1.0) == pytest.approx(6.0)
    assert logistic_4(1.5, 10.0, 2.0, 0.5, -1.0) == pytest.approx(8.0 / (1 + np.exp(-1.0)) + 2.0)


def test_plcc_after_logistic_recovers_logistic_data():
    x = np.linspace(-5.0, 5.0, 60)
    y = logistic_4(x, 10.0, 1.0, 0.5, 0.8)
    raw = np.corrcoef(x, y)[0, 1]
    assert raw < 0.97  # the nonlinearity costs plain Pearson…
    assert plcc_after_logistic(x, y) == pytest.approx(1.0, abs=1e-6)  # …but not the fitted one
    assert plcc_after_logistic(x, -y) == pytest.approx(-1.0, abs=1e-6)  # decreasing mapping keeps its sign


def test_plcc_after_logistic_is_the_converged_fits():
    # Near-linear data, where the logistic flattens (|b4| grows) and a loosely stopped fit falls short: the
    # PLCC is the one of the least-squares optimum reached from the same start, here found independently by
    # scipy's least_squares at tolerances of 1e-15. A fit stopped at tolerances of 1e-6 was 3.6e-5 short.
    from scipy.optimize import least_squares

    from clipalign_utils.metrics.iqa import _logistic_4_jacobian

    rng = np.random.default_rng(10)
    x = rng.uniform(size=50)
    y = x + rng.normal(scale=0.3, size=50)
    z = (x - x.mean()) / x.std()
    optimum = least_squares(lambda b: logistic_4(z, *b) - y, [y.max(), y.min(), 0.0, 1.0],
                            jac=lambda b: _logistic_4_jacobian(z, *b), method="lm",
                            xtol=1e-15, ftol=1e-15, gtol=1e-15, max_nfev=100000).x
    assert optimum[0] > optimum[1]  # an increasing curve: the PLCC keeps +
    expected = np.corrcoef(logistic_4(z, *optimum), y)[0, 1]
    assert plcc_after_logistic(x, y) == pytest.approx(expected, abs=5e-6)
    assert plcc_after_logistic(x, y) > np.corrcoef(x, y)[0, 1]


def test_plcc_on_too_few_pairs_for_the_curve_is_plain_pearson():
    # [1, 2, 3] against [1, 3, 2]: Pearson 0.5 by hand; a 4-parameter curve through 3 points fitted 0.866
    assert plcc_after_logistic(np.array([1.0, 2.0, 3.0]), np.array([1.0, 3.0, 2.0])) == pytest.approx(0.5)
    x, y = np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 3.0, 2.0, 4.0])
    assert plcc_after_logistic(x, y) == pytest.approx(0.8)  # by hand: Σ dx·dy = 4 over Σ dx² = Σ dy² = 5
    assert plcc_after_logistic(np.append(x, 5.0), np.append(y, 5.0)) > 0.9  # 5 pairs: the curve is fitted


def _toy_pairs(n_ref=8, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for ref in range(n_ref):
        for distortion in ["blur", "noise"]:
            for level in range(1, 4):
                quality = 10.0 - 2.0 * level + rng.normal(0, 0.5)
                rows.append({"reference": f"r{ref}", "distortion": distortion, "quality": quality,
                             "distance": 0.1 * level + rng.normal(0, 0.05)})
    return pd.DataFrame(rows)


def test_scored_pairs_count_the_pairs_scored():
    from clipalign_utils.metrics.iqa import scored_pairs

    distance = np.array([0.9, 0.7, np.nan, 0.4, 0.3, 0.1])  # a NaN distance (cosine of a zero block output)
    quality = np.arange(6.0)
    scores = scored_pairs(distance, quality, np.array(["a", "a", "b", "b", "c", "c"]), n_boot=200)
    assert scores["n_pairs"] == 5 and scores["srcc"] == pytest.approx(1.0)


def test_iqa_table_rows_and_columns():
    pairs = _toy_pairs()
    table = iqa_table(pairs, n_boot=200)
    assert list(table.columns) == ["distortion", "srcc", "srcc_lo", "srcc_hi", "krcc", "plcc", "pearson", "n_pairs"]
    assert list(table["distortion"]) == ["all", "blur", "noise"]
    assert list(table["n_pairs"]) == [48, 24, 24]
    overall = table.iloc[0]
    assert overall["srcc"] == pytest.approx(alignment_scores(pairs["distance"], pairs["quality"])["srcc"])
    assert overall["srcc_lo"] <= overall["srcc"] <= overall["srcc_hi"]
    assert overall["srcc"] > 0.5
    pd.testing.assert_frame_equal(table, iqa_table(pairs, n_boot=200))
    # a pair with no finite distance (cosine of a zero vector) is left out of the scores and of n_pairs
    unscored = pairs.copy()
    unscored.loc[[0, 3], "distance"] = np.nan  # one blur pair, one noise pair
    with_nan = iqa_table(unscored, n_boot=200)
    assert list(with_nan["n_pairs"]) == [46, 23, 23]
    kept = iqa_table(unscored.dropna(), n_boot=200)
    intervals = ["srcc_lo", "srcc_hi"]  # resampled from other rows: not compared
    pd.testing.assert_frame_equal(with_nan.drop(columns=intervals), kept.drop(columns=intervals))


def test_plcc_warns_of_nothing_on_a_degenerate_fit():
    import warnings

    rng = np.random.default_rng(6)  # not monotone: the curve follows one branch
    x = rng.normal(size=30)
    scores = alignment_scores(np.abs(x), -x + 0.3 * rng.normal(size=30))
    assert scores["srcc"] > 0 > scores["plcc"]  # the curve's direction, as the book says
    rng = np.random.default_rng(16)  # a fit whose parameters run off: scipy's covariance overflowed, aloud
    x = rng.normal(size=int(rng.integers(5, 40)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isfinite(plcc_after_logistic(np.abs(x), -x + 0.3 * rng.normal(size=x.size)))


def test_iqa_table_missing_column_is_named():
    with pytest.raises(ParameterError, match=r"^pairs lack the column quality;"):
        iqa_table(_toy_pairs().rename(columns={"quality": "mos"}))
    with pytest.raises(ParameterError, match="model_distance"):
        iqa_table(_toy_pairs(), distance_col="model_distance")


def test_peak_summary_sorts_and_ignores_nan():
    epochs = [3, 0, 1, 2, 4, 5]
    values = [0.7, 0.5, 0.8, np.nan, 0.65, 0.6]
    s = peak_summary(epochs, values)
    assert s["peak_epoch"] == 1 and s["peak_value"] == 0.8
    assert s["final_epoch"] == 5 and s["final_value"] == 0.6
    assert s["drop_from_peak"] == pytest.approx(0.2)
    assert s["peak_is_interior"] is True
    assert peak_summary([0, 1, 2], [0.1, 0.2, 0.3])["peak_is_interior"] is False
    assert peak_summary([0, 1, 2], [0.3, 0.2, 0.1])["peak_is_interior"] is False


# --- bootstrap and permutation -----------------------------------------------------------------


def test_peak_summary_tie_goes_to_the_earliest_epoch():
    # Two checkpoints share the highest value: the peak is the earlier one (epoch 1, not 2).
    s = peak_summary([0, 1, 2, 3], [0.2, 0.5, 0.5, 0.1])
    assert (s["peak_epoch"], s["peak_value"], s["drop_from_peak"]) == (1.0, 0.5, pytest.approx(0.4))
    assert s["peak_is_interior"] is True


def test_a_tie_to_within_rounding_goes_to_the_earliest_checkpoint_in_every_peak_picker():
    """A reader review: 2AFC scores of 4/9 at epochs 1 and 4, 0.4444444444444444 and 0.4444444444444445 (one share
    summed in another order), read "peak at epoch 4", "the peak is the last checkpoint" and "max early − final =
    -0.000". Values within 1e-12 of the maximum are a tie, to the earliest; a real lead of 1e-9 still wins."""
    from clipalign_utils.metrics.peak import best_block_test, held_out_drops, paired_early_peak
    from clipalign_utils.metrics.tradeoff import rises_then_falls
    from clipalign_utils.prose import fixed

    low, high = 4 / 9, 4 / 9 + 1e-16
    assert high > low
    epochs, values = [0.0, 1.0, 2.0, 3.0, 4.0], [0.3, low, 0.2, 0.1, high]
    s = peak_summary(epochs, values)
    assert (s["peak_epoch"], s["peak_is_interior"]) == (1.0, True) and fixed(s["drop_from_peak"]) == "0.000"
    assert peak_summary(epochs, [0.3, low, 0.2, 0.1, low + 1e-9])["peak_epoch"] == 4.0  # no tie: unchanged
    curve = rises_then_falls(epochs, values, [v - 0.1 for v in values], [v + 0.05 for v in values])
    assert curve["peak_epoch"] == 1.0 and curve["ci_gap"] == pytest.approx(low - 0.1 - high - 0.05)
    # the early window of epochs up to 12 holds 1–4: the tie at 1 and 4 goes to 1
    epochs, values = [0.0, 1.0, 4.0, 12.0], [0.1, low, high, 0.3]
    test = paired_early_peak(epochs, values, np.array([values, values]).T)
    assert test["early_peak_epoch"] == 1.0
    _, peaks = held_out_drops(epochs, [values, values])
    assert peaks.tolist() == [1.0, 1.0]
    best = best_block_test(["a", "b", "final"], [low, high, 0.1], np.array([[low, high, 0.1]] * 2).T)
    assert best["best_block"] == "a"
    assert fixed(-5e-17) == "0.000" and fixed(-0.0006) == "-0.001" and fixed(0.0004) == "0.000"


def test_iqa_srcc_interval_resamples_reference_images_not_pairs():
    """Three reference images with the same four (distance, quality) pairs each: any resample of whole
    references repeats that block, and Spearman of k copies of a sample is the sample's (the midranks are
    an affine map of its ranks), so the interval collapses to the SRCC. Resampling pairs would not."""
    # −distance ranks [4, 1, 3, 2] against quality ranks [4, 1, 2, 3]: Σd² = 2, ρ = 1 − 6·2/(4·15) = 0.8
    pairs = pd.DataFrame({"reference": np.repeat(["r0", "r1", "r2"], 4), "distortion": "blur",
                          "distance": np.tile([0.1, 0.4, 0.2, 0.3], 3), "quality": np.tile([4.0, 1.0, 2.0, 3.0], 3)})
    table = iqa_table(pairs, n_boot=200, seed=1).set_index("distortion")
    for name in ("all", "blur"):
        row = table.loc[name]
        assert row["srcc"] == pytest.approx(0.8)
        assert row["srcc_lo"] == pytest.approx(0.8) and row["srcc_hi"] == pytest.approx(0.8)
        assert row["n_pairs"] == 12

def test_grouped_bootstrap_resamples_whole_groups():
    groups = np.array(["a"] + ["b"] * 9)  # group sizes 1 and 9
    seen = []

    def n_rows(idx):
        seen.append(idx)
        return len(idx)

    lo, hi = bootstrap_ci_grouped(groups, n_rows, n_boot=500, seed=1)
    # Two groups drawn with replacement: 1+1, 1+9 or 9+9 rows; each extreme has probability 1/4.
    assert (lo, hi) == (2.0, 18.0)
    for idx in seen:
        counts = pd.Series(groups[idx]).value_counts()
        assert counts.get("b", 0) % 9 == 0  # never a partial group
        assert set(idx[groups[idx] == "b"]) <= set(range(1, 10))


def test_row_bootstrap_keeps_row_count():
    lo, hi = bootstrap_ci(10, len, n_boot=50)
    assert (lo, hi) == (10.0, 10.0)


def test_bootstrap_is_deterministic_by_seed():
    values = np.random.default_rng(0).normal(size=40)
    groups = np.repeat(np.arange(8), 5)
    stat = lambda idx: values[idx].mean()  # noqa: E731
    assert bootstrap_ci_grouped(groups, stat, n_boot=300, seed=3) == bootstrap_ci_grouped(groups, stat, n_boot=300, seed=3)
    assert bootstrap_ci_grouped(groups, stat, n_boot=300, seed=3) != bootstrap_ci_grouped(groups, stat, n_boot=300, seed=4)
    assert bootstrap_ci(40, stat, n_boot=300, seed=3) == bootstrap_ci(40, stat, n_boot=300, seed=3)
    lo, hi = bootstrap_ci(40, stat, n_boot=1000, seed=0)
    assert lo < values.mean() < hi


def test_fast_grouped_spearman_matches_generic_bootstrap():
    rng = np.random.default_rng(2)
    x = rng.integers(0, 6, size=60).astype(float)  # ties in x, and duplicates in every resample
    y = x + rng.normal(size=60)
    y[[4, 17]] = np.nan
    groups = rng.integers(0, 12, size=60)
    for level in (0.95, 0.5):
        generic = bootstrap_ci_grouped(groups, lambda idx: spearman(x[idx], y[idx]), n_boot=300, seed=7, level=level)
        fast = bootstrap_spearman_grouped(x, y, groups, n_boot=300, seed=7, level=level)
        np.testing.assert_allclose(fast, generic, rtol=1e-10)


def test_bootstrap_ignores_nonfinite_replicates_unless_most_are():
    # nan whenever the first drawn row is 0 (≈ 1/4 of replicates): still a finite interval.
    lo, hi = bootstrap_ci(4, lambda idx: np.nan if idx[0] == 0 else 1.0, n_boot=400)
    assert (lo, hi) == (1.0, 1.0)
    # nan whenever the first drawn row is not 3 (≈ 3/4): too few finite replicates.
    lo, hi = bootstrap_ci(4, lambda idx: np.nan if idx[0] != 3 else 1.0, n_boot=400)
    assert np.isnan(lo) and np.isnan(hi)


def test_bootstrap_rejects_bad_level():
    with pytest.raises(ParameterError, match="level"):
        bootstrap_ci(5, len, level=95)


def test_permutation_spearman_anticorrelated():
    x = np.arange(10.0)
    rho, p = permutation_spearman(x, -x, n_perm=99, seed=0)
    assert rho == pytest.approx(-1.0)
    # No random permutation of 10 reaches |rho| = 1 (chance 2/10!), so p = (0 + 1) / (99 + 1).
    assert p == pytest.approx(0.01)


def test_permutation_spearman_independent():
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=30), rng.normal(size=30)
    rho, p = permutation_spearman(x, y, n_perm=N_PERM, seed=0)
    assert abs(rho) < 0.3
    assert p > 0.05
    assert (rho, p) == permutation_spearman(x, y, n_perm=N_PERM, seed=0)


def test_permutation_spearman_counts_permutations_that_tie_the_observed_rho():
    # y = 1, 0, 3, 2 against 0..3: rho = 0.6 (scipy: 0.6000000000000001). Of the 24 orders of y, 10 reach
    # |rho| >= 0.6 (on each side one at 1, three at 0.8, one at 0.6); the two at ±0.6 come out of the permuted
    # product a hair below scipy's value, so without the tolerance 8 of 24. The permutation p estimates 10/24.
    rho, p = permutation_spearman(np.arange(4.0), np.array([1.0, 0.0, 3.0, 2.0]), n_perm=24000, seed=0)
    assert rho == pytest.approx(0.6)
    assert p == pytest.approx(10 / 24, abs=0.015)


def test_permutation_spearman_constant_is_nan():
    rho, p = permutation_spearman(np.arange(5.0), np.ones(5))
    assert np.isnan(rho) and np.isnan(p)


# --- shape bias --------------------------------------------------------------------------------

SHAPE = ["cat", "cat", "dog", "dog", "car", "car", "cat", "dog", "car", "cat"]
TEXTURE = ["cat", "dog", "cat", "dog", "cat", "dog", "car", "car", "dog", "dog"]
# images 0 and 3 have shape = texture (dropped); of the other 8: 5 shape hits (1, 2, 4, 6, 8),
# 2 texture hits (5, 7), 1 neither (9).
PREDICTED = ["cat", "cat", "dog", "dog", "car", "dog", "cat", "car", "car", "bird"]


def test_shape_bias_summary_by_hand():
    s = shape_bias_summary(PREDICTED, SHAPE, TEXTURE, n_boot=500)
    assert s["shape_bias"] == pytest.approx(5 / 7)
    assert s["shape_fraction"] == pytest.approx(5 / 8)
    assert s["texture_fraction"] == pytest.approx(2 / 8)
    assert s["neither_fraction"] == pytest.approx(1 / 8)
    assert s["n_images"] == 8
    assert s["lo"] <= s["shape_bias"] <= s["hi"]
    assert s["n_cue_decisions"] == 7
    assert set(s) == {"shape_bias", "lo", "hi", "shape_fraction", "texture_fraction", "neither_fraction", "n_images",
                      "n_cue_decisions"}


def test_shape_bias_at_chance_is_the_cue_decisions_interval_reaching_two_classes_of_n():
    from clipalign_utils.metrics.stats import percentile_interval, resampled_rows

    s = shape_bias_summary(PREDICTED, SHAPE, TEXTURE, n_boot=500, seed=4, n_classes=4)
    # 7 of the 8 conflicting images decided for a cue; the interval on the shape bias' own draws, by a loop
    cue = np.array([1, 1, 1, 1, 1, 1, 1, 0], dtype=float)
    replicates = np.concatenate([cue[rows].mean(axis=1) for rows in resampled_rows(8, 500, 4)])
    assert (s["cue_fraction_lo"], s["cue_fraction_hi"]) == percentile_interval(replicates, 0.95)
    assert s["cue_chance"] == 0.5 and s["shape_at_chance"] == (s["cue_fraction_lo"] <= 0.5)
    assert not shape_bias_summary(SHAPE, SHAPE, TEXTURE, n_boot=200, n_classes=3)["shape_at_chance"]  # all by shape
    # One answer whatever the image, on a balanced 16-class set: a shape bias of 0.5 that is guessing.
    shape, texture = np.divmod(np.arange(16 * 16), 16)
    one_answer = shape_bias_summary(np.full(shape.size, 3), shape, texture, n_boot=300, n_classes=16)
    assert one_answer["shape_bias"] == 0.5 and one_answer["shape_at_chance"]
    assert one_answer["n_cue_decisions"] == 30 and one_answer["cue_chance"] == 2 / 16


def test_shape_bias_without_hits_is_nan():
    s = shape_bias_summary(["x", "y"], ["a", "b"], ["b", "a"], n_boot=50)
    assert np.isnan(s["shape_bias"]) and s["neither_fraction"] == 1.0


def test_crossed_weights_count_each_item_as_often_as_both_its_sources_were_drawn():
    from clipalign_utils.metrics.stats import crossed_weights

    # four items: rows a, a, b, b crossed with columns x, y, x, y (ids in any order, any type)
    rows, columns = np.array(["b", "b", "a", "a"]), np.array([7, 3, 7, 3])
    blocks = list(crossed_weights(rows, columns, n_boot=5, seed=11, max_cells=8))  # two replicates a block
    assert [b.shape for b in blocks] == [(2, 4), (2, 4), (1, 4)]
    draws = np.random.default_rng(11)
    expected = []
    for k in (2, 2, 1):  # per block: the rows' draws, then the columns' (groups numbered in sorted order)
        row_draws, column_draws = draws.integers(0, 2, size=(k, 2)), draws.integers(0, 2, size=(k, 2))
        for drawn_rows, drawn_columns in zip(row_draws, column_draws):
            row_count = {g: list(drawn_rows).count(g) for g in (0, 1)}  # 0 = "a", 1 = "b"
            column_count = {g: list(drawn_columns).count(g) for g in (0, 1)}  # 0 = 3, 1 = 7
            expected.append([row_count[1] * column_count[1], row_count[1] * column_count[0],
                             row_count[0] * column_count[1], row_count[0] * column_count[0]])
    assert np.array_equal(np.concatenate(blocks), expected)
    with pytest.raises(ParameterError, match="one group per item"):
        next(crossed_weights(rows, columns[:3]))


def test_the_shape_bias_interval_with_sources_resamples_objects_and_texture_images_as_a_loop_does():
    from clipalign_utils.metrics.stats import percentile_interval

    # 3 objects × 2 texture images, each object in both styles; decisions: shape, texture or neither
    shape_sources = np.array(["o1", "o1", "o2", "o2", "o3", "o3"])
    texture_sources = np.array(["t1", "t2", "t1", "t2", "t1", "t2"])
    shape, texture = np.zeros(6, int), np.ones(6, int)
    predicted = np.array([0, 1, 0, 0, 1, 2])  # shape hits at 0, 2, 3; texture hits at 1, 4
    s = shape_bias_summary(predicted, shape, texture, n_boot=400, seed=3, n_classes=4,
                           shape_sources=shape_sources, texture_sources=texture_sources)
    assert s["shape_bias"] == pytest.approx(3 / 5) and s["n_images"] == 6
    # by a loop over materialised resamples: every image of a drawn object in a drawn texture image, once per pair
    draws = np.random.default_rng(3)
    objects, textures = draws.integers(0, 3, size=(400, 3)), draws.integers(0, 2, size=(400, 2))
    bias, cue = [], []
    for drawn_objects, drawn_textures in zip(objects, textures):
        images = [i for o in drawn_objects for t in drawn_textures
                  for i in range(6) if shape_sources[i] == f"o{o + 1}" and texture_sources[i] == f"t{t + 1}"]
        shape_hits = sum(predicted[i] == 0 for i in images)
        cue_hits = sum(predicted[i] in (0, 1) for i in images)
        bias.append(shape_hits / cue_hits if cue_hits else np.nan)
        cue.append(cue_hits / len(images))
    assert (s["lo"], s["hi"]) == pytest.approx(percentile_interval(np.array(bias)), abs=1e-12)
    assert (s["cue_fraction_lo"], s["cue_fraction_hi"]) == pytest.approx(percentile_interval(np.array(cue)),
                                                                         abs=1e-12)
    with pytest.raises(ParameterError, match="give both or neither"):
        shape_bias_summary(predicted, shape, texture, shape_sources=shape_sources)
    with pytest.raises(ParameterError, match="one source per image"):
        shape_bias_summary(predicted, shape, texture, shape_sources=shape_sources[:5],
                           texture_sources=texture_sources[:5])


def test_where_images_share_texture_images_only_resampling_the_sources_covers_the_shape_bias():
    """Decisions that depend on the texture image (as Geirhos' stimuli make them: each styles about 27 objects)
    are not independent across images. Simulated: 40 objects × 8 of 24 texture images each, a shape decision
    with probability σ(a_object + b_texture), a ~ N(0, 0.5²) and b ~ N(0, 1.5²); the shape bias of the
    population of sources is E σ(a + b) = 0.5 exactly (a + b is symmetric about 0 and σ(−x) = 1 − σ(x)). Over
    200 such sets the images' bootstrap covers it far less often than its 95 %, the sources' bootstrap (Owen's
    pigeonhole, mildly conservative) about as often or more."""
    rng = np.random.default_rng(1)
    covered = {"images": 0, "sources": 0}
    for k in range(200):
        a, b = rng.normal(0, 0.5, 40), rng.normal(0, 1.5, 24)
        objects = np.repeat(np.arange(40), 8)
        textures = np.concatenate([rng.choice(24, 8, replace=False) for _ in range(40)])
        shape_hit = rng.random(objects.size) < 1 / (1 + np.exp(-(a[objects] + b[textures])))
        predicted, shape, texture = np.where(shape_hit, 0, 1), np.zeros(objects.size), np.ones(objects.size)
        by_images = shape_bias_summary(predicted, shape, texture, n_boot=200, seed=k)
        by_sources = shape_bias_summary(predicted, shape, texture, n_boot=200, seed=k, shape_sources=objects,
                                        texture_sources=textures)
        covered["images"] += by_images["lo"] <= 0.5 <= by_images["hi"]
        covered["sources"] += by_sources["lo"] <= 0.5 <= by_sources["hi"]
    assert covered["images"] / 200 < 0.8 and covered["sources"] / 200 >= 0.9, covered


def test_per_class_shape_bias_by_hand():
    table = per_class_shape_bias(PREDICTED, SHAPE, TEXTURE)
    assert list(table.columns) == ["class", "shape_bias", "n_images"]
    by_class = table.set_index("class")
    # cat: images 1, 6 shape hits, 9 neither → 2/2; car: 4, 8 shape, 5 texture → 2/3; dog: 2 shape, 7 texture → 1/2
    assert by_class.loc["cat", "shape_bias"] == pytest.approx(1.0)
    assert by_class.loc["car", "shape_bias"] == pytest.approx(2 / 3)
    assert by_class.loc["dog", "shape_bias"] == pytest.approx(1 / 2)
    assert list(by_class["n_images"]) == [3, 3, 2]


# --- noise -------------------------------------------------------------------------------------

def test_normalized_drop_formula():
    assert normalized_drop(0.8, 0.6) == pytest.approx(0.25)
    np.testing.assert_allclose(normalized_drop(np.array([0.8, 0.5, 0.0]), np.array([0.6, 0.5, 0.0])), [0.25, 0.0, np.nan])


def test_accuracy_with_ci():
    acc, lo, hi = accuracy_with_ci(np.array([True] * 8 + [False] * 2), n_boot=500)
    assert acc == pytest.approx(0.8)
    assert lo <= 0.8 <= hi


def test_noise_table_by_hand():
    correct = {
        0.1: np.array([True, True, True, False, False]),   # 0.6
        0: np.array([True, True, True, True, False]),      # 0.8 clean
        0.05: np.array([True, True, True, True, False]),   # 0.8
    }
    table = noise_table(correct, n_boot=200)
    assert list(table.columns) == ["sigma", "accuracy", "lo", "hi", "normalized_drop", "chance_corrected_drop",
                                   "n_images", "normalized_drop_lo", "normalized_drop_hi",
                                   "mean_normalized_drop_lo", "mean_normalized_drop_hi"]
    assert table["chance_corrected_drop"].isna().all()  # no chance given
    assert list(table["sigma"]) == [0.0, 0.05, 0.1]
    np.testing.assert_allclose(table["accuracy"], [0.8, 0.8, 0.6])
    np.testing.assert_allclose(table["normalized_drop"], [0.0, 0.0, 0.25])
    assert list(table["n_images"]) == [5, 5, 5]
    assert mean_normalized_drop(table) == pytest.approx(0.125)
    # σ = 0.05 gets exactly the clean decisions: paired over images, its drop is 0 in every replicate (an
    # unpaired bootstrap of the two accuracies would give it a width).
    assert table.loc[1, ["normalized_drop_lo", "normalized_drop_hi"]].tolist() == [0.0, 0.0]
    assert table.loc[0, ["normalized_drop_lo", "normalized_drop_hi"]].tolist() == [0.0, 0.0]
    lo, hi = table.loc[2, ["normalized_drop_lo", "normalized_drop_hi"]]
    assert 0 <= lo <= 0.25 <= hi <= 1
    assert table["mean_normalized_drop_lo"].nunique() == 1  # the checkpoint's, on every row


def test_drop_intervals_against_a_replicate_loop():
    """The paired drop intervals against a loop written from the definition: per replicate, one resample
    of the images (bootstrap_ci's draws), every level's accuracy on it, the drop against its clean accuracy."""
    from clipalign_utils.metrics.noise import drop_intervals

    rng = np.random.default_rng(7)
    clean = rng.random(40) < 0.7
    correct = {0: clean, 0.1: clean & (rng.random(40) < 0.8), 0.3: clean & (rng.random(40) < 0.4)}
    per_sigma, mean = drop_intervals(correct, n_boot=300, seed=11)
    draws = np.random.default_rng(11)
    replicates = []
    for _ in range(300):
        rows = draws.integers(0, 40, size=40)
        acc = {sigma: c[rows].mean() for sigma, c in correct.items()}
        replicates.append([(acc[0] - acc[0.1]) / acc[0], (acc[0] - acc[0.3]) / acc[0]])
    replicates = np.array(replicates)
    np.testing.assert_allclose(per_sigma[0.1], np.quantile(replicates[:, 0], [0.025, 0.975]))
    np.testing.assert_allclose(per_sigma[0.3], np.quantile(replicates[:, 1], [0.025, 0.975]))
    np.testing.assert_allclose(mean, np.quantile(replicates.mean(axis=1), [0.025, 0.975]))
    # The accuracy intervals come from the same replicates.
    table = noise_table(correct, n_boot=300, seed=11)
    np.testing.assert_allclose(table.loc[0, ["lo", "hi"]].astype(float),
                               np.quantile([clean[r].mean() for r in _rows(11, 40, 300)], [0.025, 0.975]))


def _rows(seed: int, n: int, n_boot: int):
    draws = np.random.default_rng(seed)
    return [draws.integers(0, n, size=n) for _ in range(n_boot)]


def test_drop_intervals_with_an_always_right_clean_set():
    """Clean accuracy 1 in every replicate: the drop is 1 − noisy accuracy, so its interval is the noisy
    accuracy's interval turned over; undefined levels give nan."""
    from clipalign_utils.metrics.noise import drop_intervals

    noisy = np.array([True] * 12 + [False] * 8)
    per_sigma, mean = drop_intervals({0: np.ones(20, bool), 0.2: noisy}, n_boot=400, seed=3)
    acc, lo, hi = accuracy_with_ci(noisy, n_boot=400, seed=3)
    np.testing.assert_allclose(per_sigma[0.2], (1 - hi, 1 - lo))
    np.testing.assert_allclose(mean, per_sigma[0.2])
    # A clean accuracy of 0: no drop anywhere; levels of unequal size: no pairing, no interval.
    per_sigma, mean = drop_intervals({0: np.zeros(5, bool), 0.2: np.zeros(5, bool)}, n_boot=50)
    assert np.isnan([*per_sigma[0.0], *per_sigma[0.2], *mean]).all()
    per_sigma, mean = drop_intervals({0: np.ones(5, bool), 0.2: np.ones(4, bool)}, n_boot=50)
    assert np.isnan([*per_sigma[0.2], *mean]).all()


def test_noise_table_requires_clean():
    with pytest.raises(ParameterError, match="sigmas"):
        noise_table({0.1: np.array([True])})


# --- trade-off synthesis -----------------------------------------------------------------------

def test_rises_then_falls():
    epochs = np.arange(6.0)
    peaked = np.array([0.5, 0.7, 0.8, 0.75, 0.7, 0.65])
    tight = rises_then_falls(epochs, peaked, peaked - 0.01, peaked + 0.01)
    assert tight["verdict"] and tight["peak_is_interior"] and tight["ci_separated"]
    assert tight["peak_epoch"] == 2 and tight["final_value"] == 0.65
    wide = rises_then_falls(epochs, peaked, peaked - 0.2, peaked + 0.2)
    assert wide["peak_is_interior"] and not wide["ci_separated"] and not wide["verdict"]
    rising = np.linspace(0.5, 0.8, 6)
    assert not rises_then_falls(epochs, rising, rising - 0.01, rising + 0.01)["verdict"]


def test_monotone_trend_directions():
    epochs = np.arange(10.0)
    assert monotone_trend(epochs, -epochs, n_perm=N_PERM)["direction"] == "falls"
    assert monotone_trend(epochs, epochs**2, n_perm=N_PERM)["direction"] == "rises"
    flat = np.array([3, 1, 4, 1.5, 5, 9, 2, 6, 5.5, 3.5])
    assert monotone_trend(epochs, flat, n_perm=N_PERM)["direction"] == "flat"


def test_rises_then_falls_needs_the_intervals_apart_not_touching():
    epochs = np.arange(4.0)
    values = np.array([0.5, 0.8, 0.7, 0.6])
    lo = np.array([0.4, 0.5, 0.6, 0.5])   # lo at the peak (epoch 1) 0.5
    hi = np.array([0.6, 0.9, 0.8, 0.5])   # hi at the last checkpoint 0.5: ci_gap exactly 0
    curve = rises_then_falls(epochs, values, lo, hi)
    assert curve["peak_is_interior"] and curve["ci_gap"] == 0.0
    assert not curve["ci_separated"] and not curve["verdict"]


def test_monotone_trend_at_p_equal_to_alpha_is_flat():
    # 8 points in order: no permutation among 19 of 8! orders ties |rho| = 1, so p = (0 + 1) / (19 + 1) = 0.05,
    # not below alpha = 0.05
    trend = monotone_trend(np.arange(8.0), np.arange(8.0), n_perm=19, alpha=0.05)
    assert trend["rho"] == pytest.approx(1.0) and trend["p_value"] == pytest.approx(0.05)
    assert trend["direction"] == "flat"
    assert monotone_trend(np.arange(8.0), np.arange(8.0), n_perm=19, alpha=0.0501)["direction"] == "rises"


def test_pareto_front_by_hand():
    alignment = [1.0, 0.0, 0.5, 0.4, 1.0, np.nan, 0.2]
    robustness = [0.0, 1.0, 0.5, 0.4, 0.0, 2.0, np.nan]
    # (0.4, 0.4) is dominated by (0.5, 0.5); the duplicate (1, 0) stays; nan rows are off the front.
    assert list(pareto_front(alignment, robustness)) == [True, True, True, False, True, False, False]


def _checkpoints(iqa, shape_bias, noise_drop, ci=0.01, early_drop=None):
    """Checkpoint rows; the paired early-peak test's columns say (max early − final) ± ci."""
    iqa = np.asarray(iqa, dtype=float)
    epochs = np.arange(len(iqa), dtype=float)
    if early_drop is None:
        early = iqa[(epochs > 0) & (epochs <= epochs[-1] / 3)]
        early_drop = early.max() - iqa[-1]
    return pd.DataFrame({
        "epoch": epochs,
        "iqa_srcc": iqa, "iqa_srcc_lo": iqa - ci, "iqa_srcc_hi": iqa + ci,
        "shape_bias": shape_bias, "clean_accuracy": 0.5, "noise_drop": noise_drop,
        "iqa_early_drop": early_drop, "iqa_early_drop_lo": early_drop - ci, "iqa_early_drop_hi": early_drop + ci,
    })


def test_select_checkpoint_extremes():
    df = _checkpoints([0.5, 0.9, 0.7, 0.6], [0.5] * 4, [0.4, 0.5, 0.3, 0.1]).set_index(pd.Index([10, 11, 12, 13]))
    assert select_checkpoint(df, 1.0) == 11  # highest alignment
    assert select_checkpoint(df, 0.0) == 13  # lowest noise drop
    with pytest.raises(ParameterError, match="alignment_weight"):
        select_checkpoint(df, 1.5)


def test_synthesis_table_weighs_only_checkpoints_above_chance():
    from clipalign_utils.metrics.tradeoff import synthesis_table

    # (alignment, robustness) = (0.8, 0.95), (0.9, 0.5), (0.7, 0.7), (0.6, 0.9). Epoch 0 is at chance (a
    # seed-mean row where most seeds are): counted, it dominates epochs 2 and 3 and, at w = 0, is selected.
    # Left out, no other point dominates another, and w = 0 picks the lowest drop, epoch 3.
    df = _checkpoints([0.8, 0.9, 0.7, 0.6], [0.5] * 4, [0.05, 0.5, 0.3, 0.1]).assign(run="r")
    plain = synthesis_table(df, alignment_weight=0.0)
    assert plain["on_pareto_front"].tolist() == [True, True, False, False]
    assert plain["selected"].tolist() == [True, False, False, False]
    table = synthesis_table(df.assign(at_chance=[True, False, False, False]), alignment_weight=0.0)
    assert table["on_pareto_front"].tolist() == [False, True, True, True]
    assert table["selected"].tolist() == [False, False, False, True]
    assert table["robustness"].tolist() == pytest.approx([0.95, 0.5, 0.7, 0.9])  # the values stay in the table


def test_pairwise_relations_columns():
    df = _checkpoints([0.5, 0.6, 0.7, 0.8, 0.9], [0.9, 0.8, 0.7, 0.6, 0.5], [0.1, 0.2, 0.3, 0.4, 0.5])
    rel = pairwise_relations(df, n_perm=N_PERM)
    assert list(rel.columns) == ["x", "y", "spearman", "p_value", "n", "partial_spearman", "partial_p",
                                 "diff_spearman"]
    assert list(zip(rel["x"], rel["y"])) == [("iqa_srcc", "texture_bias"), ("iqa_srcc", "noise_drop"),
                                           ("texture_bias", "noise_drop")]
    np.testing.assert_allclose(rel["spearman"], [1.0, 1.0, 1.0])
    assert list(rel["n"]) == [5, 5, 5]


def _verdict_of(table, word):
    return table.loc[table["claim"].str.contains(word), "verdict"].item()


def test_verdicts_paper_like_run_reproduces_everything():
    # Texture bias and noise drop fall; alignment starts low, peaks at epoch 1, then falls with them,
    # step for step (the same wiggles), so they move together net of time too.
    wiggle = np.tile([0.0, 0.1], 10)
    texture = np.linspace(0.95, 0.6, 20) + wiggle
    iqa = np.concatenate([[0.5], texture[1:]])
    table = verdicts(_checkpoints(iqa, 1.0 - texture, texture), n_perm=N_PERM)
    assert list(table.columns) == ["claim", "statistic", "value", "ci_lo", "ci_hi", "p_value", "verdict", "detail"]
    assert list(table["verdict"]) == ["reproduced"] * 4
    row = table.loc[table["claim"].str.contains("texture bias falls")].iloc[0]
    assert row["statistic"] == "spearman(epoch, texture_bias)" and row["value"] < -0.7 and row["p_value"] < 0.05


def test_verdicts_opposite_run():
    up = np.linspace(0.5, 0.8, 8)
    # alignment and texture bias rise to the end; noise drop falls, so it anti-covaries with alignment
    table = verdicts(_checkpoints(up, 1.0 - up, 1.0 - up), n_perm=N_PERM)
    assert _verdict_of(table, "peaks early") == "not reproduced"
    assert _verdict_of(table, "texture bias falls") == "not reproduced"
    assert _verdict_of(table, "noise drop falls") == "reproduced"
    # Net of time, two straight lines carry no relation beyond time itself: no verdict either way.
    assert _verdict_of(table, "co-varies") == "inconclusive"
    row = table.loc[table["claim"].str.contains("co-varies")].iloc[0]
    assert row["statistic"].startswith("partial spearman(iqa_srcc")


def test_verdicts_noisy_flat_run_is_inconclusive():
    iqa = [0.70, 0.72, 0.71, 0.73, 0.72]
    table = verdicts(_checkpoints(iqa, [0.5, 0.4, 0.6, 0.45, 0.55], [0.30, 0.20, 0.35, 0.25, 0.28], ci=0.05,
                                  early_drop=0.0), n_perm=N_PERM)
    assert list(table["verdict"]) == ["inconclusive"] * 4


def test_verdicts_missing_column():
    with pytest.raises(ParameterError, match="noise_drop"):
        verdicts(pd.DataFrame({"epoch": [0.0], "iqa_srcc": [0.5], "iqa_srcc_lo": [0.4], "iqa_srcc_hi": [0.6],
                               "shape_bias": [0.5]}))


def test_the_logistic_jacobian_is_the_derivative_of_logistic_4():
    from scipy.optimize import approx_fprime

    from clipalign_utils.metrics.iqa import _logistic_4_jacobian, logistic_4

    x = np.linspace(-2.0, 3.0, 7)
    for b in ([5.0, 1.0, 0.3, 0.8], [1.0, 4.0, -0.5, -1.7]):  # rising and falling, b4 of either sign
        numeric = np.array([approx_fprime(np.array(b), lambda p, xi=xi: logistic_4(xi, *p), 1e-7) for xi in x])
        assert np.allclose(_logistic_4_jacobian(x, *b), numeric, atol=1e-5)


def test_the_blocked_bootstraps_are_the_loops_intervals_bit_for_bit():
    from clipalign_utils.metrics import shape_bias
    from clipalign_utils.metrics.stats import bootstrap_ci, bootstrap_mean_ci, resampled_rows

    rng = np.random.default_rng(4)
    values = rng.normal(size=37)
    loop = bootstrap_ci(values.size, lambda idx: float(values[idx].mean()), n_boot=250, seed=9)
    assert bootstrap_mean_ci(values, n_boot=250, seed=9) == loop
    blocks = list(resampled_rows(values.size, 250, seed=9, max_cells=37 * 40))  # blocks of 40 replicates
    assert [len(b) for b in blocks] == [40] * 6 + [10]
    draws = np.random.default_rng(9)
    assert np.array_equal(np.concatenate(blocks), [draws.integers(0, 37, size=37) for _ in range(250)])
    assert np.isnan(bootstrap_mean_ci(np.array([]), n_boot=10)).all()
    shape_hits, texture_hits = rng.random(60) < 0.4, rng.random(60) < 0.3
    shape_hits &= ~texture_hits
    assert shape_bias._intervals(shape_hits, texture_hits, 300, 2, None)[0] == bootstrap_ci(
        60, lambda idx: shape_bias._ratio(shape_hits[idx], texture_hits[idx]), n_boot=300, seed=2)


def test_the_early_peak_interval_is_undefined_when_most_resamples_are():
    """The interval of the early drop is nan when fewer than half of its resamples give a defined drop (it was
    taken over the few that did); with every resample defined it is their percentile interval."""
    from clipalign_utils.metrics.peak import paired_early_peak

    epochs = np.array([0.0, 1.0, 2.0, 6.0])
    values = np.array([0.1, 0.5, 0.4, 0.3])
    replicates = np.tile(values[:, None], (1, 10)) + np.arange(10) * 0.01 * np.array([[0], [1], [0], [0]])
    whole = paired_early_peak(epochs, values, replicates)
    # early window (0, 2]: max over epochs 1 and 2 of each resample minus epoch 6's: 0.2 + 0.01 r; the basic
    # interval reflects their percentiles about the drop: 2 × 0.2 − q
    assert whole["early_drop"] == pytest.approx(0.2)
    q_lo, q_hi = np.quantile(0.2 + 0.01 * np.arange(10), [0.025, 0.975])
    assert (q_lo, q_hi) == pytest.approx((0.20225, 0.28775))  # by hand: 0.2 + 0.01 × (0.225, 8.775)
    assert (whole["lo"], whole["hi"]) == pytest.approx((0.4 - q_hi, 0.4 - q_lo))
    assert (whole["lo"], whole["hi"]) == pytest.approx((0.11225, 0.19775))
    replicates[-1, :6] = np.nan  # six of ten resamples leave the final value undefined
    sparse = paired_early_peak(epochs, values, replicates)
    assert sparse["early_drop"] == pytest.approx(0.2) and np.isnan(sparse["lo"]) and np.isnan(sparse["hi"])


def test_an_early_checkpoint_without_a_value_is_left_out_of_the_peak_and_its_replicates():
    """An audit: with every early value nan the test raised (All-NaN slice); with one of them nan the point
    skipped it but every replicate's max became nan, so the drop came with no interval."""
    from clipalign_utils.metrics.peak import paired_early_peak

    epochs = np.array([0.0, 0.25, 0.5, 1.0, 2.0, 3.0])
    values = np.array([0.1, np.nan, np.nan, np.nan, 0.2, 0.1])
    none = paired_early_peak(epochs, values, np.tile(values[:, None], (1, 50)))
    assert np.isnan([none["early_drop"], none["lo"], none["hi"], none["early_peak_epoch"]]).all()
    assert none["n_early"] == 3  # the window's checkpoints, defined or not
    values = np.array([0.1, 0.5, np.nan, 0.4, 0.2, 0.3])
    replicates = np.tile(values[:, None], (1, 10)) + 0.01 * np.arange(10) * np.array([[0], [1], [0], [0], [0], [0]])
    replicates[2] = np.nan
    some = paired_early_peak(epochs, values, replicates)
    # early window (0, 1]: 0.5 at 0.25 (0.5 + 0.01 r per resample) minus the final 0.3
    assert (some["early_drop"], some["early_peak_epoch"]) == pytest.approx((0.2, 0.25))
    assert (some["lo"], some["hi"]) == pytest.approx((0.11225, 0.19775))  # 0.4 − the quantiles, as above


def test_the_best_block_test_recomputes_the_best_block_on_every_resample():
    """margin = max over blocks − final, on the data and on each resample (whose own best block may differ)."""
    from clipalign_utils.metrics.peak import best_block_test, mean_replicates

    layers = ["stem", "layer1", "broken", "final"]
    values = [0.5, 0.7, np.nan, 0.6]
    replicates = np.array([[0.9, 0.4, 0.5, 0.9],    # stem: best on resamples 0, 2 and 3
                           [0.7, 0.8, 0.3, 0.6],    # layer1: best on resample 1
                           [np.nan] * 4,            # a block undefined here: not a block of the test
                           [0.6, 0.6, 0.6, 0.6]])   # final
    test = best_block_test(layers, values, replicates, level=0.5)
    margins = np.array([0.9, 0.8, 0.5, 0.9]) - 0.6  # [0.3, 0.2, -0.1, 0.3]
    q_lo, q_hi = np.quantile(margins, [0.25, 0.75])
    assert (q_lo, q_hi) == pytest.approx((0.125, 0.3))  # by hand: quartiles of [-0.1, 0.2, 0.3, 0.3]
    # the basic interval, reflected about the margin 0.1: (0.2 − 0.3, 0.2 − 0.125)
    assert test == pytest.approx({"best_block": "layer1", "best_value": 0.7, "final_value": 0.6, "n_blocks": 2,
                                  "margin": 0.1, "margin_lo": -0.1, "margin_hi": 0.075})
    only_final = best_block_test(["final"], [0.6], np.full((1, 4), 0.6))
    assert only_final["best_block"] is None and np.isnan(only_final["margin"]) and only_final["n_blocks"] == 0
    # every row over the same draws: items drawn where no group repeats, whole groups where they do
    matrix = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, np.nan]])
    draws = np.random.default_rng(3).integers(0, 3, size=(5, 3))
    expected = np.stack([np.nanmean(row[draws], axis=1) for row in matrix])
    np.testing.assert_array_equal(mean_replicates(matrix, None, 5, 3), expected)
    np.testing.assert_array_equal(mean_replicates(matrix, np.array(["a", "b", "c"]), 5, 3), expected)
    grouped = mean_replicates(np.array([[1.0, 1.0, 0.0]]), np.array(["a", "a", "b"]), 4, 0)
    groups = np.random.default_rng(0).integers(0, 2, size=(4, 2))  # a drawn k times counts its two items k times
    times_a = (groups == 0).sum(axis=1)
    np.testing.assert_allclose(grouped[0], 2 * times_a / (2 * times_a + (groups == 1).sum(axis=1)))


def test_held_out_early_drops_by_hand_and_without_the_selection_bias_of_own_maxima():
    from clipalign_utils.metrics.peak import held_out_drops

    epochs = [0.0, 1.0, 2.0, 6.0]  # early: epochs 1 and 2
    curves = [[0.0, 0.6, 0.5, 0.4], [0.0, 0.5, 0.7, 0.4], [0.0, 0.4, np.nan, 0.5]]
    drops, peaks = held_out_drops(epochs, curves)
    # run 0: the others' means 0.45, 0.7 (run 2 lacks epoch 2) → epoch 2 → 0.5 − 0.4; run 1: 0.5, 0.5 → the first,
    # epoch 1 → 0.5 − 0.4; run 2 has no epoch 2 to be chosen (the others' 0.6 there): epoch 1 → 0.4 − 0.5
    assert drops == pytest.approx([0.1, 0.1, -0.1]) and peaks.tolist() == [2.0, 1.0, 1.0]
    assert np.isnan(held_out_drops(epochs, [curves[0]])[0]).all()  # one run: nothing to choose on
    # A run that ends earlier (epoch 3: its early window is 0 < epoch <= 1) is measured against its own last
    # checkpoint: B 0.4 − 0.2; A (window <= 2) at epoch 2, where B and C average 0.5 (0.45 at epoch 1): 0.3 − 0.1;
    # C at epoch 1 (A and B tie at 0.45): 0.5 − 0.2.
    ends = held_out_drops([0.0, 1.0, 2.0, 3.0, 6.0], [[0.0, 0.5, 0.3, 0.2, 0.1], [0.0, 0.4, 0.6, 0.2, np.nan],
                                                      [0.0, 0.5, 0.4, 0.3, 0.2]])
    assert ends[0] == pytest.approx([0.2, 0.2, 0.3]) and ends[1].tolist() == [2.0, 1.0, 1.0]
    # Under the null (every checkpoint the same true value, noise alone), the mean of each run's own early maximum
    # − final sits well above 0 (E max of 4 standard normals ≈ 1.03); the held-out drops average 0.
    rng = np.random.default_rng(0)
    noise = rng.standard_normal((4000, 3, 6))  # groups × runs × checkpoints (epochs 0, 0.5, 1, 1.5, 2, 6)
    null_epochs = [0.0, 0.5, 1.0, 1.5, 2.0, 6.0]
    own = (noise[:, :, 1:5].max(axis=2) - noise[:, :, -1]).mean()
    held_out = np.mean([held_out_drops(null_epochs, group)[0] for group in noise])
    assert own > 0.9 and abs(held_out) < 0.05


def test_under_noise_alone_the_t_interval_over_held_out_drops_clears_0_about_as_often_as_it_should():
    """What book/limitations.md says of the seed-level peak test, on the default run's checkpoints and 3 seeds: the
    interval over held-out drops lies above 0 in under 5 % of noise-only runs (nominal 2.5 %: the drops share the
    other seeds' noise through their choice, which narrows it a little); over the seeds' own maxima, in over 12 %."""
    from clipalign_utils.metrics.peak import early_window, held_out_drops
    from clipalign_utils.metrics.tradeoff import t_interval

    epochs = [0.0, 0.12, 0.25, 0.5, 0.75, 1.0, 2.0, 3.0, 4.0, 5.0]
    early = early_window(epochs)
    rng = np.random.default_rng(1)
    held_out = own = 0
    trials = 4000
    for _ in range(trials):
        curves = rng.standard_normal((3, len(epochs)))
        held_out += t_interval(held_out_drops(epochs, curves)[0])[1] > 0
        own += t_interval(curves[:, early].max(axis=1) - curves[:, -1])[1] > 0
    assert 0.025 < held_out / trials < 0.05 and own / trials > 0.12


def test_plcc_with_four_pairs_is_plain_pearson():
    """With 4 pairs the 4-parameter logistic would fit any order exactly; the PLCC is then Pearson's r."""
    from clipalign_utils.metrics.iqa import plcc_after_logistic

    pred, target = np.array([0.0, 1.0, 2.0, 3.0]), np.array([1.0, 3.0, 2.0, 5.0])
    # Pearson by hand: means 1.5 and 2.75; Σdxdy = 5.5, Σdx² = 5, Σdy² = 8.75
    expected = 5.5 / np.sqrt(5 * 8.75)
    assert expected == pytest.approx(stats.pearsonr(pred, target)[0])
    assert plcc_after_logistic(pred, target) == pytest.approx(expected, abs=1e-12)


def test_early_peak_replicates_recompute_the_maximum():
    """Each replicate takes its own maximum over the early window (not the data's peak checkpoint)."""
    from clipalign_utils.metrics.peak import paired_early_peak

    epochs = [0, 1, 2, 6]  # early window: 0 < epoch <= 2, checkpoints 1 and 2
    values = [0.1, 0.5, 0.4, 0.2]
    replicates = [[0.1, 0.1, 0.1, 0.1],
                  [0.5, 0.3, 0.6, 0.4],
                  [0.4, 0.6, 0.3, 0.5],
                  [0.2, 0.2, 0.2, 0.2]]
    result = paired_early_peak(epochs, values, replicates, level=0.5)
    assert result["early_drop"] == pytest.approx(0.3) and result["early_peak_epoch"] == 1
    # replicate drops = max(early) - final = [0.3, 0.4, 0.4, 0.3]; their 25 % / 75 % quantiles (linear) 0.3, 0.4;
    # basic interval (2·0.3 − 0.4, 2·0.3 − 0.3) = (0.2, 0.3)
    assert result["lo"] == pytest.approx(0.2) and result["hi"] == pytest.approx(0.3)


def test_mean_peak_test_drops_items_undefined_at_the_final_checkpoint():
    from clipalign_utils.metrics.peak import mean_peak_test

    rows = []
    for checkpoint, epoch, values in [("c0", 0, (0.5, 0.5, 0.5)), ("c1", 1, (0.8, 0.9, 0.4)), ("c3", 3, (0.5, np.nan, 0.3))]:
        rows += [{"checkpoint": checkpoint, "epoch": epoch, "item": item, "value": v} for item, v in zip("abc", values)]
    result = mean_peak_test(pd.DataFrame(rows), "value", "item", n_boot=20, seed=0)
    # item b is undefined at the final checkpoint: left out everywhere. Early peak mean(0.8, 0.4) = 0.6,
    # final mean(0.5, 0.3) = 0.4
    assert result["n_items"] == 2
    assert result["early_peak_value"] == pytest.approx(0.6)
    assert result["early_drop"] == pytest.approx(0.2)


def test_krcc_is_kendalls_tau_b_with_ties():
    from clipalign_utils.metrics.iqa import alignment_scores

    # −distance = [1, 2, 3, 4], quality = [1, 1, 2, 3]: 5 concordant pairs, none discordant, one tie in quality;
    # tau-b = 5 / sqrt(6 · 5)
    scores = alignment_scores(np.array([-1.0, -2.0, -3.0, -4.0]), np.array([1.0, 1.0, 2.0, 3.0]))
    assert scores["krcc"] == pytest.approx(5 / np.sqrt(30))


# ---- stats: the guards of the resampling functions (an audit: each checked by hand or against the mutant it kills)
def test_bootstrap_ci_refuses_no_replicates_and_gives_nan_for_no_rows():
    # n_boot < 1 has no replicates to take quantiles of; zero rows have nothing to resample
    from clipalign_utils.metrics.stats import bootstrap_mean_ci

    with pytest.raises(ParameterError, match=r"^n_boot must be a positive integer; got 0\.$"):
        bootstrap_ci(3, lambda idx: 0.0, n_boot=0)
    assert np.isnan(bootstrap_ci(0, lambda idx: 0.0, n_boot=5)).all()
    with warnings.catch_warnings():  # nan without averaging empty resamples ("Mean of empty slice")
        warnings.simplefilter("error")
        assert np.isnan(bootstrap_mean_ci([], n_boot=5)).all()
    # one row: every resample is that row, no spread, so no interval (an audit read "[0.417, 0.417]" as one)
    assert np.isnan(bootstrap_ci(1, lambda idx: float(idx.sum()) + 5.0, n_boot=5)).all()
    assert np.isnan(bootstrap_mean_ci([7.0], n_boot=5)).all()
    # one replicate is legitimate
    assert bootstrap_mean_ci([7.0, 7.0], n_boot=1) == (7.0, 7.0)


def test_grouped_bootstrap_gives_nan_for_no_rows_and_refuses_2d_groups():
    # no group: nothing to draw; a 2-D groups array is not one id per row
    assert np.isnan(bootstrap_ci_grouped(np.array([]), lambda idx: 0.0, n_boot=3)).all()
    with pytest.raises(ParameterError, match=r"^groups must be one group id per row \(1-D\); got shape \(2, 2\)\.$"):
        bootstrap_ci_grouped(np.zeros((2, 2)), lambda idx: 0.0, n_boot=3)


def test_grouped_spearman_replicates_refuse_unequal_lengths_and_are_nan_without_a_finite_pair():
    # x, y and groups must describe the same rows; no finite pair leaves no correlation to resample
    from clipalign_utils.metrics.stats import spearman_replicates_grouped

    with pytest.raises(ParameterError, match=r"^x, y and groups must have the same length; got 3, 3 and 2\.$"):
        spearman_replicates_grouped([1, 2, 3], [1, 2, 3], [0, 1], n_boot=2)
    out = spearman_replicates_grouped([np.nan, 1.0, 2.0], [1.0, np.nan, np.inf], [0, 1, 2], n_boot=4)
    assert out.shape == (4,) and np.isnan(out).all()
    assert np.isnan(bootstrap_spearman_grouped([np.nan] * 3, [1, 2, 3], [0, 1, 2], n_boot=4)).all()
    # one non-finite pair among many: dropped, the rest resampled as the materialised grouped bootstrap does
    x, y, groups = np.array([np.nan, 1, 2, 3, 4, 5, 6]), np.array([1.0, 2, 1, 4, 3, 6, 5]), np.arange(7) // 2
    fast = bootstrap_spearman_grouped(x, y, groups, n_boot=40, seed=1)
    assert np.isfinite(fast).all()
    assert fast == pytest.approx(bootstrap_ci_grouped(groups, lambda idx: spearman(x[idx], y[idx]), n_boot=40, seed=1))


def test_finite_pairs_refuses_unequal_lengths_and_keeps_only_rows_finite_on_both_sides():
    from clipalign_utils.metrics.stats import finite_pairs

    with pytest.raises(ParameterError, match=r"^x and y must have the same length; got 2 and 3\.$"):
        finite_pairs([1, 2], [1, 2, 3])
    x, y = finite_pairs([1, np.nan, 3, 4], [5, 6, np.inf, 8])
    assert x.tolist() == [1.0, 4.0] and y.tolist() == [5.0, 8.0]


def test_permutation_spearman_refuses_no_permutation():
    # p = (count + 1) / (n_perm + 1) needs at least one permutation
    with pytest.raises(ParameterError, match=r"^n_perm must be a positive integer; got 0\.$"):
        permutation_spearman([1, 2, 3], [1, 2, 3], n_perm=0)
    # one permutation is legitimate; a perfect ranking of 3: p = (count + 1) / 2 with count 0 or 1
    rho, p = permutation_spearman([1, 2, 3], [1, 2, 3], n_perm=1)
    assert rho == pytest.approx(1.0) and p in (0.5, 1.0)


def test_partial_spearman_refuses_unequal_lengths_and_matches_the_formula_by_hand():
    from clipalign_utils.metrics.stats import partial_spearman

    with pytest.raises(ParameterError, match=r"^x, y and z must have the same length; got 4, 4 and 3\.$"):
        partial_spearman([1, 2, 3, 4], [1, 2, 3, 4], [1, 2, 3])
    x, y, z = [1, 2, 3, 4, 5, 6], [2, 1, 4, 3, 6, 5], [1, 3, 2, 5, 4, 6]
    rxy, rxz, ryz = (stats.spearmanr(a, b)[0] for a, b in ((x, y), (x, z), (y, z)))
    rho = (rxy - rxz * ryz) / np.sqrt((1 - rxz**2) * (1 - ryz**2))
    t = rho * np.sqrt(3 / (1 - rho**2))
    got = partial_spearman(x, y, z)
    assert got[0] == pytest.approx(rho) and got[1] == pytest.approx(2 * stats.t.sf(abs(t), 3)) and got[2] == 6


# ---- one run's trend claims: a paired bootstrap over the evaluation items (metrics.trend) ----------------------
def test_spearman_over_replicates_is_each_columns_own_spearman():
    from clipalign_utils.metrics.stats import spearman_over_replicates

    rng = np.random.default_rng(0)
    x = np.array([0.0, 1.0, 2.0, 4.0, 8.0])
    replicates = rng.normal(size=(5, 30)).round(1)  # ties within columns: average ranks, as spearman's
    replicates[:, 3] = 7.0  # a constant column: undefined
    replicates[2, 5] = np.nan  # a column with a missing value: undefined
    got = spearman_over_replicates(x, replicates)
    expected = [spearman(x, replicates[:, r]) if r not in (3, 5) else np.nan for r in range(30)]
    assert got == pytest.approx(expected, nan_ok=True)
    assert np.isnan(spearman_over_replicates(x[:2], replicates[:2])).all()  # two points: no ρ


def test_trend_test_by_hand_leaving_undefined_checkpoints_out_of_every_replicate():
    from clipalign_utils.metrics.trend import trend_test

    epochs = [0.0, 1.0, 2.0, 3.0, 4.0]
    values = [0.9, 0.5, np.nan, 0.3, 0.2]  # epoch 2 at chance: out of ρ and of every replicate's ρ
    replicates = np.array([[0.1, 0.1, 0.1, 0.1],  # epoch 0's resamples: read
                           [0.5, 0.2, 0.4, 0.5],
                           [9.0, 9.0, 9.0, 9.0],  # never read (with it every replicate would change)
                           [0.3, 0.3, 0.3, 0.4],
                           [0.2, 0.4, 0.2, np.nan]])
    test = trend_test(epochs, values, replicates)
    assert (test["spearman"], test["n_checkpoints"]) == (-1.0, 4)
    # the replicates' ρ over epochs 0, 1, 3, 4: [0.1, 0.5, 0.3, 0.2] ranks 1, 4, 3, 2: 1 − 6 · 8 / 60 = 0.2;
    # [0.1, 0.2, 0.3, 0.4] → 1; [0.1, 0.4, 0.3, 0.2] → 0.2; the last undefined (3 of 4 defined: an interval).
    # Percentiles of [0.2, 0.2, 1] (numpy's linear): positions 0.05 and 1.95 → 0.2 and 0.2 + 0.95 · 0.8 = 0.96
    assert (test["lo"], test["hi"]) == pytest.approx((0.2, 0.96))
    # ρ undefined (two checkpoints): no interval either
    short = trend_test([0.0, 1.0], [0.5, 0.4], np.ones((2, 3)))
    assert np.isnan([short["spearman"], short["lo"], short["hi"]]).all() and short["n_checkpoints"] == 2


def test_a_run_whose_measure_moves_by_eval_noise_alone_rarely_has_a_trend():
    """The trend's interval on a flat population curve: each of 6 checkpoints decides 200 cue-conflict images
    afresh with a population shape bias of exactly 0.5; its texture bias' ρ interval leaves 0 out in at most 10 %
    of 100 runs (it read 3.5 % of 200 when written), and on a curve that truly falls (shape 0.3 → 0.55 of the
    decisions) it finds the fall in most."""
    from clipalign_utils.metrics.shape_bias import shape_bias_replicates
    from clipalign_utils.metrics.trend import trend_test

    rng = np.random.default_rng(1)
    shape_label = np.arange(200) % 8
    texture_label = (shape_label + 1 + np.arange(200) % 7) % 8
    epochs = np.arange(6.0)

    def excludes_zero(shape_shares) -> tuple[bool, bool]:
        values, replicates = [], []
        for share in shape_shares:
            u = rng.random(200)
            predicted = np.where(u < share, shape_label, np.where(u < 0.8, texture_label, (shape_label + 3) % 8))
            shape, texture = (predicted == shape_label).sum(), (predicted == texture_label).sum()
            values.append(1 - shape / (shape + texture))
            replicates.append(1 - shape_bias_replicates(predicted, shape_label, texture_label, n_boot=200, seed=7))
        test = trend_test(epochs, values, np.stack(replicates))
        return test["hi"] < 0, test["lo"] > 0

    flat = [excludes_zero([0.4] * 6) for _ in range(100)]
    assert np.mean([fall or rise for fall, rise in flat]) <= 0.10
    falling = [excludes_zero(np.linspace(0.3, 0.55, 6))[0] for _ in range(30)]
    assert np.mean(falling) >= 0.8


def test_one_runs_trend_claim_rests_on_its_steps_paired_test():
    """texture bias falls: reproduced / not reproduced / inconclusive by the interval of the shape step's test
    (texture_bias_trend[_lo/_hi]), not by a permutation over the checkpoints; without the columns, the permutation
    as before, named; a run stacked with others that have the test, holding none of its own, likewise."""
    down = np.linspace(0.8, 0.5, 6)
    rows = _checkpoints(np.linspace(0.5, 0.4, 6), 1.0 - down, down)

    def claim(table) -> pd.Series:
        return verdicts(table, n_perm=N_PERM).set_index("claim").loc["texture bias falls during training"]

    wiggly = rows.assign(texture_bias_trend=-0.6, texture_bias_trend_lo=-0.9, texture_bias_trend_hi=-0.2)
    row = claim(wiggly)
    assert (row["verdict"], row["value"], row["ci_lo"], row["ci_hi"]) == ("reproduced", -0.6, -0.9, -0.2)
    assert np.isnan(row["p_value"])
    assert row["statistic"] == "spearman(epoch, texture_bias) (paired bootstrap over the evaluation items)"
    assert row["detail"] == ("texture_bias falls over this run: ρ = -0.60 over 6 checkpoints [-0.90, -0.20], the "
                             "evaluation items resampled alike at every checkpoint (training's own noise needs seeds)")
    assert claim(wiggly.assign(texture_bias_trend_lo=-0.9, texture_bias_trend_hi=0.1))["verdict"] == "inconclusive"
    rising = claim(wiggly.assign(texture_bias_trend=0.6, texture_bias_trend_lo=0.2, texture_bias_trend_hi=0.9))
    assert rising["verdict"] == "not reproduced" and rising["detail"].startswith("texture_bias rises over this run")
    no_interval = claim(wiggly.assign(texture_bias_trend_lo=np.nan, texture_bias_trend_hi=np.nan))
    assert no_interval["verdict"] == "inconclusive" and no_interval["detail"] == (
        "texture_bias: ρ = -0.60 over 6 checkpoints; no interval: the resampled items rarely define ρ")
    # ρ −1 over the rows: the permutation finds it (p = 1/(N_PERM + 1) < 0.05), saying it used one
    for without in (rows, wiggly.assign(texture_bias_trend=np.nan)):
        row = claim(without)
        assert row["verdict"] == "reproduced" and row["p_value"] < 0.05 and np.isnan(row["ci_lo"])
        assert "a permutation over the checkpoints: the run's tables hold no paired trend test" in row["detail"]


def test_a_group_of_one_run_is_judged_as_that_run_with_its_own_trend_test():
    """verdicts(by=...) of a one-seed group: the run's own verdicts (its paired trend test), not the seed-mean
    curve's permutation; a group of two seeds judges the trend over the seeds' own ρ."""
    down = np.linspace(0.8, 0.5, 6)
    one = _checkpoints(np.linspace(0.5, 0.4, 6), 1.0 - down, down).assign(
        texture_bias_trend=0.3, texture_bias_trend_lo=-0.2, texture_bias_trend_hi=0.7, scale="S", seed=0)
    grouped = verdicts(one, n_perm=N_PERM, by="scale").set_index("claim")
    alone = verdicts(one.drop(columns=["scale", "seed"]), n_perm=N_PERM).set_index("claim")
    texture = "texture bias falls during training"
    assert grouped.loc[texture, "verdict"] == "inconclusive" == alone.loc[texture, "verdict"]  # not the ρ = −1
    assert grouped.loc[texture, "detail"] == alone.loc[texture, "detail"]
    assert grouped.loc[texture, "seed_verdicts"] == "0: inconclusive"
    two = pd.concat([one, one.assign(seed=1)], ignore_index=True)
    assert verdicts(two, n_perm=N_PERM, by="scale").set_index("claim").loc[texture, "statistic"].startswith(
        "spearman(epoch, texture_bias) per seed")
