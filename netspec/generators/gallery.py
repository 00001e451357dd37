"""Regenerates docs/gallery/: a diagram of every spec in specs/, at a depth that fits one readable page, and a
screenshot of its `netspec view` page.

    python -m netspec.generators.gallery [--specs specs] [--out docs/gallery] [--pages build/gallery]
                                                                                     (or `make gallery`)

For each spec `NAME.svg` (the picture) and `NAME.dot` (its source), plus `README.md`, an index with the depth
and command of each.  The depth is the deepest at which the diagram fits a page (`fits`), so a spec added later
gets a sensible picture without configuration.  tests/test_draw.py fails when a committed file
differs from what this writes (the DOT always; the SVG when the local Graphviz is the version that made it).

Then the `netspec view` page of each spec goes to `--pages` (build/gallery: pages are not committed, being
rebuilt by one command and 0.1–0.8 MB each), and a screenshot of it, with its first block opened and selected,
to `view/NAME.png` in the gallery (committed; made in headless chromium, so skipped with a note where there is
none, keeping the committed ones).  Screenshots are checked for presence, not bytes: fonts and chromium
versions change pixels.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import networkx as nx

from netspec.backends.draw.dot import DotMissing, render, to_digraph
from netspec.backends.draw.folding import scope_tree
from netspec.backends.draw.page import build_page, source_files
from netspec.backends.draw.view import View, build_view
from netspec.errors import SpecErrors
from netspec.errors import render as render_error
from netspec.ir import ShapedNetwork
from netspec.pipeline import read, shape_documents, shaped_network

MAX_RANKS = 55      # the longest input → output chain of boxes
MAX_ITEMS = 100
# Also drawn at full depth (NAME-full.svg), to show what the one-page picture collapses: Inception's four paths,
# and MobileNetV3's squeeze-excitation, a side branch meeting the block's tensor at a `mul`.
FULL_DEPTH_EXTRAS = ("googlenet.yaml", "imagenet/mobilenet_v3_small.yaml")
VIEW = "view"                       # the screenshots' folder in the gallery
SHOT = {"width": 1100, "height": 640}
SHOT_COLOURS = 96                   # a palette PNG of a diagram loses nothing visible and is a third the size


@dataclass(frozen=True)
class Picture:
    name: str                  # file stem: the spec's path under specs/, "/" → "-" (+ "-full" for an extra)
    spec: str                  # the spec's path as the index shows it
    depth: int | None          # None: full depth
    params: int
    dot: str


def gallery_specs(root: Path) -> list[Path]:
    """Every network spec under `root` (block libraries excluded), in a stable order."""
    return sorted(p for p in root.rglob("*.yaml") if "blocks" not in p.relative_to(root).parts)


def pick_depth(shaped: ShapedNetwork) -> int | None:
    """The full diagram if it fits, else the deepest depth that does (None: full depth)."""
    tree = scope_tree(shaped)
    deepest = max((len(chain) for chain in tree.chains.values()), default=0)
    for depth in [None, *range(deepest - 1, 0, -1)]:
        if fits(build_view(shaped, depth)):
            return depth
    return 0 if deepest else None


def fits(view: View) -> bool:
    """At most MAX_RANKS boxes from input to output and MAX_ITEMS in all: one page at 100% zoom."""
    chain = nx.DiGraph((edge.src, edge.dst) for edge in view.edges)
    return len(view.items) <= MAX_ITEMS and nx.dag_longest_path_length(chain) + 1 <= MAX_RANKS


def picture(spec: Path, root: Path, full: bool = False) -> Picture:
    shaped = shaped_network(spec)
    depth = None if full else pick_depth(shaped)
    relative = spec.relative_to(root).with_suffix("")
    return Picture(str(relative).replace("/", "-") + ("-full" if full else ""),
                   f"{root.name}/{relative.as_posix()}.yaml", depth, shaped.param_count,
                   to_digraph(build_view(shaped, depth)).source)


def gallery_files(root: Path, svg: bool = True) -> dict[str, bytes]:
    """File name → bytes of everything in the gallery (SVGs only with `svg`, which needs Graphviz)."""
    specs = gallery_specs(root)
    pictures = [picture(spec, root) for spec in specs]
    pictures += [picture(root / extra, root, full=True) for extra in FULL_DEPTH_EXTRAS if root / extra in specs]
    files = {"README.md": index(pictures).encode("utf-8")}
    for pic in pictures:
        files[f"{pic.name}.dot"] = pic.dot.encode("utf-8")
        if svg:
            files[f"{pic.name}.svg"] = render(pic.dot, "svg")
    return files


def index(pictures: list[Picture]) -> str:
    lines = ["# Gallery", "",
             "Every spec in `specs/`, drawn by `netspec draw` at the deepest depth that fits one page (at most "
             f"{MAX_RANKS} boxes from input to output, {MAX_ITEMS} in all), and a screenshot of its interactive "
             "page (`netspec view`, its first block opened). Generated by `make gallery` "
             "(`python -m netspec.generators.gallery`); do not edit — `tests/test_draw.py` fails when these files are stale. "
             "The pages themselves are not committed: `make gallery` writes them to `build/gallery/`, or run the "
             "`netspec view` command shown. See [../draw.md](../draw.md).", "",
             "| spec | params | depth | command | page |", "|---|---:|---|---|---|"]
    for pic in pictures:
        flag = "" if pic.depth is None else f" --depth {pic.depth}"
        shown = "full" if pic.depth is None else str(pic.depth)
        page = "" if pic.name.endswith("-full") else \
            f"[screenshot]({VIEW}/{pic.name}.png) · `netspec view {pic.spec}`"
        lines.append(f"| [{pic.spec}]({pic.name}.svg) | {pic.params:,} | {shown} | "
                     f"`netspec draw {pic.spec}{flag} -o {pic.name}.svg` | {page} |")
    return "\n".join(lines) + "\n"


def write_gallery(root: Path, out: Path) -> list[str]:
    """Writes the gallery into `out`, removing pictures of specs that no longer exist; returns what changed."""
    files = gallery_files(root)
    out.mkdir(parents=True, exist_ok=True)
    changed = []
    for name, data in files.items():
        target = out / name
        if not target.exists() or target.read_bytes() != data:
            target.write_bytes(data)
            changed.append(name)
    for old in sorted(out.glob("*")):
        if old.suffix in (".svg", ".dot") and old.name not in files:
            old.unlink()
            changed.append(f"{old.name} (removed)")
    return changed


def page_name(spec: Path, root: Path) -> str:
    return str(spec.relative_to(root).with_suffix("")).replace("/", "-")


def write_pages(root: Path, out: Path) -> dict[str, Path]:
    """The `netspec view` page of every spec, written into `out`; file stem → path."""
    out.mkdir(parents=True, exist_ok=True)
    pages = {}
    for spec in gallery_specs(root):
        documents = read(spec)
        html = build_page(shape_documents(documents), source_files(documents))
        pages[page_name(spec, root)] = out / f"{page_name(spec, root)}.html"
        pages[page_name(spec, root)].write_text(html, encoding="utf-8")
    return pages


def write_screenshots(pages: dict[str, Path], out: Path) -> list[str]:
    """A screenshot of each page, its first closed block opened (which selects it: the info panel and the
    source line show), as `out/NAME.png`; screenshots of pages no longer made are removed."""
    from PIL import Image

    from netspec.generators.browser import headless_browser

    out.mkdir(parents=True, exist_ok=True)
    changed = []
    with headless_browser() as browser:
        tab = browser.new_page(viewport=SHOT)
        for name, page in pages.items():
            tab.goto(page.resolve().as_uri())
            closed = tab.locator('#graph g.node[aria-label$=", closed"]')
            if closed.count():
                closed.first.click()
            tab.mouse.move(0, 0)
            tab.locator("#tip").wait_for(state="hidden")
            shot = out / f"{name}.png"
            old = shot.read_bytes() if shot.exists() else None
            tab.screenshot(path=str(shot))
            Image.open(shot).convert("RGB").quantize(SHOT_COLOURS).save(shot, optimize=True)
            if shot.read_bytes() != old:
                changed.append(f"{VIEW}/{shot.name}")
    for old in sorted(out.glob("*.png")):
        if old.stem not in pages:
            old.unlink()
            changed.append(f"{VIEW}/{old.name} (removed)")
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m netspec.generators.gallery", description=__doc__.split("\n")[0])
    parser.add_argument("--specs", default="specs", type=Path, help="folder of specs (default: specs)")
    parser.add_argument("--out", default="docs/gallery", type=Path, help="output folder (default: docs/gallery)")
    parser.add_argument("--pages", default="build/gallery", type=Path,
                        help="folder for the `netspec view` pages (default: build/gallery)")
    args = parser.parse_args(argv)
    from netspec.generators.browser import missing

    try:
        changed = write_gallery(args.specs, args.out)
        pages = write_pages(args.specs, args.pages)
        print(f"{args.pages}: {len(pages)} pages", file=sys.stderr)
        if missing():
            print(f"gallery: screenshots of the pages not made: {missing()}", file=sys.stderr)
        else:
            changed += write_screenshots(pages, args.out / VIEW)
    except SpecErrors as err:
        for error in err.errors:
            print(render_error(error), file=sys.stderr)
        return 2
    except DotMissing as err:
        print(f"gallery: Graphviz's `dot` is needed for the SVGs; {err}", file=sys.stderr)
        return 1
    for name in changed:
        print(f"wrote {args.out / name}", file=sys.stderr)
    print(f"{args.out}: {'up to date' if not changed else f'{len(changed)} file(s) changed'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
