"""One exception family, so the CLI can print a single actionable line for any bad input."""
import errno
import shlex

# A full disk or quota: by its errno, or by its message where only that is left (a page's error in its kernel).
NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
FREE_SOME = "free some and run the same command again"


def disk_full(error: BaseException | str) -> bool:
    """Whether ``error`` (an exception, or the message of one) says that the disk is full."""
    return getattr(error, "errno", None) in NO_SPACE or "No space left" in str(error)


class ClipalignError(Exception):
    """Base class: the message names the file or parameter at fault and what to do."""

    def _render_traceback_(self) -> list[str]:
        """In a notebook (Jupyter, papermill, Colab: IPython asks for this), the one line rather than the
        package's frames above it."""
        return [f"{type(self).__name__}: {self}"]


class ParameterError(ClipalignError, ValueError):
    """A parameter has a wrong name, type or value."""


class DatasetError(ClipalignError):
    """A dataset root is missing or a file in it is malformed."""


class CheckpointError(ClipalignError):
    """A run directory holds no usable checkpoints, or a checkpoint is corrupt."""


def shell_arg(value) -> str:
    """``value`` as one word of a command a message suggests: quoted where a shell would split it (a folder
    with a space in its name), as it is otherwise."""
    return shlex.quote(str(value))
