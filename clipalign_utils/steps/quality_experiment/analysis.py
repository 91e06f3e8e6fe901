"""The quality-variation experiment ("What causes the trade-off?"): read its runs, label each by its
world, and judge the chapter's predictions over seeds (``metrics.mechanism``).

The runs are ordinary run directories (any number of sweep folders holding them, or the runs
themselves); a run's world is read from its train_params.json.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import pandas as pd

from ... import config, results
from ...data.distortions import DISTORTIONS
from ...layout import PARTS, RunDir
from ...metrics import mechanism as m
from ...metrics.families import within_family_alignment
from ...metrics import tradeoff
from ...metrics.tradeoff import NOT_REPRODUCED, REPRODUCED, above_zero, below_zero
from ..iqa.analysis import seen_families

FAMILY_COLUMNS = ["within_family_srcc", "within_seen_srcc", "within_unseen_srcc"]
# outcome: of the prediction's statement as worded (prediction 2: "falls"); as_predicted: whether that is what the
# chapter expects of the setting (prediction 2 expects no fall where noise was not seen in training): yes | no |
# unsettled | not predicted (the texture control where texture is as reliable as shape: a question, not a prediction)
PREDICTION_COLUMNS = ["prediction", "setting", "statistic", "mean", "lo", "hi", "n_seeds", "outcome", "as_predicted"]
NOISE_FAMILY = "additive_gaussian_noise"
# A decline's statistic over seeds (mechanism.held_out_declines): each seed's value at the early checkpoint
# where the other seeds of its setting peak, minus its final value; a setting of one seed has only its own maximum.
HELD_OUT = "held-out early − final"
OWN_MAX = "max early − final"
# The predictions on a classification measure (noise drop, texture bias): a seed's checkpoints at chance for it
# are left out, so where too few remain in every seed the statistic is undefined.
ON_CLASSIFIER = ("2 ", "3 ", "control")
# The preset parameters the chapter's own measurement reads (``measure``; its parameters cell declares them): the
# runs' values of these served the runs' own pages, not this one.
PAGE_PARAMETERS = ("eval_seed", "distance", "n_perm")
# A table's cell for a parameter that does not apply to its row (the families of a clean world).
NOT_APPLICABLE = "—"


def expand_run_dirs(paths: Sequence[str | Path]) -> list[Path]:
    """The finished run directories (train_params.json and metrics/noise.csv) among ``paths`` and, for a
    path that is not one, inside it (sweep folders, a folder of sweep folders), in name order, an experiment's
    sweeps in the order its experiment.json declares them (the chapter reads its settings in that order)."""
    runs = []
    for path in map(Path, paths):
        layout = RunDir(path)
        if layout.train_record.exists():
            runs += [path] if layout.table("noise").exists() else []
        elif path.is_dir():
            folders = sorted(d for d in path.iterdir() if d.is_dir() and d.name not in PARTS)
            declared = layout.record("experiment")
            if declared.exists():
                order = list(json.loads(declared.read_text()).get("sweeps", {}))
                folders.sort(key=lambda d: order.index(d.name) if d.name in order else len(order))  # stable
            runs += expand_run_dirs(folders)
    return runs


def world_of(run_dir: str | Path) -> dict:
    """quality_variation, quality_families and texture_correlation of a run's training world."""
    record = json.loads(RunDir(run_dir).train_record.read_text())
    return {"quality_variation": float(record.get("quality_variation", 0.0)),
            "quality_families": tuple(record.get("quality_families", DISTORTIONS)),
            "texture_correlation": float(record.get("texture_correlation", 0.8)), "seed": record.get("seed")}


def setting_label(world: dict, default_correlation: float = 0.8) -> str:
    """A short name for a world: "clean", "variation 0.6", "variation 0.6, held out: …", "clean,
    texture_correlation=1" (what differs from the default world)."""
    if world["quality_variation"] > 0:
        held_out = [f for f in DISTORTIONS if f not in world["quality_families"]]
        label = f"variation {world['quality_variation']:g}" + (f", held out: {', '.join(held_out)}" if held_out else "")
    else:
        label = "clean"
    if world["texture_correlation"] != default_correlation:
        label += f", texture_correlation={world['texture_correlation']:g}"
    return label


def load(paths: Sequence[str | Path], distance: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(table, settings). table: one row per run × checkpoint: ``results.checkpoint_table``'s columns,
    texture_bias, the within-family SRCCs (seen, unseen, all) and setting, seed, run. settings: one row
    per setting with its world and the number of seeds."""
    run_dirs = expand_run_dirs(paths)
    if not run_dirs:
        from ...errors import ParameterError
        raise ParameterError(f"run_dirs {', '.join(map(str, paths))} hold no finished run (train_params.json and "
                             "metrics/noise.csv)")
    frames, worlds = [], []
    for run_dir, label in zip(run_dirs, results.run_labels(run_dirs)):
        world = world_of(run_dir)
        table = results.checkpoint_table(run_dir, distance).assign(run=label)
        iqa = results.read_metric(run_dir, "iqa")
        iqa = iqa[iqa["distance"] == table["distance"].iloc[0]]
        families = within_family_alignment(iqa, seen_families(run_dir))[["checkpoint"] + FAMILY_COLUMNS]
        setting = setting_label(world)
        frames.append(table.merge(families, on="checkpoint", how="left").assign(
            setting=setting, seed=world["seed"], texture_bias=1 - table["shape_bias"]))
        worlds.append(world)
    return pd.concat(frames, ignore_index=True), settings_table(worlds, list(map(setting_label, worlds)))


def settings_table(worlds: Sequence[dict], labels: Sequence[str]) -> pd.DataFrame:
    """One row per setting (``labels``, one per run's world from ``world_of``), in first-seen order: its
    quality_variation, quality_families (NOT_APPLICABLE where nothing was degraded), texture_correlation and
    n_seeds."""
    worlds = pd.DataFrame(list(worlds)).assign(setting=list(labels))
    # a clean world degrades nothing: the families its record lists (the preset's, never drawn from) do not apply
    families = worlds["quality_families"].map(", ".join).where(worlds["quality_variation"] > 0, NOT_APPLICABLE)
    return (worlds.assign(quality_families=families)
            .groupby("setting", sort=False).agg(quality_variation=("quality_variation", "first"),
                                                 quality_families=("quality_families", "first"),
                                                 texture_correlation=("texture_correlation", "first"),
                                                 n_seeds=("setting", "size")).reset_index())


def fixed_differences(folder: str | Path) -> tuple[str, dict[str, tuple[str, str]]]:
    """(the experiment's preset, {parameter: (the value every run of the experiment in ``folder`` was given,
    the preset's)}) for the values all its sweeps fix alike, seeds aside, that differ from the preset's: how
    the experiment's runs differ from the book's own run. ({} without the folder's experiment.json.)"""
    path = RunDir(folder).record("experiment")
    if not path.exists():
        return "", {}
    record = json.loads(path.read_text())
    preset = record.get("preset", "default")
    if preset not in config.PRESETS:
        return "", {}
    values = config.PRESETS[preset]
    sweeps = list(record.get("sweeps", {}).values())
    # a value one sweep varies ("0,0.6" with the experiment's other sweeps left out) is no value all its runs had
    fixed = {name: value for name, value in (sweeps[0].items() if sweeps else ())
             if name != "seed" and name in values and all(sweep.get(name) == value for sweep in sweeps)
             and len(config.sweep_parts(value, values[name])) == 1}
    # compared as the parameter's type ("1.0" is the preset's 1), shown as given
    return preset, {name: (value, config.format_value(values[name])) for name, value in fixed.items()
                    if config.coerce(name, value, values[name]) != values[name]}


def _row(prediction, setting, statistic, mean, lo, hi, n, outcome) -> dict:
    return dict(zip(PREDICTION_COLUMNS, [prediction, setting, statistic, mean, lo, hi, n, outcome]))


def as_predicted(prediction: str, setting: str, outcome: str, noise_seen: dict,
                 equal_cues: frozenset | set = frozenset()) -> str:
    """Whether ``outcome`` (of the prediction's statement) is what the chapter expects of ``setting``: "yes",
    "no" or "unsettled" (an inconclusive outcome settles neither way). Prediction 2 expects the noise drop to
    fall only where noise was seen in training (``noise_is_seen``); elsewhere, a drop that clearly does not
    fall (its interval above 0) is as predicted, one that clearly falls is not. The texture control in a
    setting of ``equal_cues`` (texture as reliable as shape) asks whether the shift appears without the world
    favouring shape, and predicts nothing: "not predicted"."""
    if prediction.startswith("control") and setting in equal_cues:
        return "not predicted"
    if prediction.startswith("2 ") and not noise_seen.get(setting, False):
        return {REPRODUCED: "no", NOT_REPRODUCED: "yes"}.get(outcome, "unsettled")
    return {REPRODUCED: "yes", NOT_REPRODUCED: "no"}.get(outcome, "unsettled")


def _summary_rows(prediction: str, statistic: str, values: pd.DataFrame, judge, correlation: bool = False) -> list[dict]:
    seeds = values.groupby("setting", sort=False).size()
    return [_row(prediction, r.setting, statistic.replace(HELD_OUT, OWN_MAX) if seeds[r.setting] < 2 else statistic,
                 r.mean, r.lo, r.hi, r.n_seeds, judge(r.lo, r.hi))
            for r in m.over_seeds(values, correlation).itertuples()]


def predictions(table: pd.DataFrame, settings: pd.DataFrame) -> pd.DataFrame:
    """The chapter's predictions, one row per prediction × setting (columns PREDICTION_COLUMNS): the
    statistic's mean over seeds with its t-interval (a correlation's cut to [−1, 1]), the outcome it gives (reproduced, not
    reproduced, inconclusive) and whether that is as predicted for the setting (:func:`as_predicted`).

    1a within-seen decline: the held-out early decline (``mechanism.held_out_declines``) of within_seen_srcc
       > 0 — with variation, alignment within the damage the model learned to ignore peaks early and declines;
    1b seen − unseen decline (paired over seeds, where one setting has both) > 0, and, for a setting
       that saw every family, its seen decline − the clean world's within-family decline (Welch) > 0;
    1c overall decline: the held-out early decline of iqa_srcc > 0 — does the overall SRCC show it too;
    2  noise drop trend: ρ(epoch, normalized noise drop) < 0, expected where additive noise is a seen
       family and not where it is held out (or absent);
    3  alignment and texture bias move together net of time: partial ρ(iqa_srcc, texture_bias | log t) > 0;
    control: texture bias trend ρ(epoch, texture_bias) < 0, measured in every setting: expected where shape is
       the more reliable cue; where texture is as reliable (texture_correlation=1) it is the question the
       control asks, not a prediction (as_predicted "not predicted").
    """
    rows = []
    seen = table[table["within_seen_srcc"].notna()]
    seen_decline = m.held_out_declines(seen, "within_seen_srcc")
    rows += _summary_rows("1a within-family alignment declines for seen families", HELD_OUT + ", seen families",
                          seen_decline, above_zero)
    clean = settings.loc[(settings["quality_variation"] == 0) & (settings["texture_correlation"] == 0.8), "setting"]
    clean_decline = (m.held_out_declines(table[table["setting"] == clean.iloc[0]], "within_family_srcc")
                     if len(clean) else None)
    for setting, rows_of in seen.groupby("setting", sort=False):
        decline = seen_decline[seen_decline["setting"] == setting]
        if rows_of["within_unseen_srcc"].notna().any():
            unseen = m.held_out_declines(rows_of, "within_unseen_srcc")
            mean, lo, hi, n = m.paired_difference(decline, unseen)
            rows.append(_row("1b seen families decline more than unseen ones", setting,
                             "seen − unseen decline (paired over seeds)", mean, lo, hi, n, above_zero(lo, hi)))
        elif clean_decline is not None:
            mean, lo, hi = m.welch_difference(decline, clean_decline)
            rows.append(_row("1b seen families decline more than unseen ones", setting,
                             f"seen decline − within-family decline of '{clean.iloc[0]}' (Welch)", mean, lo, hi,
                             decline["value"].notna().sum(), above_zero(lo, hi)))
    rows += _summary_rows("1c the overall SRCC declines from its early peak", HELD_OUT + ", overall SRCC",
                          m.held_out_declines(table, "iqa_srcc"), above_zero)
    rows += _summary_rows("2 the normalized noise drop falls", "spearman(epoch, noise drop) per seed",
                          m.per_seed(table, m.epoch_trend, "noise_drop"), below_zero, correlation=True)
    rows += _summary_rows("3 alignment and texture bias move together net of time",
                          "partial spearman(iqa_srcc, texture_bias | log t) per seed",
                          m.per_seed(table, m.partial_relation, "iqa_srcc", "texture_bias"), above_zero,
                          correlation=True)
    rows += _summary_rows("control: texture bias falls", "spearman(epoch, texture bias) per seed",
                          m.per_seed(table, m.epoch_trend, "texture_bias"), below_zero, correlation=True)
    seen, equal_cues = noise_is_seen(settings), equal_cue_settings(settings)
    for row in rows:
        row["as_predicted"] = as_predicted(row["prediction"], row["setting"], row["outcome"], seen, equal_cues)
    return pd.DataFrame(rows, columns=PREDICTION_COLUMNS)


def equal_cue_settings(settings: pd.DataFrame) -> set:
    """The settings whose texture is as reliable as shape (texture_correlation=1): the texture control's."""
    return set(settings.loc[settings["texture_correlation"] >= 1, "setting"])


def noise_is_seen(settings: pd.DataFrame) -> dict:
    """setting → whether additive Gaussian noise was among its training degradations."""
    return {r.setting: bool(r.quality_variation > 0 and NOISE_FAMILY in r.quality_families.split(", "))
            for r in settings.itertuples()}


# joint_picture's columns, one row per setting
JOINT_COLUMNS = ["setting", "n_reproduced", "n_claims", "reproduced", "n_testable", "undefined", "n_contradicted",
                 "agreement", "n_held_by_most_seeds", "n_seeds"]
PAPER_CLAIMS = ("IQA alignment peaks early then declines", "texture bias falls during training",
                "normalized noise drop falls during training", "IQA alignment co-varies with texture bias and noise drop")


def measure(paths: Sequence[str | Path], params: dict) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """({"quality_checkpoints": every checkpoint of every run (``load``), "quality_seed_means": each setting's
    seed-mean curves of the chapter's measures, "quality_verdicts": the synthesis' claims judged per setting,
    "quality_predictions": the chapter's predictions (``predictions``)}, the settings)."""
    from ...plots.mechanism import PANELS

    table, settings = load(paths, params["distance"])
    measures = {column: (None, None) for column, _ in PANELS if column in table.columns}
    means = tradeoff.seed_means(table, measures, by=("setting", "epoch"))
    verdicts = tradeoff.verdicts(table, n_perm=params["n_perm"], seed=config.bootstrap_seed(params), by="setting")
    return {"quality_checkpoints": table, "quality_seed_means": means, "quality_verdicts": verdicts,
            "quality_predictions": predictions(table, settings)}, settings


def joint_picture(verdicts: pd.DataFrame) -> pd.DataFrame:
    """Per setting: how many of the paper's four claims its seed-mean curve reproduces, and which; how many
    could be tested at all (n_testable: a statistic with a value) and which could not (``undefined``: no
    value, e.g. every checkpoint at chance); and, per reproduced claim, the share of seeds whose own run
    gives the same verdict (``agreement``; "its one seed" where the setting has one: its run is the curve), with
    how many of them most seeds hold (n_held_by_most_seeds), over the setting's n_seeds."""
    rows = []
    for setting, group in verdicts.groupby("setting", sort=False):
        claims = group[group["claim"].isin(PAPER_CLAIMS)]
        testable = claims["value"].notna()
        reproduced = claims[claims["verdict"] == REPRODUCED]
        # a claim reproduced on the seed-mean curve that most seeds do not give alone rests on the mean alone
        agreement = [f"{r.claim}: {r.seeds_agree:.0%} of {r.n_seeds} seeds agree" if r.n_seeds > 1
                     else f"{r.claim}, its one seed" for r in reproduced.itertuples()]
        rows.append({"setting": setting, "n_reproduced": len(reproduced), "n_claims": len(claims),
                     "reproduced": "; ".join(reproduced["claim"]), "n_testable": int(testable.sum()),
                     "undefined": "; ".join(claims.loc[~testable, "claim"]),
                     "n_contradicted": int((claims["verdict"] == NOT_REPRODUCED).sum()),
                     "agreement": "; ".join(agreement),
                     "n_held_by_most_seeds": int((reproduced["seeds_agree"] > 0.5).sum()),
                     "n_seeds": int(claims["n_seeds"].max()) if len(claims) else 0})
    return pd.DataFrame(rows, columns=JOINT_COLUMNS)
