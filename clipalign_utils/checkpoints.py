"""Find the checkpoints of a training run: ours, or any run written by open_clip_train.

Both write ``<run_dir>/checkpoints/epoch_<E>.pt`` and ``<run_dir>/params.txt``
("key: value" lines naming the ``model`` and, when set, ``force_image_size``), so one
reader serves both. For open_clip_train, ``run_dir`` is ``<logs>/<name>``, and its params.txt also records
how the model was built (:func:`model_options`).
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

from . import model_names  # names only: open_clip is imported for a name not ours
from .errors import CheckpointError, shell_arg
from .layout import RunDir, image_size_of, read_params_txt
from .schedule import CHECKPOINT_FILE, checkpoint_file, checkpoint_schedule, epoch_files, epoch_steps


@dataclass(frozen=True)
class Checkpoint:
    """One checkpoint: its weights' file (absent once a streamed run has measured it), its epoch and, for a
    checkpoint fetched from a source, that source's identity (what the embedding cache is keyed on)."""

    path: Path
    epoch: float
    identity: dict | None = field(default=None, compare=False)

    @property
    def name(self) -> str:
        return self.path.stem


_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


# What params.txt records of how open_clip_train built the model (read by image_size_of and model_options).
MODEL_BUILD_KEYS = ("force_image_size", "force_quick_gelu", "force_custom_text", "force_context_length",
                    "image_mean", "image_std", "siglip")


def model_options(params: Mapping[str, str]) -> dict:
    """How open_clip_train built the model, from its params.txt, as ``open_clip.create_model`` keywords
    (its main.py passes each of these): a checkpoint loads only into a model built the same way, and
    ``force_context_length`` and ``force_quick_gelu`` would otherwise load into the wrong model silently
    (open_clip resizes a position embedding that does not fit). Only what differs from the defaults."""
    options: dict = {}
    for flag in ("force_quick_gelu", "force_custom_text"):
        if params.get(flag) == "True":
            options[flag] = True
    length = re.findall(r"\d+", params.get("force_context_length", "") or "")
    if length:
        options["force_context_length"] = int(length[0])
    # --image-mean/--image-std: create_model takes them as the preprocessing the model holds (the encoder's)
    preprocess = {key: tuple(float(v) for v in _NUMBER.findall(params.get(f"image_{key}", "") or ""))
                  for key in ("mean", "std")}
    if any(preprocess.values()):
        options["force_preprocess_cfg"] = {k: v for k, v in preprocess.items() if v}
    if params.get("siglip") == "True":  # main.py: SigLIP's loss has a learned bias, which the model then holds
        options.update(init_logit_scale=math.log(10), init_logit_bias=-10.0)
    return options


@dataclass
class Run:
    run_dir: Path
    model_name: str
    image_size: int | None
    checkpoints: list[Checkpoint]
    params: dict = field(default_factory=dict)
    model_options: dict = field(default_factory=dict)  # open_clip.create_model keywords (model_options)

    @property
    def layout(self) -> RunDir:
        """The run's directory: where its tables, figures and embedding cache go."""
        return RunDir(self.run_dir)


def no_checkpoints(folder: Path) -> str:
    """Why ``folder`` gives no trajectory: it holds no ``epoch_<N>.pt``, and what it holds instead where that
    is a known other form (open_clip_train's sharded ``--fsdp`` checkpoints, ``epoch_<N>/`` folders of
    torch.distributed.checkpoint shards with their ``.metadata``; ``epoch_latest.pt`` alone)."""
    sharded = sorted(p.name for p in folder.iterdir() if p.is_dir() and re.fullmatch(r"epoch_\d+", p.name)
                     and (p / ".metadata").is_file())
    if sharded:
        return (f"{folder} holds no epoch_<N>.pt checkpoints but sharded ones ({', '.join(sharded[:3])}"
                f"{', …' if len(sharded) > 3 else ''}: torch.distributed.checkpoint folders, as open_clip_train's "
                f"--fsdp saves them): gather each into one epoch_<N>.pt holding its state_dict first")
    if (folder / "epoch_latest.pt").is_file():
        return (f"{folder} holds no epoch_<N>.pt checkpoints, only epoch_latest.pt (open_clip_train's "
                f"--save-most-recent): a trajectory needs the numbered ones (--save-frequency 1)")
    return f"{folder} holds no epoch_<N>.pt checkpoints"


def _manifest_checkpoints(run_dir: Path, manifest: dict) -> list[Checkpoint]:
    """A streamed run's checkpoints: local ones at their source path, fetched ones at RUN_DIR/checkpoints
    (their weights may be gone: the cache holds what they measured) with their source identity."""
    checkpoints = []
    for entry in manifest["checkpoints"]:
        if entry.get("local"):
            checkpoints.append(Checkpoint(Path(entry["source"]), float(entry["epoch"])))
        else:
            identity = {k: entry.get(k) for k in ("source", "size", "sha256")}
            if entry.get("version") is not None:  # as RemoteCheckpoint.identity() gives it
                identity["version"] = entry["version"]
            checkpoints.append(Checkpoint(RunDir(run_dir).checkpoints / f"{entry['name']}.pt", float(entry["epoch"]),
                                          identity))
    return sorted(checkpoints, key=lambda c: c.epoch)


def run_files(run_dir: Path, model: str | None = None) -> tuple[list[Checkpoint], dict, str, bool]:
    """A run folder's checkpoints, its params.txt values, its model name as written and whether it is a
    streamed run, without importing open_clip or torch (:func:`discover_run` makes them a :class:`Run`)."""
    return _run_files(Path(run_dir), model)


def _run_files(run_dir: Path, model: str | None) -> tuple[list[Checkpoint], dict, str, bool]:
    """A run folder's checkpoints, its params.txt (or manifest) values, its model name as written and
    whether it is a streamed run; :func:`discover_run`'s errors for a folder that is not a run."""
    layout = RunDir(run_dir)
    manifest = layout.source_manifest() if run_dir.is_dir() else None
    if manifest is not None:
        # params.txt: what the source's own params.txt said of the model's construction (stream.py copies it)
        params = {**(read_params_txt(layout.params_txt) if layout.params_txt.exists() else {}),
                  "model": manifest["model"]}
        return _manifest_checkpoints(run_dir, manifest), params, model or manifest["model"], True
    if run_dir.exists() and not run_dir.is_dir():
        raise CheckpointError(f"run_dir {run_dir} is a file: point run_dir at a training run's folder (ours, or "
                              f"open_clip_train's <logs>/<name>)")
    if not run_dir.is_dir():
        raise CheckpointError(f"run_dir {run_dir} does not exist: run the train step first "
                              f"(clipalign run --only train --out {shell_arg(run_dir)})")
    if not layout.checkpoints.is_dir():
        if holds_epoch_files(run_dir):
            raise CheckpointError(f"run_dir {run_dir} holds epoch_<N>.pt files itself: point run_dir at the run's "
                                  f"folder, the one holding checkpoints/ ({run_dir.absolute().parent})")
        tables = " (its tables only: a step that embeds needs the weights; copy its checkpoints/ back)" if \
            layout.metrics.is_dir() else ""
        raise CheckpointError(f"run_dir {run_dir} has no checkpoints/ folder{tables}: point run_dir (--out) at "
                              f"a training run (ours, or open_clip_train's <logs>/<name>)")
    checkpoints = _epoch_checkpoints(layout.checkpoints)
    if not checkpoints:
        raise CheckpointError(no_checkpoints(layout.checkpoints))
    stopped = unfinished_training(run_dir, checkpoints)
    if stopped:
        raise CheckpointError(f"{stopped}: an analysis would take it for the final checkpoint; finish the training "
                              f"first (clipalign run --out {shell_arg(run_dir)} --only train resumes it)")
    missing = missing_checkpoints(run_dir, checkpoints)
    if missing:
        raise CheckpointError(f"{layout.checkpoints} lacks {', '.join(missing)}, which its training saved "
                              f"(train_params.json): a step would measure the run without it, beside steps that "
                              f"measured it; put it back, or delete {layout.checkpoints} and train the run again")
    params = read_params_txt(layout.params_txt) if layout.params_txt.exists() else {}
    name = model or params.get("model")
    if not name:
        raise CheckpointError(f"{layout.params_txt} is missing, so the model is unknown: "
                              f"pass the parameter model (e.g. model=ViT-B-32)")
    return checkpoints, params, name, False


def _epoch_checkpoints(folder: Path) -> list[Checkpoint]:
    """The ``epoch_<N>.pt`` files in ``folder`` (none if it is missing), in epoch order."""
    return [Checkpoint(path, epoch) for epoch, path in epoch_files(folder)]


def unfinished_training(run_dir: Path, checkpoints: Sequence[Checkpoint]) -> str | None:
    """For one of this project's trainings (its train_params.json) whose last checkpoint falls short of its
    ``epochs`` (a stopped command, a killed job): a sentence saying where it stopped; else None. open_clip_train's
    runs are measured as they stand (a run in progress is theirs to analyse)."""
    record = RunDir(run_dir).train_record
    if not record.is_file() or not checkpoints:
        return None
    try:
        epochs = float(json.loads(record.read_text())["epochs"])
    except (ValueError, KeyError, TypeError):
        return None  # not a record this check can read: the training page's own checks say what is wrong
    last = checkpoints[-1].epoch
    if last >= epochs - 1e-9:
        return None
    return f"{run_dir}: its training stopped at epoch {last:g} of {epochs:g} (train_params.json)"


def missing_checkpoints(run_dir: Path, checkpoints: Sequence[Checkpoint]) -> list[str]:
    """For one of this project's trainings, the checkpoint files its schedule saved (``schedule``, from
    train_params.json) that are gone: a file deleted by hand. [] for other runs, or a record this cannot read."""
    record = RunDir(run_dir).train_record
    if not record.is_file():
        return []
    try:
        params = json.loads(record.read_text())
        saved = checkpoint_schedule(epoch_steps(params), int(params["epochs"]),
                                    tuple(float(f) for f in params.get("early_checkpoints", ())))
    except (ValueError, KeyError, TypeError, ZeroDivisionError):
        return []  # the training page's own checks say what is wrong with the record
    present = {checkpoint_file(c.epoch) for c in checkpoints}
    return [name for name in dict.fromkeys(map(checkpoint_file, saved.values())) if name not in present]


def check_run(run_dir: str | Path, model: str | None = None) -> None:
    """:func:`discover_run`'s checks of the folder alone, without importing open_clip or torch: what the
    command line asks before it starts a kernel."""
    _run_files(Path(run_dir), model)


def discover_run(run_dir: str | Path, model: str | None = None) -> Run:
    """The run's checkpoints in epoch order with its model name and input size.

    `model` overrides the name in params.txt (needed when a run has no params.txt).
    ``epoch_latest.pt`` (open_clip_train's --save-most-recent) duplicates a numbered
    checkpoint and is skipped. A streamed run's checkpoints are its manifest's (``RunDir.source_manifest``).
    """
    run_dir = Path(run_dir)
    checkpoints, params, name, _ = _run_files(run_dir, model)
    return Run(run_dir, model_names.open_clip_name(name), image_size_of(params), checkpoints, params,
               model_options(params))


def holds_epoch_files(folder: Path) -> bool:
    """Whether ``folder`` holds ``epoch_<N>.pt`` files itself: a run's checkpoints/ folder, given for the run."""
    return folder.is_dir() and any(CHECKPOINT_FILE.match(p.name) for p in folder.iterdir())


def trainable_folder(run_dir: Path) -> bool:
    """Whether a notebook opened alone may train its run into ``run_dir``: a folder that is missing, empty or
    one of this project's trainings (its training record there: one stopped before its first checkpoint), not
    someone's other folder (a checkpoints/ folder given for its run, open_clip_train's logs, a streamed run,
    a home directory)."""
    if not run_dir.exists():
        return True
    return run_dir.is_dir() and (not any(run_dir.iterdir()) or RunDir(run_dir).train_record.exists())


def check_trainable(run_dir: str | Path) -> None:
    """Training into ``run_dir`` may resume only a training of this project's (its ``train_params.json``):
    checkpoints without it are someone else's (open_clip_train's logs, a copy of a downloaded trajectory), and
    resuming would rewrite them (the trainer keeps optimizer state in the latest checkpoint only). One line,
    before any file is touched."""
    layout = RunDir(run_dir)
    if layout.holds_others_checkpoints():
        from . import registry

        raise CheckpointError(f"{layout.checkpoints} holds checkpoints clipalign did not train (no "
                              f"{layout.train_record.name} in {run_dir}): it trains and resumes only its own runs, "
                              f"and leaves these as they are. Analyse them with clipalign run --out {shell_arg(run_dir)} "
                              f"--only {','.join(registry.analyses_and_synthesis())}, or train into a new folder")


def discover_or_train(run_dir: str | Path, params: dict, auto_train: bool = True, model: str | None = None) -> Run:
    """:func:`discover_run`, training the run first when `run_dir` holds none and `auto_train` is set.

    For a notebook opened alone (in Colab, say): `params` are the notebook's resolved parameters
    (``config.resolve``), whose preset and world settings say what to train. Only a missing or empty
    `run_dir`, or one of this project's runs (:func:`trainable_folder`), is trained into, and only one of this
    project's model scales; anything else (or ``auto_train=False``, as ``clipalign run`` passes) raises
    :func:`discover_run`'s error.
    """
    layout = RunDir(run_dir)
    found = _epoch_checkpoints(layout.checkpoints)
    stopped = unfinished_training(Path(run_dir), found) if found and layout.source_manifest() is None else None
    if (auto_train and (not found or stopped) and trainable_folder(Path(run_dir))
            and params.get("model") in model_names.SCALES):
        from . import models, train  # training code only when a notebook must train its own run

        where = f"{stopped}: resuming it" if stopped else (f"{run_dir} holds no checkpoints: training the "
                                                            f"{params['preset']} preset's {params['model']} model")
        print(f"{where} there first, on {models.resolve_device(params['device']).type} (auto_train=False stops "
              f"here instead)", flush=True)
        train.train(run_dir, params, progress=True)
    return discover_run(run_dir, model)
