"""A trajectory analysed from its source (``clipalign run --out DIR --checkpoints SOURCE``), one checkpoint
at a time with bounded disk.

Before anything is fetched the run directory gets its manifest (``RUN_DIR/source.json``: the source, the
architecture, each checkpoint's epoch, samples seen and source identity) and a ``params.txt`` naming the
model, so the run reads like any open_clip_train run. Then, per checkpoint: fetch it (``sources``: progress
bar, size and checksum verified), measure every requested step on it alone, which fills the embedding
cache (keyed on the checkpoint's source identity, so a later pass needs no weights), mark it done
(``RUN_DIR/cache/streamed/<checkpoint>.json``) and delete its weights unless ``--keep-weights`` keeps them
(the manifest's ``kept_weights``: what any command kept stays).
Last, the steps' notebooks run over the whole trajectory from the cache, as for any run (and, without
``--only``, the synthesis), then the book's chapter on real trajectories (``10_real_clip``) for this run.

A command run again resumes at the first checkpoint not marked done; nothing already measured is fetched
again.
"""
from __future__ import annotations

import json
import shutil
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Mapping, Sequence

from tqdm import tqdm

from .. import record, registry
from ..checkpoints import Checkpoint, Run, discover_run
from ..data.cache import source_hash
from ..errors import CheckpointError, ParameterError, shell_arg
from ..io import checkpoint_format_problem, write_json
from ..layout import RunDir
from ..sources import RemoteCheckpoint, Source, at_epoch, format_epochs, open_source, parse_epochs
from .measure import measure_here
from .pipeline import (check_steps, execute, for_step, measured_steps, only_steps, run_page, split_given,
                       step_notebooks)

REAL_CLIP_PAGE = "10_real_clip"  # registered by clipalign_utils/steps/real_clip
# The streamed run's options as that page's parameters (it analyses a source itself on Colab).
NOTEBOOK_OPTIONS = ("checkpoints", "at_epochs", "keep_weights", "only")


def parse_keep(text: str | None, wanted: Sequence[RemoteCheckpoint]) -> set[str]:
    """``--keep-weights``: none (default), all, or epochs separated by commas → the checkpoint names kept."""
    text = (text or "none").strip()
    if text == "none":
        return set()
    if text == "all":
        return {c.name for c in wanted}
    try:
        epochs = parse_epochs(text, "--keep-weights")
    except ParameterError:
        raise ParameterError(f"--keep-weights {text!r}: give none, all, or epochs separated by commas "
                             f"(1,2,4)") from None
    kept = {e: at_epoch(wanted, e) for e in epochs}  # matched as --at-epochs picks them
    unknown = [e for e, checkpoint in kept.items() if checkpoint is None]
    if unknown:
        raise ParameterError(f"--keep-weights {format_epochs(unknown)}: not among the epochs analysed "
                             f"({format_epochs([c.epoch for c in wanted])})")
    return {checkpoint.name for checkpoint in kept.values()}


def _only(only: str | None) -> list[str] | None:
    """``--only``'s step names (None: every step), each an analysis step or the synthesis."""
    if only is None:
        return None
    names = only_steps(only)
    allowed = registry.analyses_and_synthesis()
    wrong = [name for name in names if name not in allowed]
    if wrong:
        raise ParameterError(f"--only {', '.join(wrong)}: a streamed run measures analysis steps and may "
                             f"synthesise them ({', '.join(allowed)})")
    return names


def streamed_steps(only: str | None) -> list[str]:
    """The steps measured checkpoint by checkpoint: ``only``'s analysis steps, else every analysis step;
    training is not one of them."""
    _only(only)
    return measured_steps(only)


def executed_steps(only: str | None) -> list[str]:
    """The notebooks' pass after the checkpoints are measured: the measured steps, then the synthesis for a
    whole run (no ``only``) or when ``only`` names it."""
    names, synthesis = _only(only), registry.synthesis().name
    return streamed_steps(only) + ([synthesis] if names is None or synthesis in names else [])


def _marker(layout: RunDir, checkpoint: RemoteCheckpoint) -> Path:
    return layout.cache / "streamed" / f"{checkpoint.name}.json"


def _marked_identity_and_done(layout: RunDir, checkpoint: RemoteCheckpoint) -> tuple[dict | None, set[str]]:
    """(the identity of the file the last command measured under ``checkpoint``'s name, or None; the steps whose
    measurement of ``checkpoint`` is cached: those, if it was the same source file)."""
    path = _marker(layout, checkpoint)
    if not path.exists():
        return None, set()
    marked = json.loads(path.read_text())
    identity = marked.get("identity")
    # measured by this code: the embedding cache is keyed by the package's source, so another version's entries
    # are not there to read (a review: after any edit the weights, deleted once measured, were not fetched again)
    same = identity == checkpoint.identity() and marked.get("source") == source_hash()
    return identity, set(marked["steps"]) if same else set()


def weight_files(layout: RunDir) -> list[Path]:
    """The checkpoint weights on disk in the run directory (complete files and partial fetches)."""
    return sorted(layout.checkpoints.glob("epoch_*.pt")) + sorted(layout.checkpoints.glob("epoch_*.pt.part"))


@contextmanager
def _manifest_lock(layout: RunDir):
    """The manifest is read, changed and written by each torchrun rank of a shared-out stream: one at a time."""
    import fcntl

    layout.path.mkdir(parents=True, exist_ok=True)
    with open(layout.path / ".source.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _check_disk(layout: RunDir, keep: set[str], fetching: str, others: set[str] = frozenset(),
                earlier: set[str] = frozenset()) -> None:
    """Every fetch first counts the weights on disk (recorded in the manifest's ``fetches``): the kept ones,
    the one being fetched and those on disk before the command began (``earlier``: an earlier command kept
    them), no more (``others``: the checkpoints other torchrun ranks fetch, theirs to count)."""
    with _manifest_lock(layout):
        on_disk = weight_files(layout)
        extra = [p.name for p in on_disk if p.name.split(".pt")[0] not in keep | {fetching} | others
                 and p.name not in earlier]
        if extra:
            raise CheckpointError(f"{layout.checkpoints} holds {', '.join(extra)} beyond what --keep-weights "
                                  f"allows: delete them, or keep them (their epochs in --at-epochs and "
                                  f"--keep-weights)")
        manifest = layout.source_manifest()
        mine = [p for p in on_disk if p.name.split(".pt")[0] not in others]
        manifest.setdefault("fetches", []).append({"checkpoint": fetching, "weights_on_disk": len(mine)})
        write_json(layout.source_record, manifest)


def _write_manifest(layout: RunDir, source: Source, model: str, wanted: list[RemoteCheckpoint],
                    keep: set[str] = frozenset()) -> None:
    with _manifest_lock(layout):
        _write_manifest_locked(layout, source, model, wanted, keep)


def _write_manifest_locked(layout: RunDir, source: Source, model: str, wanted: list[RemoteCheckpoint],
                           keep: set[str] = frozenset()) -> None:
    previous = _check_same_source(layout, source)
    known = {c["name"]: c for c in (previous or {}).get("checkpoints", [])}
    for checkpoint in wanted:
        known[checkpoint.name] = {"name": checkpoint.name, "epoch": checkpoint.epoch,
                                  "samples_seen": checkpoint.samples_seen, "local": not source.remote,
                                  **checkpoint.identity()}
    write_json(layout.source_record, {**source.describe(), "model": model,
                                      "checkpoints": sorted(known.values(), key=lambda c: c["epoch"]),
                                      "fetches": (previous or {}).get("fetches", []),
                                      # every command's --keep-weights: a later command leaves those weights be
                                      "kept_weights": sorted(set((previous or {}).get("kept_weights", [])) | keep)})
    if not layout.params_txt.exists():  # the model, and how the source's own params.txt says it was built
        layout.params_txt.write_text("".join(f"{k}: {v}\n" for k, v in {"model": model, **source.build}.items()))


def _check_same_source(layout: RunDir, source: Source) -> dict | None:
    """The folder's manifest (None: no trajectory streamed there yet), if it names ``source``."""
    previous = layout.source_manifest()
    if previous is not None and not source.same_as(previous["source"]):
        raise ParameterError(f"{layout.source_record} analyses {previous['source']}, not {source.spec}: "
                             f"use another --out")
    return previous


def _check_synthesis_inputs(run_dir: Path, only: str | None) -> None:
    """``--only`` naming the synthesis without a step whose table it needs, which the run does not hold yet:
    refused here, not after every checkpoint is fetched and measured."""
    synthesis = registry.synthesis().name
    executed = executed_steps(only)
    if synthesis not in executed:
        return
    missing = [step.name for step in registry.steps() if step.summary is not None and step.summary.required
               and step.name not in executed and not RunDir(run_dir).table(step.tables[0].name).exists()]
    if missing:
        raise ParameterError(f"--only {only}: the synthesis ({synthesis}) needs the {', '.join(missing)} "
                             f"step's table, which {shell_arg(run_dir)} does not hold: add "
                             f"{','.join(missing)} to --only")


def _check_checkpoint_files(spec: str, wanted: list[RemoteCheckpoint]) -> None:
    """A folder's checkpoints are each at least a file torch.save writes: a damaged one is refused before the
    evaluation sets are drawn, not after (an audit waited 20 s for it). Their framing alone is read (a
    millisecond for a 600 MB file); a file framed right that does not load still fails as it is loaded."""
    damaged = [(Path(c.location), problem) for c in wanted
               if (problem := checkpoint_format_problem(c.location)) is not None]
    if damaged:
        (first, problem), *others = damaged
        named = ", ".join(path.name for path, _ in others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3
                                                                    else "")
        also = f" (so are {named})" if others else ""
        raise CheckpointError(f"--checkpoints {shell_arg(spec)}: {first} is not a PyTorch checkpoint{also}: {problem}; "
                              f"save or fetch it again, or leave it out (--at-epochs)")


def run_streamed(out: str | Path, spec: str, at_epochs: str | None = None, keep_weights: str | None = None,
                 only: str | None = None, preset: str | None = None, overrides: Mapping | None = None,
                 progress: bool = True, share: tuple[int, int] | None = None) -> Path:
    """Analyse the trajectory ``spec`` names (``sources.open_source``) into ``out``; return the run directory.
    Every argument is checked before any folder is made or anything fetched. ``share`` (rank, world size):
    a torchrun rank's part only, every world-size-th checkpoint from ``rank`` fetched and measured into the
    cache, no notebook executed (rank 0 then runs the whole command, which finds them done)."""
    source = open_source(spec)
    wanted = source.checkpoints(parse_epochs(at_epochs))
    keep = parse_keep(keep_weights, wanted)
    steps = streamed_steps(only)
    run_dir = Path(out).resolve()
    _check_same_source(RunDir(run_dir), source)  # before its model is held against the other source's
    preset = record.run_preset(run_dir, preset)
    given, extra = split_given(dict(overrides or {}), step_notebooks(executed_steps(only)) + [REAL_CLIP_PAGE],
                               preset)
    # A re-run of a trajectory streamed before knows its architecture from the run's manifest (which a first
    # command's -p model may have set against the source's own name: that choice stands).
    model = given.get("model") or (RunDir(run_dir).source_manifest() or {}).get("model") or source.architecture
    if not model:
        raise ParameterError(f"--checkpoints {spec}: the source does not name its architecture: "
                             f"pass -p model=<open_clip name> (e.g. -p model=ViT-B-32)")
    # The run's record names the trajectory's architecture, not the preset's training scale.
    resolved = record.resolve(run_dir, preset, {**given, "model": model})  # before any folder is made
    # Each step measures with what it was given before unless given again (a re-run keeps its datasets).
    params = {step: for_step(run_dir, step, resolved).params for step in steps}
    check_steps(run_dir, [*executed_steps(only), REAL_CLIP_PAGE], resolved)  # applied as each page runs
    _check_synthesis_inputs(run_dir, only)
    if not source.remote:
        _check_checkpoint_files(spec, wanted)
    # The page renders this run: the source options are not passed on (the page would analyse a source).
    page_extra = {k: v for k, v in extra.items() if k not in NOTEBOOK_OPTIONS}
    layout = RunDir(run_dir)
    existed = run_dir.is_dir()
    fresh = not existed or not any(run_dir.iterdir())
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        _write_manifest(layout, source, model, wanted, keep)
        _measure_each(source, wanted if share is None else wanted[share[0]::share[1]], wanted, steps, params,
                      keep, layout, run_dir, progress)
    except BaseException:
        # A first attempt that measured nothing (a wrong -p model, a damaged file, an interrupt) leaves no
        # folder that reads as a streamed run: its manifest and params.txt would hold the attempt's model
        # against the next one. Not under torchrun: the other ranks share the folder.
        if fresh and share is None and not list((layout.cache / "streamed").glob("*.json")):
            shutil.rmtree(run_dir, ignore_errors=True)
            if existed:  # it was an empty folder of the user's
                run_dir.mkdir()
        raise
    if share is not None:
        return run_dir
    _check_source_unchanged()
    execute(run_dir, executed_steps(only), resolved, extra=extra, progress=progress)
    # The book's chapter on real trajectories, rendered from this run (a build folder holding it shows it).
    run_page(REAL_CLIP_PAGE, run_dir, for_step(run_dir, REAL_CLIP_PAGE, resolved), page_extra, progress,
             label=f"page {REAL_CLIP_PAGE}")
    return run_dir


def _check_source_unchanged() -> None:
    """The pages read what was just measured from the embedding cache, keyed by the package's source as this
    command read it as it started (``source_hash``, cached): a checkout changed since (a pull, an editor's save)
    would have every page's kernel, which reads the source anew, encode each checkpoint again with other code,
    or fail on the weights deleted once measured (an audit saw a page's kernel encode them all again)."""
    now = getattr(source_hash, "__wrapped__", source_hash)()
    if now != source_hash():
        package = Path(__file__).resolve().parents[1]
        raise CheckpointError(f"the clipalign package's source ({package}) changed while this command measured its "
                              f"checkpoints: its pages would measure each one again with other code; run the same "
                              f"command again once the source is as you want it (it measures under that code)")


def _measure_each(source: Source, mine: list[RemoteCheckpoint], wanted: list[RemoteCheckpoint], steps: list[str],
                  params: Mapping[str, dict], keep: set[str], layout: RunDir, run_dir: Path,
                  progress: bool) -> None:
    """Fetch (where remote), measure and mark each of ``mine`` in turn, deleting the weights this command
    fetched that --keep-weights does not keep (``wanted``: every checkpoint of the command, the other ranks'
    ones counted as theirs). A checkpoint measured before whose weights --keep-weights keeps is fetched to
    be kept (interpolation reads both ends' weights); weights an earlier command kept stay."""
    others = {c.name for c in wanted} - {c.name for c in mine}
    kept_before = {f"{name}.pt" for name in (layout.source_manifest() or {}).get("kept_weights", [])} - \
        {f"{name}.pt" for name in keep}
    earlier = {p.name for p in weight_files(layout)} & kept_before
    # the run as the notebooks' pass will read it (its params.txt: the model and how it is built), so that
    # what each checkpoint measures here is what that pass finds in the cache
    run = discover_run(run_dir)
    for checkpoint in tqdm(mine, desc="checkpoints", disable=not progress):
        marked, done = _marked_identity_and_done(layout, checkpoint)
        todo = [s for s in steps if s not in done]
        local = layout.checkpoints / f"{checkpoint.name}.pt"
        if source.remote and (todo or checkpoint.name in keep):
            if local.exists() and ((checkpoint.size is not None and local.stat().st_size != checkpoint.size)
                                   or (marked is not None and marked != checkpoint.identity())):
                local.unlink()  # kept from an earlier fetch of another file (the source's size or version changed)
            if not local.exists():
                _check_disk(layout, keep, checkpoint.name, others, earlier)
                source.fetch(checkpoint, local, progress=progress)
        if todo:
            path = local if source.remote else Path(checkpoint.location)
            try:
                _measure_one(replace(run, checkpoints=[Checkpoint(path, checkpoint.epoch, checkpoint.identity()
                                                                  if source.remote else None)]),
                             todo, params, layout, checkpoint, done)
            except CheckpointError as error:
                if not source.remote:
                    raise
                # a fetched file that does not load is not kept to fail again: fetch it anew; the message names
                # where it came from (the local copy it names is gone)
                local.unlink(missing_ok=True)
                message = str(error).replace(f"checkpoint {local}", f"{checkpoint.location} (fetched whole, "
                                                                    f"its copy deleted)")
                raise CheckpointError(message) from None
        if source.remote and checkpoint.name not in keep and local.name not in earlier:
            local.unlink(missing_ok=True)


def _measure_one(run: Run, steps: list[str], params: Mapping[str, dict], layout: RunDir, remote: RemoteCheckpoint,
                 done: set[str]) -> None:
    """Measure each step on ``run``'s one checkpoint alone: its tables are dropped, its embeddings and maps
    stay in the cache for the notebooks' pass over the whole trajectory. ``done``: the steps measured
    before (its marker), extended as each finishes."""
    for step in steps:
        measure_here(step, run, params[step])
        done.add(step)
        write_json(_marker(layout, remote), {"identity": remote.identity(), "source": source_hash(),
                                             "steps": sorted(done)})
