"""The ``iqa`` step: image-quality alignment of every checkpoint (:mod:`.analysis`; its page: :mod:`.page`)."""
from ...choices import LAYERS, REFERENCE_OBSERVERS
from ...errors import ParameterError
from ...registry import PeakClaim, Step, Summary, Table, dataset_parameters, register

TABLE = Table("iqa", ("checkpoint", "epoch", "dataset", "distance", "distortion", "srcc", "srcc_lo", "srcc_hi",
                      "krcc", "plcc", "pearson", "n_pairs"),
              required=("checkpoint", "epoch", "dataset", "distance", "distortion", "srcc", "srcc_lo", "srcc_hi"))

def _check(params: dict) -> None:
    levels = params["iqa_levels"]
    if not levels or any(level not in range(1, 6) for level in levels):
        raise ParameterError(f"parameter iqa_levels={levels!r}: give distortion levels from 1 to 5 (e.g. -p "
                             f"iqa_levels=1,3,5)")


STEP = register(Step(
    "iqa", "02_iqa_alignment", (TABLE,), depends=("train",), module="clipalign_utils.steps.iqa.analysis",
    title="alignment with image-quality judgments",
    parameters={
        **dataset_parameters("iqa"),
        "iqa_levels": (1, 2, 3, 4, 5),
        "reference_observer": "haarpsi",
        "layers": "final",
    },
    presets={"smoke": {"iqa_levels": (1, 3, 5)}},
    embedded_only=("iqa_levels", "reference_observer"),
    choices={"layers": LAYERS, "reference_observer": REFERENCE_OBSERVERS},
    check=_check,
    summary=Summary("iqa_srcc", "IQA alignment (SRCC)", (("iqa_srcc", "iqa_srcc_lo", "iqa_srcc_hi"),),
                    required=True, chance=0.0,
                    below_chance="the model ranks quality in reverse at every checkpoint "
                                 "(the peak is the least reversed)",
                    claims=(PeakClaim("IQA alignment peaks early then declines", "srcc", "references", "iqa"),))))
