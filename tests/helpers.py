"""Helpers the tests share (fixtures are in conftest.py): a step's tables against the registry's schema,
per-checkpoint tables and runs built by hand, an executed notebook's text, a training that crashes, a
file server on 127.0.0.1."""
from __future__ import annotations

import hashlib

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse

import pandas as pd

from clipalign_utils import checkpoints, registry
from clipalign_utils.layout import RunDir


def steps_that_only_mark_done(monkeypatch, *modules) -> list[tuple[str, str]]:
    """``execute_step`` replaced, in the pipeline and in each of ``modules`` that imported it, by one that only
    writes the step's executed notebook (which marks the step done); returns the (run folder name, step) calls."""
    from clipalign_utils.orchestration import pipeline

    calls = []

    def mark_done(step, run_dir, resolved, extra=None, progress=True):
        calls.append((Path(run_dir).name, step))
        page = RunDir(run_dir).executed(registry.get(step).notebook)
        page.parent.mkdir(parents=True, exist_ok=True)
        page.write_text("{}")
        return page

    for module in (pipeline, *modules):
        monkeypatch.setattr(module, "execute_step", mark_done)
    return calls


def checkpoint_name(epoch: float) -> str:
    """The name a checkpoint of ``epoch`` has (``epoch_0.5``), as training writes it."""
    return f"epoch_{epoch:g}"


def checkpoint_table(epochs, **columns) -> pd.DataFrame:
    """One row per checkpoint (checkpoint, epoch) with ``columns`` (lists, arrays or scalars)."""
    epochs = [float(e) for e in epochs]
    return pd.DataFrame({"checkpoint": [checkpoint_name(e) for e in epochs], "epoch": epochs, **columns})


def fake_run(run_dir: Path, epochs=(0, 1, 2), model: str = "clipalign-tiny", image_size: int = 32) -> checkpoints.Run:
    """A ``Run`` whose checkpoints are names only (nothing is loaded): for code that reads the run's
    checkpoint list and directory."""
    return checkpoints.Run(Path(run_dir), model, image_size,
                           [checkpoints.Checkpoint(Path(run_dir) / "checkpoints" / f"{checkpoint_name(e)}.pt", float(e))
                            for e in epochs])


def assert_step_tables(run_dir, step: str, checkpoint_names=None) -> dict[str, pd.DataFrame]:
    """Every table the registered ``step`` writes is in ``run_dir`` with its schema's contract columns,
    in order (more columns are welcome), and — given ``checkpoint_names`` — one set of rows per
    checkpoint (a saliency baseline row aside). Returns the tables."""
    found = {}
    for table in registry.get(step).tables:
        frame = pd.read_csv(RunDir(run_dir).table(table.name))
        assert list(frame.columns[:len(table.columns)]) == list(table.columns) or \
            set(table.columns) <= set(frame.columns), f"{table.name}: columns {list(frame.columns)}"
        assert not table.missing_columns(frame.columns), table.name
        if checkpoint_names is not None:
            assert set(frame["checkpoint"]) - set(registry.get("saliency").summary.baselines) == set(checkpoint_names), table.name
        found[table.name] = frame
    return found


def assert_same_table(run_dir, reference_run_dir, table: str) -> None:
    """Reproducibility: a step on an independently trained run with the same seed (the
    `smoke_run` fixture vs the pipeline's own training) writes a byte-identical metric table."""
    ours = RunDir(run_dir).table(table).read_text()
    assert ours == RunDir(reference_run_dir).table(table).read_text(), f"{table}.csv differs"


class TrainingCrash(Exception):
    """Raised by ``train_interrupted_after`` in place of writing a checkpoint."""


def train_interrupted_after(run_dir, params, last_epoch: float, monkeypatch) -> None:
    """Train ``run_dir`` as if the process died while writing the first checkpoint after ``last_epoch``:
    that checkpoint and the later ones never exist (the latest one left holds the optimizer state)."""
    from clipalign_utils import train

    real_save = train._atomic_torch_save

    def save_until_crash(obj, path):
        if path.name.startswith("epoch_") and float(path.stem.split("_")[1]) > last_epoch:
            raise TrainingCrash(path.name)
        real_save(obj, path)
    monkeypatch.setattr(train, "_atomic_torch_save", save_until_crash)
    try:
        train.train(run_dir, params, progress=False)
    except TrainingCrash:
        pass
    finally:
        monkeypatch.setattr(train, "_atomic_torch_save", real_save)


def notebook_text(notebook: dict | Path, markdown_only: bool = False) -> str:
    """What an executed notebook shows as text: its printed streams and its Markdown outputs (the
    computed sentences, ``clipalign_utils.prose.say``); ``markdown_only`` keeps the latter alone."""
    if not isinstance(notebook, dict):
        notebook = json.loads(Path(notebook).read_text())
    parts = []
    for cell in notebook["cells"]:
        for output in cell.get("outputs", []):
            if not markdown_only:
                parts.append("".join(output.get("text", "")))
            parts.append("".join(output.get("data", {}).get("text/markdown", "")))
    return "".join(parts)


# --- a file server on 127.0.0.1 (checkpoint sources, dataset fetches) --------------------------------
class QuietHandler(BaseHTTPRequestHandler):
    """A quiet handler whose HEAD and GET share ``_serve``."""

    def log_message(self, *args):
        pass

    def do_HEAD(self):
        self._serve(body=False)

    def do_GET(self):
        self._serve(body=True)


class FileServer(QuietHandler):
    """Serves ``root``'s files; counts the GETs per path (and, in ``sent``, the body bytes); ``truncate`` cuts a
    file's body short; a ``Range: bytes=N-`` request is answered with the rest (206), where ``If-Range`` names
    the file's ETag, as nginx and S3 do (``ranges = False``: a server that ignores ranges)."""

    root: Path
    gets: dict
    truncate: set = set()
    ranges: bool = True
    etag: bool = True  # False: no ETag (and no Last-Modified unless last_modified), so nothing tells a client the file is unchanged
    last_modified: str | None = None  # sent as Last-Modified where set
    honours_if_range: bool = True  # False: a range is served whatever If-Range names (a server that ignores it)
    gzip: bool = False  # True: the body gzip-encoded (Content-Encoding), whatever the client asked for
    # True: a .gz file served as it is, labelled Content-Encoding: gzip (Apache's "AddEncoding x-gzip .gz")
    gz_labelled: bool = False

    def _serve(self, body: bool):
        path = self.root / unquote(urlparse(self.path).path).lstrip("/")
        if not path.is_file():
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data = path.read_bytes()
        if self.gzip:
            import gzip

            data = gzip.compress(data, mtime=0)
        etag = f'"{hashlib.md5(data).hexdigest()}"'  # as S3 and nginx-like servers give one
        asked = self.headers.get("Range", "")
        start = 0
        validator = etag if self.etag else self.last_modified
        if self.ranges and validator and asked.startswith("bytes=") and asked.endswith("-") and \
                (not self.honours_if_range or self.headers.get("If-Range", validator) == validator):
            start = int(asked[len("bytes="):-1])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(data) - start))
        if self.etag:
            self.send_header("ETag", etag)
        if self.last_modified:
            self.send_header("Last-Modified", self.last_modified)
        if self.gzip or (self.gz_labelled and path.name.endswith(".gz")):
            self.send_header("Content-Encoding", "x-gzip" if self.gz_labelled else "gzip")
        self.end_headers()
        if body:
            self.gets[path.name] = self.gets.get(path.name, 0) + 1
            sending = data[start:len(data) // 2] if path.name in self.truncate else data[start:]
            sent = getattr(type(self), "sent", None)
            if sent is not None:
                sent[path.name] = sent.get(path.name, 0) + len(sending)
            self.wfile.write(sending)


def start_server(handler) -> tuple[ThreadingHTTPServer, str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    # A short poll: shutdown() waits for serve_forever's next poll (0.5 s by default), at every test's teardown.
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}"


def notebook_outputs(notebook: dict, replacements: dict[str, str] | None = None) -> list[str]:
    """Every code cell's text outputs in order (streams, text/plain, text/html, text/markdown), with
    ``replacements`` applied (one folder's path for another's), and a digest of each image."""
    import hashlib

    found = []
    for cell in notebook["cells"]:
        for output in cell.get("outputs", []):
            data = output.get("data", {"text/plain": output.get("text", "")})
            for kind in ("text/plain", "text/html", "text/markdown", "image/png"):
                if kind in data:
                    text = "".join(data[kind]) if isinstance(data[kind], list) else data[kind]
                    if kind == "image/png":
                        text = "png " + hashlib.sha256(text.encode()).hexdigest()
                    for before, after in (replacements or {}).items():
                        text = text.replace(before, after)
                    found.append(text)
    return found
