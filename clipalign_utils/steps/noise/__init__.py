"""The ``noise`` step: zero-shot accuracy under Gaussian noise (:mod:`.analysis`; its page: :mod:`.page`)."""
from ... import model_names
from ...choices import NOISE_AT
from ...errors import ParameterError
from ...registry import Step, Summary, Table, TrendClaim, dataset_parameters, register

TABLE = Table("noise", ("checkpoint", "epoch", "dataset", "sigma", "accuracy", "lo", "hi", "normalized_drop",
                        "chance_corrected_drop", "n_images"),
              required=("checkpoint", "epoch", "dataset", "sigma", "accuracy", "lo", "hi", "normalized_drop"))

def _check(params: dict) -> None:
    if any(sigma < 0 for sigma in params["sigmas"]):
        raise ParameterError(f"parameter sigmas: every noise level must be >= 0, got {params['sigmas']!r}")
    if not any(sigma > 0 for sigma in params["sigmas"]):
        raise ParameterError(f"parameter sigmas={params['sigmas']!r}: give at least one noise level above 0 (e.g. "
                             f"-p sigmas=0.05,0.1; 0, the clean images, is always added)")
    if params["test_per_class"] < 1:
        raise ParameterError(f"parameter test_per_class must be positive, got {params['test_per_class']!r}")


def input_size(run, noise_at: str) -> int | None:
    """The size ``noise_at=input`` brings the images to before the noise: the run's recorded input size, else
    its model's own (a run without params.txt, or open_clip_train's without force_image_size: the noise must go
    where the model sees it, not on the dataset's pixels). Refused in one line where neither says."""
    size = model_names.run_input_size(run)
    if noise_at == "input" and size is None:
        raise ParameterError(f"parameter noise_at='input' needs the model's input size, which neither the run nor "
                             f"model {run.model_name!r}'s config says: use noise_at=native")
    return size


def _check_run(run, values, running) -> None:
    input_size(run, values["noise_at"])  # before any folder is made, not when the page loads its images


STEP = register(Step(
    "noise", "04_noise_robustness", (TABLE,), depends=("train",), module="clipalign_utils.steps.noise.analysis",
    title="zero-shot accuracy under Gaussian noise",
    parameters={
        **dataset_parameters("noise"),
        "test_per_class": 100,
        "sigmas": (0.02, 0.05, 0.1, 0.2),
        "noise_at": "native",  # add the noise to the native image (native) or after resizing to the input (input)
    },
    presets={"smoke": {"test_per_class": 16}},
    choices={"noise_at": NOISE_AT},
    check=_check, check_run=_check_run,
    summary=Summary(
        "noise_drop", "normalized noise drop",
        (("clean_accuracy", None, None), ("noise_drop", "noise_drop_lo", "noise_drop_hi"),
         ("chance_corrected_drop", None, None)),
        required=True,
        claims=(TrendClaim("normalized noise drop falls during training", "noise_drop"),
                TrendClaim("chance-corrected noise drop falls during training", "chance_corrected_drop",
                           required=False)))))
