"""netspec: convolutional networks as validated, shape-checked YAML, compiled to PyTorch.

    import netspec
    model = netspec.load("googlenet")            # a torch.nn.Module built with torch.fx, its blocks as submodules
    netspec.summary("specs/resnet18.yaml")        # rows and totals, without importing torch
    shaped = netspec.shaped_network("googlenet")  # the IR every command starts from (netspec.ir)

`load`, `summary`, `draw` and `emit_python` take a spec (a file or a built-in name) or an already shaped
network, which is then not parsed again.  Only `load`, `emit_python` and `load_weights` import torch (lazily).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence, Union

from netspec.backends.limits import ModelTooLarge
from netspec.errors import Mark, SpecError, SpecErrors
from netspec.ir import ShapedNetwork
from netspec.passes.outputs import select_outputs
from netspec.pipeline import load_spec, shaped_network

__version__ = "0.1.0"
__all__ = ["load", "load_spec", "shaped_network", "ShapedNetwork", "validate", "summary", "draw", "emit_python",
           "load_weights", "Mark", "SpecError", "SpecErrors", "ModelTooLarge"]
Spec = Union[str, Path, ShapedNetwork]  # a spec file, a built-in name, or an already shaped network


def _shaped(spec: Spec, params: dict) -> ShapedNetwork:
    if isinstance(spec, ShapedNetwork):
        if params:
            raise TypeError("params apply to a spec, not to an already shaped network")
        return spec
    return shaped_network(spec, params)


def load(spec: Spec, /, *, max_params: int | None = None, outputs: Sequence[str] | None = None, **params):
    """Builds the network a spec describes as a torch.nn.Module (a torch.fx GraphModule whose blocks are
    modules of their own: nn.Sequential for chains, GraphModules named after their templates otherwise);
    `params` override the spec's params.

    `outputs`: a feature extractor instead, as timm's `features_only`: the module returns the tensors of these
    nodes (top-level names like `layer1`, or dotted node names) as a list, in this order, and holds only what they
    need.  An unknown or repeated name raises SpecErrors.

    `max_params`: the most parameters to build; more raises netspec.ModelTooLarge before anything is allocated.
    None (the default): 2·10⁹, or fewer when the available memory holds fewer at 4 bytes each.  It is
    keyword-only and always means the limit: a spec param that happens to be named `max_params` is set through
    `load(netspec.shaped_network(spec, {"max_params": …}))`."""
    from netspec.backends.fx import to_graph_module

    shaped = _shaped(spec, params)
    if outputs is not None:
        shaped = select_outputs(shaped, outputs)
    return to_graph_module(shaped, max_params)


def validate(spec: str | Path, **params) -> None:
    """Raises SpecErrors listing every mistake in the spec; returns None when it is valid.  No torch."""
    shaped_network(spec, params)


def summary(spec: Spec, depth: int | None = None, **params):
    """Per-node rows, block subtotals and totals (see netspec.backends.summary.Summary).  No torch."""
    from netspec.backends.summary import summarize

    return summarize(_shaped(spec, params), depth)


def draw(spec: Spec, depth: int | None = None, fold: bool = True, rankdir: str = "TB", legend: bool = False,
         **params):
    """The network as a `graphviz.Digraph` (`.source` is the DOT; `.render()`/`.pipe()` make images with
    Graphviz's `dot`).  `depth`: draw blocks nested deeper than this as one box each; `fold`: draw consecutive
    identical blocks once, marked ×N; `rankdir`: TB or LR.  No torch."""
    from netspec.backends.draw.dot import draw_graph

    return draw_graph(_shaped(spec, params), depth=depth, fold=fold, rankdir=rankdir, legend=legend)


def emit_python(spec: Spec, **params) -> str:
    """Standalone PyTorch source (imports only torch) with the same state_dict keys as `load`."""
    from netspec.backends.pysource import to_python_source

    return to_python_source(_shaped(spec, params))


def load_weights(model, state_dict, rename=None, skip=()):
    """Loads a state_dict (or a file saved with torch.save) into a compiled model strictly: every tensor used
    once, same shapes; raises netspec.backends.weights.WeightsError listing every problem.  The specs in
    imagenet/ have torchvision's keys, so `load_weights(model, torchvision_model.state_dict())` needs no name map;
    `rename` ({incoming prefix: model prefix}) and `skip` (model modules to leave as they are) serve other
    sources."""
    from netspec.backends.weights import load_weights as load

    return load(model, state_dict, rename, skip)
