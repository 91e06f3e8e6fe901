"""The sweep's comparison page (``06_sweep``): the runs of a sweep compared (:mod:`.analysis`, :mod:`.page`);
``clipalign sweep`` runs it (:mod:`clipalign_utils.orchestration.sweep`)."""
from ...registry import SWEEP_PAGE, Page, register_page

register_page(Page(SWEEP_PAGE, "the comparison of a sweep's runs (`clipalign sweep`; the full preset's drivers)",
                    placeholder="clipalign_utils.steps.sweep.placeholder:text"))
