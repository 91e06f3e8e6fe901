"""The quality-variation experiment's chapter (``09_quality_experiment``): its sweeps compared
(:mod:`.analysis`, :mod:`.page`); ``clipalign experiment quality`` runs it."""
from ...registry import Page, register_page

register_page(Page("09_quality_experiment",
                    "the quality-variation experiment: its sweeps compared (a page when the run holds it)"))
