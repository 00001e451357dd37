"""The graph IR: a networkx DiGraph of op nodes plus `input` and `output`, and its attribute contract.

Node id = the node's stable dotted name (`b3.0.1.2`), which is also its module's name in the compiled model.
Insertion order is a topological order (a node is only added after its inputs); every phase relies on it.

    graph.graph: name, doc, file, params (resolved network params), input_shape, expect, train,
                 scopes: {dotted path: Scope} for every template call, named seq, branch set and repeat
    node attrs:  op (an OPS name, or "input"/"output"), args (MappingProxyType of checked args), mark (Mark),
                 inputs (tuple of node ids in order: concat order, add order; a node may appear twice, as in
                 `concat: {from: [a, a]}`, which a DiGraph's edges alone cannot say)
    edge attrs:  index (the source's first position among the inputs); one edge per distinct source
ShapedGraph (shapes.py) adds to each node: shape (tuple), in_shapes (list of tuples), params (int), macs (int).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Mapping

import networkx as nx

from netspec.errors import Mark, Note, SpecError

INPUT, OUTPUT = "input", "output"


@dataclass(frozen=True)
class Scope:
    """A named group of nodes: a template call, a named seq, a concat/add's branches or a repeat."""

    path: str
    kind: str                      # template | seq | concat | add | repeat
    mark: Mark
    template: str | None = None
    args: Mapping[str, object] | None = None
    defined: Mark | None = None    # a template call: where the template is defined


def call_notes(graph: nx.DiGraph, node: str) -> tuple[Note, ...]:
    """For an error at `node`: the template calls it sits in, innermost first, as the expansion phase words them."""
    calls = [s for s in reversed(scopes_of(graph, node)) if s.kind == "template"]
    return tuple(Note(f"in template `{s.template}`" + (f" ({s.defined})" if s.defined else "") + ", called at", s.mark)
                 for s in calls)


def inputs_of(graph: nx.DiGraph, node: str) -> list[str]:
    """A node's inputs in order, repeats included (node attribute `inputs`; else the edges' `index`)."""
    listed = graph.nodes[node].get("inputs")
    if listed is not None:
        return list(listed)
    preds = [(data["index"], src) for src, _, data in graph.in_edges(node, data=True)]
    return [src for _, src in sorted(preds)]


def op_nodes(graph: nx.DiGraph) -> Iterator[str]:
    return (n for n in graph.nodes if n not in (INPUT, OUTPUT))


def scopes_of(graph: nx.DiGraph, node: str) -> list[Scope]:
    """The scopes a node sits in, outermost first."""
    scopes = graph.graph.get("scopes", {})
    parts = node.split(".")
    return [scopes[p] for p in (".".join(parts[:i]) for i in range(1, len(parts))) if p in scopes]


def lint(graph: nx.DiGraph) -> list[SpecError]:
    """Problems that are not errors: nodes whose output never reaches the network's output, and cycles (which
    expansion cannot create; checked so that a hand-built or transformed graph is caught too)."""
    problems: list[SpecError] = []
    if not nx.is_directed_acyclic_graph(graph):
        cycle = nx.find_cycle(graph)
        problems.append(SpecError("the graph has a cycle: " + " → ".join(src for src, _ in cycle),
                                  graph.nodes[cycle[0][0]].get("mark", Mark(graph.graph.get("file", "?"), 1, 1))))
        return problems
    used = nx.ancestors(graph, OUTPUT) | {OUTPUT} if OUTPUT in graph else set()
    for node in op_nodes(graph):
        if node not in used:
            problems.append(SpecError(f"the output of `{node}` ({graph.nodes[node]['op']}) is never used",
                                      graph.nodes[node]["mark"], hint="remove it, or name it in a later `from:`"))
    return problems
