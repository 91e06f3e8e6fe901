"""Opening the folder a user gives for a real dataset: the one call every real-dataset loader makes."""
from __future__ import annotations

from typing import Callable, TypeVar

from ..errors import DatasetError
from .registry import dataset_parameter, root_parameter

T = TypeVar("T")


def open_root(task: str, dataset: str, root, read: Callable[..., T], hint: str) -> T:
    """``read(root)`` for ``task``'s real dataset ``dataset``.

    No folder given: one error naming both parameters and ``hint`` (what to pass). A dataset error from
    ``read`` (folder missing, file malformed) is prefixed by the root parameter unless it names it already.
    """
    parameter = root_parameter(task)
    if root is None or not str(root).strip():
        raise DatasetError(f"{dataset_parameter(task)}={dataset} needs {parameter}: {hint}")
    try:
        return read(root)
    except DatasetError as error:
        if parameter in str(error):
            raise
        raise DatasetError(f"{parameter}={str(root)!r}: {error}") from None
