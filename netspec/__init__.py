"""netspec: convolutional networks as validated, shape-checked YAML, compiled to PyTorch.

    import netspec
    model = netspec.load("googlenet")            # a torch.fx GraphModule
    netspec.summary("specs/resnet18.yaml")        # rows and totals, without importing torch

Only `load`, `compile_module` and `emit_python` import torch (lazily).
"""

from __future__ import annotations

from pathlib import Path

from .errors import Mark, SpecError, SpecErrors
from .pipeline import load_spec, shaped_graph

__all__ = ["load", "load_spec", "shaped_graph", "validate", "summary", "emit_python", "Mark", "SpecError",
           "SpecErrors"]
__version__ = "0.1.0"


def load(spec: str | Path, **params):
    """Builds the network a spec describes as a `torch.fx.GraphModule`; `params` override the spec's params."""
    from .pipeline import compile_module

    return compile_module(spec, params)


def validate(spec: str | Path, **params) -> None:
    """Raises SpecErrors listing every mistake in the spec; returns None when it is valid.  No torch."""
    shaped_graph(spec, params)


def summary(spec: str | Path, depth: int | None = None, **params):
    """Per-node rows, block subtotals and totals (see netspec.summary.Summary).  No torch."""
    from .summary import summarize

    return summarize(shaped_graph(spec, params), depth)


def emit_python(spec: str | Path, **params) -> str:
    """Standalone PyTorch source (imports only torch) with the same state_dict keys as `load`."""
    from .compile import to_python_source

    return to_python_source(shaped_graph(spec, params))
