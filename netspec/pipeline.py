"""The whole compiler, phase by phase.  Nothing else wires the phases together.

    YAML ──load──▶ marked data ──validate──▶ Spec ──expand──▶ Graph ──shapes──▶ ShapedGraph ──compile──▶ GraphModule
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import networkx as nx

from . import expand, shapes, source, validate


def load_spec(ref: str | Path, overrides: Mapping[str, object] | None = None) -> validate.Spec:
    """A spec file or built-in name → a validated Spec (raises SpecErrors)."""
    documents = source.load_all(source.resolve_spec(str(ref)))
    return validate.validate(documents, overrides)


def shaped_graph(ref: str | Path, overrides: Mapping[str, object] | None = None) -> nx.DiGraph:
    """Everything up to the shape-checked graph, `expect:` included.  Never imports torch."""
    spec = load_spec(ref, overrides)
    graph = expand.expand(spec)
    return shapes.check_expect(shapes.infer(graph))


def compile_module(ref: str | Path, overrides: Mapping[str, object] | None = None):
    """The spec as a torch.fx GraphModule (imports torch)."""
    from .compile import to_graph_module

    return to_graph_module(shaped_graph(ref, overrides))
