"""Batched, cached image and text encoding for one checkpoint.

Embeddings are the raw projected features (float32, not L2-normalised: the distances of
the IQA step differ on raw vectors, and the authors measure on them); whoever needs unit
vectors normalises on use. Each (checkpoint, image set, preprocessing) is encoded once
and kept on disk under ``cache_dir``: every notebook of a run shares the cache, and a cache
hit never loads the model. A checkpoint is known by what its file holds, not where it is or when it was
written (a run moved or copied elsewhere keeps its embeddings), or, when it was fetched from a source
(``sources``), by that source's identity: a streamed run's weights may be gone.

On CUDA the forward pass runs under autocast (fp16); on the CPU in fp32. The cache is kept apart by what
changes the numbers' low bits: the device type (and with it the precision) and the torch and open_clip
versions, so a cache filled on a GPU never answers a CPU run, nor one filled by another torch.

torch, open_clip and the model are imported and loaded only where something is encoded: a step whose
embeddings are all cached (a re-run) reads them with numpy and never imports torch (about 2.5 s with
torchvision, which open_clip and piq import).
"""
from __future__ import annotations

import glob
import hashlib
import json
import os
import sys
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np
from tqdm import tqdm  # plain text bars: no widget library needed in notebooks

from .checkpoints import Checkpoint
from .data.cache import source_hash
from .data.image_sets import ImageSet, centre_offsets, shorter_side_to
from .errors import ParameterError
from .io import atomic_write

if TYPE_CHECKING:
    import torch


def _sha1(obj) -> str:
    return hashlib.sha1(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def _file_identity(path: Path) -> dict:
    """A checkpoint file's content, read cheaply: torch.save writes a zip whose central directory lists each
    record's CRC-32 and size, so those (names without the archive's folder, which is the file's stem when
    saved) stand for the weights without reading them. Any other file is hashed whole."""
    try:
        with zipfile.ZipFile(path) as archive:
            records = sorted((info.filename.split("/", 1)[-1], info.CRC, info.file_size)
                             for info in archive.infolist())
        return {"records": _sha1(records), "size": path.stat().st_size}
    except zipfile.BadZipFile:
        with open(path, "rb") as handle:
            return {"sha256": hashlib.file_digest(handle, "sha256").hexdigest()}


def device_type(asked: str, resolve) -> str:
    """The type of device an encoder asked for ``asked`` computes on ("cpu", "cuda", …). ``resolve()`` gives
    the torch device; it is called only where the answer needs torch: on Linux, "auto" without a GPU
    driver's device node cannot find CUDA, and a cached re-run should not import torch to learn that."""
    if asked != "auto":
        return asked.split(":")[0]
    if sys.platform.startswith("linux") and not glob.glob("/dev/nvidia[0-9]*") and not os.path.exists("/dev/kfd"):
        return "cpu"
    return resolve().type


def computed_with(device: str) -> dict:
    """What the cached numbers' low bits depend on besides the checkpoint and the images."""
    from importlib.metadata import PackageNotFoundError, version

    def installed(name):
        try:
            return version(name)
        except PackageNotFoundError:
            return None

    return {"device": device, "precision": "float16 autocast" if device == "cuda" else "float32",
            "torch": installed("torch"), "open_clip": installed("open_clip_torch")}


# Bump when the meaning of a cached array changes, so an older cache is never read with the new meaning
# (v2: raw embeddings instead of unit vectors; block outputs per location instead of averaged).
CACHE_FORMAT = 2


def _read_cached(path: Path, mmap_mode: str | None = None) -> np.ndarray | None:
    """The array cached at ``path``; None where there is none, or where the file cannot be read (cut short by a
    full disk, damaged): that file is removed and the array computed again (an audit truncated a cache file, and
    every re-run failed on it with numpy's error, naming neither the file nor the way out)."""
    if not path.exists():
        return None
    try:
        return np.load(path, mmap_mode=mmap_mode)
    except (ValueError, OSError, EOFError):
        path.unlink(missing_ok=True)
        return None


def resize_to_input(images: torch.Tensor, size: int) -> torch.Tensor:
    """(N,H,W,3) uint8 or float in [0,1] -> (N,3,size,size) float in [0,1], as open_clip's transform
    resizes: the shorter side to ``size`` (bicubic, antialiased), then a centre crop."""
    import torch
    import torch.nn.functional as F

    x = images.permute(0, 3, 1, 2)
    x = x.float() / 255 if x.dtype == torch.uint8 else x.float()
    h, w = x.shape[-2:]
    if (h, w) != (size, size):
        new_h, new_w = shorter_side_to(h, w, size)
        x = F.interpolate(x, size=(new_h, new_w), mode="bicubic", antialias=True, align_corners=False)
        top, left = centre_offsets(new_h, new_w, size)
        x = x[..., top:top + size, left:left + size].clamp(0, 1)
    return x


def preprocess_batch(images: torch.Tensor, size: int, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """(N,H,W,3) uint8 or float in [0,1] -> normalised (N,3,size,size) float, as open_clip's
    transform does: resize the shorter side (bicubic, antialiased), centre-crop, normalise."""
    return (resize_to_input(images, size) - mean) / std


def vision_block_names(model: torch.nn.Module) -> list[str]:
    """Names of the vision tower's intermediate outputs, input to output: ModifiedResNet's stem and stages
    (stem, layer1..4, as open_clip's ``forward_intermediates`` returns them), or a ViT's embeddings (the
    tokens entering the first block: patches, class token and positions after ln_pre, what Hugging Face's
    ``hidden_states[0]`` is and the authors' per-layer code scores as layer 0) and its transformer blocks
    (block1..N)."""
    visual = model.visual
    if hasattr(visual, "transformer") and hasattr(visual.transformer, "resblocks"):
        return ["embeddings"] + [f"block{i + 1}" for i in range(len(visual.transformer.resblocks))]
    if all(hasattr(visual, f"layer{i}") for i in range(1, 5)):
        return ["stem"] + [f"layer{i}" for i in range(1, 5)]
    raise ParameterError(f"layers='all' supports open_clip's ViT and ModifiedResNet towers, "
                         f"not {type(visual).__name__}")


def _per_location(intermediates: dict) -> list[torch.Tensor]:
    """Each block's output as (N, locations, channels): ResNet maps flattened over space, ViT tokens
    with the class token (and any other prefix token) first."""
    import torch

    outputs = []
    prefixes = intermediates.get("image_intermediates_prefix")
    for k, output in enumerate(intermediates["image_intermediates"]):
        if output.ndim == 4:  # NCHW
            output = output.flatten(2).transpose(1, 2)
        elif prefixes is not None:
            output = torch.cat([prefixes[k], output], dim=1)
        outputs.append(output.float())
    return outputs


def _pair_statistics(references, distorted) -> np.ndarray:
    """(pairs, C + 3): ``metrics.iqa.block_pair_statistics`` of two (pairs, L, C) block outputs, pair k against
    pair k: the per-channel sums of squared differences, then ⟨r, d⟩, |r|² and |d|²."""
    import torch

    # float64 sums (block outputs are float32): the statistics of thousands of values per pair
    ref, dist = references.float().double(), distorted.float().double()
    columns = [((ref - dist) ** 2).sum(dim=1), (ref * dist).sum(dim=(1, 2))[:, None],
               (ref * ref).sum(dim=(1, 2))[:, None], (dist * dist).sum(dim=(1, 2))[:, None]]
    return torch.cat(columns, dim=1).cpu().numpy()


# Per pair of block outputs, what each distance needs (metrics.iqa.block_distance): the per-channel sums over
# locations of (r − d)², then ⟨r, d⟩, |r|² and |d|² of the flattened outputs.
BLOCK_STATISTICS = ("squared", "dot", "ref_norm2", "dist_norm2")


def _unpacked(array: np.ndarray) -> dict[str, np.ndarray]:
    """:func:`_pair_statistics`' columns (the C per-channel sums, then the three scalars) by name, in
    :data:`BLOCK_STATISTICS` order."""
    return {"squared": array[:, :-3], **{stat: array[:, -3 + k] for k, stat in enumerate(BLOCK_STATISTICS[1:])}}


class Encoder:
    """Encode image sets and class prompts with one checkpoint.

    >>> enc = Encoder(run.checkpoints[-1], run.model_name, run.image_size, cache_dir=run_dir / "cache")
    >>> emb = enc.encode_images(images)            # (N, D), raw projected features
    >>> pred = enc.classify(images, classnames, templates)
    """

    def __init__(self, checkpoint: Checkpoint | str | Path, model_name: str, image_size: int | None = None,
                 device: str = "auto", batch_size: int = 512, cache_dir: str | Path | None = None,
                 progress: bool = False, model_options: dict | None = None):
        self.checkpoint_path = Path(checkpoint.path if isinstance(checkpoint, Checkpoint) else checkpoint)
        # A fetched checkpoint is known by its source (its weights may be gone); a local file by its content.
        source = checkpoint.identity if isinstance(checkpoint, Checkpoint) else None
        self.model_name = model_name
        self.image_size = image_size
        self._device_asked = device
        self._device = None
        if device not in ("auto", "cpu"):
            self.device  # an unusable device ("cuda" without a GPU) stops here, not at the first encoding
        self.batch_size = batch_size
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.progress = progress
        self._model = None
        # the package's source too: a change to how images are prepared or encoded, or to a model config it
        # registers, would otherwise be answered with arrays the code before it made
        self._identity = {"checkpoint": source or _file_identity(self.checkpoint_path), "model": model_name,
                          "image_size": image_size, "format": CACHE_FORMAT,
                          "computed_with": computed_with(device_type(device, lambda: self.device)),
                          "source": source_hash()}
        # how the model is built (checkpoints.model_options), where it differs from open_clip's defaults
        self.model_options = dict(model_options or {})
        if self.model_options:
            self._identity["model_options"] = self.model_options

    @property
    def device(self) -> torch.device:
        if self._device is None:
            from . import models

            self._device = models.resolve_device(self._device_asked)
        return self._device

    @property
    def model(self) -> torch.nn.Module:
        if self._model is None:
            import torch

            from . import models

            self._model = models.encode_text_over_prompts(models.load_checkpoint_model(
                self.checkpoint_path, self.model_name, self.image_size, self.device, self.model_options))
            cfg = models.preprocess_config(self._model)
            self._size = cfg["size"]
            self._mean = torch.tensor(cfg["mean"], device=self.device).view(1, 3, 1, 1)
            self._std = torch.tensor(cfg["std"], device=self.device).view(1, 3, 1, 1)
        return self._model

    def _cache_path(self, key: dict) -> Path:
        return self.cache_dir / f"{_sha1({**self._identity, **key})}.npy"

    def _cached(self, key: dict, compute, on_disk: bool = False) -> np.ndarray:
        """The array cached under ``key``, computed and kept first if it is not there. ``on_disk``: read through
        a memory map (what a caller keeps for long, e.g. every checkpoint's maps of a large set, stays in the
        file rather than in memory)."""
        if self.cache_dir is None:
            return compute()
        path = self._cache_path(key)
        kept = _read_cached(path, "r" if on_disk else None)
        if kept is not None:
            return kept
        array = compute()
        atomic_write(path, lambda tmp: np.save(tmp, array))
        return np.load(path, mmap_mode="r") if on_disk else array

    def _read_all(self, keys: list[dict]) -> list[np.ndarray] | None:
        """The arrays cached under every one of ``keys``, or None where any is missing (or unreadable)."""
        if self.cache_dir is None or not all(self._cache_path(key).exists() for key in keys):
            return None
        arrays = [_read_cached(self._cache_path(key)) for key in keys]
        return None if any(array is None for array in arrays) else arrays

    def _autocast(self):
        import torch

        if self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.float16)
        return torch.autocast("cpu", enabled=False)

    def encode_images(self, images: ImageSet) -> np.ndarray:
        """(N, D) raw projected embeddings (not normalised) of every image in the set."""
        return self._cached({"images": images.identity, "layer": "final", "kind": "image"},
                            lambda: self._encode_images(images))

    def encode_layers(self, images: ImageSet) -> dict[str, np.ndarray]:
        """{layer: (N, L, C) features} for every vision block's output per location (L = the
        block's spatial positions or tokens, class token first) and "final": the (N, D) raw
        embedding. One forward pass (open_clip's ``forward_intermediates``) fills every layer."""
        names = self.block_names() + ["final"]
        keys = {name: {"images": images.identity, "layer": name, "kind": "image"} for name in names}
        kept = self._read_all([keys[name] for name in names])
        if kept is not None:
            return dict(zip(names, kept))
        features = self._encode_images(images, with_blocks=True)
        return {name: self._cached(keys[name], lambda name=name: features[name]) for name in names}

    def block_names(self) -> list[str]:
        """The vision tower's block names (``vision_block_names``), kept in the cache so that a cached call
        neither loads the model nor imports torch."""
        # "vision layer names": the list since it begins with a ViT's embeddings (a cache holding the older list
        # of blocks only computes the layers again, rather than reading a list its layers do not match)
        return [str(name) for name in self._cached({"kind": "vision layer names"},
                                                   lambda: np.array(vision_block_names(self.model)))]

    def encode_block_pairs(self, references: ImageSet, distorted: ImageSet, reference_rows,
                           distorted_rows) -> dict[str, dict[str, np.ndarray]]:
        """{block: ``metrics.iqa.block_pair_statistics``} for the pairs (references[reference_rows[k]],
        distorted[distorted_rows[k]]), for every vision block. The distorted images stream through in batches
        and each pair's outputs are reduced as they come: memory holds the references' block outputs and one
        batch's, where every image's would not fit (a ViT-B/16's 12 blocks of 197 tokens over TID2013's 3,000
        images are 22 GB). Kept in the cache per block: a re-run reads (pairs, C + 3) numbers per block."""
        reference_rows = np.asarray(reference_rows, dtype=np.int64)
        distorted_rows = np.asarray(distorted_rows, dtype=np.int64)
        return self._cached_pair_statistics(
            references, [distorted], reference_rows, distorted_rows,
            lambda: [self._block_pair_statistics(references, distorted, reference_rows, distorted_rows)])[0]

    def _cached_pair_statistics(self, references: ImageSet, others: Sequence[ImageSet], reference_rows: np.ndarray,
                                other_rows: np.ndarray, compute) -> list[dict[str, dict[str, np.ndarray]]]:
        """For each set in ``others``, its block pair statistics with ``references`` (the pairs
        (references[reference_rows[k]], other[other_rows[k]])) by block, unpacked: read from the cache when every
        entry is there, else ``compute()`` (one {block: packed array} per set) and each kept. One key per set ×
        block, the same whichever method asked for the pairs."""
        pairs = _sha1([hashlib.sha1(reference_rows.tobytes()).hexdigest(),
                       hashlib.sha1(other_rows.tobytes()).hexdigest()])
        keys = [{name: {"references": references.identity, "distorted": other.identity, "pairs": pairs,
                        "layer": name, "kind": "block pair statistics"} for name in self.block_names()}
                for other in others]
        kept = self._read_all([k for key in keys for k in key.values()])
        if kept is not None:
            arrays = iter(kept)
            packed = [{name: next(arrays) for name in key} for key in keys]
        else:
            computed = compute()
            packed = [{name: self._cached(k, lambda j=j, name=name: computed[j][name]) for name, k in key.items()}
                      for j, key in enumerate(keys)]
        return [{name: _unpacked(array) for name, array in statistics.items()} for statistics in packed]

    def _block_pair_statistics(self, references: ImageSet, distorted: ImageSet, reference_rows: np.ndarray,
                               distorted_rows: np.ndarray) -> dict[str, np.ndarray]:
        import torch

        names = self.block_names()
        on_device = {name: torch.from_numpy(array).to(self.device)
                     for name, array in self._encode_images(references, with_blocks=True).items() if name in names}
        packed: dict[str, np.ndarray] = {}
        starts = range(0, len(distorted), self.batch_size)
        for start in tqdm(starts, desc=f"block pairs {distorted.name} @ {self.checkpoint_path.stem}",
                          disable=not self.progress, leave=False):
            stop = min(start + self.batch_size, len(distorted))
            in_batch = np.flatnonzero((distorted_rows >= start) & (distorted_rows < stop))
            if not len(in_batch):
                continue
            x = preprocess_batch(distorted.batch(start, stop).to(self.device, non_blocking=True),
                                 self._size, self._mean, self._std)
            with torch.no_grad(), self._autocast():
                outputs = self._forward(x, with_blocks=True)
            rows = torch.from_numpy(distorted_rows[in_batch] - start).to(self.device)
            matched = torch.from_numpy(reference_rows[in_batch]).to(self.device)
            for name in names:
                columns = _pair_statistics(on_device[name][matched], outputs[name][rows])
                if name not in packed:
                    packed[name] = np.zeros((len(distorted_rows), columns.shape[1]))
                packed[name][in_batch] = columns
        return {name: packed.get(name, np.zeros((0, 3))) for name in names}

    def encode_aligned_block_pairs(self, references: ImageSet, others: Sequence[ImageSet]
                                   ) -> list[dict[str, dict[str, np.ndarray]]]:
        """For each set in ``others`` (each as long as ``references``), {block: ``metrics.iqa.
        block_pair_statistics``} of the pairs (references[k], other[k]), for every vision block: a 2AFC set's
        reference against each candidate, triplet by triplet. Every set streams through in the same batches,
        so memory holds one batch's block outputs of each (NIGHTS's 20,019 references, a ViT-B/32's 13 layers
        of 50 tokens, are 40 GB whole), and each reference is encoded once for all the sets. The cache entries
        are :meth:`encode_block_pairs`'s for the rows 0, 1, …, n − 1 of both sets (one key scheme for both)."""
        lengths = {len(other) for other in others}
        if lengths - {len(references)}:
            raise ValueError(f"encode_aligned_block_pairs: {references.name} holds {len(references)} images, "
                             f"the sets paired with it {sorted(lengths)}")
        rows = np.arange(len(references), dtype=np.int64)
        return self._cached_pair_statistics(references, others, rows, rows,
                                            lambda: self._aligned_pair_statistics(references, others))

    def _aligned_pair_statistics(self, references: ImageSet, others: Sequence[ImageSet]) -> list[dict[str, np.ndarray]]:
        import torch

        self.model  # loads the model and its preprocessing (block_names may have come from the cache alone)
        names = self.block_names()
        packed: list[dict[str, np.ndarray]] = [{} for _ in others]
        starts = range(0, len(references), self.batch_size)
        for start in tqdm(starts, desc=f"block pairs {references.name} @ {self.checkpoint_path.stem}",
                          disable=not self.progress, leave=False):
            stop = min(start + self.batch_size, len(references))
            batches = [images.batch(start, stop).to(self.device, non_blocking=True)
                       for images in (references, *others)]
            with torch.no_grad(), self._autocast():
                outputs = [self._forward(preprocess_batch(x, self._size, self._mean, self._std), with_blocks=True)
                           for x in batches]
            for statistics, other in zip(packed, outputs[1:]):
                for name in names:
                    columns = _pair_statistics(outputs[0][name], other[name])
                    if name not in statistics:
                        statistics[name] = np.zeros((len(references), columns.shape[1]))
                    statistics[name][start:stop] = columns
        return [{name: statistics.get(name, np.zeros((0, 3))) for name in names} for statistics in packed]

    def _forward(self, x: torch.Tensor, with_blocks: bool) -> dict[str, torch.Tensor]:
        if not with_blocks:
            return {"final": self.model.encode_image(x)}
        # normalize=False: CLIP.forward_intermediates L2-normalises the embedding by default.
        # ViT blocks as tokens (NLC), ResNet stages as maps (NCHW); both become (N, L, C).
        visual = self.model.visual
        vit = hasattr(visual, "transformer")
        embeddings = []  # a ViT's ln_pre output: forward_intermediates returns the blocks' outputs only
        hook = visual.ln_pre.register_forward_hook(lambda module, inputs, output: embeddings.append(output)) if vit else None
        try:
            out = self.model.forward_intermediates(image=x, normalize=False, image_output_fmt="NLC" if vit else "NCHW",
                                                   image_output_extra_tokens=True)
        finally:
            if hook is not None:
                hook.remove()
        outputs = [e.float() for e in embeddings] + _per_location(out)
        blocks = dict(zip(vision_block_names(self.model), outputs, strict=True))
        return {**blocks, "final": out["image_features"]}

    def _encode_images(self, images: ImageSet, with_blocks: bool = False):
        import torch

        self.model  # loads the model and its preprocessing
        chunks: dict[str, list[torch.Tensor]] = {}
        starts = range(0, len(images), self.batch_size)
        for start in tqdm(starts, desc=f"encode {images.name} @ {self.checkpoint_path.stem}",
                          disable=not self.progress, leave=False):
            batch = images.batch(start, min(start + self.batch_size, len(images)))
            batch = batch.to(self.device, non_blocking=True)
            x = preprocess_batch(batch, self._size, self._mean, self._std)
            with torch.no_grad(), self._autocast():
                outputs = self._forward(x, with_blocks)
            for name, value in outputs.items():
                chunks.setdefault(name, []).append(value.float().cpu())
        arrays = {name: torch.cat(parts).numpy() for name, parts in chunks.items()}
        return arrays if with_blocks else arrays["final"]

    def classes_per_batch(self, templates: Sequence[str]) -> int:
        """How many classes' prompts go through the text tower at once: about ``batch_size`` prompts, so
        memory does not grow with the number of classes (ImageNet's 1,000 × 80 templates in one pass is
        80,000 prompts)."""
        return max(1, self.batch_size // max(1, len(templates)))

    def zero_shot_weights(self, classnames: Sequence[str], templates: Sequence[str]) -> np.ndarray:
        """(D, C) zero-shot classifier: the normalised mean of each class's prompt embeddings (open_clip's
        ``build_zero_shot_classifier``, prompts in batches of :meth:`classes_per_batch` classes, each batch
        through the text tower as long as its longest prompt: ``models.encode_text_over_prompts``)."""
        def compute():
            import torch
            from open_clip.zero_shot_classifier import build_zero_shot_classifier

            from . import models

            tokenizer = models.prompt_tokenizer(self.model_name, self.model_options.get("force_context_length"))
            with torch.no_grad(), self._autocast():
                weights = build_zero_shot_classifier(self.model, tokenizer, classnames, templates,
                                                     num_classes_per_batch=self.classes_per_batch(templates),
                                                     device=self.device, use_tqdm=False)
            return weights.float().cpu().numpy()
        # "context": weights cached before, from the whole context, differ in the low bits.
        return self._cached({"classnames": list(classnames), "templates": list(templates), "kind": "text",
                             "context": "longest prompt"}, compute)

    def zero_shot_logits(self, images: ImageSet, classnames: Sequence[str], templates: Sequence[str]) -> np.ndarray:
        """(N, C) cosine similarity of each image's embedding to each class's zero-shot weights."""
        embeddings = self.encode_images(images)
        embeddings = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True).clip(min=1e-12)
        return embeddings @ self.zero_shot_weights(classnames, templates)

    def classify(self, images: ImageSet, classnames: Sequence[str], templates: Sequence[str]) -> np.ndarray:
        """Zero-shot predicted class index per image (cosine logits: the embeddings are normalised here)."""
        return self.zero_shot_logits(images, classnames, templates).argmax(axis=1)


def run_encoder(run, checkpoint: Checkpoint, device: str = "auto", batch_size: int = 512,
                cache_dir: str | Path | None = None) -> Encoder:
    """An :class:`Encoder` of one of ``run``'s checkpoints, its model built as the run's is (name, input size,
    ``model_options``)."""
    return Encoder(checkpoint, run.model_name, run.image_size, device, batch_size, cache_dir,
                   model_options=run.model_options)


def run_encoders(run, device: str = "auto", batch_size: int = 512, cache_dir: str | Path | None = None,
                 progress: bool = True):
    """(checkpoint, Encoder) for every checkpoint of a discovered run, with a progress bar."""
    for checkpoint in tqdm(run.checkpoints, desc="checkpoints", disable=not progress):
        yield checkpoint, run_encoder(run, checkpoint, device, batch_size, cache_dir)
