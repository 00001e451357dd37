"""The whole compiler, phase by phase.  Nothing else wires the phases together.

    YAML ──load──▶ marked data ──validate──▶ Spec ──expand──▶ Graph ──shapes──▶ ShapedGraph ──compile──▶ GraphModule
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import networkx as nx

from netspec.passes import expand

from netspec.frontend import imports

from netspec.passes import shapes

from netspec.frontend import validate


def load_spec(ref: str | Path, overrides: Mapping[str, object] | None = None) -> validate.Spec:
    """A spec file or built-in name → a validated Spec (raises SpecErrors)."""
    documents = imports.load_all(imports.resolve_spec(str(ref)))
    return validate.validate(documents, overrides)


def shaped_graph(ref: str | Path, overrides: Mapping[str, object] | None = None) -> nx.DiGraph:
    """Everything up to the shape-checked graph, `expect:` included (at the default params).  No torch."""
    spec = load_spec(ref, overrides)
    shaped = shapes.infer(expand.expand(spec))
    # `expect:` states facts about the spec as written; an override that changes a param (`--set ratio=1`,
    # `num_classes=100`) builds another network, whose facts the spec does not state.
    return shaped if changes_params(spec, overrides) else shapes.check_expect(shaped)


def changes_params(spec: validate.Spec, overrides: Mapping[str, object] | None) -> bool:
    """Whether `overrides` give some param a value other than the spec's default."""
    decls = spec.root.get("params") or {}
    defaults = {name: decl["default"] if isinstance(decl, dict) else decl for name, decl in decls.items()}
    return any(spec.params[name] != defaults.get(name) for name in overrides or {})


def compile_module(ref: str | Path, overrides: Mapping[str, object] | None = None):
    """The spec as a torch.fx GraphModule (imports torch)."""
    from netspec.backends.fx import to_graph_module

    return to_graph_module(shaped_graph(ref, overrides))
