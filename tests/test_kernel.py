"""The kernel a process's notebooks share (``orchestration.kernel``): each notebook finds it as a new kernel
would be (no variable of the notebook before, execution count 1, the working directory), modules stay imported, and a change of environment or a dead
kernel brings a new one."""
from __future__ import annotations

import json
import os

import pytest

from clipalign_utils import registry
from clipalign_utils.orchestration import kernel, pipeline

HEADER = ("# ---\n# jupyter:\n#   kernelspec:\n#     display_name: Python 3\n#     language: python\n"
          "#     name: python3\n# ---\n\n")
PROBE = (HEADER + '# %% tags=["parameters"]\nrun_dir = ""\n\n'
         "# %%\nimport json, os, sys\ntorch_imported_before = 'torch' in sys.modules\nimport torch\n"
         "import gc, weakref\nimport matplotlib\nfrom clipalign_utils import record\nmatplotlib.use('agg')\n"
         "import matplotlib.pyplot as plt\n"
         "earlier = getattr(json, '_probe_refs', None)  # weak references to the notebook before's garbage\n"
         "print(json.dumps({'left_over': 'left_over' in globals(),\n"
         "                  'cwd': os.getcwd(), 'pid': os.getpid(), 'env': os.environ.get('CLIPALIGN_PROBE', ''),\n"
         "                  'torch_imported_before': torch_imported_before,\n"
         "                  'spawn_ready': hasattr(sys.modules['__main__'], '__spec__'),\n"
         "                  'frozen': gc.get_freeze_count(),\n"
         "                  'tables_read_before': sorted(map(str, record._READ)),\n"
         "                  'earlier_freed': None if earlier is None else [r() is None for r in earlier]}))\n"
         "class Cycle:\n    pass\ncycle = Cycle()\ncycle.itself = cycle\nfigure = plt.figure()\n"
         "json._probe_refs = [weakref.ref(cycle), weakref.ref(figure)]\n"
         "record.note_table_read('/nowhere/metrics/iqa.csv', b'x')  # a failed page's read, never committed\n"
         "left_over = 1\nos.chdir('/')\n")


def _running(pid: int) -> bool:
    """Whether process ``pid`` is there and not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _probe(tmp_path, k: int) -> tuple[dict, dict]:
    notebook = pipeline.run_notebook("96_probe", tmp_path / f"run{k}", {"run_dir": "x"}, progress=False)
    cells = [c for c in json.loads(notebook.read_text())["cells"] if c["cell_type"] == "code"]
    probe = next(c for c in cells if "json.dumps" in "".join(c["source"]))
    return json.loads("".join(probe["outputs"][0]["text"])), probe


@pytest.fixture
def probe_step(tmp_path, monkeypatch):
    monkeypatch.delenv("CLIPALIGN_FRESH_KERNEL", raising=False)
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    (notebooks / "96_probe.py").write_text(PROBE)
    registry.register(registry.Step("probe", "96_probe", notebook_dir=notebooks))
    kernel.discard()
    yield
    registry.unregister("probe")
    kernel.discard()


def test_notebooks_share_one_kernel_that_each_finds_as_new(probe_step, tmp_path, monkeypatch):
    made = []

    class Recording(list):  # the clients nbclient makes for the notebooks, as they start their channels
        def append(self, client):
            made.append(client)
            super().append(client)

    monkeypatch.setattr(kernel._Shared, "clients", Recording())
    first, _ = _probe(tmp_path, 1)
    second, cell = _probe(tmp_path, 2)
    # Each notebook's client is stopped after it (nbclient leaves it running on a manager it does not own,
    # and jupyter_client warns "Could not destroy zmq context" when it is collected); the kernel runs on.
    assert len(made) == 2 and not any(client.channels_running for client in made) and kernel._alive()
    assert second["pid"] == first["pid"]  # one kernel: torch was imported once
    assert not first["left_over"] and not second["left_over"]
    # the tables the notebook before read and never committed (record._READ) are not the next one's
    assert first["tables_read_before"] == second["tables_read_before"] == []
    assert first["spawn_ready"] and second["spawn_ready"]  # a reset kernel can still start spawn processes
    assert second["cwd"] == first["cwd"] == str(pipeline.REPO_ROOT)
    assert second["torch_imported_before"]
    # The modules the first left are frozen out of the collector's walks (the reset's speed), while what the
    # first notebook left in cycles, a figure too, was collected before the freeze, not kept for good.
    assert second["frozen"] > 0 and second["earlier_freed"] == [True, True]
    parameters = 2  # the parameters cell and papermill's injected one come first
    assert cell["execution_count"] == parameters + 1
    # Over Unix sockets in a private folder, not TCP on loopback; the folder goes with the kernel.
    sockets = kernel._Shared.sockets
    assert kernel._Shared.manager.transport == "ipc" and oct(os.stat(sockets).st_mode & 0o777) == "0o700"
    monkeypatch.setenv("CLIPALIGN_PROBE", "changed")  # a kernel started before would not see it
    third, _ = _probe(tmp_path, 3)
    assert third["pid"] != first["pid"] and third["env"] == "changed"
    assert not os.path.exists(sockets) and os.path.isdir(kernel._Shared.sockets)
    assert not _running(first["pid"])  # the kernel it replaced was shut down, not left computing


def test_fresh_kernel_setting_gives_each_notebook_its_own(probe_step, tmp_path, monkeypatch):
    monkeypatch.setenv("CLIPALIGN_FRESH_KERNEL", "1")
    first, _ = _probe(tmp_path, 1)
    second, _ = _probe(tmp_path, 2)
    assert first["pid"] != second["pid"] and not second["torch_imported_before"]
    assert kernel._Shared.manager is None and kernel._Shared.sockets is None  # shut down after its notebook


class _Channel:
    """A client channel that answers ``get_msg`` from a list, then times out as ZeroMQ's would."""

    def __init__(self):
        self.messages = []

    async def get_msg(self, timeout=None):
        from queue import Empty

        if not self.messages:
            raise Empty
        return self.messages.pop(0)


def _message(parent: str, msg_type: str, **content) -> dict:
    return {"parent_header": {"msg_id": parent}, "msg_type": msg_type, "content": content}


def test_a_client_is_ready_once_iopub_shows_its_request_idle_and_asks_again_when_it_missed_it():
    import asyncio

    class Fake(kernel._ready_client()):
        shell_channel = iopub_channel = None  # the real ones are properties over sockets

        def __init__(self):
            self.shell_channel, self.iopub_channel, self.requests, self.ready_with = _Channel(), _Channel(), [], None

        def kernel_info(self):
            msg_id = f"info{len(self.requests)}"
            self.requests.append(msg_id)
            self.shell_channel.messages.append(_message(msg_id, "kernel_info_reply", status="ok"))
            if len(self.requests) == 2:  # IOPub joined: it sees this request's busy and idle, after another's idle
                self.iopub_channel.messages += [_message("reset", "status", execution_state="idle"),
                                                _message(msg_id, "status", execution_state="busy"),
                                                _message(msg_id, "status", execution_state="idle")]
            return msg_id

        def _handle_kernel_info_reply(self, msg):
            self.ready_with = msg["parent_header"]["msg_id"]

        async def _async_is_alive(self):
            return True

    client = Fake()
    asyncio.run(client.wait_for_ready(timeout=5))
    # The first request's statuses were published before IOPub joined: not ready on its reply alone.
    assert client.requests == ["info0", "info1"] and client.ready_with == "info1"
    assert client.iopub_channel.messages == []  # nothing left for the notebook's first cell to take as its own


def test_a_killed_commands_socket_folder_is_removed_by_the_next(tmp_path):
    """A command killed outright leaves its kernel's socket folder in the temporary directory; the next command
    removes the folders of processes that are gone, and no other."""
    import os
    import subprocess
    import sys

    from clipalign_utils.orchestration.kernel import _remove_orphaned_sockets

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    folders = [tmp_path / f"clipalign-kernel-{gone}-a1b2", tmp_path / f"clipalign-kernel-{os.getpid()}-c3d4",
               tmp_path / "clipalign-kernel-e5f6", tmp_path / f"other-{gone}-g7"]
    for folder in folders:
        folder.mkdir()
        (folder / "kernel-1").write_text("")
    _remove_orphaned_sockets(str(tmp_path))
    assert [folder.exists() for folder in folders] == [False, True, True, True]


@pytest.mark.slow  # two kernels started, torch imported in each (about 7 s)
def test_a_kernel_that_died_between_notebooks_is_replaced_and_a_failed_reset_is_said(probe_step, tmp_path,
                                                                                      monkeypatch):
    """A kernel killed while no notebook ran on it (the OOM killer, a user's kill) is not reset, which would wait
    60 s for a reply and fail the next page: the next notebook gets a new kernel. A reset that fails (here its
    working directory is gone) stops the page rather than running it on a kernel not reset."""
    import signal
    import time

    first, _ = _probe(tmp_path, 1)
    os.kill(first["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 10
    while kernel._alive() and time.monotonic() < deadline:  # dead, not dying (its threads gone too)
        time.sleep(0.05)
    second, _ = _probe(tmp_path, 2)
    assert second["pid"] != first["pid"] and not second["left_over"]
    # one dying just after the check (seen alive, then killed): the reset finds it gone within a second or so
    # and a new kernel runs the page, rather than the page failing after the reset's 60 s
    os.kill(second["pid"], signal.SIGKILL)
    while kernel._alive() and time.monotonic() < deadline + 10:
        time.sleep(0.05)
    alive, answers = kernel._alive, [True]
    monkeypatch.setattr(kernel, "_alive", lambda: answers.pop() if answers else alive())
    started = time.monotonic()
    third, _ = _probe(tmp_path, 3)
    assert third["pid"] not in (first["pid"], second["pid"]) and not answers
    assert time.monotonic() - started < 30
    with pytest.raises(RuntimeError, match="the kernel reset failed"):
        kernel.manager_for(str(tmp_path / "gone"))


def test_an_interrupted_notebook_takes_its_kernel_with_it(probe_step, tmp_path, monkeypatch):
    """Ctrl-C mid-cell leaves the kernel busy with that cell: no later notebook may run on it."""
    import papermill

    def interrupted(*args, **kwargs):
        assert kernel._Shared.manager is kwargs["km"]
        raise KeyboardInterrupt

    monkeypatch.setattr(papermill, "execute_notebook", interrupted)
    with pytest.raises(KeyboardInterrupt):
        pipeline.run_notebook("96_probe", tmp_path / "run", {"run_dir": "x"}, progress=False)
    assert kernel._Shared.manager is None and kernel._Shared.sockets is None


def test_a_failed_notebook_takes_its_kernel_with_it(probe_step, tmp_path, monkeypatch):
    """A cell that raised may leave module state half-changed: the next notebook runs on a new kernel."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    def failing(source, partial, **kwargs):
        assert kernel._Shared.manager is kwargs["km"]
        open(partial, "w").write("{}")
        raise PapermillExecutionError(1, 1, "raise ValueError('x')", "ValueError", "x", [])

    monkeypatch.setattr(papermill, "execute_notebook", failing)
    with pytest.raises(pipeline.StepFailed, match=r"failed \(ValueError: x\)"):
        pipeline.run_notebook("96_probe", tmp_path / "run", {"run_dir": "x"}, progress=False)
    assert kernel._Shared.manager is None and kernel._Shared.sockets is None
    assert (tmp_path / "run" / "notebooks" / "96_probe.failed.ipynb").exists()


def test_a_kernels_socket_folder_is_its_processs_own_and_the_orphaned_ones_go_first(tmp_path, monkeypatch):
    """The folder a kernel's sockets are made in names this process (so that a command killed outright leaves
    one the next can tell is orphaned), and making it removes the orphaned ones."""
    import re
    import subprocess
    import sys
    import tempfile

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    orphaned = tmp_path / f"clipalign-kernel-{gone}-a1b2"
    orphaned.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(kernel._Shared, "sockets", None)
    transport = kernel._transport()
    made = kernel._Shared.sockets
    assert not orphaned.exists()
    assert re.fullmatch(rf"clipalign-kernel-{os.getpid()}-.+", os.path.basename(made))
    assert os.path.dirname(made) == str(tmp_path) and oct(os.stat(made).st_mode & 0o777) == "0o700"
    assert transport == {"transport": "ipc", "ip": os.path.join(made, "kernel")}


# ---------------------------------------------------------------- in-process: the branches a real kernel rarely takes
class _FakeManager:
    """A kernel manager that records its shutdowns (``shutdown_kernel`` may raise, as one already gone does)."""

    def __init__(self, alive=True, has_kernel=True, fails=None):
        self.alive, self.has_kernel, self.fails, self.shutdowns = alive, has_kernel, fails, []

    async def is_alive(self):
        if isinstance(self.alive, Exception):
            raise self.alive
        return self.alive

    async def shutdown_kernel(self, now=False):
        self.shutdowns.append(now)
        if self.fails:
            raise self.fails

    def get_connection_info(self):
        return {}


@pytest.fixture
def no_kernel(monkeypatch):
    """kernel._Shared as a fresh process has it, with managers that start nothing."""
    monkeypatch.delenv("CLIPALIGN_FRESH_KERNEL", raising=False)
    for name, value in (("manager", None), ("environment", None), ("sockets", None), ("clients", [])):
        monkeypatch.setattr(kernel._Shared, name, value)
    made = []

    class New(_FakeManager):
        def __init__(self, **kw):
            super().__init__()
            self.kw = kw
            made.append(self)

    monkeypatch.setattr(kernel, "_manager_class", lambda: New)
    monkeypatch.setattr(kernel, "_transport", lambda: {"transport": "ipc", "ip": "/x/kernel"})
    monkeypatch.setattr(kernel, "_ready_client", lambda: "ReadyClient")
    return made


def test_a_kernel_that_dies_during_its_reset_is_replaced_by_a_new_one(no_kernel, monkeypatch):
    # Seen alive, then gone before the reset replied: the page runs on a new kernel, the dead one shut down.
    old = _FakeManager()
    monkeypatch.setattr(kernel._Shared, "manager", old)
    monkeypatch.setattr(kernel._Shared, "environment", dict(os.environ))
    resets = []

    def gone(cwd):
        resets.append(cwd)
        raise kernel._KernelGone

    monkeypatch.setattr(kernel, "_reset", gone)
    manager = kernel.manager_for("/the/cwd")
    assert resets == ["/the/cwd"] and old.shutdowns == [True]
    assert no_kernel == [manager] and kernel._Shared.manager is manager
    assert manager.kw == {"kernel_name": "python3", "transport": "ipc", "ip": "/x/kernel"}
    assert manager.client_factory == "ReadyClient" and kernel._Shared.environment == dict(os.environ)


def test_a_live_kernel_with_the_same_environment_is_reset_and_kept(no_kernel, monkeypatch):
    # The saving: no new kernel when the one there is alive and its environment the process's.
    old = _FakeManager()
    monkeypatch.setattr(kernel._Shared, "manager", old)
    monkeypatch.setattr(kernel._Shared, "environment", dict(os.environ))
    resets = []
    monkeypatch.setattr(kernel, "_reset", resets.append)
    assert kernel.manager_for("/c") is old and resets == ["/c"] and no_kernel == [] and old.shutdowns == []


def test_the_kernel_dies_with_its_parent_and_a_libc_without_prctl_is_let_be(monkeypatch):
    # PR_SET_PDEATHSIG (1) with SIGKILL in the child; no prctl (not Linux's libc) or no libc: nothing, no error.
    import ctypes
    import signal

    calls = []

    class Libc:
        def prctl(self, *args):
            calls.append(args)

    monkeypatch.setattr(ctypes, "CDLL", lambda name, use_errno=False: Libc())
    assert kernel._die_with_parent() is None and calls == [(1, signal.SIGKILL)]
    monkeypatch.setattr(ctypes, "CDLL", lambda name, use_errno=False: object())  # AttributeError: no prctl
    kernel._die_with_parent()

    def no_libc(name, use_errno=False):
        raise OSError("no libc")

    monkeypatch.setattr(ctypes, "CDLL", no_libc)
    kernel._die_with_parent()


class _YieldingChannel(_Channel):
    """A channel that lets the event loop run before it answers (so that a wait on it can be timed out)."""

    async def get_msg(self, timeout=None):
        import asyncio

        await asyncio.sleep(0)
        return await super().get_msg(timeout)


def _silent_client(alive: bool):
    """A ReadyClient whose kernel never answers kernel_info (its shell channel times out)."""

    class Silent(kernel._ready_client()):
        shell_channel = iopub_channel = None

        def __init__(self):
            self.shell_channel, self.iopub_channel, self.requests = _YieldingChannel(), _YieldingChannel(), 0

        def kernel_info(self):
            self.requests += 1
            return f"info{self.requests}"

        async def _async_is_alive(self):
            return alive

    return Silent()


def test_a_client_whose_kernel_died_or_stays_silent_is_not_waited_for_forever():
    # A dead kernel: one line at once; a live one that never replies: one line once the timeout has passed.
    import asyncio

    dead = _silent_client(alive=False)
    with pytest.raises(RuntimeError, match=r"^Kernel died before replying to kernel_info$"):
        asyncio.run(asyncio.wait_for(dead.wait_for_ready(timeout=60), 5))
    assert dead.requests == 1
    silent = _silent_client(alive=True)
    with pytest.raises(RuntimeError, match=r"^Kernel didn't respond in 0 seconds$"):
        asyncio.run(asyncio.wait_for(silent.wait_for_ready(timeout=0), 5))  # (5 s: a loop that never ends)
    assert silent.requests == 1


def test_a_shell_reply_to_another_request_is_passed_over_and_silence_is_none():
    import asyncio

    client = _silent_client(alive=True)
    client.shell_channel.messages += [_message("other", "execute_reply"), _message("mine", "kernel_info_reply")]
    assert asyncio.run(client._shell_reply("mine", wait=0))["parent_header"]["msg_id"] == "mine"
    assert asyncio.run(client._shell_reply("mine", wait=0)) is None


def test_windows_kernels_talk_tcp(monkeypatch):
    # No Unix sockets there: jupyter_client's default transport, and no socket folder made.
    monkeypatch.setattr(os, "name", "nt")
    monkeypatch.setattr(kernel._Shared, "sockets", None)
    assert kernel._transport() == {} and kernel._Shared.sockets is None


def test_socket_folders_not_ours_or_not_folders_or_of_unknowable_processes_are_left(tmp_path, monkeypatch):
    # Only a folder of ours whose process is known to be gone is removed: a file, another user's folder, a pid
    # that is not one (overflow) or one we may not signal (another user's process) are kept.
    from clipalign_utils.orchestration.kernel import _remove_orphaned_sockets

    a_file = tmp_path / "clipalign-kernel-7-file"
    a_file.write_text("")
    huge = tmp_path / f"clipalign-kernel-{2**80}-a"
    others = tmp_path / "clipalign-kernel-8-b"
    gone = tmp_path / "clipalign-kernel-9-c"
    for folder in (huge, others, gone):
        folder.mkdir()
    real_stat = type(others).stat

    def stat(self, *args, **kwargs):  # ``others`` belongs to another user
        found = real_stat(self, *args, **kwargs)
        if self.name != others.name:
            return found
        return os.stat_result((*found[:4], os.getuid() + 1, *found[5:]))

    monkeypatch.setattr(type(others), "stat", stat)
    signalled = []

    def kill(pid, sig):
        signalled.append(pid)
        if pid == 7:
            raise PermissionError
        if pid > 2**63:
            raise OverflowError
        raise ProcessLookupError

    monkeypatch.setattr(os, "kill", kill)
    _remove_orphaned_sockets(str(tmp_path))
    assert a_file.exists() and huge.exists() and others.exists() and not gone.exists()
    assert sorted(signalled) == [9, 2**80]
    (tmp_path / "clipalign-kernel-7-d").mkdir()
    _remove_orphaned_sockets(str(tmp_path))
    assert (tmp_path / "clipalign-kernel-7-d").exists()  # PermissionError: a process of another user's, alive


def test_a_manager_in_a_broken_state_is_taken_for_dead(monkeypatch):
    monkeypatch.setattr(kernel._Shared, "manager", _FakeManager(alive=RuntimeError("broken")))
    assert kernel._alive() is False
    monkeypatch.setattr(kernel._Shared, "manager", _FakeManager(alive=True, has_kernel=False))
    assert kernel._alive() is False
    monkeypatch.setattr(kernel._Shared, "manager", _FakeManager(alive=True))
    assert kernel._alive() is True


def test_discarding_a_kernel_already_gone_still_removes_its_sockets(no_kernel, tmp_path, monkeypatch):
    # Its shutdown raising (the process gone) does not stop the clean-up: state cleared, folder removed.
    sockets = tmp_path / "sockets"
    sockets.mkdir()
    gone = _FakeManager(fails=RuntimeError("no such process"))
    monkeypatch.setattr(kernel._Shared, "manager", gone)
    monkeypatch.setattr(kernel._Shared, "environment", {"A": "1"})
    monkeypatch.setattr(kernel._Shared, "sockets", str(sockets))
    kernel.discard()
    assert gone.shutdowns == [True] and not sockets.exists()
    assert (kernel._Shared.manager, kernel._Shared.environment, kernel._Shared.sockets) == (None, None, None)


class _ResetClient:
    """jupyter_client's BlockingKernelClient as _reset uses it, its shell replies from a list (Empty after)."""
    replies: list = []
    stopped: list = []

    def load_connection_info(self, info):
        pass

    def start_channels(self, **kw):
        pass

    def execute(self, code, silent=False, store_history=True):
        assert silent and not store_history and "os.chdir('/the/cwd')" in code.replace('"', "'")
        return "reset-1"

    def get_shell_msg(self, timeout=None):
        from queue import Empty

        assert 0.0 <= timeout <= 1.0  # in slices of a second at most
        if not self.replies:
            raise Empty
        return self.replies.pop(0)

    def stop_channels(self):
        self.stopped.append(True)


@pytest.fixture
def reset_client(monkeypatch):
    import jupyter_client

    monkeypatch.setattr(jupyter_client, "BlockingKernelClient", _ResetClient)
    monkeypatch.setattr(kernel._Shared, "manager", _FakeManager())
    monkeypatch.setattr(_ResetClient, "replies", [])
    monkeypatch.setattr(_ResetClient, "stopped", [])
    return _ResetClient


def test_a_reset_waits_for_its_own_reply_and_says_a_failed_one(reset_client, monkeypatch):
    monkeypatch.setattr(kernel, "_alive", lambda: True)
    reset_client.replies += [_message("another", "execute_reply", status="error", evalue="not mine"),
                             _message("reset-1", "execute_reply", status="ok")]
    kernel._reset("/the/cwd")
    assert reset_client.replies == [] and reset_client.stopped == [True]
    reset_client.replies += [_message("reset-1", "execute_reply", status="error", evalue="no such folder")]
    with pytest.raises(RuntimeError, match=r"^the kernel reset failed: no such folder$"):
        kernel._reset("/the/cwd")
    assert reset_client.stopped == [True, True]  # the channels stopped however it ended


def test_a_reset_on_a_kernel_that_died_is_given_up_at_once(reset_client, monkeypatch):
    monkeypatch.setattr(kernel, "_alive", lambda: False)
    with pytest.raises(kernel._KernelGone):
        kernel._reset("/the/cwd")
    assert reset_client.stopped == [True]


def test_a_reset_unanswered_by_a_live_kernel_fails_after_60_s(reset_client, monkeypatch):
    # A clock that moves 25 s a look: the deadline is 60; a silent slice at 25 s is waited
    # through, the one at 100 s is past the deadline (the kernel asked after each).
    import time

    clock, alive_asked = iter(range(0, 1000, 25)), []
    monkeypatch.setattr(time, "monotonic", lambda: next(clock))
    monkeypatch.setattr(kernel, "_alive", lambda: alive_asked.append(True) or True)
    with pytest.raises(RuntimeError, match=r"^the kernel reset got no reply in 60 s$"):
        kernel._reset("/the/cwd")
    assert len(alive_asked) == 2 and reset_client.stopped == [True]
