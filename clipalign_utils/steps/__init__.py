"""The steps, one package each: ``__init__.py`` registers the step (:mod:`clipalign_utils.registry`: its
tables, parameters, summary and claims; besides the registry it imports leaf modules only, so the steps are
found without importing their code), ``analysis.py`` measures (``load``, ``measure``, the synthesis summary)
and ``page.py`` holds the sentences and figures its notebook shows. ``sweep`` and ``quality_experiment`` are
comparison pages over several runs, registered the same way."""
