"""The block structure of a compiled network: which dotted paths become container modules, what each one reads
and returns, and which are plain chains.  Plain Python over the IR (no torch), shared by `fx.py` (the live
module) and `pysource.py` (the standalone file), so that the two cannot build different trees.

A container is every dotted prefix of op node names that is not itself an op node (`layer1`, `layer1.0`,
`b3.0.1`): template calls, named seqs, repeats, branch lists.  The root container has the path "".  Its
  inputs    values produced outside it and read inside it, ordered by first use (the root: the network input);
  outputs   its values read outside it (by later nodes or the network output), in node order; a container whose
            nodes nobody outside reads (a dead branch) returns its last node, so that it still runs;
A value is a node's name, or `NODE.k` for part k of a node with several outputs (ir.Node.refs): a block that
reads only one part of a chunk made outside it is given that part, not the whole tuple.
  chain     one input, each child reads only the previous child's output and only the last child's output
            leaves: such a container runs as an nn.Sequential.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Collection, Mapping

from netspec.ir import INPUT, Network, prefixes, split_ref


@dataclass
class Container:
    path: str                                           # "" for the whole network
    name: str                                           # class name: `Basic` for a call of template `basic`
    children: list[str] = field(default_factory=list)   # full dotted names of op nodes and containers, in order
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    chain: bool = False

    def local(self, child: str) -> str:
        """A child's attribute name in this container: `conv1` for `layer1.0.conv1` in `layer1.0`."""
        return child[len(self.path) + 1:] if self.path else child


def class_name(spec_name: str) -> str:
    """`resnet18` → `Resnet18`, `bn_lenet` → `BnLenet`: a valid, readable Python class name."""
    name = "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", spec_name) if part)
    return name if name and not name[0].isdigit() else f"Net{name}"


def block_tree(network: Network, root_name: str, modules: Collection[str]) -> dict[str, Container]:
    """Every container by path, parents before children, the root ("") first.  `modules` names the op nodes
    that own a module (the others, concat and add, are function calls and never sit in a Sequential)."""
    tree = _group(network, root_name)
    _wire(network, tree)
    modules = set(modules)
    for container in tree.values():
        container.chain = bool(container.path) and _is_chain(container, tree, network, modules)
    return tree


_prefixes = prefixes   # `b3.0.1.2` → ["b3", "b3.0", "b3.0.1"] (netspec.ir)


def _group(network: Network, root_name: str) -> dict[str, Container]:
    """The containers and their children.  Expansion is depth-first, so each container's nodes are contiguous in
    build order; that is what makes a module tree registered in node order give the flat model's state_dict
    order.  Checked here (a container that reopens after it closed) rather than assumed."""
    tree = {"": Container("", root_name)}
    scopes = network.scopes
    open_paths = [""]                      # the containers of the previous node, outermost first
    closed: set[str] = set()
    for node in network.op_nodes():
        if node.name in tree:
            raise AssertionError(f"op node `{node.name}` has the path of a container of earlier nodes")
        parents = _prefixes(node.name)
        depth = 0
        while depth < len(parents) and depth + 1 < len(open_paths) and open_paths[depth + 1] == parents[depth]:
            depth += 1
        while len(open_paths) > depth + 1:
            closed.add(open_paths.pop())
        for path in parents[depth:]:
            if path in closed:
                raise AssertionError(f"the nodes of container `{path}` are not contiguous in build order "
                                     f"(`{node.name}` comes after nodes outside it)")
            if path in network.nodes:
                raise AssertionError(f"op node `{path}` has the path of a container (of `{node.name}`)")
            scope = scopes.get(path)
            kind = scope.template if scope is not None and scope.kind == "template" else getattr(scope, "kind", "")
            tree[path] = Container(path, class_name(kind or "block"))
            tree[open_paths[-1]].children.append(path)
            open_paths.append(path)
        tree[open_paths[-1]].children.append(node.name)
    return tree


def _wire(network: Network, tree: Mapping[str, Container]) -> None:
    """Inputs and outputs: an edge from `source` to `reader` enters every container around the reader that is
    not around the source, and leaves every container around the source that is not around the reader."""
    order = {name: i for i, name in enumerate(network.nodes)}
    # The containers around each node, outermost first; the network's input and output are outside them all.
    around = {node.name: [""] + _prefixes(node.name) if node.is_op else [] for node in network.nodes.values()}
    outputs: dict[str, set[str]] = {path: set() for path in tree}
    inputs: dict[str, dict[str, None]] = {path: {} for path in tree}
    for reader in network.nodes.values():
        around_reader = around[reader.name]
        for source in reader.refs():
            around_source = around[split_ref(source, network.nodes)[0]]
            shared = 0
            while (shared < min(len(around_reader), len(around_source))
                   and around_reader[shared] == around_source[shared]):
                shared += 1
            for path in around_reader[shared:]:
                inputs[path].setdefault(source)
            for path in around_source[shared:]:
                outputs[path].add(source)
    for path, container in tree.items():
        container.inputs = list(inputs[path])
        container.outputs = sorted(outputs[path], key=lambda ref: _position(ref, network, order)) \
            or [_last_node(tree, path)]
    tree[""].inputs = [INPUT]              # the model takes its input even where no node reads it


def _position(ref: str, network: Network, order: Mapping[str, int]) -> tuple[int, int]:
    node, part = split_ref(ref, network.nodes)
    return order[node], -1 if part is None else part


def _last_node(tree: Mapping[str, Container], path: str) -> str:
    last = tree[path].children[-1]
    return _last_node(tree, last) if last in tree else last


def _is_chain(container: Container, tree: Mapping[str, Container], network: Network, modules: set[str]) -> bool:
    if len(container.inputs) != 1 or len(container.outputs) != 1:
        return False
    previous = container.inputs[0]
    for child in container.children:
        if child in tree:
            if tree[child].inputs != [previous] or len(tree[child].outputs) != 1:
                return False
            previous = tree[child].outputs[0]
        else:
            if child not in modules or network.nodes[child].refs() != (previous,):
                return False
            previous = child
    return container.outputs == [previous]
