"""The book built from a smoke run: every notebook page loads in headless Chromium with no
console errors, and its figures are present and non-empty."""
from __future__ import annotations

import shutil

import pytest

from clipalign_utils.pipeline import STEPS

CHROMIUM = shutil.which("chromium")


def test_book_has_every_page(smoke_pipeline):
    html = smoke_pipeline / "book" / "_build" / "html"
    assert (html / "index.html").exists()
    for name in STEPS.values():
        page = (html / "notebooks" / f"{name}.html").read_text()
        assert "colab.research.google.com/github/clipalign/clipalign/blob/main/notebooks/" \
               f"{name}.ipynb" in page
    assert "{include}" not in (html / "index.html").read_text()


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (scripts/setup.sh installs it)")
def test_notebook_pages_render_in_chromium(smoke_pipeline):
    from playwright.sync_api import sync_playwright

    html = smoke_pipeline / "book" / "_build" / "html"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-background-networking", "--disable-gpu"])
        try:
            for name in STEPS.values():
                page = browser.new_page()
                # No network here: answer the CDN assets a reader's browser would fetch (MathJax)
                # with empty files, so the console shows the page's own errors only.
                page.route(lambda url: not url.startswith("file:"), lambda route: route.fulfill(status=200, body="", content_type="text/javascript"))
                problems = []
                page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
                page.on("pageerror", lambda e: problems.append(str(e)))
                page.goto((html / "notebooks" / f"{name}.html").as_uri(), wait_until="load")
                sizes = page.evaluate(
                    "Array.from(document.querySelectorAll('article img, .bd-article img'))"
                    ".map(i => [i.complete, i.naturalWidth, i.naturalHeight, i.src])")
                assert problems == [], f"{name}: console errors {problems}"
                assert sizes, f"{name}: no figures"
                for complete, width, height, src in sizes:
                    assert complete and width > 10 and height > 10, f"{name}: empty figure {src}"
                page.close()
        finally:
            browser.close()
