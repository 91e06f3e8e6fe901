"""The sentences and tables of the real-trajectory page (``10_real_clip``); the measurement is every step's
own, run by ``clipalign run --checkpoints`` (:mod:`clipalign_utils.orchestration.stream`)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ...layout import RunDir
from ...prose import counted, tables_in_full
from .cost import cost_sentences, early_rule, read_cost

__all__ = ["cost_sentences", "has_synthesis", "read_cost", "source_sentences", "synthesis_tables", "trajectory"]

tables_in_full()  # this page does not open through orchestration.step_page


def trajectory(run_dir: str | Path) -> pd.DataFrame | None:
    """The streamed run's checkpoints (``source.json``): checkpoint, epoch, samples_seen (left out where no
    checkpoint says it: a folder of checkpoints does not), source; None when ``run_dir`` holds no streamed run."""
    manifest = RunDir(run_dir).source_manifest() if run_dir else None
    if manifest is None:
        return None
    table = pd.DataFrame([{"checkpoint": c["name"], "epoch": c["epoch"], "samples_seen": c.get("samples_seen"),
                           "source": c["source"]} for c in manifest["checkpoints"]],
                         columns=["checkpoint", "epoch", "samples_seen", "source"])
    return table if table["samples_seen"].notna().any() else table.drop(columns="samples_seen")


def source_sentences(run_dir: str | Path) -> list[str]:
    """What the run is: its source, architecture and checkpoints (and, for a source that does not say how many
    samples an epoch is, that the figures show no samples-seen axis), and the early window on them."""
    manifest = RunDir(run_dir).source_manifest()
    epochs = [c["epoch"] for c in manifest["checkpoints"]]
    per_epoch = manifest.get("samples_per_epoch")
    lines = [f"{counted(len(epochs), 'checkpoint')} of {manifest['model']} from `{manifest['source']}`"
             + (f"; an epoch is {per_epoch / 1e9:.3g} B samples" if per_epoch else "")]
    if not per_epoch:  # plots.common draws the samples-seen axis from samples_per_epoch alone
        has_samples_seen = any(c.get("samples_seen") is not None for c in manifest["checkpoints"])
        lines.append("This source does not say how many samples an epoch is: the figures' axes show epochs only"
                     + ("." if has_samples_seen else ", and the table has no samples_seen column."))
    lines.append(f"In the peak claims, {early_rule(epochs)}.")
    return lines


def synthesis_tables(run_dir: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(seed means, verdicts): the synthesis the streamed run's last step wrote (``tradeoff_seed_means``,
    ``tradeoff_verdicts``)."""
    layout = RunDir(run_dir)
    return pd.read_csv(layout.table("tradeoff_seed_means")), pd.read_csv(layout.table("tradeoff_verdicts"))


def has_synthesis(run_dir: str | Path) -> bool:
    return bool(run_dir) and RunDir(run_dir).table("tradeoff_verdicts").exists()
