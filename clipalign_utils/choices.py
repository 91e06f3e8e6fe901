"""Every parameter's list of choices, once. A leaf module (it imports nothing), so the parameter checks
(``config``) and the code that implements each choice (metrics, data) read the same tuple.

The dataset choices (``iqa_dataset`` …) are not here: they are live views of the dataset registry
(``data.registry.dataset_choices``), and the quality families are the embedded IQA distortion families
(``data.world.QUALITY_FAMILIES``)."""

DEVICES = ("auto", "cpu", "cuda")
DISTANCES = ("cosine", "euclidean", "normalized_euclidean")
IQA_RESIZE = ("auto", "patches", "resize", "crop")
NOISE_AT = ("native", "input")
LAYERS = ("final", "all")
SIMILARITY_PROTOCOLS = ("all", "votes6")
NIGHTS_SPLITS = ("train", "val", "test")  # data.csv's split column
# similarity_split's choices on NIGHTS: a split, or all: every row of data.csv, as the paper's authors score it
# (their NIGHTS scripts iterate over all 20,019 triplets, the normalized-euclidean scales taken over them all)
NIGHTS_SPLIT_CHOICES = NIGHTS_SPLITS + ("all",)
SALIENCY_METHODS = ("smoothgrad", "rollout")
# The embedded IQA set's judge (data.iqa_embedded.OBSERVERS): piq's full-reference measures that need no weights
REFERENCE_OBSERVERS = ("haarpsi", "ms_ssim", "ssim", "mdsi")
# direct: zero-shot over the cue-conflict set's 16 class names; imagenet: model-vs-human's CLIP decision (a
# 1,000-class ImageNet zero-shot head, its probabilities averaged into the 16 categories)
SHAPE_CLASSIFIERS = ("direct", "imagenet")
# Where the world puts an object: anywhere it fits whole at a varied size, or near the centre (the first worlds).
OBJECT_PLACEMENTS = ("varied", "centred")
# An interpolated model's BatchNorm statistics: re-estimated on training batches, or interpolated like weights.
BN_STATISTICS = ("reestimate", "interpolate")


def similarity_options_problem(dataset: str, protocol: str, split: str | None) -> str | None:
    """What is wrong with ``similarity_protocol``/``similarity_split`` for the 2AFC set ``dataset``, or None: the
    step's up-front check and the set's loader say the same. (A real set's splits are its folder's to say.)"""
    if dataset in ("embedded", "bapps") and protocol != "all":
        return (f"similarity_protocol={protocol} applies to nights only (it filters on NIGHTS's vote counts); "
                f"{dataset} has protocol all")
    if dataset == "embedded" and (split or "test") != "test":
        return f"similarity_split={split!r}: the embedded set has one split, test"
    if dataset == "nights" and split and split not in NIGHTS_SPLIT_CHOICES:
        return (f"similarity_split={split!r}: NIGHTS's splits are {', '.join(NIGHTS_SPLITS)}, or all (every "
                f"row, as the paper's authors score it)")
    return None
