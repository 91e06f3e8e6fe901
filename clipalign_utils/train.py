"""Contrastive training of an open_clip CLIP on the embedded world, with dense early checkpoints.

Built from open_clip's own pieces — ``ClipLoss`` and open_clip_train's ``cosine_lr`` —
so one process on a CPU, one GPU, or many GPUs under ``torchrun`` run the same code
(under torchrun each rank takes its slice of every batch and ``ClipLoss`` gathers
features across ranks, as open_clip_train does).

Checkpoints keep open_clip_train's layout: ``checkpoints/epoch_<E>.pt`` holding
``{"epoch", "step", "name", "state_dict"}``, the latest also ``"optimizer"``, and the threads per process and
the processes that trained up to it (``"threads"``, ``"processes"``); ``open_clip.create_model(name,
pretrained=path)`` loads them. ``E`` is 0 for the untrained model and a fraction for
checkpoints inside the first pass over the data, where the dynamics of interest live. open_clip_train's
``--resume`` cannot continue one: the optimizer's parameter groups are this trainer's (:func:`adamw`) and
``epoch`` is a float.

Running the same command on a run directory that holds an interrupted run continues
from its last checkpoint; since every batch is a pure function of (seed, epoch, step),
the result equals an uninterrupted run's, on the same number of threads (their count sets the
reductions' order, so another count ends with other last bits: the training page says where it changed).
"""
from __future__ import annotations

import json
import os
import shutil
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from open_clip.loss import ClipLoss
from open_clip_train.scheduler import cosine_lr
from tqdm import tqdm  # plain text bars: no widget library needed in notebooks

from . import models
from .schedule import checkpoint_file, checkpoint_schedule, epoch_files, epoch_steps, set_of_epoch
from .data.world import CAPTION_TEMPLATES, SHAPES, WorldSample, make_items, make_pairs, training_world
from .errors import CheckpointError
from .io import atomic_write, write_text
from .layout import RunDir
from .record import RECORDED_BEFORE, TRAINING_KEYS, jsonable

# The parameters that determine the trained weights; a run directory remembers them (train_params.json).
TRAIN_KEYS = TRAINING_KEYS


def _atomic_torch_save(obj, path: Path) -> None:
    atomic_write(path, lambda tmp: torch.save(obj, tmp))


def _distributed() -> tuple[int, int]:
    """(rank, world_size); initialises the process group when launched by torchrun."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return (dist.get_rank(), world_size) if world_size > 1 else (0, 1)


class _Rows(torch.nn.Module):
    """An embedding lookup into a few rows of a larger table: token t reads row ``remap[t]`` of ``weight``."""

    def __init__(self, full: torch.nn.Embedding, rows: torch.Tensor):
        super().__init__()
        self.weight = torch.nn.Parameter(full.weight.detach()[rows].clone())
        remap = torch.full((full.num_embeddings,), -1, dtype=torch.long, device=rows.device)  # -1: not trained
        remap[rows] = torch.arange(len(rows), device=rows.device)
        self.remap = remap  # a plain tensor, not a buffer: DistributedDataParallel would broadcast it every step

    def forward(self, text: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.embedding(self.remap[text], self.weight)


class TrainedTokenRows:
    """The text tower's token embedding trained on the rows the world's captions can use.

    The embedding has a row for each of the tokenizer's 49,408 tokens; every caption of the world is made of a
    few dozen. A row no caption holds gets a zero gradient at every step, and AdamW (no weight decay on
    embeddings) then leaves it exactly as it was, so training only those rows gives the same weights while
    sparing each step the zeroing, filling and stepping of a 25 MB gradient (a tenth of a tiny model's CPU step).
    Checkpoints are unchanged: the full embedding, and full-size AdamW moments (zero in the untouched rows,
    as AdamW keeps them there).
    """

    def __init__(self, model: torch.nn.Module, token_ids: torch.Tensor):
        self.model, self.full = model, model.token_embedding
        self.rows = torch.unique(token_ids).to(self.full.weight.device)
        self.trained = _Rows(self.full, self.rows)
        model.token_embedding = self.trained  # same attribute, so the same place among the parameters

    @staticmethod
    def applies(model: torch.nn.Module) -> bool:
        return isinstance(getattr(model, "token_embedding", None), torch.nn.Embedding)

    def check(self, tokens: torch.Tensor) -> None:
        """Every token of a training set has a trained row (the world's captions are fixed templates)."""
        held = torch.unique(tokens)
        missing = held[self.trained.remap[held.to(self.rows.device)].cpu() < 0]
        if len(missing):
            raise RuntimeError(f"training captions hold tokens outside the world's vocabulary: {missing.tolist()[:5]}")

    def state_dict(self) -> dict:
        """The model's state dict with the full embedding (the trained rows written into it)."""
        with torch.no_grad():
            self.full.weight[self.rows] = self.trained.weight
        self.model.token_embedding = self.full
        try:
            return self.model.state_dict()
        finally:
            self.model.token_embedding = self.trained

    def _index(self, optimizer: torch.optim.Optimizer) -> int:
        params = [p for group in optimizer.param_groups for p in group["params"]]
        return next(i for i, p in enumerate(params) if p is self.trained.weight)

    def optimizer_state(self, optimizer: torch.optim.Optimizer) -> dict:
        """The optimizer's state dict with full-size moments for the embedding."""
        state = optimizer.state_dict()
        index = self._index(optimizer)
        if index in state["state"]:
            moments = dict(state["state"][index])  # a copy: the optimizer's own dict stays compact
            for key in ("exp_avg", "exp_avg_sq"):
                full = moments[key].new_zeros(self.full.weight.shape)
                full[self.rows] = moments[key]
                moments[key] = full
            state["state"] = {**state["state"], index: moments}
        return state

    def load_optimizer_state(self, optimizer: torch.optim.Optimizer, state: dict) -> None:
        index = self._index(optimizer)
        if index in state["state"]:
            moments = dict(state["state"][index])
            for key in ("exp_avg", "exp_avg_sq"):
                moments[key] = moments[key][self.rows.to(moments[key].device)]
            state = {**state, "state": {**state["state"], index: moments}}
        optimizer.load_state_dict(state)


def training_form(model: torch.nn.Module, tokenizer) -> TrainedTokenRows | None:
    """The model as the trainer steps it (its weights already loaded): the text tower over each batch's longest
    caption (9 of the tiny context's 16 positions: the same loss and gradients but for rounding, training
    about a quarter faster; benchmarks/RESULTS.md), and only the token rows the world's captions hold trained
    (the TrainedTokenRows returned, None where the model has no such embedding)."""
    models.encode_text_over_prompts(model)
    return TrainedTokenRows(model, world_vocabulary(tokenizer)) if TrainedTokenRows.applies(model) else None


def world_vocabulary(tokenizer) -> torch.Tensor:
    """Every token a caption of the world can hold (its templates and shape names, the padding)."""
    return torch.unique(tokenizer([template.format(shape) for template in CAPTION_TEMPLATES for shape in SHAPES]))


def tokenize_each_once(tokenizer, captions: list[str]) -> torch.Tensor:
    """The captions' tokens, each distinct caption through the tokenizer once (the world has 48)."""
    distinct, where = np.unique(np.asarray(captions, dtype=object), return_inverse=True)
    return tokenizer(list(distinct))[torch.from_numpy(where.reshape(-1))]


def adamw(model: torch.nn.Module, params: dict) -> torch.optim.AdamW:
    """The trainer's optimizer: AdamW with no weight decay on gains, biases, the logit scale (open_clip_train's
    rule: every parameter of fewer than two dimensions) and also the embeddings (token and positional), which
    open_clip_train decays: the rows of the token table no caption uses stay untouched (``TrainedTokenRows``).
    torch's betas and eps for every model, where open_clip_train gives a ViT (0.9, 0.98) and 1e-6."""
    decay = [p for nm, p in model.named_parameters() if p.ndim >= 2 and "embedding" not in nm]
    no_decay = [p for nm, p in model.named_parameters() if not (p.ndim >= 2 and "embedding" not in nm)]
    # fused: one kernel for all parameters instead of a dozen ops per tensor (a third of a CPU step). Its
    # rounding differs from the per-tensor loop's in the last bits (tests/test_resume.py bounds one step),
    # and a seed's run is still the same every time.
    return torch.optim.AdamW([{"params": decay, "weight_decay": params["weight_decay"]},
                              {"params": no_decay, "weight_decay": 0.0}], lr=params["lr"], fused=True)


def _saved_checkpoints(ckpt_dir: Path) -> list[Path]:
    """The run's ``epoch_<N>.pt`` files in epoch order."""
    return [path for _, path in epoch_files(ckpt_dir)]


def _drop_optimizer(path: Path) -> None:
    """Rewrite the checkpoint ``path`` (written by an earlier process) without its optimizer state, if it has
    one, as an uninterrupted run rewrites it: a plain state dict (a loaded one carries the modules' _metadata)."""
    state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    if state.pop("optimizer", None) is not None:
        _atomic_torch_save({**state, "state_dict": dict(state["state_dict"])}, path)


def _tidy_stopped_saves(ckpt_dir: Path) -> None:
    """What a training killed while saving leaves: a checkpoint's temporary folder (io.atomic_write), and the
    checkpoint before the latest still holding its optimizer state (the process died between saving the
    latest and rewriting that one without it). Both as an uninterrupted run would have left them."""
    for stale in ckpt_dir.glob(".epoch_*.tmp"):
        shutil.rmtree(stale, ignore_errors=True)
    saved = _saved_checkpoints(ckpt_dir)
    if len(saved) >= 2:
        try:
            _drop_optimizer(saved[-2])
        except Exception:  # unreadable: the resume point's own check names what is wrong with the run
            pass


def _resume_point(ckpt_dir: Path, params: dict) -> tuple[Path | None, int]:
    """The latest checkpoint of a matching earlier run and its step, or (None, -1)."""
    record = RunDir(ckpt_dir.parent).train_record
    saved = _saved_checkpoints(ckpt_dir)
    if not saved:
        return None, -1
    if record.exists():
        before = {**RECORDED_BEFORE, **json.loads(record.read_text())}
        now = {k: jsonable(params[k]) for k in TRAIN_KEYS}
        changed = [f"{k}: {before.get(k)!r} -> {now[k]!r}" for k in TRAIN_KEYS if before.get(k) != now[k]]
        if changed:
            raise CheckpointError(
                f"{ckpt_dir} holds a run trained with other parameters ({'; '.join(changed)}); "
                f"use another run_dir, or delete {ckpt_dir} to retrain")
    try:
        step = int(torch.load(saved[-1], map_location="cpu", weights_only=True)["step"])
    except Exception as error:  # any unreadable file: say which one
        raise CheckpointError(f"checkpoint {saved[-1]} is corrupt ({type(error).__name__}); "
                              f"delete it and run again to resume from the one before") from None
    return saved[-1], step


def epoch_order(params: dict, epoch: int) -> np.ndarray:
    """The order in which training's epoch ``epoch`` (from 1) visits its set's items: its batches are
    consecutive slices of ``batch_size``."""
    return np.random.default_rng([params["seed"], 99, epoch]).permutation(params["samples_per_epoch"])


def first_batches(params: dict, n_batches: int) -> WorldSample:
    """The images and captions of training's first ``n_batches`` batches (of one process), in order; at most
    the first epoch's."""
    if n_batches > epoch_steps(params):
        raise ValueError(f"{n_batches} batches: the first epoch has {epoch_steps(params)}")
    order = epoch_order(params, 1)[:n_batches * params["batch_size"]]
    return make_items(order, params["seed"], training_world(params), epoch=set_of_epoch(params, 1))


def train(run_dir: str | Path, params: dict, progress: bool = True) -> list[Path]:
    """Train (or resume) the run in `run_dir`; return the checkpoint paths in epoch order."""
    layout = RunDir(run_dir)
    ckpt_dir = layout.checkpoints
    rank, world_size = _distributed()
    device = models.resolve_device(params["device"])
    if world_size > 1 and device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    torch.manual_seed(params["seed"])

    world = training_world(params)
    name = models.open_clip_name(params["model"])
    model = models.create_model(params["model"], image_size=params["image_size"],
                                seed=params["seed"], device=device)
    tokenizer = models.tokenizer_for(name)
    preprocess = models.preprocess_config(model)
    mean = torch.tensor(preprocess["mean"], device=device).view(1, 3, 1, 1)
    std = torch.tensor(preprocess["std"], device=device).view(1, 3, 1, 1)

    batch_size, n = params["batch_size"], params["samples_per_epoch"]
    steps_per_epoch = epoch_steps(params)
    total_steps = steps_per_epoch * params["epochs"]
    schedule = checkpoint_schedule(steps_per_epoch, params["epochs"], params["early_checkpoints"])

    if layout.holds_others_checkpoints():
        # someone else's checkpoints (checkpoints.check_trainable says so first, and what to run instead):
        # resuming would rewrite them
        raise CheckpointError(f"{ckpt_dir} holds checkpoints clipalign did not train (no {layout.train_record.name} "
                              f"in {run_dir}): it resumes only its own runs, and leaves these as they are")
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    if rank == 0:
        _tidy_stopped_saves(ckpt_dir)
    resume_from, start_step = _resume_point(ckpt_dir, params)
    state = torch.load(resume_from, map_location=device, weights_only=True) if resume_from is not None else None
    if state is not None:
        model.load_state_dict(state["state_dict"])
    token_rows = training_form(model, tokenizer)

    optimizer = adamw(model, params)
    scheduler = cosine_lr(optimizer, params["lr"], params["warmup"], total_steps)
    loss_fn = ClipLoss(gather_with_grad=world_size > 1, rank=rank, world_size=world_size)

    if state is not None:
        if token_rows is not None:
            token_rows.load_optimizer_state(optimizer, state["optimizer"])
        else:
            optimizer.load_state_dict(state["optimizer"])
        # Keys read back from the file are new string objects, where an uninterrupted run's are the interned
        # literals the optimizer set: interned, the next checkpoints pickle byte for byte as an uninterrupted run's.
        for param, moments in list(optimizer.state.items()):
            optimizer.state[param] = {sys.intern(key): value for key, value in moments.items()}
        del state
    if rank == 0:
        # with the preset the run was made with: its steps resolve against it, even with record.json gone
        write_text(layout.train_record, json.dumps({**{k: jsonable(params[k]) for k in TRAIN_KEYS},
                                                    "preset": params.get("preset")}, indent=1))
        # open_clip_train's params.txt, so both kinds of run directory are read the same way.
        write_text(layout.params_txt, "".join(
            f"{k}: {v}\n" for k, v in sorted({**{k: params[k] for k in TRAIN_KEYS}, "model": name,
                                             "force_image_size": params["image_size"]}.items())))
    if world_size > 1:
        model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)

    # The one checkpoint that holds optimizer state (the latest saved; the one resumed from), and its contents
    # without that state once this process saved it (kept to rewrite it without reading it back).
    holder, held = resume_from, None

    def save(step: int, epoch: float) -> None:
        nonlocal holder, held
        if rank != 0:
            return
        bare = model.module if world_size > 1 else model
        path = ckpt_dir / checkpoint_file(epoch)
        weights = token_rows.state_dict() if token_rows is not None else bare.state_dict()
        moments = token_rows.optimizer_state(optimizer) if token_rows is not None else optimizer.state_dict()
        checkpoint = {"epoch": epoch, "step": step, "name": name, "state_dict": weights,
                      "threads": torch.get_num_threads(), "processes": world_size}
        _atomic_torch_save({**checkpoint, "optimizer": moments}, path)
        # Only the latest checkpoint keeps the optimizer state (what resuming needs): it is twice the
        # weights' size, and every checkpoint still loads with open_clip without it.
        if holder is not None and holder != path and holder.exists():
            if held is None:  # resumed: written by an earlier process, perhaps already without the state
                _drop_optimizer(holder)
            else:
                _atomic_torch_save(held, holder)
        # A copy: the state dict's tensors are the live weights, which the next steps change.
        holder, held = path, {**checkpoint, "state_dict": {k: v.detach().clone() for k, v in weights.items()}}

    if start_step < 0:
        save(0, 0.0)
        start_step = 0

    def epoch_data(epoch: int, workers: int = 1):
        # Fixed pairs repeat every epoch; fresh_data draws a new set per epoch, as web-scale CLIP sees.
        return make_pairs(n, params["seed"], world, epoch=set_of_epoch(params, epoch), workers=workers)

    losses = []
    log_path = layout.train_log
    if start_step > 0 and log_path.exists():
        losses = [line for line in log_path.read_text().splitlines()[1:]
                  if int(line.split(",")[0]) <= start_step]
    first_epoch = start_step // steps_per_epoch + 1
    # One line per epoch: an executed notebook (and the book) keeps every refresh of the bar.
    bar = tqdm(total=total_steps, initial=start_step, desc="train", disable=not progress or rank != 0,
               miniters=steps_per_epoch, mininterval=0)
    tokens = None
    with ThreadPoolExecutor(max_workers=1) as prefetch:
        # The first set is awaited with the cores idle: drawn by as many threads as training uses. The next
        # ones are drawn by one thread beside training.
        upcoming = prefetch.submit(epoch_data, first_epoch, torch.get_num_threads())
        for epoch in range(first_epoch, params["epochs"] + 1):
            data = upcoming.result()
            # Every caption tokenized once per set (here: torch ops on the prefetch thread would start a
            # second thread pool beside training's), not once per batch and epoch.
            if tokens is None or params["fresh_data"]:
                tokens = tokenize_each_once(tokenizer, data.captions)
                if token_rows is not None:
                    token_rows.check(tokens)
            if epoch < params["epochs"] and params["fresh_data"]:
                upcoming = prefetch.submit(epoch_data, epoch + 1)
            elif epoch < params["epochs"]:
                upcoming = prefetch.submit(lambda d=data: d)
            order = epoch_order(params, epoch)
            model.train()
            for step_in_epoch in range(steps_per_epoch):
                step = (epoch - 1) * steps_per_epoch + step_in_epoch
                if step < start_step:
                    continue
                batch = order[step_in_epoch * batch_size:(step_in_epoch + 1) * batch_size]
                batch = batch[rank::world_size]
                images = torch.from_numpy(data.images[batch]).to(device).permute(0, 3, 1, 2).float() / 255
                images = (images - mean) / std
                texts = tokens[torch.from_numpy(batch)].to(device)
                scheduler(step)
                out = model(images, texts)
                loss = loss_fn(out["image_features"], out["text_features"], out["logit_scale"])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                with torch.no_grad():  # open_clip_train clamps the temperature likewise
                    (model.module if world_size > 1 else model).logit_scale.clamp_(0, np.log(100))
                losses.append(f"{step + 1},{(step + 1) / steps_per_epoch:.4f},{loss.item():.6f},"
                              f"{optimizer.param_groups[0]['lr']:.6g}")
                bar.set_postfix(epoch=f"{(step + 1) / steps_per_epoch:.2f}", loss=f"{loss.item():.3f}", refresh=False)
                bar.update(1)
                if step + 1 in schedule:
                    if rank == 0:  # first: a checkpoint never exists without the log's lines up to it
                        write_text(log_path, "step,epoch,loss,lr\n" + "\n".join(losses) + "\n")
                    save(step + 1, schedule[step + 1])
    bar.close()
    return _saved_checkpoints(ckpt_dir)
