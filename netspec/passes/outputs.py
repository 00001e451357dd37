"""ShapedNetwork → the feature extractor that returns chosen nodes (`netspec.load(spec, outputs=[…])`, as timm's
`features_only`): the network cut down to what those nodes need, returning their tensors as a list.

A name is a top-level name of the body (`layer1`, `relu`: the output of that item) or an op node's dotted name
(`layer1.0.relu_out`).  Everything no chosen node depends on is dropped — the classifier, later stages and
auxiliary heads — with its parameters, so the extractor's state_dict is the network's without those keys.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Sequence

import networkx as nx

from netspec.errors import SpecError, SpecErrors, did_you_mean
from netspec.ir import INPUT, LIST, OUTPUT, Node, Output, ShapedNetwork, build_network
from netspec.ops import OPS
from netspec.passes import shapes


def select_outputs(shaped: ShapedNetwork, names: Sequence[str]) -> ShapedNetwork:
    """The network returning the nodes `names` stand for, in that order, pruned to their ancestors (raises
    SpecErrors for an unknown or repeated name, located at the spec's body)."""
    network = shaped.network
    mark = network.nodes[OUTPUT].mark
    known = dict(network.names) | {node.name: node.name for node in network.op_nodes()}
    errors, chosen, seen = [], [], {}
    if isinstance(names, str) or not names:
        raise SpecErrors.one("`outputs` must be a non-empty list of node names", mark,
                             expected="e.g. outputs=['layer1', 'layer2']", found=repr(names)[:200])
    for name in names:
        if not isinstance(name, str) or name not in known:
            errors.append(SpecError(f"unknown output `{name}`: no top-level name or node of `{network.name}` has "
                                    "that name", mark, expected="a top-level name of the body or a node's dotted "
                                    "name", found=f"`{name}`", hint=did_you_mean(str(name), known) or
                                    "top-level names: " + ", ".join(network.names)))
            continue
        node = known[name]
        refused = _not_a_feature(network.nodes[node], name)
        if refused:
            errors.append(SpecError(refused[0], mark, expected="a node whose output is one batched tensor",
                                    found=f"`{name}`", hint=refused[1]))
            continue
        if node in seen:
            errors.append(SpecError(f"output `{name}` is asked for twice" + (
                f" (`{seen[node]}` is the same node)" if seen[node] != name else ""), mark,
                found=f"`{name}`", hint="ask for each output once"))
            continue
        seen[node] = name
        chosen.append(Output(name, node))
    if errors:
        raise SpecErrors(errors)
    keep = set().union(*(nx.ancestors(network.graph, out.node) | {out.node} for out in chosen)) | {INPUT}
    nodes = [node for node in network.nodes.values() if node.name in keep]
    nodes.append(Node(OUTPUT, OUTPUT, network.nodes[OUTPUT].args, tuple(out.node for out in chosen), mark))
    scopes = {path: scope for path, scope in network.scopes.items()
              if any(name == path or name.startswith(path + ".") for name in keep)}
    pruned = build_network(nodes, name=network.name, doc=network.doc, file=network.file, params=network.params,
                           input_shape=network.input_shape, expect=network.expect, train=network.train,
                           scopes=MappingProxyType(scopes), outputs=tuple(chosen), returns=LIST,
                           names=MappingProxyType({k: v for k, v in network.names.items() if v in keep}))
    return shapes.infer(pruned)


def _not_a_feature(node: Node, name: str) -> tuple[str, str] | None:
    """(message, hint) when `node`'s output is not one batched tensor, as a spec's own `from:` refuses it too:
    a chunk's parts are read one by one, and a learnable tensor has no batch dimension."""
    if node.op == "parameter":
        return (f"output `{name}` is a learnable tensor, which has no batch dimension",
                "ask for the node that applies it (the `mul` that reads it), or the block around it")
    if node.is_op and OPS[node.op].outputs is not None:
        return (f"output `{name}` is a `{node.op}` with {OPS[node.op].outputs(node.args)} parts, not one tensor",
                "ask for the nodes that read its parts, or the block around it")
    return None
