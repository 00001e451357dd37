"""PyTorch as the oracle for shape inference (the shape every node of a compiled model really produces), and the
one-thread fixture the torch-heavy zoo and tutorial tests use."""

from __future__ import annotations

import pytest
import torch
from torch import fx, nn

from netspec.ir import OUTPUT
from netspec.ops import OPS


class _InlineBlocks(fx.Tracer):
    """Traces through the blocks of a compiled model (its GraphModules and Sequentials), not through op modules."""

    def is_leaf_module(self, module: nn.Module, qualified_name: str) -> bool:
        return not isinstance(module, (fx.GraphModule, nn.Sequential))


def flat_module(model: nn.Module) -> fx.GraphModule:
    """The compiled model as one flat graph: a call_module per op module at its dotted name, in node order."""
    return fx.GraphModule(model, _InlineBlocks().trace(model))


def observed_shapes(model: torch.nn.Module, shaped, x: torch.Tensor) -> dict[str, tuple]:
    """Runs `model` on `x` and returns the shape (without the batch) of every node's output as PyTorch computed
    it: modules through forward hooks; merge nodes (concat, add — they own no module) through the input of a
    module that consumes them, or through the model's output, or merged anew from their inputs' tensors."""
    modules = dict(model.named_modules())
    seen: dict[str, tuple] = {}
    tensors: dict[str, torch.Tensor] = {}

    def hook(node):
        def record(module, args, out):
            seen[node] = tuple((out[0] if isinstance(out, tuple) else out).shape[1:])  # a chunk's parts are alike
            seen.setdefault(shaped.nodes[node].inputs[0], tuple(args[0].shape[1:]))
            tensors[node] = out
            tensors.setdefault(shaped.nodes[node].inputs[0], args[0])
        return record

    # A learnable tensor (`parameter`) has no module and no batch dimension: its shape is the tensor's.
    seen.update((name, tuple(tensor.shape)) for name, tensor in model.named_parameters()
                if name in shaped.nodes and shaped.nodes[name].is_op)
    handles = [modules[n].register_forward_hook(hook(n)) for n in shaped.nodes if shaped.nodes[n].is_op if n in modules]
    try:
        out = model(x)
    finally:
        for handle in handles:
            handle.remove()
    outputs = (out,) if isinstance(out, torch.Tensor) else out  # several outputs: a named tuple or a list
    for node, value in zip(shaped.nodes[OUTPUT].inputs, outputs):
        seen.setdefault(node, tuple(value.shape[1:]))
        tensors.setdefault(node, value)
    # A merge that feeds only other merges (Inception-v3's `branch3x3`, concatenated into `cat`) reaches no hook:
    # PyTorch merges the tensors recorded for its inputs, in build order.
    for node in shaped.op_nodes():
        if node.name not in seen and OPS[node.op].function is not None and all(i in tensors for i in node.inputs):
            tensors[node.name] = OPS[node.op].function()([tensors[i] for i in node.inputs])
            seen[node.name] = tuple(tensors[node.name].shape[1:])
    return seen


def shape_mismatches(model: torch.nn.Module, shaped, batch: int = 2) -> dict[str, tuple]:
    """{node: (PyTorch's shape, inferred shape)} for every node where they differ or PyTorch's is unobserved.
    Runs on `model`'s device."""
    device = next(model.parameters()).device
    seen = observed_shapes(model, shaped, torch.empty(batch, *shaped.network.input_shape, device=device))
    return {n: (seen.get(n), shaped.facts[n].shape) for n in shaped.nodes if shaped.nodes[n].is_op
            if seen.get(n) != shaped.facts[n].shape}


def meta_model(spec, **params) -> torch.nn.Module:
    """The compiled spec with every parameter and buffer on the meta device: shapes only, no memory, no init."""
    import netspec

    with torch.device("meta"):
        return netspec.load(spec, **params)


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Runs a test module's torch work on one thread, then restores the setting.  These tensors are small, and
    when other jobs share this machine's 2 cores, two threads wait on each other: 4–25× slower, measured."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
