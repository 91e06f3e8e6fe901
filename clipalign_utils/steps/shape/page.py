"""The sentences and figures of the shape page (its measurement: :mod:`.analysis`)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ...checkpoints import Run
from ...data.cue_conflict import HUMAN_SHAPE_BIAS, HUMAN_SHAPE_BIAS_SOURCE
from ...data.registry import dataset_phrase
from ...metrics.shape_bias import texture_then_shape
from ...metrics.tradeoff import at_chance
from ...plots.shape_bias import cue_conflict_examples, decision_titles, per_class_panel, shape_bias_curve
from ...prose import counted

from .analysis import ShapeData, _early_and_last, conflicting, every_at_chance, example_indices, predictions


def data_sentences(run: Run, data: ShapeData, params: dict | None = None) -> list[str]:
    """What the page evaluates: the run's checkpoints, the images, the templates and how a decision is made."""
    cue = data.cue
    lines = [f"{counted(len(run.checkpoints), 'checkpoint')} of {run.model_name}; {dataset_phrase(cue.name)}: "
             f"{len(cue)} images, "
             f"{cue.n_conflicting} with conflicting cues, {len(cue.classnames)} "
             f"{'class' if len(cue.classnames) == 1 else 'classes'}, {counted(len(data.templates), 'prompt template')}"]
    if cue.shape_sources is not None:
        lines.append(f"the images reuse {counted(len(set(cue.shape_sources)), 'object')} and "
                     f"{counted(len(set(cue.texture_sources)), 'texture image')}: the shape bias' interval resamples "
                     "those, not the images (images that share one are decided alike)")
    if params is not None and params["shape_classifier"] == "imagenet":
        lines.append("decisions as model-vs-human makes them for CLIP: a zero-shot head over ImageNet's 1,000 classes, "
                     "the softmax of 100 × cosine averaged over each category's ImageNet classes, the highest "
                     "category (so comparable with its published CLIP shape biases)")
    return lines


def human_label(data: ShapeData) -> str:
    """The legend of the human line: a measurement on Geirhos' stimuli, only a mark elsewhere."""
    return ("humans, Geirhos et al. 2019" if data.cue.name == "geirhos"
            else "humans on Geirhos' stimuli (not this world)")


def curve_figure(data: ShapeData, tables: dict[str, pd.DataFrame]):
    """Shape bias over training with its bootstrap band and the human reference."""
    return shape_bias_curve(tables["shape_bias"], HUMAN_SHAPE_BIAS, human_label(data), log_x=True)


def reference_sentences() -> list[str]:
    """Where the human reference comes from."""
    return [f"human reference: {HUMAN_SHAPE_BIAS:g} — literature value ({HUMAN_SHAPE_BIAS_SOURCE}), "
            "not computed here"]


# --- the texture-then-shape shift --------------------------------------------------------------

def _decisions(row: pd.Series) -> str:
    """' over k cue decisions' (what the shape bias is a ratio of); nothing for tables written before it."""
    n = row.get("n_cue_decisions")
    return "" if pd.isna(n) else f" over {counted(int(n), 'cue decision')} of {int(row['n_images'])} images"


# Columns of shape_bias.csv the page leaves out of its table (the classifier's settings, the chance level's terms).
UNSHOWN = ["model", "n_templates", "cue_fraction_lo", "cue_fraction_hi", "cue_chance", "classifier"]


def shown_table(shape_bias: pd.DataFrame) -> pd.DataFrame:
    """shape_bias.csv as the page shows it: without the UNSHOWN columns, rounded to 3 decimals."""
    return shape_bias.drop(columns=UNSHOWN, errors="ignore").round(3)


def chance_sentences(shape_bias: pd.DataFrame) -> list[str]:
    """Which checkpoints' decisions are at chance on the cue-conflict images (the share of images decided
    for the shape or the texture class no better than guessing gives): left out of the shift below and of
    the synthesis' trend. Nothing for a table without the judgement."""
    if "shape_at_chance" not in shape_bias.columns:
        return []
    table = shape_bias.sort_values("epoch")
    flagged = table[at_chance(table, "shape_bias")]
    chance = table["cue_chance"].iloc[0]
    if flagged.empty:
        return [f"every checkpoint decides for a cue above chance (the interval of the share of images decided "
                f"for the shape or the texture class lies above {chance:.3f}, two of {round(2 / chance)} classes"
                f"{_lowest_lower_end(table)})"]
    # the verdict reads the interval's lower end, not the share itself (the table's shape + texture fractions)
    epochs = ", ".join(f"{row['epoch']:g}{_lower_end(row)}" for _, row in flagged.iterrows())
    above = len(table) - len(flagged)
    return [f"at chance on the cue-conflict images (the lower end of the interval of the share decided for the shape "
            f"or the texture class does not lie above {chance:.3f}, two of {round(2 / chance)} classes): "
            f"epoch {epochs}; their shape bias describes guessing, and the shift below and the synthesis' trend "
            + ("leave them out" if above else "have no checkpoint left to read")]


def _lower_end(row: pd.Series) -> str:
    """' (lower end 0.179)': the number a checkpoint's at-chance verdict rests on (none in a table without it)."""
    low = row.get("cue_fraction_lo")
    return "" if pd.isna(low) else f" (lower end {low:.3f})"


def _lowest_lower_end(table: pd.DataFrame) -> str:
    """'; its lowest lower end 0.312': the number the above-chance verdict rests on (none in a table without it)."""
    low = table["cue_fraction_lo"].min() if "cue_fraction_lo" in table.columns else float("nan")
    return "" if pd.isna(low) else f"; its lowest lower end {low:.3f}"


def _end_label(shape_bias: pd.DataFrame, row: pd.Series, end: str) -> str:
    """"first checkpoint" / "last checkpoint" (``end``), or "… above chance" when ``row`` is not the table's
    first or last: the ones beyond it are left out as at chance (``texture_then_shape``)."""
    extreme = shape_bias["epoch"].min() if end == "first" else shape_bias["epoch"].max()
    return f"{end} checkpoint" + ("" if row["epoch"] == extreme else " above chance")


NO_SHIFT = ("texture-then-shape shift: none to read (every checkpoint is at chance on the cue-conflict images; "
            "their shape biases describe guessing)")


def shift_sentences(shape_bias: pd.DataFrame) -> list[str]:
    """The first checkpoint, the texture phase (lowest shape bias before the last checkpoint) and the
    last one (of those above chance where the table says), the three conditions of ``texture_then_shape``
    and the verdict, and the last checkpoint against the human reference; only :data:`NO_SHIFT` when every
    checkpoint is at chance."""
    if every_at_chance(shape_bias):
        return [NO_SHIFT]
    shift = texture_then_shape(shape_bias)
    first, early, last = shift["first"], shift["texture_phase"], shift["last"]
    last_label = _end_label(shape_bias, last, "last")
    lines = [
        f"{_end_label(shape_bias, first, 'first')} (epoch {first['epoch']:g}): shape bias {first['shape_bias']:.3f}"
        f"{_decisions(first)}",
        f"lowest before the end: epoch {early['epoch']:g}, shape bias {early['shape_bias']:.3f} "
        f"[{early['lo']:.3f}, {early['hi']:.3f}]{_decisions(early)}",
        f"{last_label} (epoch {last['epoch']:g}): shape bias {last['shape_bias']:.3f} "
        f"[{last['lo']:.3f}, {last['hi']:.3f}]{_decisions(last)}",
    ]
    return lines + [
        f"the lowest {'leans' if shift['texture_phase_leans_texture'] else 'does not lean'} towards texture (below 0.5); "
        f"the last {'leans' if shift['last_leans_shape'] else 'does not lean'} towards shape (above 0.5); their "
        f"intervals {'are' if shift['separated'] else 'are not'} separated",
        f"texture-then-shape shift shows: {'yes' if shift['shift_shows'] else 'no'}",
        ("last checkpoint's shape bias" if last_label == "last checkpoint" else f"{last_label}: its shape bias")
        + f" minus the human reference's ({HUMAN_SHAPE_BIAS:.2f}): {last['shape_bias'] - HUMAN_SHAPE_BIAS:+.3f}",
    ]


def trend_sentences(data: ShapeData, trends: pd.DataFrame) -> list[str]:
    """The texture bias' course over the run: the step's paired trend test (``trends``: shape_trend,
    ``analysis.texture_bias_trend``), ρ with its interval and which way it points."""
    trend = trends[trends["measure"] == "texture_bias"].iloc[0]
    over = f"over {counted(int(trend['n_checkpoints']), 'checkpoint')} above chance"
    if not np.isfinite(trend["spearman"]):
        return [f"texture bias over training: no trend to read {over} (a trend needs 3, and a texture bias that "
                "changes)"]
    resampled = "objects and texture images" if data.cue.shape_sources is not None else "images"
    if not (np.isfinite(trend["lo"]) and np.isfinite(trend["hi"])):
        return [f"texture bias {over}: Spearman ρ(epoch, texture bias) = {trend['spearman']:.2f}, no interval (the "
                f"resampled {resampled} rarely define ρ)"]
    moves = "falls" if trend["hi"] < 0 else "rises" if trend["lo"] > 0 else "shows no clear trend"
    return [f"texture bias {over} {moves}: Spearman ρ(epoch, texture bias) = {trend['spearman']:.2f} "
            f"[{trend['lo']:.2f}, {trend['hi']:.2f}], the interval resampling the {resampled} alike at every "
            "checkpoint (this run's course; training's own noise needs seeds)"]


def fraction_sentences(shape_bias: pd.DataFrame) -> list[str]:
    """Shape, texture and neither fractions of the first, texture-phase and last checkpoints (each once; no
    texture phase when every checkpoint is at chance, as the per-class figure)."""
    first = texture_then_shape(shape_bias)["first"]
    rows = {row.name: row for row in (first, *_early_and_last(shape_bias))}
    return [f"epoch {row['epoch']:g}: shape {row['shape_fraction']:.3f}, texture {row['texture_fraction']:.3f}, "
            f"neither {row['neither_fraction']:.3f}" for row in rows.values()]


def per_class_figure(data: ShapeData, tables: dict[str, pd.DataFrame]):
    """The per-class panel of the texture-phase checkpoint and the last one (the first and the last, hollow,
    when every checkpoint is at chance), with the human reference."""
    shape_bias = tables["shape_bias"]
    early, last = _early_and_last(shape_bias)
    panel_checkpoints = list(dict.fromkeys([early["checkpoint"], last["checkpoint"]]))
    epochs = shape_bias.set_index("checkpoint")["epoch"]
    return per_class_panel(tables["shape_bias_per_class"], shape_bias, panel_checkpoints,
                           [f"epoch {epochs.loc[c]:g}" for c in panel_checkpoints], HUMAN_SHAPE_BIAS,
                           human_label(data))


def per_class_sentences(tables: dict[str, pd.DataFrame]) -> list[str]:
    """How many classes the last checkpoint (above chance) classifies by shape more often than by texture; that
    the figure's checkpoints are at chance (the first and the last) when every checkpoint is."""
    first, last = _early_and_last(tables["shape_bias"])
    per_class = tables["shape_bias_per_class"]
    if every_at_chance(tables["shape_bias"]):
        shown = (f"the one checkpoint (epoch {last['epoch']:g}), no texture phase, and its classes'"
                 if first["checkpoint"] == last["checkpoint"] else
                 f"the first and the last (epoch {first['epoch']:g} and {last['epoch']:g}), no texture phase, and "
                 "their classes'")
        return [f"every checkpoint is at chance on the cue-conflict images: the figure shows {shown} shape biases "
                "describe guessing"] + _empty_rows(per_class, [first, last])
    final_classes = per_class[per_class["checkpoint"] == last["checkpoint"]]
    label = _end_label(tables["shape_bias"], last, "last")
    if label != "last checkpoint":
        label += f" (epoch {last['epoch']:g})"
    return [f"{label}: classes with shape bias > 0.5: {(final_classes['shape_bias'] > 0.5).sum()} of "
            f"{final_classes['shape_bias'].notna().sum()} with cue decisions"] + _empty_rows(per_class, [first, last])


def _empty_rows(per_class: pd.DataFrame, shown: list[pd.Series]) -> list[str]:
    """Per checkpoint the figure shows (``shown``: shape_bias.csv rows), the classes with no cue decision there
    (every answer matched neither cue): their rows have no marker of that checkpoint."""
    lines = []
    for row in {checkpoint["checkpoint"]: checkpoint for checkpoint in shown}.values():
        rows = per_class[per_class["checkpoint"] == row["checkpoint"]]
        empty = rows.loc[rows["shape_bias"].isna(), "class"].astype(str).tolist()
        if empty:
            whose = "its row has" if len(empty) == 1 else "their rows have"
            lines.append(f"epoch {row['epoch']:g}: no cue decision for {', '.join(empty)} (every answer matched "
                         f"neither cue), so {whose} no epoch {row['epoch']:g} marker")
    return lines


# --- examples ----------------------------------------------------------------------------------

def examples_figure(data: ShapeData, tables: dict[str, pd.DataFrame]):
    """Evenly spaced conflicting images titled with their cues and the decisions of the texture-phase
    checkpoint and the last one (the first and the last when every checkpoint is at chance)."""
    early, last = _early_and_last(tables["shape_bias"])
    cue, picked = data.cue, example_indices(data)
    titles = decision_titles(cue.shape_labels[picked], cue.texture_labels[picked],
                             [predictions(tables, early["checkpoint"])[picked],
                              predictions(tables, last["checkpoint"])[picked]],
                             cue.classnames, cue.texture_names)
    return cue_conflict_examples(cue.example_images(picked), titles,
                                 suptitle=f"shape·texture → epoch {early['epoch']:g} | epoch {last['epoch']:g}")


def agreement_sentences(data: ShapeData, tables: dict[str, pd.DataFrame]) -> list[str]:
    """How often the texture-phase checkpoint and the last one give the same answer; when every checkpoint is at
    chance (the first and the last shown), that their agreement describes guessing."""
    early, last = _early_and_last(tables["shape_bias"])
    if early["checkpoint"] == last["checkpoint"]:
        return [f"one checkpoint to show ({last['checkpoint']}): the others are at chance or there is no other"]
    agree = (predictions(tables, early["checkpoint"]) == predictions(tables, last["checkpoint"]))[conflicting(data)]
    if every_at_chance(tables["shape_bias"]):  # a guesser may name one class for every image: agreement of guesses
        return [f"every checkpoint is at chance on the cue-conflict images: the first and the last (epoch "
                f"{early['epoch']:g} and {last['epoch']:g}) give the same answer on {agree.mean():.0%} of the "
                "conflicting images, which describes guessing, not a cue they share"]
    return [f"the two checkpoints give the same answer on {agree.mean():.0%} of the conflicting images"]
