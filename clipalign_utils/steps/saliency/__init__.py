"""The ``saliency`` step: saliency correspondence (:mod:`.analysis`, the maps in :mod:`.maps`; its page:
:mod:`.page`)."""
from ...choices import SALIENCY_METHODS
from ...errors import ParameterError
from ...registry import PeakClaim, Step, Summary, Table, dataset_parameters, register

TABLE = Table("saliency", ("checkpoint", "epoch", "dataset", "method", "metric", "value", "value_lo", "value_hi",
                           "n_images"))
# saliency.csv's baseline rows have this in their checkpoint column (epoch nan).
BASELINE = "centre_bias"


def _check(params: dict) -> None:
    if params["saliency_n_images"] < 0 or params["saliency_samples"] < 1 or params["saliency_cue_per_pair"] < 0:
        raise ParameterError("saliency_n_images and saliency_cue_per_pair must be >= 0 and saliency_samples >= 1")
    if not 0 <= params["saliency_noise"] <= 1:
        raise ParameterError(f"parameter saliency_noise must lie in [0, 1], got {params['saliency_noise']!r}")


STEP = register(Step(
    "saliency", "08_saliency", (TABLE,), depends=("train",), module="clipalign_utils.steps.saliency.analysis",
    title="saliency correspondence",
    parameters={
        **dataset_parameters("saliency"),
        "saliency_method": "smoothgrad",
        # Sized for the default run's budget (11 checkpoints; SmoothGrad is most of the step's cost).
        "saliency_n_images": 24,  # embedded: images in the set; real datasets: the first n stimuli (0 = all)
        "saliency_samples": 2,  # SmoothGrad noisy copies per image
        "saliency_noise": 0.15,  # SmoothGrad noise, a fraction of the input range
        "saliency_cue_per_pair": 1,  # cue-conflict images per (shape, texture) pair for the contour/interior share
    },
    presets={"smoke": {"saliency_n_images": 16, "saliency_samples": 2}},
    choices={"saliency_method": SALIENCY_METHODS},
    check=_check,
    summary=Summary(
        "saliency_cc", "saliency CC",
        (("saliency_cc", "saliency_cc_lo", "saliency_cc_hi"), ("saliency_nss", "saliency_nss_lo", "saliency_nss_hi")),
        baselines=(BASELINE,), panel=("CC with fixation density", "saliency correspondence"),
        claims=(PeakClaim("saliency correspondence peaks early then declines", "saliency CC", "images",
                          "saliency"),))))
