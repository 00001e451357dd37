"""ShapedNetwork → torch.fx GraphModule (`backends/pysource.py` writes the same network as standalone source).

Submodules sit at the graph's dotted names (`b3.0.1.2`), created in node order, so `state_dict` keys are the
spec's names.  Merge ops (concat, add) are call_function nodes; everything else is a call_module node.  No Lazy
modules: every in_channels/in_features comes from shape inference.
"""

from __future__ import annotations

import gc
import re
from contextlib import contextmanager
from dataclasses import replace

import torch
from torch import fx, nn

from netspec.ir import INPUT, OUTPUT, ShapedNetwork
from netspec.ops import OPS
from netspec.ops.torch_build import ModuleSpec


def class_name(spec_name: str) -> str:
    """`resnet18` → `Resnet18`, `bn_lenet` → `BnLenet`: a valid, readable Python class name."""
    name = "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", spec_name) if part)
    return name if name and not name[0].isdigit() else f"Net{name}"


def module_specs(shaped: ShapedNetwork) -> dict[str, ModuleSpec]:
    """The module of every op node that has one, by dotted name, in node order."""
    specs = {}
    for node in shaped.op_nodes():
        op = OPS[node.op]
        spec = op.module(node.args, shaped.facts[node.name].in_shapes) if op.module else None
        if spec is not None and op.in_place and can_overwrite_input(shaped, node.name):
            spec = replace(spec, kwargs=spec.kwargs + (("inplace", True),))
        if spec is not None:
            specs[node.name] = spec
    return specs


def can_overwrite_input(shaped: ShapedNetwork, node: str) -> bool:
    """Whether `node` (a one-input op) may work in place: its input comes from an op whose output is fresh (the
    op's `fresh_output`) and nothing else reads that input.  ReLU in place is what hand-written PyTorch does
    (`nn.ReLU(inplace=True)`); it saves one activation buffer per ReLU and measurably speeds up CPU training
    and inference (docs/benchmarks.md).  Anything wrong here would not pass silently: autograd refuses to
    backpropagate through a tensor that was modified after it was saved."""
    network = shaped.network
    (source,) = network.nodes[node].inputs
    producer = network.nodes[source]
    fresh = source != INPUT and OPS[producer.op].is_fresh(producer.args)  # the caller's tensor: never
    return fresh and network.graph.out_degree(source) == 1


def build_fx_graph(shaped: ShapedNetwork, specs: dict[str, ModuleSpec]) -> fx.Graph:
    graph = fx.Graph()
    values: dict[str, fx.Node] = {INPUT: graph.placeholder("x")}
    for node in shaped.op_nodes():
        args = [values[src] for src in node.inputs]
        if node.name in specs:
            values[node.name] = graph.call_module(node.name, tuple(args))
        else:
            values[node.name] = OPS[node.op].function().emit(graph, args)
    graph.output(values[shaped.network.nodes[OUTPUT].inputs[0]])
    return graph


def _install(containers: dict[str, nn.Module], path: str, module: nn.Module) -> None:
    """Puts `module` at dotted `path`, creating empty parent modules on the way; `containers` maps every path
    installed so far to its module (so no lookup goes through nn.Module's slow `__getattr__`)."""
    parent, _, last = path.rpartition(".")
    _container(containers, parent).add_module(last, module)
    containers[path] = module


def _container(containers: dict[str, nn.Module], path: str) -> nn.Module:
    if path not in containers:
        parent, _, last = path.rpartition(".")
        containers[path] = nn.Module()
        _container(containers, parent).add_module(last, containers[path])
    return containers[path]


@contextmanager
def _gc_paused():
    """Building thousands of modules makes CPython's cyclic collector rescan the growing heap again and again
    (a quarter of the compile time of a 1,000-block network); nothing built here is garbage, so collection
    waits until the end."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def to_graph_module(shaped: ShapedNetwork) -> fx.GraphModule:
    specs = module_specs(shaped)
    with _gc_paused():
        # Modules go straight into the GraphModule, in node order (= state_dict order).  Handing fx a separate
        # root instead makes it copy every target into fresh containers: the same result, built twice.
        module = fx.GraphModule(nn.Module(), fx.Graph(), class_name=class_name(shaped.name))
        containers: dict[str, nn.Module] = {"": module}
        for path, spec in specs.items():
            _install(containers, path, spec.build())
        module.graph = build_fx_graph(shaped, specs)  # the setter generates and compiles `forward`
    module.netspec_input_shape = tuple(shaped.network.input_shape)
    return module
