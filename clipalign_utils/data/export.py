"""Write the embedded world as an image–caption dataset that open_clip_train reads.

open_clip_train's ``--dataset-type csv`` takes a CSV with an image-path column and a caption
column; this writes ``images/<i>.png`` and ``pairs.csv`` (``filepath``, ``title``).
"""
from __future__ import annotations

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
