"""ShapedNetwork → a tree of torch modules (`backends/pysource.py` writes the same tree as standalone source).

The model is hierarchical, like hand-written PyTorch: every container of the spec (template call, named seq,
repeat, branch list; see `blocks.py`) is a module that runs its part of the graph, an nn.Sequential where its
children form a chain and a torch.fx GraphModule (`BlockModule`, named after its template) otherwise.  Op modules
sit at the spec's dotted names (`b3.0.1.2`), registered in node order, so `state_dict` keys and their order are
the flat graph's.  Merge ops (concat, add) are call_function nodes; everything else is a call_module node.  No
Lazy modules: every in_channels/in_features comes from shape inference.
"""

from __future__ import annotations

import functools
import gc
import operator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

from torch import fx, nn

from netspec.backends.blocks import Container, block_tree, class_name
from netspec.backends.limits import BYTES_PER_PARAM, OutOfMemory, check_param_count, human_size
from netspec.ir import INPUT, ShapedNetwork
from netspec.ops import OPS
from netspec.ops.torch_build import ModuleSpec


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
    """Whether `node` (a one-input op) may work in place: its input comes from an op of its own block whose
    output is fresh (the op's `fresh_output`), and nothing else reads that input.  ReLU in place is what hand-written PyTorch does
    (`nn.ReLU(inplace=True)`); it saves one activation buffer per ReLU and measurably speeds up CPU training
    and inference (docs/benchmarks.md).  Anything wrong here would not pass silently: autograd refuses to
    backpropagate through a tensor that was modified after it was saved."""
    network = shaped.network
    (source,) = network.nodes[node].inputs
    producer = network.nodes[source]
    fresh = source != INPUT and OPS[producer.op].is_fresh(producer.args)  # the caller's tensor: never
    # Every block is a module of its own that may be called alone (`model.layer1(x)`): a ReLU whose input comes
    # from outside its block would then overwrite the caller's tensor.
    block = node.rpartition(".")[0]
    inside = not block or source.startswith(block + ".")
    return fresh and inside and network.graph.out_degree(source) == 1


def block_graph(shaped: ShapedNetwork, specs: dict[str, ModuleSpec], tree: dict[str, Container],
                block: Container, codes: dict | None = None) -> fx.Graph:
    """The forward of one graph block: its children called in order on its inputs (`x`, or `x0`, `x1`, … for
    several); a child block with several outputs returns a tuple, unpacked here with getitem.  `codes`: see
    `_SharedCodeGraph`."""
    graph = _SharedCodeGraph()
    graph.codes = codes
    names = ["x"] if len(block.inputs) == 1 else [f"x{i}" for i in range(len(block.inputs))]
    values: dict[str, fx.Node] = {src: graph.placeholder(name) for src, name in zip(block.inputs, names)}
    for child in block.children:
        if child in tree:
            sub = tree[child]
            call = graph.call_module(block.local(child), tuple(values[src] for src in sub.inputs))
            if len(sub.outputs) == 1:
                values[sub.outputs[0]] = call
            else:
                values.update((out, graph.call_function(operator.getitem, (call, i)))
                              for i, out in enumerate(sub.outputs))
            continue
        args = [values[src] for src in shaped.nodes[child].inputs]
        if child in specs:
            values[child] = graph.call_module(block.local(child), tuple(args))
        else:
            values[child] = OPS[shaped.nodes[child].op].function().emit(graph, args)
    outputs = [values[out] for out in block.outputs]
    graph.output(outputs[0] if len(outputs) == 1 else tuple(outputs))
    return graph


class _SharedCodeGraph(fx.Graph):
    """An fx.Graph that looks its generated code up in `codes` by the graph's structure.  Networks repeat their
    blocks (a thousand dense layers), and generating the same code again is most of what building one costs.
    The build drops `codes` when done, so that a graph edited later gets its code generated afresh."""

    codes: dict | None = None

    def python_code(self, root_module: str, **kwargs):
        if self.codes is None:
            return super().python_code(root_module, **kwargs)
        key = (root_module, repr(sorted(kwargs.items())), _structure(self))
        if key not in self.codes:
            self.codes[key] = super().python_code(root_module, **kwargs)
        return self.codes[key]


def _structure(graph: fx.Graph) -> tuple:
    """What fx's code generation reads: each node's kind, target and arguments (nodes as positions).  Node names
    follow from these, in order."""
    position: dict[fx.Node, int] = {}
    key = []
    for node in graph.nodes:
        position[node] = len(position)
        key.append((node.op, node.target, fx.node.map_arg((node.args, node.kwargs), position.__getitem__)))
    return tuple(key)


class BlockModule(fx.GraphModule):
    """The GraphModule netspec builds for the network and each block that is not a plain chain."""

    def __str__(self) -> str:
        # fx appends the generated code; netspec's modules print like hand-written ones (torchvision's).
        return nn.Module.__repr__(self)

    def _recompile_submodules(self) -> list:
        # fx recompiles every GraphModule child whenever a parent's graph is set, which makes building a tree
        # bottom up compile each block once per level above it.  Each block compiled when its graph was set.
        return []

    def _deepcopy_init(self):
        # fx's deepcopy re-runs __init__ without the class name, which would turn `Basic` into `GraphModule`.
        name = type(self).__name__
        return lambda module, root, graph: fx.GraphModule.__init__(module, root, graph, class_name=name)


@dataclass
class _Build:
    shaped: ShapedNetwork
    specs: dict[str, ModuleSpec]
    tree: dict[str, Container]
    codes: dict = field(default_factory=dict)           # generated code by graph structure, for this build
    graphs: list[fx.Graph] = field(default_factory=list)

    def module(self, path: str) -> nn.Module:
        """The module of container `path`, its children built and registered in node order (= state_dict
        order)."""
        block = self.tree[path]
        children: dict[str, nn.Module] = {}
        for child in block.children:
            if child in self.tree:
                children[block.local(child)] = self.module(child)
            elif child in self.specs:
                children[block.local(child)] = self.specs[child].build()
        if block.chain:
            sequential = nn.Sequential()
            for name, module in children.items():
                sequential.add_module(name, module)
            return sequential
        for name in children:
            if hasattr(_probe(), name):  # fx installs children with setattr, which would silently shadow these
                raise KeyError(f"attribute '{name}' already exists")
        self.graphs.append(block_graph(self.shaped, self.specs, self.tree, block, self.codes))
        # A dict root: fx installs each call_module target, in graph order, which is child order.
        return BlockModule(children, self.graphs[-1], class_name=block.name)


@functools.cache
def _probe() -> BlockModule:
    return BlockModule(nn.Module(), fx.Graph())


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


def to_graph_module(shaped: ShapedNetwork, max_params: int | None = None) -> fx.GraphModule:
    """The network as modules.  Refuses (ModelTooLarge), before building anything, a network with more
    parameters than `max_params` (None: the default of limits.check_param_count); OutOfMemory if building runs
    out of memory anyway."""
    check_param_count(shaped.param_count, max_params)
    specs = module_specs(shaped)
    build = _Build(shaped, specs, block_tree(shaped.network, class_name(shaped.name), specs))
    try:
        with _gc_paused():
            module = build.module("")
    except (MemoryError, RuntimeError) as err:  # torch's allocators raise RuntimeError (OutOfMemoryError is one)
        if not isinstance(err, MemoryError) and "alloc" not in str(err).lower():
            raise
        raise OutOfMemory(f"not enough memory to build the network's {shaped.param_count:,} parameters "
                          f"({human_size(shaped.param_count * BYTES_PER_PARAM)} as float32)") from None
    for graph in build.graphs:
        graph.codes = None
    module.netspec_input_shape = tuple(shaped.network.input_shape)
    return module


def forward_code(module: fx.GraphModule) -> str:
    """The generated `forward` of a compiled model and, once per distinct code, of its blocks, each headed by the
    block's class and paths: what `netspec compile` prints."""
    by_code: dict[str, list[str]] = {}
    names: dict[str, str] = {}
    for path, block in module.named_modules():
        if isinstance(block, fx.GraphModule):
            code = block.code.strip()
            by_code.setdefault(code, []).append(path or "(the model)")
            names.setdefault(code, type(block).__name__)
    return "\n\n".join(f"# {names[code]}: {', '.join(paths)}\n{code}" for code, paths in by_code.items())


def state_shapes(shaped: ShapedNetwork) -> dict[str, tuple[int, ...]]:
    """The compiled model's `state_dict` keys and shapes, in its order, without allocating a tensor: each op's
    module is built on torch's meta device (a few milliseconds for ResNet-50).  What `netspec diff` and
    `netspec compat` compare; tests/test_diff.py checks it against real state_dicts."""
    import torch

    shapes: dict[str, tuple[int, ...]] = {}
    with torch.device("meta"):
        for node, spec in module_specs(shaped).items():
            for key, value in spec.build().state_dict().items():
                shapes[f"{node}.{key}"] = tuple(value.shape)
    return shapes
