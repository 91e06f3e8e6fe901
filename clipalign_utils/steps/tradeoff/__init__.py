"""The ``tradeoff`` step, the synthesis: every step's summary lined up per checkpoint over one run or several,
the claims' verdicts (:mod:`.analysis`; its page: :mod:`.page`)."""
from ...errors import ParameterError
from ...registry import Step, Table, register


def _check(params: dict) -> None:
    if not 0.0 <= params["alignment_weight"] <= 1.0:
        raise ParameterError(f"parameter alignment_weight must lie in [0, 1], got {params['alignment_weight']!r}")


STEP = register(Step(
    "tradeoff", "05_tradeoff_synthesis", (Table("tradeoff", ("checkpoint", "epoch")),), depends=("iqa", "shape", "noise"),
    synthesis=True, module="clipalign_utils.steps.tradeoff.analysis",
    title="the synthesis: verdicts on the paper's claims",
    parameters={"alignment_weight": 0.5}, check=_check))
