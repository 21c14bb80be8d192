"""Open a page in headless Chromium (Debian's `chromium`, driven by Playwright): console errors
and a screenshot. Used by the report test; no browser is downloaded."""

from __future__ import annotations

import shutil
from pathlib import Path

from mofn2logic.errors import ToolMissingError

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium_path() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        exe = shutil.which(name)
        if exe:
            return exe
    raise ToolMissingError("Chromium is not installed; install it with: sudo apt-get install chromium")


def render_page(page_path: str | Path, screenshot: str | Path, width: int = 1280) -> dict:
    """Load a local page; return its console and page errors, title, height, number of SVGs, and how
    far each `.graph` box scrolls sideways."""
    from playwright.sync_api import sync_playwright

    exe = chromium_path()
    errors, page_errors = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: page_errors.append(str(e)))
            page.goto(Path(page_path).resolve().as_uri(), wait_until="load")
            title = page.title()
            height = page.evaluate("document.body.scrollHeight")
            svgs = page.evaluate("document.querySelectorAll('svg').length")
            # how far each figure box would scroll sideways (0: it fits the page)
            overflow = page.evaluate("[...document.querySelectorAll('.graph')].map(e => e.scrollWidth - e.clientWidth)")
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    return {"console_errors": errors, "page_errors": page_errors, "title": title, "height": height, "svgs": svgs,
            "graph_overflow": overflow}
