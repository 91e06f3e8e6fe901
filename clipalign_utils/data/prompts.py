"""Prompt templates for zero-shot classification.

``prompt_templates`` is ``ensemble`` (the dataset's small ensemble), ``single``
(its first template) or templates separated by ``|``, each with ``{}`` for the class
name, e.g. ``"a photo of a {}.|a blurry photo of a {}."``.
"""
from __future__ import annotations

from ..errors import ParameterError
from .world import CAPTION_TEMPLATES

# Photo datasets (Geirhos cue-conflict, CIFAR-100): a few of CLIP's ImageNet templates.
PHOTO_TEMPLATES = (
    "a photo of a {}.",
    "a blurry photo of a {}.",
    "a photo of the {}.",
    "a drawing of a {}.",
    "a low resolution photo of a {}.",
    "a cropped photo of a {}.",
)


def resolve_templates(spec: str, dataset: str) -> tuple[str, ...]:
    """The templates `spec` names, for a dataset (``embedded`` uses the training captions)."""
    ensemble = CAPTION_TEMPLATES if dataset == "embedded" else PHOTO_TEMPLATES
    if spec == "ensemble":
        return ensemble
    if spec == "single":
        return ensemble[:1]
    templates = tuple(t.strip() for t in spec.split("|") if t.strip())
    bad = [t for t in templates if t.count("{}") != 1]
    if not templates or bad:
        raise ParameterError(f"prompt_templates={spec!r}: use 'ensemble', 'single' or templates separated "
                             f"by '|', each with one '{{}}' for the class name")
    return templates
