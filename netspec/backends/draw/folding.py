"""The scope tree of a ShapedNetwork and its fold runs — the structure `draw` works from.  No torch, no graphviz.

A *fold run* is a chain of consecutive sibling scopes that are the same block: the same template with the same
arguments (or, for untemplated scopes such as repeat iterations, the same kind) and node for node the same ops,
arguments and wiring.  Their input shapes may differ (DenseNet's layers each see more channels).  "Chain" means
each instance takes its inputs only from the one before it and feeds only the one after it, so parallel branches
that happen to look alike (two identical Inception paths) are never folded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from netspec.ir import Scope, ShapedNetwork

ROOT = ""  # the network itself, as a parent in the tree


@dataclass(frozen=True, eq=False)
class Run:
    """Consecutive identical instances; the diagram shows the first one, marked ×N.  Compared and hashed by
    identity (each run is made once): the view keys dicts by run for every edge, and hashing a run of thousands
    of paths each time made drawing quadratic."""

    paths: tuple[str, ...]

    @property
    def first(self) -> str:
        return self.paths[0]


@dataclass(frozen=True)
class ScopeTree:
    scopes: Mapping[str, Scope]                 # only scopes that hold at least one op node
    chains: Mapping[str, tuple[str, ...]]       # op node → the scope paths it sits in, outermost first
    members: Mapping[str, tuple[str, ...]]      # scope path → its op nodes in network order
    children: Mapping[str, tuple[str, ...]]     # scope path (or ROOT) → child scope paths and op nodes, in order
    runs: Mapping[str, tuple[Run, int]]         # scope path → (its fold run, its position in the run)


def scope_tree(shaped: ShapedNetwork) -> ScopeTree:
    declared = shaped.network.scopes
    chains = {n.name: _chain(n.name, declared) for n in shaped.op_nodes()}
    members: dict[str, list[str]] = {}
    children: dict[str, list[str]] = {ROOT: []}
    for node, chain in chains.items():
        for depth, path in enumerate(chain):
            members.setdefault(path, []).append(node)
            parent = chain[depth - 1] if depth else ROOT
            _append_once(children.setdefault(parent, []), path)
        _append_once(children.setdefault(chain[-1] if chain else ROOT, []), node)
    tree = ScopeTree({p: declared[p] for p in members}, chains, {p: tuple(m) for p, m in members.items()},
                     {p: tuple(c) for p, c in children.items()}, {})
    signatures = _signatures(shaped, tree)
    runs = {}
    for siblings in tree.children.values():
        for run in _runs(shaped, tree, signatures, siblings):
            runs.update({path: (run, k) for k, path in enumerate(run.paths)})
    return ScopeTree(tree.scopes, tree.chains, tree.members, tree.children, runs)


def _chain(node: str, declared: Mapping[str, Scope]) -> tuple[str, ...]:
    # Unlike Network.scopes_of this includes the node's own path: a template whose body is a single op gives that
    # op the call's path, and the call is still a scope worth drawing.
    parts = node.split(".")
    prefixes = (".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return tuple(p for p in prefixes if p in declared)


def _append_once(items: list[str], item: str) -> None:
    if not items or items[-1] != item:
        items.append(item)


def _runs(shaped: ShapedNetwork, tree: ScopeTree, signatures: Mapping[str, int],
          siblings: tuple[str, ...]) -> list[Run]:
    runs, current = [], []
    for child in siblings:
        if child in tree.scopes and current and signatures[current[-1]] == signatures[child] \
                and _chained(shaped, set(tree.members[current[-1]]), set(tree.members[child])):
            current.append(child)
            continue
        if len(current) > 1:
            runs.append(Run(tuple(current)))
        current = [child] if child in tree.scopes else []
    if len(current) > 1:
        runs.append(Run(tuple(current)))
    return runs


def _signatures(shaped: ShapedNetwork, tree: ScopeTree) -> dict[str, int]:
    """Scope path → a number that two scopes share exactly when they are the same block: the same kind, template
    and arguments, node for node the same ops, arguments and wiring relative to the scope, and inner scopes that
    are the same blocks at the same relative paths.

    Each scope is looked at once, inner scopes before outer ones (`tree.scopes` lists a scope before the scopes
    inside it), and the inner ones by their number: the work is the total size of the scopes, that is the number
    of ops times the nesting depth at most, however many siblings there are to compare.  (Comparing structures
    pair by pair, each gathering its inner scopes from all scopes, took time quadratic in the network's size.)
    """
    records = shaped.network.nodes
    plain_args = {node: _plain(records[node].args) for node in tree.chains}
    numbers: dict[tuple, int] = {}
    signatures: dict[str, int] = {}
    for path in reversed(tuple(tree.scopes)):
        inside = set(tree.members[path])
        cut = len(path)

        def rel(node: str) -> str:
            return node[cut:] if node in inside else "<outside>"

        scope = tree.scopes[path]
        nodes = tuple((rel(n), records[n].op, plain_args[n], tuple(rel(s) for s in records[n].inputs))
                      for n in tree.members[path])
        inner = tuple((child[cut:], signatures[child]) for child in tree.children.get(path, ())
                      if child in tree.scopes)
        key = (scope.kind, scope.template, _plain(scope.args), nodes, inner)
        signatures[path] = numbers.setdefault(key, len(numbers))
    return signatures


def _chained(shaped: ShapedNetwork, a: set[str], b: set[str]) -> bool:
    """b reads only from a (and itself), and a feeds only b: one block after the other, not side by side."""
    graph = shaped.network.graph
    into_b = {src for node in b for src in graph.predecessors(node)} - b
    out_of_a = {dst for node in a for dst in graph.successors(node)} - a
    return bool(into_b) and into_b <= a and out_of_a <= b


def _plain(value) -> object:
    """Args as comparable plain data (mapping proxies and lists become sorted tuples)."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        return tuple(sorted((k, _plain(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_plain(v) for v in value)
    return value
