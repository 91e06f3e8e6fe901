"""Orchestration: everything that runs steps rather than measures. ``pipeline`` is the one execution loop
(notebooks through papermill), ``multirun`` (seeds × scales), ``sweep`` and ``experiment`` call it, ``measure``
runs a step as a library call, ``step_page`` is a page's first call, and ``cli`` is the only door that builds
the book (``book``). Nothing below this package imports it."""
