"""How fast a `netspec view` page opens and opens a block, in headless chromium (the figure in docs/benchmarks.md).

    python bench/view_timing.py [--repeats 5] [SPEC ...]       (default: every ImageNet spec)

For each spec the page is built once (its size is reported), then opened `--repeats` times in a fresh tab:
- open: from the start of navigation to the first frame painted after the load event (the page shows its first
  level when its script runs, before load), read from the page's own clock (`performance.now()`, whose zero is
  the navigation's start);
- expand: from a click on the first closed block (dispatched in the page, so Playwright's own messaging is not
  counted) to the second animation frame after it, when the opened level has been laid out and painted.
Reported: min / median / max in milliseconds.  Needs Graphviz, Playwright and chromium (`make setup` installs
them; docs/testing.md).  Nothing here is a test: times vary with the machine and its load.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from netspec.backends.draw.page import build_page, source_files  # noqa: E402
from netspec.frontend.imports import builtin_names  # noqa: E402
from netspec.generators.browser import headless_browser  # noqa: E402
from netspec.pipeline import read, shape_documents  # noqa: E402

OPENED = """() => new Promise(done => {
  const painted = () => requestAnimationFrame(() => requestAnimationFrame(() => done(performance.now())));
  if (document.readyState === "complete") painted(); else addEventListener("load", painted);
})"""
EXPAND = """() => new Promise(done => {
  const box = document.querySelector('#graph g.node[aria-label$=", closed"]');
  const start = performance.now();
  box.dispatchEvent(new MouseEvent("click", {bubbles: true}));
  requestAnimationFrame(() => requestAnimationFrame(() => done(performance.now() - start)));
})"""


def measure(browser, page: Path, repeats: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"open": [], "expand": []}
    for _ in range(repeats):
        tab = browser.new_page(viewport={"width": 1280, "height": 800})
        tab.goto(page.resolve().as_uri(), wait_until="commit")
        times["open"].append(tab.evaluate(OPENED))
        times["expand"].append(tab.evaluate(EXPAND))
        tab.close()
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("specs", nargs="*", help="specs (default: every imagenet/ spec)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    specs = args.specs or sorted(n for n in builtin_names() if n.startswith("imagenet/"))
    print("| spec | page | levels | open (ms) min / median / max | expand a block (ms) min / median / max |")
    print("|---|---:|---:|---|---|")
    with tempfile.TemporaryDirectory() as tmp, headless_browser() as browser:
        for spec in specs:
            documents = read(spec)
            html = build_page(shape_documents(documents), source_files(documents))
            page = Path(tmp) / "page.html"
            page.write_text(html, encoding="utf-8")
            times = measure(browser, page, args.repeats)

            def show(values: list[float]) -> str:
                return f"{min(values):.0f} / {statistics.median(values):.0f} / {max(values):.0f}"

            levels = html.count('"depth":')
            print(f"| {spec} | {len(html.encode('utf-8')) / 1e3:,.0f} kB | {levels} | {show(times['open'])} | "
                  f"{show(times['expand'])} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
