"""What the ranks of ``clipalign run --nproc N`` say, and how their launcher says it once: kept apart from
:mod:`.distributed` so that a rank stopped while it is still importing (pandas, torch) reports without importing
them again (an interrupted import left half made fails the next, with a traceback)."""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import ClipalignError


class OtherRankStopped(ClipalignError):
    """This rank's share is done, another rank's was not: the other rank's own line says why."""


def torchrun_env() -> dict | None:
    """{rank, local_rank, world_size} when this process is one of several torchrun started, else None."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 or "RANK" not in os.environ:
        return None
    return {"rank": int(os.environ["RANK"]), "local_rank": int(os.environ.get("LOCAL_RANK", "0")),
            "world_size": world}


# Set for the ranks --nproc starts, to a folder their errors are written to: their launcher says how the command
# ended, once (several ranks often meet the same damaged file), see cli.main.
LAUNCHED = "CLIPALIGN_RANKS_LAUNCHED"


def what_ranks_said(folder: Path) -> list[str]:
    """The lines a --nproc command ends with (the launcher was not interrupted): each rank's error once, in rank
    order; else the line of the rank stopped by a signal of its own (the one that ended first: torchrun stops the
    others after it); else a rank's "another rank stopped"."""
    def lines(kind: str) -> list[str]:
        return [path.read_text() for path in sorted(folder.glob(f"rank*.{kind}"),
                                                    key=lambda path: int(path.name[4:].split(".")[0]))]

    first = folder / "first"
    stopped = folder / f"rank{first.read_text()}.stopped" if first.exists() else None
    return list(dict.fromkeys(lines("error") or ([stopped.read_text()] if stopped and stopped.exists() else
                                                 lines("stopped")) or lines("after")))


def tell_launcher(name: str, text: str) -> bool:
    """Write ``text`` as ``name`` in the folder the launcher of ``--nproc`` reads (:func:`what_ranks_said`); False
    where there is none (not launched by --nproc, or torchrun run by hand)."""
    folder = os.environ.get(LAUNCHED)
    if not folder or not Path(folder).is_dir():
        return False
    Path(folder, name).write_text(text)
    return True


# What a command stopped mid-step says of the run (a rank's line, or the command's own).
STEP_PUT_BACK = ("the step it was running left the run as it was before that step (finished steps stay); the same "
                 "command carries on")


def rank_stopped(how: str) -> bool:
    """Under --nproc: this rank was interrupted or stopped by a signal (its own, or the launcher's passed on); its
    launcher says it (True), only where the launcher itself was not interrupted."""
    ranks = torchrun_env()
    return ranks is not None and tell_launcher(
        f"rank{ranks['rank']}.stopped",
        f"rank {ranks['rank']} was {how} (a signal from outside the command): {STEP_PUT_BACK}")


def rank_error(message: str, knock_on: bool = False) -> bool:
    """Under --nproc: keep a rank's error for its launcher to say (True), rather than each rank saying it;
    ``knock_on``: an error that only follows another rank's (:class:`OtherRankStopped`)."""
    ranks = torchrun_env()
    return ranks is not None and tell_launcher(f"rank{ranks['rank']}.{'after' if knock_on else 'error'}", message)
