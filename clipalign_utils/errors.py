"""One exception family, so the CLI can print a single actionable line for any bad input."""
import shlex


class ClipalignError(Exception):
    """Base class: the message names the file or parameter at fault and what to do."""


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
