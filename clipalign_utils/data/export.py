"""Write the embedded world as an image–caption dataset that open_clip_train reads.

open_clip_train's ``--dataset-type csv`` takes a CSV with an image-path column and a caption
column; :func:`export_world_csv` writes ``images/<i>.png`` and ``pairs.csv`` (``filepath``, ``title``).
Its ``--dataset-type webdataset`` takes tar shards of ``<key>.png`` + ``<key>.txt`` pairs;
:func:`export_world_shards` writes ``shard-<k>.tar``.
"""
from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pandas as pd
from PIL import Image

from .world import WorldConfig, make_pairs
from ..io import atomic_write


def export_world_csv(out_dir: str | Path, n: int, seed: int, config: WorldConfig) -> Path:
    """Training pairs 0..n-1 of the world as PNG files plus ``pairs.csv``; returns the CSV path."""
    out_dir = Path(out_dir)
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    sample = make_pairs(n, seed, config)
    paths = []
    for i, image in enumerate(sample.images):
        path = out_dir / "images" / f"{i:06d}.png"
        Image.fromarray(image).save(path)
        paths.append(str(path.resolve()))
    table = pd.DataFrame({"filepath": paths, "title": sample.captions})
    return atomic_write(out_dir / "pairs.csv", lambda tmp: table.to_csv(tmp, index=False))


def export_world_shards(out_dir: str | Path, n: int, seed: int, config: WorldConfig, per_shard: int = 1000) -> str:
    """Training pairs 0..n-1 of the world as webdataset shards ``shard-000000.tar`` … (``per_shard`` pairs
    each: ``<key>.png`` and its caption ``<key>.txt``); returns the brace pattern open_clip_train's
    ``--train-data`` takes (``…/shard-{000000..000001}.tar``), with ``--train-num-samples n``."""
    if n < 1 or per_shard < 1:  # else a pattern naming no shard (shard-{000000..-00001}.tar)
        raise ValueError(f"export_world_shards: n={n}, per_shard={per_shard}; give at least one pair per shard")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sample = make_pairs(n, seed, config)
    shards = range(0, n, per_shard)
    for k, start in enumerate(shards):
        def write(tmp: Path, start=start) -> None:
            with tarfile.open(tmp, "w") as tar:
                for i in range(start, min(start + per_shard, n)):
                    png = io.BytesIO()
                    Image.fromarray(sample.images[i]).save(png, format="PNG")
                    for name, data in ((f"{i:06d}.png", png.getvalue()), (f"{i:06d}.txt", sample.captions[i].encode())):
                        member = tarfile.TarInfo(name)
                        member.size = len(data)
                        tar.addfile(member, io.BytesIO(data))
        atomic_write(out_dir / f"shard-{k:06d}.tar", write)
    last = len(shards) - 1
    return str(out_dir / (f"shard-{{000000..{last:06d}}}.tar" if last else "shard-000000.tar"))
