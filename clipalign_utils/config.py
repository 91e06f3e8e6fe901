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

import math
import zlib
from typing import Any, Collection, Mapping

import numpy as np

from . import choices, registry
from .data.registry import TASKS, dataset_choices, dataset_parameter, root_parameter
from .data.prompts import own_templates
from .data.world import QUALITY_FAMILIES, training_world
from .model_names import blocks_readable
from .errors import ParameterError

# The parameters every step shares (the model, the world, the evaluation seeds and batches, the resampling);
# each step declares its own in its registry entry (``Step.parameters``, ``Step.presets``), and
# :data:`PRESETS` joins the two.
_COMMON: dict[str, Any] = {
    "seed": 0,  # the training seed: initialisation, batch order, the training world's sample
    # The seed of every evaluation set and (derived_seed) of the bootstrap, permutation and noise draws:
    # the same for every run, so the runs of a multi-run folder are scored on one test set.
    "eval_seed": 0,
    "model": "tiny",
    "device": "auto",
    "eval_batch_size": 512,
    # world
    "image_size": 32,
    "texture_correlation": 0.8,
    "texture_scale": 1.0,
    # Objects anywhere in the image at a varied size (varied) or near its centre (centred, the world before
    # 2026-12-03): with varied placement, where a model looks can differ from a fixed centre prior.
    "object_placement": "varied",
    "quality_variation": 0.0,  # fraction of training images degraded (noise, blur, JPEG, …); 0 = clean
    # The embedded IQA distortion families a degraded training image draws from (data/distortions.py).
    "quality_families": QUALITY_FAMILIES,
    # analyses
    "n_boot": 1000,
    "distance": "normalized_euclidean",  # the authors' measure, on raw projected embeddings (iqa, similarity)
    "iqa_resize": "auto",  # how large images meet a small input (iqa, similarity): auto | patches | resize | crop
    "prompt_templates": "ensemble",  # zero-shot prompts (shape, noise, saliency)
    "n_perm": 10000,
}
# The shared values each preset changes (its steps' changes are in their registry entries).
_PRESET_CHANGES: dict[str, dict[str, Any]] = {
    # The book's run, over three seeds (MULTI_RUN_PRESETS): the whole pipeline within the 6-minute budget on 2 CPU
    # cores (README's timing).
    "default": {},
    # Tests and CI: the whole pipeline in under 3 minutes on 2 CPU cores.
    "smoke": {"n_boot": 50, "n_perm": 500},
    # The statistical version of the book's run: the default settings over 3 seeds and 2 scales
    # (10 minutes on 2 CPU cores; `clipalign run --preset full` runs them, the drivers sweep and the quality
    # experiment: 44 minutes in all, README).
    "full": {},
}


class _Presets(Mapping):
    """{preset name: its parameters}: the shared values, then every registered step's (in step order), each
    with the preset's changes. Live: a step registered at run time adds its parameters."""

    def __init__(self):
        self._built: tuple[int, dict] = (-1, {})

    def _presets(self) -> dict[str, dict[str, Any]]:
        registry.discover()
        if self._built[0] != registry.VERSION[0]:
            presets = {}
            for name, changes in _PRESET_CHANGES.items():
                values = dict(_COMMON, **changes)
                for step in registry.steps():
                    values.update(step.parameters)
                    values.update(step.presets.get(name, {}))
                presets[name] = values
            self._built = (registry.VERSION[0], presets)
        return self._built[1]

    def __getitem__(self, name: str) -> dict[str, Any]:
        return dict(self._presets()[name])

    def __iter__(self):
        return iter(_PRESET_CHANGES)

    def __len__(self) -> int:
        return len(_PRESET_CHANGES)


PRESETS: Mapping[str, dict[str, Any]] = _Presets()
# The book's run is itself three seeds: its verdicts rest on the seed-mean curves, with the share of seeds
# that agree beside each (`clipalign run --preset default`; `-p seed=K` asks for one run instead).
MULTI_RUN_PRESETS: dict[str, dict[str, tuple]] = {"default": {"seeds": (0, 1, 2)},
                                                  "full": {"seeds": (0, 1, 2), "scales": ("tiny", "small")}}
# The controlled experiments of the book's chapter 6 ("What drives the trade-off?"), which
# `clipalign run --preset full` also runs, into OUT/drivers: each parameter varied alone around the
# default run (a one-at-a-time sweep, seed 0, the default scale; 9.5 minutes on 2 CPU cores at 8218794, the
# 24-epoch run 2.8 of them: book/recorded/06_sweep/).
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
# Each setting over 3 seeds of 6 epochs (the default run's 5 and one more), with lighter resampling (the seeds
# carry the uncertainty the chapter reports) and 50 held-out images per class for the noise test.
EXPERIMENT_FIXED: dict[str, dict[str, str]] = {"quality": {"seed": "0,1,2", "epochs": "6", "n_boot": "300",
                                                           "test_per_class": "50", "n_perm": "2000"}}
EXPERIMENT_PAGES: dict[str, str] = {"quality": "09_quality_experiment"}
# What a multi-run preset runs besides its runs, the one list `clipalign run` and its launcher read: its
# drivers sweep (SWEEP_PRESETS) into OUT/<DRIVERS_FOLDER>, and these experiments, each into OUT/<name>.
DRIVERS_FOLDER = "drivers"
PRESET_EXPERIMENTS: dict[str, tuple[str, ...]] = {"full": ("quality",)}

_COMMON_CHOICES: dict[str, Collection[str]] = {
    "device": choices.DEVICES,
    "distance": choices.DISTANCES,
    "iqa_resize": choices.IQA_RESIZE,
    "object_placement": choices.OBJECT_PLACEMENTS,
}


def parameter_choices() -> dict[str, Collection[str]]:
    """{parameter: its allowed values}: the shared ones, every step's (``Step.choices``) and the dataset
    parameters (``iqa_dataset`` …: live views of the dataset registry, so a dataset registered at run time
    is a valid value)."""
    found = dict(_COMMON_CHOICES)
    for step in registry.steps():
        found.update(step.choices)
    return {**found, **dataset_choices()}


def coerce(name: str, value: Any, like: Any) -> Any:
    """Convert `value` (possibly a string from the command line) to the type of `like`."""
    try:
        if isinstance(value, bool) and not isinstance(like, bool):  # papermill's True for a count is no count
            raise ValueError(value)
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
            number = float(value)
            if not math.isfinite(number):  # nan and inf pass every comparison a range check makes
                raise ParameterError(f"parameter {name}={value!r} must be a finite number")
            return number
        if isinstance(like, tuple):
            # papermill gives a one-value list as that number (-p sigmas 0.1), and a list as written (-p sigmas
            # "[0.1, 0.2]") as that string
            if isinstance(value, str) and value.strip()[:1] == "[" and value.strip()[-1:] == "]":
                value = value.strip()[1:-1]
            items = value.split(",") if isinstance(value, str) else [value] if isinstance(value, (int, float)) \
                else list(value)
            if all(str(item).strip() == "" for item in items):  # -p quality_families= : the empty list
                return ()
            if any(str(item).strip() == "" for item in items):
                raise ParameterError(f"parameter {name}={value!r} has an empty item: give the values separated by "
                                     f"single commas")
            return tuple(coerce(name, item, like[0]) for item in items) if like else tuple(items)
        return str(value)
    except ParameterError:
        raise
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


def resolve(preset: str = "default", *, every_step: bool = True, **overrides: Any) -> dict[str, Any]:
    """The preset's parameters with `overrides` applied (``None`` overrides are ignored), checked.
    ``every_step`` False leaves out the checks of the steps that read a dataset (:func:`check_step`: their
    parameters taken together), for a caller that makes them one step at a time, with the values a run's
    record carries for that step (the dataset it read last)."""
    check_preset(preset)
    params = dict(PRESETS[preset])
    for name, value in overrides.items():
        if value is None:
            continue
        if name not in params:
            raise ParameterError(f"unknown parameter {name!r}; known: {', '.join(sorted(params))}")
        params[name] = coerce(name, value, params[name])
    for name, allowed in parameter_choices().items():
        if name in params and params[name] not in allowed:
            raise ParameterError(f"parameter {name}={params[name]!r}: choose one of {', '.join(allowed)}")
    for name in ("eval_batch_size", "n_boot", "n_perm"):
        if params[name] <= 0:
            raise ParameterError(f"parameter {name} must be positive, got {params[name]!r}")
    own_templates(params["prompt_templates"])  # the zero-shot steps' prompts, before anything trains
    if params["layers"] == "all" and blocks_readable(params["model"]) is False:
        raise ParameterError(f"parameter layers=all: model {params['model']}'s image tower (timm's) has no blocks "
                             f"clipalign reads (open_clip's ViT and ModifiedResNet towers only): use layers=final")
    for step in registry.steps():
        if every_step or not reads_dataset(step.name):
            check_step(step.name, params)
    if not 0 <= params["quality_variation"] <= 1:
        raise ParameterError(f"parameter quality_variation must lie in [0, 1], got {params['quality_variation']!r}")
    for name in ("seed", "eval_seed"):  # numpy's and torch's generators take no negative seed, torch's none of 2**64
        if not 0 <= params[name] < 2**64:
            raise ParameterError(f"parameter {name} must be >= 0 and below 2**64 (torch's generator), got "
                                 f"{params[name]!r}")
    # The world's own checks (image_size, texture_correlation, texture_scale, quality_families), here rather
    # than when the train page first draws it, after the run's folder is made.
    params["quality_families"] = training_world(params).quality_families
    params["preset"] = preset
    return params


def step_dataset_parameter(step: str) -> str | None:
    """``step``'s dataset parameter (``<task>_dataset``, whose value a run's record may carry), or None."""
    return next((dataset_parameter(task) for task in TASKS if dataset_parameter(task) in registry.get(step).parameters),
                None)


def reads_dataset(step: str) -> bool:
    return step_dataset_parameter(step) is not None


def check_step(step: str, params: Mapping[str, Any]) -> None:
    """One step's checks of its parameters taken together: its registered ``check``, and a dataset folder given
    while the step's dataset is the embedded set (which reads no folder: the wrong set would be measured)."""
    entry = registry.get(step)
    if entry.check is not None:
        entry.check(params)
    for task in TASKS:
        root, dataset = root_parameter(task), dataset_parameter(task)
        if dataset in entry.parameters and params.get(root) and params.get(dataset) == "embedded":
            real = [name for name in parameter_choices()[dataset] if name != "embedded"]
            raise ParameterError(f"parameter {root}={params[root]} is read only by a real dataset, but {dataset} is "
                                 f"'embedded': give {dataset}={' or '.join(real)}, or leave {root} out")


def sweep_separator(like: Any) -> str:
    """What separates a sweep's values of a parameter like ``like``: ";" for a list parameter (whose one value is
    itself comma-separated), "," for any other."""
    return ";" if isinstance(like, tuple) else ","


def sweep_parts(raw: str, like: Any) -> list[str]:
    """The values, as written, that one ``-p name=raw`` of a sweep gives a parameter like ``like`` (one: fixed)."""
    return [part.strip() for part in str(raw).split(sweep_separator(like))]


def format_value(value: Any) -> str:
    """A parameter value as ``-p`` takes it and tables show it: 0.25, 1 for 1.0, 'a,b' for a list. A float is
    written in full (the shortest text that reads back as the same float), so a command shown in the book
    reproduces the value it was given, and two values compared this way are equal only where they are."""
    if isinstance(value, float):
        text = repr(value)
        return text[:-2] if text.endswith(".0") else text
    if isinstance(value, (tuple, list)):
        return ",".join(format_value(v) for v in value)
    return str(value)
