"""Render the README's pictures from the demo's outputs (run `make demo` first):

    .venv/bin/python scripts/readme_pictures.py [demo-out]

docs/images/rule_graph.svg: classes 3 and 8 of the softmax program's rule graph (Graphviz);
docs/images/rule_card.png: the class-3 rule card as the report shows it (headless Chromium);
docs/images/pixel_maps.svg: the replica's first-layer rules on the 8x8 input grid.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from mofn2logic.exporters import load_program, to_text

HERE = Path(__file__).resolve().parent.parent
OUT = HERE / "docs" / "images"


def main() -> None:
    demo = Path(sys.argv[1] if len(sys.argv) > 1 else HERE / "demo-out")
    OUT.mkdir(parents=True, exist_ok=True)
    softmax = load_program(demo / "softmax.pl")
    (OUT / "rule_graph.svg").write_text(to_text(softmax, "svg", classes="3,8", legend=True), encoding="utf-8")
    shutil.copyfile(demo / "figures" / "pixel_maps.svg", OUT / "pixel_maps.svg")
    page = (demo / "report.html").read_text(encoding="utf-8")
    start = page.index("<div class='card'><div class='head'>class 3 ")
    card = page[start:page.index("</ol></div>", start) + len("</ol></div>")]
    style = page[page.index("<style>"):page.index("</style>") + len("</style>")]
    from playwright.sync_api import sync_playwright

    sys.path.insert(0, str(HERE / "tests"))
    from browser import ARGS, chromium_path

    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        html = Path(tmp) / "card.html"
        html.write_text(f"<!DOCTYPE html><html><head><meta charset='utf-8'>{style}</head>"
                        f"<body style='margin:8px;max-width:none'><div class='cards'>{card}</div></body></html>",
                        encoding="utf-8")
        browser = p.chromium.launch(executable_path=chromium_path(), args=ARGS)
        page_ = browser.new_page(viewport={"width": 460, "height": 300})
        page_.goto(html.as_uri())
        page_.locator(".card").screenshot(path=str(OUT / "rule_card.png"))
        browser.close()
    print(f"wrote {', '.join(sorted(f.name for f in OUT.iterdir()))} in {OUT}")


if __name__ == "__main__":
    main()
