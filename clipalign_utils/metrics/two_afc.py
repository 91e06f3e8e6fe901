"""Two-alternative forced choice (2AFC) similarity: does the model pick the candidate people pick?

A triplet is a reference image and two candidates, p0 and p1. People were asked which candidate
is closer to the reference; ``p`` is the fraction of them who chose p1. The model "chooses" the
candidate at the smaller embedding distance, d0 = d(ref, p0) and d1 = d(ref, p1). Its 2AFC score
on one triplet is the fraction of people it agrees with:

    s = p · [d1 < d0] + (1 − p) · [d0 < d1] + ½ · [d0 = d1]

([·] is 1 when the condition holds, else 0), as in Zhang et al. (2018, BAPPS/LPIPS) and Fu et al.
(2023, NIGHTS/DreamSim). The dataset score is the mean of s over triplets: 0.5 is a coin flip, and
no model can beat the *ceiling* mean(max(p, 1 − p)) — people disagree among themselves.

The reference-panel helpers (:func:`panel_p`, :func:`panel_agreement`) serve the embedded set,
where a panel of full-reference metrics, not people, votes.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd

from clipalign_utils.errors import ParameterError
from clipalign_utils.metrics.stats import bootstrap_ci_grouped, bootstrap_mean_ci, shares_groups
from clipalign_utils.prose import counted

TABLE_COLUMNS = ["subset", "score", "score_lo", "score_hi", "n_triplets"]


def _as_arrays(d0, d1, p) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    d0 = np.asarray(d0, dtype=float).ravel()
    d1 = np.asarray(d1, dtype=float).ravel()
    p = np.asarray(p, dtype=float).ravel()
    if not d0.size == d1.size == p.size:
        raise ParameterError(f"d0, d1 and p must have the same length; got {d0.size}, {d1.size} and {p.size}.")
    bad = ~np.isfinite(p) | (p < 0) | (p > 1)
    if bad.any():
        raise ParameterError(f"p must be a fraction in [0, 1]; got {p[bad][:3].tolist()} "
                             f"({counted(int(bad.sum()), 'value')} out of range).")
    return d0, d1, p


def two_afc_scores(d0, d1, p) -> np.ndarray:
    """Per-triplet 2AFC score s = p·[d1 < d0] + (1 − p)·[d0 < d1] + ½·[d0 = d1].

    ``d0``/``d1``: the model's distances of p0/p1 to the reference; ``p``: the fraction of people
    who judged p1 closer. s is nan where d0 or d1 is not finite (no decision).
    """
    d0, d1, p = _as_arrays(d0, d1, p)
    scores = p * (d1 < d0) + (1.0 - p) * (d0 < d1) + 0.5 * (d0 == d1)
    scores[~(np.isfinite(d0) & np.isfinite(d1))] = np.nan
    return scores


def two_afc_score(d0, d1, p) -> float:
    """Mean 2AFC score over the triplets with finite distances (nan if there are none)."""
    scores = two_afc_scores(d0, d1, p)
    finite = scores[np.isfinite(scores)]
    return float(finite.mean()) if finite.size else float("nan")


def two_afc_ceiling(p) -> float:
    """mean(max(p, 1 − p)): the highest mean 2AFC score any model can reach on these triplets
    (it always picks the majority's candidate); 1 only when every triplet is unanimous."""
    p = np.asarray(p, dtype=float).ravel()
    if p.size == 0:
        return float("nan")
    _as_arrays(p, p, p)
    return float(np.maximum(p, 1.0 - p).mean())


def two_afc_table(
    triplets: pd.DataFrame,
    d0_col: str = "d0",
    d1_col: str = "d1",
    p_col: str = "p",
    subset_col: str = "subset",
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    group_col: str = "reference",
) -> pd.DataFrame:
    """Mean 2AFC score overall (subset ``all``) and per subset, one row each.

    Score per triplet: s = p·[d1 < d0] + (1 − p)·[d0 < d1] + ½·[d0 = d1] (see :func:`two_afc_scores`);
    ``score`` is its mean over the subset's triplets with finite distances (``n_triplets`` of them);
    ``score_lo``/``score_hi`` the percentile bootstrap interval (``level``) resampling those triplets, or, where
    triplets share a reference (column ``group_col``: the embedded set's, whose references each have many), whole
    references, as the IQA intervals resample reference images: triplets of one reference are not independent.
    Columns: subset, score, score_lo, score_hi, n_triplets. Subsets are sorted by name after ``all``.
    """
    for name, col in [("d0_col", d0_col), ("d1_col", d1_col), ("p_col", p_col), ("subset_col", subset_col)]:
        if col not in triplets.columns:
            raise ParameterError(f"{name}={col!r} is not a column of triplets; columns are {list(triplets.columns)}.")
    scores = two_afc_scores(triplets[d0_col], triplets[d1_col], triplets[p_col])
    references = triplets[group_col].to_numpy() if group_col in triplets.columns else None
    subset = triplets[subset_col].astype(str).to_numpy()
    groups = [("all", np.ones(len(triplets), dtype=bool))]
    groups += [(name, subset == name) for name in sorted(set(subset)) if name != "all"]
    rows = []
    for name, mask in groups:
        kept = mask & np.isfinite(scores)
        values = scores[kept]
        if not values.size:
            score, lo, hi = float("nan"), float("nan"), float("nan")
        else:
            score = float(values.mean())
            lo, hi = (bootstrap_ci_grouped(references[kept], lambda drawn, v=values: float(v[drawn].mean()),
                                           n_boot=n_boot, seed=seed, level=level)
                      if references is not None and shares_groups(references[kept]) else
                      bootstrap_mean_ci(values, n_boot=n_boot, seed=seed, level=level))
        rows.append({"subset": name, "score": score, "score_lo": lo, "score_hi": hi, "n_triplets": int(values.size)})
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


# ------------------------------------------------------------------------ reference panel
def panel_p(choices) -> np.ndarray:
    """p per triplet = the fraction of panel members choosing p1 (a tie counts ½);
    ``choices`` is (n_triplets, n_members) with values 0, ½ or 1."""
    choices = _check_choices(choices)
    return choices.mean(axis=1)


def _check_choices(choices) -> np.ndarray:
    choices = np.asarray(choices, dtype=float)
    if choices.ndim != 2 or choices.shape[1] < 1:
        raise ParameterError(f"choices must be (n_triplets, n_members); got shape {choices.shape}.")
    if not np.isin(choices, (0.0, 0.5, 1.0)).all():
        raise ParameterError("choices must be 0 (p0 closer), 0.5 (tie) or 1 (p1 closer).")
    return choices


def panel_agreement(choices, members=None) -> dict:
    """How often the members of a judging panel agree with each other: the ceiling of alignment.

    ``choices``: (n_triplets, n_members), 0 / ½ / 1 as in ``data.two_afc_embedded.choices_from_distances``. Returns
    - ``pairwise_agreement``: the mean over member pairs (a, b) of the fraction of triplets where
      they choose alike (agreement on a triplet = 1 − |c_a − c_b|, so a tie against a choice is ½);
    - ``unanimous_fraction``: the fraction of triplets on which every member makes the same choice;
    - ``ceiling``: mean(max(p, 1 − p)) with p = :func:`panel_p`, the best 2AFC score a model can
      reach against this panel;
    - ``pairwise``: a DataFrame of the agreement of every member pair (``members`` names them);
    - ``n_members``, ``n_triplets``.
    With one member the pairwise agreement is nan (nobody to agree with).
    """
    choices = _check_choices(choices)
    n_triplets, n_members = choices.shape
    members = list(members) if members is not None else [f"member_{k}" for k in range(n_members)]
    if len(members) != n_members:
        raise ParameterError(f"members names {len(members)} judges but choices has {n_members} columns.")
    pairs = [(members[a], members[b], float(np.mean(1.0 - np.abs(choices[:, a] - choices[:, b]))))
             for a, b in combinations(range(n_members), 2)] if n_triplets else []
    pairwise = pd.DataFrame(pairs, columns=["member_a", "member_b", "agreement"])
    unanimous = (choices == choices[:, :1]).all(axis=1)
    return {
        "pairwise_agreement": float(pairwise["agreement"].mean()) if len(pairwise) else float("nan"),
        "unanimous_fraction": float(unanimous.mean()) if n_triplets else float("nan"),
        "ceiling": two_afc_ceiling(panel_p(choices)) if n_triplets else float("nan"),
        "pairwise": pairwise,
        "n_members": n_members,
        "n_triplets": n_triplets,
    }
