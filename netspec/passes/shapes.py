"""Graph → ShapedGraph: output shape, parameter count and MACs of every node, without torch.

Every independent shape error is reported; nodes downstream of a failed node are skipped rather than blamed.
`check_expect` compares the result with the spec's `expect:`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import networkx as nx

from netspec.errors import Note, SpecError, SpecErrors
from netspec.ir import INPUT, OUTPUT, call_notes, inputs_of
from netspec.ops import OPS, ShapeError
from netspec.frontend.yaml_source import mark_of


@dataclass(frozen=True)
class NodeInfo:
    shape: tuple[int, ...]
    params: int
    macs: int


def infer_node(attrs: Mapping, in_shapes: list[tuple[int, ...]]) -> NodeInfo:
    """One node's shape, parameter count and MACs from its op, args and input shapes (raises ShapeError)."""
    op = OPS[attrs["op"]]
    args = attrs["args"]
    shape = tuple(op.shape(args, in_shapes))
    return NodeInfo(shape, op.count_params(args, in_shapes), op.macs(args, in_shapes, shape))


def infer(graph: nx.DiGraph) -> nx.DiGraph:
    """An annotated copy: every node gets shape, in_shapes, params, macs; graph gets totals."""
    shaped = graph.copy()
    errors: list[SpecError] = []
    failed: set[str] = set()
    for node, attrs in shaped.nodes(data=True):
        sources = inputs_of(shaped, node)
        if node == INPUT:
            attrs.update(shape=graph.graph["input_shape"], in_shapes=[], params=0, macs=0)
            continue
        if any(s in failed for s in sources):
            failed.add(node)
            continue
        ins = [shaped.nodes[s]["shape"] for s in sources]
        if node == OUTPUT:
            attrs.update(shape=ins[0], in_shapes=ins, params=0, macs=0)
            continue
        try:
            info = infer_node(attrs, ins)
        except ShapeError as err:
            failed.add(node)
            errors.append(SpecError(err.message, attrs["mark"], "", err.expected, err.found, err.hint,
                                    (Note(f"at node `{node}`"),) + call_notes(graph, node)))
            continue
        attrs.update(shape=info.shape, in_shapes=ins, params=info.params, macs=info.macs)
    if errors:
        raise SpecErrors(errors)
    shaped.graph["total_params"] = sum(a["params"] for _, a in shaped.nodes(data=True))
    shaped.graph["total_macs"] = sum(a["macs"] for _, a in shaped.nodes(data=True))
    shaped.graph["output_shape"] = shaped.nodes[OUTPUT]["shape"]
    return shaped


def check_expect(shaped: nx.DiGraph) -> nx.DiGraph:
    """Raises SpecErrors when the spec's `expect:` disagrees with the inferred network."""
    expect = shaped.graph.get("expect")
    if not expect:
        return shaped
    errors = []
    params, output, macs = shaped.graph["total_params"], list(shaped.graph["output_shape"]), shaped.graph["total_macs"]
    if "params" in expect and expect["params"] != params:
        errors.append(SpecError(f"expect: the network has {params:,} parameters, not {expect['params']:,}",
                                mark_of(expect, "params"), "/expect/params", f"{expect['params']:,}", f"{params:,}",
                                hint="fix the network, or the expectation if the network is right"))
    if "output" in expect and list(expect["output"]) != output:
        errors.append(SpecError(f"expect: the output shape is {output}, not {list(expect['output'])}",
                                mark_of(expect, "output"), "/expect/output", str(list(expect["output"])), str(output)))
    if "macs" in expect and not macs_match(expect["macs"], macs):
        errors.append(SpecError(f"expect: the network has {format_count(macs, 3)} MACs ({macs:,}), not {expect['macs']}",
                                mark_of(expect, "macs"), "/expect/macs", str(expect["macs"]), f"{macs:,}"))
    if errors:
        raise SpecErrors(errors)
    return shaped


UNITS = {"K": 1e3, "M": 1e6, "G": 1e9}


def macs_match(expected, actual: int) -> bool:
    """An int matches exactly; "1.814G" matches when `actual` prints as 1.814G at that precision."""
    if isinstance(expected, int):
        return expected == actual
    number, unit = expected[:-1], expected[-1]
    decimals = len(number.split(".")[1]) if "." in number else 0
    return round(actual / UNITS[unit], decimals) == float(number)


def format_count(value: int, decimals: int = 2) -> str:
    for unit in ("G", "M", "K"):
        if abs(value) >= UNITS[unit]:
            return f"{value / UNITS[unit]:.{decimals}f}{unit}"
    return str(value)
