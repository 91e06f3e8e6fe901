"""The ``similarity`` step: 2AFC agreement of every checkpoint of a run with the judges of a triplet set.

For each checkpoint the reference, p0 and p1 images are embedded once (cached), both distances of every
triplet are measured, and the model's choices are scored against the judges' (``two_afc.csv``, and every
triplet's distances and score in ``two_afc_per_triplet.csv``); the sentences the page says about them and
the figures it shows (example triplets the model gets right and wrong among them) are built here.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ...results.tables import pick_distance
from ...record import records_evaluation_sets
from ...config import bootstrap_seed
from ...metrics.peak import best_block_columns, best_block_test, mean_peak_test, mean_replicates
from ...checkpoints import Run
from ...data.two_afc import TwoAFCData, load_two_afc
from ...data.two_afc_embedded import choices_from_distances
from ...encoder import run_encoders
from ...metrics.iqa import block_distance, pair_distances, per_pair
from ...metrics.two_afc import panel_agreement, two_afc_ceiling, two_afc_scores, two_afc_table
from . import TABLE

CSV_COLUMNS = list(TABLE.columns)  # the registered schema of two_afc.csv
# two_afc_per_triplet.csv: every triplet (row of data.triplets) scored at every checkpoint.
PER_TRIPLET_COLUMNS = ["checkpoint", "epoch", "triplet", "d0", "d1", "model_choice", "score"]
# two_afc_layers.csv (layers="all" only): the overall score of every vision block's output.
LAYER_COLUMNS = ["checkpoint", "epoch", "dataset", "distance", "layer", "score", "score_lo", "score_hi", "n_triplets"]
# two_afc_best_block.csv (layers="all" only): is the best block's score above the embedding's
BEST_BLOCK_COLUMNS = ["checkpoint", "epoch", "dataset", "distance", *best_block_columns("score")]
# with layers="all" only (io.write_tables removes them left from before)
OPTIONAL_TABLES = ("two_afc_layers", "two_afc_best_block")
CLEAR_MARGIN = 0.2  # "the judges lean clearly one way": |p − ½| at least this


@records_evaluation_sets("similarity")  # the run's record keeps a content hash of what was loaded
def load(run: Run, params: dict) -> TwoAFCData:
    """The triplet set of params' ``similarity_dataset`` (root, protocol, split, ``iqa_resize``): the
    embedded one at the world's ``image_size`` (``seed``, ``texture_scale``, ``object_placement``), a real one at the run's input size."""
    embedded = params["similarity_dataset"] == "embedded"
    return load_two_afc(params["similarity_dataset"], params["similarity_root"], protocol=params["similarity_protocol"],
                        split=params["similarity_split"],
                        image_size=params["image_size"] if embedded else run.image_size, seed=params["eval_seed"],
                        texture_scale=params["texture_scale"], resize=params["iqa_resize"],
                        object_placement=params["object_placement"])


def ceiling(data: TwoAFCData) -> float:
    """The best mean 2AFC score any model can reach against these judges: mean(max(p, 1 − p))."""
    return two_afc_ceiling(data.triplets["p"])


def panel_table(data: TwoAFCData) -> pd.DataFrame:
    """How often each pair of panel members chooses alike (rounded for the page); empty for people."""
    if not data.panel:
        return pd.DataFrame(columns=["member_a", "member_b", "agreement"])
    return panel_agreement(data.panel_choices(), data.panel)["pairwise"].round(3)


def triplet_distances(encoder, data, distance: str = "cosine") -> tuple[np.ndarray, np.ndarray]:
    """(d0, d1): the embedding distances of p0 and p1 to the reference, one pair per triplet (the mean
    over patches at the same positions when the images are tiled). Both come from one call over the set's
    2N (reference, candidate) pairs: ``normalized_euclidean`` scales each dimension by its mean over the pairs
    it is given, and two calls would measure d0 and d1 with two different metrics (identical candidates would
    then differ, and relabelling p0 and p1 would change the model's choices)."""
    ref = encoder.encode_images(data.ref)
    candidates = np.concatenate([encoder.encode_images(data.p0), encoder.encode_images(data.p1)])
    n = len(data)
    index = np.arange(n)
    both = pair_distances(ref, candidates, np.concatenate([index, index]), np.arange(2 * n), distance,
                          data.patches_per_image)
    return both[:n], both[n:]


def score_triplets(triplets: pd.DataFrame, d0: np.ndarray, d1: np.ndarray) -> pd.DataFrame:
    """``triplets`` with d0, d1, model_choice (1 = p1 closer, 0 = p0, 0.5 = tie, nan = no decision) and score
    (per-triplet 2AFC)."""
    d0, d1 = np.asarray(d0, dtype=float), np.asarray(d1, dtype=float)
    return triplets.assign(d0=d0, d1=d1, model_choice=choices_from_distances(d0, d1),
                           score=two_afc_scores(d0, d1, triplets["p"].to_numpy()))


def measure(run: Run, params: dict, data: TwoAFCData | None = None) -> dict[str, pd.DataFrame]:
    """Every checkpoint of ``run`` on the triplets (``data``, default ``load(run, params)``) at params'
    ``distance``: {"two_afc": one row per checkpoint × subset (``all`` = every triplet): score, the mean
    2AFC score of :func:`~clipalign_utils.metrics.two_afc.two_afc_table`, with its percentile bootstrap
    interval over triplets, or over references where triplets share them (``n_boot``, ``seed``); "two_afc_per_triplet": checkpoint × triplet, both
    distances, the model's choice and the triplet's score; "two_afc_peak": the paired early-peak test of the
    overall score (``metrics.peak.mean_peak_test``, resampling triplets, or references as above); with ``layers == "all"``,
    "two_afc_layers" and "two_afc_best_block" (:func:`layer_scores`)}. Embeddings go through the run's cache."""
    data = load(run, params) if data is None else data
    distance = params["distance"]
    rows, per_triplet, layer_rows, best_rows = [], [], [], []
    for checkpoint, encoder in run_encoders(run, params["device"], params["eval_batch_size"],
                                            cache_dir=run.layout.cache, progress=True):
        d0, d1 = triplet_distances(encoder, data, distance)
        if params["layers"] == "all":
            rows_of_layers, best = layer_scores(checkpoint, encoder, data, params, (d0, d1))
            layer_rows += rows_of_layers
            best_rows.append(best)
        table = two_afc_table(data.triplets.assign(d0=d0, d1=d1), n_boot=params["n_boot"], seed=bootstrap_seed(params))
        rows.append(table.assign(checkpoint=checkpoint.name, epoch=checkpoint.epoch, dataset=data.name,
                                 distance=distance))
        scored = score_triplets(data.triplets, d0, d1)
        per_triplet.append(scored.assign(checkpoint=checkpoint.name, epoch=checkpoint.epoch,
                                         triplet=np.arange(len(scored)))[PER_TRIPLET_COLUMNS])
    if not rows:
        return {"two_afc": pd.DataFrame(columns=CSV_COLUMNS),
                "two_afc_per_triplet": pd.DataFrame(columns=PER_TRIPLET_COLUMNS)}
    per_triplet = pd.concat(per_triplet, ignore_index=True)
    # The synthesis' peak claim: the paired early-peak test of the overall score, resampling triplets (whole
    # references where triplets share one, as the table's intervals do).
    references = dict(enumerate(data.triplets["reference"])) if "reference" in data.triplets.columns else None
    peak = mean_peak_test(per_triplet, "score", "triplet", n_boot=params["n_boot"], seed=bootstrap_seed(params),
                          groups=references)
    tables = {"two_afc": pd.concat(rows, ignore_index=True)[CSV_COLUMNS], "two_afc_per_triplet": per_triplet,
              "two_afc_peak": pd.DataFrame([{"dataset": data.name, "distance": distance, **peak}])}
    if params["layers"] == "all":
        tables["two_afc_layers"] = pd.DataFrame(layer_rows, columns=LAYER_COLUMNS)
        tables["two_afc_best_block"] = pd.DataFrame(best_rows, columns=BEST_BLOCK_COLUMNS)
    return tables


def layer_scores(checkpoint, encoder, data: TwoAFCData, params: dict, final: tuple[np.ndarray, np.ndarray]
                 ) -> tuple[list[dict], dict]:
    """(two_afc_layers.csv's rows of one checkpoint, its two_afc_best_block.csv row: whether the best block's
    score is above the embedding's, ``metrics.peak.best_block_test``). The rows: per vision block, and
    ``final`` (the embedding, whose
    (d0, d1) two_afc.csv scored: ``final``), the overall 2AFC score (all triplets) of the block's output,
    compared location by location (``metrics.iqa.block_distance``) as the authors' per-layer NIGHTS code does,
    with d0 and d1 measured alike (``normalized_euclidean`` scales each channel over the 2N reference–candidate
    pairs, as :func:`triplet_distances` does for the embedding)."""
    n = len(data)
    to_p0, to_p1 = encoder.encode_aligned_block_pairs(data.ref, (data.p0, data.p1))
    layers = {}
    for layer in to_p0:
        both = {stat: np.concatenate([to_p0[layer][stat], to_p1[layer][stat]]) for stat in to_p0[layer]}
        distances = per_pair(block_distance(both, params["distance"]), data.patches_per_image)
        layers[layer] = distances[:n], distances[n:]
    layers["final"] = final
    where = {"checkpoint": checkpoint.name, "epoch": checkpoint.epoch, "dataset": data.name,
             "distance": params["distance"]}
    rows = []
    for layer, (d0, d1) in layers.items():
        score = two_afc_table(data.triplets.assign(d0=d0, d1=d1), n_boot=params["n_boot"],
                              seed=bootstrap_seed(params)).iloc[0]  # the "all" row
        rows.append({**where, "layer": layer, **score.drop("subset").to_dict()})
    return rows, {**where, **best_block(layers, data.triplets, [row["score"] for row in rows], params["n_boot"],
                                        bootstrap_seed(params))}


def best_block(layers: dict[str, tuple[np.ndarray, np.ndarray]], triplets: pd.DataFrame, scores: list[float],
               n_boot: int, seed: int) -> dict:
    """``metrics.peak.best_block_test`` of the layers' (d0, d1) on ``triplets`` (columns p and, where triplets share
    them, reference), ``scores`` each layer's overall score as two_afc_layers.csv has it: every layer's mean over the
    same triplets (those every layer decides: a zero vector's distance decides none) and the same resamples of them
    (of whole references where triplets share them, as the table's intervals draw). A layer that decides no triplet
    is out of the test, not every triplet with it."""
    per_triplet = np.stack([two_afc_scores(d0, d1, triplets["p"]) for d0, d1 in layers.values()])
    live = np.isfinite(per_triplet).any(axis=1)
    decided_by_all = np.isfinite(per_triplet[live]).all(axis=0)
    if not decided_by_all.any():  # no triplet every deciding layer decides: nothing to compare
        return best_block_test(list(layers), np.full(len(layers), np.nan), np.full((len(layers), 1), np.nan),
                               score="score")
    per_triplet = per_triplet[:, decided_by_all]
    references = triplets["reference"].to_numpy()[decided_by_all] if "reference" in triplets.columns else None
    replicates = mean_replicates(per_triplet, references, n_boot, seed)
    values = scores if decided_by_all.all() else per_triplet.mean(axis=1)  # (all decided: the table's, bit for bit)
    return best_block_test(list(layers), values, replicates, score="score")


def overall(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The ``all`` rows of two_afc.csv (every triplet), one per checkpoint."""
    two_afc = tables["two_afc"]
    return two_afc[two_afc["subset"] == "all"].reset_index(drop=True)


def score_table(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The overall score per checkpoint as the page shows it: checkpoint, epoch, score, interval, n."""
    return overall(tables).drop(columns=["dataset", "distance", "subset"]).round(3)


# --- over training -----------------------------------------------------------------------------

def scored_triplets(data: TwoAFCData, tables: dict[str, pd.DataFrame], checkpoint: str) -> pd.DataFrame:
    """Every triplet at ``checkpoint``: the columns of data.triplets, d0, d1, model_choice, score,
    checkpoint, epoch and triplet (its row of data.triplets), from ``two_afc_per_triplet``."""
    per_triplet = tables["two_afc_per_triplet"]
    rows = per_triplet[per_triplet["checkpoint"] == checkpoint].sort_values("triplet")
    scored = data.triplets.iloc[rows["triplet"].to_numpy()].reset_index(drop=True)
    return pd.concat([scored, rows[PER_TRIPLET_COLUMNS[3:] + PER_TRIPLET_COLUMNS[:3]].reset_index(drop=True)], axis=1)


def example_checkpoints(tables: dict[str, pd.DataFrame]) -> dict[str, str]:
    """{"first": the first checkpoint, "last": the last one} of two_afc_per_triplet (only "first" when
    the run has one checkpoint)."""
    names = list(dict.fromkeys(tables["two_afc_per_triplet"]["checkpoint"]))
    return dict(zip(("first", "last"), dict.fromkeys([names[0], names[-1]])))


def leans_clearly(p: pd.Series, margin: float = CLEAR_MARGIN) -> pd.Series:
    """p at most ½ − margin or at least ½ + margin (the page's "at most 0.3 or at least 0.7"). Not |p − ½| ≥
    margin: in floating point |0.7 − 0.5| is 0.19999999999999996, which left p = 0.7 out and kept p = 0.3."""
    return (p <= 0.5 - margin) | (p >= 0.5 + margin)


def decided(scored: pd.DataFrame) -> pd.DataFrame:
    """The rows where the model made a choice: a non-finite distance (nan model_choice) is neither right nor
    wrong, and a test of "!= majority" alone would count it wrong."""
    return scored[scored["model_choice"].notna()]


def example_triplets(scored: pd.DataFrame, n: int = 3, seed: int = 0, min_margin: float = CLEAR_MARGIN
                     ) -> pd.DataFrame:
    """Up to ``n`` triplets the model gets right and ``n`` it gets wrong, from one checkpoint's
    :func:`score_triplets` rows, with an ``outcome`` column (right | wrong).

    Only triplets whose judges lean clearly one way (|p − ½| ≥ ``min_margin``) are candidates: "right"
    means the model picks the judges' majority candidate, "wrong" the other one. Drawn at random
    (``seed``), shown in triplet order.
    """
    clear = decided(scored[leans_clearly(scored["p"], min_margin)])
    majority = (clear["p"] > 0.5).astype(float)
    rng = np.random.default_rng(seed)
    picks = []
    for outcome, mask in (("right", clear["model_choice"] == majority),
                          ("wrong", (clear["model_choice"] != majority) & (clear["model_choice"] != 0.5))):
        rows = clear[mask.to_numpy()]
        chosen = rng.permutation(len(rows))[:n]
        picks.append(rows.iloc[np.sort(chosen)].assign(outcome=outcome))
    return pd.concat(picks, ignore_index=True)


def against_panel(scored: pd.DataFrame) -> pd.DataFrame:
    """The triplets with a clear majority on which the model chooses (no tie) the other candidate."""
    clear = decided(scored[leans_clearly(scored["p"])])
    return clear[(clear["model_choice"] != 0.5) & (clear["model_choice"] != (clear["p"] > 0.5))]


# --- What the synthesis reads (registry.Summary). ---

def summary_columns(table: pd.DataFrame, distance: str | None, path) -> pd.DataFrame | None:
    """Per checkpoint: two_afc_dataset, two_afc_score with two_afc_score_lo/_hi — the overall score (subset
    ``all``) at ``distance`` when the table holds it, else at the table's only distance; None without rows."""
    table = table[table["subset"] == "all"]
    if table.empty:
        return None
    # The synthesis' IQA distance when the similarity step measured it too, else the step's own one.
    wanted = distance if distance in set(table["distance"]) else None
    table = table[table["distance"] == pick_distance(table, wanted, path)]
    return table.rename(columns={"score": "two_afc_score", "score_lo": "two_afc_score_lo",
                                 "score_hi": "two_afc_score_hi", "dataset": "two_afc_dataset"})[
        ["checkpoint", "two_afc_dataset", "two_afc_score", "two_afc_score_lo", "two_afc_score_hi"]]
