"""Model registry and factory: open_clip models by scale name, and checkpoint loading.

Our scales are ordinary open_clip config JSONs (``model_configs/clipalign-<scale>.json``)
registered with ``open_clip.add_model_config``, so ``open_clip.create_model`` and
``open_clip_train --model clipalign-tiny`` build them like any built-in model.
Any built-in open_clip name (``ViT-B-32`` …) works too.
"""
from __future__ import annotations

import logging
from pathlib import Path

import open_clip
import torch

from .allocator import keep_freed_memory
from .errors import CheckpointError, ParameterError

CONFIG_DIR = Path(__file__).parent / "model_configs"
SCALES = tuple(sorted(p.stem.removeprefix("clipalign-") for p in CONFIG_DIR.glob("clipalign-*.json")))

open_clip.add_model_config(CONFIG_DIR)


def open_clip_name(model: str) -> str:
    """The open_clip model name for a scale name (``tiny``) or an open_clip name (``ViT-B-32``)."""
    if model in SCALES:
        return f"clipalign-{model}"
    if model in open_clip.list_models():
        return model
    raise ParameterError(
        f"unknown model {model!r}: use a scale ({', '.join(SCALES)}) or an open_clip model name")


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


def load_checkpoint_model(checkpoint: str | Path, model_name: str, image_size: int | None = None,
                          device: str | torch.device = "cpu") -> torch.nn.Module:
    """Load an open_clip-format checkpoint (a dict holding ``state_dict``) into its model, in eval mode.

    Uses open_clip's own loader, so any checkpoint that ``open_clip.create_model(name,
    pretrained=path)`` accepts (open_clip_train's ``epoch_N.pt`` included) loads here.
    """
    path = Path(checkpoint)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    keep_freed_memory()
    try:
        model = open_clip.create_model(model_name, pretrained=str(path),
                                       force_image_size=image_size, device=device, output_dict=True)
    except Exception as error:  # torch raises many types for a bad file; name the file once
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointError(
            f"checkpoint {path} could not be loaded into {model_name}: {first_line[:200]} "
            f"(re-save it, or delete it and re-run training)") from None
    return model.eval()


def tokenizer_for(model_name: str):
    return open_clip.get_tokenizer(model_name)


def preprocess_config(model: torch.nn.Module) -> dict:
    """Input size, mean and std the model expects (open_clip stores them on the model)."""
    cfg = open_clip.get_model_preprocess_cfg(model)
    size = cfg["size"]
    return {"size": int(size if isinstance(size, int) else size[0]),
            "mean": tuple(float(m) for m in cfg["mean"]), "std": tuple(float(s) for s in cfg["std"])}
