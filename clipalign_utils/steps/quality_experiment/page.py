"""The sentences and figures of the quality_experiment page (its measurement: :mod:`.analysis`)."""
from __future__ import annotations


import numpy as np
import pandas as pd

from ... import config
from ...metrics.tradeoff import NOT_REPRODUCED, REPRODUCED
from ...prose import counted

from .analysis import ON_CLASSIFIER, PAGE_PARAMETERS, equal_cue_settings, fixed_differences, noise_is_seen


def sentences(predictions_table: pd.DataFrame, settings: pd.DataFrame) -> list[str]:
    """One Markdown sentence per prediction × setting, every number from the table; for prediction 2 the
    expectation (falls only where noise was seen in training) is checked against the outcome, and the
    texture-bias control says what a setting with texture as reliable as shape (texture_correlation=1)
    implies for the shift."""
    noise_seen = noise_is_seen(settings)
    # texture as reliable as shape: the control setting(s) for the texture -> shape shift
    equal_cues = equal_cue_settings(settings)
    # the settings (not the control) where the shift towards shape is established over their seeds
    shifted = [r.setting for r in predictions_table.itertuples() if r.prediction.startswith("control")
               and r.setting not in equal_cues and r.outcome == REPRODUCED]
    seeds_of = settings.set_index("setting")["n_seeds"]
    lines = []
    for r in predictions_table.itertuples():
        if not np.isfinite(r.mean):
            lines.append(f"- **{r.prediction}** — *{r.setting}*: {r.statistic} **undefined**: "
                         + _undefined_reason(r.prediction, seeds_of.get(r.setting)) + " — not tested.")
            continue
        interval = (f"{r.mean:+.3f} [{r.lo:+.3f}, {r.hi:+.3f}] over {counted(r.n_seeds, 'seed')}" if np.isfinite(r.lo)
                    else f"{r.mean:+.3f} over {counted(r.n_seeds, 'seed')}, no interval")
        verdict = r.outcome
        if r.prediction.startswith("2 "):
            expected = noise_seen.get(r.setting, False)
            moved = {REPRODUCED: "falls", NOT_REPRODUCED: "rises"}.get(r.outcome, "neither clearly falls nor rises")
            verdict = (f"{moved} — " + ("as predicted" if r.as_predicted == "yes" else "against the prediction"
                                         if r.as_predicted == "no" else "not settled by the seeds")
                       + f" (noise {'seen' if expected else 'not seen'} in training: "
                       + ("expected to fall)" if expected else "not expected to fall)"))
        if r.prediction.startswith("control") and r.setting in equal_cues:
            verdict += " — with texture as reliable as shape " + _control_reading(r.outcome, shifted)
        lines.append(f"- **{r.prediction}** — *{r.setting}*: {r.statistic} = {interval}: **{verdict}**.")
    return lines


def _undefined_reason(prediction: str, n_seeds) -> str:
    """Why a prediction's statistic has no value in a setting (page 5 says it of a verdict: "undefined: no trend
    to test"): no seed's own run gives one."""
    none_of = f"none of its {counted(int(n_seeds), 'seed')}" if pd.notna(n_seeds) else "no seed"
    if prediction.startswith(ON_CLASSIFIER):
        return (f"{none_of} gives a value: too few of its checkpoints are above chance for the measure, or they do "
                "not vary (those at chance are left out, as in the verdicts above)")
    return f"{none_of} gives a value"


# The columns of the verdicts' long table the page shows.
VERDICT_SHOWN = ["setting", "claim", "statistic", "value", "ci_lo", "ci_hi", "p_value", "verdict", "seeds_agree"]


def shown_verdicts(verdicts: pd.DataFrame) -> pd.DataFrame:
    """The verdicts' long table as the page shows it (VERDICT_SHOWN, 3 decimals), a statistic without a value
    (e.g. a noise drop's trend where the model is at chance on clean images: no drop) saying why, in the words
    of the verdict's own ``detail``."""
    shown = verdicts[VERDICT_SHOWN].round(3)
    undefined = verdicts["value"].isna()
    shown["value"] = shown["value"].astype(object).where(~undefined, "undefined: " + verdicts["detail"])
    return shown


def shown_predictions(predictions_table: pd.DataFrame, settings: pd.DataFrame) -> pd.DataFrame:
    """The predictions' table as the page shows it (3 decimals), a statistic without a value saying why, as the
    sentences below it do."""
    shown = predictions_table.round(3)
    seeds_of = settings.set_index("setting")["n_seeds"]
    undefined = predictions_table["mean"].isna()
    why = ["undefined: " + _undefined_reason(r.prediction, seeds_of.get(r.setting))
           for r in predictions_table.itertuples()]
    shown["mean"] = shown["mean"].astype(object).where(~undefined, why)
    return shown


def intro_sentence(tables: dict[str, pd.DataFrame], settings: pd.DataFrame) -> str:
    """How many runs and settings the chapter compares, and the IQA distance they are read at."""
    table = tables["quality_checkpoints"]
    return f"{table['run'].nunique()} runs in {len(settings)} settings; distance: {table['distance'].iloc[0]}"


def fixed_sentences(folder, params: dict | None = None) -> list[str]:
    """Markdown: how every run of the experiment differs from its preset's run (the book's own, pages 1–5);
    none where they do not, or the folder is not an experiment's. ``params``: the page's own (``measure``'s):
    where the runs were given another value of a parameter the page reads itself (``PAGE_PARAMETERS``), the
    page's verdicts use the page's value, and a second sentence says so."""
    preset, differences = fixed_differences(folder)
    if not differences:
        return []
    lines = [f"Every run here differs from the `{preset}` preset's (the runs of pages 1–5 in its own book) in "
             + ", ".join(f"`{name}={value}` (there {preset_value})" for name, (value, preset_value) in
                         differences.items())
             + ": *clean* is the default world's training images, not those runs."]
    # e.g. the runs' n_perm judged their own verdicts; this page's permutation tests run with its own
    own = {name: params[name] for name in PAGE_PARAMETERS if params is not None and name in differences
           and name in params and config.coerce(name, differences[name][0], params[name]) != params[name]}
    if own:
        lines.append("The runs' " + ", ".join(f"`{name}`" for name in own) + " served their own pages; this page's "
                     "verdicts use its own, " + ", ".join(f"`{name}={value}`" for name, value in own.items())
                     + " (the parameters above).")
    return lines


def _control_reading(outcome: str, shifted: list[str]) -> str:
    """What the equal-cues control's outcome says of the shift towards shape, as far as the seeds settle it."""
    if outcome == REPRODUCED:
        return "the shift towards shape remains, so it is not only the world's design (shape the more reliable cue)"
    if outcome != NOT_REPRODUCED:
        return "the seeds do not settle whether the shift towards shape remains"
    where = (f": where it does appear ({', '.join(f'*{s}*' for s in shifted)}) it follows from the world's design "
             "(shape the more reliable cue), not from contrastive training as such" if shifted else "")
    return "the shift towards shape does not appear" + where


def joint_sentence(joint: pd.DataFrame, settings: pd.DataFrame, predictions: pd.DataFrame | None = None) -> str:
    """Markdown: which setting, if any, reproduces every claim; else the counts per setting (of the claims that
    could be tested, with those that could not), and what they say of quality variation — only as much as the
    settings present and their verdicts can say (``joint``: ``analysis.joint_picture``'s; ``settings``:
    ``load``'s); with ``predictions``, how many of the predictions above the seeds settle."""
    full = joint[joint["n_reproduced"] == joint["n_claims"]]
    if len(full):
        return (f"**{', '.join(full['setting'])}** reproduce{'s' if len(full) == 1 else ''} all "
                f"{int(full['n_claims'].iloc[0])} of the paper's claims over its seeds.")
    listing = "; ".join(f"*{r.setting}*: {_claim_count(r)}" for r in joint.itertuples())
    text = f"**No setting reproduces the paper's joint picture.** Claims reproduced per setting: {listing}."
    varied = set(settings.loc[settings["quality_variation"] > 0, "setting"])
    if not varied:
        return text + (" None of these runs trained with quality variation, so they cannot say whether it "
                       "produces the trade-off.")
    if not joint["n_testable"].any():
        return text + (" No claim could be tested in any setting, so these runs say nothing of whether quality "
                       "variation produces the trade-off." + _settled_sentence(predictions))
    counts = joint.set_index("setting")["n_reproduced"]
    with_variation = joint[joint["setting"].isin(varied)]
    best = with_variation.sort_values("n_reproduced", ascending=False, kind="stable").iloc[0]
    clean = [s for s in joint["setting"] if s not in varied]
    versus = (f", against {', '.join(f'{counts[s]} for *{s}*' for s in clean)}" if clean else "")
    held = ""
    if best["n_reproduced"] and best["n_seeds"] > 1:
        # the count is judged over the seeds: say how many of its claims most seeds also give alone (one seed's
        # run is the curve)
        held = (f"; most seeds agree on {int(best['n_held_by_most_seeds'])} of them"
                if best["n_held_by_most_seeds"] < best["n_reproduced"] else "; most seeds agree on each")
    untested = int((with_variation["n_claims"] - with_variation["n_testable"]).sum())
    untested = (f" (in the settings with quality variation {untested} of {int(with_variation['n_claims'].sum())} "
                "claims could not be tested)" if untested else "")
    contradicted = int(with_variation["n_contradicted"].sum())
    absent = ("no claim is contradicted where training had quality variation (each one not reproduced is "
              "inconclusive or undefined), so they do not show it absent either" if not contradicted else
              f"where training had quality variation {counted(contradicted, 'claim')} "
              f"{'is' if contradicted == 1 else 'are'} contradicted (the verdicts above say which), the others "
              "not reproduced are inconclusive or undefined")
    return (text + f" With quality variation the most is {int(best['n_reproduced'])} (*{best['setting']}*: "
            f"{best['agreement'] or 'none'}{held}){versus}. These runs do not show quality variation in the training "
            f"data, as built here, producing the trade-off the paper reports at this scale{untested}; {absent}."
            + _settled_sentence(predictions))


def _claim_count(row) -> str:
    """"1 of 4 testable" for a setting's row of ``joint_picture``, naming the claims that could not be tested."""
    count = f"{row.n_reproduced} of {row.n_testable} testable"
    undefined = row.n_claims - row.n_testable
    return count + (f", {undefined} undefined ({row.undefined.replace('; ', ', ')})" if undefined else "")


def _settled_sentence(predictions: pd.DataFrame | None) -> str:
    """" The seeds settle k of the predictions' n outcomes above …": what the predictions say, as far as the
    seeds settle them (the texture control where it asks a question, ``not predicted``, left out)."""
    if predictions is None:
        return ""
    judged = predictions[predictions["as_predicted"] != "not predicted"]
    settled = judged["as_predicted"].isin(["yes", "no"])
    if not settled.any():
        return (f" Nor do the predictions above say what it changes: the seeds settle none of their {len(judged)} "
                "outcomes (each inconclusive or undefined).")
    against = int((judged["as_predicted"] == "no").sum())
    return (f" The seeds settle {int(settled.sum())} of the {len(judged)} outcomes of the predictions above "
            f"({int(settled.sum()) - against} as predicted, {against} against the prediction); the rest are "
            "inconclusive or undefined.")
