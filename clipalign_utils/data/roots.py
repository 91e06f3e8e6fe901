"""The two checks every real-dataset loader makes on the folder a user gives."""
from __future__ import annotations

from typing import Callable

from ..errors import DatasetError


def require_root(dataset_parameter: str, dataset: str, root_parameter: str, root, what: str) -> None:
    """A real dataset chosen without its folder: one error naming both parameters and what to pass."""
    if root is None or not str(root).strip():
        raise DatasetError(f"{dataset_parameter}={dataset} needs {root_parameter}: {what}")


def load_from_root(loader: Callable, root_parameter: str, root):
    """``loader(root)``, with any dataset error prefixed by the parameter that named the folder."""
    try:
        return loader(root)
    except DatasetError as error:
        if root_parameter in str(error):
            raise
        raise DatasetError(f"{root_parameter}={str(root)!r}: {error}") from None
