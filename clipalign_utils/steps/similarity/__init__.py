"""The ``similarity`` step: 2AFC perceptual similarity (:mod:`.analysis`; its page: :mod:`.page`)."""
from ...choices import SIMILARITY_PROTOCOLS, similarity_options_problem
from ...errors import ParameterError
from ...registry import PeakClaim, Step, Summary, Table, dataset_parameters, register


def _check(params: dict) -> None:
    """A protocol or split the chosen set does not have: here, before any folder is made, not on the page."""
    problem = similarity_options_problem(params["similarity_dataset"], params["similarity_protocol"],
                                         params["similarity_split"])
    if problem:
        raise ParameterError(f"parameter {problem}")

TABLE = Table("two_afc", ("checkpoint", "epoch", "dataset", "subset", "distance", "score", "score_lo", "score_hi",
                          "n_triplets"))

STEP = register(Step(
    "similarity", "07_similarity", (TABLE,), depends=("train",), module="clipalign_utils.steps.similarity.analysis",
    title="2AFC perceptual similarity",
    # "" = the dataset's evaluation split (bapps val, nights test)
    parameters={**dataset_parameters("similarity"), "similarity_protocol": "all",
                "similarity_split": ""},
    choices={"similarity_protocol": SIMILARITY_PROTOCOLS},
    dataset_options=("similarity_protocol", "similarity_split"),  # NIGHTS's protocols and splits are not BAPPS's
    check=_check,
    summary=Summary(
        "two_afc_score", "2AFC similarity score", (("two_afc_score", "two_afc_score_lo", "two_afc_score_hi"),),
        panel=("2AFC score (agreement with judges)", "2AFC similarity"), chance=0.5,
        claims=(PeakClaim("mid-level similarity peaks early then declines", "2AFC score", "triplets", "two_afc"),))))
