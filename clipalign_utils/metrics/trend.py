"""Does a measure move one way over one run's training? One paired bootstrap for every trend claim.

With S(c) the measure at checkpoint c, the statistic is Spearman's ρ of (epoch, S) over the run's checkpoints.
Its interval comes from resampling the evaluation items once per replicate (the images, or the sources they
share), recomputing S at every checkpoint on that one resample (the same items everywhere: paired, as the
early-peak test's are, ``metrics.peak``) and ρ of those values: the percentile interval of the replicates' ρ.

What it speaks for: this run's trajectory, measured on items like these. It does not resample training. A
permutation over the checkpoints did not either: it treats them as exchangeable, but they are one trajectory
whose noise carries from one to the next (on simulated trajectories without a trend, autocorrelated ones
or a random walk, it rejected far more often than its α). Whether training in general moves this way is a
question for seeds (``tradeoff.seed_trend_claim``)."""
from __future__ import annotations

import numpy as np

from clipalign_utils.metrics.stats import percentile_interval, spearman, spearman_over_replicates

# A step's <step>_trend.csv: one row per trend claim's measure (the synthesis' column name).
TREND_COLUMNS = ["measure", "spearman", "lo", "hi", "n_checkpoints"]


def trend_test(epochs, values, replicates, level: float = 0.95) -> dict:
    """Spearman ρ of ``epochs`` and ``values`` (one per checkpoint) with its paired bootstrap interval from
    ``replicates`` (one row per checkpoint, column r = the measure on resample r, the same resample at every
    checkpoint). A checkpoint whose value is nan (at chance, undefined) is left out of ρ and of every replicate's
    ρ alike. Keys: spearman, lo, hi (nan where ρ is undefined: under 3 checkpoints, or a constant measure; and
    where fewer than half the replicates define one, ``stats.percentile_interval``), n_checkpoints (those with a
    value)."""
    epochs, values = np.asarray(epochs, dtype=float).ravel(), np.asarray(values, dtype=float).ravel()
    replicates = np.asarray(replicates, dtype=float).reshape(values.size, -1)
    keep = np.isfinite(epochs) & np.isfinite(values)
    rho = spearman(epochs[keep], values[keep])
    lo, hi = (percentile_interval(spearman_over_replicates(epochs[keep], replicates[keep]), level)
              if np.isfinite(rho) else (float("nan"), float("nan")))
    return {"spearman": rho, "lo": lo, "hi": hi, "n_checkpoints": int(keep.sum())}
