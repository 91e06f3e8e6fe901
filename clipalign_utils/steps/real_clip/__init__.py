"""The chapter on real CLIP trajectories (``10_real_clip``): a public per-epoch trajectory (LAION's
scaling-laws release, or any source ``clipalign run --checkpoints`` takes) analysed by every step
(:mod:`.page`); a build without one shows :mod:`.placeholder`'s page: the command, and its measured cost."""
from ...registry import Page, register_page

register_page(Page("10_real_clip", "a public CLIP trajectory analysed from its source "
                                    "(`clipalign run --checkpoints`; a page when the build holds one)",
                    placeholder="clipalign_utils.steps.real_clip.placeholder:text"))
