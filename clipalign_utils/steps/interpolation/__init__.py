"""The ``interpolation`` step: models on the line between two checkpoints of a run, measured by the IQA,
shape and noise steps (:mod:`.analysis`; its page: :mod:`.page`). Optional: ``clipalign run --only
interpolation`` runs it; the default command does not."""
from ...choices import BN_STATISTICS
from ...errors import ParameterError
from ...registry import Page, Step, Table, register, register_page
from ...schedule import epoch_steps

NOTEBOOK = "11_interpolation"
TABLE = Table("interpolation", ("alpha", "from_checkpoint", "to_checkpoint", "iqa_srcc", "iqa_srcc_lo",
                                "iqa_srcc_hi", "shape_bias", "shape_bias_lo", "shape_bias_hi", "noise_drop",
                                "noise_drop_lo", "noise_drop_hi"))


def _check(params: dict) -> None:
    alphas = params["alphas"]
    if not alphas:
        raise ParameterError("parameter alphas: give at least one α between the checkpoints (e.g. -p "
                             "alphas=0.25,0.5,0.75; 0 and 1 are always added)")
    if any(not 0 <= float(a) <= 1 for a in alphas):
        raise ParameterError(f"parameter alphas: every α must lie in [0, 1] (0 and 1 are always added), got {alphas!r}")
    if all(float(a) in (0.0, 1.0) for a in alphas):
        raise ParameterError(f"parameter alphas={','.join(f'{float(a):g}' for a in alphas)}: 0 and 1 are the two "
                             f"checkpoints themselves (always measured); give at least one α between them (e.g. -p "
                             f"alphas=0.5)")
    if params["bn_batches"] < 1:
        raise ParameterError(f"parameter bn_batches must be >= 1, got {params['bn_batches']!r}")
    per_epoch = epoch_steps(params)
    if params["bn_batches"] > per_epoch:
        raise ParameterError(f"parameter bn_batches={params['bn_batches']}: training's first epoch has {per_epoch} "
                             f"batches (samples_per_epoch // batch_size); give at most {per_epoch}")


def _check_run(run, values, running) -> None:
    # imported when a command checks the step, not when the registry finds it (ends reads the IQA step's code)
    from .ends import check_run

    check_run(run, values, running)


STEP = register(Step(
    "interpolation", NOTEBOOK, (TABLE,), depends=("iqa", "shape", "noise"),
    module="clipalign_utils.steps.interpolation.analysis",
    title="weight interpolation between two checkpoints",
    parameters={
        "interpolation_from": "peak",  # peak (the checkpoint of highest IQA SRCC) or a checkpoint's name
        "interpolation_to": "last",  # last or a checkpoint's name
        "alphas": (0.25, 0.5, 0.75),  # α of θ(α) = (1 − α)·θ_from + α·θ_to; 0 and 1 are always added
        "bn_statistics": "reestimate",  # reestimate | interpolate: BatchNorm running statistics of θ(α)
        "bn_batches": 8,  # the run's first training batches, for the re-estimation
    },
    presets={"smoke": {"alphas": (0.5,), "bn_batches": 2}},
    choices={"bn_statistics": BN_STATISTICS},
    check=_check,
    check_run=_check_run,
    optional=True))

# A build without the step's executed page shows the recorded results (:mod:`.placeholder`).
register_page(Page(NOTEBOOK, "weight interpolation between an early and a late checkpoint "
                              "(`clipalign run --out FOLDER --only interpolation`)",
                    placeholder="clipalign_utils.steps.interpolation.placeholder:text"))
