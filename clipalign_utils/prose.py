"""Computed sentences as prose: Markdown output in a notebook (the book and Colab render it as text that
wraps), a plain line elsewhere."""
from __future__ import annotations

import math


def show(rich, plain: str) -> None:
    """Display ``rich`` (a Markdown object, a DataFrame) in a notebook kernel; print ``plain`` elsewhere."""
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:  # pragma: no cover - IPython ships with every notebook kernel
        get_ipython = None
    if get_ipython is not None and get_ipython() is not None:
        display(rich)
    else:
        print(plain, flush=True)


# What a page says of a run of one checkpoint (a single public model streamed) where it would read a curve.
ONE_CHECKPOINT = "a peak and a decline need several checkpoints of the run"


def counted(n: int, noun: str) -> str:
    """"1 run", "3 runs": ``n`` and ``noun``, plural unless n is 1."""
    return f"{n} {plural(n, noun)}"


def significant(x: float, digits: int = 3) -> str:
    """``x`` to ``digits`` significant digits, never in exponent form ("1.67", "0.333", "1000"; :.3g wrote 1e+03)."""
    import numpy as np

    return np.format_float_positional(x, precision=digits, unique=True, fractional=False, trim="-")


def fixed(x: float, digits: int = 3) -> str:
    """``x`` to ``digits`` decimals, a value that rounds to 0 as 0 ("0.000", never "-0.000": a difference of two
    values equal but for floating-point rounding, -5e-17, is no drop below 0)."""
    return f"{round(float(x), digits) + 0.0:.{digits}f}"


def plural(n: int, noun: str) -> str:
    """``noun``, plural unless n is 1 ("column", "columns"): a count said by the list that follows it."""
    return noun if n == 1 else f"{noun}s"


def say(text) -> None:
    """Show ``text`` (Markdown) as a paragraph of the page; a list (or any iterable) of texts, as one
    paragraph each (what the step modules' sentence functions return)."""
    from IPython.display import Markdown

    for line in [text] if isinstance(text, str) else text:
        show(Markdown(line), line)


def tables_in_full() -> None:
    """Show a page's tables with whole cells, every column and up to 200 rows: pandas cuts a cell at 50
    characters, hides the middle columns past 20 and the middle rows past 60, which cut a verdict's
    statistic and detail short, and a sweep's 70 verdicts to 10, on the page."""
    import pandas as pd

    pd.set_option("display.max_colwidth", None)
    pd.set_option("display.max_columns", None)
    pd.set_option("display.max_rows", 200)


def chance_reading(lo, hi, chance: float | None) -> str | None:
    """Where a measure's checkpoints lie against its ``chance`` level (``registry.Summary.chance``), read from
    each checkpoint's interval [lo, hi]: "at chance" where every interval contains it, "below" / "above" where
    every one lies below / above it; None otherwise, without a chance level, or where a checkpoint lacks an
    interval (its value alone does not say)."""
    import numpy as np

    lo, hi = np.asarray(lo, dtype=float).ravel(), np.asarray(hi, dtype=float).ravel()
    if chance is None or not lo.size or not (np.isfinite(lo).all() and np.isfinite(hi).all()):
        return None
    if ((lo <= chance) & (chance <= hi)).all():
        return "at chance"
    return "below" if (hi < chance).all() else "above" if (lo > chance).all() else None


def no_peak_sentence(what: str, chance: float) -> str:
    """A measure whose every checkpoint's interval contains its chance level: no peak to read."""
    return (f"{what} is not distinguishable from chance ({chance:g}) at any checkpoint (every checkpoint's interval "
            "contains it): there is no peak to read")


def no_peak_where_at_chance(what: str, lo, hi, chance: float | None) -> str:
    """:func:`no_peak_sentence` where every checkpoint's interval [lo, hi] contains ``chance``
    (:func:`chance_reading`); "" otherwise, or without intervals (``lo`` None: a table written before them)."""
    if lo is None or chance_reading(lo, hi, chance) != "at chance":
        return ""
    return no_peak_sentence(what, chance)


def below_chance_sentence(what: str, chance: float, said: str = "") -> str:
    """A measure whose every checkpoint's interval lies below its chance level: ``said`` (the step's
    ``Summary.below_chance``) or that it lies below chance, its peak the least far below."""
    return (f"every checkpoint's {what} interval lies below {chance:g}: "
            + (said or f"{what} is below chance at every checkpoint (the peak is the least far below)"))


def early_peak_test_sentences(test, what: str, item: str, early_fraction: float,
                              peak_epoch: float | None = None, below_chance: str = "",
                              no_peak: str = "") -> list[str]:
    """The early window and, when it holds checkpoints, the paired early-peak test (a row of an
    ``*_peak.csv``: early_end, n_early, early_drop, lo, hi, early_peak_epoch, early_peak_value, final_epoch,
    final_value, n_items and, where whole references were drawn, n_groups) read against 0: ``what`` names the
    measure, ``item`` (singular) what was resampled. ``peak_epoch``: where the whole curve peaks; an interval
    above 0 reads as an early peak only when that lies in the early window, as the synthesis' claim judges it
    (page 5). A test over fewer than two resampled units has no interval (``metrics.peak``) and no verdict.
    ``below_chance``: what to say where every checkpoint lies below chance (``below_chance_sentence``): a final
    checkpoint above the early ones is then less far below chance, not better aligned. ``no_peak``: what to say
    where every checkpoint's interval contains chance (``no_peak_sentence``): an interval above 0 then says the
    early checkpoints score higher than the final one, not that the measure peaks."""
    lines = [f"early window: 0 < epoch ≤ {significant(early_fraction)} × {test['final_epoch']:g} = "
             f"{significant(test['early_end'])} ({counted(int(test['n_early']), 'checkpoint')})"]
    if int(test["n_early"]) and not math.isfinite(float(test["early_peak_value"])):
        lines.append(f"{what} is undefined at every early checkpoint: no early-peak test")
    elif int(test["n_early"]):
        groups = float(test.get("n_groups", float("nan")))
        n_units, unit = (int(groups), "reference") if math.isfinite(groups) else (int(test["n_items"]), item)
        resampled = counted(int(test["n_items"]), item) + (
            f" (their {counted(n_units, unit)} resampled whole)" if unit != item else "")
        said = (f"best early {what} {test['early_peak_value']:.3f} (epoch {test['early_peak_epoch']:g}) − final "
                f"{test['final_value']:.3f} = {fixed(test['early_drop'])}")
        # a bootstrap over one unit draws it every time: no spread, so no interval to read a verdict from (a table
        # written before metrics.peak said so holds lo = hi there)
        if n_units < 2 or not (math.isfinite(float(test["lo"])) and math.isfinite(float(test["hi"]))):
            why = f"one {unit}" if n_units < 2 else "too few bootstrap replicates define the drop"
            lines.append(f"{said} over {resampled}: no interval ({why}), so no verdict on an early peak")
            return lines
        late = (peak_epoch is not None and math.isfinite(float(peak_epoch))
                and not 0 < float(peak_epoch) <= float(test["early_end"]))
        where = ("at the untrained model (epoch 0)" if late and float(peak_epoch) <= 0
                 else f"later, at epoch {float(peak_epoch):g}" if late else "")
        caveat = below_chance or no_peak  # every checkpoint below chance, or at it: no alignment to rank by
        if test["lo"] > 0:
            verdict = ("above 0 — the best early checkpoint scores higher than the final one" if no_peak else
                       f"above 0, but the curve peaks {where}: it ends below its best early value without an early "
                       "peak" if late else "above 0 — an early peak and a decline")
        elif test["hi"] < 0:
            verdict = ("below 0 — the final checkpoint scores higher than any early one" if caveat else
                       "below 0 — the final checkpoint is better aligned than any early one")
        else:
            verdict = "includes 0 — no clear early peak"
        verdict += f"; but {caveat}" if caveat else ""
        lines.append(f"{said}, paired 95 % interval [{fixed(test['lo'])}, {fixed(test['hi'])}] over {resampled}: "
                     + verdict)
    return lines


def layer_label(layer: str) -> str:
    """A vision block's name as a sentence says it: a ViT's ``embeddings`` are not the image embedding (``final``)."""
    return "embeddings (the tokens entering the first block)" if layer == "embeddings" else layer


def best_layer_sentences(layers, score: str, what: str, best: str, blocks=None) -> list[str]:
    """Per checkpoint of a per-layer table (``iqa_layers``, ``two_afc_layers``; None: only the embedding was
    scored), the vision block scoring highest in ``score`` (``what`` in words, its interval where the table has
    one) beside the embedding's (``final``); ``best`` says how it is best. With ``blocks`` (``iqa_best_block``,
    ``two_afc_best_block``), the best block's margin over the embedding and what its interval says
    (``metrics.peak.best_block_test``). A checkpoint whose every layer is undefined (NaN weights) is left out."""
    if layers is None:
        return ["layers='final': only the image embedding was scored (run with -p layers=all for every block)"]
    layers = layers.dropna(subset=[score])
    final = layers[layers["layer"] == "final"].set_index("checkpoint")[score]
    margins = {} if blocks is None else {row["checkpoint"]: row for _, row in blocks.iterrows()}

    def interval(row) -> str:  # (tables written before the layers' intervals existed lack them)
        return f" [{row[f'{score}_lo']:.3f}, {row[f'{score}_hi']:.3f}]" if f"{score}_lo" in row.index else ""

    def against(checkpoint) -> str:
        row = margins.get(checkpoint)
        if row is None or not math.isfinite(row["margin"]):
            return ""
        lo, hi = row["margin_lo"], row["margin_hi"]
        said = (f"{row['margin']:+.3f}, no interval (too few resamples defined)" if not math.isfinite(lo) else
                f"{row['margin']:+.3f} [{lo:+.3f}, {hi:+.3f}]: "
                + ("a block beats the embedding" if lo > 0 else "the embedding beats every block" if hi < 0 else
                   "no block can be told from the embedding"))
        return (f"; best block ({layer_label(row['best_block'])}) minus the embedding, the block chosen again on "
                f"every resample: {said}")

    return [f"epoch {row['epoch']:g}: {best} layer {layer_label(row['layer'])} ({what} {row[score]:.3f}"
            f"{interval(row)}; the image embedding, final, {final.get(row['checkpoint'], float('nan')):.3f})"
            f"{against(row['checkpoint'])}"
            for _, row in layers.loc[layers.groupby("checkpoint", sort=False)[score].idxmax()].iterrows()]
