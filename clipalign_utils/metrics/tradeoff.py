"""Synthesis across checkpoints: does the paper's trade-off (arXiv 2508.09814) show in one training run?

Input is one row per checkpoint with columns epoch, iqa_srcc, iqa_srcc_lo, iqa_srcc_hi, shape_bias,
clean_accuracy and noise_drop (the mean normalized drop over noisy sigmas); optional: at_chance (the
checkpoint's clean zero-shot accuracy is not above chance: left out of every trend of a noise measure),
shape_at_chance (its cue-conflict decisions are not: left out of every trend of shape or texture bias;
without it, at_chance), chance_corrected_drop, and iqa_early_drop with iqa_early_drop_lo/_hi (the IQA step's paired
early-peak test, one value per run repeated on its rows); two_afc_score with two_afc_score_lo/_hi (the
similarity step's overall 2AFC score) and saliency_sauc with saliency_sauc_lo/_hi (the saliency step's shuffled AUC),
each with its step's paired test (two_afc_early_drop…, saliency_early_drop…), judged by ``peak_claim``
when present. More columns are ignored.
texture_bias = 1 − shape_bias and robustness = 1 − noise_drop are derived here.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from clipalign_utils import registry
from clipalign_utils.errors import ParameterError
from clipalign_utils.metrics.iqa import peak_summary
from clipalign_utils.metrics.peak import EARLY_FRACTION, early_window, held_out_drops
from clipalign_utils.metrics.stats import (first_max, partial_spearman, partial_spearman_undefined,
                                           permutation_spearman, spearman)
from clipalign_utils.prose import counted, fixed, plural, significant

REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE = "reproduced", "not reproduced", "inconclusive"


def _require(df: pd.DataFrame, columns: list[str]) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ParameterError(f"df lacks the {plural(len(missing), 'column')} {missing}; it has {list(df.columns)}.")


def _with_texture_bias(df: pd.DataFrame) -> pd.DataFrame:
    return df.assign(texture_bias=1.0 - df["shape_bias"].astype(float))


CLASSIFICATION_MEASURES = ("shape_bias", "texture_bias", "noise_drop", "chance_corrected_drop")
# Each classification measure is read where its own step's classifier is above chance: the shape step
# judges its cue-conflict decisions, the noise step its clean accuracy (on real datasets, two tasks).
CHANCE_FLAGS = {"shape_bias": "shape_at_chance", "texture_bias": "shape_at_chance",
                "noise_drop": "at_chance", "chance_corrected_drop": "at_chance"}


def _flagged(flags: pd.Series) -> pd.Series:
    """A flag column as booleans, a row without the judgement (nan) False."""
    return flags.astype(object).where(flags.notna(), False).astype(bool)


def at_chance(df: pd.DataFrame, measure: str = "noise_drop") -> pd.Series:
    """Which rows' ``measure`` comes from a classifier at chance (:data:`CHANCE_FLAGS`; none for a measure
    that is not a classification's, or when ``df`` lacks the flag). Rows written before the shape step
    judged its own decisions (no ``shape_at_chance``) read the noise step's ``at_chance`` for the shape
    measures, as they always did: in the embedded world both steps ask one classifier."""
    own = CHANCE_FLAGS.get(measure)
    flags = df[own] if own in df.columns else pd.Series(np.nan, index=df.index, dtype=object)
    if own is not None and own != "at_chance" and "at_chance" in df.columns:
        flags = flags.astype(object).where(flags.notna(), df["at_chance"])
    return _flagged(flags)


def above_chance(df: pd.DataFrame, *measures: str) -> pd.DataFrame:
    """The rows where each of ``measures`` (default: the noise drop) comes from a classifier above chance: a
    classification measure of an at-chance checkpoint (texture bias, noise drop) describes noise, so every
    trend of one leaves those rows out alike."""
    keep = pd.Series(True, index=df.index)
    for measure in measures or ("noise_drop",):
        keep &= ~at_chance(df, measure)
    return df[keep]


def measured_rows(df: pd.DataFrame, column: str) -> pd.DataFrame:
    """The rows a trend of ``column`` reads: those above chance for a classification measure (:func:`above_chance`),
    every row for another."""
    return above_chance(df, column) if column in CLASSIFICATION_MEASURES else df


def time_covariate(epochs) -> np.ndarray:
    """log(epoch + e1), e1 = the first non-zero checkpoint epoch: training time on the log scale the
    checkpoints are spaced on, defined at epoch 0."""
    epochs = np.asarray(epochs, dtype=float)
    positive = epochs[np.isfinite(epochs) & (epochs > 0)]
    first = positive.min() if positive.size else 1.0
    return np.log(epochs + first)


def net_of_time(epochs, x, y) -> dict:
    """How x and y move together beyond their common dependence on training time.

    partial_spearman / partial_p / n: Spearman of x and y given ``time_covariate(epoch)``
    (``stats.partial_spearman``; p descriptive: checkpoints are a time series);
    diff_spearman / diff_n: Spearman of their first differences between consecutive checkpoints
    (sorted by epoch): do they step up and down together? Two monotone trends alone give neither.
    """
    order = np.argsort(np.asarray(epochs, dtype=float), kind="stable")
    epochs, x, y = (np.asarray(a, dtype=float)[order] for a in (epochs, x, y))
    rho, p_value, n = partial_spearman(x, y, time_covariate(epochs))
    keep = np.isfinite(x) & np.isfinite(y)
    dx, dy = np.diff(x[keep]), np.diff(y[keep])
    return {"partial_spearman": rho, "partial_p": p_value, "n": n,
            "diff_spearman": spearman(dx, dy), "diff_n": int(dx.size)}


def rises_then_falls(epochs, values, lo, hi) -> dict:
    """Whether a curve peaks inside the run and ends clearly below its peak.

    Keys: peak_epoch, peak_value, final_epoch, final_value, peak_is_interior,
    ci_gap = lo[peak] − hi[final], ci_separated = ci_gap > 0, verdict = interior and separated.
    Rows are sorted by epoch; rows with a nan value are dropped.
    """
    arrays = [np.asarray(a, dtype=float).ravel() for a in (epochs, values, lo, hi)]
    if len({a.size for a in arrays}) != 1:
        raise ParameterError(f"epochs, values, lo and hi must have the same length; got {[a.size for a in arrays]}.")
    keep = np.isfinite(arrays[0]) & np.isfinite(arrays[1])
    order = np.argsort(arrays[0][keep], kind="stable")
    epochs, values, lo, hi = (a[keep][order] for a in arrays)
    summary = peak_summary(epochs, values)
    ci_gap = float(lo[first_max(values)] - hi[-1]) if values.size else float("nan")
    ci_separated = bool(ci_gap > 0)
    return {
        "peak_epoch": summary["peak_epoch"],
        "peak_value": summary["peak_value"],
        "final_epoch": summary["final_epoch"],
        "final_value": summary["final_value"],
        "peak_is_interior": summary["peak_is_interior"],
        "ci_gap": ci_gap,
        "ci_separated": ci_separated,
        "verdict": bool(summary["peak_is_interior"] and ci_separated),
    }


def monotone_trend(epochs, values, n_perm: int = 10000, seed: int = 0, alpha: float = 0.05) -> dict:
    """rho = spearman(epoch, value) with its permutation p; direction 'rises'/'falls' if p < alpha, else 'flat'."""
    rho, p_value = permutation_spearman(epochs, values, n_perm=n_perm, seed=seed)
    direction = "flat"
    if p_value < alpha:
        direction = "rises" if rho > 0 else "falls"
    return {"rho": rho, "p_value": p_value, "direction": direction}


RELATIONS = [("iqa_srcc", "texture_bias"), ("iqa_srcc", "noise_drop"), ("texture_bias", "noise_drop")]


RELATION_COLUMNS = ["x", "y", "spearman", "p_value", "n", "partial_spearman", "partial_p", "diff_spearman"]


def pairwise_relations(df: pd.DataFrame, n_perm: int = 10000, seed: int = 0, by: str | None = None) -> pd.DataFrame:
    """For each pair in RELATIONS, over the checkpoints above chance: the plain Spearman across
    checkpoints with its permutation p (spearman, p_value, n finite pairs) and the same relation net of
    time (``net_of_time``: partial_spearman, partial_p, diff_spearman).

    ``by`` a column (``scale``): the relations of each group's per-epoch seed means (:func:`seed_means`),
    that column first; one run is a group of one."""
    if by is not None:
        tables = [pairwise_relations(curve, n_perm=n_perm, seed=seed).assign(**{by: key})
                  for key, curve in seed_means(df, by=(by, "epoch")).groupby(by, sort=False)]
        table = pd.concat(tables, ignore_index=True)
        return table[[by] + [c for c in table.columns if c != by]]
    _require(df, ["epoch", "iqa_srcc", "shape_bias", "noise_drop"])
    checkpoints = _with_texture_bias(df)
    rows = []
    for x, y in RELATIONS:
        df = above_chance(checkpoints, x, y)  # each measure above its own classifier's chance
        xs, ys = df[x].to_numpy(dtype=float), df[y].to_numpy(dtype=float)
        rho, p_value = permutation_spearman(xs, ys, n_perm=n_perm, seed=seed)
        n = int(np.sum(np.isfinite(xs) & np.isfinite(ys)))
        net = net_of_time(df["epoch"], xs, ys)
        rows.append({"x": x, "y": y, "spearman": rho, "p_value": p_value, "n": n,
                     "partial_spearman": net["partial_spearman"], "partial_p": net["partial_p"],
                     "diff_spearman": net["diff_spearman"]})
    return pd.DataFrame(rows, columns=RELATION_COLUMNS)


def pareto_front(alignment, robustness) -> np.ndarray:
    """Mask of the points no other point dominates when maximising both alignment and robustness.

    j dominates i when it is at least as good on both and strictly better on one, so identical points
    are all on the front. Rows with a nan are never on the front and dominate nothing.
    """
    a = np.asarray(alignment, dtype=float).ravel()
    r = np.asarray(robustness, dtype=float).ravel()
    if a.shape != r.shape:
        raise ParameterError(f"alignment and robustness must have the same length; got {a.size} and {r.size}.")
    finite = np.isfinite(a) & np.isfinite(r)
    a_j, r_j = a[None, :], r[None, :]
    a_i, r_i = a[:, None], r[:, None]
    dominated_by = (a_j >= a_i) & (r_j >= r_i) & ((a_j > a_i) | (r_j > r_i)) & finite[None, :]
    return finite & ~dominated_by.any(axis=1)


def _min_max(values: pd.Series) -> pd.Series:
    span = values.max() - values.min()
    return (values - values.min()) / span if span > 0 else values * 0.0


def select_checkpoint(df: pd.DataFrame, alignment_weight: float = 0.5):
    """Index label of the checkpoint maximising w·z(iqa_srcc) + (1 − w)·z(1 − noise_drop).

    z is min-max scaling over the checkpoints (0 for a constant column); rows with a nan are skipped;
    ties go to the first row.
    """
    if not 0.0 <= float(alignment_weight) <= 1.0:
        raise ParameterError(f"alignment_weight must lie in [0, 1]; got {alignment_weight!r}.")
    _require(df, ["iqa_srcc", "noise_drop"])
    usable = df[["iqa_srcc", "noise_drop"]].astype(float).dropna()
    if usable.empty:
        raise ParameterError("df has no checkpoint with both iqa_srcc and noise_drop finite.")
    score = alignment_weight * _min_max(usable["iqa_srcc"]) + (1 - alignment_weight) * _min_max(1 - usable["noise_drop"])
    return score.idxmax()


VERDICT_COLUMNS = ["claim", "statistic", "value", "ci_lo", "ci_hi", "p_value", "verdict", "detail"]
NAN = float("nan")


def _verdict_row(claim: str, statistic: str, value: float, p_value: float, verdict: str, detail: str,
                 ci: tuple[float, float] = (NAN, NAN)) -> dict:
    return {"claim": claim, "statistic": statistic, "value": value, "ci_lo": ci[0], "ci_hi": ci[1],
            "p_value": p_value, "verdict": verdict, "detail": detail}


def peak_claim(df: pd.DataFrame, peak: registry.PeakClaim, column: str, step: str) -> dict:
    """A "peaks early then declines" claim (``peak``, a step's :class:`~clipalign_utils.registry.PeakClaim`)
    on ``column`` (with ``column``_lo/_hi per checkpoint), judged on the paired early-peak test the step
    wrote (``<prefix>_early_drop[_lo/_hi]``: max early − final, resampling ``peak.items``; ``metrics.peak``). Reproduced = the curve's maximum lies in the early window (0 < epoch ≤
    EARLY_FRACTION of the run) and the interval lies above 0; not reproduced = the interval lies below 0 (the
    final checkpoint scores higher than any early one); otherwise inconclusive (also without the test). A peak
    at the last checkpoint is said in the detail, not taken for a verdict: on a seed-mean curve it can lead by
    far less than its interval (an audit found 0.0015 against ±0.07 judged "not reproduced"). On a seed-mean
    curve (``seed_means``) the column holds each seed's drop at the early checkpoint the other seeds' mean peaks
    at (``peak.held_out_drops``: a seed's own maximum leans up with its noise) and the interval is the t
    interval over the seeds."""
    claim, label, items = peak.claim, peak.label, peak.items
    n_checkpoints = int(np.sum(np.isfinite(df["epoch"].to_numpy(float)) & np.isfinite(df[column].to_numpy(float))))
    if n_checkpoints < 3:
        return _verdict_row(claim, f"checkpoints with a finite {label}", n_checkpoints, NAN,
                            INCONCLUSIVE, "a peak inside the run needs at least 3 checkpoints")
    curve = rises_then_falls(df["epoch"], df[column], df[f"{column}_lo"], df[f"{column}_hi"])
    early_end = EARLY_FRACTION * curve["final_epoch"]
    peak_is_early = bool(early_window([curve["peak_epoch"], curve["final_epoch"]])[0])
    detail = (f"peak {curve['peak_value']:.3f} at epoch {curve['peak_epoch']:g} "
              f"({'inside' if peak_is_early else 'outside'} the early window 0 < epoch ≤ {significant(early_end)}), "
              f"final {curve['final_value']:.3f} at epoch {curve['final_epoch']:g}")
    drop_column = f"{peak.prefix}_early_drop"
    if drop_column not in df.columns or not np.isfinite(df[drop_column].astype(float)).any():
        return _verdict_row(claim, "paired early-peak test", NAN, NAN, INCONCLUSIVE,
                            detail + f"; no paired early-peak test ({drop_column}: re-run the {step} step)")
    # On a seed-mean curve an epoch some seeds lack averages fewer of them: read the row that rests on the most.
    tested_rows = np.flatnonzero(np.isfinite(df[drop_column].astype(float)))
    if f"{drop_column}_n_seeds" in df.columns:
        counts = df[f"{drop_column}_n_seeds"].to_numpy(float)[tested_rows]
        if np.isfinite(counts).any():
            tested_rows = tested_rows[counts == np.nanmax(counts)]
    first = df.iloc[int(tested_rows[0])]
    drop, ci = float(first[drop_column]), (float(first[f"{drop_column}_lo"]), float(first[f"{drop_column}_hi"]))
    # On a seed-mean curve (seed_means) the drop is each seed's at the early checkpoint the other seeds peak at
    # (peak.held_out_drops) and the interval is over the seeds; one run's is its bootstrap of its own maximum.
    n_seeds = int(first["n_seeds"]) if "n_seeds" in df.columns and np.isfinite(float(first["n_seeds"])) else 1
    tested = first.get(f"{drop_column}_n_seeds", n_seeds)  # the seeds whose drop is defined
    n_tested = int(tested) if pd.notna(tested) else n_seeds
    early = "max early" if n_seeds <= 1 else "held-out early"
    over = (f"paired bootstrap over {items}" if n_seeds <= 1 else
            f"each seed at the early checkpoint where the other seeds' mean peaks; {_over_seeds(n_tested, n_seeds)}")
    statistic = f"{early} {label} − final {label} ({over})"
    if not (np.isfinite(ci[0]) and np.isfinite(ci[1])):
        # over seeds, a t interval needs the test on two seeds or more; one run's bootstrap has none when too few
        # of its replicates define the drop, or it drew fewer than two items (metrics.peak: no spread)
        why = (f"the test is on fewer than two of the {n_seeds} seeds" if n_seeds > 1 else
               "too few bootstrap replicates define the drop")
        return _verdict_row(claim, statistic, drop, NAN, INCONCLUSIVE,
                            f"{detail}; {early} − final = {fixed(drop)}; no interval: {why}", ci)
    detail += f"; {early} − final = {fixed(drop)} [{fixed(ci[0])}, {fixed(ci[1])}]"
    if peak_is_early and ci[0] > 0:
        return _verdict_row(claim, statistic, drop, NAN, REPRODUCED, detail + ": the interval is above 0", ci)
    if curve["peak_epoch"] == curve["final_epoch"]:
        detail += "; the peak is the last checkpoint"
    if ci[1] < 0:
        return _verdict_row(claim, statistic, drop, NAN, NOT_REPRODUCED,
                            detail + ": the final checkpoint scores higher than any early one", ci)
    reason = "the interval includes 0" if peak_is_early or ci[0] <= 0 else "the overall peak is not early"
    return _verdict_row(claim, statistic, drop, NAN, INCONCLUSIVE, f"{detail}; {reason}", ci)


def trend_claim(df: pd.DataFrame, trend_of: registry.TrendClaim, n_perm: int, seed: int, alpha: float) -> dict:
    """A claim that a column falls (or rises) over one run's training (``trend_of``, a step's
    :class:`~clipalign_utils.registry.TrendClaim`), judged on the paired trend test its step wrote
    (``<column>_trend[_lo/_hi]``, ``metrics.trend``: Spearman ρ of epoch and value, its interval resampling the
    evaluation items at every checkpoint alike): reproduced = the interval lies on the claimed side of 0, not
    reproduced = on the other side, else inconclusive. It speaks for this run's trajectory; whether training
    moves this way in general needs seeds (:func:`seed_trend_claim`). At-chance checkpoints are left out of a
    classification measure.

    A table without the test (a run measured before steps wrote it, a curve of seed means) is judged as it was:
    by a permutation Spearman of epoch and value (p < ``alpha`` the claimed way), which the detail names."""
    claim, column = trend_of.claim, trend_of.column
    rows = measured_rows(df, column)
    excluded = len(df) - len(rows)
    note = f"; {counted(excluded, 'at-chance checkpoint')} left out" if excluded else ""
    statistic = f"spearman(epoch, {column})"
    # (a run stacked with others that have the test gets the column, nan: it has none of its own)
    if f"{column}_trend" in df.columns and len(df) and np.isfinite(float(df[f"{column}_trend"].iloc[0])):
        return _paired_trend_claim(df, rows, trend_of, excluded, note)
    trend = monotone_trend(rows["epoch"], rows[column], n_perm=n_perm, seed=seed, alpha=alpha)
    against = "rises" if trend_of.direction == "falls" else "falls"
    verdict = {trend_of.direction: REPRODUCED, against: NOT_REPRODUCED, "flat": INCONCLUSIVE}[trend["direction"]]
    if not np.isfinite(trend["rho"]):  # nothing was tested: say why, not "flat"
        return _verdict_row(claim, statistic, trend["rho"], trend["p_value"], INCONCLUSIVE,
                            f"{column}: no trend to test ({_why_no_trend(rows, column, excluded > 0)}){note}")
    return _verdict_row(claim, statistic, trend["rho"], trend["p_value"], verdict,
                        f"{column} {trend['direction']} over training (alpha {alpha:g}; a permutation over the "
                        f"checkpoints: the run's tables hold no paired trend test){note}")


def _paired_trend_claim(df: pd.DataFrame, rows: pd.DataFrame, trend_of: registry.TrendClaim, excluded: int,
                        note: str) -> dict:
    """:func:`trend_claim` on the step's paired trend test (``df``'s ``<column>_trend[_lo/_hi]``, one run's; its
    ρ defined)."""
    claim, column = trend_of.claim, trend_of.column
    rho, lo, hi = (float(df[f"{column}_trend{suffix}"].iloc[0]) for suffix in ("", "_lo", "_hi"))
    statistic = f"spearman(epoch, {column}) (paired bootstrap over the evaluation items)"
    n = int((np.isfinite(rows["epoch"].astype(float)) & np.isfinite(rows[column].astype(float))).sum())
    said = f"ρ = {fixed(rho, 2)} over {counted(n, 'checkpoint')}"
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return _verdict_row(claim, statistic, rho, NAN, INCONCLUSIVE,
                            f"{column}: {said}{note}; no interval: the resampled items rarely define ρ")
    verdict = (below_zero if trend_of.direction == "falls" else above_zero)(lo, hi)
    moves = "falls" if hi < 0 else "rises" if lo > 0 else "shows no clear trend"
    return _verdict_row(claim, statistic, rho, NAN, verdict,
                        f"{column} {moves} over this run: {said} [{fixed(lo, 2)}, {fixed(hi, 2)}], the evaluation "
                        f"items resampled alike at every checkpoint (training's own noise needs seeds){note}",
                        (lo, hi))


def _why_no_trend(rows: pd.DataFrame, column: str, left_out: bool) -> str:
    """Why Spearman's ρ of epoch and ``column`` is undefined over ``rows`` (``left_out``: checkpoints at chance
    were left out), in words."""
    n = int((np.isfinite(rows["epoch"].astype(float)) & np.isfinite(rows[column].astype(float))).sum())
    if n < 3:
        return f"{counted(n, 'checkpoint')} with a value{' above chance' if left_out else ''}: a trend needs 3"
    return f"{column} is the same at all {n} checkpoints"


def above_zero(lo: float, hi: float) -> str:
    """reproduced when an interval lies above 0, not reproduced when below, else inconclusive."""
    if np.isfinite(lo) and lo > 0:
        return REPRODUCED
    if np.isfinite(hi) and hi < 0:
        return NOT_REPRODUCED
    return INCONCLUSIVE


def below_zero(lo: float, hi: float) -> str:
    """reproduced when an interval lies below 0 (a fall), not reproduced when above, else inconclusive."""
    return above_zero(-hi, -lo)


def _over_seeds(n_defined: int, n_seeds: int) -> str:
    """How a statistic over seeds was taken, naming the seeds it is defined on where that is not all of them."""
    seeds = f"{n_defined} of {n_seeds}" if n_defined < n_seeds else f"{n_seeds}"
    return f"mean over {seeds} seeds, t interval over seeds"


def seed_trend_claim(runs: dict, trend_of: registry.TrendClaim, confidence: float = 0.95) -> dict:
    """A trend claim (``trend_of``) over several runs of one group (``runs``: {seed label: its rows}), the runs
    as replicates: each run's own Spearman ρ of epoch and value (its at-chance checkpoints left out of a
    classification measure), their mean and Student-t interval over runs (:func:`correlation_interval`).
    Reproduced = the interval lies on the claimed side of 0, not reproduced = on the other side, else
    inconclusive; fewer than two runs with a ρ give no interval (inconclusive, saying why per run).

    Not a permutation test over the seed-mean curve's checkpoints: that treats the checkpoints as exchangeable,
    but each run's are one training trajectory whose noise carries from one checkpoint to the next, and it
    called a trend reproduced that one seed of three showed alone. This is how a peak claim's interval over
    seeds is made, and how the quality experiment's predictions judge the same trends (``metrics.mechanism``)."""
    claim, column = trend_of.claim, trend_of.column
    rhos, parts, excluded = [], [], 0
    for label, run in runs.items():
        rows = measured_rows(run, column)
        excluded += len(run) - len(rows)
        rho = spearman(rows["epoch"].to_numpy(float), rows[column].to_numpy(float))
        rhos.append(rho)
        parts.append(f"{label}: {fixed(rho, 2)}" if np.isfinite(rho)
                     else f"{label}: undefined ({_why_no_trend(rows, column, len(rows) < len(run))})")
    mean, lo, hi, n = correlation_interval(rhos, confidence)
    statistic = f"spearman(epoch, {column}) per seed ({_over_seeds(n, len(runs))})"
    detail = f"{column}: ρ per seed ({'; '.join(parts)})"
    note = f"; {counted(excluded, 'at-chance checkpoint')} left out over the seeds" if excluded else ""
    if n < 2:
        return _verdict_row(claim, statistic, mean if n else NAN, NAN, INCONCLUSIVE,
                            f"{detail}: an interval over seeds needs 2 seeds with a trend{note}")
    verdict = (below_zero if trend_of.direction == "falls" else above_zero)(lo, hi)
    where = ("; the interval includes 0" if verdict == INCONCLUSIVE
             else f": the interval is {'below' if hi < 0 else 'above'} 0")
    return _verdict_row(claim, statistic, mean, NAN, verdict,
                        f"{detail}, mean {fixed(mean)} [{fixed(lo)}, {fixed(hi)}]{where}{note}", (lo, hi))


def _why_no_partial(df: pd.DataFrame, x: str, y: str) -> str:
    """Why ``net_of_time``'s partial Spearman of x and y is undefined over ``df``'s checkpoints where both are
    above chance, in words (``stats.partial_spearman_undefined``)."""
    rows = above_chance(df, x, y)
    why = partial_spearman_undefined(rows[x], rows[y], time_covariate(rows["epoch"]))
    if why is None:
        return "a correlation with time is undefined"
    kind, which, rho = why
    if kind == "few":
        return "fewer than 4"
    if kind == "constant":
        return "every one is at the same epoch" if which == 2 else f"{(x, y)[which]} is the same at every one"
    how = "as time" if rho > 0 else "against time"
    return f"{(x, y)[which]} is ordered exactly {how} (Spearman ρ = {rho:.3f} with epoch)"


COVARIES_CLAIM = "IQA alignment co-varies with texture bias and noise drop"


def claim_order() -> list[str]:
    """Every claim in the order :func:`verdicts` judges them, the paper's: the required steps' in step order,
    claim 4, then the optional steps'."""
    return ([c.claim for _, summary in registry.summaries(required=True) for c in summary.claims] + [COVARIES_CLAIM]
            + [c.claim for _, summary in registry.summaries(required=False) for c in summary.claims])


def _covaries_claim(df: pd.DataFrame, n_perm: int, seed: int, alpha: float) -> dict:
    claim = COVARIES_CLAIM
    relations = pairwise_relations(df, n_perm=n_perm, seed=seed).iloc[:2]
    rho, p_value = relations["partial_spearman"], relations["partial_p"]
    positive = (rho > 0) & (p_value < alpha) & (relations["diff_spearman"] > 0)
    negative = (rho < 0) & (p_value < alpha)
    if positive.all():
        verdict, row = REPRODUCED, relations.loc[p_value.idxmax()]
    elif negative.any():
        verdict, row = NOT_REPRODUCED, relations[negative].iloc[0]
    else:
        verdict, row = INCONCLUSIVE, relations[~positive].iloc[0]
    def net(r) -> str:
        if np.isfinite(r.partial_spearman):
            return f"net of log time ρ = {r.partial_spearman:.2f} (p = {r.partial_p:.3g})"
        return f"net of log time undefined (over {counted(r.n, 'checkpoint')}: {_why_no_partial(df, r.x, r.y)})"

    def rho(value: float) -> str:
        return f"{value:.2f}" if np.isfinite(value) else "undefined"

    detail = "; ".join(f"{r.y}: no checkpoint where both measures are defined (above chance)" if r.n == 0 else
                       f"{r.y}: {net(r)}, first differences ρ = {rho(r.diff_spearman)}, plain ρ = {rho(r.spearman)}"
                       for r in relations.itertuples())
    return _verdict_row(claim, f"partial spearman({row['x']}, {row['y']} | log time)", row["partial_spearman"],
                        row["partial_p"], verdict, detail + " (p descriptive: checkpoints form a time series)")


def seed_covaries_claim(runs: dict, confidence: float = 0.95) -> dict:
    """Claim 4 over several runs of one group (``runs``: {seed label: its rows}), the runs as replicates: for
    each of its two relations (IQA alignment with texture bias, with the noise drop), each run's own partial
    Spearman net of log time (:func:`net_of_time`, over its checkpoints where both measures are above chance),
    their mean and Student-t interval over runs (:func:`correlation_interval`), and the mean of the runs' own
    first-difference ρ. Reproduced = for both relations the interval lies above 0 and the first differences'
    mean is positive; not reproduced = either interval lies below 0; else inconclusive. As
    :func:`_covaries_claim` judges one curve, with the interval over seeds in place of a p that treats one
    trajectory's checkpoints as independent."""
    relations = []
    for x, y in RELATIONS[:2]:
        partials, diffs, parts = [], [], []
        for label, run in runs.items():
            rows = above_chance(run, x, y)
            net = net_of_time(rows["epoch"], rows[x], rows[y])
            partials.append(net["partial_spearman"])
            diffs.append(net["diff_spearman"])
            parts.append(f"{label}: {fixed(net['partial_spearman'], 2)}" if np.isfinite(net["partial_spearman"])
                         else f"{label}: undefined ({_why_no_partial(run, x, y)})")
        mean, lo, hi, n = correlation_interval(partials, confidence)
        diff = float(np.nanmean(diffs)) if np.isfinite(diffs).any() else NAN
        relations.append({"x": x, "y": y, "mean": mean, "lo": lo, "hi": hi, "n": n, "diff": diff, "parts": parts})
    positive = [r["n"] >= 2 and r["lo"] > 0 and r["diff"] > 0 for r in relations]
    negative = [r["n"] >= 2 and r["hi"] < 0 for r in relations]
    if all(positive):
        verdict, row = REPRODUCED, min(relations, key=lambda r: r["lo"])
    elif any(negative):
        verdict, row = NOT_REPRODUCED, relations[negative.index(True)]
    else:
        verdict, row = INCONCLUSIVE, relations[positive.index(False)]

    def said(r: dict) -> str:
        text = f"{r['y']}: net of log time ρ per seed ({'; '.join(r['parts'])})"
        if r["n"] < 2:
            return text + ": an interval over seeds needs 2 seeds with one"
        diff = fixed(r["diff"], 2) if np.isfinite(r["diff"]) else "undefined"
        return text + f", mean {fixed(r['mean'])} [{fixed(r['lo'])}, {fixed(r['hi'])}], first differences ρ mean {diff}"

    statistic = f"partial spearman({row['x']}, {row['y']} | log time) per seed ({_over_seeds(row['n'], len(runs))})"
    ci = (row["lo"], row["hi"]) if row["n"] >= 2 else (NAN, NAN)
    return _verdict_row(COVARIES_CLAIM, statistic, row["mean"] if row["n"] else NAN, NAN, verdict,
                        "; ".join(map(said, relations)), ci)


def verdicts(df: pd.DataFrame, n_perm: int = 10000, seed: int = 0, alpha: float = 0.05, by: str | None = None,
             confidence: float = 0.95) -> pd.DataFrame:
    """One row per claim of the paper: claim, statistic, value, ci_lo, ci_hi, p_value, verdict, detail.

    ``by`` None: ``df`` is one curve (one run, or one group's seed means). ``by`` a column (``scale``, a
    sweep's ``setting``): ``df`` holds runs (a ``seed`` column) and each group is judged on its per-epoch
    seed means (:func:`seed_means`), its trend claims and claim 4 on its runs' own statistics
    (:func:`seed_trend_claim`, :func:`seed_covaries_claim`); the columns ``by`` (first), n_seeds,
    seeds_reproduced (the fraction of the group's seeds whose own run reproduces the claim), seeds_agree (the
    fraction whose own verdict is the group's) and seed_verdicts (each seed's own verdict, "0: reproduced; 1: inconclusive; …")
    join. One run is a group of one.

    The claims are the registered steps' (``registry.claims``, each step's ``Summary.claims``): the required
    steps' in step order, then claim 4, then the optional steps' when ``df`` has their columns. Today:

    1. IQA alignment peaks early then declines. "Early" = after the untrained model and at most
       EARLY_FRACTION (a third) of the run. Reproduced = the curve's maximum lies in that window and the
       paired bootstrap interval of (max early srcc − final srcc) (``metrics.iqa.early_peak_test``,
       columns iqa_early_drop[_lo/_hi]; over seeds, the t interval of each seed's drop at the early
       checkpoint the other seeds peak at) lies above 0; not reproduced = that interval lies below 0;
       otherwise inconclusive (a peak at the last checkpoint is said in the detail). (A trend test over the whole curve would
       mix the early rise with the later course, so none is used here.)
    2. Texture bias (1 − shape_bias) falls, 3. the normalized noise drop falls, 3b. the chance-corrected
       noise drop falls: reproduced = the interval of Spearman ρ(epoch, measure) lies below 0, not reproduced
       = above (the step's paired trend test, resampling its images at every checkpoint alike:
       ``<column>_trend[_lo/_hi]``, ``metrics.trend``; a table without it: a permutation Spearman, p < alpha),
       otherwise inconclusive; at-chance checkpoints are left out. Over several seeds
       (``by``): each seed's own Spearman ρ, reproduced = their t interval over seeds lies below 0, not
       reproduced = above (:func:`seed_trend_claim`; a permutation over the seed-mean curve's checkpoints
       would treat one trajectory's checkpoints as exchangeable).
    4. IQA alignment co-varies with texture bias and with noise drop *net of time*: reproduced = for both,
       the partial Spearman given log time is positive with p < alpha and the first differences correlate
       positively; not reproduced = either partial Spearman is significantly negative; else inconclusive.
       Over several seeds (``by``): each seed's own partial Spearman per relation, judged on their t interval
       over seeds and the mean of the seeds' first-difference ρ (:func:`seed_covaries_claim`).
    5. Mid-level similarity (the overall 2AFC score, two_afc_score) and 6. saliency correspondence
       (saliency_sauc) peak early then decline: only when ``df`` has the column and its interval columns;
       judged as claim 1 is (:func:`peak_claim`), on the step's paired early-peak test (two_afc_early_drop,
       resampling triplets; saliency_early_drop, resampling images).
    ``statistic``/``value`` (and ci_lo/ci_hi where there is an interval) name the number each verdict
    rests on (for claim 4, the weaker relation when reproduced, the contradicting one when not).
    """
    if by is not None:
        return _verdicts_by(df, n_perm, seed, alpha, by, confidence)
    _require(df, ["epoch"] + [c for _, summary in registry.summaries(required=True) for c in _judged_columns(summary)])
    df = _with_texture_bias(df)
    rows = [_claim_row(df, step, claim, n_perm, seed, alpha) for step, claim in _claims(df, required=True)]
    rows.append(_covaries_claim(df, n_perm, seed, alpha))
    rows += [_claim_row(df, step, claim, n_perm, seed, alpha) for step, claim in _claims(df, required=False)]
    return pd.DataFrame(rows, columns=VERDICT_COLUMNS)


def _judged_columns(summary: registry.Summary) -> list[str]:
    """The columns a required step's claims need: its headline column (texture_bias derives from
    shape_bias), with its interval where a peak claim is judged on it."""
    peaked = any(isinstance(c, registry.PeakClaim) for c in summary.claims)
    return [summary.column] + ([f"{summary.column}_lo", f"{summary.column}_hi"] if peaked else [])


def _claims(df: pd.DataFrame, required: bool):
    """(step, claim) of the required steps' summaries (``required``; a trend claim that is not required joins
    when ``df`` has its column), else of the optional steps' summaries whose columns ``df`` has."""
    for step, summary in registry.summaries(required=required):
        if not required and not {summary.column, f"{summary.column}_lo", f"{summary.column}_hi"} <= set(df.columns):
            continue
        for claim in summary.claims:
            if isinstance(claim, registry.TrendClaim) and not claim.required and claim.column not in df.columns:
                continue
            yield step, claim


def _claim_row(df: pd.DataFrame, step: registry.Step, claim, n_perm: int, seed: int, alpha: float) -> dict:
    if isinstance(claim, registry.PeakClaim):
        return peak_claim(df, claim, step.summary.column, step.name)
    return trend_claim(df, claim, n_perm, seed, alpha)


# --- Several runs: seeds of one scale are replicates; scales are compared side by side. ---

def t_interval(values, confidence: float = 0.95) -> tuple[float, float, float, int]:
    """(mean, lo, hi, n) of the finite values: Student-t interval mean ± t(n−1)·sd/√n; lo = hi = nan when n < 2."""
    from scipy import stats

    x = np.asarray(values, dtype=float).ravel()
    x = x[np.isfinite(x)]
    n = int(x.size)
    if n == 0:
        return float("nan"), float("nan"), float("nan"), 0
    mean = float(x.mean())
    if n < 2:
        return mean, float("nan"), float("nan"), n
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1) * x.std(ddof=1) / np.sqrt(n))
    return mean, mean - half, mean + half, n


def correlation_interval(correlations, confidence: float = 0.95) -> tuple[float, float, float, int]:
    """(mean, lo, hi, n) of per-seed correlations: their mean and its Student-t interval (:func:`t_interval`),
    the interval cut to [−1, 1]; lo = hi = nan when n < 2. Not on Fisher's z: a seed's Spearman ρ over a
    run's few checkpoints is often exactly ±1, where atanh is infinite, and any finite stand-in for it made
    seeds that rank perfectly widen the interval (ρ = −1, −1, −0.9 came out inconclusive, −0.9, −0.85, −0.95
    a clear fall) and moved the mean far from the seeds' own (ρ = −1, 0.2, 0.3 gave −0.98)."""
    mean, lo, hi, n = t_interval(correlations, confidence)
    return mean, max(lo, -1.0) if np.isfinite(lo) else lo, min(hi, 1.0) if np.isfinite(hi) else hi, n


def seed_chance_flags(group: pd.DataFrame) -> dict:
    """The chance flags of a mean over seeds (``group``: one row per seed), those ``group`` has: at_chance where
    most seeds' clean accuracy is at chance and n_above_chance, the seeds that are not; shape_at_chance and
    n_shape_above_chance likewise for the cue-conflict decisions."""
    flags = {}
    if "at_chance" in group.columns:
        seeds_at_chance = at_chance(group, "noise_drop")
        flags["at_chance"] = bool(seeds_at_chance.mean() > 0.5)
        # The drops are undefined at chance: a mean over 3 seeds may rest on fewer.
        flags["n_above_chance"] = int((~seeds_at_chance).sum())
    if "shape_at_chance" in group.columns:
        seeds_at_chance = at_chance(group, "shape_bias")
        flags["shape_at_chance"] = bool(seeds_at_chance.mean() > 0.5)
        flags["n_shape_above_chance"] = int((~seeds_at_chance).sum())  # the seeds the shape bias' mean is over
    return flags


def seed_values(group: pd.DataFrame, column: str) -> pd.Series:
    """The values of ``column`` a mean over seeds (``group``: one row per seed) is taken over. A seed guessing
    on the cue-conflict images has a shape bias of noise (the drops are nan at chance already): the shape bias'
    mean is over the others. Only the shape step's own flag (shape_at_chance) says so (a row of a table without
    it keeps its value); a group at chance in every seed keeps them all, to be shown apart as such."""
    values = group[column]
    if column == "shape_bias" and "shape_at_chance" in group.columns:
        guessing = _flagged(group["shape_at_chance"])
        if not guessing.all():
            values = values.where(~guessing)
    return values


def seed_means(df: pd.DataFrame, measures: dict | None = None, by: tuple[str, ...] = ("scale", "epoch"),
               confidence: float = 0.95) -> pd.DataFrame:
    """Mean and t-interval over seeds of each measure, one row per group of ``by`` (default scale × epoch).

    Columns: ``by``, then per measure m: m (mean over seeds), m_lo, m_hi (t-interval at ``confidence``);
    n_seeds (runs in the group), and per peak claim's drop m_n_seeds (the seeds it is defined on); checkpoint
    (the first run's name, for labels). ``measures`` maps a column to its per-run interval columns (lo, hi) or
    (None, None): a group with a single seed keeps that run's own interval there, so a one-seed scale is judged
    as a single run is. A group of several seeds
    averages each peak claim's ``<prefix>_early_drop`` at the early checkpoint the other seeds peak at
    (:func:`_held_out_peak_drops`), not each seed's own maximum. Groups keep the order in
    which they first appear in ``df``, epochs ascending within a scale. Epochs are matched to 1e-6.
    With the default measures, the optional ones a table lacks (chance_corrected_drop, iqa_early_drop,
    two_afc_score, saliency_sauc, saliency_cc, saliency_nss) are skipped. When ``df`` has at_chance, it
    becomes true where most of a group's seeds are at chance, and n_above_chance counts the seeds that are
    not (the drops' mean is over those alone: at chance a drop is undefined); with shape_at_chance
    (the runs' own), shape_at_chance and n_shape_above_chance likewise, the shape bias' mean over the seeds
    above chance on the cue-conflict images alone.
    """
    if measures is None:
        # The registered measures (registry.seed_measures); the required steps' headline columns must be there.
        _require(df, list(by) + [summary.column for _, summary in registry.summaries(required=True)])
        measures = {m: bounds for m, bounds in registry.seed_measures().items() if m in df.columns}
    by = list(by)
    _require(df, by + list(measures))
    df = df.copy()
    if "epoch" in by:
        df["epoch"] = df["epoch"].astype(float).round(6)
        df = _held_out_peak_drops(df, [c for c in by if c != "epoch"], measures)
    # A peak claim's drop may be defined on fewer seeds than the group holds: its statistic names how many.
    drops = {f"{claim.prefix}_early_drop" for _, claim in registry.peak_claims()}
    rows = []
    for key, group in df.groupby(by, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        row = dict(zip(by, key))
        if "checkpoint" in group.columns:
            row["checkpoint"] = group["checkpoint"].iloc[0]
        for column, (run_lo, run_hi) in measures.items():
            values = seed_values(group, column)
            mean, lo, hi, n = t_interval(values, confidence)
            # One seed in the group: its own interval. (One finite value among several seeds keeps the t
            # interval's nan: the row is a mean over seeds, and pages say so.)
            if n == 1 and len(group) == 1 and run_lo is not None and run_lo in group.columns:
                finite = group[np.isfinite(values.astype(float))]
                lo, hi = float(finite[run_lo].iloc[0]), float(finite[run_hi].iloc[0])
            row.update({column: mean, f"{column}_lo": lo, f"{column}_hi": hi})
            if column in drops:
                row[f"{column}_n_seeds"] = n
        row.update(seed_chance_flags(group))
        row["n_seeds"] = len(group)
        rows.append(row)
    out = pd.DataFrame(rows)
    first_seen = {k: i for i, k in enumerate(dict.fromkeys(out[by[0]]))}
    order = out[by[0]].map(first_seen)
    out = out.assign(_order=order).sort_values(["_order"] + by[1:], kind="stable").drop(columns="_order")
    return out.reset_index(drop=True)


def verdict_grid(verdicts: pd.DataFrame, order, by: str = "setting") -> pd.DataFrame:
    """``by`` × claim: the verdict, rows in ``order`` (a sweep's or an experiment's settings), claims in the
    order :func:`verdicts` lists them (:func:`claim_order`), however ``verdicts``' rows are ordered."""
    # pivot sorts both axes by name; the claims are read in the paper's order, the settings in the sweep's
    known, present = claim_order(), list(dict.fromkeys(verdicts["claim"]))
    claims = [c for c in known if c in present] + [c for c in present if c not in known]
    return verdicts.pivot(index=by, columns="claim", values="verdict").loc[list(order), claims]


def _held_out_peak_drops(df: pd.DataFrame, groups: list[str], measures: dict) -> pd.DataFrame:
    """``df`` with each run's ``<prefix>_early_drop`` (its own paired test, a maximum its own noise pushes up)
    replaced, in a group of ``groups`` holding two runs or more, by its drop at the early checkpoint the other
    runs' mean curve peaks at (``peak.held_out_drops``), so that the seed mean carries no selection bias (its t
    interval is a little narrow: the drops share the other seeds' noise through their choice). Runs are told
    apart by ``run`` (else ``seed``); a run without its own test keeps none."""
    key = next((c for c in ("run", "seed") if c in df.columns), None)
    claims = [(f"{claim.prefix}_early_drop", step.summary.column) for step, claim in registry.peak_claims()]
    claims = [(drop, column) for drop, column in claims if drop in measures and column in df.columns]
    if key is None or not claims:
        return df
    for _, group in (df.groupby(groups, sort=False) if groups else [(None, df)]):
        if group[key].nunique() < 2:
            continue
        for drop, column in claims:
            tested = np.isfinite(group[drop].astype(float))
            df.loc[group.index[tested], drop] = group.loc[tested, key].map(held_out_by_run(group, key, column)) \
                .astype(float).to_numpy()
            # a run's own interval is its bootstrap of its own maximum, not of the held-out drop: none is left for
            # an epoch only one run has (seed_means would otherwise pair the held-out value with that interval)
            df.loc[group.index, [c for c in measures[drop] if c is not None and c in df.columns]] = np.nan
    return df


def held_out_by_run(rows: pd.DataFrame, key: str, column: str) -> pd.Series:
    """Each run's (``key``) early drop of ``column`` at the early checkpoint the other runs peak at
    (``peak.held_out_drops``), the curves read at the rows' epochs (matched to 1e-6); runs in first-seen order."""
    curves = (rows.assign(epoch=rows["epoch"].astype(float).round(6)).groupby([key, "epoch"])[column].first()
              .unstack("epoch").sort_index(axis=1).loc[list(dict.fromkeys(rows[key]))])
    drops, _ = held_out_drops(curves.columns.to_numpy(float), curves.to_numpy(float))
    return pd.Series(drops, index=curves.index)


def _verdicts_by(df: pd.DataFrame, n_perm: int, seed: int, alpha: float, by: str, confidence: float) -> pd.DataFrame:
    _require(df, [by, "seed"])
    means = seed_means(df, by=(by, "epoch"), confidence=confidence)
    trends = {claim.claim: claim for _, claim in registry.trend_claims()}
    tables = []
    for key, curve in means.groupby(by, sort=False):
        group = df[df[by] == key]
        runs = group.groupby(_seed_labels(group), sort=True, dropna=False)
        seeds = [key_seed for key_seed, _ in runs]
        own_tables = [verdicts(run.sort_values("epoch").reset_index(drop=True), n_perm=n_perm, seed=seed,
                               alpha=alpha) for _, run in runs]
        per_seed = [own["verdict"].to_numpy() for own in own_tables]
        if len(per_seed) == 1:  # a group of one run is judged as that run (its trend tests are its own)
            table = own_tables[0]
        else:  # the runs replicate: a trend, and claim 4, over their own, not over the mean curve's
            table = verdicts(curve.reset_index(drop=True), n_perm=n_perm, seed=seed, alpha=alpha)
            own_rows = {label: _with_texture_bias(run.sort_values("epoch")) for label, run in runs}
            table = pd.DataFrame([_over_runs(row, own_rows, trends, confidence) for row in table.to_dict("records")],
                                 columns=VERDICT_COLUMNS)
        table.insert(0, by, key)
        table["n_seeds"] = len(per_seed)
        table["seeds_reproduced"] = np.mean([v == REPRODUCED for v in per_seed], axis=0)
        table["seeds_agree"] = np.mean([v == table["verdict"].to_numpy() for v in per_seed], axis=0)
        table["seed_verdicts"] = ["; ".join(f"{s}: {v[i]}" for s, v in zip(seeds, per_seed))
                                  for i in range(len(table))]
        tables.append(table)
    return pd.concat(tables, ignore_index=True)


def _over_runs(row: dict, runs: dict, trends: dict, confidence: float) -> dict:
    """A seed-mean curve's verdict ``row``, judged again over ``runs`` (its runs' own rows) where the claim is a
    trend (``trends``) or claim 4; a peak claim's row already rests on its interval over the runs."""
    if row["claim"] in trends:
        return seed_trend_claim(runs, trends[row["claim"]], confidence)
    if row["claim"] == COVARIES_CLAIM:
        return seed_covaries_claim(runs, confidence)
    return row


def _seed_labels(runs: pd.DataFrame) -> pd.Series:
    """Each row's run as seed_verdicts names it: its seed, where every run has a seed of its own; else every run
    by its label (``run``): a run of unknown seed (trained elsewhere, streamed: "nan: inconclusive" said nothing),
    or two runs of one seed (open_clip_train's default seed, two learning rates: their rows were pooled as one)."""
    if "run" not in runs.columns:
        return runs["seed"]
    seeds_of_runs = runs.groupby("run", sort=False)["seed"].first()
    if seeds_of_runs.notna().all() and seeds_of_runs.is_unique:
        return runs["seed"]
    return runs["run"].astype(str)


def synthesis_table(df: pd.DataFrame, alignment_weight: float = 0.5, by: str = "run") -> pd.DataFrame:
    """Each run's checkpoints (rows grouped by ``by``) with its own synthesis columns: texture_bias,
    robustness, on_pareto_front, selected (``select_checkpoint``), iqa_peak_epoch, iqa_peak_is_interior,
    iqa_peak_ci_separated (``rises_then_falls``). Row order and index are kept. The front and the selection
    weigh only the checkpoints above chance (``above_chance``): an at-chance model loses nothing to noise
    because it has nothing to lose, and its drop of 0 would otherwise put it on the front. A run without an
    above-chance checkpoint having both iqa_srcc and noise_drop selects none."""
    _require(df, [by, "epoch", "iqa_srcc", "iqa_srcc_lo", "iqa_srcc_hi", "shape_bias", "noise_drop"])
    parts = []
    for _, run in df.groupby(by, sort=False):
        peak = rises_then_falls(run["epoch"], run["iqa_srcc"], run["iqa_srcc_lo"], run["iqa_srcc_hi"])
        weighed = above_chance(run, "noise_drop")
        usable = weighed[["iqa_srcc", "noise_drop"]].astype(float).notna().all(axis=1).any()
        selected = select_checkpoint(weighed, alignment_weight) if usable else None
        on_front = pd.Series(False, index=run.index)
        on_front[weighed.index] = pareto_front(weighed["iqa_srcc"], 1 - weighed["noise_drop"])
        parts.append(run.assign(texture_bias=1 - run["shape_bias"], robustness=1 - run["noise_drop"],
                                on_pareto_front=on_front.to_numpy(),
                                selected=run.index == selected,
                                iqa_peak_epoch=peak["peak_epoch"], iqa_peak_is_interior=peak["peak_is_interior"],
                                iqa_peak_ci_separated=peak["ci_separated"]))
    return pd.concat(parts).loc[df.index]
