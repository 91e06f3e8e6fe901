"""clipalign: how CLIP's alignment with human low-level perception evolves during training."""

__version__ = "0.1.0"

import warnings

from tqdm import TqdmWarning

# Progress bars here are plain text; without ipywidgets, libraries importing tqdm.auto warn in
# every notebook. The warning says nothing about our results.
warnings.filterwarnings("ignore", message="IProgress not found", category=TqdmWarning)
