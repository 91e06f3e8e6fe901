"""Synthesis across checkpoints: does the paper's trade-off (arXiv 2508.09814) show in one training run?

Input is one row per checkpoint with columns epoch, iqa_srcc, iqa_srcc_lo, iqa_srcc_hi, shape_bias,
clean_accuracy and noise_drop (the mean normalized drop over noisy sigmas); more columns are ignored.
texture_bias = 1 − shape_bias and robustness = 1 − noise_drop are derived here.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from clipalign_utils.errors import ParameterError
from clipalign_utils.metrics.iqa import peak_summary
from clipalign_utils.metrics.stats import permutation_spearman

REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE = "reproduced", "not reproduced", "inconclusive"


def _require(df: pd.DataFrame, columns: list[str]) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ParameterError(f"df lacks the column(s) {missing}; it has {list(df.columns)}.")


def _with_texture_bias(df: pd.DataFrame) -> pd.DataFrame:
    return df.assign(texture_bias=1.0 - df["shape_bias"].astype(float))


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
    ci_gap = float(lo[np.argmax(values)] - hi[-1]) if values.size else float("nan")
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


def pairwise_relations(df: pd.DataFrame, n_perm: int = 10000, seed: int = 0) -> pd.DataFrame:
    """Spearman across checkpoints for each pair in RELATIONS; columns x, y, spearman, p_value, n (finite pairs)."""
    _require(df, ["iqa_srcc", "shape_bias", "noise_drop"])
    df = _with_texture_bias(df)
    rows = []
    for x, y in RELATIONS:
        xs, ys = df[x].to_numpy(dtype=float), df[y].to_numpy(dtype=float)
        rho, p_value = permutation_spearman(xs, ys, n_perm=n_perm, seed=seed)
        n = int(np.sum(np.isfinite(xs) & np.isfinite(ys)))
        rows.append({"x": x, "y": y, "spearman": rho, "p_value": p_value, "n": n})
    return pd.DataFrame(rows, columns=["x", "y", "spearman", "p_value", "n"])


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


def _verdict_row(claim: str, statistic: str, value: float, p_value: float, verdict: str, detail: str) -> dict:
    return {"claim": claim, "statistic": statistic, "value": value, "p_value": p_value,
            "verdict": verdict, "detail": detail}


def _peak_claim(df: pd.DataFrame, n_perm: int, seed: int, alpha: float) -> dict:
    claim = "IQA alignment peaks early then declines"
    curve = rises_then_falls(df["epoch"], df["iqa_srcc"], df["iqa_srcc_lo"], df["iqa_srcc_hi"])
    trend = monotone_trend(df["epoch"], df["iqa_srcc"], n_perm=n_perm, seed=seed, alpha=alpha)
    detail = (f"peak {curve['peak_value']:.3f} at epoch {curve['peak_epoch']:g}, "
              f"final {curve['final_value']:.3f} at epoch {curve['final_epoch']:g}")
    gap = ("srcc CI gap (peak lo − final hi)", curve["ci_gap"], float("nan"))
    n_checkpoints = int(np.sum(np.isfinite(df["epoch"].to_numpy(float)) & np.isfinite(df["iqa_srcc"].to_numpy(float))))
    if n_checkpoints < 3:
        return _verdict_row(claim, "checkpoints with a finite srcc", n_checkpoints, float("nan"),
                            INCONCLUSIVE, "a peak inside the run needs at least 3 checkpoints")
    if curve["verdict"]:
        return _verdict_row(claim, *gap, REPRODUCED, detail + "; CIs separated")
    if curve["peak_epoch"] == curve["final_epoch"]:
        return _verdict_row(claim, "peak epoch (= final epoch)", curve["peak_epoch"], float("nan"),
                            NOT_REPRODUCED, detail + "; the peak is the last checkpoint")
    if trend["direction"] == "rises":
        return _verdict_row(claim, "spearman(epoch, iqa_srcc)", trend["rho"], trend["p_value"],
                            NOT_REPRODUCED, detail + "; alignment rises significantly over training")
    reason = "peak at the first checkpoint" if not curve["peak_is_interior"] else "CIs of peak and final overlap"
    return _verdict_row(claim, *gap, INCONCLUSIVE, f"{detail}; {reason}")


def _falls_claim(df: pd.DataFrame, claim: str, column: str, n_perm: int, seed: int, alpha: float) -> dict:
    trend = monotone_trend(df["epoch"], df[column], n_perm=n_perm, seed=seed, alpha=alpha)
    verdict = {"falls": REPRODUCED, "rises": NOT_REPRODUCED, "flat": INCONCLUSIVE}[trend["direction"]]
    return _verdict_row(claim, f"spearman(epoch, {column})", trend["rho"], trend["p_value"], verdict,
                        f"{column} {trend['direction']} over training (alpha {alpha:g})")


def _covaries_claim(df: pd.DataFrame, n_perm: int, seed: int, alpha: float) -> dict:
    claim = "IQA alignment co-varies with texture bias and noise drop"
    relations = pairwise_relations(df, n_perm=n_perm, seed=seed).iloc[:2]
    positive = (relations["spearman"] > 0) & (relations["p_value"] < alpha)
    negative = (relations["spearman"] < 0) & (relations["p_value"] < alpha)
    if positive.all():
        verdict, row = REPRODUCED, relations.loc[relations["p_value"].idxmax()]
    elif negative.any():
        verdict, row = NOT_REPRODUCED, relations[negative].iloc[0]
    else:
        verdict, row = INCONCLUSIVE, relations[~positive].iloc[0]
    detail = "; ".join(f"spearman({r.x}, {r.y}) = {r.spearman:.2f} (p = {r.p_value:.3g})" for r in relations.itertuples())
    return _verdict_row(claim, f"spearman({row['x']}, {row['y']})", row["spearman"], row["p_value"], verdict, detail)


def verdicts(df: pd.DataFrame, n_perm: int = 10000, seed: int = 0, alpha: float = 0.05) -> pd.DataFrame:
    """One row per claim of the paper: claim, statistic, value, p_value, verdict, detail.

    1. IQA alignment peaks early then declines: reproduced = interior peak whose CI lower bound exceeds the
       final checkpoint's CI upper bound; not reproduced = peak at the last checkpoint, or srcc rises
       significantly with epoch; otherwise inconclusive.
    2. Texture bias (1 − shape_bias) falls, 3. noise_drop falls: reproduced = significant fall with epoch,
       not reproduced = significant rise, otherwise inconclusive.
    4. IQA alignment co-varies with texture bias and with noise drop: reproduced = both Spearman rhos
       positive and significant; not reproduced = either significantly negative; otherwise inconclusive.
    Significance is a permutation test at ``alpha``; ``statistic``/``value`` name the number each verdict
    rests on (for claim 4, the weaker pair when reproduced, the contradicting pair when not).
    """
    _require(df, ["epoch", "iqa_srcc", "iqa_srcc_lo", "iqa_srcc_hi", "shape_bias", "noise_drop"])
    df = _with_texture_bias(df)
    rows = [
        _peak_claim(df, n_perm, seed, alpha),
        _falls_claim(df, "texture bias falls during training", "texture_bias", n_perm, seed, alpha),
        _falls_claim(df, "normalized noise drop falls during training", "noise_drop", n_perm, seed, alpha),
        _covaries_claim(df, n_perm, seed, alpha),
    ]
    return pd.DataFrame(rows, columns=["claim", "statistic", "value", "p_value", "verdict", "detail"])


# --- Several runs: seeds of one scale are replicates; scales are compared side by side. ---

# Measures averaged over seeds, each with the per-run interval used when a scale has one seed only.
SEED_MEASURES = {
    "iqa_srcc": ("iqa_srcc_lo", "iqa_srcc_hi"),
    "shape_bias": ("shape_bias_lo", "shape_bias_hi"),
    "clean_accuracy": (None, None),
    "noise_drop": (None, None),
}


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


def seed_means(df: pd.DataFrame, measures: dict | None = None, by: tuple[str, ...] = ("scale", "epoch"),
               confidence: float = 0.95) -> pd.DataFrame:
    """Mean and t-interval over seeds of each measure, one row per group of ``by`` (default scale × epoch).

    Columns: ``by``, then per measure m: m (mean over seeds), m_lo, m_hi (t-interval at ``confidence``);
    n_seeds (runs in the group); checkpoint (the first run's name, for labels). ``measures`` maps a
    column to its per-run interval columns (lo, hi) or (None, None): a group with a single seed keeps that
    run's own interval there, so a one-seed scale is judged as a single run is. Groups keep the order in
    which they first appear in ``df``, epochs ascending within a scale. Epochs are matched to 1e-6.
    """
    measures = SEED_MEASURES if measures is None else measures
    by = list(by)
    _require(df, by + list(measures))
    df = df.copy()
    if "epoch" in by:
        df["epoch"] = df["epoch"].astype(float).round(6)
    rows = []
    for key, group in df.groupby(by, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        row = dict(zip(by, key))
        if "checkpoint" in group.columns:
            row["checkpoint"] = group["checkpoint"].iloc[0]
        for column, (run_lo, run_hi) in measures.items():
            mean, lo, hi, n = t_interval(group[column], confidence)
            if n == 1 and run_lo is not None and run_lo in group.columns:
                finite = group[np.isfinite(group[column].astype(float))]
                lo, hi = float(finite[run_lo].iloc[0]), float(finite[run_hi].iloc[0])
            row.update({column: mean, f"{column}_lo": lo, f"{column}_hi": hi})
        row["n_seeds"] = len(group)
        rows.append(row)
    out = pd.DataFrame(rows)
    first_seen = {k: i for i, k in enumerate(dict.fromkeys(out[by[0]]))}
    order = out[by[0]].map(first_seen)
    out = out.assign(_order=order).sort_values(["_order"] + by[1:], kind="stable").drop(columns="_order")
    return out.reset_index(drop=True)


def verdicts_by_scale(df: pd.DataFrame, n_perm: int = 10000, seed: int = 0, alpha: float = 0.05,
                      confidence: float = 0.95, by: str = "scale") -> pd.DataFrame:
    """The claims of ``verdicts`` judged per scale (or per value of another column ``by``, such as a
    sweep's setting) on the per-epoch seed means (``seed_means``).

    ``df`` is ``results.checkpoint_tables``: one row per run × checkpoint with columns ``by`` and seed.
    Columns: ``by``, the columns of ``verdicts``, n_seeds, and seeds_reproduced = the fraction of the
    group's seeds whose own run gives the verdict "reproduced" for that claim.
    """
    _require(df, [by, "seed"])
    means = seed_means(df, by=(by, "epoch"), confidence=confidence)
    tables = []
    for key, curve in means.groupby(by, sort=False):
        table = verdicts(curve.reset_index(drop=True), n_perm=n_perm, seed=seed, alpha=alpha)
        runs = df[df[by] == key].groupby("seed", sort=True, dropna=False)
        reproduced = [verdicts(run.sort_values("epoch").reset_index(drop=True), n_perm=n_perm, seed=seed,
                               alpha=alpha)["verdict"].eq(REPRODUCED).to_numpy() for _, run in runs]
        table.insert(0, by, key)
        table["n_seeds"] = len(reproduced)
        table["seeds_reproduced"] = np.mean(reproduced, axis=0)
        tables.append(table)
    return pd.concat(tables, ignore_index=True)


def relations_by_scale(df: pd.DataFrame, n_perm: int = 10000, seed: int = 0) -> pd.DataFrame:
    """``pairwise_relations`` of each scale's per-epoch seed means; a column scale leads."""
    means = seed_means(df)
    tables = [pairwise_relations(curve, n_perm=n_perm, seed=seed).assign(scale=scale)
              for scale, curve in means.groupby("scale", sort=False)]
    table = pd.concat(tables, ignore_index=True)
    return table[["scale"] + [c for c in table.columns if c != "scale"]]


def synthesis_table(df: pd.DataFrame, alignment_weight: float = 0.5, by: str = "run") -> pd.DataFrame:
    """Each run's checkpoints (rows grouped by ``by``) with its own synthesis columns: texture_bias,
    robustness, on_pareto_front, selected (``select_checkpoint``), iqa_peak_epoch, iqa_peak_is_interior,
    iqa_peak_ci_separated (``rises_then_falls``). Row order and index are kept; a run without a checkpoint
    having both iqa_srcc and noise_drop selects none."""
    _require(df, [by, "epoch", "iqa_srcc", "iqa_srcc_lo", "iqa_srcc_hi", "shape_bias", "noise_drop"])
    parts = []
    for _, run in df.groupby(by, sort=False):
        peak = rises_then_falls(run["epoch"], run["iqa_srcc"], run["iqa_srcc_lo"], run["iqa_srcc_hi"])
        # A run whose checkpoints all sit at chance has no noise drop to weigh: nothing is selected.
        usable = run[["iqa_srcc", "noise_drop"]].astype(float).notna().all(axis=1).any()
        selected = select_checkpoint(run, alignment_weight) if usable else None
        parts.append(run.assign(texture_bias=1 - run["shape_bias"], robustness=1 - run["noise_drop"],
                                on_pareto_front=pareto_front(run["iqa_srcc"], 1 - run["noise_drop"]),
                                selected=run.index == selected,
                                iqa_peak_epoch=peak["peak_epoch"], iqa_peak_is_interior=peak["peak_is_interior"],
                                iqa_peak_ci_separated=peak["ci_separated"]))
    return pd.concat(parts).loc[df.index]
