"""Checkpoint sources and streamed runs (``clipalign run --checkpoints``), against servers on 127.0.0.1 only:
open_clip_train-format stand-ins (``module.`` keys, no epoch_0) fetched by URL template give the tables the
same files give from a folder; weights on disk never exceed what --keep-weights allows; a command stopped
mid-trajectory resumes without fetching finished checkpoints again; a 404 is one line and exit 2; the
``laion-scaling:`` source is listed and fetched through ``HF_ENDPOINT`` from a loopback hub."""
from __future__ import annotations

import hashlib
import json
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import unquote, urlparse

import pandas as pd
import pytest
import torch

from clipalign_utils import cli, models, schedule, sources
from clipalign_utils.errors import CheckpointError, ParameterError
from clipalign_utils.orchestration import stream
from clipalign_utils.orchestration.measure import step_module
from helpers import FileServer, QuietHandler, start_server

LAION_RUN = "Model-B-32_Data-400M_Samples-13B_lr-1e-3_bs-86k"
EPOCHS = (1, 2, 3)


def write_openclip_train_checkpoints(folder: Path, epochs=EPOCHS) -> Path:
    """open_clip_train's ``epoch_<N>.pt`` (a DDP run: ``module.`` keys; no untrained epoch_0) of the tiny scale."""
    folder.mkdir(parents=True, exist_ok=True)
    for epoch in epochs:
        model = models.create_model("tiny", seed=epoch)
        state = {f"module.{k}": v for k, v in model.state_dict().items()}
        torch.save({"epoch": epoch, "name": "stand-in", "state_dict": state}, folder / f"epoch_{epoch}.pt")
    return folder


class _Hub(QuietHandler):
    """The two Hugging Face endpoints huggingface_hub uses here: a folder's tree listing
    (``/api/models/<repo>/tree/main/<folder>``) and a file (``/<repo>/resolve/main/<path>``)."""

    files: dict  # path in repo -> bytes
    repo = sources.LAION_REPO

    def _send(self, status: int, data: bytes = b"", headers: dict | None = None, body: bool = True):
        self.send_response(status)
        for key, value in {"Content-Length": str(len(data)), **(headers or {})}.items():
            self.send_header(key, value)
        self.end_headers()
        if body:
            self.wfile.write(data)

    def _serve(self, body: bool):
        path = unquote(urlparse(self.path).path)
        tree, resolve = f"/api/models/{self.repo}/tree/main/", f"/{self.repo}/resolve/main/"
        if path.startswith(tree):
            folder = path[len(tree):].strip("/")
            entries = [{"type": "file", "path": p, "size": len(d), "oid": hashlib.sha1(d).hexdigest(),
                        "lfs": {"oid": hashlib.sha256(d).hexdigest(), "size": len(d), "pointerSize": 134}}
                       for p, d in sorted(self.files.items()) if p.rsplit("/", 1)[0] == folder]
            return self._send(200, json.dumps(entries).encode(), {"Content-Type": "application/json"}, body)
        name = path[len(resolve):] if path.startswith(resolve) else None
        if name not in self.files:
            return self._send(404, headers={"X-Error-Code": "EntryNotFound"}, body=body)
        data = self.files[name]
        return self._send(200, data, {"X-Repo-Commit": "0" * 40, "ETag": f'"{hashlib.sha256(data).hexdigest()}"'},
                          body)


@pytest.fixture(scope="module")
def stand_ins(tmp_path_factory) -> Path:
    return write_openclip_train_checkpoints(tmp_path_factory.mktemp("stand_ins") / "checkpoints")


@pytest.fixture
def file_server(stand_ins):
    handler = type("Files", (FileServer,), {"root": stand_ins, "gets": {}, "truncate": set()})
    server, address = start_server(handler)
    yield handler, address
    server.shutdown()
    server.server_close()


@contextmanager
def laion_hub(monkeypatch, tmp_path, files: dict):
    """huggingface_hub pointed at a loopback hub serving ``files`` (path in the repository -> bytes)."""
    server, address = start_server(type("Hub", (_Hub,), {"files": files}))
    monkeypatch.setenv("HF_ENDPOINT", address)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


# --- sources -----------------------------------------------------------------------------------------
def test_laion_run_names_give_architecture_and_samples():
    assert sources.parse_laion_run(LAION_RUN) == ("ViT-B-32", 13e9)
    assert sources.parse_laion_run("Model-H-14_Data-2B_Samples-34B_lr-5e-4_bs-79k") == ("ViT-H-14", 34e9)
    assert sources.parse_laion_run("Model-g-14_Data-2B_Samples-3B_lr-1e-3_bs-86k") == ("ViT-g-14", 3e9)
    with pytest.raises(ParameterError, match="not a scaling-laws run name"):
        sources.parse_laion_run("ViT-B-32")


def test_epoch_lists_and_keep_weights():
    assert sources.parse_epochs("4, 1,2,2") == [1.0, 2.0, 4.0] and sources.parse_epochs(None) is None
    with pytest.raises(ParameterError, match="--at-epochs 'a,b'"):
        sources.parse_epochs("a,b")
    wanted = [sources.RemoteCheckpoint(e, f"u{e}") for e in (1.0, 2.0, 3.0)]
    assert stream.parse_keep(None, wanted) == set() and stream.parse_keep("all", wanted) == {"epoch_1", "epoch_2",
                                                                                              "epoch_3"}
    assert stream.parse_keep("3", wanted) == {"epoch_3"}
    with pytest.raises(ParameterError, match="--keep-weights 7: not among the epochs analysed"):
        stream.parse_keep("7", wanted)
    # a whole streamed run measures every analysis step, then runs the synthesis; --only names steps
    assert stream.executed_steps(None) == ["iqa", "shape", "noise", "similarity", "saliency", "tradeoff"]
    assert stream.executed_steps("noise,iqa") == ["iqa", "noise"]
    assert stream.executed_steps("tradeoff,iqa,shape,noise") == ["iqa", "shape", "noise", "tradeoff"]
    with pytest.raises(ParameterError, match="--only train: a streamed run measures analysis steps"):
        stream.streamed_steps("train")


def test_url_template_fetches_verified_and_never_keeps_a_partial_file(file_server, tmp_path):
    handler, address = file_server
    source = sources.open_source(f"{address}/epoch_{{epoch}}.pt")
    with pytest.raises(ParameterError, match="a URL template cannot be listed"):
        source.checkpoints()
    first, second = source.checkpoints([1, 2])
    assert first.size == (handler.root / "epoch_1.pt").stat().st_size
    dest = source.fetch(first, tmp_path / "epoch_1.pt", progress=False)
    assert dest.read_bytes() == (handler.root / "epoch_1.pt").read_bytes()
    handler.truncate = {"epoch_2.pt"}  # the connection ends half-way through the file
    with pytest.raises(CheckpointError, match="epoch_2.pt"):
        source.fetch(second, tmp_path / "epoch_2.pt", progress=False)
    assert not (tmp_path / "epoch_2.pt").exists() and not (tmp_path / "epoch_2.pt.part").exists()


def test_a_missing_checkpoint_is_one_line_and_exit_2(file_server, tmp_path, capsys):
    _, address = file_server
    out = tmp_path / "run"
    code = cli.main(["run", "--out", str(out), "--checkpoints", f"{address}/epoch_{{epoch}}.pt", "--at-epochs", "1,9",
                     "--only", "iqa", "-p", "model=tiny", "--preset", "smoke"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert err[0] == f"clipalign: error: {address}/epoch_9.pt: HTTP 404 Not Found"
    assert not out.exists()  # checked before any folder is made


def test_laion_scaling_source_through_hf_endpoint(monkeypatch, tmp_path):
    files = {f"full_checkpoints/{LAION_RUN}/epoch_{e}.pt": bytes([e]) * (1000 * e) for e in (1, 2, 4)}
    files[f"full_checkpoints/{LAION_RUN}/epoch_latest.pt"] = b"latest"
    files["full_checkpoints/Model-B-32_Data-80M_Samples-3B_lr-1e-3_bs-86k/epoch_1.pt"] = b"other run"
    with laion_hub(monkeypatch, tmp_path, files):
        source = sources.open_source(f"laion-scaling:{LAION_RUN}")
        listed = source.checkpoints()
        assert [c.epoch for c in listed] == [1, 2, 4] and source.architecture == "ViT-B-32"
        # an epoch is a fixed number of samples: the release's table gives 413 M for this run
        assert source.samples_per_epoch == 413e6 and [c.samples_seen for c in listed] == [413e6, 826e6, 1652e6]
        # a run the table lacks: the name's total over the last epoch listed
        unlisted = sources.open_source("laion-scaling:Model-B-32_Data-80M_Samples-3B_lr-1e-3_bs-86k")
        assert [c.samples_seen for c in unlisted.checkpoints()] == [3e9] and unlisted.samples_per_epoch == 3e9
        chosen = source.checkpoints([2])[0]
        assert chosen.sha256 == hashlib.sha256(bytes([2]) * 2000).hexdigest() and chosen.size == 2000
        dest = source.fetch(chosen, tmp_path / "run" / "checkpoints" / "epoch_2.pt", progress=False)
        assert dest.read_bytes() == bytes([2]) * 2000
        assert sorted(p.name for p in dest.parent.iterdir()) == ["epoch_2.pt"]  # no hub leftovers beside it
        with pytest.raises(ParameterError, match="--at-epochs 3: laion-scaling:.* has epochs 1, 2, 4"):
            source.checkpoints([3])
        bad = sources.RemoteCheckpoint(2, chosen.location, chosen.size, "0" * 64)
        with pytest.raises(CheckpointError, match="is not the published"):
            source.fetch(bad, tmp_path / "again" / "epoch_2.pt", progress=False)
        assert not (tmp_path / "again" / "epoch_2.pt").exists()
    # the hub unreachable (offline; the client's own retries take 24 s, so its last error is raised here): one
    # line naming the source and the cause, not the HTTP client's traceback
    import huggingface_hub

    def offline(*args, **kwargs):
        raise ConnectionError("[Errno -2] Name or service not known")
    monkeypatch.setattr(huggingface_hub.HfApi, "list_repo_tree", offline)
    with pytest.raises(CheckpointError, match=r"^laion-scaling:Model-B-32.*: listing laion/scaling-laws-openclip/"
                                              r"full_checkpoints/.* failed: ConnectionError: \[Errno -2\] Name or "
                                              r"service not known \(offline\? the hub, or HF_ENDPOINT's mirror"):
        sources.open_source(f"laion-scaling:{LAION_RUN}").checkpoints()


# --- streamed runs -------------------------------------------------------------------------------------
def test_a_stopped_stream_resumes_without_fetching_finished_checkpoints(file_server, tmp_path, monkeypatch):
    handler, address = file_server
    monkeypatch.setattr(stream, "execute", lambda *args, **kwargs: [])  # the notebooks' pass: another test
    measure = step_module("iqa").measure
    seen = []

    def stopped_at_the_second(run, params, data=None):
        seen.append(run.checkpoints[0].path.name)
        if len(seen) == 2:
            raise KeyboardInterrupt  # the command is stopped while measuring epoch 2
        return measure(run, params, data)

    monkeypatch.setattr(step_module("iqa"), "measure", stopped_at_the_second)
    out, template = tmp_path / "run", f"{address}/epoch_{{epoch}}.pt"
    with pytest.raises(KeyboardInterrupt):
        stream.run_streamed(out, template, "1,2,3", None, "iqa", "smoke", {"model": "tiny"}, progress=False)
    assert handler.gets == {"epoch_1.pt": 1, "epoch_2.pt": 1}
    assert [p.name for p in stream.weight_files(stream.RunDir(out))] == ["epoch_2.pt"]  # epoch 1's deleted
    monkeypatch.setattr(step_module("iqa"), "measure", measure)
    stream.run_streamed(out, template, "1,2,3", None, "iqa", "smoke", {"model": "tiny"}, progress=False)
    assert handler.gets == {"epoch_1.pt": 1, "epoch_2.pt": 1, "epoch_3.pt": 1}  # nothing fetched twice
    # no fetch found weights on disk (each was deleted once measured), and none are left
    fetches = json.loads(stream.RunDir(out).source_record.read_text())["fetches"]
    assert [(f["checkpoint"], f["weights_on_disk"]) for f in fetches] == [("epoch_1", 0), ("epoch_2", 0), ("epoch_3", 0)]
    assert stream.weight_files(stream.RunDir(out)) == []
    manifest = json.loads((out / "source.json").read_text())
    assert [c["epoch"] for c in manifest["checkpoints"]] == [1, 2, 3] and manifest["model"] == "tiny"
    assert manifest["checkpoints"][0]["source"] == f"{address}/epoch_1.pt"
    assert sorted(p.name for p in (out / "cache" / "streamed").iterdir()) == ["epoch_1.json", "epoch_2.json",
                                                                             "epoch_3.json"]
    # The package changed (a review: the embedding cache is keyed by its source, so the markers' "measured" found
    # nothing cached, and the weights, deleted once measured, were not fetched again): fetched and measured again.
    from clipalign_utils import encoder

    monkeypatch.setattr(stream, "source_hash", lambda: "other code")
    monkeypatch.setattr(encoder, "source_hash", lambda: "other code")
    stream.run_streamed(out, template, "1,2,3", None, "iqa", "smoke", {"model": "tiny"}, progress=False)
    assert handler.gets == {"epoch_1.pt": 2, "epoch_2.pt": 2, "epoch_3.pt": 2}
    assert {json.loads(p.read_text())["source"] for p in (out / "cache" / "streamed").iterdir()} == {"other code"}


def test_a_package_changed_while_a_trajectory_was_measured_stops_the_command_before_its_pages(
        file_server, tmp_path, monkeypatch):
    """An audit edited the package while a streamed command measured: every page's kernel, reading the source
    anew, missed the cache keyed by the source the command started with and encoded each checkpoint again. The
    command stops before the pages, saying so; the same command then measures under the new code."""
    handler, address = file_server
    executed = []
    monkeypatch.setattr(stream, "execute", lambda *args, **kwargs: executed.append(args))
    monkeypatch.setattr(stream, "run_page", lambda *args, **kwargs: None)

    def as_it_started():
        return "the code the command started with"

    as_it_started.__wrapped__ = lambda: "the code on disk now"
    monkeypatch.setattr(stream, "source_hash", as_it_started)
    out, template = tmp_path / "run", f"{address}/epoch_{{epoch}}.pt"
    with pytest.raises(CheckpointError, match=r"^the clipalign package's source \(.*clipalign_utils\) changed while "
                                              r"this command measured its checkpoints: .* run the same command again"):
        stream.run_streamed(out, template, "1", None, "iqa", "smoke", {"model": "tiny"}, progress=False)
    assert executed == [] and handler.gets == {"epoch_1.pt": 1}
    as_it_started.__wrapped__ = as_it_started  # unchanged
    stream.run_streamed(out, template, "1", None, "iqa", "smoke", {"model": "tiny"}, progress=False)
    assert len(executed) == 1 and handler.gets == {"epoch_1.pt": 1}  # measured once, its pages then run


def test_a_checkpoint_replaced_at_its_url_by_one_of_the_same_size_is_fetched_and_measured_again(
        stand_ins, tmp_path, monkeypatch):
    """The server's ETag is part of a URL checkpoint's identity: a file replaced by another of the same size is
    not served from what the old one measured, nor from the copy --keep-weights kept of it."""
    import shutil

    served = tmp_path / "served"
    served.mkdir()
    shutil.copy(stand_ins / "epoch_1.pt", served / "epoch_1.pt")
    handler = type("Files", (FileServer,), {"root": served, "gets": {}, "truncate": set()})
    server, address = start_server(handler)
    monkeypatch.setattr(stream, "execute", lambda *args, **kwargs: [])  # the notebooks' pass: another test
    # page 10 on a streamed run: test_a_stopped_stream_resumes_without_fetching_finished_checkpoints (its kernel
    # costs about half a second a command here, and nothing here reads the page)
    monkeypatch.setattr(stream, "run_page", lambda *args, **kwargs: None)
    measured = []
    measure = step_module("iqa").measure
    monkeypatch.setattr(step_module("iqa"), "measure",
                        lambda run, params, data=None: measured.append(run.checkpoints[0].identity) or
                        measure(run, params, data))
    out, template = tmp_path / "run", f"{address}/epoch_{{epoch}}.pt"
    try:
        for _ in range(2):  # the same file twice: fetched and measured once
            stream.run_streamed(out, template, "1", "1", "iqa", "smoke", {"model": "tiny"}, progress=False)
        assert handler.gets == {"epoch_1.pt": 1} and len(measured) == 1
        assert (stand_ins / "epoch_2.pt").stat().st_size == (served / "epoch_1.pt").stat().st_size
        shutil.copy(stand_ins / "epoch_2.pt", served / "epoch_1.pt")  # replaced at the same size
        stream.run_streamed(out, template, "1", "1", "iqa", "smoke", {"model": "tiny"}, progress=False)
    finally:
        server.shutdown()
        server.server_close()
    assert handler.gets == {"epoch_1.pt": 2} and len(measured) == 2
    assert measured[0]["version"] != measured[1]["version"]
    assert (out / "checkpoints" / "epoch_1.pt").read_bytes() == (stand_ins / "epoch_2.pt").read_bytes()
    manifest = json.loads((out / "source.json").read_text())
    assert manifest["checkpoints"][0]["version"] == measured[1]["version"]


@pytest.mark.slow
def test_a_streamed_trajectory_end_to_end_into_the_book(file_server, stand_ins, smoke_pipeline, tmp_path,
                                                          monkeypatch):
    """A run from a URL template (the synthesis' steps, the synthesis, page 10) inside a built run's folder,
    started from notebooks/10_real_clip as on a Colab GPU (here the CPU, and loopback stand-ins): its tables
    are those of the same files analysed from a folder, no fetch finds more weights on disk than
    --keep-weights allows (the notebook's kernel reports each count), and the folder's book renders page
    10 from it."""
    import shutil

    import papermill

    from clipalign_utils.registry import REPO_ROOT

    _, address = file_server
    book_dir = tmp_path / "default"
    shutil.copytree(smoke_pipeline, book_dir, ignore=shutil.ignore_patterns("book"), symlinks=True)
    by_url = book_dir / "real_clip"
    papermill.execute_notebook(
        str(REPO_ROOT / "notebooks" / "10_real_clip.ipynb"), str(tmp_path / "colab.ipynb"), kernel_name="python3",
        parameters={"run_dir": str(by_url), "checkpoints": f"{address}/epoch_{{epoch}}.pt", "at_epochs": "1,2,3",
                    "keep_weights": "3", "only": "iqa,shape,noise,tradeoff", "model": "tiny", "preset": "smoke",
                    "device": "cpu"},
        progress_bar=False, cwd=str(REPO_ROOT))
    by_folder = stream.run_streamed(tmp_path / "by_folder", stand_ins, None, None, "iqa", "smoke",
                                    {"model": "tiny"}, progress=False)
    # the weights on disk at each fetch: none (3 is kept, and fetched last)
    fetches = json.loads(stream.RunDir(by_url).source_record.read_text())["fetches"]
    assert [(f["checkpoint"], f["weights_on_disk"]) for f in fetches] == [("epoch_1", 0), ("epoch_2", 0), ("epoch_3", 0)]
    assert [p.name for p in stream.weight_files(stream.RunDir(by_url))] == ["epoch_3.pt"]
    assert sorted(p.name for p in stand_ins.iterdir()) == ["epoch_1.pt", "epoch_2.pt", "epoch_3.pt"]  # untouched
    pd.testing.assert_frame_equal(pd.read_csv(by_url / "metrics" / "iqa.csv"), pd.read_csv(by_folder / "metrics" / "iqa.csv"))
    assert "3 checkpoints of tiny from" in (tmp_path / "colab.ipynb").read_text()
    assert sorted(pd.read_csv(by_url / "metrics" / "iqa.csv")["epoch"].unique()) == [1.0, 2.0, 3.0]
    verdicts = pd.read_csv(by_url / "metrics" / "tradeoff_verdicts.csv")
    assert "IQA alignment peaks early then declines" in set(verdicts["claim"])
    # the folder's own runs are still its seeds only: the streamed trajectory is a page, not a run
    assert "real_clip" not in [p.name for p in stream.RunDir(book_dir).runs()]
    from clipalign_utils.orchestration.book import stage_book

    stage = stage_book(book_dir)  # what `clipalign book` builds (the HTML build itself: test_book)
    page = (stage / "notebooks" / "10_real_clip.ipynb").read_text()
    assert "3 checkpoints of tiny from" in page and "IQA alignment peaks early then declines" in page
    assert not (stage / "notebooks" / "10_real_clip.md").exists()  # the page, not its placeholder
    assert (by_url / "figures" / "real_clip_summary.png").stat().st_size > 0


def test_a_kernel_killed_for_memory_is_one_line_naming_what_to_lower(tmp_path):
    from clipalign_utils import registry
    from clipalign_utils.orchestration import pipeline

    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    (notebooks / "97_dies.py").write_text(
        "# ---\n# jupyter:\n#   kernelspec:\n#     display_name: Python 3\n#     language: python\n"
        "#     name: python3\n# ---\n\n"
        '# %% tags=["parameters"]\nrun_dir = ""\neval_batch_size = 0\n\n'
        "# %%\nimport os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n")
    registry.register(registry.Step("dies", "97_dies", notebook_dir=notebooks))
    try:
        with pytest.raises(pipeline.StepFailed) as failed:
            pipeline.run_notebook("97_dies", tmp_path / "run", {"run_dir": "x", "eval_batch_size": 64}, progress=False)
    finally:
        registry.unregister("dies")
    message = str(failed.value)
    assert len(message.splitlines()) == 1 and "its kernel died" in message
    assert "lower eval_batch_size (now 64) with -p eval_batch_size=N" in message
    assert not (tmp_path / "run" / "notebooks" / "97_dies.ipynb").exists()


def test_zero_shot_prompts_go_through_the_text_tower_in_bounded_batches(stand_ins):
    """ImageNet's 1,000 classes × 80 templates must not be one forward pass: prompts go in batches of about
    eval_batch_size, and the classifier is the one a single pass gives."""
    import numpy as np

    from clipalign_utils.checkpoints import Checkpoint
    from clipalign_utils.encoder import Encoder

    classnames = [f"class {i}" for i in range(30)]
    templates = ["a photo of a {}.", "a drawing of a {}.", "a {} in the wild.", "itap of a {}."]
    encoder = Encoder(Checkpoint(stand_ins / "epoch_1.pt", 1.0), "clipalign-tiny", batch_size=20)
    sizes = []
    encoder.model.transformer.register_forward_pre_hook(lambda module, args: sizes.append(len(args[0])))
    chunked = encoder.zero_shot_weights(classnames, templates)
    assert encoder.classes_per_batch(templates) == 5 and sizes == [20] * 6
    encoder.batch_size = 10_000
    sizes.clear()
    whole = encoder.zero_shot_weights(classnames, templates)
    assert sizes == [120]
    np.testing.assert_allclose(chunked, whole, atol=1e-6)


def test_checkpoints_zero_shot_classifiers_tokenize_their_prompts_once(stand_ins, monkeypatch):
    """The tokens of a checkpoint's prompts are kept for the next checkpoint's classifier (ImageNet's 80,000
    prompts took 9 s of ftfy and BPE per checkpoint), and give the same weights as tokenizing afresh."""
    import numpy as np
    import open_clip

    from clipalign_utils import models
    from clipalign_utils.checkpoints import Checkpoint
    from clipalign_utils.encoder import Encoder

    models.prompt_tokenizer.cache_clear()
    calls = []
    plain = open_clip.tokenizer.SimpleTokenizer.__call__
    monkeypatch.setattr(open_clip.tokenizer.SimpleTokenizer, "__call__",
                        lambda self, texts, *a, **k: calls.append(len(texts)) or plain(self, texts, *a, **k))
    classnames, templates = [f"class {i}" for i in range(6)], ["a photo of a {}.", "itap of a {}."]
    first, second = (Encoder(Checkpoint(stand_ins / f"epoch_{k}.pt", float(k)), "clipalign-tiny", batch_size=4)
                     for k in (1, 2))
    weights = [first.zero_shot_weights(classnames, templates), second.zero_shot_weights(classnames, templates)]
    assert calls == [4, 4, 4]  # the first checkpoint's three batches of two classes; none for the second
    kept = models.prompt_tokenizer("clipalign-tiny")
    tokens = kept(["a photo of a class 0."])
    tokens[0, 0] = -1  # the caller's copy
    assert (kept(["a photo of a class 0."]) == models.tokenizer_for("clipalign-tiny")(["a photo of a class 0."])).all()
    models.prompt_tokenizer.cache_clear()
    monkeypatch.setattr(models, "prompt_tokenizer", models.tokenizer_for)  # tokenized afresh
    fresh = Encoder(Checkpoint(stand_ins / "epoch_2.pt", 2.0), "clipalign-tiny", batch_size=4)
    np.testing.assert_array_equal(fresh.zero_shot_weights(classnames, templates), weights[1])


def _open_clip_train_run(run: Path) -> torch.nn.Module:
    """A run folder as open_clip_train leaves one for `--model clipalign-tiny --force-quick-gelu
    --force-context-length 8 --force-image-size 32 --image-std 0.25 0.25 0.25`: params.txt (main.py's sorted
    "name: value" lines, None and False included), checkpoints/epoch_1.pt (a DDP run's module. keys, its
    optimizer state) and epoch_latest.pt beside it; returns the model it saved."""
    import open_clip

    torch.manual_seed(0)
    model = open_clip.create_model("clipalign-tiny", force_quick_gelu=True, force_context_length=8, force_image_size=32,
                                   force_preprocess_cfg={"std": (0.25, 0.25, 0.25)}, output_dict=True)
    (run / "checkpoints").mkdir(parents=True)
    saved = {"epoch": 1, "name": "quick", "state_dict": {f"module.{k}": v for k, v in model.state_dict().items()},
             "optimizer": {"state": {}, "param_groups": []}}
    torch.save(saved, run / "checkpoints" / "epoch_1.pt")
    torch.save(saved, run / "checkpoints" / "epoch_latest.pt")
    lines = {"batch_size": "64", "force_context_length": "8", "force_custom_text": "False", "force_image_size": "32",
             "force_patch_dropout": "None", "force_quick_gelu": "True", "image_mean": "None",
             "image_std": "[0.25, 0.25, 0.25]", "model": "clipalign-tiny", "precision": "amp", "siglip": "False"}
    (run / "params.txt").write_text("".join(f"{k}: {v}\n" for k, v in sorted(lines.items())))
    return model.eval()


def test_an_open_clip_train_run_is_built_as_its_params_txt_says(tmp_path):
    """QuickGELU and a forced context length change the model without changing which weights it holds, so
    such a checkpoint loaded into the plain architecture gives other features without an error (open_clip
    resizes the position embedding): the run is built as params.txt records it, its prompts tokenized at
    its context length."""
    from clipalign_utils.checkpoints import discover_run
    from clipalign_utils.encoder import Encoder

    saved = _open_clip_train_run(tmp_path / "quick")
    run = discover_run(tmp_path / "quick")
    assert [c.name for c in run.checkpoints] == ["epoch_1"] and run.image_size == 32
    assert run.model_options == {"force_quick_gelu": True, "force_context_length": 8,
                                 "force_preprocess_cfg": {"std": (0.25, 0.25, 0.25)}}
    tokens = models.tokenizer_for("clipalign-tiny", 8)(["a photo of a dog.", "itap of a cat."])
    images = torch.rand(2, 3, 32, 32)
    built = Encoder(run.checkpoints[0], run.model_name, run.image_size, model_options=run.model_options).model
    plain = Encoder(run.checkpoints[0], run.model_name, run.image_size).model
    with torch.no_grad():
        assert torch.equal(built.encode_text(tokens), saved.encode_text(tokens))
        assert torch.equal(built.encode_image(images), saved.encode_image(images))
        assert not torch.allclose(plain.encode_text(tokens), saved.encode_text(tokens), atol=1e-3)
    assert models.preprocess_config(built)["std"] == (0.25, 0.25, 0.25)
    encoder = Encoder(run.checkpoints[0], run.model_name, run.image_size, model_options=run.model_options)
    assert encoder.zero_shot_weights(["dog", "cat"], ["a photo of a {}."]).shape == (saved.text_projection.shape[1], 2)


def test_a_folder_source_is_built_as_its_params_txt_says_and_a_failed_first_attempt_leaves_nothing(
        tmp_path, monkeypatch):
    _open_clip_train_run(tmp_path / "quick")
    source = sources.open_source(str(tmp_path / "quick"))
    assert source.architecture == "clipalign-tiny" and source.build == {
        "force_context_length": "8", "force_image_size": "32", "force_quick_gelu": "True",
        "image_std": "[0.25, 0.25, 0.25]"}
    assert [c.epoch for c in source.checkpoints()] == [1.0]  # epoch_latest.pt is not another epoch
    monkeypatch.setattr(stream, "execute", lambda *args, **kwargs: [])  # the notebooks' pass: another test
    monkeypatch.setattr(stream, "run_page", lambda *args, **kwargs: None)
    out = tmp_path / "out"
    # the wrong architecture: one error naming the way out, and no folder that holds the attempt's model
    with pytest.raises(CheckpointError, match=r"could not be loaded into clipalign-vit-tiny \(force_context_length=8, "
                                              r".*force_quick_gelu=True\): Error\(s\) in loading state_dict for CLIP; "
                                              r"Missing key\(s\) .*\(a checkpoint of another architecture\? give -p "
                                              r"model=<its open_clip name>; a damaged file: save or fetch it again\)$"):
        stream.run_streamed(out, str(tmp_path / "quick"), None, None, "iqa", "smoke", {"model": "vit-tiny"},
                            progress=False)
    assert not out.exists()
    stream.run_streamed(out, str(tmp_path / "quick"), None, None, "iqa", "smoke", {}, progress=False)
    assert "force_quick_gelu: True" in (out / "params.txt").read_text()
    from clipalign_utils.checkpoints import discover_run

    run = discover_run(out)
    assert run.model_options["force_context_length"] == 8 and run.image_size == 32


def test_a_folder_of_sharded_or_only_latest_checkpoints_says_what_it_holds(tmp_path):
    from clipalign_utils.checkpoints import discover_run

    run = tmp_path / "fsdp"
    for epoch in (1, 2):  # open_clip_train --fsdp: epoch_<N>/ folders of torch.distributed.checkpoint shards
        (run / "checkpoints" / f"epoch_{epoch}").mkdir(parents=True)
        (run / "checkpoints" / f"epoch_{epoch}" / ".metadata").write_bytes(b"\x80\x04")
        (run / "checkpoints" / f"epoch_{epoch}" / "__0_0.distcp").write_bytes(b"shard")
    (run / "params.txt").write_text("model: clipalign-tiny\n")
    for read in (lambda: discover_run(run), lambda: sources.open_source(str(run)).checkpoints()):
        with pytest.raises(CheckpointError, match=r"checkpoints holds no epoch_<N>\.pt checkpoints but sharded ones "
                                                  r"\(epoch_1, epoch_2: torch\.distributed\.checkpoint folders"):
            read()
    latest = tmp_path / "latest" / "checkpoints"
    latest.mkdir(parents=True)
    (latest / "epoch_latest.pt").write_bytes(b"x")
    with pytest.raises(CheckpointError, match=r"only epoch_latest\.pt .*needs the numbered ones \(--save-frequency 1\)"):
        sources.open_source(str(latest.parent)).checkpoints()


def test_a_fetched_file_that_does_not_load_is_fetched_anew(stand_ins, tmp_path, monkeypatch):
    """A server that sends a damaged checkpoint whole (its size as announced): the load error is one line, and
    the file is not kept to fail again; once the server has the right file, the next attempt fetches it."""
    served = tmp_path / "served"
    served.mkdir()
    (served / "epoch_1.pt").write_bytes(b"\x80\x02damaged" * 100)
    handler = type("Files", (FileServer,), {"root": served, "gets": {}, "truncate": set()})
    server, address = start_server(handler)
    monkeypatch.setattr(stream, "execute", lambda *args, **kwargs: [])  # the notebooks' pass: another test
    monkeypatch.setattr(stream, "run_page", lambda *args, **kwargs: None)
    out = tmp_path / "out"
    (out / "notes").mkdir(parents=True)  # not a fresh folder: it stays, without the damaged file
    try:
        with pytest.raises(CheckpointError, match=rf"^{address}/epoch_1\.pt \(fetched whole, its copy deleted\) "
                                                  r"could not be loaded into clipalign-tiny: ") as caught:
            stream.run_streamed(out, f"{address}/epoch_{{epoch}}.pt", "1", None, "iqa", "smoke", {"model": "tiny"},
                                progress=False)
        assert str(out) not in str(caught.value)  # the URL, not the copy that is gone
        assert stream.weight_files(stream.RunDir(out)) == [] and (out / "notes").is_dir()
        (served / "epoch_1.pt").write_bytes((stand_ins / "epoch_1.pt").read_bytes())
        stream.run_streamed(out, f"{address}/epoch_{{epoch}}.pt", "1", None, "iqa", "smoke", {"model": "tiny"},
                            progress=False)
        assert handler.gets == {"epoch_1.pt": 2}
        assert sorted(p.name for p in (out / "cache" / "streamed").iterdir()) == ["epoch_1.json"]
    finally:
        server.shutdown()
        server.server_close()


def test_a_folder_of_damaged_checkpoints_is_refused_before_the_evaluation_sets_are_drawn(stand_ins, tmp_path,
                                                                                          monkeypatch, capsys):
    """An audit: files that are no torch.save output were found only after ~20 s of drawing evaluation sets, and
    said as torch's bare "174812789". Their framing is read up front (no weights loaded): one line, no folder."""
    monkeypatch.setattr(stream, "measure_here", lambda *args: pytest.fail("a checkpoint was measured"))
    bad = tmp_path / "badck"
    bad.mkdir()
    for name in ("epoch_1.pt", "epoch_2.pt"):
        (bad / name).write_bytes(b"junk\n")
    out = tmp_path / "k5"
    assert cli.main(["run", "--out", str(out), "--checkpoints", str(bad), "--only", "iqa", "-p", "model=tiny"]) == 2
    (error,) = capsys.readouterr().err.strip().splitlines()
    assert error == (f"clipalign: error: --checkpoints {bad}: {bad / 'epoch_1.pt'} is not a PyTorch checkpoint (so are "
                     f"epoch_2.pt): neither the zip archive torch.save writes nor its older pickle format (it begins "
                     f"b'junk\\n'); save or fetch it again, or leave it out (--at-epochs)")
    assert not out.exists()
    # one good, one cut short as a copy stopped part-way: the latter is named, and --at-epochs leaves it out
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    (mixed / "epoch_1.pt").write_bytes((stand_ins / "epoch_1.pt").read_bytes())
    (mixed / "epoch_2.pt").write_bytes((stand_ins / "epoch_2.pt").read_bytes()[:1000])
    with pytest.raises(CheckpointError, match=rf"^--checkpoints {mixed}: {mixed / 'epoch_2.pt'} is not a PyTorch "
                                              r"checkpoint: an incomplete zip archive \(1000 bytes, "):
        stream.run_streamed(out, str(mixed), None, None, "iqa", "smoke", {"model": "tiny"}, progress=False)
    assert not out.exists()
    stream._check_checkpoint_files(str(mixed), sources.open_source(str(mixed)).checkpoints([1]))


def test_a_file_that_is_no_torch_checkpoint_says_so_in_words_and_real_formats_pass_the_check(stand_ins, tmp_path):
    from clipalign_utils.io import checkpoint_format_problem

    junk = tmp_path / "epoch_1.pt"
    junk.write_bytes(b"junk\n")
    with pytest.raises(CheckpointError) as caught:
        models.load_checkpoint_model(junk, "clipalign-tiny")
    assert str(caught.value) == (f"checkpoint {junk} could not be loaded into clipalign-tiny: not a PyTorch "
                                 f"checkpoint: neither the zip archive torch.save writes nor its older pickle format "
                                 f"(it begins b'junk\\n') (torch.load: KeyError: 174812789); save or fetch it again")
    (tmp_path / "empty.pt").write_bytes(b"")
    assert checkpoint_format_problem(tmp_path / "empty.pt") == "the file is empty"
    # open_clip_train's (a dict holding state_dict, module. keys), a plain state dict, torch's pre-1.6 format
    state = models.create_model("tiny").state_dict()
    torch.save(state, tmp_path / "plain.pt")
    torch.save(state, tmp_path / "legacy.pt", _use_new_zipfile_serialization=False)
    for path in (stand_ins / "epoch_1.pt", tmp_path / "plain.pt", tmp_path / "legacy.pt"):
        assert checkpoint_format_problem(path) is None, path
        models.load_checkpoint_model(path, "clipalign-tiny")


def test_iqa_resize_auto_at_224_px_is_the_clip_processor(tmp_path):
    """At 224 px, ``iqa_resize=auto`` is ``crop``: each TID2013 image is exactly what open_clip's evaluation
    transform (CLIP's processor: the shorter side resized bicubic, then a centre crop) makes of the file."""
    import numpy as np
    import open_clip
    from PIL import Image

    from clipalign_utils import config
    from clipalign_utils.data.iqa import load_iqa
    from fixtures_real import make_tid2013

    root = make_tid2013(tmp_path / "tid2013", n_refs=2, distortions=(1,), levels=(1,))
    rng = np.random.default_rng(0)
    for k, path in enumerate(sorted(root.rglob("*.[bB][mM][pP]"))):
        # odd sizes, both orientations: where truncating and rounding the longer side differ
        shape = (23, 37, 3) if k % 2 else (41, 29, 3)
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(path, format="BMP")
    data = load_iqa("tid2013", str(root), config.resolve("smoke"), image_size=224, resize="auto")
    assert data.resize_mode == "crop"
    _, _, preprocess = open_clip.create_model_and_transforms("ViT-B-32", pretrained=None)
    resize, crop = preprocess.transforms[:2]
    for images in (data.references, data.distorted):
        loaded = images.batch(0, len(images)).numpy()
        for path, image in zip(images.paths, loaded):
            expected = np.asarray(crop(resize(Image.open(path).convert("RGB"))))
            assert image.shape == (224, 224, 3) and np.array_equal(image, expected), path.name


def test_every_step_measures_a_streamed_checkpoint_alone_then_from_the_cache_without_its_weights(tmp_path):
    """What streaming rests on: each analysis step measures a run of one checkpoint, and once that
    checkpoint's weights are deleted measures it again from the cache alone, to the same tables."""
    from clipalign_utils import config, registry
    from clipalign_utils.checkpoints import Checkpoint, Run

    weights = write_openclip_train_checkpoints(tmp_path / "fetched", epochs=(2,)) / "epoch_2.pt"
    identity = {"source": "http://127.0.0.1:1/epoch_2.pt", "size": weights.stat().st_size, "sha256": None}
    run = Run(tmp_path / "run", "clipalign-tiny", None, [Checkpoint(weights, 2.0, identity)], {"model": "tiny"})
    params = config.resolve("smoke")
    first = {s.name: step_module(s.name).measure(run, params) for s in registry.analysis_steps()}
    weights.unlink()
    for step, tables in first.items():
        again = step_module(step).measure(run, params)
        assert sorted(again) == sorted(tables), step
        pd.testing.assert_frame_equal(again[registry.get(step).tables[0].name],
                                      tables[registry.get(step).tables[0].name])


def test_a_streamed_trajectory_carries_samples_seen_into_the_synthesis_table(tmp_path):
    from clipalign_utils import results
    from test_registry import TOY_EPOCHS, _write_run

    run_dir = tmp_path / "run"
    _write_run(run_dir)
    assert "samples_seen" not in results.checkpoint_table(run_dir).columns  # a run of ours: epochs only
    checkpoints = [{"name": f"epoch_{e:g}", "epoch": e, "samples_seen": e * 4.0e8, "local": False,
                    "source": f"http://127.0.0.1:1/epoch_{e:g}.pt", "size": 1, "sha256": None} for e in TOY_EPOCHS]
    (run_dir / "source.json").write_text(json.dumps({"source": "x", "model": "tiny", "checkpoints": checkpoints}))
    table = results.checkpoint_table(run_dir)
    assert table["samples_seen"].tolist() == [e * 4.0e8 for e in TOY_EPOCHS]


def test_page_10s_trajectory_leaves_out_samples_seen_where_no_checkpoint_says_it(tmp_path):
    """A folder of checkpoints says no samples seen: an audit read `None` on every row of page 10's table."""
    from clipalign_utils.steps.real_clip.page import trajectory

    counted = [{"name": "epoch_1", "epoch": 1.0, "samples_seen": 4.0e8, "source": "http://x/epoch_1.pt"},
               {"name": "epoch_2", "epoch": 2.0, "source": "http://x/epoch_2.pt"}]
    (tmp_path / "source.json").write_text(json.dumps({"source": "x", "model": "RN50", "checkpoints": counted}))
    assert trajectory(tmp_path).to_string(index=False).splitlines() == [
        "checkpoint  epoch  samples_seen              source",
        "   epoch_1    1.0   400000000.0 http://x/epoch_1.pt",
        "   epoch_2    2.0           NaN http://x/epoch_2.pt"]
    folder = [{**checkpoint, "samples_seen": None} for checkpoint in counted]
    (tmp_path / "source.json").write_text(json.dumps({"source": "x", "model": "RN50", "checkpoints": folder}))
    assert list(trajectory(tmp_path).columns) == ["checkpoint", "epoch", "source"]



@pytest.mark.slow
def test_vit_b32_at_224_px_through_every_step_on_real_formats_in_bounded_memory(tmp_path):
    """Real scale: a random-weight ViT-B-32 checkpoint (open_clip_train's format) at 224 px measured by every
    analysis step on the real datasets' layouts, MIT1003's targets over ImageNet's 1,000 classes included
    (prompts in bounded batches), the process's peak memory reported."""
    import sys

    from clipalign_utils.registry import REPO_ROOT

    sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
    try:
        import real_clip_cost
    finally:
        sys.path.remove(str(REPO_ROOT / "benchmarks"))
    cost = real_clip_cost.measure_steps("ViT-B-32", tmp_path, flops=False, sizes="small", progress=lambda *_: None)
    print("\n" + cost.to_string(index=False))  # pytest -s shows each step's seconds and the peak memory
    by_step = cost.set_index("step")
    assert list(by_step.index) == ["iqa", "shape", "noise", "similarity", "saliency"]
    assert (by_step["rows"] > 0).all()
    assert by_step.loc["saliency", "prompts"] == 1000 and by_step.loc["noise", "prompts"] == 100
    assert by_step.loc["shape", "prompts"] == 16 and by_step.loc["shape", "images"] == 32
    assert by_step.loc["iqa", "images"] == 10  # one reference and its nine distortions
    assert by_step["peak_rss_gb"].max() < 8, "memory must not grow with the classes: prompts go in batches"


@pytest.mark.slow
def test_a_trajectory_shared_out_under_torchrun_fetches_each_checkpoint_once(file_server, tmp_path):
    """``--checkpoints … --nproc 2``: each rank fetches and measures its own checkpoints (none twice, none
    kept), rank 0 then renders from the cache; the tables are those of one process at the same threads."""
    import os
    import subprocess
    import sys

    handler, address = file_server
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    tables = {}
    for name, extra in (("one", []), ("ranks", ["--nproc", "2"])):
        handler.gets.clear()
        out = tmp_path / name
        result = subprocess.run([sys.executable, "-m", "clipalign_utils.cli", "run", "--out", str(out), "--checkpoints",
                                 f"{address}/epoch_{{epoch}}.pt", "--at-epochs", "1,2,3", "--only", "iqa",
                                 "--preset", "smoke", "-p", "model=tiny", *extra],
                                env=env, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
        assert handler.gets == {"epoch_1.pt": 1, "epoch_2.pt": 1, "epoch_3.pt": 1}, name
        assert stream.weight_files(stream.RunDir(out)) == []
        tables[name] = {p.name: p.read_bytes() for p in (out / "metrics").glob("*.csv")}
        if extra:
            assert "[rank 1/2] every 2-th checkpoint from 1 fetched, measured and cached" in result.stdout
            fetches = json.loads((out / "source.json").read_text())["fetches"]
            assert sorted(f["checkpoint"] for f in fetches) == ["epoch_1", "epoch_2", "epoch_3"]  # none lost
    assert "iqa.csv" in tables["one"] and tables["ranks"] == tables["one"]


def test_a_folder_source_given_relative_is_read_where_the_command_was_given(tmp_path, monkeypatch):
    """--checkpoints runs/x/checkpoints from the user's folder: each checkpoint's location is absolute, since
    the pages' kernels run in the repository's root and load every checkpoint by it."""
    folder = tmp_path / "mine" / "checkpoints"
    folder.mkdir(parents=True)
    for epoch in (1, 2):
        (folder / f"epoch_{epoch}.pt").write_bytes(b"x" * epoch)
    monkeypatch.chdir(tmp_path)
    source = sources.open_source("mine")
    assert source.spec == str(tmp_path / "mine")
    assert [(c.epoch, c.location, c.size) for c in source.checkpoints()] == [
        (1.0, str(folder / "epoch_1.pt"), 1), (2.0, str(folder / "epoch_2.pt"), 2)]


def test_a_folder_source_is_the_same_however_it_is_named_and_the_book_shows_it_relative(tmp_path):
    """The run folder and its checkpoints/ (or a link to it) name one source: a trajectory streamed from one and
    resumed from the other is the same run (an audit was told 'analyses …/myrun, not …/myrun/checkpoints: use
    another --out'); another folder is not. Page 10 names the folder: the book shows it relative, as it
    shows the runs, not the build machine's absolute path."""
    from clipalign_utils.orchestration.book import _path_replacements

    run = tmp_path / "logs" / "myrun"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "epoch_1.pt").write_bytes(b"x")
    (tmp_path / "link").symlink_to(run / "checkpoints")
    (tmp_path / "other" / "checkpoints").mkdir(parents=True)
    source = sources.open_source(str(run))
    assert source.same_as(str(run)) and source.same_as(str(run / "checkpoints")) and source.same_as(str(tmp_path / "link"))
    assert sources.open_source(str(run / "checkpoints")).same_as(str(run))
    assert not source.same_as(str(tmp_path / "other")) and not source.same_as("https://host/epoch_{epoch}.pt")
    out = tmp_path / "out"
    stream._write_manifest(stream.RunDir(out), source, "tiny", source.checkpoints())
    stream._write_manifest(stream.RunDir(out), sources.open_source(str(run / "checkpoints")), "tiny", source.checkpoints())
    with pytest.raises(ParameterError, match=r"analyses .*myrun/checkpoints, not .*other: use another --out"):
        stream._write_manifest(stream.RunDir(out), sources.open_source(str(tmp_path / "other")), "tiny", [])
    # Another run of another architecture into the folder: named as another source, before its model is
    # held against this run's params.txt (an audit was told of a -p model it never gave).
    (tmp_path / "other" / "checkpoints" / "epoch_1.pt").write_bytes(b"y")
    (tmp_path / "other" / "params.txt").write_text("model: clipalign-vit-tiny\n")
    with pytest.raises(ParameterError, match=r"analyses .*myrun/checkpoints, not .*other: use another --out"):
        stream.run_streamed(out, str(tmp_path / "other"), None, None, "iqa", "smoke", {}, progress=False)
    notebook = out / "notebooks" / "10_real_clip.ipynb"
    shown = dict(_path_replacements(out, {"10_real_clip": notebook}))
    assert shown[str(run / "checkpoints")] == "logs/myrun/checkpoints" and shown[str(out)] == "out"


@pytest.mark.slow
def test_a_streamed_run_re_run_without_its_options_measures_its_real_dataset_again(tmp_path):
    """`clipalign run --only iqa` (or the same --checkpoints again) on a trajectory streamed over TID2013,
    without repeating -p: the same dataset, model and table, not the preset's embedded set."""
    from fixtures_real import make_tid2013

    tid = make_tid2013(tmp_path / "tid2013")
    folder = write_openclip_train_checkpoints(tmp_path / "checkpoints", epochs=(1, 2))
    out = tmp_path / "run"
    assert cli.main(["run", "--out", str(out), "--checkpoints", str(folder), "--only", "iqa", "--preset", "smoke",
                     "-p", "model=tiny", "-p", "iqa_dataset=tid2013", "-p", f"iqa_root={tid}", "--no-book"]) == 0
    first = (out / "metrics" / "iqa.csv").read_bytes()
    assert set(pd.read_csv(out / "metrics" / "iqa.csv")["dataset"]) == {"tid2013"}
    for again in (["--only", "iqa"], ["--checkpoints", str(folder), "--only", "iqa"]):
        assert cli.main(["run", "--out", str(out), *again, "--no-book"]) == 0, again
        assert (out / "metrics" / "iqa.csv").read_bytes() == first, again
    entry = json.loads((out / "record.json").read_text())["steps"]["iqa"]
    assert entry["parameters"]["iqa_dataset"] == "tid2013" and entry["sources"]["iqa_root"] == "record.json"


def test_the_gpu_projection_is_said_in_seconds_when_it_is_under_two_minutes():
    import pandas as pd

    from clipalign_utils.steps.real_clip import cost as real_clip_cost

    def projection(gflop_per_checkpoint: float) -> str:
        table = pd.DataFrame({"step": ["iqa"], "dataset": ["tid2013"], "images": [30], "seconds": [30.0],
                              "gflop": [gflop_per_checkpoint], "cpu": ["a CPU"], "measured": ["2026-12-05"]})
        return real_clip_cost.cost_sentences(table)[1]

    # seconds = gflop × 32 checkpoints / (100 TFLOP/s × 1000 GFLOP/TFLOP)
    assert (real_clip_cost.FIG1_EPOCHS, real_clip_cost.ASSUMED_GPU_TFLOPS) == (32, 100.0)
    assert "images, is 3.2 s;" in projection(1e4)  # not "0.1 minutes"
    assert "images, is 5.3 minutes;" in projection(1e6)  # 320 s


def test_the_gpu_projection_says_its_work_is_the_benchmarks_small_sets():
    """An audit: "on one GPU sustaining 100 TFLOP/s the same work is 2.2 s" read as the real trajectory's cost;
    it is the 32 checkpoints through the benchmark's few images per set."""
    import pandas as pd

    from clipalign_utils.steps.real_clip import cost as real_clip_cost

    table = pd.DataFrame({"step": ["iqa", "noise"], "dataset": ["tid2013", "cifar100"], "images": [30, 500],
                          "seconds": [3.0, 30.0], "gflop": [5e3, 5e3], "cpu": "a CPU", "measured": "2026-12-05"})
    assert real_clip_cost.cost_sentences(table)[1] == (
        "**Projection, not a measurement:** on one GPU sustaining 100 TFLOP/s the same work, 32 checkpoints × the "
        "benchmark's 30 TID2013 and 500 CIFAR-100 images, is 3.2 s; no GPU has measured it yet.")


def test_the_cpu_cost_names_the_trajectory_it_is_for():
    """An audit: "so the 32 checkpoints of the run take about 0.6 CPU hours" read, in a book of its own run, as
    if about that run; it is the paper's Fig. 1 trajectory scaled from the benchmark."""
    import pandas as pd

    from clipalign_utils.steps.real_clip import cost as real_clip_cost

    table = pd.DataFrame({"step": ["iqa"], "dataset": ["tid2013"], "images": [30], "seconds": [30.0], "gflop": [1e4],
                          "cpu": ["a CPU"], "measured": ["2026-12-05"]})
    assert real_clip_cost.cost_sentences(table)[0] == (
        "Measured on a CPU (2026-12-05): one ViT-B-32 checkpoint through every step takes 30 s on the benchmark's "
        "real-format sets, so the 32 checkpoints of the paper's Fig. 1 trajectory "
        "(`Model-B-32_Data-400M_Samples-13B_lr-1e-3_bs-86k`) take about 0.3 CPU hours at those sizes (the real "
        "datasets are larger: scale by their image counts).")


def test_a_streamed_synthesis_without_a_step_it_needs_is_refused_before_anything_is_fetched(tmp_path):
    """--only naming the synthesis without the noise step, on a run that holds no noise.csv: one line before any
    folder is made or checkpoint fetched (it failed at the synthesis, after every checkpoint was measured)."""
    from clipalign_utils.orchestration import stream

    with pytest.raises(ParameterError, match=r"^--only iqa,shape,tradeoff: the synthesis \(tradeoff\) needs the "
                                             r"noise step's table, which .* does not hold: add noise to --only$"):
        stream._check_synthesis_inputs(tmp_path / "run", "iqa,shape,tradeoff")
    assert not (tmp_path / "run").exists()
    stream._check_synthesis_inputs(tmp_path / "run", "iqa,shape,noise,tradeoff")
    stream._check_synthesis_inputs(tmp_path / "run", None)  # a whole run measures every step
    stream._check_synthesis_inputs(tmp_path / "run", "iqa")  # no synthesis asked for
    (tmp_path / "run" / "metrics").mkdir(parents=True)
    (tmp_path / "run" / "metrics" / "noise.csv").write_text("checkpoint\n")  # measured by an earlier command
    stream._check_synthesis_inputs(tmp_path / "run", "iqa,shape,tradeoff")


def test_weights_kept_are_fetched_for_a_measured_checkpoint_and_left_by_later_commands(file_server, tmp_path,
                                                                                      monkeypatch):
    """--keep-weights on a trajectory measured before fetches the weights it keeps (the interpolation step's
    advice, which did nothing); weights one command kept stay through later commands that do not list them,
    and do not stop one that extends the run (an audit: refused, then deleted without a word)."""
    handler, address = file_server
    monkeypatch.setattr(stream, "execute", lambda *args, **kwargs: [])  # the notebooks' pass: another test
    # page 10 on a streamed run: test_a_stopped_stream_resumes_without_fetching_finished_checkpoints (its kernel
    # costs about half a second a command here, and nothing here reads the page)
    monkeypatch.setattr(stream, "run_page", lambda *args, **kwargs: None)
    out, template = tmp_path / "run", f"{address}/epoch_{{epoch}}.pt"

    def streamed(epochs, keep):
        stream.run_streamed(out, template, epochs, keep, "iqa", "smoke", {"model": "tiny"}, progress=False)
        return [p.name for p in stream.weight_files(stream.RunDir(out))]

    assert streamed("1,2", None) == [] and handler.gets == {"epoch_1.pt": 1, "epoch_2.pt": 1}
    assert streamed("1,2", "2") == ["epoch_2.pt"] and handler.gets == {"epoch_1.pt": 1, "epoch_2.pt": 2}
    assert streamed("3", None) == ["epoch_2.pt"] and handler.gets["epoch_3.pt"] == 1
    assert streamed("2,3", None) == ["epoch_2.pt"] and handler.gets["epoch_2.pt"] == 2  # not fetched again


def test_a_streamed_run_keeps_the_model_its_first_command_gave_over_the_source_s_own(stand_ins, tmp_path,
                                                                                  monkeypatch):
    """A source naming its architecture (params.txt, a LAION run name) streamed with -p model=another: the same
    command again without -p model measures with the run's model, not the source's (an audit was told its
    -p model=ViT-B-32, which it never gave, contradicts the run)."""
    import shutil

    monkeypatch.setattr(stream, "execute", lambda *args, **kwargs: [])
    monkeypatch.setattr(stream, "run_page", lambda *args, **kwargs: None)
    source = tmp_path / "logs" / "run"
    shutil.copytree(stand_ins, source / "checkpoints")
    (source / "params.txt").write_text("model: ViT-B-32\n")
    out = tmp_path / "out"
    stream.run_streamed(out, str(source), "1", None, "iqa", "smoke", {"model": "tiny"}, progress=False)
    stream.run_streamed(out, str(source), "1,2", None, "iqa", "smoke", {}, progress=False)
    manifest = json.loads((out / "source.json").read_text())
    assert manifest["model"] == "tiny" and [c["epoch"] for c in manifest["checkpoints"]] == [1, 2]


# --- an audit of the streamed sources (hand-made mutants each of these kills) ---------------------------
def test_a_folder_source_offers_epoch_0_and_fractional_epochs_by_their_own_names(tmp_path):
    """An early-checkpoint trajectory (epoch_0.pt, epoch_0.5.pt …): --at-epochs picks exactly the epochs named,
    each under its own name (0.5 is not epoch 0 or 1), and an epoch between two is refused, not rounded."""
    folder = tmp_path / "early" / "checkpoints"
    folder.mkdir(parents=True)
    for epoch in ("0", "0.5", "1", "2"):
        (folder / f"epoch_{epoch}.pt").write_bytes(b"x")
    source = sources.open_source(str(folder.parent))
    assert sources.parse_epochs("0.5,0") == [0.0, 0.5]
    assert [(c.epoch, c.name) for c in source.checkpoints()] == [(0.0, "epoch_0"), (0.5, "epoch_0.5"),
                                                                 (1.0, "epoch_1"), (2.0, "epoch_2")]
    picked = source.checkpoints(sources.parse_epochs("2,0.5,0"))
    assert [(c.name, c.location) for c in picked] == [("epoch_0", str(folder / "epoch_0.pt")),
                                                      ("epoch_0.5", str(folder / "epoch_0.5.pt")),
                                                      ("epoch_2", str(folder / "epoch_2.pt"))]
    assert stream.parse_keep("0.5", picked) == {"epoch_0.5"}
    with pytest.raises(ParameterError, match=r"^--at-epochs 0\.25: .* has epochs 0, 0\.5, 1, 2$"):
        source.checkpoints([0.25])


def test_an_epoch_is_written_with_every_digit_and_no_exponent(tmp_path):
    """A URL template's {epoch} and a checkpoint's name keep the epoch as given: ``:g`` wrote 1000000 as 1e+06
    (a URL the server does not have) and cut 0.1234567 to 0.123457 (two files under one name)."""
    source = sources.open_source("https://host/run/step_{epoch}.pt")
    assert source.url(1000000.0) == "https://host/run/step_1000000.pt"
    assert source.url(2.0) == "https://host/run/step_2.pt"
    folder = tmp_path / "fine" / "checkpoints"
    folder.mkdir(parents=True)
    for epoch in ("0.1234567", "0.1234568", "1000000"):
        (folder / f"epoch_{epoch}.pt").write_bytes(b"x")
    listed = sources.open_source(str(folder.parent)).checkpoints()
    assert [c.name for c in listed] == ["epoch_0.1234567", "epoch_0.1234568", "epoch_1000000"]
    assert sources.format_epochs([c.epoch for c in listed]) == "0.1234567, 0.1234568, 1000000"
    assert stream.parse_keep("1000000,0.1234568", listed) == {"epoch_1000000", "epoch_0.1234568"}
    # --at-epochs and --keep-weights pick an epoch alike: its own, else the one alone within 1e-6 of it
    source = sources.open_source(str(folder.parent))
    assert [c.name for c in source.checkpoints([0.1234567])] == ["epoch_0.1234567"]
    with pytest.raises(ParameterError, match=r"^--at-epochs 0\.123457: "):  # two lie within 1e-6 of it
        source.checkpoints([0.123457])
    (folder / "epoch_0.1234568.pt").unlink()
    picked = source.checkpoints([0.123457, 1000000.0])
    assert [c.name for c in picked] == ["epoch_0.1234567", "epoch_1000000"]
    assert stream.parse_keep("0.123457", picked) == {"epoch_0.1234567"}
    assert schedule.epoch_text(-0.0) == "0"


def test_a_folder_source_given_as_its_checkpoints_folder_reads_the_run_s_params_txt(tmp_path):
    run = tmp_path / "logs" / "myrun"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "epoch_1.pt").write_bytes(b"x")
    (run / "params.txt").write_text("force_image_size: 32\nforce_quick_gelu: True\nmodel: ViT-B-16\n")
    for spec in (run, run / "checkpoints"):
        source = sources.open_source(str(spec))
        assert source.architecture == "ViT-B-16" and source.build == {"force_image_size": "32",
                                                                      "force_quick_gelu": "True"}, spec


def test_url_template_bad_input_is_one_line(tmp_path):
    """A template without {epoch}, a spec that is neither, and a server that cannot be reached: each one line
    naming what was given, not a traceback of the HTTP client."""
    import socket

    with pytest.raises(ParameterError, match=r"^--checkpoints 'http://127\.0\.0\.1:1/epoch_1\.pt': a URL template "
                                             r"needs \{epoch\} where the epoch goes$"):
        sources.open_source("http://127.0.0.1:1/epoch_1.pt")
    with pytest.raises(ParameterError, match=r"not a folder, a URL template with \{epoch\}, or laion-scaling:"):
        sources.open_source(str(tmp_path / "nowhere"))
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    source = sources.open_source(f"http://127.0.0.1:{port}/run/epoch_{{epoch}}.pt")
    with pytest.raises(CheckpointError, match=rf"^http://127\.0\.0\.1:{port}/run/epoch_1\.pt: ConnectionError: "):
        source.checkpoints([1])


def test_a_fetch_writes_only_a_part_file_and_refuses_a_size_the_source_did_not_announce(file_server, tmp_path):
    handler, address = file_server
    source = sources.open_source(f"{address}/epoch_{{epoch}}.pt")
    first = source.checkpoints([1])[0]
    dest = tmp_path / "checkpoints" / "epoch_1.pt"
    download, seen = source._download, []

    def watched(checkpoint, partial, progress):  # what lies on disk while the bytes arrive
        download(checkpoint, partial, progress)
        seen.append((partial.name, dest.exists()))
    source._download = watched
    source.fetch(first, dest, progress=False)
    assert seen == [("epoch_1.pt.part", False)] and dest.read_bytes() == (handler.root / "epoch_1.pt").read_bytes()
    announced = sources.RemoteCheckpoint(1, first.location, first.size + 1)
    with pytest.raises(CheckpointError, match=rf"^{address}/epoch_1\.pt: fetched {first.size} bytes, the source says "
                                              rf"{first.size + 1}: fetch again$"):
        source.fetch(announced, tmp_path / "again" / "epoch_1.pt", progress=False)
    assert list((tmp_path / "again").iterdir()) == []


def test_a_url_checkpoint_s_version_is_its_last_modified_where_the_server_gives_no_etag(stand_ins, tmp_path):
    handler = type("Files", (FileServer,), {"root": stand_ins, "gets": {}, "truncate": set(), "etag": False,
                                            "last_modified": "Sun, 06 Dec 2026 10:00:00 GMT"})
    server, address = start_server(handler)
    try:
        checkpoint = sources.open_source(f"{address}/epoch_{{epoch}}.pt").checkpoints([2])[0]
    finally:
        server.shutdown()
        server.server_close()
    assert checkpoint.version == "Sun, 06 Dec 2026 10:00:00 GMT"
    assert checkpoint.identity() == {"source": f"{address}/epoch_2.pt", "size": (stand_ins / "epoch_2.pt").stat().st_size,
                                     "sha256": None, "version": "Sun, 06 Dec 2026 10:00:00 GMT"}


def test_a_laion_run_the_release_table_lacks_spreads_its_samples_over_its_last_epoch(monkeypatch, tmp_path):
    run = "Model-B-16_Data-80M_Samples-6B_lr-1e-3_bs-86k"
    assert run not in sources.LAION_SAMPLES_PER_EPOCH
    files = {f"full_checkpoints/{run}/epoch_{e}.pt": bytes([e]) * 10 for e in (1, 2, 3)}
    with laion_hub(monkeypatch, tmp_path, files):
        source = sources.open_source(f"laion-scaling:{run}")
        listed = source.checkpoints()
    assert source.samples_per_epoch == 2e9 and [c.samples_seen for c in listed] == [2e9, 4e9, 6e9]


def test_the_manifest_names_the_source_and_each_checkpoint_s_place_and_identity(tmp_path):
    """source.json: what the notebooks' pass reads a streamed run by (samples seen for the synthesis, a local
    checkpoint at its own path, a fetched one by its source identity)."""
    from clipalign_utils.checkpoints import discover_run

    class Fetched(sources.URLSource):
        samples_per_epoch = 4e8

    remote = Fetched("http://127.0.0.1:1/epoch_{epoch}.pt")
    wanted = [sources.RemoteCheckpoint(e, remote.url(e), 10 * e, f"{e:g}" * 64, e * 4e8, f'"v{e:g}"') for e in (1, 2)]
    out = stream.RunDir(tmp_path / "fetched")
    stream._write_manifest(out, remote, "tiny", wanted, {"epoch_2"})
    manifest = json.loads(out.source_record.read_text())
    assert {k: manifest[k] for k in ("source", "architecture", "samples_per_epoch", "model", "kept_weights",
                                     "fetches")} == {"source": remote.spec, "architecture": None,
                                                     "samples_per_epoch": 4e8, "model": "tiny",
                                                     "kept_weights": ["epoch_2"], "fetches": []}
    assert manifest["checkpoints"] == [{"name": f"epoch_{e}", "epoch": float(e), "samples_seen": e * 4e8, "local": False,
                                        "source": f"http://127.0.0.1:1/epoch_{e}.pt", "size": 10 * e,
                                        "sha256": f"{e}" * 64, "version": f'"v{e}"'} for e in (1, 2)]
    assert (out.path / "params.txt").read_text() == "model: tiny\n"
    run = discover_run(out.path)
    assert [(c.path, c.identity) for c in run.checkpoints] == [(out.checkpoints / f"{c.name}.pt", c.identity())
                                                               for c in wanted]
    folder = tmp_path / "mine" / "checkpoints"
    folder.mkdir(parents=True)
    (folder / "epoch_1.pt").write_bytes(b"x")
    local = sources.open_source(str(folder))
    stream._write_manifest(stream.RunDir(tmp_path / "local"), local, "tiny", local.checkpoints())
    entry = json.loads((tmp_path / "local" / "source.json").read_text())["checkpoints"][0]
    assert entry["local"] is True and entry["source"] == str(folder / "epoch_1.pt")
    assert [c.path for c in discover_run(tmp_path / "local").checkpoints] == [folder / "epoch_1.pt"]


def test_another_url_template_into_a_streamed_run_is_refused(tmp_path):
    out = stream.RunDir(tmp_path / "run")
    first = sources.open_source("http://127.0.0.1:1/a/epoch_{epoch}.pt")
    stream._write_manifest(out, first, "tiny", [])
    stream._write_manifest(out, sources.open_source("http://127.0.0.1:1/a/epoch_{epoch}.pt"), "tiny", [])
    with pytest.raises(ParameterError, match=r"analyses http://127\.0\.0\.1:1/a/epoch_\{epoch\}\.pt, not "
                                             r"http://127\.0\.0\.1:1/b/epoch_\{epoch\}\.pt: use another --out"):
        stream._write_manifest(out, sources.open_source("http://127.0.0.1:1/b/epoch_{epoch}.pt"), "tiny", [])


def test_weights_on_disk_beyond_keep_weights_stop_the_fetch_and_a_stale_copy_is_fetched_anew(file_server, tmp_path,
                                                                                           monkeypatch):
    """A stray checkpoint in the run's checkpoints/ (none kept) stops the command before it fetches; a copy
    of another size under a checkpoint's name, not measured yet (a command killed between fetch and measure,
    then the file replaced at its URL), is fetched again rather than measured for the new file."""
    handler, address = file_server
    monkeypatch.setattr(stream, "execute", lambda *args, **kwargs: [])  # the notebooks' pass: another test
    # page 10 on a streamed run: test_a_stopped_stream_resumes_without_fetching_finished_checkpoints (its kernel
    # costs about half a second a command here, and nothing here reads the page)
    monkeypatch.setattr(stream, "run_page", lambda *args, **kwargs: None)
    out, template = tmp_path / "run", f"{address}/epoch_{{epoch}}.pt"
    (out / "checkpoints").mkdir(parents=True)
    (out / "checkpoints" / "epoch_7.pt").write_bytes(b"someone's")
    with pytest.raises(CheckpointError, match=r"checkpoints holds epoch_7\.pt beyond what --keep-weights allows"):
        stream.run_streamed(out, template, "1", None, "iqa", "smoke", {"model": "tiny"}, progress=False)
    assert handler.gets == {}
    (out / "checkpoints" / "epoch_7.pt").unlink()
    (out / "checkpoints" / "epoch_1.pt").write_bytes(b"\x80\x02stale" * 10)
    stream.run_streamed(out, template, "1", None, "iqa", "smoke", {"model": "tiny"}, progress=False)
    assert handler.gets == {"epoch_1.pt": 1} and stream.weight_files(stream.RunDir(out)) == []


def test_the_cost_says_which_prompts_it_measured_and_the_command_gives_them():
    """A review: the cost "63 s … 0.6 CPU hours" was measured with one prompt per class (the table's `templates`
    column: single) while the page's Fig. 1 command ran the default 80-template ensembles."""
    import pandas as pd

    from clipalign_utils.steps.real_clip import cost as real_clip_cost, placeholder

    table = pd.DataFrame({"step": ["shape", "saliency"], "dataset": ["geirhos", "mit1003"], "images": [32, 4],
                          "prompts": [16, 1000], "seconds": [10.0, 20.0], "gflop": [1e4, 1e4], "templates": "single",
                          "cpu": "a CPU", "measured": "2026-12-05"})
    said = real_clip_cost.cost_sentences(table)
    assert said[0].startswith("Measured on a CPU (2026-12-05): one ViT-B-32 checkpoint through every step with one "
                              "prompt per class (`prompt_templates=single`) takes 30 s ")
    assert said[2] == ("The default, each dataset's prompt ensemble (`prompt_templates=ensemble`), multiplies the "
                       "16 Geirhos cue-conflict and 1,000 MIT1003 prompts these figures encode by its number of "
                       "templates.")
    assert real_clip_cost.command(templates=real_clip_cost.measured_templates(table)).endswith(
        "-p device=cuda -p prompt_templates=single")
    assert real_clip_cost.command().endswith("-p device=cuda")  # unmeasured: the default ensembles
    ensemble = real_clip_cost.cost_sentences(table.assign(templates="ensemble"))
    assert len(ensemble) == 2 and "every step with each dataset's prompt ensemble" in ensemble[0]
    # the placeholder page's command runs what its cost sentence measured (the shipped table: single)
    shipped = real_clip_cost.read_cost()
    if shipped is not None and real_clip_cost.measured_templates(shipped) == "single":
        assert "-p device=cuda -p prompt_templates=single\n```" in placeholder.text()


def test_page_10_names_the_early_window_on_the_sources_checkpoints():
    from clipalign_utils.steps.real_clip.cost import early_rule

    assert early_rule([3, 0.25, 1, 0.5, 2]).endswith("here epochs 0.25–1 of 0.25–3")  # 0 < epoch <= 3 / 3
    assert early_rule([2]).endswith("here none of the one checkpoint, epoch 2")  # (said "none of 2–2")


def test_page_10_says_when_its_source_gives_no_samples_seen_axis(tmp_path):
    """A review: page 10 promised "samples seen on top" for a folder source, whose figures (no samples_per_epoch)
    draw no such axis and whose table drops the column, silently."""
    from clipalign_utils.steps.real_clip.page import source_sentences

    folder = [{"name": f"epoch_{e}", "epoch": float(e), "samples_seen": None, "source": f"/ckpts/epoch_{e}.pt"}
              for e in (1, 2)]
    (tmp_path / "source.json").write_text(json.dumps({"source": "/ckpts", "model": "RN50", "checkpoints": folder}))
    said = source_sentences(tmp_path)
    assert said[:2] == ["2 checkpoints of RN50 from `/ckpts`",
                        "This source does not say how many samples an epoch is: the figures' axes show epochs only, "
                        "and the table has no samples_seen column."]
    laion = [{**c, "samples_seen": 4.0e8 * c["epoch"]} for c in folder]
    (tmp_path / "source.json").write_text(json.dumps({"source": "laion-scaling:x", "model": "RN50",
                                                      "samples_per_epoch": 4.0e8, "checkpoints": laion}))
    said = source_sentences(tmp_path)
    assert said[0] == "2 checkpoints of RN50 from `laion-scaling:x`; an epoch is 0.4 B samples"
    assert not any("does not say" in line for line in said)
