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
    train_only: bool = False  # runs in training only (it feeds only train-only outputs: an auxiliary head)


@dataclass(frozen=True)
class OutputRow:
    name: str            # the output's name (`logits`, `aux_logits1`)
    node: str            # the node it returns
    shape: tuple[int, ...]
    train_only: bool


@dataclass(frozen=True)
class Summary:
    name: str
    input: tuple[int, ...]
    output: tuple[int, ...]
    params: int
    macs: int            # per example, in eval
    rows: tuple[Row, ...]
    outputs: tuple[OutputRow, ...] = ()  # every output, in the order the module returns them
    train_macs: int = 0  # per example, in training (with what feeds the train-only outputs)

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
    train_only = shaped.network.train_only_nodes()
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
                                level, True, bool(train_only) and _all_train_only(shaped, scope.path, train_only)))
        if depth is None or len(scopes) <= depth:
            rows.append(Row(node.name, node.op, facts.shape, facts.param_count, facts.macs, len(scopes), False,
                            node.name in train_only))
    outputs = tuple(OutputRow(out.name, out.node, shaped.facts[out.node].shape, out.train_only)
                    for out in shaped.network.output_list())
    return Summary(shaped.name, tuple(shaped.network.input_shape), tuple(shaped.output_shape), shaped.param_count,
                   shaped.macs, tuple(rows), outputs, shaped.train_macs or shaped.macs)


def _all_train_only(shaped: ShapedNetwork, path: str, train_only) -> bool:
    """Whether every node of scope `path` runs in training only (asked only of networks that have such nodes)."""
    return all(name in train_only for name in shaped.nodes if name.startswith(path + "."))


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
    body = [(("  " * r.depth) + r.name, r.op + (" ▸" if r.block else "") + (" (train)" if r.train_only else ""),
             _shape(r.shape), f"{r.params:,}", format_count(r.macs) if r.macs else "—") for r in summary.rows]
    widths = [max(len(str(line[i])) for line in [header, *body]) for i in range(5)]
    fmt = lambda line: "  ".join(str(v).ljust(w) if i < 3 else str(v).rjust(w)
                                 for i, (v, w) in enumerate(zip(line, widths)))
    rule = "─" * (sum(widths) + 8)
    several = len(summary.outputs) > 1
    heading = ("outputs " + ", ".join(f"{o.name} {_shape(o.shape)}" + (" (train only)" if o.train_only else "")
                                      for o in summary.outputs)) if several else f"output {_shape(summary.output)}"
    lines = [f"{summary.name}: input {_shape(summary.input)} → {heading}", rule, fmt(header), rule]
    lines += [fmt(line) for line in body]
    lines += [rule]
    if several:
        lines += ["outputs:      " + ", ".join(f"{o.name} = {o.node}" + (" (train only)" if o.train_only else "")
                                               for o in summary.outputs)]
    lines += [f"total params: {summary.params:,}", f"total MACs:   {summary.macs:,} ({format_count(summary.macs)})"
              " per example (conv and linear multiply-accumulates)"]
    if summary.train_macs != summary.macs:
        lines[-1] = lines[-1].replace(" per example", " per example in eval")
        lines += [f"              {summary.train_macs:,} ({format_count(summary.train_macs)}) in training, where "
                  "the (train) rows run too"]
    return "\n".join(lines)


def _shape(shape) -> str:
    return "×".join(map(str, shape))
