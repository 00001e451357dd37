"""ShapedNetwork → a per-node table with block subtotals and totals (text or JSON).  Never imports torch."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from netspec.ir import ShapedNetwork
from netspec.passes.shapes import format_count


@dataclass(frozen=True)
class Row:
    name: str
    op: str              # the op, or for a block: its template name or kind (seq, concat, add, repeat)
    shape: tuple[int, ...]
    params: int
    macs: int
    depth: int           # nesting level: 0 for top-level items
    block: bool          # a subtotal row for a scope


@dataclass(frozen=True)
class Summary:
    name: str
    input: tuple[int, ...]
    output: tuple[int, ...]
    params: int
    macs: int
    rows: tuple[Row, ...]

    def to_json(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        """The table `netspec summary` prints."""
        return render_table(self)


def summarize(shaped: ShapedNetwork, depth: int | None = None) -> Summary:
    """Rows in network order.  Scopes open a block row with their subtotal.  `depth` N opens N levels of
    scopes: scopes nested deeper are one row each, their insides left out (0: every top-level block is one row).
    `draw --depth N` draws exactly these rows."""
    rows: list[Row] = []
    blocks = _block_totals(shaped)
    opened: set[str] = set()
    for node in shaped.op_nodes():
        facts = shaped.facts[node.name]
        scopes = shaped.network.scopes_of(node.name)
        for level, scope in enumerate(scopes):
            if depth is not None and level > depth:
                break
            if scope.path not in opened:
                opened.add(scope.path)
                params, macs, last = blocks[scope.path]
                rows.append(Row(scope.path, scope.template or scope.kind, shaped.facts[last].shape, params, macs,
                                level, True))
        if depth is None or len(scopes) <= depth:
            rows.append(Row(node.name, node.op, facts.shape, facts.param_count, facts.macs, len(scopes), False))
    return Summary(shaped.name, tuple(shaped.network.input_shape), tuple(shaped.output_shape), shaped.param_count,
                   shaped.macs, tuple(rows))


def _block_totals(shaped: ShapedNetwork) -> dict[str, tuple[int, int, str]]:
    totals: dict[str, tuple[int, int, str]] = {}
    for node in shaped.op_nodes():
        facts = shaped.facts[node.name]
        for scope in shaped.network.scopes_of(node.name):
            params, macs, _ = totals.get(scope.path, (0, 0, node.name))
            totals[scope.path] = (params + facts.param_count, macs + facts.macs, node.name)
    return totals


def render_table(summary: Summary) -> str:
    header = ("name", "op", "output", "params", "MACs")
    body = [(("  " * r.depth) + r.name, r.op + (" ▸" if r.block else ""), _shape(r.shape), f"{r.params:,}",
             format_count(r.macs) if r.macs else "—") for r in summary.rows]
    widths = [max(len(str(line[i])) for line in [header, *body]) for i in range(5)]
    fmt = lambda line: "  ".join(str(v).ljust(w) if i < 3 else str(v).rjust(w)
                                 for i, (v, w) in enumerate(zip(line, widths)))
    rule = "─" * (sum(widths) + 8)
    lines = [f"{summary.name}: input {_shape(summary.input)} → output {_shape(summary.output)}", rule, fmt(header), rule]
    lines += [fmt(line) for line in body]
    lines += [rule, f"total params: {summary.params:,}", f"total MACs:   {summary.macs:,} ({format_count(summary.macs)})"
              " per example (conv and linear multiply-accumulates)"]
    return "\n".join(lines)


def _shape(shape) -> str:
    return "×".join(map(str, shape))
