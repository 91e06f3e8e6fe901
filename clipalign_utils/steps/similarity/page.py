"""The sentences and figures of the similarity page (its measurement: :mod:`.analysis`)."""
from __future__ import annotations


import pandas as pd

from ...checkpoints import Run
from ...data.registry import dataset_phrase, display_name
from ...data.two_afc import TwoAFCData
from ...metrics.iqa import peak_summary
from ...metrics.peak import EARLY_FRACTION
from ...metrics.two_afc import panel_agreement
from ...plots.iqa import layer_heatmap
from ...plots.two_afc import score_curve, triplet_examples
from ...prose import (ONE_CHECKPOINT, best_layer_sentences, chance_reading, counted, early_peak_test_sentences,
                      fixed, no_peak_where_at_chance)
from ..iqa.page import reversed_sentence
from . import STEP

from .analysis import against_panel, ceiling, example_checkpoints, example_triplets, overall, scored_triplets

CHANCE = STEP.summary.chance  # the 2AFC score of a coin flip (the step's registration: one place)


def data_sentences(run: Run, params: dict, data: TwoAFCData) -> list[str]:
    """What the page evaluates: the run's checkpoints, the set (with the split and protocol it was read with, where
    it has them), its subsets and the distance."""
    subsets = data.triplets["subset"].value_counts().sort_index().items()
    chosen = ", ".join(f"{option} {value}" for option, value in (("split", data.split), ("protocol", data.protocol))
                       if value is not None)
    return [f"{counted(len(run.checkpoints), 'checkpoint')} of {run.model_name}; {dataset_phrase(data.name)}"
            + (f" ({chosen})" if chosen else "") + f": {len(data)} triplets in subsets "
            + ", ".join(f"{name} ({count})" for name, count in subsets) + f"; distance: {params['distance']}"]


# --- the judges --------------------------------------------------------------------------------

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
    return triplet_examples(reference, first, second, labels, suptitle=f"{display_name(data.name)} triplets")


# --- every checkpoint --------------------------------------------------------------------------

def curve_figure(data: TwoAFCData, tables: dict[str, pd.DataFrame]):
    """The score over training per subset, with chance and the judges' ceiling."""
    two_afc = tables["two_afc"]
    return score_curve(two_afc, ceiling=ceiling(data),
                       ceiling_label="ceiling (panel majority)" if data.panel else "ceiling (people's majority)",
                       title=f"2AFC agreement with {display_name(data.name)} judges "
                             f"({two_afc['distance'].iloc[0]} distance)")


def curve_sentences(data: TwoAFCData, tables: dict[str, pd.DataFrame]) -> list[str]:
    """The score at the first checkpoint, its peak, the last checkpoint with its interval against chance
    and the ceiling, and the share of the gap from chance to the ceiling the last checkpoint closes."""
    scores, top, chance = overall(tables), ceiling(data), CHANCE
    peak, final = peak_summary(scores["epoch"], scores["score"]), scores.iloc[-1]
    if len(scores) == 1:  # one checkpoint: no curve, so no peak to name
        lines = [f"one checkpoint (epoch {final['epoch']:g}): 2AFC score {final['score']:.3f} "
                 f"[{final['score_lo']:.3f}, {final['score_hi']:.3f}]; chance {chance:g}, ceiling {top:.3f}; "
                 f"{ONE_CHECKPOINT}"]
    else:
        lines = [f"2AFC score at the first checkpoint (epoch {scores['epoch'].iloc[0]:g}): "
                 f"{scores['score'].iloc[0]:.3f}",
                 f"peak at epoch {peak['peak_epoch']:g}: {peak['peak_value']:.3f}; last checkpoint (epoch "
                 f"{final['epoch']:g}): {final['score']:.3f} [{final['score_lo']:.3f}, {final['score_hi']:.3f}]; "
                 f"chance {chance:g}, ceiling {top:.3f}"]
    no_peak = _no_peak(scores)
    if no_peak:
        lines.append(no_peak)
    return lines + [_closure_sentence((final["score"] - chance) / (top - chance), final["score_lo"],
                                      final["score_hi"], chance) if top > chance
                    else "the judges are split on every triplet: the ceiling is chance"]


def _closure_sentence(closed: float, lo: float = float("nan"), hi: float = float("nan"),
                      chance: float = 0.5) -> str:
    """The share of the gap from chance to the ceiling the last checkpoint closes, read with its interval
    [lo, hi]: where the interval contains chance the last checkpoint is not distinguishable from it (a share
    would read as a distance that noise made); below chance (its interval below it, or no interval) it closes
    none ("closes -11%" read as a slip), and the sentence says how far below it lies."""
    if chance_reading([lo], [hi], chance) == "at chance":
        return (f"the last checkpoint is not distinguishable from chance: its interval [{lo:.3f}, {hi:.3f}] contains "
                f"{chance:g}")
    if closed < 0:
        return f"the last checkpoint lies below chance, by {-closed:.0%} of the gap from chance to the ceiling"
    return f"the last checkpoint closes {closed:.0%} of the gap from chance to the ceiling"


def early_peak_sentences(tables: dict[str, pd.DataFrame]) -> list[str]:
    """The paired early-peak test of the overall score (two_afc_peak), as page 2 reads the SRCC's."""
    scores = overall(tables)
    test = tables["two_afc_peak"].iloc[0]
    return early_peak_test_sentences(test, "2AFC score", "triplet", EARLY_FRACTION,
                                     peak_summary(scores["epoch"], scores["score"])["peak_epoch"],
                                     no_peak=_no_peak(scores))


def _no_peak(scores: pd.DataFrame) -> str:
    """That the overall 2AFC score (``scores``) has no peak to read where every checkpoint's interval holds
    chance."""
    measured = scores.dropna(subset=["score"])
    return no_peak_where_at_chance("the 2AFC score", measured.get("score_lo"), measured.get("score_hi"), CHANCE)


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
    if len(scores) == 1:
        return []  # one checkpoint: no peaks to compare
    peak, iqa_peak = peak_summary(scores["epoch"], scores["score"]), peak_summary(iqa["epoch"], iqa["srcc"])
    reverse = reversed_sentence(iqa)
    return [f"IQA SRCC peaks at epoch {iqa_peak['peak_epoch']:g} ({iqa_peak['peak_value']:.3f}) and ends "
            f"{fixed(iqa_peak['drop_from_peak'])} below it" + (f" ({reverse})" if reverse else "")
            + f"; the 2AFC score peaks at epoch {peak['peak_epoch']:g} "
            f"({peak['peak_value']:.3f}) and ends {fixed(peak['drop_from_peak'])} below it: "
            + ("the same checkpoint" if iqa_peak["peak_epoch"] == peak["peak_epoch"] else "different checkpoints")]


# --- which layer -------------------------------------------------------------------------------

def layer_figure(tables: dict[str, pd.DataFrame]):
    """Every vision block's overall 2AFC score over training (two_afc_layers), chance in the middle of the
    colour scale; None when only the embedding was scored."""
    if "two_afc_layers" not in tables:
        return None
    return layer_heatmap(tables["two_afc_layers"], "score", scale=(0, 1, 0.5), label="2AFC score")


def layer_sentences(tables: dict[str, pd.DataFrame]) -> list[str]:
    """The vision block that agrees most with the judges at each checkpoint (two_afc_layers), with its
    interval, or that only the embedding was scored."""
    return best_layer_sentences(tables.get("two_afc_layers"), "score", "2AFC score", "most agreeing",
                                tables.get("two_afc_best_block"))


# --- right and wrong ---------------------------------------------------------------------------

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
        epoch = f"epoch {rows['epoch'].iloc[0]:g}"
        # a checkpoint named for its epoch ("epoch_2") is named once; another name is kept beside its epoch
        named = epoch if name == epoch.replace(" ", "_") else f"{name}, {epoch}"
        figures[f"two_afc_examples_{label}"] = triplet_examples(
            reference, first, second, example_titles(examples), suptitle=f"{label} checkpoint ({named})")
    return figures


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


def reading_sentences(data: TwoAFCData, params: dict) -> list[str]:
    """What the score can and cannot say, for the set the page read: the embedded set's panel of metrics,
    or people's judgments on BAPPS (low-level) and NIGHTS (mid-level)."""
    if data.panel:
        return ["on the embedded set the score measures agreement with a panel of low-level metrics on low-level "
                "damage: how closely the embedding's notion of \"closer\" follows what classical models of human "
                "vision say about noise, blur, compression and colour, not what people say, and not mid-level "
                "similarity; a model can score well here and still judge layout, pose or object identity unlike "
                "people",
                "that is the mid-level question, and it needs people's 2AFC judgments on mid-level variations, which "
                "NIGHTS provides: run with `-p similarity_dataset=nights -p similarity_root=PATH` (and "
                "`-p similarity_protocol=votes6` for the triplets DreamSim reports)"]
    if data.name == "nights":
        protocol = ("every triplet of the split" if params["similarity_protocol"] == "all" else
                    "the triplets with at least 6 votes, the set DreamSim reports")
        lines = ["on NIGHTS the score is agreement with people's votes on mid-level variations (layout, pose, "
                 "colour, object identity): the mid-level question of the paper's second version",
                 f"protocol `{params['similarity_protocol']}`: {protocol} (scores under the two protocols are not "
                 "comparable with each other)"]
    else:
        lines = [f"on {display_name(data.name)} the score is agreement with "
                 "people's 2AFC judgments, each triplet weighted by the share of people who chose as the model did; "
                 "its ceiling is the people's own agreement"]
    return lines + [_resize_sentence(params["iqa_resize"], getattr(data, "resize_mode", None))]


# what each resolved iqa_resize shows the model, and so what a score says (data.iqa.resolve_resize)
SEEN = {"patches": "native-resolution patches, so a score says how it judges local detail",
        "crop": "each image's shorter side resized to its input and the middle cropped, so a score says how it "
                "judges the whole scene at its input size",
        "resize": "each whole image squashed to its input, nothing cut, so a score says how it judges the whole "
                  "scene at its input size"}


def _resize_sentence(asked: str, resolved: str | None) -> str:
    """How the model met the images (``iqa_resize`` as asked and, for ``auto``, what it resolved to for this
    run's input size: ``TwoAFCData.resize_mode``)."""
    mode = resolved or asked
    said = f"`iqa_resize={asked}`" + (f", here `{mode}`" if mode != asked else "")
    return (f"the model sees the images as the IQA step does ({said}): "
            + (SEEN[mode] if mode in SEEN else "as the IQA step resolves it for the model's input size"))
