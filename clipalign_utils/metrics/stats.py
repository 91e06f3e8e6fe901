"""Resampling statistics shared by every metric: percentile bootstrap CIs and a permutation test.

Statistics are passed as callables over *row indices*, so one bootstrap serves any metric
(a correlation over pairs, a ratio over images, a mean over decisions).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from scipy import stats

from clipalign_utils.errors import ParameterError

Statistic = Callable[[np.ndarray], float]


# Values this close to the maximum are a tie for it: the same share computed in another order (4/9 as
# 0.4444444444444444 and 0.4444444444444445) is one value, and a tie goes to the earliest checkpoint.
TIE_ATOL = 1e-12


def first_max(values) -> int:
    """The index of the first value within ``TIE_ATOL`` of the maximum (nan values ignored): ``np.argmax``,
    but a tie to within floating-point rounding goes to the earliest. -1 when no value is finite."""
    values = np.asarray(values, dtype=float).ravel()
    finite = np.isfinite(values)
    if not finite.any():
        return -1
    return int(np.flatnonzero(finite & (values >= values[finite].max() - TIE_ATOL))[0])


def _check_resampling(n_boot: int, level: float) -> None:
    if int(n_boot) < 1:
        raise ParameterError(f"n_boot must be a positive integer; got {n_boot!r}.")
    if not 0.0 < float(level) < 1.0:
        raise ParameterError(f"level must lie strictly between 0 and 1; got {level!r}.")


def percentile_interval(replicates: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """(lo, hi) = the (1 − level)/2 and (1 + level)/2 quantiles of the finite replicates.

    Returns (nan, nan) when fewer than half of the replicates are finite: the statistic is
    then undefined too often for its spread to mean anything.
    """
    replicates = np.asarray(replicates, dtype=float)
    finite = replicates[np.isfinite(replicates)]
    if finite.size == 0 or finite.size < replicates.size / 2:
        return float("nan"), float("nan")
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(finite, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def basic_interval(estimate: float, replicates: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """The basic bootstrap interval of ``estimate``: ``(2·estimate − q_hi, 2·estimate − q_lo)``, q the percentile
    interval of the ``replicates`` (:func:`percentile_interval`, and its guard). For a statistic that takes a
    maximum (the early peak, the best block): the maximum over noisy values is biased upward and the replicates'
    maxima are again, so their percentiles sit higher still; reflected about the estimate, that bias comes out."""
    q_lo, q_hi = percentile_interval(replicates, level)
    return 2 * estimate - q_hi, 2 * estimate - q_lo


def bootstrap_ci(
    n_rows: int,
    statistic: Statistic,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap CI of ``statistic(row_indices)``, resampling the n_rows rows with replacement;
    (nan, nan) with fewer than two rows."""
    _check_resampling(n_boot, level)
    n_rows = int(n_rows)
    if n_rows < 2:  # a resample of one row is that row: no spread, no interval
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    replicates = np.array([statistic(rng.integers(0, n_rows, size=n_rows)) for _ in range(int(n_boot))], dtype=float)
    return percentile_interval(replicates, level)


def resampled_rows(n_rows: int, n_boot: int, seed: int = 0, max_cells: int = 1 << 22):
    """The row indices of :func:`bootstrap_ci`'s replicates, as blocks of whole replicates (``(k, n_rows)``
    arrays, at most about ``max_cells`` indices each): the same draws, in the same order, as its loop."""
    rng = np.random.default_rng(seed)
    per_block = max(1, max_cells // max(int(n_rows), 1))
    for start in range(0, int(n_boot), per_block):
        yield rng.integers(0, n_rows, size=(min(per_block, int(n_boot) - start), n_rows))


def bootstrap_blocked_ci(n_rows: int, statistic: Callable[[np.ndarray], np.ndarray], n_boot: int = 1000,
                         seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """:func:`bootstrap_ci` with ``statistic`` taking a block of replicates' row indices (``(k, n_rows)``)
    and returning their k values: the same draws and interval, without a Python call per replicate."""
    _check_resampling(n_boot, level)
    n_rows = int(n_rows)
    if n_rows < 2:  # (as bootstrap_ci's)
        return float("nan"), float("nan")
    replicates = np.concatenate([statistic(rows) for rows in resampled_rows(n_rows, n_boot, seed)])
    return percentile_interval(replicates.astype(float), level)


def bootstrap_mean_ci(values, n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """``bootstrap_ci(len(values), lambda idx: values[idx].mean(), ...)``, bit for bit, a block at a time."""
    values = np.asarray(values)
    return bootstrap_blocked_ci(values.size, lambda rows: values[rows].mean(axis=1), n_boot, seed, level)


def bootstrap_ci_grouped(
    groups: np.ndarray,
    statistic: Statistic,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap CI of ``statistic(row_indices)``, resampling whole groups with replacement.

    ``groups`` holds one group id per row (e.g. the reference image of each distorted image).
    A replicate draws as many groups as there are, with replacement, and passes the rows of
    every drawn group (repeated as often as the group was drawn) to ``statistic``. Rows of one
    group are not independent, so resampling rows would understate the uncertainty. (nan, nan) with fewer
    than two groups.
    """
    _check_resampling(n_boot, level)
    group_of_row, draws = _draw_groups(groups, n_boot, seed)
    if draws.shape[1] < 2:  # a resample of one group is that group: no spread, no interval
        return float("nan"), float("nan")
    order = np.argsort(group_of_row, kind="stable")
    starts = np.searchsorted(group_of_row[order], np.arange(draws.shape[1] + 1))
    rows_of_group = [order[starts[g] : starts[g + 1]] for g in range(draws.shape[1])]
    replicates = np.array(
        [statistic(np.concatenate([rows_of_group[g] for g in drawn])) for drawn in draws],
        dtype=float,
    )
    return percentile_interval(replicates, level)


def crossed_weights(row_groups, column_groups, n_boot: int = 1000, seed: int = 0, max_cells: int = 1 << 22):
    """The replicates of a pigeonhole bootstrap (Owen 2007, Ann. Appl. Stat. 1(2)) over items in a crossed design,
    each item one row group's and one column group's (a Geirhos cue-conflict image: one shape source's object in
    one texture source's style), as blocks of ``(k, n_items)`` weights.

    A replicate draws the row groups with replacement and, independently, the column groups; an item counts as
    often as its row group was drawn times as often as its column group was. A statistic over weighted items
    (a weighted sum per replicate) then varies as much as both kinds of sharing make it: resampling items alone
    treats the images that share a texture source as independent draws and gives too narrow an interval."""
    _, row_of = np.unique(np.asarray(row_groups), return_inverse=True)
    _, column_of = np.unique(np.asarray(column_groups), return_inverse=True)
    if row_of.size != column_of.size:
        raise ParameterError(f"row_groups and column_groups must give one group per item; got {row_of.size} "
                             f"and {column_of.size}.")
    n_rows, n_columns = int(row_of.max(initial=-1)) + 1, int(column_of.max(initial=-1)) + 1
    rng = np.random.default_rng(seed)
    per_block = max(1, max_cells // max(row_of.size, 1))
    for start in range(0, int(n_boot), per_block):
        k = min(per_block, int(n_boot) - start)
        weights = np.ones((k, row_of.size))
        for of, n in ((row_of, n_rows), (column_of, n_columns)):
            weights *= times_drawn(rng.integers(0, max(n, 1), size=(k, n)), n)[:, of]
        yield weights


def times_drawn(drawn: np.ndarray, n_groups: int) -> np.ndarray:
    """``(k, n_groups)``: how often each replicate (a row of ``drawn``, the group indices it drew) drew each group."""
    k = drawn.shape[0]
    flat = (drawn + n_groups * np.arange(k)[:, None]).ravel()  # replicate r's groups at r·n_groups onwards
    return np.bincount(flat, minlength=k * n_groups).reshape(k, n_groups)


def shares_groups(groups) -> bool:
    """Whether two rows share a group id: a bootstrap then resamples groups, not rows."""
    groups = np.asarray(groups).tolist()
    return len(set(groups)) < len(groups)


def _draw_groups(groups: np.ndarray, n_boot: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(group index of each row, (n_boot, n_groups) drawn group indices), the draws of a grouped bootstrap."""
    groups = np.asarray(groups)
    if groups.ndim != 1:
        raise ParameterError(f"groups must be one group id per row (1-D); got shape {groups.shape}.")
    _, group_of_row = np.unique(groups, return_inverse=True)
    n_groups = int(group_of_row.max()) + 1 if groups.size else 0
    rng = np.random.default_rng(seed)
    return group_of_row, rng.integers(0, max(n_groups, 1), size=(int(n_boot), n_groups))


def _resample_midranks(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Average rank of each row's value within resamples that hold row i counts[b, i] times.

    Rank of value v = (number of resampled values below v) + (number equal to v + 1) / 2,
    which is what ranking the materialised resample (ties averaged) gives every copy of v.
    """
    _, level = np.unique(values, return_inverse=True)
    order = np.argsort(level, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(level[order]) != 0])
    per_level = np.add.reduceat(counts[:, order], starts, axis=1)
    midrank = np.cumsum(per_level, axis=1) - per_level + (per_level + 1) / 2.0
    return midrank[:, level]


def _weighted_pearson(a: np.ndarray, b: np.ndarray, weights: np.ndarray) -> np.ndarray:
    total = weights.sum(axis=1, keepdims=True)
    da = a - (weights * a).sum(axis=1, keepdims=True) / total
    db = b - (weights * b).sum(axis=1, keepdims=True) / total
    var_a, var_b = (weights * da * da).sum(axis=1), (weights * db * db).sum(axis=1)
    undefined = (total[:, 0] < 3) | (var_a == 0) | (var_b == 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(undefined, np.nan, (weights * da * db).sum(axis=1) / np.sqrt(var_a * var_b))


def bootstrap_spearman_grouped(
    x: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float]:
    """Same interval as ``bootstrap_ci_grouped(groups, lambda idx: spearman(x[idx], y[idx]), ...)``.

    The replicates are identical (same draws for the same seed) but computed from how often each row is
    drawn instead of materialising and re-sorting every resample: Spearman of a resample is the Pearson
    correlation of its average ranks, weighted by those counts. Orders of magnitude faster on IQA-sized data.
    """
    _check_resampling(n_boot, level)
    return percentile_interval(spearman_replicates_grouped(x, y, groups, n_boot, seed), level)


def spearman_replicates_grouped(x: np.ndarray, y: np.ndarray, groups: np.ndarray, n_boot: int = 1000,
                                seed: int = 0) -> np.ndarray:
    """The n_boot grouped-bootstrap replicates of spearman(x, y) behind ``bootstrap_spearman_grouped``.

    The draws depend only on (groups, n_boot, seed): two calls with the same groups resample the same
    groups in every replicate, which makes differences of their replicates a *paired* bootstrap. All nan when
    the finite pairs hold fewer than two groups.
    """
    x = np.asarray(x, dtype=float).ravel()
    y = np.asarray(y, dtype=float).ravel()
    group_of_row, draws = _draw_groups(groups, n_boot, seed)
    if not x.size == y.size == group_of_row.size:
        raise ParameterError(f"x, y and groups must have the same length; got {x.size}, {y.size} and {group_of_row.size}.")
    finite = np.isfinite(x) & np.isfinite(y)
    # a resample of one group is that group: its replicates would all be the statistic, an interval of no width
    if np.unique(group_of_row[finite]).size < 2:
        return np.full(int(n_boot), np.nan)
    x, y, group_of_row = x[finite], y[finite], group_of_row[finite]
    n_groups = draws.shape[1]
    replicates = []
    chunk = max(1, 2**20 // x.size)  # bounds each (replicates × rows) array at about 8 MB
    for start in range(0, draws.shape[0], chunk):
        block = draws[start : start + chunk]
        group_counts = np.zeros((block.shape[0], n_groups))
        np.add.at(group_counts, (np.arange(block.shape[0])[:, None], block), 1.0)
        counts = group_counts[:, group_of_row]
        replicates.append(_weighted_pearson(_resample_midranks(x, counts), _resample_midranks(y, counts), counts))
    return np.concatenate(replicates)


def finite_pairs(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The pairs (x_i, y_i) where both are finite, as two flat float arrays."""
    x = np.asarray(x, dtype=float).ravel()
    y = np.asarray(y, dtype=float).ravel()
    if x.shape != y.shape:
        raise ParameterError(f"x and y must have the same length; got {x.size} and {y.size}.")
    keep = np.isfinite(x) & np.isfinite(y)
    return x[keep], y[keep]


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman rank correlation over the finite pairs; nan when n < 3 or either side is constant."""
    x, y = finite_pairs(x, y)
    if x.size < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(stats.spearmanr(x, y)[0])


def spearman_over_replicates(x: np.ndarray, replicates: np.ndarray) -> np.ndarray:
    """Spearman(x, column r of ``replicates``) for every column r (``replicates``: one row per x value), each as
    :func:`spearman` would give it: nan for a column with a non-finite value, a constant column, or fewer than
    3 rows. ``x`` must be finite."""
    x = np.asarray(x, dtype=float).ravel()
    replicates = np.asarray(replicates, dtype=float).reshape(x.size, -1)
    out = np.full(replicates.shape[1], np.nan)
    if x.size < 3 or np.ptp(x) == 0:
        return out
    defined = np.isfinite(replicates).all(axis=0) & (np.ptp(np.nan_to_num(replicates), axis=0) > 0)
    rx = stats.rankdata(x) - (x.size + 1) / 2.0
    ranks = stats.rankdata(replicates[:, defined], axis=0) - (x.size + 1) / 2.0
    out[defined] = (rx @ ranks) / np.sqrt((rx @ rx) * (ranks * ranks).sum(axis=0))
    return out


def permutation_spearman(
    x: np.ndarray, y: np.ndarray, n_perm: int = 10000, seed: int = 0
) -> tuple[float, float]:
    """Spearman rho and its two-sided permutation p-value.

    p = (#{perm: |rho_perm| ≥ |rho|} + 1) / (n_perm + 1), permuting y against x.
    Non-finite pairs are dropped; (nan, nan) when rho is undefined (n < 3 or a constant side).
    """
    if int(n_perm) < 1:
        raise ParameterError(f"n_perm must be a positive integer; got {n_perm!r}.")
    rho = spearman(x, y)
    if not np.isfinite(rho):
        return float("nan"), float("nan")
    x, y = finite_pairs(x, y)
    # Spearman is Pearson on (average) ranks, so ranking once lets all permutations run as one product.
    rx = stats.rankdata(x) - (x.size + 1) / 2.0
    ry = stats.rankdata(y) - (y.size + 1) / 2.0
    norm = np.sqrt((rx @ rx) * (ry @ ry))
    rng = np.random.default_rng(seed)
    chunk = max(1, 2**20 // x.size)  # bounds memory at about 8 MB of permuted ranks
    count = 0
    for start in range(0, int(n_perm), chunk):
        rows = min(chunk, int(n_perm) - start)
        rho_perm = rng.permuted(np.tile(ry, (rows, 1)), axis=1) @ rx / norm
        # A small tolerance keeps permutations that tie the observed |rho| from being lost to rounding.
        count += int(np.sum(np.abs(rho_perm) >= abs(rho) - 1e-12))
    return rho, (count + 1) / (int(n_perm) + 1)


def partial_spearman(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> tuple[float, float, int]:
    """(rho, p, n): Spearman correlation of x and y net of z (the partial correlation of their ranks),

        rho = (r_xy − r_xz r_yz) / sqrt((1 − r_xz²)(1 − r_yz²)),  r = Spearman's rho,

    over the rows where all three are finite, with the usual two-sided t-test on n − 3 degrees of
    freedom, t = rho sqrt((n − 3) / (1 − rho²)). The test assumes independent rows: for checkpoints of
    one run (a time series) read p as descriptive. nan when n < 4 or a correlation is undefined.
    """
    x, y, z = _complete_rows(x, y, z)
    n = int(x.size)
    r_xy, r_xz, r_yz = spearman(x, y), spearman(x, z), spearman(y, z)
    if _why_undefined(x, y, z, r_xz, r_yz) is not None:
        return float("nan"), float("nan"), n
    rho = float((r_xy - r_xz * r_yz) / np.sqrt((1 - r_xz**2) * (1 - r_yz**2)))
    if abs(rho) >= 1:
        return rho, 0.0, n
    t = rho * np.sqrt((n - 3) / (1 - rho**2))
    return rho, float(2 * stats.t.sf(abs(t), n - 3)), n


def partial_spearman_undefined(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> tuple[str, int | None, float] | None:
    """Why :func:`partial_spearman` of x and y net of z is nan (None where it is defined), the first condition that
    holds: ("few", None, nan) under 4 rows where all three are finite; ("constant", i, nan) where input i (0 x,
    1 y, 2 z) takes one value; ("ordered", i, r) where x (0) or y (1) has Spearman r = ±1 with z."""
    x, y, z = _complete_rows(x, y, z)
    return _why_undefined(x, y, z, spearman(x, z), spearman(y, z))


def _complete_rows(x, y, z) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x, y and z as float arrays of equal length, over the rows where all three are finite."""
    x, y, z = (np.asarray(a, dtype=float).ravel() for a in (x, y, z))
    if not x.size == y.size == z.size:
        raise ParameterError(f"x, y and z must have the same length; got {x.size}, {y.size} and {z.size}.")
    keep = np.isfinite(x) & np.isfinite(y) & np.isfinite(z)
    return x[keep], y[keep], z[keep]


def _why_undefined(x, y, z, r_xz: float, r_yz: float) -> tuple[str, int | None, float] | None:
    if x.size < 4:
        return "few", None, float("nan")
    for which, values in enumerate((x, y, z)):
        if np.ptp(values) == 0:  # its correlations are undefined
            return "constant", which, float("nan")
    # |r| = 1 up to rounding (a rank correlation of a perfectly ordered series can come out 0.9999999999999998):
    # nothing is left once z is taken out, and the formula would divide rounding error by rounding error.
    for which, r in enumerate((r_xz, r_yz)):
        if abs(r) >= 1 - 1e-9:
            return "ordered", which, r
    return None
