"""The ``shape`` step: shape vs texture bias on cue-conflict images (:mod:`.analysis`; its page: :mod:`.page`)."""
from ...choices import SHAPE_CLASSIFIERS
from ...errors import ParameterError
from ...registry import Step, Summary, Table, TrendClaim, dataset_parameters, register

TABLE = Table("shape_bias", ("checkpoint", "epoch", "dataset", "shape_bias", "lo", "hi", "shape_fraction",
                             "texture_fraction", "neither_fraction", "n_images"),
              required=("checkpoint", "epoch", "dataset", "shape_bias", "lo", "hi"))



def _check(params: dict) -> None:
    if params["shape_classifier"] == "imagenet" and params["cue_conflict_dataset"] != "geirhos":
        raise ParameterError(f"parameter shape_classifier='imagenet' maps ImageNet's classes onto Geirhos' 16 "
                             f"categories; cue_conflict_dataset={params['cue_conflict_dataset']!r} has other classes: "
                             f"use shape_classifier=direct")
    if params["cue_conflict_per_pair"] < 1:
        raise ParameterError(f"parameter cue_conflict_per_pair must be >= 1 (images per shape × texture pair), "
                             f"got {params['cue_conflict_per_pair']!r}")


STEP = register(Step(
    "shape", "03_shape_texture_bias", (TABLE,), depends=("train",), module="clipalign_utils.steps.shape.analysis",
    title="shape vs texture bias on cue-conflict images",
    parameters={**dataset_parameters("cue_conflict"), "cue_conflict_per_pair": 8, "shape_classifier": "direct"},
    presets={"smoke": {"cue_conflict_per_pair": 1}}, check=_check, embedded_only=("cue_conflict_per_pair",),
    choices={"shape_classifier": SHAPE_CLASSIFIERS},
    dataset_options=("shape_classifier",),  # Geirhos' alone: a re-run given another set does not carry it
    # texture_bias = 1 - shape_bias, derived by the synthesis
    summary=Summary("shape_bias", "shape bias", (("shape_bias", "shape_bias_lo", "shape_bias_hi"),), required=True,
                    claims=(TrendClaim("texture bias falls during training", "texture_bias"),))))
