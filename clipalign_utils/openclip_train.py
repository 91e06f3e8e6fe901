"""Run open_clip's own trainer with clipalign's model configs registered.

    python -m clipalign_utils.openclip_train --model clipalign-tiny --train-data pairs.csv ...

takes exactly open_clip_train's arguments (and runs under torchrun the same way); it only
registers ``clipalign-<scale>`` first, so the small models train with the reference trainer.
Built-in models (``ViT-B-32`` …) need no wrapper: call ``open_clip_train.main`` directly.
"""
from __future__ import annotations

import sys

from . import models  # noqa: F401  (registers the clipalign-* configs with open_clip)


def main(argv: list[str] | None = None) -> None:
    from open_clip_train.main import main as open_clip_train_main

    open_clip_train_main(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    main()
