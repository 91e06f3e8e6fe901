"""NIGHTS (Fu et al., 2023, "DreamSim: Learning New Dimensions of Human Visual Similarity using
Synthetic Data") in its official layout, as ssundaram21/dreamsim's ``TwoAFCDataset`` reads it:

    <root>/nights/ref/<ddd>/<fff>.png
    <root>/nights/distort/<ddd>/<fff>_0.png, <fff>_1.png
    <root>/nights/data.csv   id,left_vote,right_vote,votes,ref_path,left_path,right_path,split,is_imagenet

Columns are read by name (any order; other columns are ignored). Paths are relative to the folder
holding data.csv. "left" is the first candidate (``left_path``, the ``_0`` file) and "right" the
second (``_1``); DreamSim scores with target = ``right_vote``, the share of people who judged the
right image closer, and a model distance d(ref, left) = d0, d(ref, right) = d1. The votes are
accepted either as counts (left_vote + right_vote = votes; p = right_vote / votes) or as fractions
(left_vote + right_vote = 1; p = right_vote), checked row by row.

Splits: ``train``, ``val``, ``test`` (the ``split`` column), or ``all``: every row of data.csv, the set the
paper's authors score (20,019 triplets). Protocols: ``all`` (every row of the split) and ``votes6`` (rows
with votes >= 6, the filter in DreamSim's dataset code and the set its paper reports). Subsets follow
DreamSim's test splits: ``imagenet`` / ``no_imagenet`` by the ``is_imagenet`` column (``nights`` if the column
is absent).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from clipalign_utils.choices import (NIGHTS_SPLIT_CHOICES, NIGHTS_SPLITS, SIMILARITY_PROTOCOLS,
                                     similarity_options_problem)
from clipalign_utils.errors import DatasetError, ParameterError

SPLITS = NIGHTS_SPLITS
PROTOCOLS = SIMILARITY_PROTOCOLS
MIN_VOTES = {"all": 0, "votes6": 6}
REQUIRED = ("left_vote", "right_vote", "votes", "ref_path", "left_path", "right_path", "split")
COLUMNS = ["subset", "id", "ref_path", "p0_path", "p1_path", "p", "votes"]
_TRUE, _FALSE = {"true", "1", "yes", "t", "1.0"}, {"false", "0", "no", "f", "0.0"}


def nights_folder(root) -> Path:
    """The folder holding data.csv: ``root``, ``root/nights``, or the parent of a given ref/ or distort/."""
    root = Path(root).expanduser().absolute()
    if not root.is_dir():
        raise DatasetError(f"'{root}' does not exist: point it at NIGHTS's folder holding data.csv, ref/ and "
                           f"distort/ (or its parent)")
    for candidate in (root, root / "nights", root.parent if root.name in ("ref", "distort") else None):
        if candidate is not None and (candidate / "data.csv").is_file():
            return candidate
    raise DatasetError(f"'{root}' holds no data.csv (nor nights/data.csv): point it at NIGHTS's folder holding "
                       f"data.csv, ref/ and distort/ (or its parent)")


def _read_csv(csv_path: Path) -> pd.DataFrame:
    try:
        table = pd.read_csv(csv_path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise DatasetError(f"{csv_path}: not a readable CSV ({type(error).__name__}: {error}); expected a header "
                           f"with {','.join(REQUIRED)}") from None
    table.columns = [str(c).strip().lower() for c in table.columns]
    for column in REQUIRED:
        if column not in table.columns:
            raise DatasetError(f"{csv_path} has no column '{column}': NIGHTS's data.csv names "
                               f"id,{','.join(REQUIRED)},is_imagenet (found: {','.join(table.columns)})")
    return table


def _numbers(table: pd.DataFrame, column: str, csv_path: Path, lines: np.ndarray) -> np.ndarray:
    values = pd.to_numeric(table[column].str.strip(), errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(values) | (values < 0)
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise DatasetError(f"{csv_path} line {lines[k]}: column '{column}' must hold a non-negative number, "
                           f"got '{table[column].iloc[k]}'")
    return values


def _p_right(left, right, votes, csv_path: Path, lines: np.ndarray) -> np.ndarray:
    """Fraction choosing the right image, from counts (left + right = votes) or fractions (left + right = 1)."""
    counts = (np.abs(left + right - votes) < 1e-6) & (votes > 0)
    fractions = (np.abs(left + right - 1.0) < 1e-6) & (right <= 1.0)
    bad = ~(counts | fractions)
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise DatasetError(f"{csv_path} line {lines[k]}: left_vote={left[k]:g}, right_vote={right[k]:g}, "
                           f"votes={votes[k]:g} are neither counts (left_vote + right_vote = votes) nor "
                           f"fractions (summing to 1)")
    return np.where(counts, right / np.where(votes > 0, votes, 1.0), right)


def _subsets(table: pd.DataFrame, csv_path: Path, lines: np.ndarray) -> list[str]:
    if "is_imagenet" not in table.columns:
        return ["nights"] * len(table)
    out = []
    for k, value in enumerate(table["is_imagenet"].str.strip().str.lower()):
        if value in _TRUE:
            out.append("imagenet")
        elif value in _FALSE:
            out.append("no_imagenet")
        else:
            raise DatasetError(f"{csv_path} line {lines[k]}: is_imagenet must be True or False, got '{value}'")
    return out


def _resolve(folder: Path, relative: str, csv_path: Path, line: int, column: str) -> str:
    relative = relative.strip()
    path = folder / relative
    if not path.is_file() and (folder.parent / relative).is_file():  # paths written from the parent (nights/...)
        path = folder.parent / relative
    if not relative or not path.is_file():
        raise DatasetError(f"{csv_path} line {line}: {column} '{relative}' names {folder / relative}, "
                           f"which is not a file")
    return str(path)


def load_nights(root, split: str = "test", protocol: str = "all") -> pd.DataFrame:
    """One row per triplet of ``split`` kept by ``protocol``, in file order.

    Columns: subset (imagenet | no_imagenet), id, ref_path, p0_path (left), p1_path (right) (str),
    p (fraction choosing the right image), votes.
    """
    if split not in NIGHTS_SPLIT_CHOICES:
        raise ParameterError(similarity_options_problem("nights", protocol, split))
    if protocol not in PROTOCOLS:
        raise ParameterError(f"similarity_protocol={protocol!r}: choose one of {', '.join(PROTOCOLS)}")
    folder = nights_folder(root)
    csv_path = folder / "data.csv"
    table = _read_csv(csv_path)
    lines = np.arange(len(table)) + 2  # header is line 1
    splits = table["split"].str.strip().str.lower()
    unknown = ~splits.isin(SPLITS).to_numpy()
    if unknown.any():  # a truncated or mistyped split would otherwise drop its row from every split unseen
        k = int(np.flatnonzero(unknown)[0])
        raise DatasetError(f"{csv_path} line {lines[k]}: split must be one of {', '.join(SPLITS)}, as in the "
                           f"release's data.csv, got {table['split'].iloc[k]!r}")
    in_split = np.ones(len(table), dtype=bool) if split == "all" else (splits == split).to_numpy()
    if not in_split.any():
        found = sorted(set(splits))
        raise DatasetError(f"{csv_path} has no rows of split '{split}' (splits found: {', '.join(found) or 'none'})")
    table, lines = table[in_split].reset_index(drop=True), lines[in_split]
    votes = _numbers(table, "votes", csv_path, lines)
    keep = votes >= MIN_VOTES[protocol]
    if not keep.any():
        raise DatasetError(f"{csv_path}: no '{split}' row has votes >= {MIN_VOTES[protocol]} (protocol {protocol})")
    table, lines, votes = table[keep].reset_index(drop=True), lines[keep], votes[keep]
    p = _p_right(_numbers(table, "left_vote", csv_path, lines), _numbers(table, "right_vote", csv_path, lines), votes,
                 csv_path, lines)
    paths = {column: [_resolve(folder, value, csv_path, int(line), column)
                      for value, line in zip(table[column], lines)]
             for column in ("ref_path", "left_path", "right_path")}
    ids = table["id"].str.strip().tolist() if "id" in table.columns else [str(line - 2) for line in lines]
    return pd.DataFrame({"subset": _subsets(table, csv_path, lines), "id": ids, "ref_path": paths["ref_path"],
                         "p0_path": paths["left_path"], "p1_path": paths["right_path"], "p": p,
                         "votes": votes}, columns=COLUMNS)
