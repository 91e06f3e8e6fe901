"""The ``clipalign`` command's entry point (``pyproject``'s ``[project.scripts]``, ``python -m
clipalign_utils.cli``, ``torchrun -m clipalign_utils.cli``): the command lives in
:mod:`clipalign_utils.orchestration.cli`."""
from .orchestration.cli import main

__all__ = ["main"]

if __name__ == "__main__":
    raise SystemExit(main())
