"""The dataset registry: per analysis task, the datasets its ``<task>_dataset`` parameter may name.

Tasks are named like their parameters: ``iqa``, ``cue_conflict``, ``noise``, ``similarity`` and
``saliency`` choose with ``<task>_dataset`` and read a real dataset's folder from ``<task>_root``.
Each task's dispatcher (``load_iqa``, ``load_cue_conflict``, ``load_noise_dataset``, ``load_two_afc``,
``load_saliency``) looks the name up here and calls the loader with its task's keyword arguments (listed
in its docstring); a loader takes the ones it needs and ``**_`` for the rest. ``config.parameter_choices()`` reads
the names from here, so a dataset registered at run time is a valid parameter value.

A dataset registers where its loader is written: ``@register_dataset("<task>", "<name>")`` on the loader
function. The built-ins are found without importing any loader: the first lookup reads the modules of this
folder (``ast``) for those decorators and records each as a ``"module:function"`` target, imported when the
dataset is first loaded (the decorator then runs and puts the function in its place). This module imports
nothing of the package but ``errors`` (``config`` sits on top of it).

Adding a dataset: write its loader next to its task's others with the decorator above it, or call
:func:`register_dataset` at run time (a test registers a toy dataset that way).
"""
from __future__ import annotations

import ast
from importlib import import_module
from pathlib import Path
from typing import Callable, KeysView

from ..errors import ParameterError

# The tasks, in the order of their steps: each chooses its dataset with ``<task>_dataset``.
TASKS = ("iqa", "cue_conflict", "noise", "similarity", "saliency")
_REGISTRY: dict[str, dict[str, Callable | str]] = {task: {} for task in TASKS}
_scan_state = {"done": False}
# How pages and figures name each dataset to a reader (tables and parameters keep the registered name); a
# dataset not listed here (the embedded sets, one registered at run time) is named as registered.
DISPLAY_NAMES = {"tid2013": "TID2013", "kadid10k": "KADID-10k", "geirhos": "Geirhos cue-conflict",
                 "cifar100": "CIFAR-100", "bapps": "BAPPS", "nights": "NIGHTS", "mit1003": "MIT1003",
                 "cat2000": "CAT2000"}
EMBEDDED_SET = "the embedded set"  # a sentence's name for a task's ``embedded`` set ("from embedded" reads as a slip)


def _scan() -> None:
    """Record every built-in loader as a ``"module:function"`` target: each top-level function of a module in
    this folder decorated ``@register_dataset("<task>", "<name>")``, in file and line order (so each task's
    ``embedded`` set, written first, is its default)."""
    if _scan_state["done"]:
        return
    _scan_state["done"] = True
    for path in sorted(Path(__file__).parent.glob("*.py")):
        source = path.read_text(encoding="utf-8")
        if path.name == "registry.py" or "@register_dataset(" not in source:
            continue
        for node in ast.parse(source, str(path)).body:
            if not isinstance(node, ast.FunctionDef):
                continue
            for decorator in node.decorator_list:
                if (isinstance(decorator, ast.Call) and getattr(decorator.func, "id", None) == "register_dataset"
                        and len(decorator.args) == 2):
                    task, name = (ast.literal_eval(arg) for arg in decorator.args)
                    _datasets(task).setdefault(name, f"{path.stem}:{node.name}")


def _datasets(task: str) -> dict[str, Callable | str]:
    _scan()
    if task not in _REGISTRY:
        raise ParameterError(f"unknown dataset task {task!r}; tasks: {', '.join(TASKS)}")
    return _REGISTRY[task]


def _target(loader: Callable) -> str | None:
    """``"module:function"`` of a loader defined in this folder (what the scan records), else None."""
    module = getattr(loader, "__module__", "") or ""
    if not module.startswith(f"{__package__}."):
        return None
    return f"{module[len(__package__) + 1:]}:{getattr(loader, '__name__', '')}"


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
        # A built-in's decorator, run when its module is imported, replaces the target the scan recorded.
        if name in datasets and not (isinstance(datasets[name], str) and datasets[name] == _target(loader)):
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
        loader = getattr(import_module(f"{__package__}.{module}"), function)
        datasets[name] = loader  # its decorator has run by now; this keeps a target without one loadable
    return loader


def display_name(name: str) -> str:
    """How a page names dataset ``name`` to a reader (``kadid10k`` → ``KADID-10k``): :data:`DISPLAY_NAMES`,
    else the name itself."""
    return DISPLAY_NAMES.get(name, name)


def dataset_phrase(name: str, noun: str = "dataset ") -> str:
    """Dataset ``name`` as a sentence names it: ``noun`` and its :func:`display_name` ("dataset KADID-10k"; noun ""
    for "from CIFAR-100"), or :data:`EMBEDDED_SET` for a task's embedded set."""
    return EMBEDDED_SET if name == "embedded" else noun + display_name(name)


def dataset_choices() -> dict[str, KeysView[str]]:
    """{``<task>_dataset``: its dataset names}, live views (``config.parameter_choices``): later registrations count."""
    _scan()
    return {dataset_parameter(task): datasets.keys() for task, datasets in _REGISTRY.items()}
