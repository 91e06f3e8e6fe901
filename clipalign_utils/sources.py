"""Where a run's checkpoints come from (``clipalign run --checkpoints SOURCE``).

A source lists a training trajectory's checkpoints (:class:`RemoteCheckpoint`: its epoch, its place on
the samples-seen axis when the source knows it, where it lives, its size and published checksum) and
fetches one into a file. Three kinds:

- a local folder holding ``epoch_<E>.pt`` files (open_clip_train's ``checkpoints/`` or a run directory, whose
  ``params.txt`` names the architecture and how the model was built);
- a URL template with ``{epoch}`` (plain HTTP(S): a lab's server, a mirror), fetched with ``requests``;
  HTTP cannot be listed, so ``--at-epochs`` names the epochs;
- ``laion-scaling:<run name>``: LAION's scaling-laws release (Cherti et al. 2023), the Hugging Face model
  repo ``laion/scaling-laws-openclip`` at ``full_checkpoints/<run name>/epoch_<N>.pt``, listed and fetched
  with ``huggingface_hub`` (so ``HF_ENDPOINT`` and ``HF_TOKEN`` apply). The run name gives the
  architecture (``Model-B-32_Data-400M_Samples-13B_lr-1e-3_bs-86k``: ViT-B-32); there an epoch is a fixed
  number of samples, the release's own figure (:data:`LAION_SAMPLES_PER_EPOCH`; for a run it lacks, the
  name's total over the last epoch listed).

A fetch writes to ``<file>.part`` and renames only a complete, verified file (size, and the published
SHA-256 where there is one), so an interrupted fetch is never taken for a checkpoint.
"""
from __future__ import annotations

import hashlib
import math
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from .errors import CheckpointError, ParameterError
from .schedule import CHECKPOINT_FILE, epoch_text

LAION_REPO = "laion/scaling-laws-openclip"
LAION_PREFIX = "laion-scaling:"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class RemoteCheckpoint:
    """One checkpoint of a source. ``location``: a path, a URL or ``<repo>/<path in repo>``."""

    epoch: float
    location: str
    size: int | None = None
    sha256: str | None = None
    samples_seen: float | None = None
    # what the server says of the file's version (a URL's ETag, else its Last-Modified): a checkpoint replaced by
    # another of the same size is then a new one, not served from what the old one measured
    version: str | None = None

    @property
    def name(self) -> str:
        return f"epoch_{epoch_text(self.epoch)}"

    def identity(self) -> dict:
        """What the embedding cache is keyed on: the checkpoint's source, not a local file's path or time."""
        identity = {"source": self.location, "size": self.size, "sha256": self.sha256}
        if self.version is not None:
            identity["version"] = self.version
        return identity


def format_epochs(epochs: Sequence[float]) -> str:
    return ", ".join(epoch_text(e) for e in epochs)


def parse_epochs(text: str | None, parameter: str = "--at-epochs") -> list[float] | None:
    """"1,2,4" → [1.0, 2.0, 4.0]; None or "" → None (every epoch the source has)."""
    if text is None or not str(text).strip():
        return None
    try:
        epochs = [float(part) for part in str(text).split(",") if part.strip()]
    except ValueError:
        raise ParameterError(f"{parameter} {text!r}: give epochs as numbers separated by commas (1,2,4)") from None
    if not epochs or any(not e >= 0 or math.isinf(e) for e in epochs):
        raise ParameterError(f"{parameter} {text!r}: give epochs >= 0 separated by commas (1,2,4)")
    return sorted(set(epochs))


def _pick(available: list[RemoteCheckpoint], at_epochs: list[float] | None, spec: str) -> list[RemoteCheckpoint]:
    if not available:
        raise CheckpointError(f"{spec} holds no epoch_<N>.pt checkpoints")
    if at_epochs is None:
        return available
    found = {e: at_epoch(available, e) for e in at_epochs}
    missing = [e for e, checkpoint in found.items() if checkpoint is None]
    if missing:
        raise ParameterError(f"--at-epochs {format_epochs(missing)}: {spec} has epochs "
                             f"{format_epochs([c.epoch for c in available])}")
    return list(found.values())


def at_epoch(checkpoints: Sequence[RemoteCheckpoint], epoch: float) -> RemoteCheckpoint | None:
    """The checkpoint of ``epoch`` among ``checkpoints``: its own, else the one alone within 1e-6 of it (0.333333
    given for epoch_0.3333333); None if none is, or several are."""
    exact = [c for c in checkpoints if c.epoch == epoch]
    near = exact or [c for c in checkpoints if round(c.epoch, 6) == round(epoch, 6)]
    return near[0] if len(near) == 1 else None


def _verify(path: Path, checkpoint: RemoteCheckpoint) -> None:
    """Size and SHA-256 against what the source published (a mismatch names the file and removes it)."""
    size = path.stat().st_size
    if checkpoint.size is not None and size != checkpoint.size:
        path.unlink()
        raise CheckpointError(f"{checkpoint.location}: fetched {size} bytes, the source says {checkpoint.size}: "
                              f"fetch again")
    if checkpoint.sha256:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(_CHUNK), b""):
                digest.update(block)
        if digest.hexdigest() != checkpoint.sha256:
            path.unlink()
            raise CheckpointError(f"{checkpoint.location}: SHA-256 {digest.hexdigest()} is not the published "
                                  f"{checkpoint.sha256}: fetch again")


class Source:
    """A trajectory's checkpoints: :meth:`checkpoints` lists them, :meth:`fetch` writes one to a file."""

    spec: str
    architecture: str | None = None  # the open_clip model name, when the source says it
    build: dict = {}  # params.txt's lines on how the model was built (checkpoints.MODEL_BUILD_KEYS), when it has one
    samples_per_epoch: float | None = None
    remote: bool = True  # False: the checkpoints already are local files

    def checkpoints(self, at_epochs: list[float] | None = None) -> list[RemoteCheckpoint]:
        raise NotImplementedError

    def fetch(self, checkpoint: RemoteCheckpoint, dest: Path, progress: bool = True) -> Path:
        """Write ``checkpoint`` to ``dest`` (atomically, verified); return ``dest``."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        partial = dest.with_name(dest.name + ".part")
        partial.unlink(missing_ok=True)
        try:
            self._download(checkpoint, partial, progress)
            _verify(partial, checkpoint)
        except BaseException:
            partial.unlink(missing_ok=True)  # an interrupted fetch leaves nothing that looks like a checkpoint
            raise
        os.replace(partial, dest)
        return dest

    def _download(self, checkpoint: RemoteCheckpoint, partial: Path, progress: bool) -> None:
        raise NotImplementedError

    def describe(self) -> dict:
        return {"source": self.spec, "architecture": self.architecture, "samples_per_epoch": self.samples_per_epoch}

    def same_as(self, spec: str) -> bool:
        """Whether ``spec`` (a manifest's ``source``) names this source."""
        return spec == self.spec


def _checkpoint_folder(folder: Path) -> Path:
    """Where a folder source's epoch files lie: its checkpoints/ (a run folder given), else the folder."""
    return folder / "checkpoints" if (folder / "checkpoints").is_dir() else folder


class FolderSource(Source):
    """Checkpoints already on disk: ``<folder>/epoch_<E>.pt`` (or ``<folder>/checkpoints/epoch_<E>.pt``),
    measured where they lie (nothing is fetched, copied or deleted)."""

    remote = False

    def __init__(self, folder: str | Path):
        # Absolute: the pages' kernels run in the repository's root and read each checkpoint by this path.
        folder = Path(folder).expanduser().absolute()
        self.spec = str(folder)
        self.folder = _checkpoint_folder(folder)
        # open_clip_train's run folder holds params.txt beside checkpoints/: the model, and how it was built
        found = next((p for p in (folder / "params.txt", self.folder.parent / "params.txt") if p.is_file()), None)
        if found is not None:
            from .checkpoints import MODEL_BUILD_KEYS
            from .layout import read_params_txt

            params = read_params_txt(found)
            self.architecture = params.get("model") or None
            self.build = {k: params[k] for k in MODEL_BUILD_KEYS if params.get(k) not in (None, "", "None", "False")}

    def same_as(self, spec: str) -> bool:
        """The same checkpoints however the folder was named: the run folder or its checkpoints/, through a
        link or not."""
        return _checkpoint_folder(Path(spec)).resolve() == self.folder.resolve()

    def checkpoints(self, at_epochs=None):
        found = sorted((RemoteCheckpoint(float(m.group(1)), str(p), p.stat().st_size)
                        for p in self.folder.iterdir() if (m := CHECKPOINT_FILE.match(p.name))), key=lambda c: c.epoch)
        if not found:
            from .checkpoints import no_checkpoints

            raise CheckpointError(no_checkpoints(self.folder))
        return _pick(found, at_epochs, self.spec)


class URLSource(Source):
    """A URL template with ``{epoch}`` (``https://host/run/epoch_{epoch}.pt``): HTTP(S) via ``requests``."""

    def __init__(self, template: str):
        if "{epoch}" not in template:
            raise ParameterError(f"--checkpoints {template!r}: a URL template needs {{epoch}} where the epoch goes")
        self.spec = template

    def url(self, epoch: float) -> str:
        return self.spec.replace("{epoch}", epoch_text(epoch))

    def checkpoints(self, at_epochs=None):
        if at_epochs is None:
            raise ParameterError(f"--checkpoints {self.spec}: a URL template cannot be listed; "
                                 f"name the epochs with --at-epochs (1,2,4)")
        found = []
        for epoch in at_epochs:
            size, version = self._size_and_version(self.url(epoch))
            found.append(RemoteCheckpoint(epoch, self.url(epoch), size, version=version))
        return found

    @staticmethod
    def _get(url: str, **kwargs):
        import requests

        try:
            response = requests.request(kwargs.pop("method", "GET"), url, timeout=60, allow_redirects=True,
                                        **kwargs)
        except requests.RequestException as error:
            raise CheckpointError(f"{url}: {type(error).__name__}: {str(error)[:200]}") from None
        if response.status_code >= 400:
            raise CheckpointError(f"{url}: HTTP {response.status_code} {response.reason}")
        return response

    def _size_and_version(self, url: str) -> tuple[int | None, str | None]:
        """(size, version) as a HEAD request gives them."""
        headers = self._get(url, method="HEAD").headers
        length = headers.get("Content-Length")
        return int(length) if length and length.isdigit() else None, headers.get("ETag") or headers.get("Last-Modified")

    def _download(self, checkpoint, partial, progress):
        import requests
        from tqdm import tqdm

        with self._get(checkpoint.location, stream=True) as response, open(partial, "wb") as handle, \
                tqdm(total=checkpoint.size, unit="B", unit_scale=True, desc=Path(partial.stem).name,
                     disable=not progress) as bar:
            try:
                for block in response.iter_content(_CHUNK):
                    handle.write(block)
                    bar.update(len(block))
            except requests.RequestException as error:
                raise CheckpointError(f"{checkpoint.location}: the transfer broke off ({type(error).__name__}): "
                                      f"fetch again") from None


# Each run's samples per epoch, from the release's own table (trained_models_info.csv, LAION-AI/scaling-laws-
# openclip at 652b1e7): the name's total over the last epoch is off by up to 23 % (the "3B" runs saw 2.4–2.6 B
# samples; Model-B-32_Data-400M_Samples-3B: 6 epochs of 407,332,084).
LAION_SAMPLES_PER_EPOCH = {
    "Model-B-32_Data-400M_Samples-13B_lr-1e-3_bs-86k": 413000000,
    "Model-L-14_Data-400M_Samples-13B_lr-1e-3_bs-86k": 413000000,
    "Model-L-14_Data-400M_Samples-34B_lr-1e-3_bs-86k": 413000000,
    "Model-L-14_Data-2B_Samples-13B_lr-1e-3_bs-86k": 200000000,
    "Model-B-32_Data-2B_Samples-13B_lr-5e-4_bs-32k": 200000000,
    "Model-B-32_Data-80M_Samples-3B_lr-5e-4_bs-32k": 80000415,
    "Model-B-32_Data-80M_Samples-13B_lr-5e-4_bs-32k": 80000415,
    "Model-B-16_Data-2B_Samples-3B_lr-1e-3_bs-88k": 213334440,
    "Model-B-32_Data-2B_Samples-3B_lr-1e-3_bs-88k": 213334440,
    "Model-B-32_Data-400M_Samples-3B_lr-1e-3_bs-88k": 407332084,
    "Model-B-16_Data-400M_Samples-3B_lr-1e-3_bs-88k": 407332084,
    "Model-B-16_Data-2B_Samples-13B_lr-1e-3_bs-88k": 200532718,
    "Model-B-16_Data-80M_Samples-13B_lr-1e-3_bs-88k": 80000415,
    "Model-B-16_Data-80M_Samples-3B_lr-1e-3_bs-88k": 80000415,
    "Model-L-14_Data-400M_Samples-3B_lr-1e-3_bs-88k": 407332084,
    "Model-L-14_Data-2B_Samples-3B_lr-1e-3_bs-88k": 213334440,
    "Model-B-16_Data-2B_Samples-34B_lr-1e-3_bs-88k": 200092953,
    "Model-B-16_Data-400M_Samples-34B_lr-1e-3_bs-88k": 407332084,
    "Model-B-32_Data-400M_Samples-34B_lr-5e-4_bs-32k": 407332084,
    "Model-L-14_Data-80M_Samples-13B_lr-1e-3_bs-88k": 80000415,
    "Model-L-14_Data-80M_Samples-3B_lr-1e-3_bs-88k": 80000415,
    "Model-L-14_Data-2B_Samples-34B_lr-1e-3_bs-86k": 200000000,
    "Model-B-32_Data-2B_Samples-34B_lr-1e-3_bs-79k": 135646078,
    "Model-B-16_Data-400M_Samples-13B_lr-5e-4_bs-33k": 407332084,
    "Model-H-14_Data-2B_Samples-34B_lr-5e-4_bs-79k": 135646078,
    "Model-g-14_Data-2B_Samples-13B_lr-5e-4_bs-64k": 135646078,
    "Model-B-32_Data-80M_Samples-34B_lr-1e-3_bs-88k": 80000415,
    "Model-B-16_Data-80M_Samples-34B_lr-1e-3_bs-88k": 80000415,
    "Model-L-14_Data-80M_Samples-34B_lr-1e-3_bs-88k": 80000415,
}


def parse_laion_run(name: str) -> tuple[str, float]:
    """(open_clip architecture, samples seen) of a scaling-laws run name:
    ``Model-B-32_Data-400M_Samples-13B_lr-1e-3_bs-86k`` → ("ViT-B-32", 13e9)."""
    model = re.search(r"(?:^|_)Model-([A-Za-z]+-\d+)(?:_|$)", name)
    samples = re.search(r"(?:^|_)Samples-(\d+(?:\.\d+)?)([KMB])(?:_|$)", name)
    if not model or not samples:
        raise ParameterError(f"--checkpoints {LAION_PREFIX}{name}: not a scaling-laws run name "
                             f"(e.g. Model-B-32_Data-400M_Samples-13B_lr-1e-3_bs-86k)")
    scale = {"K": 1e3, "M": 1e6, "B": 1e9}[samples.group(2)]
    return f"ViT-{model.group(1)}", float(samples.group(1)) * scale


def _hub_failure(what: str, error: Exception) -> CheckpointError:
    """One line for a failed hub call: the hub's HTTP error, or (offline) a connection error of its client."""
    from huggingface_hub.errors import HfHubHTTPError

    lines = str(error).strip().splitlines()
    offline = ("" if isinstance(error, HfHubHTTPError) else
               " (offline? the hub, or HF_ENDPOINT's mirror, must be reachable)")
    return CheckpointError(f"{what} failed: {type(error).__name__}: {lines[0][:300] if lines else ''}{offline}")


def _hf_endpoint() -> str | None:
    """``HF_ENDPOINT`` as it is now (huggingface_hub reads it once, at its import): a mirror, or the hub."""
    return os.environ.get("HF_ENDPOINT") or None


class LaionScalingSource(Source):
    """``laion-scaling:<run name>``: the per-epoch checkpoints of one run of LAION's scaling-laws release."""

    def __init__(self, run: str, repo: str = LAION_REPO):
        self.run, self.repo = run, repo
        self.spec = f"{LAION_PREFIX}{run}"
        self.architecture, self.samples_seen = parse_laion_run(run)
        self.folder = f"full_checkpoints/{run}"

    def checkpoints(self, at_epochs=None):
        from huggingface_hub import HfApi

        try:
            entries = list(HfApi(endpoint=_hf_endpoint()).list_repo_tree(self.repo, path_in_repo=self.folder,
                                                                         expand=True))
        except Exception as error:  # the hub's HTTP errors, and offline a connection error of its HTTP client
            raise _hub_failure(f"{self.spec}: listing {self.repo}/{self.folder}", error) from None
        found = []
        for entry in entries:
            match = CHECKPOINT_FILE.match(Path(entry.path).name)
            if match:
                lfs = getattr(entry, "lfs", None)
                found.append(RemoteCheckpoint(float(match.group(1)), f"{self.repo}/{entry.path}",
                                              getattr(entry, "size", None), getattr(lfs, "sha256", None)))
        found.sort(key=lambda c: c.epoch)
        if found:
            # An epoch is a fixed number of samples: the release's figure, else the name's total over the last epoch.
            self.samples_per_epoch = LAION_SAMPLES_PER_EPOCH.get(self.run, self.samples_seen / found[-1].epoch)
            found = [RemoteCheckpoint(c.epoch, c.location, c.size, c.sha256, c.epoch * self.samples_per_epoch)
                     for c in found]
        return _pick(found, at_epochs, self.spec)

    def _download(self, checkpoint, partial, progress):
        from huggingface_hub import hf_hub_download

        path_in_repo = checkpoint.location[len(self.repo) + 1:]
        staging = partial.parent / f".{partial.name}.hub"
        try:
            fetched = hf_hub_download(self.repo, path_in_repo, local_dir=staging, endpoint=_hf_endpoint())
        except Exception as error:  # as in checkpoints()
            raise _hub_failure(f"{self.spec}: fetching {path_in_repo}", error) from None
        os.replace(fetched, partial)
        shutil.rmtree(staging, ignore_errors=True)


def open_source(spec: str) -> Source:
    """The source ``spec`` names: ``laion-scaling:<run>``, a URL template (http/https with ``{epoch}``), or a
    folder (it must exist)."""
    spec = str(spec).strip()
    if spec.startswith(LAION_PREFIX):
        return LaionScalingSource(spec[len(LAION_PREFIX):])
    if re.match(r"^https?://", spec):
        return URLSource(spec)
    if not Path(spec).is_dir():
        raise ParameterError(f"--checkpoints {spec!r}: not a folder, a URL template with {{epoch}}, "
                             f"or {LAION_PREFIX}<run name>")
    return FolderSource(spec)
