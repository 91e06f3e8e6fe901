"""Computed sentences as prose: Markdown output in a notebook (the book and Colab render it as text that
wraps), a plain line elsewhere."""
from __future__ import annotations


def show(rich, plain: str) -> None:
    """Display ``rich`` (a Markdown object, a DataFrame) in a notebook kernel; print ``plain`` elsewhere."""
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:  # pragma: no cover - IPython ships with every notebook kernel
        get_ipython = None
    if get_ipython is not None and get_ipython() is not None:
        display(rich)
    else:
        print(plain, flush=True)


def say(text) -> None:
    """Show ``text`` (Markdown) as a paragraph of the page; a list (or any iterable) of texts, as one
    paragraph each (what the step modules' sentence functions return)."""
    from IPython.display import Markdown

    for line in [text] if isinstance(text, str) else text:
        show(Markdown(line), line)
