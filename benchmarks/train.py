"""Training throughput against the machine's FLOP limit, measured in one run, model side and data side apart.

    python benchmarks/train.py [--models tiny,vit-tiny] [--steps 20] [--device auto]

For each model at the default preset's batch size and input size:
- FLOP per training sample: one forward and backward of both towers with the CLIP loss, counted by
  ``torch.utils.flop_counter`` (matmuls and convolutions; what the limit is made of).
- The FLOP limit: a 2048² fp32 matmul at this process's thread count (on a GPU, 8192², the device's)
  gives the machine's rate; the limit in samples/s is that rate over the FLOP per sample.
- Model side: the trainer's step (forward, loss, backward, AdamW, temperature clamp) on batches already
  normalised and tokenised, in samples/s and as a share of the limit.
- Data side: what the trainer does per batch before the model (index the epoch's images, to float,
  normalise, take the batch's tokens), in samples/s; the epoch's items themselves are drawn and their
  captions tokenized in a prefetch thread, once per run (per epoch with ``fresh_data``), measured here
  as samples/s of ``make_pairs`` and the tokenizer (one thread, as the prefetch thread draws a next set),
  and as the seconds the trainer waits for its first set (drawn by training's threads, the cores idle).
- Whole training: ``clipalign_utils.train.train`` (its one draw of the world, checkpoints and logs
  included), in samples/s and as a share of the limit. For the default model (the first of ``--models``)
  it is the default preset's training itself, as the default run does it and as the issue measured it
  (about a minute on 2 cores); for the others a short run of the default preset's epochs of ``--steps``
  batches each (``--short`` asks for that for the default model too).
The matmul rate is measured again after it all: on a shared host it drifts within minutes, and every ratio is
against the first; the line before the last also gives the default training against the mean of the two.
The last line is the default model's whole training: "… X.XX of the FLOP limit".
"""
from __future__ import annotations

import argparse
import tempfile
import time
from contextlib import contextmanager

import numpy as np
import torch
from open_clip.loss import ClipLoss
from torch.utils.flop_counter import FlopCounterMode

from clipalign_utils import config, models, train
from clipalign_utils.data.world import make_pairs, training_world


# A GPU's matmul must be long against its launch and the synchronisation that times it (a 2048² fp16
# matmul is tens of microseconds on an H100): 8192², ten to a timing, there.
MATMUL_SIZE = {"cpu": 2048, "cuda": 8192}


def matmul_name(device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32) -> str:
    """The matmul :func:`matmul_rate` times by default on ``device``, as the benchmarks print it: "2048² fp32
    matmul"."""
    n = MATMUL_SIZE.get(torch.device(device).type, 2048)
    names = {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}
    return f"{n}² {names.get(dtype, str(dtype).removeprefix('torch.'))} matmul"


def matmul_rate(n: int | None = None, repeats: int = 5, device: str | torch.device = "cpu",
                dtype: torch.dtype = torch.float32) -> float:
    """FLOP/s of an n×n matmul (fp32 unless ``dtype``; n from :data:`MATMUL_SIZE` by default) at the process's
    thread count, best of ``repeats`` (on a GPU, each timing ten matmuls)."""
    device = torch.device(device)
    n = n or MATMUL_SIZE.get(device.type, 2048)
    per = 10 if device.type == "cuda" else 1
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    a @ b
    best = min(_timed(lambda: [a @ b for _ in range(per)]) for _ in range(repeats)) / per
    return 2 * n ** 3 / best


@contextmanager
def attention_counted():
    """While inside, nn.MultiheadAttention computes its attention op by op, where torch's FLOP counter sees
    it. Its inference fast path (eval mode, no gradient) is one fused op without a FLOP formula, which hides
    the QKV and output projections and the attention products: a third of a ViT's FLOP (vit-tiny: 69 of 103
    MFLOP per image counted). The same arithmetic either way; only the count needs it."""
    enabled = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        yield
    finally:
        torch.backends.mha.set_fastpath_enabled(enabled)


def _timed(fn) -> float:
    if torch.cuda.is_available():
        torch.cuda.synchronize()  # nothing queued before counts
    start = time.perf_counter()
    fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - start


class Trainer:
    """The trainer's model side on one batch size: model, AdamW with its two groups, ClipLoss."""

    def __init__(self, params: dict, device: torch.device):
        self.params = params
        self.model = models.create_model(params["model"], image_size=params["image_size"], device=device)
        self.tokenizer = models.tokenizer_for(models.open_clip_name(params["model"]))
        # As the trainer steps it (the FLOP count below is of that work: the text tower's shorter one).
        train.training_form(self.model, self.tokenizer)
        self.optimizer = train.adamw(self.model, params)
        self.loss = ClipLoss()
        cfg = models.preprocess_config(self.model)
        self.mean = torch.tensor(cfg["mean"], device=device).view(1, 3, 1, 1)
        self.std = torch.tensor(cfg["std"], device=device).view(1, 3, 1, 1)
        self.device = device

    def batch(self, images: np.ndarray, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """What the trainer does to a batch before the model (its captions were tokenized with the epoch's)."""
        x = torch.from_numpy(images).to(self.device).permute(0, 3, 1, 2).float() / 255
        return (x - self.mean) / self.std, tokens.to(self.device)

    def step(self, images: torch.Tensor, texts: torch.Tensor) -> None:
        self.model.train()
        out = self.model(images, texts)
        loss = self.loss(out["image_features"], out["text_features"], out["logit_scale"])
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        with torch.no_grad():
            self.model.logit_scale.clamp_(0, np.log(100))

    def flops_per_sample(self, images: torch.Tensor, texts: torch.Tensor) -> float:
        """Forward and backward of both towers with the loss, per sample (the optimizer's few FLOP aside)."""
        counter = FlopCounterMode(display=False)
        with counter, attention_counted():  # (training takes the slow path anyway: gradients)
            out = self.model(images, texts)
            self.loss(out["image_features"], out["text_features"], out["logit_scale"]).backward()
        self.model.zero_grad(set_to_none=True)
        return counter.get_total_flops() / len(images)


def measure(model: str, steps: int, device: torch.device, rate: float, whole_default: bool) -> dict:
    params = config.resolve("default", model=model, device=str(device))
    batch_size = params["batch_size"]
    sample = make_pairs(steps * batch_size, 1, training_world(params))
    trainer = Trainer(params, device)
    tokens = train.tokenize_each_once(trainer.tokenizer, sample.captions)
    batches = [(sample.images[i:i + batch_size], tokens[i:i + batch_size])
               for i in range(0, steps * batch_size, batch_size)]
    ready = [trainer.batch(*b) for b in batches]
    flops = trainer.flops_per_sample(*ready[0])
    limit = rate / flops
    trainer.step(*ready[0])  # warm-up
    model_rate = steps * batch_size / _timed(lambda: [trainer.step(*b) for b in ready])
    data_rate = steps * batch_size / _timed(lambda: [trainer.batch(*b) for b in batches])
    world_rate = steps * batch_size / _timed(lambda: train.tokenize_each_once(
        trainer.tokenizer, make_pairs(steps * batch_size, 2, training_world(params)).captions))
    # The set the trainer waits for before its first step, drawn as it draws it (by training's threads).
    first_set = _timed(lambda: make_pairs(params["samples_per_epoch"], 3, training_world(params),
                                          workers=torch.get_num_threads()))
    # The whole training: the default preset's own, or a short one of its epochs of `steps` batches each (so
    # its one draw of the world weighs as in the default run; its fixed costs, the model's construction and
    # the checkpoint saves, weigh five times as much).
    whole = params if whole_default else config.resolve(
        "default", model=model, device=str(device), samples_per_epoch=steps * batch_size,
        early_checkpoints=(0.5,), warmup=2,
        bn_batches=min(steps, config.PRESETS["default"]["bn_batches"]))  # (interpolation's; at most an epoch's)
    with tempfile.TemporaryDirectory() as run_dir:
        whole_rate = whole["epochs"] * whole["samples_per_epoch"] / _timed(
            lambda: train.train(run_dir, whole, progress=False))
    return {"model": model, "flops": flops, "limit": limit, "model_rate": model_rate, "data_rate": data_rate,
            "world_rate": world_rate, "first_set": first_set, "samples_per_epoch": params["samples_per_epoch"],
            "whole_rate": whole_rate,
            "whole": "the default preset's" if whole_default else f"short, {steps} batches an epoch"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="tiny,vit-tiny", help="model scales, the default model first")
    parser.add_argument("--steps", type=int, default=20, help="training batches per measurement")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--short", action="store_true",
                        help="a short whole training for the default model too (epochs of --steps batches)")
    args = parser.parse_args()
    device = models.resolve_device(args.device)
    rate = matmul_rate(device=device)  # training runs in fp32 on either device
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    print(f"{where}: {matmul_name(device)} {rate / 1e9:.0f} GFLOP/s")
    results = [measure(model, args.steps, device, rate, whole_default=i == 0 and not args.short)
               for i, model in enumerate(args.models.split(","))]
    for r in results:
        print(f"{r['model']}: {r['flops'] / 1e6:.1f} MFLOP per training sample -> FLOP limit {r['limit']:.0f} samples/s")
        print(f"  model side (step on ready batches)   {r['model_rate']:8.0f} samples/s = {r['model_rate'] / r['limit']:.2f} of the FLOP limit")
        print(f"  data side (batch to tensors)         {r['data_rate']:8.0f} samples/s")
        print(f"  world generation (items, tokens)     {r['world_rate']:8.0f} samples/s (once per run, or per epoch with fresh_data)")
        print(f"  the first set, before the first step {r['first_set']:8.1f} s ({r['samples_per_epoch']} items, "
              f"{torch.get_num_threads()} threads)")
        print(f"  whole training (train.train)         {r['whole_rate']:8.0f} samples/s = {r['whole_rate'] / r['limit']:.2f} of the FLOP limit ({r['whole']})")
    default = results[0]
    # This machine's rate can drift within minutes (shared hosts): the limit is the rate measured first.
    after = matmul_rate(device=device)
    print(f"{matmul_name(device)} after the measurements: {after / 1e9:.0f} GFLOP/s; against the mean of the two "
          f"rates, the whole training is {default['whole_rate'] * default['flops'] / ((rate + after) / 2):.2f} "
          f"of the FLOP limit")
    print(f"training {default['model']} (the default model, {default['whole']} training): {default['whole_rate']:.0f} samples/s = "
          f"{default['whole_rate'] / default['limit']:.2f} of the FLOP limit")


if __name__ == "__main__":
    main()
