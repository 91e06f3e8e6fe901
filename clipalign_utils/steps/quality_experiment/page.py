"""The sentences and figures of the quality_experiment page (its measurement: :mod:`.analysis`)."""
from __future__ import annotations


import pandas as pd

from ...metrics.tradeoff import NOT_REPRODUCED, REPRODUCED

from .analysis import equal_cue_settings, fixed_differences, noise_is_seen


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
    lines = []
    for r in predictions_table.itertuples():
        interval = f"{r.mean:+.3f} [{r.lo:+.3f}, {r.hi:+.3f}] over {r.n_seeds} seeds"
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


def intro_sentence(tables: dict[str, pd.DataFrame], settings: pd.DataFrame) -> str:
    """How many runs and settings the chapter compares, and the IQA distance they are read at."""
    table = tables["quality_checkpoints"]
    return f"{table['run'].nunique()} runs in {len(settings)} settings; distance: {table['distance'].iloc[0]}"


def fixed_sentences(folder) -> list[str]:
    """Markdown: how every run of the experiment differs from its preset's run (the book's own, pages 1–5);
    none where they do not, or the folder is not an experiment's."""
    preset, differences = fixed_differences(folder)
    if not differences:
        return []
    return [f"Every run here differs from the `{preset}` preset's (the runs of pages 1–5 in its own book) in "
            + ", ".join(f"`{name}={value}` (there {preset_value})" for name, (value, preset_value) in
                        differences.items())
            + ": *clean* is the default world's training images, not those runs."]


def _control_reading(outcome: str, shifted: list[str]) -> str:
    """What the equal-cues control's outcome says of the shift towards shape, as far as the seeds settle it."""
    if outcome == REPRODUCED:
        return "the shift towards shape remains, so it is not only the world's design (shape the more reliable cue)"
    if outcome != NOT_REPRODUCED:
        return "the seeds do not settle whether the shift towards shape remains"
    where = (f": where it does appear ({', '.join(f'*{s}*' for s in shifted)}) it follows from the world's design "
             "(shape the more reliable cue), not from contrastive training as such" if shifted else "")
    return "the shift towards shape does not appear" + where


def joint_sentence(joint: pd.DataFrame, settings: pd.DataFrame) -> str:
    """Markdown: which setting, if any, reproduces every claim; else the counts per setting, and what they
    say of quality variation — only as much as the settings present can say (``settings``: ``load``'s)."""
    full = joint[joint["n_reproduced"] == joint["n_claims"]]
    if len(full):
        return (f"**{', '.join(full['setting'])}** reproduce{'s' if len(full) == 1 else ''} all "
                f"{int(full['n_claims'].iloc[0])} of the paper's claims on the seed-mean curve.")
    listing = "; ".join(f"*{r.setting}*: {r.n_reproduced}/{r.n_claims}" for r in joint.itertuples())
    text = f"**No setting reproduces the paper's joint picture.** Claims reproduced per setting: {listing}."
    varied = set(settings.loc[settings["quality_variation"] > 0, "setting"])
    if not varied:
        return text + (" None of these runs trained with quality variation, so they cannot say whether it "
                       "produces the trade-off.")
    counts = joint.set_index("setting")["n_reproduced"]
    best = joint[joint["setting"].isin(varied)].sort_values("n_reproduced", ascending=False, kind="stable").iloc[0]
    clean = [s for s in joint["setting"] if s not in varied]
    versus = (f", against {', '.join(f'{counts[s]} for *{s}*' for s in clean)}" if clean else "")
    return (text + f" With quality variation the most is {int(best['n_reproduced'])} (*{best['setting']}*: "
            f"{best['reproduced'] or 'none'}){versus}. These runs do not show quality variation in the training data, as "
            "built here, producing the trade-off the paper reports at this scale; a claim not reproduced may be "
            "inconclusive rather than contradicted (the verdicts above say which), so they do not show it absent "
            "either. What it does change is in the predictions above.")
