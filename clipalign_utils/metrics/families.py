"""IQA alignment per distortion family, split by whether training images carried that family.

With quality variation, some distortion families appear in the training images (captions never
mention them, so contrastive training rewards an embedding that ignores them) and others do not.
These functions read an ``iqa.csv`` table (checkpoint, epoch, dataset, distance, distortion with
``all`` = overall, srcc, …) and compare alignment on seen and unseen families.
"""
from __future__ import annotations

from typing import Iterable

import numpy as np
import pandas as pd

from clipalign_utils.errors import ParameterError
from clipalign_utils.prose import plural

OVERALL = "all"  # the iqa.csv row that pools every distortion
SEEN = "seen_in_training"
# Columns that identify one scoring of one checkpoint; kept when present.
GROUP_COLUMNS = ("checkpoint", "epoch", "dataset", "distance")
COLUMNS = ["within_family_srcc", "within_seen_srcc", "within_unseen_srcc", "overall_srcc",
           "n_families", "n_seen", "n_unseen"]


def _require(iqa: pd.DataFrame, columns: Iterable[str]) -> None:
    missing = [c for c in columns if c not in iqa.columns]
    if missing:
        raise ParameterError(f"iqa table lacks {plural(len(missing), 'column')} {', '.join(missing)}; "
                             "expected the iqa.csv format")


def mark_seen(iqa: pd.DataFrame, seen_families: Iterable[str]) -> pd.DataFrame:
    """A copy of ``iqa`` with ``seen_in_training``: True where the row's distortion is one of
    ``seen_families``, False where it is not, None on the ``all`` row (it pools both)."""
    _require(iqa, ["distortion"])
    seen = set(seen_families)
    marked = iqa.copy()
    flags = marked["distortion"].isin(seen).astype(object)
    flags[marked["distortion"] == OVERALL] = None
    marked[SEEN] = flags
    return marked


def _mean_srcc(rows: pd.DataFrame) -> float:
    finite = rows["srcc"].to_numpy(dtype=float)
    finite = finite[np.isfinite(finite)]
    return float(finite.mean()) if finite.size else float("nan")


def _checkpoint_row(rows: pd.DataFrame) -> dict:
    families = rows[rows["distortion"] != OVERALL]
    # True/False, or their text when the table was read back from a CSV.
    is_seen = families[SEEN].map(lambda flag: str(flag).lower() == "true").to_numpy(dtype=bool)
    seen, unseen = families[is_seen], families[~is_seen]
    overall = rows.loc[rows["distortion"] == OVERALL, "srcc"]
    return {"within_family_srcc": _mean_srcc(families), "within_seen_srcc": _mean_srcc(seen),
            "within_unseen_srcc": _mean_srcc(unseen),
            "overall_srcc": float(overall.iloc[0]) if len(overall) else float("nan"),
            "n_families": len(families), "n_seen": len(seen), "n_unseen": len(unseen)}


def within_family_alignment(iqa: pd.DataFrame, seen_families: Iterable[str] | None = None) -> pd.DataFrame:
    """One row per checkpoint (and dataset, distance when the table holds several), in table order.

    With F the distortion families of that checkpoint's rows (every ``distortion`` except ``all``),
    S ⊆ F those seen in training and U = F \\ S, and srcc_f the family's row's srcc:

    - ``within_family_srcc`` = (1/|F|) Σ_{f∈F} srcc_f
    - ``within_seen_srcc`` = (1/|S|) Σ_{f∈S} srcc_f, NaN when S is empty
    - ``within_unseen_srcc`` = (1/|U|) Σ_{f∈U} srcc_f, NaN when U is empty
    - ``overall_srcc`` = srcc of the ``all`` row (NaN when absent)
    - ``n_families``, ``n_seen``, ``n_unseen`` = |F|, |S|, |U|

    A family whose srcc is NaN (undefined) is left out of the means (but counted in the n_ columns).
    Seen means ``seen_in_training`` is True: pass ``seen_families``, or a table from :func:`mark_seen`.
    """
    _require(iqa, ["checkpoint", "distortion", "srcc"])
    if seen_families is not None:
        iqa = mark_seen(iqa, seen_families)
    elif SEEN not in iqa.columns:
        raise ParameterError("within_family_alignment needs seen_families, or a table from mark_seen "
                             f"(column {SEEN})")
    keys = [c for c in GROUP_COLUMNS if c in iqa.columns]
    rows = [{**dict(zip(keys, key if isinstance(key, tuple) else (key,))), **_checkpoint_row(group)}
            for key, group in iqa.groupby(keys, sort=False)]
    return pd.DataFrame(rows, columns=keys + COLUMNS)
