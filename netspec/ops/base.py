"""The records an op entry is made of (Op, Param, Family, Example), argument checking, and the shape helpers the
family files share.  Never imports torch.

Shapes exclude the batch dimension: (C, H, W) for images, (F,) for features.  Shape rules follow PyTorch's
formulas exactly (floor division, ceil_mode, padding) and raise `ShapeError`, which callers locate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Mapping, Union

from netspec.ops.torch_build import MergeCall, ModuleSpec, ParameterSpec

Shape = tuple[int, ...]
Args = Mapping[str, object]


class ShapeError(Exception):
    """An op cannot accept its input shapes (or its args make a non-positive size)."""

    def __init__(self, message: str, expected: str | None = None, found: str | None = None, hint: str | None = None):
        super().__init__(message)
        self.message, self.expected, self.found, self.hint = message, expected, found, hint


@dataclass(frozen=True)
class Param:
    """One typed op parameter.  `type` is one of PARAM_TYPES; a `required` param has no default."""

    type: str
    default: object = None
    doc: str = ""
    required: bool = False
    choices: tuple = ()
    minimum: float | None = None  # smallest allowed value (each element, for pairs)
    below: float | None = None    # exclusive upper bound (dropout's p < 1)


# int2: an int or a pair [h, w]; padding: int2 or "same"/"valid"; size: int2 or null; floats: a number or a list of
# numbers (one per channel); ints: a list of 1 to MAX_RANK ints (dims, a shape).
PARAM_TYPES = ("int", "float", "bool", "str", "int2", "padding", "size", "floats", "ints")
MAX_FLOATS = 10_000  # numbers in one `floats` argument (one per channel; the zoo's widest layer has 4,096)
# The most dimensions a shape (without the batch) may have, and so the most elements an `ints` param holds.
MAX_RANK = 8


@dataclass(frozen=True)
class Family:
    """A group of ops that diagrams draw alike: the legend's text for it and its Graphviz node style."""

    name: str
    legend: str
    fill: str
    border: str
    shape: str = "box"
    style: str = "rounded,filled"


@dataclass(frozen=True)
class Example:
    """Sample arguments (over the op's defaults) and input shapes: small enough to build and run on a CPU in a
    test, and valid for the op, so that every part of its entry can be checked on it."""

    inputs: tuple[Shape, ...]
    args: Mapping[str, object] = field(default_factory=dict)


Builder = Callable[[Args, list[Shape]], ModuleSpec]


@dataclass(frozen=True)
class Op:
    """Everything about one op.  The torch side is exactly one of three builders, called only by the torch
    backend (so the entry itself imports without torch): `module(args, in_shapes)` gives the ModuleSpec of the
    op's nn.Module for its checked args and input shapes; `function()` gives the MergeCall of a merge done as fx
    call_function nodes (and eagerly); `parameter(args)` gives the ParameterSpec of a learnable tensor, which
    reads no input and is an attribute of its block (an fx get_attr node) with its own state_dict key."""

    name: str
    doc: str
    family: str
    params: Mapping[str, Param]
    shape: Callable[[Args, list[Shape]], Shape]
    label: Callable[[Args], str]
    example: Example
    module: Builder | None = None
    function: Callable[[], MergeCall] | None = None
    parameter: Callable[[Args], ParameterSpec] | None = None
    count_params: Callable[[Args, list[Shape]], int] = lambda args, ins: 0
    # Multiply-accumulates: counted for conv, conv_transpose and linear only (the convention behind
    # torchvision's published GMACs); every other op counts 0.  See docs/ops.md.
    macs: Callable[[Args, list[Shape], Shape], int] = lambda args, ins, out: 0
    min_inputs: int = 1
    max_inputs: int = 1  # 0 means any number
    # Whether the op's output is a new tensor that its own backward does not need, so the one op that reads it
    # next may overwrite it: the backward keeps the inputs (conv, conv_transpose, linear, batchnorm, max-pool
    # indices) or nothing (add, concat, avgpool), never the output; and the output is not a view of, or the same
    # tensor as, the input (as flatten, identity and eval dropout give).  A callable of the args where that
    # depends on them (batchnorm's `impl: formula` returns an expression of tensors autograd keeps).
    fresh_output: Union[bool, Callable[[Args], bool]] = False
    # Whether the op's module may overwrite its input (built with `inplace=True`) where its input is fresh and
    # read by nothing else: what hand-written PyTorch does for ReLU, saving one activation buffer per ReLU.
    in_place: bool = False
    # Several outputs (chunk): the number of parts for these args, each of the shape `shape` gives; a spec reads
    # part k of node `x` as `from: x.k`.  None: one output.
    outputs: Callable[[Args], int] | None = None
    # Whether the op is elementwise over inputs broadcast as PyTorch broadcasts (aligned on the right), so that an
    # input without the batch dimension (a `parameter`) is well defined; every other op refuses such an input.
    broadcasts: bool = False
    # Whether the op acts only in training: in eval its module returns its input unchanged (dropout,
    # stochastic_depth).  Such an op has no weights, keeps its input's shape and counts no MACs, and its output
    # is never fresh (in eval it *is* the input).  The registry test checks all of that on the example; docs
    # and diagrams mark it.
    train_only: bool = False

    def __post_init__(self):
        if sum(b is not None for b in (self.module, self.function, self.parameter)) != 1:
            raise ValueError(f"op {self.name!r}: give exactly one of `module`, `function` and `parameter`")
        if self.min_inputs < 1 or (self.max_inputs and self.max_inputs < self.min_inputs):
            raise ValueError(f"op {self.name!r}: inputs must be min_inputs ≥ 1 and max_inputs ≥ min_inputs "
                             f"(or 0 for any number), not {self.min_inputs}..{self.max_inputs}")
        if self.parameter is not None and (self.min_inputs, self.max_inputs) != (1, 1):
            raise ValueError(f"op {self.name!r}: a parameter reads no input; leave min_inputs and max_inputs alone")
        if self.in_place and self.module is None:
            raise ValueError(f"op {self.name!r}: only an op with a module can be built in place")
        if self.train_only and (self.module is None or self.in_place or self.fresh_output is not False):
            raise ValueError(f"op {self.name!r}: a train-only op has a module, is not built in place and its output "
                             "is not fresh (in eval it is the input)")
        if not self.doc or any(not p.doc for p in self.params.values()):
            raise ValueError(f"op {self.name!r}: the op and each of its params need a doc")

    @property
    def reads_input(self) -> bool:
        """False for a learnable tensor (`parameter`), whose node has no inputs."""
        return self.parameter is None

    def is_fresh(self, args: Args) -> bool:
        """`fresh_output` for these args."""
        return self.fresh_output(args) if callable(self.fresh_output) else self.fresh_output


def defaults(op: Op) -> dict[str, object]:
    return {name: p.default for name, p in op.params.items() if not p.required}


# ── argument checking ─────────────────────────────────────────────────────────────────────────────────────────

class ArgError(Exception):
    def __init__(self, expected: str, found: str):
        super().__init__(f"expected {expected}, found {found}")
        self.expected, self.found = expected, found


MAX_SHOWN = 200  # characters of a value an error quotes

# The largest int an op param takes, and the largest dimension an inferred shape may have: 2**31 - 1, the largest
# C `int`.  It is far above any real size (the zoo's largest is 4,096 features; a 2**31-pixel side would be a
# 16-GiB row of one image), and it is where sizes stop being safe to hand on: cuDNN and many of PyTorch's kernels
# index with 32-bit ints, and beyond 2**63 - 1 torch cannot even take the number (`linear: {out: 10**20}` failed
# with C++ stack frames).  Bounding every arg also bounds every inferred size by a product of a few bounded
# numbers, so no message ever formats an int of thousands of digits.
MAX_INT = 2**31 - 1
# The most elements one example's tensor may hold (C·H·W): 2**40, 4 TiB of float32 per example — beyond any
# machine, yet within 64-bit arithmetic after any op's formula.  Checked with MAX_INT on every inferred shape.
MAX_ELEMENTS = 2**40


def describe(value) -> str:
    """A value as an error's `found:` shows it: its kind and its repr, capped at MAX_SHOWN characters."""
    kind = next((name for t, name in ((bool, "bool"), (int, "int"), (float, "float"), (str, "string"),
                                      (type(None), "null"), ((list, tuple), "list"), (dict, "mapping"))
                 if isinstance(value, t)), type(value).__name__)  # the loader's MList is a list
    return f"{kind} {shown(value)}" if kind != "mapping" else "a mapping"


def shown(value, limit: int = MAX_SHOWN) -> str:
    """`repr(value)`, cut after `limit` characters with "…".  Built piece by piece and stopped at the limit: the
    repr of a list that holds another list twice, at each of 40 levels, would be 2**40 times as long."""
    text, length = [], 0
    for piece in _repr_pieces(value, limit):
        text.append(piece)
        length += len(piece)
        if length > limit:
            return "".join(text)[:limit - 1] + "…"
    return "".join(text)


def _repr_pieces(value, limit: int):
    """The repr of `value` in pieces, depth first without recursion (a list may be nested thousands deep)."""
    stack = [(iter((value,)), "", [True])]
    while stack:
        items, closer, first = stack[-1]
        item = next(items, stack)
        if item is stack:
            stack.pop()
            yield closer
            continue
        if not first[0]:
            yield ", "
        first[0] = False
        if isinstance(item, (list, tuple)):
            is_list = isinstance(item, list)
            yield "[" if is_list else "("
            stack.append((iter(item), "]" if is_list else ",)" if len(item) == 1 else ")", [True]))
        elif isinstance(item, str):
            yield repr(item[:limit + 1])  # past the limit, the quote closing it is cut anyway
        elif isinstance(item, int) and not isinstance(item, bool) and item.bit_length() > 4 * limit:
            yield f"<an int of about {int(item.bit_length() * math.log10(2)):,} digits>"  # repr would refuse it
        elif isinstance(item, dict):
            yield "{…}"
        else:
            yield repr(item)


def check_arg(param: Param, value: object) -> object:
    """Checks one evaluated op argument against its Param; returns it normalized (tuples → lists, ints → floats
    where a float is expected) or raises ArgError."""
    kind = param.type
    if value is None and not param.required and param.default is None:
        return None
    if kind == "padding" and value in ("same", "valid"):
        return value
    if kind == "str":
        if not isinstance(value, str) or (param.choices and value not in param.choices):
            raise ArgError(" or ".join(map(repr, param.choices)) if param.choices else "a string", describe(value))
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise ArgError("true or false", describe(value))
        return value
    if kind == "floats":
        if isinstance(value, (list, tuple)):
            if not 1 <= len(value) <= MAX_FLOATS:
                raise ArgError(f"a number or a list of 1 to {MAX_FLOATS:,} numbers", describe(value))
            return [check_arg(Param("float", doc=param.doc, minimum=param.minimum), v) for v in value]
        return check_arg(Param("float", doc=param.doc, minimum=param.minimum), value)
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ArgError("a number", describe(value))
        try:
            number = float(value)
        except OverflowError:  # an int beyond any float: 10**309
            number = math.inf
        if not math.isfinite(number):  # nan passes every comparison with a bound; inf never means a setting
            raise ArgError("a finite number", describe(value))
        _bounds(param, number)
        return number
    if kind == "ints":
        if not isinstance(value, (list, tuple)) or not 1 <= len(value) <= MAX_RANK or \
                any(isinstance(v, bool) or not isinstance(v, int) for v in value):
            raise ArgError(f"a list of 1 to {MAX_RANK} ints", describe(value))
        for v in value:
            _bounds(param, v)
        return list(value)
    if kind == "int" or (kind in ("int2", "padding", "size") and not isinstance(value, (list, tuple))):
        if isinstance(value, bool) or not isinstance(value, int):
            expected = "an int" if kind == "int" else "an int or [h, w]" + (", 'same' or 'valid'" if kind == "padding" else "")
            raise ArgError(expected, describe(value))
        _bounds(param, value)
        return value
    if len(value) != 2 or any(isinstance(v, bool) or not isinstance(v, int) for v in value):
        raise ArgError("an int or a pair [h, w] of ints", describe(value))
    for v in value:
        _bounds(param, v)
    return list(value)


def _bounds(param: Param, value: float) -> None:
    if isinstance(value, int) and value > MAX_INT:  # every int param (sizes, strides, groups) is at most MAX_INT
        raise ArgError(f"a value ≤ {MAX_INT:,} (2**31 - 1)", shown(value))
    if param.minimum is not None and value < param.minimum:
        raise ArgError(f"a value ≥ {param.minimum:g}", shown(value))
    if param.below is not None and value >= param.below:
        raise ArgError(f"a value < {param.below:g}", shown(value))


# ── shape helpers shared by the family files ──────────────────────────────────────────────────────────────────

def pair(value) -> tuple[int, int]:
    """`3` → (3, 3); `[3, 5]` → (3, 5)."""
    if isinstance(value, (list, tuple)):
        return int(value[0]), int(value[1])
    return int(value), int(value)


def fmt_pair(value) -> str:
    h, w = pair(value)
    return f"{h}" if h == w else f"{h}×{w}"


def fmt_kernel(value) -> str:
    """Kernels always read as h×w in diagrams (`conv 3×3 /2 → 64`)."""
    h, w = pair(value)
    return f"{h}×{w}"


def show(shape: Shape) -> str:
    return "[" + ", ".join(map(str, shape)) + "]"


def need_rank(op: str, shape: Shape, ranks: tuple[int, ...]) -> None:
    if len(shape) not in ranks:
        want = " or ".join({1: "[features]", 3: "[channels, height, width]"}.get(r, f"rank-{r}") for r in ranks)
        raise ShapeError(f"{op} needs a {want} input", expected=want, found=show(shape),
                         hint="add `flatten` before a linear layer" if ranks == (1,) else None)


def spatial_out(size: int, kernel: int, stride: int, pad: int, dilation: int = 1, ceil: bool = False) -> int:
    span = size + 2 * pad - dilation * (kernel - 1) - 1
    out = (math.ceil(span / stride) if ceil else span // stride) + 1
    if ceil and (out - 1) * stride >= size + pad:  # PyTorch: the last window must start inside the input
        out -= 1
    return out


def positive(op: str, shape: Shape, detail: str) -> Shape:
    if any(d <= 0 for d in shape):
        raise ShapeError(f"{op} output size is not positive: {show(shape)} ({detail})",
                         expected="every dimension ≥ 1", found=show(shape),
                         hint="the input is too small for this kernel/stride; use a larger input or less downsampling")
    return shape


def check_size(what: str, shape: Shape) -> None:
    """Raises ShapeError when a shape (the input's, or an op's inferred output) has a dimension over MAX_INT or
    more than MAX_ELEMENTS elements; the message quotes the shape capped, so even a huge number formats."""
    if any(d > MAX_INT for d in shape) or math.prod(shape) > MAX_ELEMENTS:
        raise ShapeError(f"{what} {shown(list(shape))} is too large for a tensor",
                         expected=f"every dimension ≤ {MAX_INT:,} (2**31 - 1) and at most {MAX_ELEMENTS:,} (2**40) "
                                  "elements per example", found=shown(list(shape)),
                         hint="no real network comes near this: look for a typo in a size, stride or scale")


def same_shape(args: Args, ins: list[Shape]) -> Shape:
    """The shape rule of an op that keeps its input's shape."""
    return ins[0]


def as_pair(value):
    """Op args hold pairs as YAML lists; PyTorch (and repr) want tuples.  Ints and strings pass through."""
    return tuple(value) if isinstance(value, list) else value
