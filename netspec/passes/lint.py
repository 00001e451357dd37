"""Findings that are not errors, as warnings: nodes whose output never reaches the network's output, and cycles
(which expansion cannot create; checked so that a hand-built or transformed network is caught too)."""

from __future__ import annotations

import networkx as nx

from netspec.errors import WARNING, SpecError
from netspec.ir import OUTPUT, Network


def lint(network: Network) -> list[SpecError]:
    graph = network.graph
    if not nx.is_directed_acyclic_graph(graph):
        cycle = nx.find_cycle(graph)
        return [SpecError("the graph has a cycle: " + " → ".join(src for src, _ in cycle),
                          network.nodes[cycle[0][0]].mark, severity=WARNING)]
    used = nx.ancestors(graph, OUTPUT) | {OUTPUT}
    return [SpecError(f"the output of `{node.name}` ({node.op}) is never used", node.mark,
                      hint="remove it, or name it in a later `from:`", severity=WARNING)
            for node in network.op_nodes() if node.name not in used]
