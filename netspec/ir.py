"""The network IR after expansion, and the facts the shapes pass adds to it (the parsed spec before expansion,
the IR's first stage, is in `frontend/syntax.py`).

    Network          expand's result: typed `Node` records in build order, the scopes they sit in, and a
                     networkx DiGraph of the same nodes for analysis (topological order, reachability)
    ShapedNetwork    a Network plus `Facts` (shape, parameter count, MACs) for every node, and the totals

Node names are stable dotted paths (`b3.0.1.2`), which are also the module paths of the compiled model.  Build
order is a topological order (a node is only added after its inputs); every phase relies on it.  `INPUT` is the
first node and `OUTPUT` the last; the others are op nodes.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Iterator, Mapping

import networkx as nx

from netspec.errors import Mark, Note

INPUT, OUTPUT = "input", "output"
Shape = tuple[int, ...]


@dataclass(frozen=True)
class Node:
    """One op application.  `inputs` are the nodes it reads, in order, repeats included (`concat: {from: [a,
    a]}` reads `a` twice, which the DiGraph's edges alone cannot say).  `args` are checked and defaulted.
    `parts` says which output of each input it reads, for inputs with several (a `chunk`): the part's number,
    or None for a node's only output; empty when every input has one output."""

    name: str
    op: str                                  # an op of netspec.ops.OPS, or INPUT / OUTPUT
    args: Mapping[str, object]
    inputs: tuple[str, ...]
    mark: Mark
    lint_ignore: frozenset[str] = frozenset()  # lint rules silenced here (`lint:` on the item or one around it)
    parts: tuple[int | None, ...] = ()

    @property
    def is_op(self) -> bool:
        return self.op not in (INPUT, OUTPUT)

    def refs(self) -> tuple[str, ...]:
        """The values it reads, in order: a node's name, or `NODE.k` for part k of a node with several outputs
        (the name a spec's `from:` gives it)."""
        if not self.parts:
            return self.inputs
        return tuple(source if part is None else part_ref(source, part)
                     for source, part in zip(self.inputs, self.parts))


def part_ref(node: str, part: int) -> str:
    """The value that is part `part` of node `node`'s outputs: `NODE.k`.  No node has that name, since `NODE` is
    an op node, never a scope."""
    return f"{node}.{part}"


def split_ref(ref: str, nodes: Mapping[str, object]) -> tuple[str, int | None]:
    """A value's node and part: (`ref`, None) for a node's name, (NODE, k) for `NODE.k`."""
    if ref in nodes:
        return ref, None
    node, _, part = ref.rpartition(".")
    return node, int(part)


@dataclass(frozen=True)
class Scope:
    """A named group of nodes: a template call, a named seq, a concat/add's branches or a repeat."""

    path: str
    kind: str                      # template | seq | concat | add | repeat
    mark: Mark
    template: str | None = None
    args: Mapping[str, object] | None = None
    defined: Mark | None = None    # a template call: where the template is defined


@dataclass(frozen=True)
class Expect:
    """The spec's `expect:` facts, each with the mark of its value (None: not stated)."""

    params: int | None = None
    output: tuple[int, ...] | None = None
    macs: int | str | None = None
    marks: Mapping[str, Mark] = field(default_factory=dict)


@dataclass(frozen=True)
class Output:
    """One output of the network: the value of node `node`, returned under `name`.  A `train_only` output (an
    auxiliary classifier's) is computed and returned in training only; in eval what feeds only it does not run."""

    name: str
    node: str
    train_only: bool = False
    mark: Mark | None = None


# How the compiled module returns its outputs: `named` (the spec's `outputs:`): the one output that is active
# alone, else a named tuple of them, as torchvision's GoogLeNetOutputs; `list` (a feature extractor built by
# `netspec.load(..., outputs=[…])`): always a list, in the order asked.
NAMED, LIST = "named", "list"


@dataclass(frozen=True)
class Network:
    name: str
    doc: str
    file: str
    params: Mapping[str, object]             # the spec's params, resolved (defaults and overrides)
    input_shape: Shape
    expect: Expect
    train: Mapping[str, object]              # the spec's `train:` recipe, as written
    nodes: Mapping[str, Node]                # build order: INPUT, the op nodes, OUTPUT
    scopes: Mapping[str, Scope]
    graph: nx.DiGraph = field(repr=False)    # the same nodes; one edge per distinct (source, node) pair
    # The outputs in the order the module returns them (the OUTPUT node reads their nodes in this order); empty:
    # the one output, OUTPUT's input.  `names`: the top-level names (`layer1`) and the nodes they stand for.
    outputs: tuple[Output, ...] = ()
    returns: str = NAMED
    names: Mapping[str, str] = field(default_factory=dict, repr=False)

    def output_list(self) -> tuple[Output, ...]:
        return self.outputs or (Output("output", self.nodes[OUTPUT].inputs[0]),)

    def active_outputs(self, training: bool) -> tuple[Output, ...]:
        """The outputs returned in training (all) or in eval (those not train-only)."""
        return tuple(o for o in self.output_list() if training or not o.train_only)

    def train_only_nodes(self) -> frozenset[str]:
        """The op nodes that feed only train-only outputs: what eval does not run."""
        return self._train_only

    @functools.cached_property
    def _train_only(self) -> frozenset[str]:
        if not any(o.train_only for o in self.output_list()):
            return frozenset()
        needed = set()
        for out in self.active_outputs(False):
            needed |= nx.ancestors(self.graph, out.node) | {out.node}
        return frozenset((nx.ancestors(self.graph, OUTPUT) - needed) & {node.name for node in self.op_nodes()})

    def op_nodes(self) -> Iterator[Node]:
        return (node for node in self.nodes.values() if node.is_op)

    def scopes_of(self, name: str) -> list[Scope]:
        return scopes_of(self.scopes, name)

    def block_of(self, name: str, depth: int = 0) -> str:
        """The block node `name` counts in when blocks nested deeper than `depth` are one item each (0: the
        top-level items): the path of the scope around it at level `depth`, or the node itself when fewer scopes
        hold it (a top-level op is its own item).  `diff` groups nodes by it."""
        scopes = self.scopes_of(name)
        return scopes[depth].path if len(scopes) > depth else name


def prefixes(name: str) -> list[str]:
    """The dotted paths around a node or scope, outermost first: `b3.0.1.2` → ["b3", "b3.0", "b3.0.1"]."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def scopes_of(scopes: Mapping[str, Scope], name: str) -> list[Scope]:
    """The scopes node `name` sits in, outermost first (not a scope at the node's own path)."""
    return [scopes[p] for p in prefixes(name) if p in scopes]


def call_notes(scopes: Mapping[str, Scope], name: str) -> tuple[Note, ...]:
    """For an error at node `name`: the template calls it sits in, innermost first."""
    calls = [s for s in reversed(scopes_of(scopes, name)) if s.kind == "template"]
    return tuple(Note(f"in template `{s.template}`" + (f" ({s.defined})" if s.defined else "") + ", called at",
                      s.mark) for s in calls)


def build_network(nodes: list[Node], **fields) -> Network:
    """A Network from nodes in build order; the DiGraph is derived from their inputs."""
    graph = nx.DiGraph()
    for node in nodes:
        graph.add_node(node.name)
        for source in dict.fromkeys(node.inputs):
            graph.add_edge(source, node.name)
    return Network(nodes=MappingProxyType({n.name: n for n in nodes}), graph=graph, **fields)


@dataclass(frozen=True)
class Facts:
    """What the shapes pass infers for one node (shapes exclude the batch dimension)."""

    shape: Shape
    in_shapes: tuple[Shape, ...]
    param_count: int
    macs: int


@dataclass(frozen=True)
class ShapedNetwork:
    network: Network
    facts: Mapping[str, Facts]               # every node, INPUT and OUTPUT included
    param_count: int
    macs: int                                # per example, in eval (train-only outputs' branches left out)
    train_macs: int | None = None            # per example, in training (None: the same as `macs`)

    @property
    def name(self) -> str:
        return self.network.name

    @property
    def nodes(self) -> Mapping[str, Node]:
        return self.network.nodes

    @property
    def output_shape(self) -> Shape:
        return self.facts[OUTPUT].shape

    def op_nodes(self) -> Iterator[Node]:
        return self.network.op_nodes()
