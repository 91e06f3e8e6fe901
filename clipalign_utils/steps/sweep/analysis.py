"""The sweep page (page 6): a sweep's runs compared — the curves per setting, the claims' verdicts per
setting, each parameter varied alone against its reference, and whether shape bias and the noise drop
go together across settings. Like the synthesis it reads runs: ``measure(run_dirs, params)``. (Running a
sweep is ``clipalign_utils.orchestration.sweep``.)
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ...config import bootstrap_seed
from ... import results
from ...metrics import sweep as sweep_metrics
from ...metrics import tradeoff

TEXTURE_MEASURES = ("early_texture_bias", "iqa_peak_epoch", "iqa_peak_srcc", "iqa_decline")


def load(run_dirs: list[Path], params: dict) -> dict:
    """``results.sweep_tables``: the runs' checkpoint and noise tables by setting, the settings, the
    factors that differ and their reference values."""
    return results.sweep_tables(run_dirs, params["distance"])


def seed_means(data: dict) -> pd.DataFrame:
    return tradeoff.seed_means(data["table"], by=("setting", "epoch"))


def measure(run_dirs: list[Path], params: dict, data: dict | None = None) -> dict[str, pd.DataFrame]:
    """{"sweep_checkpoints": every checkpoint of every run with its setting, "sweep_summary": one row per
    setting (``metrics.sweep.setting_summary``), "sweep_verdicts": the claims' verdicts per setting,
    "sweep_effects": each parameter varied alone, its effect on every summary measure}."""
    data = load(run_dirs, params) if data is None else data
    summary = data["settings"].merge(
        sweep_metrics.setting_summary(seed_means(data), n_perm=params["n_perm"], seed=bootstrap_seed(params)), on="setting")
    slices = factor_slices(summary, data)
    effects = pd.concat([sweep_metrics.factor_effects(rows, factor) for factor, rows in slices.items()],
                        ignore_index=True) if slices else pd.DataFrame()
    return {"sweep_checkpoints": data["table"], "sweep_summary": summary,
            "sweep_verdicts": tradeoff.verdicts(data["table"], n_perm=params["n_perm"], seed=bootstrap_seed(params),
                                                by="setting"),
            "sweep_effects": effects}


def factor_slices(summary: pd.DataFrame, data: dict) -> dict[str, pd.DataFrame]:
    """Per parameter varied alone: its settings' summary rows (``metrics.sweep.factor_slices``)."""
    return sweep_metrics.factor_slices(summary, data["factors"], data["reference"])


def verdict_grid(verdicts: pd.DataFrame, data: dict) -> pd.DataFrame:
    """Setting × claim: the verdict, settings in the sweep's order."""
    return tradeoff.verdict_grid(verdicts, data["settings"]["setting"])


def comparable_settings(data: dict) -> list[str]:
    """The settings whose noise drop was measured at the reference noise levels."""
    settings = data["settings"].set_index("setting")
    return [s for s in settings.index
            if "sigmas" not in data["factors"] or settings.loc[s, "sigmas"] == data["reference"]["sigmas"]]


