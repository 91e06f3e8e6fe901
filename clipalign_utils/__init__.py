"""clipalign: how CLIP's alignment with human low-level perception evolves during training."""

__version__ = "0.1.0"
