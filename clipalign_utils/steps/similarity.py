"""The ``similarity`` step: 2AFC agreement of every checkpoint of a run with the judges of a triplet set.

For each checkpoint the reference, p0 and p1 images are embedded once (cached), both distances of every
triplet are measured, and the model's choices are scored against the judges' (``two_afc.csv``, and every
triplet's distances and score in ``two_afc_per_triplet.csv``); the sentences the page says about them and
the figures it shows (example triplets the model gets right and wrong among them) are built here.
"""

from __future__ import annotations


import numpy as np
import pandas as pd

from ..record import records_evaluation_sets
from ..config import bootstrap_seed
from ..metrics.peak import mean_peak_test
from ..checkpoints import Run
from ..data.two_afc import TwoAFCData, load_two_afc
from ..encoder import run_encoders
from ..metrics.iqa import pair_distances, peak_summary
from ..metrics.two_afc import panel_agreement, two_afc_ceiling, two_afc_scores, two_afc_table
from ..plots.two_afc import score_curve, triplet_examples
from ..registry import TWO_AFC

CSV_COLUMNS = list(TWO_AFC.columns)  # the registry's schema of two_afc.csv
# two_afc_per_triplet.csv: every triplet (row of data.triplets) scored at every checkpoint.
PER_TRIPLET_COLUMNS = ["checkpoint", "epoch", "triplet", "d0", "d1", "model_choice", "score"]
CLEAR_MARGIN = 0.2  # "the judges lean clearly one way": |p − ½| at least this


@records_evaluation_sets("similarity")  # the run's record keeps a content hash of what was loaded
def load(run: Run, params: dict) -> TwoAFCData:
    """The triplet set of params' ``similarity_dataset`` (root, protocol, split, ``iqa_resize``): the
    embedded one at the world's ``image_size`` (``seed``, ``texture_scale``), a real one at the run's input size."""
    embedded = params["similarity_dataset"] == "embedded"
    return load_two_afc(params["similarity_dataset"], params["similarity_root"], protocol=params["similarity_protocol"],
                        split=params["similarity_split"],
                        image_size=params["image_size"] if embedded else run.image_size, seed=params["eval_seed"],
                        texture_scale=params["texture_scale"], resize=params["iqa_resize"])


def data_sentences(run: Run, params: dict, data: TwoAFCData) -> list[str]:
    """What the page evaluates: the run's checkpoints, the set, its subsets and the distance."""
    subsets = data.triplets["subset"].value_counts().sort_index().items()
    return [f"{len(run.checkpoints)} checkpoints of {run.model_name}; dataset {data.name} (split {data.split}, "
            f"protocol {data.protocol}): {len(data)} triplets in subsets "
            + ", ".join(f"{name} ({count})" for name, count in subsets) + f"; distance: {params['distance']}"]


# --- the judges --------------------------------------------------------------------------------

def ceiling(data: TwoAFCData) -> float:
    """The best mean 2AFC score any model can reach against these judges: mean(max(p, 1 − p))."""
    return two_afc_ceiling(data.triplets["p"])


def judge_sentences(data: TwoAFCData) -> list[str]:
    """Who judged and how much they agree: the panel's pairwise agreement, unanimity and ceiling (with a
    reminder that it is not people), or the people's ceiling."""
    lines = [f"judges: {data.ground_truth}"]
    if not data.panel:
        return lines + [f"ceiling (always choosing the people's majority): {ceiling(data):.3f}"]
    panel = panel_agreement(data.panel_choices(), data.panel)
    return lines + [f"panel of {panel['n_members']}: pairwise agreement {panel['pairwise_agreement']:.3f}, "
                    f"unanimous on {panel['unanimous_fraction']:.1%} of triplets; ceiling {panel['ceiling']:.3f}",
                    "these are metrics, not people: a model agreeing with the panel agrees with low-level models "
                    "of people"]


def panel_table(data: TwoAFCData) -> pd.DataFrame:
    """How often each pair of panel members chooses alike (rounded for the page); empty for people."""
    if not data.panel:
        return pd.DataFrame(columns=["member_a", "member_b", "agreement"])
    return panel_agreement(data.panel_choices(), data.panel)["pairwise"].round(3)


def vote_sentences(data: TwoAFCData) -> list[str]:
    """How many triplets have each share p of judges choosing p1."""
    shares = data.triplets["p"].round(2).value_counts().sort_index().items()
    return ["share of judges choosing p1: " + ", ".join(f"{p:g}: {n}" for p, n in shares)]


def damage(row) -> str:
    """The two kinds of damage of an embedded triplet, with their levels (e.g. "gaussian blur 2 vs jpeg 3")."""
    return (f"{row.distortion0.replace('_', ' ')} {row.level0} vs "
            f"{row.distortion1.replace('_', ' ')} {row.level1}")


def triplets_figure(data: TwoAFCData, seed: int):
    """Up to four triplets drawn at random (``seed``), each row labelled with p and what the candidates are."""
    shown = data.triplets.sample(n=min(4, len(data)), random_state=seed).index
    reference, first, second = data.images(shown)
    labels = [f"p(p1 closer) = {row.p:.2f}\n" + (damage(row) if data.name == "embedded" else f"{row.subset}")
              for row in data.triplets.loc[shown].itertuples()]
    return triplet_examples(reference, first, second, labels, suptitle=f"{data.name} triplets")


# --- every checkpoint --------------------------------------------------------------------------

def triplet_distances(encoder, data, distance: str = "cosine") -> tuple[np.ndarray, np.ndarray]:
    """(d0, d1): the embedding distances of p0 and p1 to the reference, one pair per triplet (the mean
    over patches at the same positions when the images are tiled)."""
    ref = encoder.encode_images(data.ref)
    index = np.arange(len(data))
    return tuple(pair_distances(ref, encoder.encode_images(candidates), index, index, distance,
                                data.patches_per_image) for candidates in (data.p0, data.p1))


def score_triplets(triplets: pd.DataFrame, d0: np.ndarray, d1: np.ndarray) -> pd.DataFrame:
    """``triplets`` with d0, d1, model_choice (1 = p1 closer, 0 = p0, 0.5 = tie) and score (per-triplet 2AFC)."""
    d0, d1 = np.asarray(d0, dtype=float), np.asarray(d1, dtype=float)
    return triplets.assign(d0=d0, d1=d1, model_choice=np.where(d1 < d0, 1.0, np.where(d0 < d1, 0.0, 0.5)),
                           score=two_afc_scores(d0, d1, triplets["p"].to_numpy()))


def measure(run: Run, params: dict, data: TwoAFCData | None = None) -> dict[str, pd.DataFrame]:
    """Every checkpoint of ``run`` on the triplets (``data``, default ``load(run, params)``) at params'
    ``distance``: {"two_afc": one row per checkpoint × subset (``all`` = every triplet): score, the mean
    2AFC score of :func:`~clipalign_utils.metrics.two_afc.two_afc_table`, with its percentile bootstrap
    interval over triplets (``n_boot``, ``seed``); "two_afc_per_triplet": checkpoint × triplet, both
    distances, the model's choice and the triplet's score; "two_afc_peak": the paired early-peak test of the
    overall score (``metrics.peak.mean_peak_test``, resampling triplets)}. Embeddings go through the run's cache."""
    data = load(run, params) if data is None else data
    distance = params["distance"]
    rows, per_triplet = [], []
    for checkpoint, encoder in run_encoders(run, params["device"], params["eval_batch_size"],
                                            cache_dir=run.layout.cache, progress=False):
        d0, d1 = triplet_distances(encoder, data, distance)
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
    # The synthesis' peak claim: the paired early-peak test of the overall score, resampling triplets.
    peak = mean_peak_test(per_triplet, "score", "triplet", n_boot=params["n_boot"], seed=bootstrap_seed(params))
    return {"two_afc": pd.concat(rows, ignore_index=True)[CSV_COLUMNS], "two_afc_per_triplet": per_triplet,
            "two_afc_peak": pd.DataFrame([{"dataset": data.name, "distance": distance, **peak}])}


def overall(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The ``all`` rows of two_afc.csv (every triplet), one per checkpoint."""
    two_afc = tables["two_afc"]
    return two_afc[two_afc["subset"] == "all"].reset_index(drop=True)


def score_table(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The overall score per checkpoint as the page shows it: checkpoint, epoch, score, interval, n."""
    return overall(tables).drop(columns=["dataset", "distance", "subset"]).round(3)


# --- over training -----------------------------------------------------------------------------

def curve_figure(data: TwoAFCData, tables: dict[str, pd.DataFrame]):
    """The score over training per subset, with chance and the judges' ceiling."""
    two_afc = tables["two_afc"]
    return score_curve(two_afc, ceiling=ceiling(data),
                       ceiling_label="ceiling (panel majority)" if data.panel else "ceiling (people's majority)",
                       title=f"2AFC agreement with {data.name} judges ({two_afc['distance'].iloc[0]} distance)")


def curve_sentences(data: TwoAFCData, tables: dict[str, pd.DataFrame]) -> list[str]:
    """The score at the first checkpoint, its peak, the last checkpoint with its interval against chance
    and the ceiling, and the share of the gap from chance to the ceiling the last checkpoint closes."""
    scores, top = overall(tables), ceiling(data)
    peak, final = peak_summary(scores["epoch"], scores["score"]), scores.iloc[-1]
    return [f"2AFC score at the first checkpoint (epoch {scores['epoch'].iloc[0]:g}): {scores['score'].iloc[0]:.3f}",
            f"peak at epoch {peak['peak_epoch']:g}: {peak['peak_value']:.3f}; last checkpoint (epoch "
            f"{final['epoch']:g}): {final['score']:.3f} [{final['score_lo']:.3f}, {final['score_hi']:.3f}]; "
            f"chance 0.5, ceiling {top:.3f}",
            f"the last checkpoint closes {(final['score'] - 0.5) / (top - 0.5):.0%} of the gap from chance to the "
            "ceiling" if top > 0.5 else "the judges are split on every triplet: the ceiling is chance"]


def iqa_sentences(run: Run, params: dict, tables: dict[str, pd.DataFrame]) -> list[str]:
    """Where the IQA step's SRCC (its iqa.csv, at params' ``distance``) and the 2AFC score peak and how far
    each ends below its peak; what to run when the run holds no such rows."""
    iqa_table = run.layout.table("iqa")
    if not iqa_table.exists():
        return ["no iqa.csv in this run: run the iqa step to compare the two curves"]
    iqa = pd.read_csv(iqa_table).query("distortion == 'all'")
    iqa = iqa[iqa["distance"] == params["distance"]]
    if not len(iqa):
        return [f"iqa.csv holds no {params['distance']} rows: run the iqa step with this distance to compare"]
    scores = overall(tables)
    peak, iqa_peak = peak_summary(scores["epoch"], scores["score"]), peak_summary(iqa["epoch"], iqa["srcc"])
    return [f"IQA SRCC peaks at epoch {iqa_peak['peak_epoch']:g} ({iqa_peak['peak_value']:.3f}) and ends "
            f"{iqa_peak['drop_from_peak']:.3f} below it; the 2AFC score peaks at epoch {peak['peak_epoch']:g} "
            f"({peak['peak_value']:.3f}) and ends {peak['drop_from_peak']:.3f} below it: "
            + ("the same checkpoint" if iqa_peak["peak_epoch"] == peak["peak_epoch"] else "different checkpoints")]


# --- right and wrong ---------------------------------------------------------------------------

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


def example_triplets(scored: pd.DataFrame, n: int = 3, seed: int = 0, min_margin: float = CLEAR_MARGIN
                     ) -> pd.DataFrame:
    """Up to ``n`` triplets the model gets right and ``n`` it gets wrong, from one checkpoint's
    :func:`score_triplets` rows, with an ``outcome`` column (right | wrong).

    Only triplets whose judges lean clearly one way (|p − ½| ≥ ``min_margin``) are candidates: "right"
    means the model picks the judges' majority candidate, "wrong" the other one. Drawn at random
    (``seed``), shown in triplet order.
    """
    clear = scored[(scored["p"] - 0.5).abs() >= min_margin]
    majority = (clear["p"] > 0.5).astype(float)
    rng = np.random.default_rng(seed)
    picks = []
    for outcome, mask in (("right", clear["model_choice"] == majority),
                          ("wrong", (clear["model_choice"] != majority) & (clear["model_choice"] != 0.5))):
        rows = clear[mask.to_numpy()]
        chosen = rng.permutation(len(rows))[:n]
        picks.append(rows.iloc[np.sort(chosen)].assign(outcome=outcome))
    return pd.concat(picks, ignore_index=True)


def example_titles(examples: pd.DataFrame) -> list[str]:
    """One caption per :func:`example_triplets` row: outcome, p, both distances, and what the
    candidates are (the two kinds of damage for the embedded set, subset and id for the real ones)."""
    titles = []
    for row in examples.itertuples(index=False):
        what = (damage(row) if hasattr(row, "distortion0")
                else f"{str(row.subset).replace('_', ' ')} {getattr(row, 'id', '')}")
        titles.append(f"{row.outcome}: p(p1 closer) = {row.p:.2f}\n"
                      f"d0 = {row.d0:.4f}, d1 = {row.d1:.4f}\n{what}")
    return titles


def example_figures(data: TwoAFCData, tables: dict[str, pd.DataFrame], seed: int) -> dict:
    """{figure name: figure}: at the first and the last checkpoint, three triplets the model gets right
    and three it gets wrong (drawn with ``seed``), as ``two_afc_examples_first`` / ``_last``; a checkpoint
    without a triplet with a clear majority has none."""
    figures = {}
    for label, name in example_checkpoints(tables).items():
        rows = scored_triplets(data, tables, name)
        examples = example_triplets(rows, n=3, seed=seed)
        if examples.empty:
            continue
        reference, first, second = data.images(examples["triplet"])
        figures[f"two_afc_examples_{label}"] = triplet_examples(
            reference, first, second, example_titles(examples),
            suptitle=f"{label} checkpoint ({name}, epoch {rows['epoch'].iloc[0]:g})")
    return figures


def against_panel(scored: pd.DataFrame) -> pd.DataFrame:
    """The triplets with a clear majority on which the model chooses (no tie) the other candidate."""
    clear = scored[(scored["p"] - 0.5).abs() >= CLEAR_MARGIN]
    return clear[(clear["model_choice"] != 0.5) & (clear["model_choice"] != (clear["p"] > 0.5))]


def example_sentences(data: TwoAFCData, tables: dict[str, pd.DataFrame]) -> list[str]:
    """Per example checkpoint: that it has no triplet with a clear majority, or (embedded set) how many
    clear triplets the model decides against the panel and the damage most often involved in them."""
    lines = []
    for label, name in example_checkpoints(tables).items():
        rows = scored_triplets(data, tables, name)
        if example_triplets(rows).empty:
            lines.append(f"{name}: no triplet with a clear majority")
        elif data.name == "embedded":
            wrong = against_panel(rows)
            families = wrong[["distortion0", "distortion1"]].stack().value_counts()
            lines.append(f"{label} checkpoint: {len(wrong)} clear triplets chosen against the panel; damage most "
                         f"often involved: " + ", ".join(f"{k.replace('_', ' ')} ({v})"
                                                         for k, v in families.head(3).items()))
    return lines
