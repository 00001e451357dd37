"""ShapedNetwork → View: what a diagram shows — boxes, clusters and shape-labelled edges — as plain data.

The view decides *what* is drawn; `dot.py` decides how it looks.  Keeping the two apart lets the tests check
the content (every edge carries its tensor's shape, boxes total their parameters) without parsing DOT.

- `depth`: scopes nested more than `depth` levels deep become one box each, showing the block's in → out shapes
  and parameter total (`depth=0`: every top-level block is a box).  The items of `depth=N` are the rows of
  `summary --depth N`.
- `fold`: a run of identical consecutive blocks (folding.Run) is drawn once, marked ×N: the first instance,
  or one box when the run is collapsed.  Edges leaving the run carry the last instance's output shape.
- Clusters are drawn for template calls, user-named scopes (`b3`, `layer1`, `downsample`) and fold runs;
  scopes named only by their position (branch sets, repeat iterations) group nothing visible on their own.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

from netspec.backends.draw.folding import Run, ScopeTree, scope_tree
from netspec.backends.draw.ushape import find_ushape
from netspec.ir import INPUT, OUTPUT, ShapedNetwork
from netspec.ops import OPS
from netspec.passes.shapes import format_count

ARG_LINE_WIDTH = 40


@dataclass(frozen=True)
class Item:
    """One box: an op, the input or output, or a collapsed block."""

    id: str                    # DOT node id: the op's dotted name, "input", "output", or "block/<scope path>"
    kind: str                  # op | io | block
    family: str                # the op's family (conv, norm, activation, pool, linear, merge, …), io or block
    title: str
    lines: tuple[str, ...]
    params: int
    cluster: str | None        # id of the innermost cluster that holds it
    tooltip: str
    count: int = 1             # > 1: a folded run of `count` identical blocks


@dataclass(frozen=True)
class Cluster:
    id: str                    # "cluster_<scope path>" (Graphviz draws subgraphs named cluster* as boxes)
    path: str
    parent: str | None
    title: str
    lines: tuple[str, ...]
    style: str                 # block (a template call) | group (a named seq, repeat, …) | fold (×N)
    params: int                # of everything inside; for a fold, of all its instances
    count: int = 1


@dataclass(frozen=True)
class Edge:
    src: str
    dst: str
    shape: tuple[int, ...]     # the tensor's shape (no batch dimension)
    role: str = "down"         # down | up (the way back up of a U, ushape.py) | skip (across the U)


@dataclass(frozen=True)
class View:
    name: str
    title: str
    items: tuple[Item, ...]
    clusters: tuple[Cluster, ...]  # parents before children
    edges: tuple[Edge, ...]


def show_shape(shape) -> str:
    return "×".join(map(str, shape))


def build_view(shaped: ShapedNetwork, depth: int | None = None, fold: bool = True) -> View:
    if depth is not None and (isinstance(depth, bool) or not isinstance(depth, int) or depth < 0):
        raise ValueError(f"depth must be a non-negative int or None, not {depth!r}")
    tree = scope_tree(shaped)
    return _Builder(shaped, tree if fold else replace(tree, runs={}), depth).build()


class _Builder:
    def __init__(self, shaped: ShapedNetwork, tree: ScopeTree, depth: int | None):
        self.shaped, self.tree, self.depth = shaped, tree, depth
        self.nodes, self.facts = shaped.network.nodes, shaped.facts
        self.items: dict[str, Item] = {}
        self.clusters: dict[str, Cluster] = {}

    def build(self) -> View:
        for node in self.nodes:
            self.visible(node)
        edges = self.edges()
        shaped = self.shaped
        title = f"{shaped.name} — {shaped.param_count:,} params, {format_count(shaped.macs)} MACs"
        return View(shaped.name, title, tuple(self.items.values()), tuple(self.clusters.values()), edges)

    # ── which item shows a node ────────────────────────────────────────────────────────────────────────────────
    def visible(self, node: str) -> str:
        """The id of the item that shows `node`: itself, the box it is collapsed into, or — for a node in a
        folded run's later instance — whatever shows its counterpart in the first instance."""
        if node in (INPUT, OUTPUT):
            return self.io(node)
        for level, path in enumerate(self.tree.chains[node]):
            run, index = self.tree.runs.get(path, (None, 0))
            if index > 0:
                return self.visible(run.first + node[len(path):])
            if self.depth is not None and level >= self.depth:
                return self.box(path)
        return self.op(node)

    def io(self, node: str) -> str:
        if node not in self.items:
            shape = show_shape(self.facts[node].shape)
            self.items[node] = Item(node, "io", "io", node, (shape,), 0, None, f"{node}: {shape}")
        return node

    def op(self, node: str) -> str:
        if node not in self.items:
            record, facts = self.nodes[node], self.facts[node]
            params = facts.param_count
            self.items[node] = Item(
                node, "op", OPS[record.op].family, OPS[record.op].label(record.args),
                (f"{params:,} params",) if params else (), params, self.cluster_of(self.tree.chains[node]),
                f"{node}: {record.op} → {show_shape(facts.shape)}, {params:,} params, "
                f"{format_count(facts.macs)} MACs")
        return node

    def box(self, path: str) -> str:
        key = "block/" + path
        if key not in self.items:
            paths = self.run_paths(path)
            members = [n for p in paths for n in self.tree.members[p]]
            ins, outs = self.boundary(members)
            params = sum(self.facts[n].param_count for n in members)
            chain = self.tree.chains[self.tree.members[path][0]]
            parent = self.cluster_of(chain[:chain.index(path)])
            self.items[key] = Item(
                key, "block", "block", self.heading(paths, parent),
                self.arg_lines(path) + (f"{ins} → {outs}", f"{params:,} params"), params, parent,
                f"{self.heading(paths, None)}: {ins} → {outs}", len(paths))
        return key

    # ── clusters ───────────────────────────────────────────────────────────────────────────────────────────────
    def cluster_of(self, chain: tuple[str, ...]) -> str | None:
        """Creates the clusters along a scope chain (outermost first) and returns the innermost one's id."""
        parent = None
        for path in chain:
            if self.is_cluster(path):
                parent = self.cluster(path, parent)
        return parent

    def is_cluster(self, path: str) -> bool:
        scope = self.tree.scopes[path]
        return path in self.tree.runs or scope.kind == "template" or not path.rsplit(".", 1)[-1].isdigit()

    def cluster(self, path: str, parent: str | None) -> str:
        key = "cluster_" + path
        if key not in self.clusters:
            paths = self.run_paths(path)
            params = sum(self.facts[n].param_count for p in paths for n in self.tree.members[p])
            if len(paths) > 1:
                style = "fold"
                extra = (f"{params:,} params in the {len(paths)} blocks",) + self.varying_note(paths)
            else:
                style = "block" if self.tree.scopes[path].kind == "template" else "group"
                extra = (f"{params:,} params",)
            self.clusters[key] = Cluster(key, path, parent, self.heading(paths, parent),
                                         self.arg_lines(path) + extra, style, params, len(paths))
        return key

    def varying_note(self, paths: tuple[str, ...]) -> tuple[str, ...]:
        """Inside a folded run the edges show the first instance's shapes; say so when the others differ."""
        def shapes(path: str) -> list:
            return [self.facts[n].shape for n in self.tree.members[path]]

        if all(shapes(p) == shapes(paths[0]) for p in paths[1:]):
            return ()
        return ("edge shapes: the first block's",)

    # ── edges ──────────────────────────────────────────────────────────────────────────────────────────────────
    def edges(self) -> tuple[Edge, ...]:
        seen: dict[tuple, Edge] = {}
        role = self.roles()
        for node, record in self.nodes.items():
            for src in record.inputs:
                if not self.shown(src, node):
                    continue
                a, b = self.visible(src), self.visible(node)
                shape = tuple(self.facts[src].shape)
                if a != b:
                    seen.setdefault((a, b, shape), Edge(a, b, shape, role(a, b)))
        return tuple(seen.values())

    def roles(self):
        """(src item, dst item) → the edge's role: in a U (ushape.py) an edge into an item on the way up rises
        ("up") when it comes from the way up or the turn, and crosses ("skip") when it comes from the way down.
        An item is on the way up when every node it shows is; a box holding both sides is on the way down."""
        u = find_ushape(self.shaped)
        if u is None:
            return lambda a, b: "down"
        down = {self.visible(node) for node in self.nodes if node not in u.up}
        turn = self.visible(u.turn)

        def role(a: str, b: str) -> str:
            if b in down:
                return "down"
            return "up" if a not in down or a == turn else "skip"
        return role

    def shown(self, src: str, dst: str) -> bool:
        """Edges within a folded run are drawn only for its first instance; edges between instances not at all."""
        a, b = self.instances(src), self.instances(dst)
        return all(a[run] == b[run] == 0 for run in a.keys() & b.keys())

    def instances(self, node: str) -> dict[Run, int]:
        return dict(self.tree.runs[p] for p in self.tree.chains.get(node, ()) if p in self.tree.runs)

    # ── text ───────────────────────────────────────────────────────────────────────────────────────────────────
    def run_paths(self, path: str) -> tuple[str, ...]:
        run, _ = self.tree.runs.get(path, (None, 0))
        return run.paths if run is not None else (path,)

    def heading(self, paths: tuple[str, ...], parent: str | None) -> str:
        """`b3.0: inception`, `layer1.0–1: basic ×2`, or just the name when it says it all (`b3`, `transition`)."""
        name, block = self.display(paths, parent), self.block_name(paths[0])
        if len(paths) == 1 and (self.tree.scopes[paths[0]].kind == "seq" or name.rsplit(".", 1)[-1] == block):
            return name
        return f"{name}: {block}" + (f" ×{len(paths)}" if len(paths) > 1 else "")

    def block_name(self, path: str) -> str:
        scope = self.tree.scopes[path]
        return scope.template or scope.kind

    def arg_lines(self, path: str) -> tuple[str, ...]:
        args = self.tree.scopes[path].args or {}
        return wrap([f"{key}={show_value(value)}" for key, value in args.items()])

    def boundary(self, members: list[str]) -> tuple[str, str]:
        """A block's input and output shapes ("a, b" when several tensors cross its border)."""
        inside = set(members)
        graph = self.shaped.network.graph
        ins = {show_shape(self.facts[s].shape): None for n in members for s in self.nodes[n].inputs
               if s not in inside}
        outs = {show_shape(self.facts[n].shape): None for n in members
                if any(d not in inside for d in graph.successors(n))}
        return ", ".join(ins), ", ".join(outs)

    def display(self, paths: tuple[str, ...], parent: str | None) -> str:
        """A scope's name relative to the cluster drawn around it (the tooltip has the full path); for a run
        `layer3.1–5` or `denselayer1–6`."""
        within = self.clusters[parent].path + "." if parent else ""
        name = paths[0][len(within):] if paths[0].startswith(within) else paths[0]
        if len(paths) == 1:
            return name
        first, last = paths[0].rsplit(".", 1)[-1], paths[-1].rsplit(".", 1)[-1]
        common = len(os.path.commonprefix([first, last]).rstrip("0123456789"))
        return f"{name}–{last[common:]}"


def show_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(show_value(v) for v in value) + "]"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def wrap(words: list[str], width: int = ARG_LINE_WIDTH) -> tuple[str, ...]:
    lines: list[str] = []
    for word in words:
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return tuple(lines)
