"""The torch side of every op in `netspec.ops.OPS`, keyed by the same names.

Most ops become one nn.Module, described by a `ModuleSpec` (a class plus plain-Python constructor arguments) so
that one description both builds the module (compile) and writes its constructor call (standalone emit).
The merge ops `concat` and `add` have no module: they are functions (`FUNCTIONS`), and `merge_call` says which
torch.fx call_function target and argument layout a graph builder emits for them.
"""

from __future__ import annotations

import functools
import inspect
import operator
from dataclasses import dataclass
from types import MappingProxyType
from typing import Callable, Iterable, Mapping, Sequence

import torch
from torch import nn

from netspec.ops.formula_bn import FormulaBatchNorm
from netspec.ops import Args, Shape

_NO_DEFAULT = inspect.Parameter.empty


@dataclass(frozen=True)
class ModuleSpec:
    """How to build one op's nn.Module: a class plus constructor arguments (plain Python values only).

    The same description builds the module (`build`, for compile) and writes its source (`source`, for the
    standalone emit).  `kwargs` is stored as a tuple of (name, value) pairs, in order, so the spec stays frozen
    and hashable; a dict is accepted and converted.
    """

    cls: type
    args: tuple = ()
    kwargs: tuple[tuple[str, object], ...] = ()

    def __post_init__(self):
        object.__setattr__(self, "args", tuple(self.args))
        pairs = self.kwargs.items() if isinstance(self.kwargs, Mapping) else self.kwargs
        object.__setattr__(self, "kwargs", tuple((str(k), v) for k, v in pairs))

    def build(self) -> nn.Module:
        """A fresh module (parameters on the current default device, e.g. inside `with torch.device("meta")`)."""
        return self.cls(*self.args, **dict(self.kwargs))

    def source(self) -> str:
        """The constructor call as Python source, e.g. `nn.Conv2d(1, 6, kernel_size=5, padding=2)`.

        torch.nn classes get an `nn.` prefix (the emitted file does `from torch import nn`); netspec classes are
        named bare (their source comes from `extra_sources`).  Keyword arguments equal to the constructor's own
        default (same type and value) are left out; everything else is written with repr().
        """
        defaults = _constructor_defaults(self.cls)
        parts = [repr(value) for value in self.args]
        parts += [f"{name}={value!r}" for name, value in self.kwargs
                  if not _is_default(value, defaults.get(name, _NO_DEFAULT))]
        return f"{class_name(self.cls)}({', '.join(parts)})"


def class_name(cls: type) -> str:
    """How emitted source names a module class: `nn.Conv2d` for torch.nn, the bare name otherwise."""
    return f"nn.{cls.__name__}" if _is_torch_nn(cls) else cls.__name__


def _is_torch_nn(cls: type) -> bool:
    # torch.nn classes live in submodules (torch.nn.modules.conv, ...) but are all re-exported as nn.<Name>.
    return cls.__module__.startswith("torch.nn") and getattr(nn, cls.__name__, None) is cls


def _constructor_defaults(cls: type) -> dict[str, object]:
    return {name: p.default for name, p in inspect.signature(cls).parameters.items()}


def _is_default(value: object, default: object) -> bool:
    # Type must match too: `bias=1` is not `bias=True`, and a (1, 1) tuple is written out even if it means 1.
    return default is not _NO_DEFAULT and type(value) is type(default) and value == default


def extra_sources(classes: Iterable[type]) -> str:
    """Python source of the non-torch.nn module classes among `classes` (e.g. FormulaBatchNorm), sorted by name,
    for pasting into a standalone model file.  That file must `import torch` and `from torch import nn` first;
    these classes use nothing else."""
    own = sorted({cls for cls in classes if not _is_torch_nn(cls)}, key=lambda cls: cls.__name__)
    return "\n\n".join(inspect.getsource(cls).rstrip() + "\n" for cls in own)


# ---------------------------------------------------------------------------------------------- module specs

def _as_pair(value):
    """ops.py pairs may arrive as YAML lists; PyTorch (and repr) want tuples.  Ints and strings pass through."""
    return tuple(value) if isinstance(value, list) else value


def _conv(args: Args, ins: list[Shape]) -> ModuleSpec:
    return ModuleSpec(nn.Conv2d, (ins[0][0], args["out"]), (
        ("kernel_size", _as_pair(args["kernel"])), ("stride", _as_pair(args["stride"])),
        ("padding", _as_pair(args["padding"])), ("dilation", _as_pair(args["dilation"])),
        ("groups", args["groups"]), ("bias", args["bias"])))


def _conv_transpose(args: Args, ins: list[Shape]) -> ModuleSpec:
    return ModuleSpec(nn.ConvTranspose2d, (ins[0][0], args["out"]), (
        ("kernel_size", _as_pair(args["kernel"])), ("stride", _as_pair(args["stride"])),
        ("padding", _as_pair(args["padding"])), ("output_padding", _as_pair(args["output_padding"])),
        ("groups", args["groups"]), ("bias", args["bias"]), ("dilation", _as_pair(args["dilation"]))))


def _upsample(args: Args, ins: list[Shape]) -> ModuleSpec:
    how = ("size", _as_pair(args["size"])) if args["size"] is not None else ("scale_factor", _as_pair(args["scale"]))
    kwargs = [how, ("mode", args["mode"])]
    # Passed only when true: PyTorch refuses align_corners (even False) with nearest, and its unset value means
    # False for bilinear, so leaving it out builds the module a hand-written `nn.Upsample(...)` builds.
    if args["align_corners"]:
        kwargs.append(("align_corners", True))
    return ModuleSpec(nn.Upsample, (), kwargs)


def _linear(args: Args, ins: list[Shape]) -> ModuleSpec:
    return ModuleSpec(nn.Linear, (ins[0][0], args["out"]), (("bias", args["bias"]),))


def _batchnorm(args: Args, ins: list[Shape]) -> ModuleSpec:
    image = len(ins[0]) == 3  # (C, H, W) without the batch dim; otherwise (F,)
    common = (("eps", args["eps"]), ("momentum", args["momentum"]), ("affine", args["affine"]))
    if args["impl"] == "formula":
        return ModuleSpec(FormulaBatchNorm, (ins[0][0], 4 if image else 2), common)
    return ModuleSpec(nn.BatchNorm2d if image else nn.BatchNorm1d, (ins[0][0],), common)


def _layernorm(args: Args, ins: list[Shape]) -> ModuleSpec:
    # Normalizes over every non-batch dim, so the affine weights have the input's full per-sample shape.
    return ModuleSpec(nn.LayerNorm, (tuple(ins[0]),),
                      (("eps", args["eps"]), ("elementwise_affine", args["affine"])))


def _groupnorm(args: Args, ins: list[Shape]) -> ModuleSpec:
    return ModuleSpec(nn.GroupNorm, (args["groups"], ins[0][0]), (("eps", args["eps"]), ("affine", args["affine"])))


def _lrn(args: Args, ins: list[Shape]) -> ModuleSpec:
    return ModuleSpec(nn.LocalResponseNorm, (args["size"],),
                      (("alpha", args["alpha"]), ("beta", args["beta"]), ("k", args["k"])))


def _maxpool(args: Args, ins: list[Shape]) -> ModuleSpec:
    return ModuleSpec(nn.MaxPool2d, (_as_pair(args["kernel"]),), (
        ("stride", _pool_stride(args)), ("padding", _as_pair(args["padding"])),
        ("dilation", _as_pair(args["dilation"])), ("ceil_mode", args["ceil_mode"])))


def _avgpool(args: Args, ins: list[Shape]) -> ModuleSpec:
    return ModuleSpec(nn.AvgPool2d, (_as_pair(args["kernel"]),), (
        ("stride", _pool_stride(args)), ("padding", _as_pair(args["padding"])),
        ("ceil_mode", args["ceil_mode"]), ("count_include_pad", args["count_include_pad"])))


def _pool_stride(args: Args):
    # Written out rather than left as None so the emitted source says what the stride is.
    return _as_pair(args["stride"] if args["stride"] is not None else args["kernel"])


def _fixed(cls: type, **kwargs) -> Callable[[Args, list[Shape]], ModuleSpec]:
    """An op whose module ignores the input shapes and takes constant arguments."""
    def spec(args: Args, ins: list[Shape]) -> ModuleSpec:
        return ModuleSpec(cls, (), tuple(kwargs.items()))
    return spec


def _renamed(cls: type, **names: str) -> Callable[[Args, list[Shape]], ModuleSpec]:
    """An op whose module takes op args under other names, e.g. leaky_relu's `slope` → `negative_slope`."""
    def spec(args: Args, ins: list[Shape]) -> ModuleSpec:
        return ModuleSpec(cls, (), tuple((torch_name, args[op_name]) for torch_name, op_name in names.items()))
    return spec


def _adaptive_avgpool(args: Args, ins: list[Shape]) -> ModuleSpec:
    return ModuleSpec(nn.AdaptiveAvgPool2d, (_as_pair(args["out"]),))


# Activations are built out of place here: an fx graph may read a node's input again (a residual branch), and
# in-place ops on tensors autograd still needs raise at backward time.  Only compile.py, which sees the whole
# graph, switches a ReLU to inplace=True where that is safe (compile.can_overwrite_input).
_MODULE_SPECS: Mapping[str, Callable[[Args, list[Shape]], ModuleSpec]] = MappingProxyType({
    "conv": _conv,
    "conv_transpose": _conv_transpose,
    "linear": _linear,
    "batchnorm": _batchnorm,
    "layernorm": _layernorm,
    "groupnorm": _groupnorm,
    "lrn": _lrn,
    "relu": _fixed(nn.ReLU),
    "relu6": _fixed(nn.ReLU6),
    "leaky_relu": _renamed(nn.LeakyReLU, negative_slope="slope"),
    "sigmoid": _fixed(nn.Sigmoid),
    "tanh": _fixed(nn.Tanh),
    "gelu": _renamed(nn.GELU, approximate="approximate"),
    "silu": _fixed(nn.SiLU),
    "softmax": _fixed(nn.Softmax, dim=1),  # dim 1 of the batched tensor: features or channels
    "dropout": _renamed(nn.Dropout, p="p"),
    "maxpool": _maxpool,
    "avgpool": _avgpool,
    "adaptive_avgpool": _adaptive_avgpool,
    "global_avgpool": _fixed(nn.AdaptiveAvgPool2d, output_size=1),
    "upsample": _upsample,
    "flatten": _fixed(nn.Flatten),
    "identity": _fixed(nn.Identity),
})


def module_spec(op: str, args: Mapping[str, object], in_shapes: list[Shape]) -> ModuleSpec | None:
    """The module for one op, given its fully defaulted, checked args and its input shapes without the batch dim.
    None for the ops done as functions (`FUNCTIONS`: concat, add).  Unknown op names raise KeyError."""
    if op in FUNCTIONS:
        return None
    return _MODULE_SPECS[op](args, list(in_shapes))


# ------------------------------------------------------------------------------------------------ merge ops

def concat(inputs: Sequence[torch.Tensor]) -> torch.Tensor:
    """Channel concatenation of the batched inputs (dim 1)."""
    return torch.cat(list(inputs), 1)


def add(inputs: Sequence[torch.Tensor]) -> torch.Tensor:
    """Elementwise sum, as a left fold ((a + b) + c) so a traced graph reads like hand-written code."""
    return functools.reduce(operator.add, inputs)


FUNCTIONS: Mapping[str, Callable[[Sequence[torch.Tensor]], torch.Tensor]] = MappingProxyType({
    "concat": concat,
    "add": add,
})


@dataclass(frozen=True)
class MergeCall:
    """How a torch.fx graph builder emits a merge op as call_function nodes.

    layout "list_dim": one node, `graph.call_function(target, ([n0, n1, ...], 1))`   → `torch.cat([a, b], 1)`
    layout "fold":     one node per extra input, `acc = graph.call_function(target, (acc, n))` starting from
                       n0                                                           → `a + b + c`
    """

    target: Callable
    layout: str


_MERGE_CALLS: Mapping[str, MergeCall] = MappingProxyType({
    "concat": MergeCall(torch.cat, "list_dim"),
    "add": MergeCall(operator.add, "fold"),
})


def merge_call(op: str) -> MergeCall:
    """The fx target and argument layout for merge op `op` ("concat" or "add"); KeyError otherwise."""
    return _MERGE_CALLS[op]


def emit_merge(graph: torch.fx.Graph, op: str, inputs: Sequence[torch.fx.Node]) -> torch.fx.Node:
    """Appends merge op `op` over `inputs` to `graph` (the layouts of `MergeCall`) and returns the result node."""
    call = merge_call(op)
    if call.layout == "list_dim":
        return graph.call_function(call.target, (list(inputs), 1))
    result = inputs[0]
    for node in inputs[1:]:
        result = graph.call_function(call.target, (result, node))
    return result
