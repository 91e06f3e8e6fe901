"""The model names the package knows, without importing open_clip or torch: our scales (their open_clip
config JSONs in ``model_configs/``) and open_clip's built-in names, asked of open_clip only for a name
that is not ours. A step whose embeddings are all cached resolves its run's model name here and never
imports torch (``models`` is the factory door that does)."""
from __future__ import annotations

from pathlib import Path

from .errors import ParameterError

CONFIG_DIR = Path(__file__).parent / "model_configs"
SCALES = tuple(sorted(p.stem.removeprefix("clipalign-") for p in CONFIG_DIR.glob("clipalign-*.json")))


def open_clip_name(model: str) -> str:
    """The open_clip model name for a scale name (``tiny``) or an open_clip name (``ViT-B-32``,
    ``clipalign-tiny``)."""
    if model in SCALES:
        return f"clipalign-{model}"
    if model.startswith("clipalign-") and model.removeprefix("clipalign-") in SCALES:
        return model
    import open_clip  # its built-in names (ours were answered above, registered or not)

    if model in open_clip.list_models():
        return model
    raise ParameterError(
        f"unknown model {model!r}: use a scale ({', '.join(SCALES)}) or an open_clip model name")
