"""The dataset registry: per analysis task, the datasets its ``<task>_dataset`` parameter may name.

Tasks are named like their parameters: ``iqa``, ``cue_conflict``, ``noise``, ``similarity`` and
``saliency`` choose with ``<task>_dataset`` and read a real dataset's folder from ``<task>_root``.
Each task's dispatcher (``load_iqa``, ``load_cue_conflict``, ``load_noise_dataset``, ``load_two_afc``,
``load_saliency``) looks the name up here and calls the loader with its task's keyword arguments (listed
in its docstring); a loader takes the ones it needs and ``**_`` for the rest. ``config.CHOICES`` reads
the names from here, so a dataset registered at run time is a valid parameter value.

This module imports nothing of the package but ``errors`` (``config`` sits on top of it): the built-in
datasets are ``"module:function"`` targets in ``clipalign_utils.data``, imported on first use.

Adding a dataset: write its loader next to its task's others and add one line below, or call
:func:`register_dataset` at run time (``@register_dataset("noise", "toy")`` on a function; a test does).
"""
from __future__ import annotations

from importlib import import_module
from typing import Callable, KeysView

from ..errors import ParameterError

_REGISTRY: dict[str, dict[str, Callable | str]] = {
    "iqa": {"embedded": "iqa:embedded_set", "tid2013": "iqa:tid2013_set", "kadid10k": "iqa:kadid10k_set"},
    "cue_conflict": {"embedded": "cue_conflict:embedded_set", "geirhos": "cue_conflict:geirhos_set"},
    "noise": {"embedded": "noise:embedded_set", "cifar100": "noise:cifar100_set"},
    "similarity": {"embedded": "two_afc:embedded_set", "bapps": "two_afc:bapps_set", "nights": "two_afc:nights_set"},
    "saliency": {"embedded": "saliency:embedded_set", "mit1003": "saliency:mit1003_set",
                 "cat2000": "saliency:cat2000_set"},
}
TASKS = tuple(_REGISTRY)


def _datasets(task: str) -> dict[str, Callable | str]:
    if task not in _REGISTRY:
        raise ParameterError(f"unknown dataset task {task!r}; tasks: {', '.join(TASKS)}")
    return _REGISTRY[task]


def dataset_parameter(task: str) -> str:
    """The parameter that names ``task``'s dataset (``iqa`` → ``iqa_dataset``)."""
    _datasets(task)
    return f"{task}_dataset"


def root_parameter(task: str) -> str:
    """The parameter that holds the folder of ``task``'s real dataset (``iqa`` → ``iqa_root``)."""
    _datasets(task)
    return f"{task}_root"


def register_dataset(task: str, name: str, loader: Callable | str | None = None):
    """Register ``loader`` (a callable, or ``"module:function"`` in ``clipalign_utils.data``) as ``task``'s
    dataset ``name``; without ``loader``, a decorator. A name is registered once."""
    datasets = _datasets(task)

    def add(loader):
        if name in datasets:
            raise ParameterError(f"{dataset_parameter(task)} {name!r} is registered already")
        datasets[name] = loader
        return loader

    return add if loader is None else add(loader)


def unregister_dataset(task: str, name: str) -> None:
    """Remove a dataset (tests that register one at run time)."""
    _datasets(task).pop(name, None)


def dataset_names(task: str) -> tuple[str, ...]:
    """``task``'s dataset names in registration order (the built-ins first, ``embedded`` the default)."""
    return tuple(_datasets(task))


def get_dataset(task: str, name: str) -> Callable:
    """The loader of ``task``'s dataset ``name``; ParameterError naming the parameter and the choices otherwise."""
    datasets = _datasets(task)
    if name not in datasets:
        raise ParameterError(f"{dataset_parameter(task)}={name!r}: choose one of {', '.join(datasets)}")
    loader = datasets[name]
    if isinstance(loader, str):
        module, _, function = loader.partition(":")
        loader = datasets[name] = getattr(import_module(f"{__package__}.{module}"), function)
    return loader


def dataset_choices() -> dict[str, KeysView[str]]:
    """{``<task>_dataset``: its dataset names}, live views (``config.CHOICES``): later registrations count."""
    return {dataset_parameter(task): datasets.keys() for task, datasets in _REGISTRY.items()}
