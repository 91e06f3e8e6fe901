"""What one real CLIP checkpoint costs each analysis step, at the architecture's own input size (224 px).

One random-weight checkpoint of ``--model`` in open_clip_train's format (``module.`` keys) is measured by
every analysis step on small sets in the real datasets' layouts (TID2013, Geirhos cue-conflict, CIFAR-100,
NIGHTS, MIT1003 with its targets over ImageNet's 1,000 classes), each step on a fresh cache: its seconds,
the images through the image tower and prompts through the text tower (their rate), and its
floating-point work counted with torch's FLOP formulas in a second, untimed pass. The
process's peak memory is reported. Writes ``benchmarks/real_clip_cost.csv`` (the book's page 10 reads it)
and prints the table for RESULTS.md.

    python benchmarks/real_clip_cost.py                      # ViT-B-32, single prompts, the CSV
    python benchmarks/real_clip_cost.py --model RN50 --out /tmp/rn50.csv
    python benchmarks/real_clip_cost.py --device cuda --no-flops --out /tmp/cuda.csv   # benchmarks/gpu.sh

``--templates single`` (the default here) sends one prompt per class through the text tower; the book's
``ensemble`` multiplies that share by the dataset's number of templates (80 for ImageNet's classes).
"""
from __future__ import annotations

import argparse
import datetime
import platform
import resource
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))  # the real-format fixture writers

from fixtures_real import make_cifar100, make_geirhos, make_mit1003, make_nights, make_tid2013  # noqa: E402
from train import attention_counted  # noqa: E402  (benchmarks/train.py, beside this file)

from clipalign_utils import config, encoder, models, registry  # noqa: E402
from clipalign_utils.checkpoints import Checkpoint, Run  # noqa: E402
from clipalign_utils.data.geirhos import GEIRHOS_CLASSES  # noqa: E402
from clipalign_utils.orchestration.measure import step_module  # noqa: E402

STEPS = ("iqa", "shape", "noise", "similarity", "saliency")
DATASETS = {"iqa": "tid2013", "shape": "geirhos", "noise": "cifar100", "similarity": "nights", "saliency": "mit1003"}


# Images per set: the benchmark's, and the smallest that still exercise every path (the test's).
SIZES = {"benchmark": {"tid2013": 3, "geirhos": 2, "cifar100": 100, "nights": 12, "mit1003": 4},
         "small": {"tid2013": 1, "geirhos": 2, "cifar100": 10, "nights": 4, "mit1003": 2}}  # 2: a cue conflict


def real_format_sets(root: Path, sizes: str = "benchmark") -> dict:
    """The five datasets in their official layouts under ``root`` (``SIZES[sizes]``): {parameter: value}.
    Every class of each dataset is there (16 Geirhos, 100 CIFAR-100 prompts, ImageNet's 1,000 targets)."""
    n = SIZES[sizes]
    return {
        "iqa_dataset": "tid2013", "iqa_root": str(make_tid2013(root / "tid2013", n_refs=n["tid2013"])),
        "cue_conflict_dataset": "geirhos",
        "cue_conflict_root": str(make_geirhos(root / "geirhos", classes=GEIRHOS_CLASSES, per_class=n["geirhos"]).parent),
        "noise_dataset": "cifar100", "noise_root": str(make_cifar100(root / "cifar100", n=n["cifar100"])),
        "similarity_dataset": "nights", "similarity_root": str(make_nights(root / "nights", n=n["nights"]).parent),
        "saliency_dataset": "mit1003", "saliency_root": str(make_mit1003(root / "mit1003", n=n["mit1003"])),
        "saliency_n_images": 0,
    }


def write_checkpoint(model_name: str, path: Path, seed: int = 0, epoch: int = 1) -> Path:
    """A random-weight open_clip_train checkpoint (a DDP run's ``module.`` keys), drawn from ``seed``."""
    model = models.create_model(model_name, seed=seed)
    torch.save({"epoch": epoch, "name": "cost",
                "state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}}, path)
    return path


class FlopCount:
    """torch's FLOP formulas (``torch.utils.flop_counter.flop_registry``) summed over every operator run
    inside, forward and backward. A plain dispatch mode: FlopCounterMode's module hooks break the saliency
    step's ``autograd.grad``."""

    def __init__(self):
        from torch.utils._python_dispatch import TorchDispatchMode
        from torch.utils.flop_counter import flop_registry

        counter = self

        class Mode(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                out = func(*args, **(kwargs or {}))
                formula = flop_registry.get(func._overloadpacket)
                if formula is not None:
                    counter.total += formula(*args, **(kwargs or {}), out_val=out)
                return out

        self.total, self.mode = 0, Mode()

    def __enter__(self):
        self.mode.__enter__()
        return self

    def __exit__(self, *exc):
        return self.mode.__exit__(*exc)


@contextmanager
def counting():
    """Images through the image tower and prompts through the text tower while inside."""
    from open_clip import zero_shot_classifier  # the encoder imports its builder from there when it builds

    counts = {"images": 0, "prompts": 0}
    encode, build = encoder.Encoder._encode_images, zero_shot_classifier.build_zero_shot_classifier

    def counted_encode(self, images, with_blocks=False):
        counts["images"] += len(images)
        return encode(self, images, with_blocks)

    def counted_build(model, tokenizer, classnames, templates, **kwargs):
        counts["prompts"] += len(classnames) * len(templates)
        return build(model, tokenizer, classnames, templates, **kwargs)

    encoder.Encoder._encode_images, zero_shot_classifier.build_zero_shot_classifier = counted_encode, counted_build
    try:
        yield counts
    finally:
        encoder.Encoder._encode_images, zero_shot_classifier.build_zero_shot_classifier = encode, build


def measure_steps(model_name: str, work: Path, templates: str = "single", steps=STEPS, flops: bool = True,
                  sizes: str = "benchmark", progress=print, device: str = "cpu") -> pd.DataFrame:
    """One row per step: step, dataset, images, prompts, seconds, images_per_s, gflop (nan without
    ``flops``), rows (of the step's main table: one checkpoint's), peak_rss_gb (the process's peak so far)."""
    checkpoint = write_checkpoint(model_name, work / "epoch_1.pt")
    params = config.resolve("default", **real_format_sets(work / "data", sizes), prompt_templates=templates,
                            device=device, model=model_name)
    rows = []
    for step in steps:
        run = Run(work / f"run-{step}", models.open_clip_name(model_name), None, [Checkpoint(checkpoint, 1.0)])
        module = step_module(step)
        data = module.load(run, params)
        with counting() as counts:
            started = time.perf_counter()
            tables = module.measure(run, params, data)
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            seconds = time.perf_counter() - started
        gflop = float("nan")
        if flops:
            run = Run(work / f"flops-{step}", run.model_name, None, run.checkpoints)  # a fresh cache
            with FlopCount() as counter, attention_counted():
                module.measure(run, params, data)
            gflop = counter.total / 1e9
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
        rows.append({"step": step, "dataset": DATASETS[step], "images": counts["images"], "prompts": counts["prompts"],
                     "seconds": round(seconds, 2), "images_per_s": round(counts["images"] / seconds, 2),
                     "gflop": round(gflop, 1), "rows": len(tables[registry.get(step).tables[0].name]),
                     "peak_rss_gb": round(peak, 2)})
        progress(f"{step}: {rows[-1]}")
    return pd.DataFrame(rows)


def cpu_name() -> str:
    """The CPU's model name (Linux), else the platform's word for it."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="ViT-B-32")
    parser.add_argument("--templates", default="single")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "real_clip_cost.csv"))
    parser.add_argument("--no-flops", action="store_true", help="skip the FLOP-counting pass")
    parser.add_argument("--device", default="cpu", help="cpu (the shipped CSV's), cuda or auto")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as work:
        table = measure_steps(args.model, Path(work), args.templates, flops=not args.no_flops, device=args.device)
    cpu = f"{cpu_name()}, {torch.get_num_threads()} threads"
    table = table.assign(model=args.model, templates=args.templates, cpu=cpu,
                         measured=datetime.date.today().isoformat())
    if args.device != "cpu":  # the shipped CSV (CPU) keeps its columns
        device = models.resolve_device(args.device)
        table["device"] = torch.cuda.get_device_name(device) if device.type == "cuda" else str(device)
    table.to_csv(args.out, index=False)
    print(table.to_markdown(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
