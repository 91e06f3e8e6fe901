"""Computed sentences as prose: Markdown output in a notebook (the book and Colab render it as text that
wraps), a plain line elsewhere."""
from __future__ import annotations


def say(text: str) -> None:
    """Show ``text`` (Markdown) as a paragraph of the page."""
    try:
        from IPython import get_ipython
        from IPython.display import Markdown, display
    except ImportError:  # pragma: no cover - IPython ships with every notebook kernel
        get_ipython = None
    if get_ipython is not None and get_ipython() is not None:
        display(Markdown(text))
    else:
        print(text, flush=True)
