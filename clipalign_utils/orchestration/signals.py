"""How a command answers Ctrl-C and SIGTERM: one handler for a block (:func:`handled`), or both held back while
a run is being put back (:func:`deferred`). Python sets handlers in the main thread only; elsewhere a block runs
with the handlers as they are."""
from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Callable, Iterable

STOPPING = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def handled(handler: Callable, signums: Iterable[int]):
    """``handler`` for ``signums`` while the block runs; the handlers before it afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, handler) for signum in signums}
    try:
        yield
    finally:
        for signum, handler_before in previous.items():
            signal.signal(signum, handler_before)


@contextmanager
def deferred():
    """Ctrl-C and SIGTERM held back while the block runs, then raised as KeyboardInterrupt if one came."""
    arrived = []
    with handled(lambda signum, frame: arrived.append(signum), STOPPING):
        yield
    if arrived:
        raise KeyboardInterrupt
