"""Model registry and factory: open_clip models by scale name, and checkpoint loading.

Our scales are ordinary open_clip config JSONs (``model_configs/clipalign-<scale>.json``)
registered with ``open_clip.add_model_config``, so ``open_clip.create_model`` and
``open_clip_train --model clipalign-tiny`` build them like any built-in model.
Any built-in open_clip name (``ViT-B-32`` …) works too.
"""
from __future__ import annotations

import contextlib
import functools
import logging
import threading
from pathlib import Path
from typing import Mapping

import open_clip
import torch
import torch.nn.functional as F
from open_clip.model import CLIP
from open_clip.transformer import text_global_pool

from .allocator import keep_freed_memory
from .io import checkpoint_format_problem
from .errors import CheckpointError, ParameterError
# The names need neither torch nor open_clip: model_names holds them (open_clip_name answers here too).
from .model_names import CONFIG_DIR, open_clip_name

open_clip.add_model_config(CONFIG_DIR)


def resolve_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ParameterError("device='cuda' was asked for but no CUDA GPU is visible; use device=auto")
    return torch.device(device)


def create_model(model: str, image_size: int | None = None, seed: int = 0,
                 device: str | torch.device = "cpu") -> torch.nn.Module:
    """A randomly initialised open_clip CLIP (seeded), optionally at another input size."""
    keep_freed_memory()  # every model is built here or below: its batches reuse freed blocks (allocator.py)
    torch.manual_seed(seed)
    # open_clip logs "No pretrained weights loaded" on the root logger: random init is the point here.
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        return open_clip.create_model(open_clip_name(model), pretrained=None,
                                      force_image_size=image_size, device=device, output_dict=True)
    finally:
        root.setLevel(level)


# torch.nn.init's in-place initialisers, through which torch's layers and open_clip's init_parameters draw
# their random weights.
INITIALISERS = ("uniform_", "normal_", "trunc_normal_", "constant_", "zeros_", "ones_", "eye_", "dirac_",
                "xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_", "orthogonal_",
                "sparse_")


# Threads inside weights_left_undrawn (a depth per thread), and the initialisers as they were while any is.
_undrawn_here = threading.local()
_undrawn_state: dict = {"inside": 0, "drawn": {}}
_undrawn_lock = threading.Lock()


def _unless_undrawn(initialiser):
    def initialise(tensor, *args, **kwargs):
        return tensor if getattr(_undrawn_here, "depth", 0) else initialiser(tensor, *args, **kwargs)
    return initialise


@contextlib.contextmanager
def weights_left_undrawn():
    """While inside, torch.nn.init's initialisers leave their tensor as allocated: a model built only to
    receive every weight from a checkpoint skips drawing them (ViT-B-32: about 1 of the 1.4 s a load takes),
    as transformers' ``no_init_weights`` does. The initialisers are module-wide, so they are replaced for the
    process while any thread is inside, but skip only in the threads that are: a model another thread
    builds meanwhile still draws its weights."""
    with _undrawn_lock:
        if _undrawn_state["inside"] == 0:
            _undrawn_state["drawn"] = {name: getattr(torch.nn.init, name) for name in INITIALISERS}
            for name, initialiser in _undrawn_state["drawn"].items():
                setattr(torch.nn.init, name, _unless_undrawn(initialiser))
        _undrawn_state["inside"] += 1
    _undrawn_here.depth = getattr(_undrawn_here, "depth", 0) + 1
    try:
        yield
    finally:
        _undrawn_here.depth -= 1
        with _undrawn_lock:
            _undrawn_state["inside"] -= 1
            if _undrawn_state["inside"] == 0:
                for name, initialiser in _undrawn_state["drawn"].items():
                    setattr(torch.nn.init, name, initialiser)


# What torch.compile's wrapper adds to every weight's name, saved from the compiled model rather than its own.
COMPILED_PREFIX = "_orig_mod."


def load_checkpoint_model(checkpoint: str | Path, model_name: str, image_size: int | None = None,
                          device: str | torch.device = "cpu", options: Mapping | None = None) -> torch.nn.Module:
    """Load an open_clip-format checkpoint (a dict holding ``state_dict``) into its model, in eval mode.

    Uses open_clip's own loader, so any checkpoint that ``open_clip.create_model(name,
    pretrained=path)`` accepts (open_clip_train's ``epoch_N.pt`` included) loads here. ``options``: more
    ``create_model`` keywords, how the run built its model (``checkpoints.model_options``).
    """
    path = Path(checkpoint)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    keep_freed_memory()
    # open_clip loads strictly: every parameter and saved buffer is overwritten, so none is drawn first
    # (big_vision's .npz weights load another, non-strict way).
    undrawn = weights_left_undrawn() if path.suffix not in (".npz", ".npy") else contextlib.nullcontext()
    try:
        with undrawn:
            model = open_clip.create_model(model_name, pretrained=str(path), force_image_size=image_size,
                                           device=device, output_dict=True, **dict(options or {}))
    except Exception as error:  # torch raises many types for a bad file; name the file once
        built = ", ".join(f"{k}={v}" for k, v in sorted((options or {}).items()))
        loaded_into = f"checkpoint {path} could not be loaded into {model_name}{f' ({built})' if built else ''}"
        problem = checkpoint_format_problem(path)
        if problem is not None:  # torch's own text for such a file is a pickle opcode's complaint (a bare number)
            raise CheckpointError(f"{loaded_into}: not a PyTorch checkpoint: {problem} (torch.load: "
                                  f"{load_error_summary(error, 150)}); save or fetch it again") from None
        if COMPILED_PREFIX in str(error):  # open_clip strips DDP's "module." alone
            raise CheckpointError(
                f"{loaded_into}: its weights were saved from a torch.compile'd model (their names begin with "
                f"'{COMPILED_PREFIX}'): save the model's own, model.{COMPILED_PREFIX.rstrip('.')}.state_dict(), or "
                f"strip that prefix from each name in the checkpoint's state_dict") from None
        raise CheckpointError(
            f"{loaded_into}: {load_error_summary(error)} (a checkpoint of another architecture? give -p "
            f"model=<its open_clip name>; a damaged file: save or fetch it again)") from None
    return model.eval()


def load_error_summary(error: Exception, limit: int = 400) -> str:
    """A load error on one line: torch's "Error(s) in loading state_dict" says what is wrong on the lines
    after its first (the missing, unexpected and mismatched keys), so those are kept, each shortened."""
    text = str(error)
    if "Weights only load failed" in text:
        # torch's advice (load with weights_only=False) would run whatever code a pickle holds: a file that is
        # not a plain tensor checkpoint gets a plain description instead
        detail = text.split("WeightsUnpickler error:")[-1].strip().splitlines()[0].strip() if \
            "WeightsUnpickler error:" in text else ""
        return (f"not a plain PyTorch checkpoint (its pickle holds more than tensors and containers, or is no "
                f"pickle at all{': ' + detail if detail else ''})")
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return type(error).__name__
    text = "; ".join([lines[0].rstrip(":")] + [line[:150] for line in lines[1:4]])
    if not isinstance(error, RuntimeError):  # (torch's state_dict errors say what they are; a KeyError's '1748…' not)
        text = f"{type(error).__name__}: {text}"
    return text if len(text) <= limit else text[:limit - 1] + "…"


def tokenizer_for(model_name: str, context_length: int | None = None):
    """``model_name``'s tokenizer; ``context_length``: a model built with another (open_clip_train's
    ``--force-context-length``)."""
    return open_clip.get_tokenizer(model_name, context_length=context_length)


class RememberingTokenizer:
    """A tokenizer that keeps what it tokenized, by the list of texts: every checkpoint's zero-shot classifier
    tokenizes the same prompts (ImageNet's 1,000 classes × 80 templates: about 9 s on a CPU core each time,
    most of it ftfy's text repair), so a run's later checkpoints reuse the first one's tokens."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self._kept: dict[tuple, torch.Tensor] = {}

    def __call__(self, texts, *args, **kwargs) -> torch.Tensor:
        key = ((texts,) if isinstance(texts, str) else tuple(texts), args, tuple(sorted(kwargs.items())))
        if key not in self._kept:
            self._kept[key] = self.tokenizer(texts, *args, **kwargs)
        return self._kept[key].clone()  # the caller's to change

    def __getattr__(self, name):
        return getattr(self.tokenizer, name)


@functools.lru_cache(maxsize=4)  # ImageNet's prompts are about 50 MB of tokens per model kept
def prompt_tokenizer(model_name: str, context_length: int | None = None) -> RememberingTokenizer:
    """The tokenizer the zero-shot classifiers of ``model_name``'s checkpoints share (:class:`RememberingTokenizer`)."""
    return RememberingTokenizer(tokenizer_for(model_name, context_length))


# Poolings that read the end-of-text token or the first one: positions after every prompt's end can go.
POOLINGS_BEFORE_PADDING = ("argmax", "eos", "first")


def encodes_prompts_only(model: torch.nn.Module) -> bool:
    """Whether :func:`encode_prompts` may drop the padding: open_clip's own text tower (``CLIP``, padded with
    token 0), causal, pooled at or before the end of text."""
    return (all(hasattr(model, name) for name in ("transformer", "positional_embedding", "token_embedding"))
            and getattr(model, "attn_mask", None) is not None
            and getattr(model, "text_pool_type", None) in POOLINGS_BEFORE_PADDING)


def encode_prompts(model: torch.nn.Module, tokens: torch.Tensor, normalize: bool = False) -> torch.Tensor:
    """``model.encode_text(tokens, normalize)`` over the batch's longest prompt, not the whole context, for a
    model where :func:`encodes_prompts_only`.

    open_clip's ``CLIP.encode_text`` runs all ``context_length`` positions (77 for OpenAI's models, 16 for
    our scales) while a prompt such as "a photo of a goldfish." holds about 10 tokens. Under the causal mask
    no position sees a later one, so the padding after every prompt's end changes nothing a pooled token
    reads, nor any gradient: cutting it is the same function, about 5 times cheaper for ImageNet's prompts.
    It is not the same bits: matmuls over another number of rows round differently, by about 1e-6 of the
    features (as batching the prompts otherwise does).
    """
    used = (tokens != 0).any(dim=0).nonzero()
    length = int(used.max()) + 1 if len(used) else 1
    tokens = tokens[:, :length]
    cast_dtype = model.transformer.get_cast_dtype()
    x = model.token_embedding(tokens).to(cast_dtype) + model.positional_embedding[:length].to(cast_dtype)
    x = model.transformer(x, attn_mask=model.attn_mask[:length, :length])
    x = model.ln_final(x)
    x = text_global_pool(x, tokens, model.text_pool_type, eos_token_id=getattr(model, "text_eos_id", None))
    projection = model.text_projection
    if projection is not None:
        x = projection(x) if isinstance(projection, torch.nn.Linear) else x @ projection
    return F.normalize(x, dim=-1) if normalize else x


class PromptLengthCLIP(CLIP):
    """open_clip's ``CLIP`` whose ``encode_text`` (and so its forward) runs over each batch's longest prompt
    (:func:`encode_prompts`). The same parameters and state dict; a class of its own rather than a patched
    method, so a model holds no reference to itself and is freed as soon as it is dropped."""

    def encode_text(self, text: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        return encode_prompts(self, text, normalize)


def encode_text_over_prompts(model: torch.nn.Module) -> torch.nn.Module:
    """``model``, made a :class:`PromptLengthCLIP` where it is open_clip's plain ``CLIP`` and the cut applies
    (:func:`encodes_prompts_only`); any other model is returned as it is."""
    if type(model) is CLIP and encodes_prompts_only(model):
        model.__class__ = PromptLengthCLIP
    return model


def preprocess_config(model: torch.nn.Module) -> dict:
    """Input size, mean and std the model expects (open_clip stores them on the model)."""
    cfg = open_clip.get_model_preprocess_cfg(model)
    size = cfg["size"]
    return {"size": int(size if isinstance(size, int) else size[0]),
            "mean": tuple(float(m) for m in cfg["mean"]), "std": tuple(float(s) for s in cfg["std"])}
