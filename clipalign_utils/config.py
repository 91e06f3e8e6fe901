"""Presets, the parameters' types and checks, and the seeds derived from ``eval_seed``.

The presets declare every parameter's default once; :func:`resolve` applies overrides to a preset and
checks names, types, choices and ranges. A run's parameters are resolved once, against the run's own
record, by :mod:`clipalign_utils.record` (which calls :func:`resolve`), so ``papermill -p preset smoke``
and ``clipalign run -p epochs=3`` mean the same thing everywhere.

Seeds: ``seed`` is the *training* seed (initialisation, batch order, the training world's sample).
``eval_seed`` draws every evaluation set (embedded sets, CIFAR-100's subset, the cue-conflict and
saliency samples) and, through :func:`derived_seed`, the bootstrap/permutation draws and the Gaussian
noise of the noise step; it is the same for every run of a multi-run folder, sweep or experiment, so
their seeds vary training only.
"""
from __future__ import annotations

import zlib
from typing import Any, Collection

import numpy as np

from . import choices
from .data.registry import dataset_choices
from .data.world import QUALITY_FAMILIES, check_quality_families
from .errors import ParameterError

# Values every preset shares unless it says otherwise.
_COMMON: dict[str, Any] = {
    "seed": 0,  # the training seed: initialisation, batch order, the training world's sample
    # The seed of every evaluation set and (derived_seed) of the bootstrap, permutation and noise draws:
    # the same for every run, so the runs of a multi-run folder are scored on one test set.
    "eval_seed": 0,
    "model": "tiny",
    "device": "auto",
    "batch_size": 128,
    "eval_batch_size": 512,
    # world
    "image_size": 32,
    "texture_correlation": 0.8,
    "texture_scale": 1.0,
    "quality_variation": 0.0,  # fraction of training images degraded (noise, blur, JPEG, …); 0 = clean
    # The embedded IQA distortion families a degraded training image draws from (data/distortions.py).
    "quality_families": QUALITY_FAMILIES,
    # training
    # 5 epochs, three seeds: the texture-to-shape shift and the early IQA bump show by then (the quality
    # experiment's clean arm, 6 epochs x 3 seeds, is the comparison), and the book's run (three seeds, six
    # steps each, the synthesis and the book) stays under 10 minutes on 2 CPU cores; the drivers sweep
    # tries 12 and 24.
    "epochs": 5,
    "samples_per_epoch": 12800,  # 100 steps of 128: early checkpoints at round fractions
    "lr": 1e-3,
    "weight_decay": 0.1,
    "warmup": 50,
    "fresh_data": False,
    "early_checkpoints": (0.125, 0.25, 0.5, 0.75),
    # analyses
    "n_boot": 1000,
    "iqa_dataset": "embedded",
    "iqa_root": "",
    "distance": "normalized_euclidean",  # the authors' measure, on raw projected embeddings
    "iqa_resize": "auto",  # how large IQA images meet a small input: auto | patches | resize | crop
    "iqa_levels": (1, 2, 3, 4, 5),
    "reference_observer": "haarpsi",
    "layers": "final",
    "cue_conflict_dataset": "embedded",
    "cue_conflict_root": "",
    "cue_conflict_per_pair": 8,
    "noise_dataset": "embedded",
    "noise_root": "",
    "test_per_class": 100,
    "sigmas": (0.02, 0.05, 0.1, 0.2),
    "noise_at": "native",  # add the noise to the native image (native) or after resizing to the input (input)
    # similarity (2AFC): "" = the dataset's evaluation split (bapps val, nights test)
    "similarity_dataset": "embedded",
    "similarity_root": "",
    "similarity_protocol": "all",
    "similarity_split": "",
    # saliency correspondence
    "saliency_dataset": "embedded",
    "saliency_root": "",
    "saliency_method": "smoothgrad",
    # Sized for the default run's budget (11 checkpoints; SmoothGrad is most of the step's cost).
    "saliency_n_images": 24,  # embedded: images in the set; real datasets: the first n stimuli (0 = all)
    "saliency_samples": 2,  # SmoothGrad noisy copies per image
    "saliency_noise": 0.15,  # SmoothGrad noise, a fraction of the input range
    "saliency_cue_per_pair": 1,  # cue-conflict images per (shape, texture) pair for the contour/interior share
    "prompt_templates": "ensemble",
    "alignment_weight": 0.5,
    "n_perm": 10000,
}

PRESETS: dict[str, dict[str, Any]] = {
    # The book's run, over three seeds (MULTI_RUN_PRESETS): 8.2 minutes for the whole pipeline on 2 idle CPU cores.
    "default": dict(_COMMON),
    # Tests and CI: the whole pipeline in under 3 minutes on 2 CPU cores.
    "smoke": dict(
        _COMMON,
        epochs=2,
        samples_per_epoch=1024,
        batch_size=64,
        warmup=4,
        early_checkpoints=(0.25, 0.5, 0.75),
        n_boot=50,
        iqa_levels=(1, 3, 5),
        cue_conflict_per_pair=1,
        test_per_class=16,
        n_perm=500,
        saliency_n_images=16,
        saliency_samples=2,
    ),
}

# The statistical version of the book's run: the default settings over 3 seeds and 2 scales
# (about 1.5 hours on 2 CPU cores; `clipalign run --preset full` runs them all).
PRESETS["full"] = dict(PRESETS["default"])
# The book's run is itself three seeds: its verdicts rest on the seed-mean curves, with the share of seeds
# that agree beside each (`clipalign run --preset default`; `-p seed=K` asks for one run instead).
MULTI_RUN_PRESETS: dict[str, dict[str, tuple]] = {"default": {"seeds": (0, 1, 2)},
                                                  "full": {"seeds": (0, 1, 2), "scales": ("tiny", "small")}}
# The controlled experiments of the book's chapter 6 ("What drives the trade-off?"), which
# `clipalign run --preset full` also runs, into OUT/drivers: each parameter varied alone around the
# default run (a one-at-a-time sweep, seed 0, the default scale; about 1.5 hours on 2 CPU cores).
# Values as `clipalign sweep -p` takes them: lists of sigmas separated by ';'.
SWEEP_PRESETS: dict[str, dict[str, str]] = {"full": {
    "texture_correlation": "0.5,0.8,0.95",  # how good a shortcut texture is
    "texture_scale": "0.5,1,2",  # texture period: finer (0.5) or coarser (2) than the default
    "fresh_data": "false,true",  # a fixed set of pairs repeated, or new pairs every epoch
    "epochs": "12,24",  # training length (default 5): does alignment decline later?
    "sigmas": "0.01,0.02,0.05;0.1,0.2,0.4",  # weaker or stronger noise (no new training)
}}

# Experiments: several sweeps whose runs one chapter compares. "quality" is the book's chapter 9 ("What
# causes the trade-off?"): quality variation in the training images, 3 seeds per setting, each sweep into
# OUT/<name>. `clipalign experiment quality --out DIR` runs it; `clipalign run --preset full` too (OUT/quality).
EXPERIMENTS: dict[str, dict[str, dict[str, str]]] = {"quality": {
    "variation": {"quality_variation": "0,0.6"},  # the clean world vs 60 % of training images degraded
    "partial": {"quality_variation": "0.3"},
    # both noise families and blur never seen in training: the noise test and those IQA families stay unseen
    "heldout": {"quality_variation": "0.6", "quality_families": "jpeg_compression,contrast_change,mean_shift,"
                                                                 "change_of_color_saturation,quantization_noise"},
    "texture_control": {"texture_correlation": "1.0"},  # texture as reliable as shape: is the shift built in?
}}
# Each setting over 3 seeds at the default world's length, with lighter resampling (the seeds carry the
# uncertainty the chapter reports) and 50 held-out images per class for the noise test.
EXPERIMENT_FIXED: dict[str, dict[str, str]] = {"quality": {"seed": "0,1,2", "epochs": "6", "n_boot": "300",
                                                           "test_per_class": "50", "n_perm": "2000"}}
EXPERIMENT_PAGES: dict[str, str] = {"quality": "09_quality_experiment"}

CHOICES: dict[str, Collection[str]] = {
    "device": choices.DEVICES,
    "distance": choices.DISTANCES,
    "iqa_resize": choices.IQA_RESIZE,
    "noise_at": choices.NOISE_AT,
    "layers": choices.LAYERS,
    "similarity_protocol": choices.SIMILARITY_PROTOCOLS,
    "saliency_method": choices.SALIENCY_METHODS,
    # iqa_dataset, cue_conflict_dataset, noise_dataset, similarity_dataset, saliency_dataset: live views of
    # the dataset registry, so a dataset registered at run time is a valid value.
    **dataset_choices(),
}


def coerce(name: str, value: Any, like: Any) -> Any:
    """Convert `value` (possibly a string from the command line) to the type of `like`."""
    try:
        if isinstance(like, bool):
            if isinstance(value, str):
                if value.lower() in ("true", "1", "yes"):
                    return True
                if value.lower() in ("false", "0", "no"):
                    return False
                raise ValueError(value)
            return bool(value)
        if isinstance(like, int):
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return int(value)
        if isinstance(like, float):
            return float(value)
        if isinstance(like, tuple):
            items = value.split(",") if isinstance(value, str) else list(value)
            items = [item for item in items if str(item).strip() != ""]
            return tuple(coerce(name, item, like[0]) for item in items) if like else tuple(items)
        return str(value)
    except (TypeError, ValueError):
        kind = "comma-separated list" if isinstance(like, tuple) else type(like).__name__
        raise ParameterError(
            f"parameter {name}={value!r} has the wrong type: expected {kind} "
            f"(like {like!r})") from None


def check_preset(preset: str) -> None:
    """The one check of a preset's name."""
    if preset not in PRESETS:
        raise ParameterError(f"unknown preset {preset!r}; choose one of: {', '.join(PRESETS)}")


def derived_seed(params: dict[str, Any], stream: str) -> int:
    """The seed of one named stream of random draws (``bootstrap``: every bootstrap and permutation;
    ``noise``: the noise step's Gaussian noise), derived from ``params["eval_seed"]``: streams are
    independent of each other and of the evaluation sets, and equal in every run that shares eval_seed."""
    sequence = np.random.SeedSequence([int(params["eval_seed"]), zlib.crc32(stream.encode())])
    return int(sequence.generate_state(1)[0])


def bootstrap_seed(params: dict[str, Any]) -> int:
    """The seed of every bootstrap and permutation draw: :func:`derived_seed`'s ``bootstrap`` stream."""
    return derived_seed(params, "bootstrap")


def resolve(preset: str = "default", **overrides: Any) -> dict[str, Any]:
    """The preset's parameters with `overrides` applied (``None`` overrides are ignored), checked."""
    check_preset(preset)
    params = dict(PRESETS[preset])
    for name, value in overrides.items():
        if value is None:
            continue
        if name not in params:
            raise ParameterError(f"unknown parameter {name!r}; known: {', '.join(sorted(params))}")
        params[name] = coerce(name, value, params[name])
    for name, allowed in CHOICES.items():
        if params[name] not in allowed:
            raise ParameterError(f"parameter {name}={params[name]!r}: choose one of {', '.join(allowed)}")
    for name in ("epochs", "samples_per_epoch", "batch_size", "eval_batch_size", "n_boot"):
        if params[name] <= 0:
            raise ParameterError(f"parameter {name} must be positive, got {params[name]!r}")
    if params["samples_per_epoch"] < params["batch_size"]:
        raise ParameterError(
            f"samples_per_epoch={params['samples_per_epoch']} is smaller than batch_size="
            f"{params['batch_size']}: an epoch would have no step")
    if any(not 0 < f < 1 for f in params["early_checkpoints"]):
        raise ParameterError("early_checkpoints are fractions of the first epoch, each in (0, 1)")
    if params["saliency_n_images"] < 0 or params["saliency_samples"] < 1 or params["saliency_cue_per_pair"] < 0:
        raise ParameterError("saliency_n_images and saliency_cue_per_pair must be >= 0 and saliency_samples >= 1")
    if not 0 <= params["saliency_noise"] <= 1:
        raise ParameterError(f"parameter saliency_noise must lie in [0, 1], got {params['saliency_noise']!r}")
    if not 0 <= params["quality_variation"] <= 1:
        raise ParameterError(f"parameter quality_variation must lie in [0, 1], got {params['quality_variation']!r}")
    if params["eval_seed"] < 0:
        raise ParameterError(f"parameter eval_seed must be >= 0, got {params['eval_seed']!r}")
    params["quality_families"] = check_quality_families(params["quality_families"])
    params["preset"] = preset
    return params


def format_value(value: Any) -> str:
    """A parameter value as ``-p`` takes it and tables show it: 0.25, 'a,b' for a list."""
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (tuple, list)):
        return ",".join(format_value(v) for v in value)
    return str(value)
