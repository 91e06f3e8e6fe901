"""glibc's malloc asked to keep the large blocks a CPU forward frees, for the next batch to reuse.

PyTorch on a CPU allocates its large tensors with plain ``malloc``. glibc serves every block above its
mmap threshold (128 KiB, rising with use up to 32 MiB) with a fresh ``mmap`` and unmaps it on ``free``,
so each batch's activations are new pages that the kernel faults in and zero-fills one by one. For a ViT
that was a third of the encoder's time in the kernel (vit-tiny at 32 px: 35 s of system time against 81 s
of user time). Raising the thresholds keeps those blocks in the heap, where the next batch reuses them.
Only where memory comes from changes, never what is computed: tables and weights are the same bytes.

The cost: a process keeps its peak heap until it exits, instead of handing freed blocks back at once.
Where the user set glibc's malloc variables themselves (``MALLOC_*``, ``GLIBC_TUNABLES``), theirs win.
"""
from __future__ import annotations

import ctypes
import os
import sys

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's malloc.h
KEEP_BELOW = 1 << 30  # blocks under 1 GiB come from the heap; up to 1 GiB of free heap top is kept

_kept: bool | None = None


def keep_freed_memory() -> bool:
    """Set glibc's mmap and trim thresholds once per process; True where they are now set."""
    global _kept
    if _kept is None:
        _kept = _set_thresholds()
    return _kept


def _set_thresholds() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    if "GLIBC_TUNABLES" in os.environ or any(name.startswith("MALLOC_") for name in os.environ):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the process's own C library
    except (OSError, AttributeError):
        return False
    # mallopt returns 1 on success; musl's stub returns 0 and changes nothing.
    return bool(mallopt(_M_MMAP_THRESHOLD, KEEP_BELOW)) and bool(mallopt(_M_TRIM_THRESHOLD, KEEP_BELOW))
