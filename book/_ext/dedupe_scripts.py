"""Drop repeated <script> entries from each page.

Jupyter Book 1 and sphinx-book-theme both set up sphinx-thebe, whose inline
``const THEBE_JS_URL = …`` then appears twice and throws in the browser console.
"""


def _dedupe(app, pagename, templatename, context, doctree):
    seen, unique = set(), []
    for script in context.get("script_files", []):
        # The same inline script arrives once with filename None and once with '': same key.
        attributes = getattr(script, "attributes", {})
        key = (getattr(script, "filename", str(script)) or "", tuple(sorted((k, str(v)) for k, v in attributes.items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


def setup(app):
    app.connect("html-page-context", _dedupe, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
