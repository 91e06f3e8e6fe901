"""Where a model looks: saliency maps of one checkpoint for an image set, batched and cached.

Two methods:

- ``smoothgrad`` (any open_clip architecture, any image→embedding callable): the gradient, with
  respect to the input pixels, of the *cosine* between the image embedding and a text embedding —
  the zero-shot classifier's vector of the image's class where the class is known, else of the
  model's top-1 zero-shot class among the given class names. The gradient is taken at
  ``n_samples`` noisy copies of the (preprocessed) input, Gaussian noise of standard deviation
  ``noise`` × (max − min of that input), its absolute value summed over colour channels and
  averaged over the copies (Smilkov et al. 2017). The cosine, not the embedding's norm: the norm
  says nothing about what the image shows.
- ``rollout`` (open_clip ViT towers): attention rollout (Abnar & Zuidema 2020). Each block's
  attention weights are recomputed from the block's attention input (captured with a forward hook
  on ``ln_1``) and its ``nn.MultiheadAttention`` in-projection — open_clip itself is not patched and
  its fused attention never returns weights. Weights are averaged over heads, the identity is added
  and rows renormalised (A ← (A + I) / 2), the blocks multiplied in order, and the class token's
  row over the patch tokens reshaped to the patch grid. Class-agnostic.

Maps live at the model's input resolution (SmoothGrad) or the patch grid (rollout); ``upsample``
resizes them (bilinear) onto a ground truth's size. :func:`checkpoint_saliency` caches maps per
(checkpoint file, image set, method and its settings) beside the embeddings, with the same key
scheme as :class:`~clipalign_utils.encoder.Encoder` (it uses the encoder's own cache).

On CUDA the passes run in fp32 (input gradients under fp16 underflow); the models here are small.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

from ...encoder import Encoder, _sha1, preprocess_batch
from ...errors import ParameterError

if TYPE_CHECKING:  # torch where maps are computed or resized: cached maps at the truth's size need none
    import torch

METHODS = ("smoothgrad", "rollout")
DEFAULT_N_SAMPLES = 4  # small: the default run must stay cheap (see the saliency step's cost notes)
DEFAULT_NOISE = 0.15  # SmoothGrad's paper finds 10–20 % of the input range works best

Embed = Callable[["torch.Tensor"], "torch.Tensor"]


# ------------------------------------------------------------------------- SmoothGrad
def smoothgrad(embed: Embed, inputs: torch.Tensor, targets: torch.Tensor, *, n_samples: int = DEFAULT_N_SAMPLES,
               noise: float = DEFAULT_NOISE, seed: int = 0, batch_size: int = 256,
               first_index: int = 0) -> torch.Tensor:
    """(N, H, W) SmoothGrad maps of cos(embed(x), target) for inputs (N, C, H, W) and targets (N, D).

    ``embed`` maps a batch of inputs to embeddings (e.g. ``model.encode_image``, or any toy model).
    Noise for image i is drawn from a generator seeded with (seed, first_index + i), so a map does
    not depend on how the images were batched. Returned on the CPU, float32.
    """
    import torch
    import torch.nn.functional as F

    if int(n_samples) < 1:
        raise ParameterError(f"n_samples must be >= 1; got {n_samples!r}")
    if not noise >= 0:
        raise ParameterError(f"noise must be >= 0 (a fraction of the input range); got {noise!r}")
    if inputs.ndim != 4 or targets.ndim != 2 or len(inputs) != len(targets):
        raise ParameterError(f"inputs must be (N, C, H, W) and targets (N, D) with the same N; got "
                             f"{tuple(inputs.shape)} and {tuple(targets.shape)}")
    n_samples = int(n_samples)
    device = inputs.device
    targets = F.normalize(targets.float(), dim=-1)
    per_pass = max(1, int(batch_size) // n_samples)  # images per forward pass
    maps = []
    for start in range(0, len(inputs), per_pass):
        x = inputs[start:start + per_pass].float()
        n = len(x)
        spread = (x.flatten(1).amax(1) - x.flatten(1).amin(1)).view(n, 1, 1, 1, 1) * float(noise)
        eps = torch.stack([
            torch.randn((n_samples, *x.shape[1:]),
                        generator=torch.Generator().manual_seed(int(seed) * 1_000_003 + first_index + start + i))
            for i in range(n)]).to(device)
        noisy = (x.unsqueeze(1) + spread * eps).reshape(n * n_samples, *x.shape[1:]).requires_grad_(True)
        with torch.enable_grad():
            embedding = embed(noisy).float()
            cosine = F.cosine_similarity(embedding, targets[start:start + n].repeat_interleave(n_samples, 0), dim=-1)
            (grad,) = torch.autograd.grad(cosine.sum(), noisy)
        maps.append(grad.abs().sum(1).view(n, n_samples, *x.shape[2:]).mean(1).detach().cpu())
    return torch.cat(maps) if maps else torch.zeros((0, *inputs.shape[2:]))


# ---------------------------------------------------------------------- attention rollout
def _vit_blocks(model: torch.nn.Module):
    import torch

    visual = getattr(model, "visual", model)
    transformer = getattr(visual, "transformer", None)
    blocks = getattr(transformer, "resblocks", None)
    if blocks is None or not hasattr(visual, "grid_size") or not hasattr(visual, "class_embedding"):
        raise ParameterError(f"saliency_method=rollout needs a ViT vision tower (open_clip VisionTransformer); "
                             f"this model's is {type(visual).__name__}: use saliency_method=smoothgrad")
    for i, block in enumerate(blocks):
        if not isinstance(getattr(block, "attn", None), torch.nn.MultiheadAttention) or not hasattr(block, "ln_1"):
            raise ParameterError(f"saliency_method=rollout: block {i} of the vision tower is "
                                 f"{type(block).__name__} without an nn.MultiheadAttention; use smoothgrad")
    return visual, transformer, list(blocks)


def attention_weights(attn: torch.nn.MultiheadAttention, h: torch.Tensor) -> torch.Tensor:
    """(N, heads, L, L) softmax attention of ``attn`` with queries and keys from h (N, L, D), as its
    forward computes them (scaled dot product, no mask)."""
    import torch
    import torch.nn.functional as F

    d = attn.embed_dim
    if attn.in_proj_weight is not None:
        w_q, w_k = attn.in_proj_weight[:d], attn.in_proj_weight[d:2 * d]
    else:
        w_q, w_k = attn.q_proj_weight, attn.k_proj_weight
    b_q, b_k = (attn.in_proj_bias[:d], attn.in_proj_bias[d:2 * d]) if attn.in_proj_bias is not None else (None, None)
    n, length, _ = h.shape
    heads = attn.num_heads
    q = F.linear(h, w_q, b_q).view(n, length, heads, d // heads).transpose(1, 2)
    k = F.linear(h, w_k, b_k).view(n, length, heads, d // heads).transpose(1, 2)
    return torch.softmax(q @ k.transpose(-1, -2) / (d // heads) ** 0.5, dim=-1)


def attention_rollout(model: torch.nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """(N, grid_h, grid_w) attention rollout of the class token over the patches, for preprocessed
    inputs (N, 3, H, W) and an open_clip CLIP model (or its ViT ``visual``). Returned on the CPU."""
    import torch

    with torch.no_grad():
        visual, transformer, blocks = _vit_blocks(model)
        batch_first = getattr(transformer, "batch_first", True)
        captured: list[torch.Tensor] = []
        hooks = [block.ln_1.register_forward_hook(
            lambda _m, _i, out: captured.append(out if batch_first else out.transpose(0, 1))) for block in blocks]
        try:
            visual(inputs.float())
        finally:
            for hook in hooks:
                hook.remove()
        if len(captured) != len(blocks):
            raise ParameterError(f"rollout captured {len(captured)} attention inputs for {len(blocks)} blocks")
        rollout = None
        for block, h in zip(blocks, captured):
            a = attention_weights(block.attn, h.float()).mean(1)
            a = a + torch.eye(a.shape[-1], device=a.device)
            a = a / a.sum(-1, keepdim=True)
            rollout = a if rollout is None else a @ rollout
        grid_h, grid_w = visual.grid_size
        cls_row = rollout[:, 0, 1:]
        if cls_row.shape[-1] != grid_h * grid_w:
            raise ParameterError(f"rollout: {cls_row.shape[-1]} patch tokens do not fill the {grid_h}×{grid_w} grid")
        return cls_row.reshape(-1, grid_h, grid_w).cpu()


# ------------------------------------------------------------------------------ resizing
def upsample(maps: np.ndarray | torch.Tensor, shape: tuple[int, int]) -> np.ndarray:
    """Maps (N, h, w) resized (bilinear) to (N, *shape), float32 (a copy: ``maps`` may be a read-only memory map)."""
    maps = np.array(maps, dtype=np.float32)
    if tuple(maps.shape[-2:]) == tuple(shape):
        return maps
    import torch
    import torch.nn.functional as F

    return F.interpolate(torch.from_numpy(maps)[:, None], size=tuple(int(s) for s in shape), mode="bilinear",
                         align_corners=False)[:, 0].numpy()


def upsample_each(maps: np.ndarray, shapes: Sequence[tuple[int, int]]) -> list[np.ndarray]:
    """Map i resized (bilinear) to shapes[i]: onto ground truths of different sizes."""
    return [upsample(m[None], s)[0] for m, s in zip(maps, shapes)]


# ------------------------------------------------------------------- one checkpoint, cached
@dataclass
class CheckpointSaliency:
    """Maps (N, h, w) at the model's resolution (rollout: the patch grid), the class index whose text
    embedding SmoothGrad explained (rollout is class-agnostic: the known label is reported, NaN where
    none is known, with no zero-shot pass) and where that index came from ("none" for the NaN)."""

    maps: np.ndarray
    target_class: np.ndarray
    target_source: np.ndarray  # "label" (the known class) or "zero_shot" (the model's top-1)


def saliency_targets(encoder: Encoder, images, labels: np.ndarray, classnames: Sequence[str],
                     templates: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(class index, source) per image: the known label where ≥ 0, else the top-1 zero-shot class."""
    labels = np.asarray(labels, dtype=np.int64)
    if not len(classnames):
        raise ParameterError("saliency targets need class names (for the zero-shot text embeddings)")
    target = labels.copy()
    unknown = labels < 0
    if unknown.any():
        target[unknown] = encoder.classify(images, classnames, templates)[unknown]
    return target, np.where(unknown, "zero_shot", "label")


def checkpoint_saliency(encoder: Encoder, images, labels: np.ndarray, classnames: Sequence[str],
                        templates: Sequence[str], *, method: str = "smoothgrad",
                        n_samples: int = DEFAULT_N_SAMPLES, noise: float = DEFAULT_NOISE,
                        seed: int = 0, on_disk: bool = False) -> CheckpointSaliency:
    """Saliency maps of every image of an ImageSet for one checkpoint, cached under the encoder's cache
    (``on_disk``: read through a memory map).

    ``labels`` index ``classnames`` (−1 = unknown: the top-1 zero-shot class is used); ``templates``
    build the text embeddings (``Encoder.zero_shot_weights``).
    """
    if method not in METHODS:
        raise ParameterError(f"saliency_method={method!r}: choose one of {', '.join(METHODS)}")
    if method == "rollout":  # class-agnostic: no zero-shot pass over the classes (every class × every template on
        # ImageNet's) for a target its maps never use; the known labels are reported, an unknown one is empty
        known = np.asarray(labels, dtype=np.int64) >= 0
        target, source = np.where(known, labels, np.nan), np.where(known, "label", "none")
    else:
        target, source = saliency_targets(encoder, images, labels, classnames, templates)
    settings = {"method": method}
    if method == "smoothgrad":
        settings.update(n_samples=int(n_samples), noise=float(noise), seed=int(seed),
                        classnames=list(classnames), templates=list(templates),
                        targets=_sha1(target.tolist()))
    key = {"images": images.identity, "kind": "saliency", **settings}
    maps = encoder._cached(key, lambda: _compute(encoder, images, target, classnames, templates, method,
                                                 n_samples, noise, seed), on_disk=on_disk)
    return CheckpointSaliency(maps, target, source)


def _compute(encoder: Encoder, images, target, classnames, templates, method, n_samples, noise, seed) -> np.ndarray:
    import torch

    model = encoder.model  # loads the checkpoint and the preprocessing settings
    if method == "rollout":
        _vit_blocks(model)  # a clear error before any work
    else:
        weights = torch.from_numpy(encoder.zero_shot_weights(classnames, templates)).T  # (C, D)
    per_batch = encoder.batch_size if method == "rollout" else max(1, encoder.batch_size // 4)
    chunks = []
    for start in range(0, len(images), per_batch):
        batch = images.batch(start, min(start + per_batch, len(images))).to(encoder.device)
        x = preprocess_batch(batch, encoder._size, encoder._mean, encoder._std)
        if method == "rollout":
            chunks.append(attention_rollout(model, x))
        else:
            t = weights[target[start:start + len(x)]].to(encoder.device)
            chunks.append(smoothgrad(model.encode_image, x, t, n_samples=n_samples, noise=noise, seed=seed,
                                     batch_size=encoder.batch_size, first_index=start))
    return torch.cat(chunks).numpy().astype(np.float32)
