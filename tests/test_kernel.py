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
         "import gc, weakref\nimport matplotlib\nmatplotlib.use('agg')\nimport matplotlib.pyplot as plt\n"
         "earlier = getattr(json, '_probe_refs', None)  # weak references to the notebook before's garbage\n"
         "print(json.dumps({'left_over': 'left_over' in globals(),\n"
         "                  'cwd': os.getcwd(), 'pid': os.getpid(), 'env': os.environ.get('CLIPALIGN_PROBE', ''),\n"
         "                  'torch_imported_before': torch_imported_before,\n"
         "                  'spawn_ready': hasattr(sys.modules['__main__'], '__spec__'),\n"
         "                  'frozen': gc.get_freeze_count(),\n"
         "                  'earlier_freed': None if earlier is None else [r() is None for r in earlier]}))\n"
         "class Cycle:\n    pass\ncycle = Cycle()\ncycle.itself = cycle\nfigure = plt.figure()\n"
         "json._probe_refs = [weakref.ref(cycle), weakref.ref(figure)]\n"
         "left_over = 1\nos.chdir('/')\n")


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
