"""How many CPU threads a process of this package uses: read by the launchers that share the cores out (torchrun's
ranks, local jobs) and by the steps that spread their own work over threads (saliency scoring)."""
from __future__ import annotations

import os


def threads_per_process(processes: int) -> int:
    """CPU threads for each of ``processes`` running at once on this machine (torchrun's ranks, local jobs):
    OMP_NUM_THREADS where it is set, else the cores shared out, at least one each."""
    return int(os.environ.get("OMP_NUM_THREADS") or max(1, (os.cpu_count() or 1) // max(1, processes)))
