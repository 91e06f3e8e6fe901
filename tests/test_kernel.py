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
