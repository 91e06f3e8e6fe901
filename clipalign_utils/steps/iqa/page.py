"""The sentences and figures of the iqa page (its measurement: :mod:`.analysis`)."""
from __future__ import annotations


import pandas as pd

from ...checkpoints import Run
from ...data.iqa import IQAData
from ...data.registry import dataset_phrase, display_name
from ...model_names import run_input_size
from ...metrics.families import mark_seen
from ...metrics.iqa import EARLY_FRACTION, peak_summary
from ...plots.families import family_curves
from ...plots.iqa import alignment_curve, distance_quality_scatter, iqa_examples
from ... import registry
from ...prose import (ONE_CHECKPOINT, below_chance_sentence, best_layer_sentences, chance_reading, counted,
                      early_peak_test_sentences, fixed, no_peak_where_at_chance)

from .analysis import FAMILY_CURVES, SPLIT_BY_TRAINING, overall, seen_families


def _embedded_references(data: IQAData) -> str:
    """What the embedded set's references are: photographs scikit-image ships and renders of the held-out
    world (named world_<shape>_<texture>); "" for a real set."""
    if data.name != "embedded":
        return ""
    names = pd.unique(data.pairs["reference"])
    renders = sum(str(name).startswith("world_") for name in names)
    return f" ({len(names) - renders} photographs scikit-image ships, {renders} renders of the held-out world)"


def _native_size(data: IQAData) -> str:
    """A real set's image size as read from its files (" (512 × 384 px images)"); "" for the embedded set, made
    at the model's input size. The page's prose names no dataset's size: this says the run's."""
    if data.native_shape is None:
        return ""
    height, width = data.native_shape
    return f" ({width} × {height} px images)"


def describe_data(run: Run, data: IQAData, params: dict) -> list[str]:
    """What is scored: the run's checkpoints, the set's pairs, references, distortion types and levels, the
    distance and how images meet the model's input (and a note when they are shrunk a lot)."""
    pairs = data.pairs
    size = run_input_size(run)  # (a streamed run, or open_clip_train's without force_image_size: its model's own)
    input_size = f" ({size} px input)" if size else ""
    line = (f"{counted(len(run.checkpoints), 'checkpoint')} of {run.model_name}{input_size}; "
            f"{dataset_phrase(data.name)}{_native_size(data)}: "
            f"{len(data)} distorted images of {len(data.references) // data.patches_per_image} references"
            f"{_embedded_references(data)}, "
            f"{pairs['distortion'].nunique()} distortion types, "
            f"levels {', '.join(map(str, sorted(pairs['level'].unique())))}; distance: {params['distance']}; "
            f"iqa_resize: {data.resize_mode} ({data.patches_per_image} "
            f"{'patch' if data.patches_per_image == 1 else 'patches'} per image, "
            f"{data.scaling})")
    notes = [note for note in (data.unlisted_note, data.downsampling_note) if note]
    return [line] + absent_sentences(data) + notes


def absent_sentences(data: IQAData) -> list[str]:
    """How many reference × type × level combinations the set lacks, which, and why (when the set says)."""
    absent = data.absent()
    if absent.empty:
        return []
    grid = len(data.pairs) + len(absent)
    every_level = data.pairs["level"].nunique()

    def on(reference: str, levels: pd.Series) -> str:  # a reference, with its levels when not all are absent
        return reference if levels.nunique() == every_level else \
            f"{reference} (level {', '.join(map(str, sorted(levels.unique())))})"

    which = "; ".join(
        f"{distortion} on {', '.join(on(r, rows['level']) for r, rows in kind.groupby('reference', sort=False))}"
        for distortion, kind in absent.groupby("distortion", sort=False))
    reason = f": {data.absent_reason}" if data.absent_reason else ""
    return [f"{len(data.pairs)} of the {grid} reference × type × level combinations are scored; "
            f"{len(absent)} are absent ({which}){reason}"]


def ground_truth_sentences(data: IQAData) -> list[str]:
    """Who scored the pairs; for a reference observer, how well it agrees with people, and its source."""
    lines = [f"quality scores: {data.ground_truth}"]
    if data.observer is not None:
        lines += [f"reference observer: {data.observer}, a human-calibrated full-reference metric; "
                  f"published SRCC with TID2013's human MOS: {data.observer_srcc_tid2013:.3f}",
                  f"source: {data.observer_source}",
                  "its scores are not human judgments: an SRCC here measures agreement with this observer, "
                  "which itself agrees with people only as far as the value above says"]
    return lines


def examples_figure(data: IQAData, reference: int = 0):
    """Reference ``reference`` and one distorted version of it per distortion type (its middle level), each
    titled with its distortion, level and quality."""
    pairs = data.example_pairs(reference)
    titles = [f"{d.replace('_', ' ')}\nlevel {lv}, quality {q:.2f}"
              for d, lv, q in zip(pairs["distortion"], pairs["level"], pairs["quality"])]
    seen = (f"\n(its middle patch of {data.patches_per_image}, as the model sees it)"
            if data.resize_mode == "patches" and data.patches_per_image > 1 else "")
    return iqa_examples(data.reference_image(reference), data.distorted_images(pairs["distorted_index"]), titles,
                        reference_title=f"reference: {pairs['reference'].iloc[0]}{seen}")


def _by_level(values: pd.Series, levels: pd.Series, fmt: str) -> str:
    return ", ".join(f"level {level}: {median:{fmt}}" for level, median in values.groupby(levels).median().items())


def level_sentences(data: IQAData) -> list[str]:
    """The median quality at each distortion level."""
    return ["quality by level (median over all references and distortions): "
            + _by_level(data.pairs["quality"], data.pairs["level"], ".3f")]


def alignment_figure(tables: dict[str, pd.DataFrame], data: IQAData, params: dict):
    """SRCC (with its bootstrap band), KRCC and PLCC against epoch, on a log axis past the first checkpoint."""
    return alignment_curve(tables["iqa"], log_x=True,
                           title=f"alignment with {display_name(data.name)} quality ({params['distance']} distance)")


def _peak_and_final(tables: dict[str, pd.DataFrame]) -> tuple[pd.Series, pd.Series]:
    """The overall rows of the SRCC's peak checkpoint (the earliest on a tie) and of the last checkpoint."""
    rows = overall(tables)
    peak = peak_summary(rows["epoch"], rows["srcc"])
    return rows[rows["epoch"] == peak["peak_epoch"]].iloc[0], rows.iloc[-1]


def _interval(row: pd.Series, n_references: int) -> str:
    """A checkpoint's SRCC interval as a sentence gives it; a bootstrap over one reference has none (a table
    written before the bootstrap said so holds lo = hi there)."""
    if n_references >= 2 and pd.notna(row["srcc_lo"]) and pd.notna(row["srcc_hi"]):
        return f"[{row['srcc_lo']:.3f}, {row['srcc_hi']:.3f}]"
    return "(no interval: one reference)" if n_references < 2 else "(no interval)"


def reversed_sentence(rows: pd.DataFrame) -> str:
    """Where every checkpoint's SRCC interval (``rows``: srcc, srcc_lo, srcc_hi, one per checkpoint) lies below
    the SRCC's chance level (``registry.Summary.chance``, 0), that the model ranks quality in reverse throughout
    (its peak the least reversed); "" otherwise."""
    summary = registry.summary_of("iqa_srcc")
    if "srcc_lo" not in rows.columns:  # (a table without intervals: a value alone does not say)
        return ""
    rows = rows.dropna(subset=["srcc"])
    if chance_reading(rows["srcc_lo"], rows["srcc_hi"], summary.chance) != "below":
        return ""
    return below_chance_sentence("SRCC", summary.chance, summary.below_chance)


def no_peak_said(rows: pd.DataFrame) -> str:
    """Where every checkpoint's SRCC interval (``rows`` as :func:`reversed_sentence` reads them) contains its
    chance level, that there is no peak to read (``prose.no_peak_sentence``); "" otherwise."""
    rows = rows.dropna(subset=["srcc"])
    return no_peak_where_at_chance("SRCC", rows.get("srcc_lo"), rows.get("srcc_hi"),
                                   registry.summary_of("iqa_srcc").chance)


def peak_sentences(tables: dict[str, pd.DataFrame]) -> list[str]:
    """The overall SRCC at the first checkpoint, at its peak and at the last (with intervals), the drop from
    peak to final, where the peak lies, and whether the final interval reaches the peak value (where it has one)."""
    rows = overall(tables)
    peak = peak_summary(rows["epoch"], rows["srcc"])
    at_peak, final = _peak_and_final(tables)
    n_references = tables["iqa_pairs"]["reference"].nunique()  # what the intervals resample
    # (one reference: no intervals to read)
    reverse = (reversed_sentence(rows) or no_peak_said(rows)) if n_references >= 2 else ""
    if len(rows) == 1:  # one checkpoint: no curve, so no peak, drop or end to name
        return [f"one checkpoint (epoch {rows['epoch'].iloc[0]:g}): SRCC {rows['srcc'].iloc[0]:.3f} "
                f"{_interval(final, n_references)}" + (f"; {reverse}" if reverse else "")
                + f"; {ONE_CHECKPOINT}"]
    where = ("inside training (neither the first nor the last checkpoint)" if peak["peak_is_interior"]
             else "at an end of training")
    lines = [f"SRCC at the first checkpoint (epoch {rows['epoch'].iloc[0]:g}): {rows['srcc'].iloc[0]:.3f}",
             f"SRCC peaks at epoch {peak['peak_epoch']:g}: {peak['peak_value']:.3f} {_interval(at_peak, n_references)}"
             + (f"; {reverse}" if reverse else ""),
             f"final checkpoint (epoch {peak['final_epoch']:g}): {peak['final_value']:.3f} "
             f"{_interval(final, n_references)}",
             f"drop from peak to final: {fixed(peak['drop_from_peak'])}; the peak is {where}"]
    if n_references >= 2 and pd.notna(final["srcc_hi"]):
        reaches = "excludes" if final["srcc_hi"] < peak["peak_value"] else "includes"
        lines.append(f"the final checkpoint's interval {reaches} the peak value")
    return lines


def early_peak_sentences(tables: dict[str, pd.DataFrame]) -> list[str]:
    """The early window and, when it holds checkpoints, the paired early-peak test (iqa_peak) with its verdict."""
    test = tables["iqa_peak"].iloc[0].rename({"early_peak_srcc": "early_peak_value", "final_srcc": "final_value",
                                              "n_references": "n_items"})
    rows = overall(tables)
    return early_peak_test_sentences(test, "SRCC", "reference", EARLY_FRACTION,
                                     peak_summary(rows["epoch"], rows["srcc"])["peak_epoch"],
                                     below_chance=reversed_sentence(rows), no_peak=no_peak_said(rows))


def distortion_sentences(tables: dict[str, pd.DataFrame]) -> list[str]:
    """The worst and best aligned distortion type at the peak checkpoint and at the last one."""
    iqa = tables["iqa"]
    per_type = iqa[iqa["distortion"] != "all"]
    lines = []
    at_peak, final = _peak_and_final(tables)
    # the peak and the final checkpoint coincide on a run of one checkpoint: said once
    shown = (zip((final,), ("the one",)) if overall(tables)["checkpoint"].nunique() == 1
             else zip((at_peak, final), ("peak", "final")))
    for row, label in shown:
        here = per_type[per_type["checkpoint"] == row["checkpoint"]]
        if here.empty:  # no per-type rows: nothing to rank
            continue
        # a type whose SRCC is undefined (under 3 pairs, a constant side) is neither worst nor best: sort_values
        # puts nan last, which named it "best … (nan)"
        ranked = here.dropna(subset=["srcc"]).sort_values("srcc")
        undefined = here.loc[here["srcc"].isna(), "distortion"].tolist()
        said = f"{label} checkpoint (epoch {row['epoch']:g}): "
        if ranked.empty:
            lines.append(said + "SRCC undefined for every distortion type")
            continue
        if len(ranked) == 1:  # worst and best would name one type
            said += f"only {ranked['distortion'].iloc[0]} has a defined SRCC ({ranked['srcc'].iloc[0]:.3f})"
        else:
            said += (f"worst aligned {ranked['distortion'].iloc[0]} ({ranked['srcc'].iloc[0]:.3f}), "
                     f"best {ranked['distortion'].iloc[-1]} ({ranked['srcc'].iloc[-1]:.3f})")
        lines.append(said + (f"; undefined for {', '.join(undefined)}" if undefined else ""))
    return lines


def families_figure(tables: dict[str, pd.DataFrame], run: Run):
    """Each family's SRCC (red: seen in training, blue: unseen) and the within-family means (iqa_families)."""
    return family_curves(mark_seen(tables["iqa"], seen_families(run.run_dir)), tables["iqa_families"],
                         seen_known=run.layout.train_record.exists())  # not, for a run trained elsewhere


def family_sentences(tables: dict[str, pd.DataFrame], run: Run) -> list[str]:
    """The families seen in training, then the peak and final value of each within-family mean and the overall
    SRCC (those defined); the seen and unseen means only where what training saw is known."""
    seen = seen_families(run.run_dir)
    seen_known = run.layout.train_record.exists()
    if not seen_known:  # trained elsewhere (book.trained_elsewhere): its data is not ours to know
        lines = ["families seen in training: unknown (a run trained elsewhere)"]
    else:
        lines = [f"families seen in training: {', '.join(seen) if seen else 'none (a clean training world)'}"]
    for column, label in FAMILY_CURVES:
        if not seen_known and column in SPLIT_BY_TRAINING:  # its split assumed no family seen: not said, as the figure
            continue
        curve = tables["iqa_families"].dropna(subset=[column])
        if len(curve) == 1:  # one checkpoint: no peak or drop
            lines.append(f"{label}: {curve[column].iloc[0]:.3f} at epoch {curve['epoch'].iloc[0]:g}")
        elif len(curve):
            top = peak_summary(curve["epoch"], curve[column])
            lines.append(f"{label}: peak {top['peak_value']:.3f} at epoch {top['peak_epoch']:g}, final "
                         f"{top['final_value']:.3f} at epoch {top['final_epoch']:g} "
                         f"(drop from peak {top['drop_from_peak']:.3f})")
    return lines


def scatter_figure(tables: dict[str, pd.DataFrame], data: IQAData, params: dict):
    """Distance against quality for every pair at the SRCC's peak checkpoint and the last one (one panel when
    they coincide), each titled with its epoch and SRCC."""
    at_peak, final = _peak_and_final(tables)
    shown = list(dict.fromkeys([at_peak["checkpoint"], final["checkpoint"]]))
    rows = overall(tables).set_index("checkpoint").loc[shown]
    labels = [f"{'peak' if c == at_peak['checkpoint'] else 'last'}{' = last' if len(shown) == 1 else ''}, "
              f"epoch {e:g}" for c, e in rows["epoch"].items()]
    return distance_quality_scatter(tables["iqa_pairs"], shown, labels, scores=rows["srcc"].tolist(),
                                    quality_label=f"quality ({display_name(data.name)}; higher = better)",
                                    distance_label=f"{params['distance']} distance")


def distance_sentences(tables: dict[str, pd.DataFrame], params: dict) -> list[str]:
    """The last checkpoint's median distance at each distortion level."""
    pairs = tables["iqa_pairs"]
    last = pairs[pairs["checkpoint"] == overall(tables)["checkpoint"].iloc[-1]]
    return [f"last checkpoint, median {params['distance']} distance by level: "
            + _by_level(last["model_distance"], last["level"], ".4f")]


def layer_sentences(tables: dict[str, pd.DataFrame]) -> list[str]:
    """The most aligned vision block at each checkpoint (iqa_layers), or that only the embedding was scored."""
    return best_layer_sentences(tables.get("iqa_layers"), "srcc", "SRCC", "most aligned", tables.get("iqa_best_block"))
