"""Two ShapedNetworks side by side (`netspec diff A B`): per block, the nodes added, removed and changed, Δparams
and ΔMACs, changed output shapes, and which state_dict keys keep their name and shape.

Nodes are matched by name: names are the stable dotted paths that are also the compiled model's module paths
and state_dict keys, so "the same node" means the same place in the model.  A node in both is

    changed     its op, arguments or inputs differ (its definition changed);
    reshaped    its definition is the same but its shapes, parameter count or MACs are not (what feeds it
                changed: a wider block before it, another input size);
    same        nothing differs.

Nodes are grouped into blocks as `summary --depth N` groups them (`Network.block_of`: the scope around a node at
level N, or the node itself).  `diff_networks` returns plain data (`SpecDiff.to_json()`); `SpecDiff.status` maps
every node name of either network to its status, for anything that colours a diagram.  The node comparison is
torch-free; the state_dict keys come from the modules built on torch's meta device (`fx.state_shapes`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Mapping

from netspec.backends.compat import Compat, compare, render as render_compat
from netspec.ir import ShapedNetwork, prefixes
from netspec.passes.shapes import format_count

ADDED, REMOVED, CHANGED, RESHAPED, SAME = "added", "removed", "changed", "reshaped", "same"
SHOWN = 12   # detail lines per section before "… and N more"


@dataclass(frozen=True)
class NodeFacts:
    op: str
    args: Mapping[str, object]
    inputs: tuple[str, ...]
    in_shapes: tuple[tuple[int, ...], ...]
    shape: tuple[int, ...]
    params: int
    macs: int


@dataclass(frozen=True)
class NodeDiff:
    name: str
    status: str                       # added | removed | changed | reshaped | same
    changes: tuple[str, ...]          # what differs: op, args, inputs, shape, params, macs
    block: str                        # the block row it counts in
    a: NodeFacts | None
    b: NodeFacts | None


@dataclass(frozen=True)
class BlockDiff:
    name: str                         # a scope path, or a top-level node's name
    kind_a: str | None                # template, scope kind or op; None where the block is absent
    kind_b: str | None
    status: str
    added: int                        # node counts by status
    removed: int
    changed: int
    reshaped: int
    params_a: int
    params_b: int
    macs_a: int
    macs_b: int
    shape_a: tuple[int, ...] | None   # the output of its last node
    shape_b: tuple[int, ...] | None


@dataclass(frozen=True)
class ScopeChange:
    path: str
    kind: str                         # its template, or its kind (seq, repeat, …)
    nodes: int                        # op nodes inside it


@dataclass(frozen=True)
class Side:
    label: str                        # the spec as given (a path or built-in name)
    overrides: Mapping[str, object]   # the params it was given (`--set`)
    name: str
    input: tuple[int, ...]
    output: tuple[int, ...]
    params: int
    macs: int


@dataclass(frozen=True)
class SpecDiff:
    a: Side
    b: Side
    depth: int
    blocks: tuple[BlockDiff, ...]
    nodes: tuple[NodeDiff, ...]       # every node of either network, B's order with A's own nodes in place
    added_scopes: tuple[ScopeChange, ...]     # the outermost scopes only B has (`layer1.2`)
    removed_scopes: tuple[ScopeChange, ...]   # the outermost scopes only A has
    keys: Compat | None               # A's state_dict against B's (None: not computed)

    def __str__(self) -> str:
        return render_table(self)

    @property
    def status(self) -> dict[str, str]:
        """Node name → added | removed | changed | reshaped | same."""
        return {node.name: node.status for node in self.nodes}

    @property
    def identical(self) -> bool:
        return (self.a.input == self.b.input and all(node.status == SAME for node in self.nodes)
                and (self.keys is None or self.keys.complete))

    def to_json(self) -> dict:
        def side(s: Side) -> dict:
            return {"spec": s.label, "set": dict(s.overrides), "name": s.name, "input": list(s.input), "output": list(s.output),
                    "params": s.params, "macs": s.macs}

        def facts(f: NodeFacts | None) -> dict | None:
            return None if f is None else {"op": f.op, "args": _plain(f.args), "inputs": list(f.inputs),
                                           "in_shapes": [list(x) for x in f.in_shapes], "shape": list(f.shape),
                                           "params": f.params, "macs": f.macs}

        return {
            "a": side(self.a), "b": side(self.b), "identical": self.identical, "depth": self.depth,
            "blocks": [{"name": b.name, "kind_a": b.kind_a, "kind_b": b.kind_b, "status": b.status,
                        "added": b.added, "removed": b.removed, "changed": b.changed, "reshaped": b.reshaped,
                        "params_a": b.params_a, "params_b": b.params_b, "delta_params": b.params_b - b.params_a,
                        "macs_a": b.macs_a, "macs_b": b.macs_b, "delta_macs": b.macs_b - b.macs_a,
                        "shape_a": _list(b.shape_a), "shape_b": _list(b.shape_b)} for b in self.blocks],
            "nodes": [{"name": n.name, "status": n.status, "changes": list(n.changes), "block": n.block,
                       "a": facts(n.a), "b": facts(n.b)} for n in self.nodes],
            "added_scopes": [asdict(s) for s in self.added_scopes],
            "removed_scopes": [asdict(s) for s in self.removed_scopes],
            "state_dict": None if self.keys is None else self.keys.to_json(),
        }


def diff_networks(a: ShapedNetwork, b: ShapedNetwork, depth: int = 0, labels: tuple[str, str] | None = None,
                  keys: bool = True, overrides: tuple[Mapping, Mapping] = ({}, {})) -> SpecDiff:
    """A against B.  `depth`: blocks nested deeper than this are one row each (as `summary --depth`); `keys`:
    also compare the state_dicts (imports torch; builds no tensor); `labels` and `overrides`: how the two specs
    were given, for the report."""
    if depth < 0:
        raise ValueError(f"depth must be 0 or more, got {depth}")
    facts_a, facts_b = _node_facts(a), _node_facts(b)
    names = _merged_order(list(facts_a), list(facts_b))
    nodes = []
    for name in names:
        fa, fb = facts_a.get(name), facts_b.get(name)
        block = (b if fb is not None else a).network.block_of(name, depth)
        if fa is None or fb is None:
            nodes.append(NodeDiff(name, ADDED if fa is None else REMOVED, (), block, fa, fb))
            continue
        changes = tuple(what for what, x, y in (
            ("op", fa.op, fb.op), ("args", _plain(fa.args), _plain(fb.args)), ("inputs", fa.inputs, fb.inputs),
            ("shape", fa.shape, fb.shape), ("params", fa.params, fb.params), ("macs", fa.macs, fb.macs))
            if x != y)
        status = (CHANGED if {"op", "args", "inputs"} & set(changes) else RESHAPED if changes else SAME)
        nodes.append(NodeDiff(name, status, changes, block, fa, fb))
    state = None
    if keys:
        from netspec.backends.fx import state_shapes

        state = compare(state_shapes(b), state_shapes(a))
    labels = labels or (a.name, b.name)
    return SpecDiff(_side(labels[0], overrides[0], a), _side(labels[1], overrides[1], b), depth,
                    _blocks(a, b, nodes), tuple(nodes), _outermost(a, b), _outermost(b, a), state)


def _node_facts(shaped: ShapedNetwork) -> dict[str, NodeFacts]:
    return {node.name: NodeFacts(node.op, node.args, node.inputs, shaped.facts[node.name].in_shapes,
                                 shaped.facts[node.name].shape,
                                 shaped.facts[node.name].param_count, shaped.facts[node.name].macs)
            for node in shaped.op_nodes()}


def _merged_order(a: list[str], b: list[str]) -> list[str]:
    """B's names in B's order, each of A's own names right after the last name before it that both have."""
    in_b = set(b)
    after: dict[str | None, list[str]] = {}
    anchor = None
    for name in a:
        if name in in_b:
            anchor = name
        else:
            after.setdefault(anchor, []).append(name)
    merged = list(after.get(None, []))
    for name in b:
        merged.append(name)
        merged += after.get(name, [])
    return merged


def _side(label: str, overrides: Mapping, shaped: ShapedNetwork) -> Side:
    return Side(label, dict(overrides), shaped.name, tuple(shaped.network.input_shape), tuple(shaped.output_shape),
                shaped.param_count, shaped.macs)


def _kind(shaped: ShapedNetwork, block: str) -> str | None:
    scope = shaped.network.scopes.get(block)
    if scope is not None:
        return scope.template or scope.kind
    node = shaped.nodes.get(block)
    return node.op if node is not None else None


def _blocks(a: ShapedNetwork, b: ShapedNetwork, nodes: list[NodeDiff]) -> tuple[BlockDiff, ...]:
    rows: dict[str, dict] = {}
    for node in nodes:
        row = rows.setdefault(node.block, {"count": dict.fromkeys((ADDED, REMOVED, CHANGED, RESHAPED, SAME), 0),
                                           "params": [0, 0], "macs": [0, 0], "last": [None, None]})
        row["count"][node.status] += 1
        for i, facts in enumerate((node.a, node.b)):
            if facts is not None:
                row["params"][i] += facts.params
                row["macs"][i] += facts.macs
                row["last"][i] = facts.shape
    out = []
    for name, row in rows.items():
        kind_a, kind_b = _kind(a, name), _kind(b, name)
        count = row["count"]
        present_a = count[ADDED] < sum(count.values())
        present_b = count[REMOVED] < sum(count.values())
        kind_a, kind_b = (kind_a if present_a else None), (kind_b if present_b else None)
        if not present_a:
            status = ADDED
        elif not present_b:
            status = REMOVED
        elif count[ADDED] or count[REMOVED] or count[CHANGED] or kind_a != kind_b:
            status = CHANGED
        elif count[RESHAPED]:
            status = RESHAPED
        else:
            status = SAME
        out.append(BlockDiff(name, kind_a, kind_b, status, count[ADDED], count[REMOVED], count[CHANGED],
                             count[RESHAPED], row["params"][0], row["params"][1], row["macs"][0], row["macs"][1],
                             row["last"][0], row["last"][1]))
    return tuple(out)


def _outermost(have: ShapedNetwork, other: ShapedNetwork) -> tuple[ScopeChange, ...]:
    """The scopes of `other` that `have` lacks, outermost only (`layer1.2`, not also `layer1.2.downsample`),
    with their op node counts.  One pass over the scopes and one over the nodes, each looking at a name's
    prefixes only."""
    missing = {path for path in other.network.scopes if path not in have.network.scopes and path not in have.nodes}
    outer = [path for path in other.network.scopes if path in missing
             and not any(prefix in missing for prefix in prefixes(path))]
    counts = dict.fromkeys(outer, 0)
    for node in other.op_nodes():
        for prefix in prefixes(node.name):
            if prefix in counts:
                counts[prefix] += 1
                break
    scopes = other.network.scopes
    return tuple(ScopeChange(path, scopes[path].template or scopes[path].kind, counts[path]) for path in outer)


def _plain(value) -> object:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _list(shape) -> list | None:
    return None if shape is None else list(shape)


# ── the table ────────────────────────────────────────────────────────────────────────────────────────────────

def render_table(diff: SpecDiff) -> str:
    a, b = diff.a, diff.b
    lines = [f"{side}: {_given(x)}" for side, x in (("A", a), ("B", b))]
    lines.append("")
    facts = [("", "A", "B", "Δ"),
             ("params", f"{a.params:,}", f"{b.params:,}", _delta(b.params - a.params, False)),
             ("MACs", format_count(a.macs), format_count(b.macs), _delta(b.macs - a.macs, True)),
             ("input", _shape(a.input), _shape(b.input), "" if a.input == b.input else "differs"),
             ("output", _shape(a.output), _shape(b.output), "" if a.output == b.output else "differs")]
    lines += _columns(facts, right=(3,))
    lines.append("")
    header = ("block", "A → B", "added", "removed", "changed", "reshaped", "Δparams", "ΔMACs", "output A → B")
    body = [header]
    for row in diff.blocks:
        kinds = (row.kind_a or "—") if row.kind_a == row.kind_b else f"{row.kind_a or '—'} → {row.kind_b or '—'}"
        shapes = (_shape(row.shape_a) if row.shape_a == row.shape_b else
                  f"{_shape(row.shape_a) if row.shape_a else '—'} → {_shape(row.shape_b) if row.shape_b else '—'}")
        body.append((row.name, kinds, _count(row.added), _count(row.removed), _count(row.changed),
                     _count(row.reshaped), _delta(row.params_b - row.params_a, False),
                     _delta(row.macs_b - row.macs_a, True), shapes))
    lines += _columns(body, right=(2, 3, 4, 5, 6, 7), rule=True)
    lines += _details(diff)
    if diff.keys is not None:
        lines.append("")
        lines.append("state_dict, A's weights into B: " + render_compat(diff.keys, "A", "B"))
    lines.append("")
    lines.append("identical" if diff.identical else _verdict(diff))
    return "\n".join(lines)


def _given(side: Side) -> str:
    """`googlenet --set size=224`, and the network's name where the file's is another."""
    sets = "".join(f" --set {k}={json.dumps(v)}" for k, v in side.overrides.items())
    stem = side.label.replace("\\", "/").rsplit("/", 1)[-1].removesuffix(".yaml")
    return side.label + sets + (f" (network `{side.name}`)" if side.name != stem else "")


def _verdict(diff: SpecDiff) -> str:
    count = {s: 0 for s in (ADDED, REMOVED, CHANGED, RESHAPED)}
    for node in diff.nodes:
        if node.status in count:
            count[node.status] += 1
    return "nodes: " + ", ".join(f"{n} {what}" for what, n in count.items()) + \
        f", {sum(1 for n in diff.nodes if n.status == SAME)} same"


def _details(diff: SpecDiff) -> list[str]:
    lines: list[str] = []
    scoped = {scope.path for scope in diff.added_scopes + diff.removed_scopes}

    def in_listed_scope(name: str) -> bool:
        return any(name.startswith(path + ".") for path in scoped)

    for title, scopes, status, side in (("added (only in B)", diff.added_scopes, ADDED, "b"),
                                        ("removed (only in A)", diff.removed_scopes, REMOVED, "a")):
        items = [f"{scope.path} ({scope.kind}, {scope.nodes} nodes)" for scope in scopes]
        items += [f"{n.name} ({getattr(n, side).op})" for n in diff.nodes
                  if n.status == status and not in_listed_scope(n.name)]
        lines += _section(title, items)
    changed = [f"{n.name}: {_what_changed(n)}" for n in diff.nodes if n.status == CHANGED]
    lines += _section("changed (op, arguments or inputs)", changed)
    reshaped = [f"{n.name}: {n.a.op}; {_what_changed(n)}" for n in diff.nodes if n.status == RESHAPED]
    lines += _section("reshaped (the same definition; what feeds it changed)", reshaped)
    return lines


def _what_changed(node: NodeDiff) -> str:
    a, b = node.a, node.b
    parts = []
    if node.status == RESHAPED:
        pass
    elif a.op != b.op:
        parts.append(f"{a.op} → {b.op}")
    else:
        args = [f"{k} {_value(a.args.get(k))} → {_value(b.args.get(k))}"
                for k in dict.fromkeys([*a.args, *b.args]) if _plain(a.args.get(k)) != _plain(b.args.get(k))]
        parts.append(f"{a.op} " + ", ".join(args) if args else a.op)
    if a.inputs != b.inputs:
        parts.append(f"reads {', '.join(a.inputs)} → {', '.join(b.inputs)}")
    if a.in_shapes != b.in_shapes and node.status == RESHAPED:   # the same inputs: say which one changed
        several = len(a.in_shapes) > 1
        parts += [f"input{f' {i}' if several else ''} {_shape(x)} → {_shape(y)}"
                  for i, (x, y) in enumerate(zip(a.in_shapes, b.in_shapes)) if x != y]
    if a.shape != b.shape:
        parts.append(f"output {_shape(a.shape)} → {_shape(b.shape)}")
    if a.params != b.params:
        parts.append(f"params {a.params:,} → {b.params:,}")
    return "; ".join(parts)


def _value(value) -> str:
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(map(str, value)) + "]"
    return str(value)


def _section(title: str, items: list[str]) -> list[str]:
    if not items:
        return []
    more = [f"  … and {len(items) - SHOWN} more"] if len(items) > SHOWN else []
    return ["", f"{title}:"] + [f"  {item}" for item in items[:SHOWN]] + more


def _columns(rows: list[tuple], right: tuple[int, ...] = (), rule: bool = False) -> list[str]:
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]

    def fmt(row):
        return "  ".join(str(v).rjust(w) if i in right else str(v).ljust(w)
                         for i, (v, w) in enumerate(zip(row, widths))).rstrip()

    lines = [fmt(row) for row in rows]
    if rule:
        line = "─" * (sum(widths) + 2 * (len(widths) - 1))
        lines = [line, lines[0], line, *lines[1:], line]
    return lines


def _count(n: int) -> str:
    return str(n) if n else "·"


def _delta(value: int, short: bool) -> str:
    if not value:
        return "·"
    sign = "+" if value > 0 else "−"
    return sign + (format_count(abs(value)) if short else f"{abs(value):,}")


def _shape(shape) -> str:
    return "×".join(map(str, shape))
