"""The model names the package knows, without importing open_clip or torch: our scales (their open_clip
config JSONs in ``model_configs/``) and open_clip's built-in names, asked of open_clip only for a name
that is not ours. A step whose embeddings are all cached resolves its run's model name here and never
imports torch (``models`` is the factory door that does)."""
from __future__ import annotations

from pathlib import Path

from .errors import ParameterError

CONFIG_DIR = Path(__file__).parent / "model_configs"
SCALES = tuple(sorted(p.stem.removeprefix("clipalign-") for p in CONFIG_DIR.glob("clipalign-*.json")))


def open_clip_name(model: str) -> str:
    """The open_clip model name for a scale name (``tiny``) or an open_clip name (``ViT-B-32``,
    ``clipalign-tiny``)."""
    if model in SCALES:
        return f"clipalign-{model}"
    if model.startswith("clipalign-") and model.removeprefix("clipalign-") in SCALES:
        return model
    import open_clip  # its built-in names (ours were answered above, registered or not)

    if model in open_clip.list_models():
        return model
    raise ParameterError(
        f"unknown model {model!r}: use a scale ({', '.join(SCALES)}) or an open_clip model name")


def input_size_problem(model: str, image_size: int) -> str | None:
    """Why one of our scales cannot take ``image_size`` px, or None (open_clip's own names: their own checks).
    A ModifiedResNet halves its input five times (stem convolution and pool, three strided stages, each
    rounding down) and sizes its attention pool for image_size // 32 positions: both must agree, at least 1."""
    path = CONFIG_DIR / f"clipalign-{model}.json"
    if model not in SCALES or not path.exists():
        return None
    import json

    vision = json.loads(path.read_text())["vision_cfg"]
    if isinstance(vision["layers"], (list, tuple)):
        side = -(-image_size // 2)  # the stem's strided convolution (padding 1) rounds up
        for _ in range(4):  # its pool and the three strided stages round down
            side //= 2
        if side < 1 or side != image_size // 32:
            fits = [size for size in (32, 64, 96, 128) if size >= image_size][:1] or [32 * (image_size // 32)]
            return (f"image_size={image_size} does not fit model {model} (a ModifiedResNet: its input is halved five "
                    f"times to an attention pool of image_size // 32 positions); use a multiple of 32, e.g. {fits[0]}")
    elif image_size < vision["patch_size"]:
        return f"image_size={image_size} is smaller than model {model}'s {vision['patch_size']}-px patches"
    return None


def _config(model: str) -> dict | None:
    """``model``'s config: our scales' JSONs, or the JSON open_clip ships for a built-in name, read without
    importing open_clip; None for a name neither has (a config added at run time)."""
    import importlib.util
    import json

    path = CONFIG_DIR / f"clipalign-{model.removeprefix('clipalign-')}.json"
    if not path.exists():
        spec = importlib.util.find_spec("open_clip")  # locates the package; imports nothing
        if spec is None or not spec.submodule_search_locations:
            return None
        path = Path(next(iter(spec.submodule_search_locations))) / "model_configs" / f"{model}.json"
        if not path.exists():
            return None
    return json.loads(path.read_text())


def native_input_size(model: str) -> int | None:
    """The input size (px) ``model``'s config builds it at (:func:`_config`); None for a name without one. A
    run's params.txt may force another (``force_image_size``), which the run's own size says."""
    config = _config(model)
    if config is None:
        return None
    size = config["vision_cfg"]["image_size"]
    return int(size[0] if isinstance(size, (list, tuple)) else size)


def patch_size(model: str) -> int | None:
    """The side (px) of ``model``'s ViT patches, from its config (:func:`_config`); None for a tower without
    patches (a ModifiedResNet, a timm tower) or a name without a config."""
    config = _config(model)
    vision = (config or {}).get("vision_cfg", {})
    if vision.get("timm_model_name") or isinstance(vision.get("layers"), (list, tuple)) or "patch_size" not in vision:
        return None
    size = vision["patch_size"]
    return int(size[0] if isinstance(size, (list, tuple)) else size)


def vision_has_batchnorm(model: str) -> bool | None:
    """Whether ``model``'s image tower has BatchNorm, from its config alone: of open_clip's own towers
    (:func:`blocks_readable`), a ModifiedResNet (``layers`` a list) has, a ViT (``layers`` a number) has not; None
    where the config does not say (a timm tower, a name without a config): loading the model tells."""
    if not blocks_readable(model):
        return None
    return isinstance(_config(model)["vision_cfg"]["layers"], (list, tuple))


def blocks_readable(model: str) -> bool | None:
    """Whether ``layers=all`` can read ``model``'s image tower block by block, from its config alone: open_clip's
    own ViT and ModifiedResNet (``encoder.vision_block_names``) yes, a timm tower no; None for a name without a
    config (the step says so once the model is built)."""
    config = _config(model)
    if config is None:
        return None
    vision = config.get("vision_cfg", {})
    return not vision.get("timm_model_name") and "layers" in vision


def run_input_size(run) -> int | None:
    """The size a run's model takes its images at (``run``: its ``image_size`` and ``model_name``, a
    ``checkpoints.Run``): the run's recorded one, else its model's own (a run without params.txt, or
    open_clip_train's without force_image_size); None where neither says."""
    return run.image_size or native_input_size(run.model_name)
