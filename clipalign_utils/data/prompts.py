"""Prompt templates for zero-shot classification.

``prompt_templates`` is ``ensemble`` (the dataset's standard ensemble), ``single``
(its first template) or templates separated by ``|``, each with ``{}`` for the class
name, e.g. ``"a photo of a {}.|a blurry photo of a {}."``.

The ensembles: CIFAR-100, the 18 templates the CLIP paper used for CIFAR-10/100 (openai/CLIP,
data/prompts.md); Geirhos cue-conflict (ImageNet images, 16 classes), CLIP's 80 ImageNet templates
as open_clip ships them; the embedded world, its own training captions.
"""
from __future__ import annotations

import functools

from ..errors import ParameterError
from .world import CAPTION_TEMPLATES

# The CLIP paper's CIFAR-10/100 prompt ensemble.
CIFAR_TEMPLATES = (
    "a photo of a {}.", "a blurry photo of a {}.", "a black and white photo of a {}.",
    "a low contrast photo of a {}.", "a high contrast photo of a {}.", "a bad photo of a {}.",
    "a good photo of a {}.", "a photo of a small {}.", "a photo of a big {}.",
    "a photo of the {}.", "a blurry photo of the {}.", "a black and white photo of the {}.",
    "a low contrast photo of the {}.", "a high contrast photo of the {}.", "a bad photo of the {}.",
    "a good photo of the {}.", "a photo of the small {}.", "a photo of the big {}.",
)


@functools.lru_cache(maxsize=1)
def imagenet_templates() -> tuple[str, ...]:
    """CLIP's 80 ImageNet templates, from open_clip on first use (importing open_clip imports torch and
    torchvision, about 2.5 s, which a step whose embeddings are cached does not otherwise need)."""
    from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES

    return tuple(template("{}") for template in OPENAI_IMAGENET_TEMPLATES)


def imagenet_classnames() -> tuple[str, ...]:
    """ImageNet's 1,000 class names as CLIP's zero-shot notebook writes them (open_clip's, the list
    model-vs-human's CLIP wrapper uses), from open_clip on first use."""
    from open_clip.zero_shot_metadata import IMAGENET_CLASSNAMES

    return tuple(IMAGENET_CLASSNAMES)


ENSEMBLES = {"embedded": lambda: CAPTION_TEMPLATES, "cifar100": lambda: CIFAR_TEMPLATES,
             "geirhos": imagenet_templates}


def own_templates(spec: str) -> tuple[str, ...]:
    """The templates a ``prompt_templates`` value other than ``ensemble``/``single`` gives ('|'-separated), each
    checked to format with a class name as open_clip formats it: one ``{}`` and no other brace (``{x}`` or a
    lone ``}`` would stop the zero-shot classifier inside a step); () for the two names."""
    if spec in ("ensemble", "single"):
        return ()
    templates = tuple(t.strip() for t in spec.split("|") if t.strip())

    def formats(template: str) -> bool:
        try:
            return template.count("{}") == 1 and "{" not in template.format("")
        except (IndexError, KeyError, ValueError):
            return False

    if not templates or not all(formats(t) for t in templates):
        raise ParameterError(f"parameter prompt_templates={spec!r}: use 'ensemble', 'single' or templates separated "
                             f"by '|', each with one '{{}}' for the class name and no other brace")
    return templates


def resolve_templates(spec: str, dataset: str) -> tuple[str, ...]:
    """The templates `spec` names, for a dataset (``embedded`` uses the training captions)."""
    if spec not in ("ensemble", "single"):
        return own_templates(spec)
    ensemble = ENSEMBLES[dataset]()
    return ensemble if spec == "ensemble" else ensemble[:1]
