"""Page 6 in a build that ran no sweep (the sweep page's ``placeholder``): what it would show, and how to
produce it."""

TEXT = """# 6. What drives the trade-off?

This build of the book ran no sweep, so this chapter has no results. The chapter is the executed
comparison notebook of a sweep (`notebooks/06_sweep.py`): the pipeline run once per setting of
the parameters that may drive the trade-off, then every synthesis curve and verdict compared
across settings.

- `clipalign run --preset full --out runs/full` runs the chapter's sweep (each of
  texture_correlation, texture_scale, fresh_data, epochs and sigmas varied alone around the default
  run) into `runs/full/drivers/`, next to its seeds and scales, and builds the book with it.
- Any sweep builds its own book: `clipalign sweep --preset default
  -p texture_correlation=0.5,0.8,0.95 --out runs/texture_correlation`.
"""


def text(folder=None) -> str:
    return TEXT
