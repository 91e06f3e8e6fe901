"""One Jupyter kernel for the notebooks a process executes, so torch, open_clip and the package are imported
once per command rather than once per page (about 5 s a page on two cores).

Before each notebook the kernel is put back as a new one would be: the user namespace cleared (``%reset``),
figures closed, the working directory the notebook runs in, the execution count at 1. Imported modules stay:
that is the saving. (torch seeds its default generator at random in each new process, so no notebook's
numbers may rest on it: every draw the measurements make is seeded, and a run's tables are the same with
shared or fresh kernels.) A kernel that died
(or was interrupted), or whose environment variables no longer match the process's, is replaced by a new one.
``CLIPALIGN_FRESH_KERNEL=1`` gives every notebook a kernel of its own, as before.
"""
from __future__ import annotations

import atexit
import os
import sys
from pathlib import Path

_RESET = """\
import sys as _sys
if "matplotlib.pyplot" in _sys.modules:  # closed before %reset collects, so their cycles go with it
    _sys.modules["matplotlib.pyplot"].close("all")
get_ipython().run_line_magic("reset", "-f")  # _sys with the rest
import gc as _gc, os as _os, sys as _sys
# What outlived %reset's collections is the imported modules and their caches: frozen, the next notebook's
# collections (%reset's two, and the automatic full ones) skip them instead of walking torch's objects
# again (each full collection cost about 0.25 s with torch, open_clip and piq imported).
_gc.freeze()
# %reset drops __main__.__spec__, which multiprocessing's spawn reads (measure.in_own_processes)
_sys.modules["__main__"].__dict__.setdefault("__spec__", None)
if "clipalign_utils.record" in _sys.modules:  # an entry the notebook before staged and never wrote stays unwritten
    _sys.modules["clipalign_utils.record"].discard_staged()
_os.chdir({cwd!r})
del _gc, _os, _sys
get_ipython().execution_count = 1
"""


class _Shared:
    manager = None  # jupyter_client's AsyncKernelManager, started by the first notebook's client
    environment: dict | None = None
    sockets: str | None = None  # the folder of its Unix sockets
    # The clients nbclient made for notebooks on it: not owning the manager, nbclient leaves their channels
    # running (and jupyter_client warns "Could not destroy zmq context" when they are collected).
    clients: list = []


def fresh_kernels() -> bool:
    return os.environ.get("CLIPALIGN_FRESH_KERNEL", "0") not in ("", "0")


class _KernelGone(Exception):
    """The kernel died before its reset replied."""


def manager_for(cwd: str):
    """The kernel manager the next notebook runs on. A kernel still running is reset for it first; with
    ``CLIPALIGN_FRESH_KERNEL=1`` it is a new one each time (the caller discards it after its notebook)."""
    if _Shared.manager is not None and (fresh_kernels() or _Shared.environment != dict(os.environ) or not _alive()):
        discard()
    if _Shared.manager is not None:
        try:
            _reset(cwd)
            return _Shared.manager
        except _KernelGone:  # it died after the check above: a new one, as if the check had seen it
            discard()
    # nbclient starts it (with papermill's cwd) on first use and, not owning it, leaves it running.
    _Shared.manager = _manager_class()(kernel_name="python3", **_transport())
    _Shared.manager.client_factory = _ready_client()
    _Shared.environment = dict(os.environ)
    return _Shared.manager


def _manager_class() -> type:
    """jupyter_client's manager, whose kernel is killed when this process dies (Linux's parent-death signal):
    a command killed with SIGKILL would otherwise leave its kernel computing, and writing into the run, until
    ipykernel's own check notices its parent gone some seconds later."""
    import threading

    from jupyter_client.manager import AsyncKernelManager

    class Manager(AsyncKernelManager):
        async def start_kernel(self, **kw):
            # the signal follows the thread that starts the kernel: only the main thread lives as long as we do
            if sys.platform.startswith("linux") and threading.current_thread() is threading.main_thread():
                kw.setdefault("preexec_fn", _die_with_parent)
            return await super().start_kernel(**kw)

    return Manager


def _die_with_parent() -> None:
    import ctypes
    import signal

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _ready_client() -> type:
    """The kernel client nbclient makes for each notebook: jupyter_client's, but ready as soon as IOPub
    delivers the idle status of its ``kernel_info`` request, rather than after 0.2 s of IOPub silence (the
    flush that follows the readiness check there), which every page paid."""
    import time
    from queue import Empty

    from jupyter_client.asynchronous import AsyncKernelClient

    class ReadyClient(AsyncKernelClient):
        def start_channels(self, *args, **kwargs) -> None:
            super().start_channels(*args, **kwargs)
            _Shared.clients.append(self)

        async def wait_for_ready(self, timeout: float | None = None) -> None:
            deadline = time.monotonic() + (float("inf") if timeout is None else timeout)
            while True:
                msg_id = self.kernel_info()
                reply = await self._shell_reply(msg_id, wait=1.0)
                # A SUB socket misses what was published before it joined (ZeroMQ): when the idle status of
                # this request is not seen, IOPub may not be connected yet, so ask again, as jupyter_client does.
                if reply is not None and await self._idle_after(msg_id, wait=0.2):
                    self._handle_kernel_info_reply(reply)
                    return
                if not await self._async_is_alive():
                    raise RuntimeError("Kernel died before replying to kernel_info")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"Kernel didn't respond in {timeout:.0f} seconds")

        async def _shell_reply(self, msg_id: str, wait: float):
            while True:
                try:
                    msg = await self.shell_channel.get_msg(timeout=wait)
                except Empty:
                    return None
                if msg["parent_header"].get("msg_id") == msg_id:
                    return msg

        async def _idle_after(self, msg_id: str, wait: float) -> bool:
            while True:
                try:
                    msg = await self.iopub_channel.get_msg(timeout=wait)
                except Empty:
                    return False
                if (msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "status"
                        and msg["content"].get("execution_state") == "idle"):
                    return True

    return ReadyClient


def _transport() -> dict:
    """Unix sockets in a folder of the process's own (mode 0700) rather than TCP on loopback: nothing else on
    the machine can listen in, and ipykernel has no TCP-without-encryption warning to print. (An absolute
    path: the kernel runs in the notebook's folder, the reset's client in ours.) TCP where there are none."""
    if os.name == "nt":
        return {}
    import tempfile

    _remove_orphaned_sockets(tempfile.gettempdir())
    # removed with the kernel (discard); named by our process, so a command killed outright leaves a folder
    # the next one can tell is orphaned
    _Shared.sockets = tempfile.mkdtemp(prefix=f"clipalign-kernel-{os.getpid()}-")
    return {"transport": "ipc", "ip": os.path.join(_Shared.sockets, "kernel")}


def _remove_orphaned_sockets(tmp: str) -> None:
    """The socket folders of commands that were killed (SIGKILL leaves no clean-up): those whose process is gone."""
    import re
    import shutil

    for folder in Path(tmp).glob("clipalign-kernel-*-*"):
        found = re.fullmatch(r"clipalign-kernel-(\d+)-.*", folder.name)
        if not found or not folder.is_dir() or folder.stat().st_uid != os.getuid():
            continue
        try:
            os.kill(int(found.group(1)), 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except (PermissionError, OverflowError):
            pass


def _alive() -> bool:
    from nbclient.util import run_sync

    try:
        return bool(_Shared.manager.has_kernel and run_sync(_Shared.manager.is_alive)())
    except Exception:  # a manager in a broken state is as good as dead
        return False


def _reset(cwd: str) -> None:
    """Run the reset on the kernel and wait for its reply on the shell channel alone. (A client's
    ``wait_for_ready`` polls heartbeats and drains IOPub for at least 0.4 s; a silent execution needs
    neither, and the request waits in ZeroMQ's queue until the connection is up.)"""
    import time
    from queue import Empty

    from jupyter_client import BlockingKernelClient

    client = BlockingKernelClient()
    client.load_connection_info(_Shared.manager.get_connection_info())
    client.start_channels(iopub=False, stdin=False, hb=False, control=False)
    try:
        msg_id = client.execute(_RESET.format(cwd=cwd), silent=True, store_history=False)
        deadline = time.monotonic() + 60
        while True:
            try:  # in slices: a kernel that died meanwhile never replies, and is replaced rather than waited for
                reply = client.get_shell_msg(timeout=min(1.0, max(0.0, deadline - time.monotonic())))
            except Empty:
                if not _alive():
                    raise _KernelGone from None
                if time.monotonic() >= deadline:
                    raise RuntimeError("the kernel reset got no reply in 60 s") from None
                continue
            if reply["parent_header"].get("msg_id") == msg_id:
                break
        if reply["content"]["status"] != "ok":
            raise RuntimeError(f"the kernel reset failed: {reply['content'].get('evalue')}")
    finally:
        client.stop_channels()


def release_clients() -> None:
    """Stop the channels of the clients notebooks ran through (the kernel runs on)."""
    while _Shared.clients:
        _Shared.clients.pop().stop_channels()


def discard() -> None:
    """Shut the shared kernel down (the next notebook starts a new one)."""
    release_clients()
    manager, _Shared.manager, _Shared.environment = _Shared.manager, None, None
    sockets, _Shared.sockets = _Shared.sockets, None
    if manager is not None and manager.has_kernel:
        from nbclient.util import run_sync

        try:
            run_sync(manager.shutdown_kernel)(now=True)
        except Exception:  # already gone
            pass
    if sockets is not None:
        import shutil

        shutil.rmtree(sockets, ignore_errors=True)


atexit.register(discard)
