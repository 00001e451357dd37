"""ShapedNetwork → one self-contained HTML page to explore it: `netspec view`.  Never imports torch.

    html = build_page(shaped, [SourceFile(doc.name, "specs/lenet.yaml", text), …])   # the spec and its imports
    html = build_page(shaped, sources, diff={"fc": "changed", "head": "added", "drop": "removed"})

The page holds one Graphviz layout (SVG, from `dot` through the bounded runner of dot.py) per level of folding:
`--depth 0`, 1, … and full depth, as `draw` would draw them.  Every coordinate is Graphviz's; the page only
shows one level at a time and moves between them (opening a block shows the level where it is open, scrolled so
that the block stays where it was).  Beside the layouts it holds a table of the *entities* drawn in them — ops,
the input and output, blocks — with what the tooltip, the totals bar and the source links show, and the text of
the spec's files.

Nothing a spec says reaches the page as markup: labels are escaped by dot.py, the SVG's titles and comments
(which repeat node names) are removed, element ids are numbers, the data is JSON with `<`, `>` and `&` written as
\\u escapes, and the script builds text with `textContent`.  A Content-Security-Policy lets only the page's own
script (named by its hash) run and forbids every request.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Mapping, Sequence

from netspec.backends.draw.dot import FONT, render, to_digraph
from netspec.backends.draw.folding import scope_tree
from netspec.backends.draw.limits import DOT_TIMEOUT, MAX_BOXES
from netspec.backends.draw.view import View, build_view, show_shape, show_value
from netspec.errors import Mark
from netspec.frontend.imports import builtin_root
from netspec.ir import INPUT, OUTPUT, ShapedNetwork, scopes_of

DIFF_STATES = ("added", "removed", "changed")


@dataclass(frozen=True)
class SourceFile:
    name: str                  # the file as the IR's marks name it
    label: str                 # as the page shows it
    text: str


def source_files(documents) -> list[SourceFile]:
    """The spec's documents (pipeline.read) as the page shows them, named without saying where this machine
    keeps them: a built-in spec by its place under specs/, another file relative to the working folder, else
    by its name alone."""
    def label(path: Path) -> str:
        resolved = path.resolve()
        for root, prefix in ((builtin_root().resolve(), "specs/"), (Path.cwd().resolve(), "")):
            try:
                return prefix + resolved.relative_to(root).as_posix()
            except ValueError:
                pass
        return path.name

    return [SourceFile(doc.name, label(doc.path), doc.path.read_text(encoding="utf-8")) for doc in documents]


class PageTooBig(Exception):
    """Even the most folded level has more boxes than `dot` is given."""


@dataclass(frozen=True)
class Level:
    depth: int | None          # None: full depth
    view: View


def levels(shaped: ShapedNetwork, max_boxes: int = MAX_BOXES) -> list[Level]:
    """The levels of folding, most folded first: `--depth 0` up to the deepest nesting, then full depth (each
    opens the scopes of one more level, so no two are the same picture).  A level of more than `max_boxes`
    boxes ends the list (PageTooBig when the first one has)."""
    deepest = max((len(chain) for chain in scope_tree(shaped).chains.values()), default=0)
    found: list[Level] = []
    for depth in [*range(deepest), None]:
        view = build_view(shaped, depth)
        if len(view.items) > max_boxes:
            if not found:
                raise PageTooBig(f"the most folded diagram has {len(view.items):,} boxes, more than `dot` is "
                                 f"given (--max-boxes {max_boxes:,})")
            break
        found.append(Level(depth, view))
    return found


def build_page(shaped: ShapedNetwork, sources: Sequence[SourceFile], diff: Mapping[str, str] | None = None,
               timeout: float | None = DOT_TIMEOUT, max_boxes: int = MAX_BOXES) -> str:
    """The page's HTML.  `diff`: node name → added | removed | changed (names of this network, except the
    removed ones); blocks holding a marked node are marked changed."""
    diff = dict(diff or {})
    unknown = sorted(set(diff.values()) - set(DIFF_STATES))
    if unknown:
        raise ValueError(f"diff states are {', '.join(DIFF_STATES)}, not {', '.join(unknown)}")
    table = _Entities(shaped, diff)
    shown = levels(shaped, max_boxes)
    layouts = []
    for number, level in enumerate(shown):
        ids = {}
        for item in level.view.items:
            ids[item.id] = table.element(*_entity_key(item.id), number, "node")
        for cluster in level.view.clusters:
            ids[cluster.id] = table.element("scope", cluster.path, number, "cluster")
        svg = render(to_digraph(level.view, ids=ids).source, "svg", timeout).decode("utf-8")
        layouts.append({"depth": level.depth, "svg": clean_svg(svg)})
    files = [f.name for f in sources]
    data = {
        "name": shaped.name, "params": shaped.param_count, "macs": shaped.macs,
        "input": show_shape(shaped.network.input_shape), "output": show_shape(shaped.output_shape),
        "levels": layouts, "entities": table.rows(files), "files": [[f.label, f.text] for f in sources],
        "removed": sorted(name for name, state in diff.items() if state == "removed"),
        "diff": {state: sum(1 for s in diff.values() if s == state) for state in DIFF_STATES} if diff else None,
    }
    return _assemble(shaped.name, data)


def _prefixes(name: str) -> list[str]:
    """`a.b.c` → `a`, `a.b`, `a.b.c`."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def _entity_key(item_id: str) -> tuple[str, str]:
    if item_id.startswith("block/"):
        return "scope", item_id.removeprefix("block/")
    return "node", item_id


class _Entities:
    """What the page knows about each drawn thing, numbered in order of first appearance."""

    def __init__(self, shaped: ShapedNetwork, diff: Mapping[str, str]):
        self.shaped, self.diff = shaped, diff
        self.tree = scope_tree(shaped)
        self.keys: dict[tuple[str, str], int] = {}
        self.drawn: dict[int, dict[int, str]] = {}
        # A block is changed when a node inside it is marked, removed ones included (they are named by their
        # place in the other network, which is a place in this one when the block is still here).
        self.changed_scopes = {path for name in diff for path in _prefixes(name) if path in self.tree.scopes}

    def element(self, kind: str, key: str, level: int, drawn_as: str) -> str:
        """The SVG id of an entity, noting that level `level` draws it as a box ("node") or open ("cluster")."""
        number = self.keys.setdefault((kind, key), len(self.keys))
        self.drawn.setdefault(number, {})[level] = drawn_as
        return f"v{number}"

    def rows(self, files: list[str]) -> list[dict]:
        index = {f: i for i, f in enumerate(files)}
        # "at": level → how it is drawn there, so that the page parses a level's SVG only when it is shown
        return [{**self.row(kind, key, index), "at": self.drawn[number]}
                for number, (kind, key) in enumerate(self.keys)]

    def row(self, kind: str, key: str, files: Mapping[str, int]) -> dict:
        def link(label: str, mark: Mark | None) -> list:
            return [label, files[mark.file], mark.line] if mark is not None and mark.file in files else None

        net, facts = self.shaped.network, self.shaped.facts
        if kind == "node" and key.startswith(OUTPUT + "/"):  # one of several outputs: the box view.py draws
            out = next(o for o in net.output_list() if o.name == key.removeprefix(OUTPUT + "/"))
            row = {"name": out.name, "kind": "io", "op": "output (train only)" if out.train_only else "output",
                   "args": [f"from={out.node}"], "shape": show_shape(facts[out.node].shape), "params": 0,
                   "macs": 0, "count": 1, "diff": None}
            row["links"] = [x for x in [link("output", out.mark or net.nodes[OUTPUT].mark)] if x is not None]
            return row
        if kind == "node":
            node, fact = net.nodes[key], facts[key]
            calls = [s for s in reversed(scopes_of(net.scopes, key)) if s.kind == "template"]
            links = [link("input" if key == INPUT else "output" if key == OUTPUT else node.op, node.mark)]
            if calls:  # the op sits in a template's body: where that template is called
                links.append(link(f"call of {calls[0].template}", calls[0].mark))
            row = {"name": key, "kind": "io" if key in (INPUT, OUTPUT) else "op", "op": node.op if node.is_op else key,
                   "args": [f"{k}={show_value(v)}" for k, v in node.args.items()],
                   "shape": show_shape(fact.shape), "params": fact.param_count, "macs": fact.macs, "count": 1,
                   "diff": self.diff.get(key)}
        else:
            scope = self.tree.scopes[key]
            run = self.tree.runs.get(key)
            paths = run[0].paths if run else (key,)
            members = [n for p in paths for n in self.tree.members[p]]
            inside = set(members)
            ins = {show_shape(facts[s].shape): None for n in members for s in net.nodes[n].inputs if s not in inside}
            outs = {show_shape(facts[n].shape): None for n in members
                    if any(d not in inside for d in net.graph.successors(n))}
            if scope.kind == "template":
                links = [link(f"call of {scope.template}", scope.mark), link(f"definition of {scope.template}",
                                                                             scope.defined)]
            else:
                links = [link(scope.kind, scope.mark)]
            row = {"name": key if len(paths) == 1 else f"{key} … {paths[-1]}", "kind": "block",
                   "op": scope.template or scope.kind,
                   "args": [f"{k}={show_value(v)}" for k, v in (scope.args or {}).items()],
                   "shape": f"{', '.join(ins)} → {', '.join(outs)}",
                   "params": sum(facts[n].param_count for n in members),
                   "macs": sum(facts[n].macs for n in members), "count": len(paths),
                   "diff": self.diff.get(key) or ("changed" if any(p in self.changed_scopes for p in paths)
                                                  else None)}
        row["links"] = [x for x in links if x is not None]
        return row


_DROP = re.compile(r"<\?xml[^>]*\?>|<!DOCTYPE[^>]*>|<!--.*?-->|<title>.*?</title>", re.S)


def clean_svg(svg: str) -> str:
    """dot's SVG without its prolog, comments and titles (which repeat node names; the page has its own
    tooltips), without the font named on every text (the page's style names it once), and with runs of
    whitespace between tags dropped."""
    svg = _DROP.sub("", svg).replace(f' font-family="{FONT},sans-Serif"', "")
    return re.sub(r">\s+<", "><", svg).strip()


def _script_json(data) -> str:
    """JSON that is safe inside a <script> element: no `<`, `>` or `&` appears literally."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _asset(name: str) -> str:
    return resources.files("netspec.backends.draw").joinpath(name).read_text(encoding="utf-8")


def _assemble(title: str, data) -> str:
    script = _asset("page.js")
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    csp = (f"default-src 'none'; script-src 'sha256-{digest}'; style-src 'unsafe-inline'; img-src data:; "
           "base-uri 'none'; form-action 'none'")
    page = _asset("page.html")
    parts = {"{{CSP}}": html.escape(csp), "{{TITLE}}": html.escape(title), "{{STYLE}}": _asset("page.css"),
             "{{DATA}}": _script_json(data), "{{SCRIPT}}": script}
    return re.sub("|".join(re.escape(k) for k in parts), lambda m: parts[m.group(0)], page)
