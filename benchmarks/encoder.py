"""Encoder throughput, measured in one run: batched Encoder vs bare encode_image vs a per-image loop.

    python benchmarks/encoder.py [--model tiny] [--n 4096] [--device auto]

(a) clipalign's Encoder.encode_images (uint8 in, preprocessing, batching, normalisation; no cache),
(b) model.encode_image on one pre-stacked, pre-normalised tensor (the floor: no data handling),
(c) the same model called image by image.
Targets: (a) >= 0.8 x (b) and (a) >= 20 x (c). Ratios, not absolute times, are the point:
they hold across machines, absolute numbers do not. Beside them, (a) against the machine's FLOP limit:
the FLOP of one image's forward (``torch.utils.flop_counter``) at the rate of a matmul in the
encoder's precision (2048² fp32 on a CPU, 8192² fp16 under CUDA's autocast: ``train.matmul_rate``).
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from clipalign_utils import models
from clipalign_utils.data.image_sets import ArrayImages
from clipalign_utils.encoder import Encoder, preprocess_batch
from torch.utils.flop_counter import FlopCounterMode
from train import attention_counted, matmul_name, matmul_rate  # benchmarks/train.py, beside this file


def _best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--n", type=int, default=4096)
    parser.add_argument("--loop-n", type=int, default=256, help="images for the per-image loop")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    device = models.resolve_device(args.device)
    model = models.create_model(args.model, image_size=args.image_size, device=device)
    name = models.open_clip_name(args.model)
    size = models.preprocess_config(model)["size"]
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (args.n, size, size, 3), dtype=np.uint8)

    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = Path(tmp) / "epoch_0.pt"
        torch.save({"epoch": 0, "state_dict": model.state_dict()}, checkpoint)
        encoder = Encoder(checkpoint, name, args.image_size, device=args.device, batch_size=args.batch_size)
        image_set = ArrayImages(images, "benchmark")
        encoder.encode_images(image_set)  # warm-up (loads the model)
        t_encoder = _best_of(lambda: encoder._encode_images(image_set), args.repeats)

    model = model.eval()
    cfg = models.preprocess_config(model)
    mean = torch.tensor(cfg["mean"], device=device).view(1, 3, 1, 1)
    std = torch.tensor(cfg["std"], device=device).view(1, 3, 1, 1)
    stacked = preprocess_batch(torch.from_numpy(images).to(device), size, mean, std)
    autocast = (torch.autocast("cuda", dtype=torch.float16) if device.type == "cuda"
                else torch.autocast("cpu", enabled=False))

    @torch.no_grad()
    def bare():
        with autocast:
            for start in range(0, args.n, args.batch_size):
                model.encode_image(stacked[start:start + args.batch_size])

    @torch.no_grad()
    def per_image():
        with autocast:
            for k in range(args.loop_n):
                model.encode_image(stacked[k:k + 1])

    bare()
    t_bare = _best_of(bare, args.repeats)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), autocast, counter, attention_counted():
        model.encode_image(stacked[:args.batch_size])
    flops_per_image = counter.get_total_flops() / len(stacked[:args.batch_size])
    dtype = torch.float16 if device.type == "cuda" else torch.float32
    rate = matmul_rate(device=device, dtype=dtype)
    limit = rate / flops_per_image
    t_loop = _best_of(per_image, 1)

    rate_a, rate_b, rate_c = args.n / t_encoder, args.n / t_bare, args.loop_n / t_loop
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    print(f"model {name} at {size} px on {device_name}, batch {args.batch_size}")
    print(f"(a) Encoder.encode_images   {rate_a:10.0f} img/s")
    print(f"(b) bare encode_image       {rate_b:10.0f} img/s")
    print(f"(c) per-image loop          {rate_c:10.0f} img/s")
    print(f"a/b = {rate_a / rate_b:.2f}  (target >= 0.8)")
    print(f"a/c = {rate_a / rate_c:.1f}  (target >= 20)")
    print(f"{flops_per_image / 1e6:.1f} MFLOP per image; {matmul_name(device, dtype)} {rate / 1e9:.0f} GFLOP/s -> FLOP limit "
          f"{limit:.0f} img/s; (a) = {rate_a / limit:.2f} of the FLOP limit")


if __name__ == "__main__":
    main()
