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
from typing import NamedTuple

from torch import fx, nn

from netspec.backends.blocks import Container, block_tree, class_name
from netspec.backends.limits import BYTES_PER_PARAM, OutOfMemory, check_param_count, human_size
from netspec.ir import INPUT, LIST, ShapedNetwork, split_ref
from netspec.ops import OPS
from netspec.ops.torch_build import ModuleSpec, ParameterSpec


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


def parameter_specs(shaped: ShapedNetwork) -> dict[str, ParameterSpec]:
    """The learnable tensor of every `parameter` node, by dotted name, in node order."""
    return {node.name: OPS[node.op].parameter(node.args) for node in shaped.op_nodes()
            if OPS[node.op].parameter is not None}


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
                block: Container, codes: dict | None = None, training: bool = True) -> fx.Graph:
    """The forward of one graph block: its children called in order on its inputs (`x`, or `x0`, `x1`, … for
    several); a child block with several outputs returns a tuple, unpacked here with getitem.  `codes`: see
    `_SharedCodeGraph`.  The root's graph returns the network's outputs (`network_outputs`).  `training=False`:
    the eval forward of a block that holds train-only nodes (an auxiliary head), which leaves out every child
    that only feeds train-only outputs and returns only the outputs eval needs (`eval_outputs`)."""
    graph = _SharedCodeGraph()
    graph.codes = codes
    names = ["x"] if len(block.inputs) == 1 else [f"x{i}" for i in range(len(block.inputs))]
    values: dict[str, fx.Node] = {src: graph.placeholder(name) for src, name in zip(block.inputs, names)}
    skipped = frozenset() if training else shaped.network.train_only_nodes()

    def value(ref: str) -> fx.Node:
        """The fx node of a value: part k of a chunk made in this block is a getitem, made at its first use."""
        if ref not in values:
            node, part = split_ref(ref, shaped.nodes)
            values[ref] = graph.call_function(operator.getitem, (values[node], part))
        return values[ref]

    for child in block.children:
        if skipped and all(node in skipped for node in _nodes_in(tree, child)):
            continue
        if child in tree:
            sub = tree[child]
            call = graph.call_module(block.local(child), tuple(value(src) for src in sub.inputs))
            outs = [out for out in sub.outputs if out not in skipped]
            if len(outs) == 1:
                values[outs[0]] = call
            else:
                values.update((out, graph.call_function(operator.getitem, (call, i))) for i, out in enumerate(outs))
            continue
        node = shaped.nodes[child]
        args = [value(src) for src in node.refs()]
        if child in specs:
            values[child] = graph.call_module(block.local(child), tuple(args))
        elif OPS[node.op].parameter is not None:
            values[child] = graph.get_attr(block.local(child))
        else:
            values[child] = OPS[node.op].function().emit(graph, args)
    if not block.path:
        graph.output(network_outputs(shaped, graph, value, training))
        return graph
    outputs = [value(out) for out in block.outputs if out not in skipped]
    graph.output(outputs[0] if len(outputs) == 1 else tuple(outputs))
    return graph


def has_train_only(shaped: ShapedNetwork, tree: dict[str, Container], path: str) -> bool:
    """Whether container `path` holds a train-only node, and so has an eval forward of its own."""
    train_only = shaped.network.train_only_nodes()
    return bool(train_only) and any(node in train_only for node in _nodes_in(tree, path))


def _nodes_in(tree: dict[str, Container], child: str) -> list[str]:
    """The op nodes of a child: itself, or all the nodes of a container."""
    if child not in tree:
        return [child]
    return [node for sub in tree[child].children for node in _nodes_in(tree, sub)]


def network_outputs(shaped: ShapedNetwork, graph: fx.Graph, value, training: bool):
    """What the model returns: a list for a feature extractor; else the one active output alone, or a named
    tuple of the active outputs (torchvision's GoogLeNetOutputs(logits, aux_logits2, aux_logits1) in training).
    `value(ref)`: the fx node of a value."""
    network = shaped.network
    active = network.active_outputs(training)
    nodes = [value(out.node) for out in active]
    if network.returns == LIST:
        return nodes
    if len(nodes) == 1:
        return nodes[0]
    return graph.call_function(outputs_class(shaped, active), tuple(nodes))


def outputs_class(shaped: ShapedNetwork, outputs) -> type:
    """The named tuple of a network's outputs: `GooglenetOutputs(logits, aux_logits2, aux_logits1)`."""
    import torch

    fields = tuple(out.name for out in outputs)
    return _named_tuple(class_name(shaped.name) + "Outputs", fields, torch.Tensor)


@functools.cache
def _named_tuple(name: str, fields: tuple[str, ...], tensor: type) -> type:
    # One class per name and fields, so that two builds of a network return the same type.
    cls = NamedTuple(name, [(f, tensor) for f in fields])
    cls.__module__ = __name__
    return cls


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


class TrainEvalModule(BlockModule):
    """A block that holds train-only nodes (an auxiliary head, or the network around one), as torchvision's
    GoogLeNet does: `graph` is its training forward, which computes every output; `eval_graph` its eval forward,
    which leaves out what feeds only train-only outputs (their modules and weights stay).  `forward` picks one by
    `self.training`, a plain bool, so torch.fx, torch.jit.trace and torch.export see one straight graph per mode,
    and `.train()`/`.eval()` switch every block of the tree together."""

    eval_graph: fx.Graph | None = None
    eval_code: str = ""

    def set_eval_graph(self, graph: fx.Graph) -> None:
        self.eval_graph = graph
        self.recompile()

    def recompile(self):
        code = super().recompile()
        if self.eval_graph is not None:
            cls = type(self)
            train_forward = cls.forward
            compiled = self.eval_graph.python_code(root_module="self")
            eval_forward = fx.graph_module._forward_from_src(compiled.src, compiled.globals, None)
            self.eval_code = compiled.src
            cls.forward = _dispatch(train_forward, eval_forward, len(self.eval_graph.find_nodes(op="placeholder")))
        return code

    # `graph` and `code` are the current mode's: torch.export runs a GraphModule's `graph` with an fx Interpreter
    # rather than calling `forward`, and printing `model.code` should show what a call runs.
    @property
    def graph(self) -> fx.Graph:
        return self._graph if self.training or self.eval_graph is None else self.eval_graph

    @graph.setter
    def graph(self, graph: fx.Graph) -> None:
        fx.GraphModule.graph.fset(self, graph)

    @property
    def code(self) -> str:
        return self._code if self.training or self.eval_graph is None else self.eval_code

    def __reduce__(self):
        # fx pickles a GraphModule as the source of its `forward`, re-traced on load: the eval forward would be
        # lost, and eval would silently run the auxiliary heads.
        raise TypeError("a netspec model with train-only outputs cannot be pickled whole: save its state_dict "
                        "and rebuild it with netspec.load (copy.deepcopy works)")

    def _deepcopy_init(self):
        init = super()._deepcopy_init()

        def copy(module, root, graph):
            init(module, root, graph)
            module.set_eval_graph(root.__dict__["eval_graph"])
        return copy


def _dispatch(train_forward, eval_forward, inputs: int):
    """`forward(self, x)` (or x0, x1, …) that runs the training or the eval forward by `self.training`; named
    arguments, as fx's own forwards have them, so that tracers read the signature."""
    if inputs == 1:
        def forward(self, x):
            return train_forward(self, x) if self.training else eval_forward(self, x)
        return forward

    def forward(self, *xs):
        return train_forward(self, *xs) if self.training else eval_forward(self, *xs)
    return forward


@dataclass
class _Build:
    shaped: ShapedNetwork
    specs: dict[str, ModuleSpec]
    tree: dict[str, Container]
    tensors: dict[str, ParameterSpec]
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
            elif child in self.tensors:
                children[block.local(child)] = self.tensors[child].build()
        if block.chain:
            sequential = nn.Sequential()
            for name, module in children.items():
                sequential.add_module(name, module)
            return sequential
        for name in children:
            if hasattr(_probe(), name):  # fx installs children with setattr, which would silently shadow these
                raise KeyError(f"attribute '{name}' already exists")
        if has_train_only(self.shaped, self.tree, path):  # two forwards, picked by `self.training`
            train = block_graph(self.shaped, self.specs, self.tree, block, self.codes)
            self.graphs.append(block_graph(self.shaped, self.specs, self.tree, block, self.codes, training=False))
            module = TrainEvalModule(children, train, class_name=block.name)
            module.set_eval_graph(self.graphs[-1])
            self.graphs.append(train)
            return module
        self.graphs.append(block_graph(self.shaped, self.specs, self.tree, block, self.codes))
        # A dict root: fx installs each call_module and get_attr target, in graph order, which is child order;
        # a learnable tensor becomes a parameter of the block, which PyTorch's state_dict lists before the
        # block's children (as it does torchvision's ConvNeXt layer_scale).
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
    build = _Build(shaped, specs, block_tree(shaped.network, class_name(shaped.name), specs), parameter_specs(shaped))
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
    """The compiled model's `state_dict` keys and shapes, in its order, without allocating a tensor: the model is
    built on torch's meta device, so the keys are its own — learnable tensors of a block before its children, as
    PyTorch orders them.  What `netspec diff` and `netspec compat` compare; tests/test_diff.py checks it against
    real state_dicts."""
    import torch

    with torch.device("meta"):
        model = to_graph_module(shaped)
    return {key: tuple(value.shape) for key, value in model.state_dict().items()}
