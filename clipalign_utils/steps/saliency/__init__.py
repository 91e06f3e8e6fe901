"""The ``saliency`` step: saliency correspondence (:mod:`.analysis`, the maps in :mod:`.maps`; its page:
:mod:`.page`)."""
from ...choices import SALIENCY_METHODS
from ...errors import ParameterError
from ...registry import PeakClaim, Step, Summary, Table, dataset_parameters, register

TABLE = Table("saliency", ("checkpoint", "epoch", "dataset", "method", "metric", "value", "value_lo", "value_hi",
                           "n_images"))
# saliency.csv's baseline rows have one of these in their checkpoint column (epoch nan): a centre Gaussian;
# where the images' silhouettes are known (the embedded sets), the object's own silhouette (what a model
# that looks exactly at the object scores) and another image's silhouette (a control near chance).
BASELINE = "centre_bias"
BASELINES = (BASELINE, "object_silhouette", "shuffled_silhouette")
# The headline measure (the page's verdict, the synthesis' curve and its peak test): shuffled AUC. Its
# negatives are other images' fixations, so a map that only knows where fixations fall on average (the
# centre) scores near chance and only one that finds this image's object scores above it.
HEADLINE = "sauc"


def _check(params: dict) -> None:
    for name, least in (("saliency_n_images", 0), ("saliency_cue_per_pair", 0), ("saliency_samples", 1)):
        if params[name] < least:
            raise ParameterError(f"parameter {name} must be >= {least}, got {params[name]!r}")
    if params["saliency_dataset"] == "embedded" and params["saliency_n_images"] < 1:
        raise ParameterError("saliency_n_images=0 means every stimulus of a real dataset; the embedded set draws "
                             "its images: give saliency_n_images >= 1")
    if not 0 <= params["saliency_noise"] <= 1:
        raise ParameterError(f"parameter saliency_noise must lie in [0, 1], got {params['saliency_noise']!r}")


STEP = register(Step(
    "saliency", "08_saliency", (TABLE,), depends=("train",), module="clipalign_utils.steps.saliency.analysis",
    title="saliency correspondence",
    parameters={
        **dataset_parameters("saliency"),
        "saliency_method": "smoothgrad",
        # Sized for the default run's budget (10 checkpoints; SmoothGrad is most of the step's cost).
        "saliency_n_images": 24,  # embedded: images in the set; real sets: n stimuli (0 = all; CAT2000's spread)
        "saliency_samples": 2,  # SmoothGrad noisy copies per image
        "saliency_noise": 0.15,  # SmoothGrad noise, a fraction of the input range
        "saliency_cue_per_pair": 1,  # cue-conflict images per (shape, texture) pair for the contour/interior share
    },
    presets={"smoke": {"saliency_n_images": 16, "saliency_samples": 2}},
    choices={"saliency_method": SALIENCY_METHODS},
    embedded_only=("saliency_cue_per_pair",),
    check=_check,
    summary=Summary(
        "saliency_sauc", "saliency sAUC",
        (("saliency_sauc", "saliency_sauc_lo", "saliency_sauc_hi"), ("saliency_cc", "saliency_cc_lo", "saliency_cc_hi"),
         ("saliency_nss", "saliency_nss_lo", "saliency_nss_hi")),
        baselines=BASELINES, panel=("shuffled AUC", "saliency correspondence"), chance=0.5,
        claims=(PeakClaim("saliency correspondence peaks early then declines", "saliency sAUC", "images",
                          "saliency"),))))
