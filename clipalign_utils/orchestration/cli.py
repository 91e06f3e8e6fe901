"""`clipalign` command line: run the pipeline, rebuild the book, fetch a real benchmark.

The steps come from the step registry (``clipalign_utils.registry``); the CLI is the only place that
builds the book (after a whole run, several runs or a sweep, unless --no-book).
Any ClipalignError (bad parameter, missing dataset, corrupt checkpoint, failed step)
ends the command with one line on stderr and exit status 2.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

from .. import registry
from ..config import DRIVERS_FOLDER, EXPERIMENTS, MULTI_RUN_PRESETS, PRESET_EXPERIMENTS, PRESETS, SWEEP_PRESETS
from ..errors import FREE_SOME, ClipalignError, ParameterError, disk_full, shell_arg
from ..layout import (KIND_RECORDS, PARAMS_TXT, PARTS, RUN_RECORD, SOURCE_RECORD, TRAIN_LOG, TRAIN_RECORD,
                      RunDir, runs_in)


def _parse_overrides(items: list[str]) -> dict[str, str]:
    """``-p NAME=VALUE`` items as {name: value}. A dataset folder (``<task>_root``) is made absolute against
    this command's working directory, where the user wrote it: the pages' kernels run in the repository's
    root, which would read a relative path against the wrong folder. A folder that does not exist is refused
    here, before anything is made or a kernel started."""
    overrides = {}
    for item in items:
        name, sep, value = item.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name:
            raise ParameterError(f"-p {item!r}: write parameters as name=value (e.g. -p epochs=3)")
        if name in registry.SET_BY_COMMAND:
            raise ParameterError(f"-p {name}: the command sets it from {registry.SET_BY_COMMAND[name]}; give "
                                 f"{registry.SET_BY_COMMAND[name]} instead")
        if name in overrides:
            raise ParameterError(f"-p {name} is given twice ({overrides[name]} and {value}): give it once (a sweep "
                                 f"takes its values as one list, -p {name}=A,B)")
        if name in registry.PAPERMILL_ONLY:
            raise ParameterError(f"-p {name}: a notebook's own parameter when papermill runs it alone; the command "
                                 f"gives its runs and trains them itself")
        if name.endswith("_root") and value:
            path = os.path.abspath(os.path.expanduser(value))
            if not os.path.exists(path):
                raise ParameterError(f"-p {name}={value}: {path} does not exist; point it at the dataset's "
                                     f"folder in its official layout (clipalign fetch DATASET --to DIR makes one)")
            value = path
        overrides[name] = value
    return overrides


def check_out(folder: str, flag: str, hint: str = "a new one, or one to resume") -> None:
    """``--out``/``--to``: a folder that exists, or one that can be made, checked before anything is made (one line
    naming the flag, rather than a traceback from the first mkdir after the checks)."""
    if not folder.strip():
        raise ParameterError(f"{flag} '': give a folder (e.g. {flag} runs/default)")
    path = Path(folder).expanduser().absolute()
    if path.exists() and not path.is_dir():
        raise ParameterError(f"{flag} {folder}: {path} is a file; give a folder ({hint})")
    existing = next(parent for parent in (path, *path.parents) if parent.exists())
    if path == existing:
        # written into as much as a new one: a read-only one failed only at its first step, on a temporary file
        check_writable(path, f"{flag} {folder}")
        return
    if not existing.is_dir():
        raise ParameterError(f"{flag} {folder}: {existing} is a file, so no folder can be made under it")
    problem = _cannot_make_in(existing)
    if problem is not None:
        raise ParameterError(f"{flag} {folder}: no folder can be made in {existing} ({problem})")


def _cannot_make_in(folder: Path) -> str | None:
    """Why nothing can be made in ``folder`` (None: it can). Tried, not read off its mode bits: a read-only disk
    or /proc says no only when asked, and root passes any mode (os.access would say yes to a read-only disk)."""
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".clipalign-probe-", dir=folder))
    except OSError as error:
        return error.strerror or str(error)
    return None


def check_writable(folder: Path, named: str) -> None:
    """An existing folder a command writes into (``named``: how the command line gave it), refused in one line
    if this user cannot write there."""
    problem = _cannot_make_in(folder)
    if problem is not None:
        raise ParameterError(f"{named}: {folder} is read-only to this user ({problem}); make it writable, or copy "
                             f"it somewhere writable and give that folder")


def _check_book_folder(run_dir: str) -> None:
    """``clipalign book RUN_DIR``: a folder, that this user can write its book into (built there, in
    .book-building), before anything reads or builds it."""
    path = Path(run_dir).expanduser()
    if path.is_file():
        raise ParameterError(f"clipalign book {run_dir}: that is a file; give the folder a clipalign run, sweep "
                             f"or experiment wrote (it holds notebooks/)")
    if not path.exists():
        raise ParameterError(f"clipalign book {run_dir}: no such folder; give the folder a clipalign run, sweep "
                             f"or experiment wrote (it holds notebooks/)")
    check_writable(path.absolute(), f"clipalign book {run_dir}")


# What clipalign writes at the top of a run's or a folder's directory.
_OWN_NAMES = PARTS | {RUN_RECORD, TRAIN_RECORD, PARAMS_TXT, TRAIN_LOG, SOURCE_RECORD, *KIND_RECORDS.values()}


def _clipalign_made(path: Path, depth: int = 2) -> bool:
    """Whether ``path`` is one of clipalign's folders: one with a kind (``RunDir.kind``) or its record, or one
    whose visible entries are all clipalign's names or such folders (a command stopped before its records)."""
    if RunDir(path).kind is not None or (path / RUN_RECORD).exists():
        return True
    return depth > 0 and all(entry.name in _OWN_NAMES or (entry.is_dir() and _clipalign_made(entry, depth - 1))
                             for entry in path.iterdir() if not entry.name.startswith("."))


def check_out_folder(out: str, command: str, makes: str | None) -> None:
    """An existing ``--out`` is one clipalign made (or empty): a command writes notebooks/, metrics/, record.json…
    there and would overwrite a user's files of those names. ``makes``: the kind this command makes there
    (run, runs, sweep, experiment), which a folder of another kind is not (a sweep inside a finished run)."""
    path = Path(out).expanduser().absolute()
    if not path.is_dir():
        return
    if not _clipalign_made(path):
        others = sorted(entry.name for entry in path.iterdir() if not entry.name.startswith("."))
        shown = ", ".join(others[:4]) + (", …" if len(others) > 4 else "")
        raise ParameterError(f"--out {shell_arg(out)}: {path} holds other files ({shown}) and no clipalign run; give a new or "
                             f"empty folder")
    folder = RunDir(path)  # its kind as recorded (a folder of runs without runs.json may be a sweep's beginning)
    kind = "run" if folder.is_run else next((k for k in KIND_RECORDS if folder.record(k).exists()), None)
    if makes and kind and kind != makes:
        named = {"run": "a run", "runs": "a folder of runs", "sweep": "a sweep", "experiment": "an experiment"}
        record = {"run": "checkpoints/"}.get(kind) or KIND_RECORDS[kind]
        raise ParameterError(f"--out {shell_arg(out)} is {named[kind]} ({record}); clipalign {command} makes {named[makes]} "
                             f"there: give a new folder")


def _check_run_preset(out: str, preset: str | None) -> None:
    """``--preset`` for an existing run (or folder of runs) is the one it was made with: another one for its steps
    would mix two presets' values in one run (a sweep or an experiment says so of its arms)."""
    from ..config import check_preset
    from ..record import recorded_preset

    if preset is None:
        return
    check_preset(preset)
    recorded = recorded_preset(out)
    if recorded not in (None, preset):
        raise ParameterError(f"--preset {preset}: {shell_arg(out)} was made with --preset {recorded}, whose values "
                             f"its steps resolve against; leave --preset out (-p sets a step's values), or give "
                             f"another --out")


_LAUNCHER_RUNS = ("--launcher submits the runs of --seeds/--scales (or of a multi-run preset) as jobs: not with "
                  "--only, --checkpoints or --nproc")


def _check_before_ranks(args) -> None:
    """What every rank of ``--nproc N`` would find wrong with the command, said once before torchrun starts
    them (each rank would print it, and torchrun a traceback after): the folder, --launcher, and each run's
    parameters for the steps it measures."""
    check_out(args.out, "--out")
    check_out_folder(args.out, "run", None)
    if args.launcher is not None:
        raise ParameterError(_LAUNCHER_RUNS)
    if args.checkpoints:
        return  # a trajectory's parameters are checked against its source by each rank, before any fetch
    from ..layout import runs_in
    from ..record import resolve, run_preset
    from .pipeline import for_step, measured_steps

    out = Path(args.out).expanduser().absolute()
    if not out.is_dir():
        raise ParameterError(f"--out {shell_arg(args.out)}: no run there; --nproc shares out a trained run's "
                             f"checkpoints (train it first without --nproc)")
    overrides = _parse_overrides(args.params)
    for run_dir in runs_in(out) or [out]:
        resolved = resolve(run_dir, run_preset(run_dir, args.preset), overrides)
        for step in measured_steps(args.only):
            for_step(run_dir, step, resolved)


_RANK_ZERO_FINISHING = False


def _finish_on_rank_zero(argv: list[str]) -> int:
    """Rank 0, after every rank's share is cached: the ordinary command."""
    global _RANK_ZERO_FINISHING
    _RANK_ZERO_FINISHING = True
    try:
        return main(argv)
    finally:
        _RANK_ZERO_FINISHING = False


def _without_nproc(argv: list[str]) -> list[str]:
    kept, skip = [], False
    for item in argv:
        if skip:
            skip = False
        elif item == "--nproc":
            skip = True
        elif not item.startswith("--nproc="):
            kept.append(item)
    return kept


class _Once(argparse.Action):
    """A value option (``--out``, ``--preset`` …) given once: given twice, argparse took the last silently."""

    def __call__(self, parser, namespace, values, option_string=None):
        given = namespace.__dict__.setdefault("_given_once", {})
        if self.dest in given:
            def shown(value) -> str:  # (--seeds 0 1: a list)
                return " ".join(map(str, value)) if isinstance(value, list) else str(value)

            parser.error(f"{option_string} is given twice ({shown(given[self.dest])} and {shown(values)}): give it "
                         f"once")
        given[self.dest] = values
        setattr(namespace, self.dest, values)


class _OneLineParser(argparse.ArgumentParser):
    """argparse's errors as one line, like the command's own (its default prints the usage block first); a value
    option given twice is one of them (:class:`_Once`)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.register("action", None, _Once)
        self.register("action", "store", _Once)

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def main(argv: list[str] | None = None) -> int:
    parser = _OneLineParser(prog="clipalign", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="execute the notebooks into a run directory, then build the book (not "
                                          "with --only or --checkpoints: clipalign book DIR builds it)")
    run.add_argument("--preset", help=f"one of: {', '.join(PRESETS)} (default: the run's own, as it recorded it, "
                                      f"else default)")
    run.add_argument("--out", required=True, help="run directory (created; re-used to resume)")
    run.add_argument("--only", metavar="STEP[,STEP…]",
                     help=f"re-run these steps (comma-separated): {', '.join(registry.names())}")
    run.add_argument("-p", dest="params", action="append", default=[], metavar="NAME=VALUE",
                     help="override a parameter in every notebook that declares it (repeatable)")
    run.add_argument("--no-book", action="store_true",
                     help="skip building the book (built at the end of a whole run, of --seeds/--scales and of a "
                          "multi-run preset; --only and --checkpoints build none: clipalign book OUT does)")
    run.add_argument("--checkpoints", metavar="SOURCE",
                     help="analyse a trajectory from SOURCE, one checkpoint at a time: a folder of epoch_<E>.pt, "
                          "a URL template with {epoch}, or laion-scaling:<run name> (Hugging Face "
                          "laion/scaling-laws-openclip; HF_ENDPOINT and HF_TOKEN apply); --only may name "
                          "several steps, the synthesis among them (iqa,shape,noise,tradeoff)")
    run.add_argument("--at-epochs", metavar="LIST", help="with --checkpoints: the epochs to analyse (1,2,4; "
                                                         "default: every epoch the source lists)")
    run.add_argument("--keep-weights", metavar="none|all|LIST",
                     help="with --checkpoints: the fetched weights to keep on disk (default none: each is "
                          "deleted once measured)")
    run.add_argument("--nproc", type=int, metavar="N",
                     help="with --only: share the steps' checkpoints among N processes under torchrun (each its "
                          "own GPU, or its share of the CPU's threads); rank 0 then measures and executes the pages")
    run.add_argument("--seeds", nargs="+", type=int, metavar="K",
                     help="train and analyse one run per seed (and scale) into OUT/<scale>-seed<k>/, "
                          "then synthesise them all into OUT")
    run.add_argument("--scales", nargs="+", metavar="SCALE",
                     help="model scales (tiny, small, vit-tiny) or open_clip names; with or without --seeds")
    sweep = commands.add_parser(
        "sweep", help="run the pipeline once per combination of parameter values, then compare them",
        description="Each -p NAME=V1,V2,… with several values is swept (list parameters such as sigmas "
                    "separate values with ';': -p \"sigmas=0.01,0.02;0.1,0.2\"); a -p with one value applies to "
                    "every run. One run directory per setting under OUT, the comparison in OUT/notebooks/"
                    "06_sweep.ipynb; running the same command again resumes.")
    sweep.add_argument("--preset", help=f"one of: {', '.join(PRESETS)} (default: the folder's own, else default)")
    sweep.add_argument("--out", required=True, help="sweep directory (created; re-used to resume)")
    sweep.add_argument("-p", dest="params", action="append", default=[], metavar="NAME=V1,V2",
                       help="a swept (several values) or fixed (one value) parameter; repeatable")
    sweep.add_argument("--one-at-a-time", action="store_true",
                       help="vary each swept parameter alone around the preset's values (one shared base run) "
                            "instead of running every combination")
    sweep.add_argument("--no-book", action="store_true", help="skip building the book")
    experiment = commands.add_parser(
        "experiment", help="run an experiment's sweeps, then its chapter comparing every run",
        description="The quality experiment (chapter 9): quality variation in the training images, each "
                    "setting over 3 seeds, one sweep per folder under OUT, the chapter in OUT/notebooks/"
                    "09_quality_experiment.ipynb; running the same command again resumes.")
    experiment.add_argument("name", choices=sorted(EXPERIMENTS), help="the experiment")
    experiment.add_argument("--preset", help=f"one of: {', '.join(PRESETS)} (default: the folder's own, else default)")
    experiment.add_argument("--out", required=True, help="experiment directory (created; re-used to resume)")
    experiment.add_argument("-p", dest="params", action="append", default=[], metavar="NAME=VALUE",
                            help="a parameter applied to every run (e.g. -p epochs=6); repeatable")
    experiment.add_argument("--only-sweeps", metavar="A,B", help="run only these of the experiment's sweeps")
    experiment.add_argument("--no-book", action="store_true", help="skip building the book")
    for command in (sweep, experiment, run):
        command.add_argument("--launcher", metavar="local|slurm",
                             help="submit each training (with the settings sharing it) as a job through submitit: "
                                  "local processes or SLURM; the comparison runs once all have finished"
                                  + ("; with run, each run of --seeds/--scales or of a multi-run preset (full: "
                                     "its drivers sweep and quality experiment too)" if command is run else ""))
        command.add_argument("--slurm-partition", metavar="P", help="with --launcher slurm: the partition")
        command.add_argument("--gpus-per-job", type=int, metavar="N", help="with --launcher: GPUs per job (default 0)")
        command.add_argument("--timeout-min", type=int, metavar="M", help="with --launcher: a job's time limit "
                                                                          "in minutes (default 1440)")
        command.add_argument("--no-wait", action="store_true",
                             help="with --launcher: submit and return; the same command later finishes the comparison")
    book = commands.add_parser("book", help="build the book from an executed run directory")
    book.add_argument("run_dir")
    from ..data.fetch import RELEASES

    fetch = commands.add_parser(
        "fetch", help="download a real benchmark, verify it and unpack it into the layout its loader reads",
        description="Downloads the release from its official host (or --url / --mirror), checks the published "
                    "checksum where there is one and --sha256, unpacks it, checks that every file the release's "
                    "index names is there, and prints the -p parameters that read it. Nothing is left in DIR "
                    "unless all of that succeeded.")
    fetch.add_argument("dataset", metavar="DATASET", help=f"one of: {', '.join(RELEASES)}")
    fetch.add_argument("--to", required=True, metavar="DIR", help="the folder to unpack into (DIR/DATASET)")
    fetch.add_argument("--url", help="the archive's URL instead of the official one (single-archive datasets)")
    fetch.add_argument("--mirror", metavar="BASE",
                       help="a host holding every archive by its file name: BASE/<file name> replaces each URL")
    fetch.add_argument("--sha256", metavar="HEX", help="the archive's SHA-256 to check (comma-separated, one per "
                                                       "archive, for MIT1003's two)")
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    _cache_dir_made_absolute()
    with _stopped_as_interrupted() as stopped:
        try:
            from ..data.image_sets import kept_images_budget

            kept_images_budget()  # $CLIPALIGN_KEPT_IMAGES_GB is read in the pages: a bad value stops here, first
            if args.command in ("run", "sweep", "experiment"):
                from .pipeline import forget_notes

                forget_notes()  # each -p no page reads is said once per command (run_many, sweeps, experiments)
            return _dispatch(args, argv)
        except ClipalignError as error:
            from .ranks import OtherRankStopped, rank_error

            if not rank_error(str(error), knock_on=isinstance(error, OtherRankStopped)):
                print(f"clipalign: error: {error}", file=sys.stderr)
            return 2
        except OSError as error:  # a read-only folder, a full disk: said in one line, not a traceback
            said = disk_problem(error)
            if said is None:
                raise
            print(f"clipalign: error: {said}", file=sys.stderr)
            return 2
        except KeyboardInterrupt as interruption:
            import logging

            # nbclient's cell task dies with its kernel; asyncio would print it at exit as "never retrieved"
            logging.getLogger("asyncio").setLevel(logging.CRITICAL)
            from .ranks import STEP_PUT_BACK, rank_stopped

            if rank_stopped(stopped.get("by", "interrupted")):  # a rank of --nproc: its launcher says it
                return 143 if "by" in stopped else 130
            done = {"book": "the book in place, if any, is the previous one, whole; the same command builds it again",
                    "fetch": "nothing of the download was kept in --to; the same command fetches it again"}.get(
                args.command, STEP_PUT_BACK)
            if args.command == "fetch" and interruption.args:  # what the fetch kept for the next one to resume
                done = str(interruption.args[0])
            if getattr(args, "launcher", None) is not None and interruption.args:  # what its local jobs did
                done = str(interruption.args[0])
            elif getattr(args, "launcher", None) is not None:  # the jobs are processes (or SLURM jobs) of their own
                done = ("any jobs it had submitted keep running (their logs are in --out's jobs/); the same command "
                        "again waits for them, resubmits what did not finish, then compares")
            print(f"clipalign: {stopped.get('by', 'interrupted')}: {done}", file=sys.stderr)
            return 143 if "by" in stopped else 130


def disk_problem(error: OSError) -> str | None:
    """What a full disk or a folder the command cannot write to says (shutil's copies gather their errors in one
    shutil.Error), with the way on; None for any other error."""
    import errno
    import shutil

    found = [error]
    if isinstance(error, shutil.Error) and error.args and isinstance(error.args[0], list):
        found = [problem for *_, problem in error.args[0]]
    where = next((getattr(e, "filename", None) for e in found if getattr(e, "filename", None)), None)
    where = f" ({where})" if where else ""
    if any(map(disk_full, found)):
        return f"no space left on the disk{where}: {FREE_SOME}"
    if any(getattr(e, "errno", None) in (errno.EACCES, errno.EPERM, errno.EROFS) for e in found):
        return (f"cannot write{where}: the folder is read-only to this user; make it writable, or copy the run "
                f"somewhere writable and give that folder")
    return None


def _cache_dir_made_absolute() -> None:
    """A relative ``$CLIPALIGN_CACHE_DIR`` (or ``$XDG_CACHE_HOME``) names a folder where the command was
    started; the pages' kernels run in the checkout, so they are given it absolute (an audit found the cache
    made inside the checkout)."""
    for name in ("CLIPALIGN_CACHE_DIR", "XDG_CACHE_HOME"):
        if os.environ.get(name) and not os.path.isabs(os.environ[name]):
            os.environ[name] = os.path.abspath(os.environ[name])


@contextmanager
def _stopped_as_interrupted():
    """SIGTERM (``kill``, ``timeout``, a scheduler's time limit) stops the command as Ctrl-C does: the step it was
    running puts the run back as it was, rather than the process dying between a page's tables and its figures.
    Yields {"by": "stopped by SIGTERM"} once that happened."""
    from .signals import handled

    stopped: dict = {}

    def stop(signum, frame):
        stopped["by"] = "stopped by SIGTERM"
        raise KeyboardInterrupt

    with handled(stop, (signal.SIGTERM,)):
        yield stopped


def _dispatch(args, argv: list[str]) -> int:
    """The command ``args`` names, run (:func:`main` answers its errors and interruptions)."""
    if args.command == "run":
        from . import distributed
        from .pipeline import only_steps

        distributed.check_nproc(args.nproc, args.only, args.checkpoints)
        if args.only is not None:
            only_steps(args.only)  # unknown names: one line, before any process starts
        _check_run_preset(args.out, args.preset)  # (before torchrun's ranks measure with it)
        ranks = distributed.torchrun_env()
        if args.nproc is not None and args.nproc > 1 and ranks is None:
            _check_before_ranks(args)
            return distributed.launch(_without_nproc(argv), args.nproc)
        if ranks is not None and not _RANK_ZERO_FINISHING:
            if not args.only and not args.checkpoints:
                raise ParameterError("under torchrun, clipalign run shares out the checkpoints of --only "
                                     "STEP[,STEP…] or of --checkpoints SOURCE: name one")
            stream = ({"spec": args.checkpoints, "at_epochs": args.at_epochs, "keep_weights": args.keep_weights}
                      if args.checkpoints else None)
            return distributed.run_ranks(args.out, args.only, args.preset, _parse_overrides(args.params),
                                         finish=lambda: _finish_on_rank_zero(argv), stream=stream)
    if args.command in ("sweep", "experiment", "run"):
        check_out(args.out, "--out")
        check_out_folder(args.out, args.command, None)  # a folder of the user's own: before anything reads it
    elif args.command == "fetch":
        check_out(args.to, "--to", "the dataset's folder goes inside it")
    elif args.command == "book":
        _check_book_folder(args.run_dir)
    launcher = None
    if args.command in ("sweep", "experiment", "run"):
        from .launch import check_launcher

        launcher = check_launcher(args.launcher, args.slurm_partition, args.gpus_per_job, args.timeout_min,
                                  args.no_wait)
        if launcher is not None and args.command == "run" and (args.only or args.checkpoints or args.nproc):
            raise ParameterError(_LAUNCHER_RUNS)
    overrides = _parse_overrides(getattr(args, "params", []))
    folder = getattr(args, "out", None) if args.command != "book" else args.run_dir
    if args.command != "fetch" and folder and Path(folder).is_dir():
        from .pipeline import recover_stopped_pages

        # a page killed mid-way: its run as it was, before anything reads it (with --launcher, a page a job is
        # running now is that job's)
        recover_stopped_pages(folder, skip_held=launcher is not None)
    if args.command not in ("book", "fetch"):
        from ..record import run_preset

        # A new folder's preset is default; an existing run's (or folder's), the one it recorded.
        args.preset = run_preset(args.out, args.preset)
    multi = MULTI_RUN_PRESETS.get(getattr(args, "preset", None), {})
    if args.command == "run" and not args.only and not args.checkpoints:
        # A preset's seeds (scales) apply unless -p seed=… (model=…) asks for one.
        if "seed" not in overrides:
            args.seeds = args.seeds or list(multi.get("seeds", ())) or None
        if "model" not in overrides:
            args.scales = args.scales or list(multi.get("scales", ())) or None
    if args.command == "run" and (args.at_epochs or args.keep_weights) and not args.checkpoints:
        raise ParameterError("--at-epochs and --keep-weights go with --checkpoints SOURCE")
    if args.command in ("sweep", "experiment", "run"):
        makes = {"sweep": "sweep", "experiment": "experiment"}.get(args.command) or (
            "runs" if args.seeds or args.scales else None if args.only or args.checkpoints else "run")
        check_out_folder(args.out, args.command, makes)
    if _ends_with_book(args):
        from .book import check_sources

        check_sources(args.command)
    if args.command == "fetch":
        from ..data.fetch import fetch

        from .pipeline import measuring_bars

        with measuring_bars():  # in a log (a batch job's), each bar once at its end and the latest once a minute
            fetched = fetch(args.dataset, args.to, args.url, args.mirror, args.sha256)
        state = "already there, verified" if fetched.already else "verified"
        print(f"{fetched.release.title}: {fetched.root} ({state}: {fetched.counted})")
        print(f"read it with: {fetched.parameters()}", flush=True)
    elif args.command == "run" and args.checkpoints:
        from .stream import run_streamed

        if args.seeds or args.scales:
            raise ParameterError("--checkpoints analyses one trajectory: not with --seeds/--scales")
        out = run_streamed(args.out, args.checkpoints, args.at_epochs, args.keep_weights, args.only,
                           args.preset, overrides, progress=sys.stderr.isatty())
        print(f"analysed: {out}", flush=True)
        if not args.no_book:  # a streamed trajectory is measured, not built (_ends_with_book): the next step
            print(f"book: clipalign book {shell_arg(out)}", flush=True)
    elif args.command == "run" and args.only and not (args.seeds or args.scales) and runs_in(args.out):
        from .multirun import rerun_step

        # a multi-run folder (the default book's): the step in every run, then the synthesis (which each
        # analysis step's re-run ends with: named beside one, it is not run twice)
        steps = only_steps(args.only)
        analysed = [step for step in steps if not registry.get(step).synthesis]
        for step in analysed or steps:
            rerun_step(args.out, step, args.preset, overrides, progress=sys.stderr.isatty())
    elif args.command == "run" and (args.seeds or args.scales):
        from .multirun import run_many

        if args.only:
            raise ParameterError("--only runs one step of one run: use it on OUT/<scale>-seed<k>, "
                                 "not with --seeds/--scales")
        for name in PRESET_EXPERIMENTS.get(args.preset, ()):  # its experiments' plans, before any run trains
            from .experiment import plan

            plan(name, overrides)
        driven = sorted(set(SWEEP_PRESETS.get(args.preset, {})) & set(overrides))
        if driven:  # one value given would flatten that driver of the preset's sweep
            raise ParameterError(f"-p {driven[0]}: the {args.preset} preset's drivers sweep varies it "
                                 f"({SWEEP_PRESETS[args.preset][driven[0]]}); leave it out, or run clipalign sweep "
                                 f"for values of your own")
        if launcher is not None:
            from .launch import runs_on

            if not runs_on(launcher, args.out, args.preset, args.seeds, args.scales, overrides,
                           progress=sys.stderr.isatty()):
                return 0
        out = run_many(args.out, args.preset, args.seeds, args.scales, overrides, progress=sys.stderr.isatty())
        if args.preset in SWEEP_PRESETS:
            from .multirun import link_base_run
            from .sweep import run_sweep

            link_base_run(out, args.preset, overrides)
            run_sweep(out / DRIVERS_FOLDER, args.preset, {**SWEEP_PRESETS[args.preset], **overrides},
                      one_at_a_time=True, progress=sys.stderr.isatty())
        for name in PRESET_EXPERIMENTS.get(args.preset, ()):
            from .experiment import run_experiment

            run_experiment(out / name, name, args.preset, overrides, progress=sys.stderr.isatty())
        if _ends_with_book(args):
            _build_book(out)
    elif args.command == "experiment":
        from .experiment import run_experiment

        only = None
        if args.only_sweeps is not None:
            from .pipeline import comma_names

            only = comma_names("--only-sweeps", args.only_sweeps)
            if not only:
                raise ParameterError(f"--only-sweeps {args.only_sweeps!r}: name a sweep of the experiment, or leave "
                                     f"--only-sweeps out to run them all")
        if launcher is not None:
            from .launch import experiment_on

            if not experiment_on(launcher, args.out, args.name, args.preset, overrides, only,
                                 progress=sys.stderr.isatty()):
                return 0
        out = run_experiment(args.out, args.name, args.preset, overrides, only,
                             progress=sys.stderr.isatty())
        if _ends_with_book(args):
            _build_book(out)
    elif args.command == "sweep":
        from .sweep import run_sweep

        if launcher is not None:
            from .launch import sweep_on

            if not sweep_on(launcher, args.out, args.preset, overrides, args.one_at_a_time,
                            progress=sys.stderr.isatty()):
                return 0
        out = run_sweep(args.out, args.preset, overrides, args.one_at_a_time,
                        progress=sys.stderr.isatty())
        if _ends_with_book(args):
            _build_book(out)
    elif args.command == "run":
        from .pipeline import run_pipeline

        if launcher is not None:
            raise ParameterError("--launcher submits the runs of --seeds/--scales (or of a multi-run preset) "
                                 "as jobs; this command runs one run (-p seed=…): drop --launcher, or give --seeds")

        # Cell-by-cell progress bars only on a terminal; logs get the per-step lines.
        out = run_pipeline(args.out, args.preset, args.only, overrides,
                           progress=sys.stderr.isatty())
        if _ends_with_book(args):
            _build_book(out)
    else:
        _build_book(args.run_dir)
    return 0


def _ends_with_book(args) -> bool:
    """Whether the command ends by building its folder's book (a step re-run and a streamed trajectory do not)."""
    if args.command == "book":
        return True
    if args.command not in ("run", "sweep", "experiment") or args.no_book:
        return False
    return args.command != "run" or not (args.only or args.checkpoints)


def _build_book(folder) -> None:
    from .book import build_book

    print(f"book: {build_book(folder) / 'index.html'}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
