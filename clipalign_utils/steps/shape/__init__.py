"""The ``shape`` step: shape vs texture bias on cue-conflict images (:mod:`.analysis`; its page: :mod:`.page`)."""
from ...errors import ParameterError
from ...registry import Step, Summary, Table, TrendClaim, dataset_parameters, register

TABLE = Table("shape_bias", ("checkpoint", "epoch", "dataset", "shape_bias", "lo", "hi", "shape_fraction",
                             "texture_fraction", "neither_fraction", "n_images"),
              required=("checkpoint", "epoch", "dataset", "shape_bias", "lo", "hi"))



def _check(params: dict) -> None:
    if params["cue_conflict_per_pair"] < 1:
        raise ParameterError(f"parameter cue_conflict_per_pair must be >= 1 (images per shape × texture pair), "
                             f"got {params['cue_conflict_per_pair']!r}")


STEP = register(Step(
    "shape", "03_shape_texture_bias", (TABLE,), depends=("train",), module="clipalign_utils.steps.shape.analysis",
    title="shape vs texture bias on cue-conflict images",
    parameters={**dataset_parameters("cue_conflict"), "cue_conflict_per_pair": 8},
    presets={"smoke": {"cue_conflict_per_pair": 1}}, check=_check,
    # texture_bias = 1 - shape_bias, derived by the synthesis
    summary=Summary("shape_bias", "shape bias", (("shape_bias", "shape_bias_lo", "shape_bias_hi"),), required=True,
                    claims=(TrendClaim("texture bias falls during training", "texture_bias"),))))
