"""glibc's malloc asked to keep the large blocks a CPU forward frees, for the next batch to reuse.

PyTorch on a CPU allocates its large tensors with plain ``malloc``. glibc serves every block above its
mmap threshold (128 KiB, rising with use up to 32 MiB) with a fresh ``mmap`` and unmaps it on ``free``,
so each batch's activations are new pages that the kernel faults in and zero-fills one by one. For a ViT
that was a third of the encoder's time in the kernel (vit-tiny at 32 px: 18 s of system time against 44 s
of user time). Raising the thresholds keeps those blocks in the heap, where the next batch reuses them.
Only where memory comes from changes, never what is computed: tables and weights are the same bytes.

Blocks of 64 MiB and more still get their own mmap: heap blocks that large fragment the heap. Measured
(2 cores) for glibc's defaults, then thresholds of 64 MiB, 128 MiB and 1 GiB: vit-tiny's encoder at 512
images 673, 930, 1,030 and 1,043 img/s; the saliency step on ViT-B-32 at 224 px (its text tower over
1,000 ImageNet prompts) 52, 50, 47 and 42 s, peaking at 2.3, 2.6, 2.9 and 3.4 GB. 64 MiB keeps the peak.
The cost that remains: up to 1 GiB of freed heap stays with the process, for its next batches.
Where the user set glibc's malloc variables themselves (``MALLOC_*``, ``GLIBC_TUNABLES``), theirs win.
"""
from __future__ import annotations

import ctypes
import os
import sys

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's malloc.h
MMAP_FROM = 64 << 20  # blocks under 64 MiB come from the heap; larger ones are mapped afresh, as before
KEEP_FREE = 1 << 30  # freed heap kept for reuse before glibc hands it back

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
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_FROM)) and bool(mallopt(_M_TRIM_THRESHOLD, KEEP_FREE))
