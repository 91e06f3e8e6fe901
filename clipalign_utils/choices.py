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
SALIENCY_METHODS = ("smoothgrad", "rollout")
# Where the world puts an object: anywhere it fits whole at a varied size, or near the centre (the first worlds).
OBJECT_PLACEMENTS = ("varied", "centred")
# An interpolated model's BatchNorm statistics: re-estimated on training batches, or interpolated like weights.
BN_STATISTICS = ("reestimate", "interpolate")
