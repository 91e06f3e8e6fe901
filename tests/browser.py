"""Open book pages in headless Debian chromium (offline) and check what a reader would see."""
from __future__ import annotations

import shutil
from pathlib import Path

CHROMIUM = shutil.which("chromium")


def check_pages(paths: list[Path]) -> None:
    """Each page loads with no console error, has figures, and every figure is loaded and non-empty."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-background-networking", "--disable-gpu"])
        try:
            for path in paths:
                page = browser.new_page()
                # No network here: answer the CDN assets a reader's browser would fetch (MathJax)
                # with empty files, so the console shows the page's own errors only.
                page.route(lambda url: not url.startswith("file:"),
                           lambda route: route.fulfill(status=200, body="", content_type="text/javascript"))
                problems = []
                page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
                page.on("pageerror", lambda e: problems.append(str(e)))
                page.goto(path.as_uri(), wait_until="load")
                sizes = page.evaluate(
                    "Array.from(document.querySelectorAll('article img, .bd-article img'))"
                    ".map(i => [i.complete, i.naturalWidth, i.naturalHeight, i.src])")
                assert problems == [], f"{path.name}: console errors {problems}"
                assert sizes, f"{path.name}: no figures"
                for complete, width, height, src in sizes:
                    assert complete and width > 10 and height > 10, f"{path.name}: empty figure {src}"
                page.close()
        finally:
            browser.close()
