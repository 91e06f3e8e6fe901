"""clipalign: how CLIP's alignment with human low-level perception evolves during training."""

__version__ = "0.1.0"

import os
import warnings

# numpy marks each large array it allocates for transparent huge pages (madvise). Where the kernel's THP defrag is
# "madvise" (Ubuntu's default, and these machines'), a fault in such memory while no huge page is free stalls on
# a synchronous compaction (numpy/numpy#31590): full-resolution saliency scoring spent 10.6 s of 26 in the kernel,
# 2.0 s without the mark, and ran 1.5x faster. Before numpy is imported (this package imports it after), and
# inherited by the pages' kernels; NUMPY_MADVISE_HUGEPAGE=1 keeps numpy's default.
os.environ.setdefault("NUMPY_MADVISE_HUGEPAGE", "0")

from tqdm import TqdmWarning  # noqa: E402

# Progress bars here are plain text; without ipywidgets, libraries importing tqdm.auto warn in
# every notebook. The warning says nothing about our results.
warnings.filterwarnings("ignore", message="IProgress not found", category=TqdmWarning)
