"""The merge family: concat, add and mul, which join branches.  They own no module: each is call_function nodes in
the fx graph (`torch.cat`, `+`, `*`), so the compiled code reads like hand-written PyTorch."""

from __future__ import annotations

import operator

from netspec.ops.base import Args, Example, Family, Op, Shape, ShapeError, show
from netspec.ops.torch_build import MergeCall, torch

FAMILY = Family("merge", "concat / add / mul", "#eeeeee", "#555555", "ellipse", "filled")


def _concat_shape(args: Args, ins: list[Shape]) -> Shape:
    first = ins[0]
    for other in ins[1:]:
        if len(other) != len(first) or other[1:] != first[1:]:
            raise ShapeError("concat: inputs differ in more than the channel dimension: "
                             + " vs ".join(show(s) for s in ins),
                             expected=f"[*, {', '.join(map(str, first[1:]))}] for every input",
                             found=", ".join(show(s) for s in ins))
    return (sum(s[0] for s in ins),) + first[1:]


def _add_shape(args: Args, ins: list[Shape]) -> Shape:
    for other in ins[1:]:
        if other != ins[0]:
            raise ShapeError("add: branch shapes differ: " + " vs ".join(show(s) for s in ins),
                             expected="identical shapes", found=", ".join(show(s) for s in ins),
                             hint="project the shortcut (a 1×1 conv with the same stride and channels)")
    return ins[0]


def _broadcast_shape(args: Args, ins: list[Shape]) -> Shape:
    """PyTorch's broadcasting over the non-batch shape: every dimension equal, or 1 in all inputs but some.

    The inputs must have the same rank.  PyTorch aligns shapes from the right *including* the batch dimension,
    so a [W] input against a [C, H, W] one would meet the batch size with H: no rank-changing broadcast means
    what its non-batch shapes suggest, and none is accepted."""
    found = ", ".join(show(s) for s in ins)
    if len({len(s) for s in ins}) > 1:
        raise ShapeError("mul: inputs differ in rank: " + " vs ".join(show(s) for s in ins),
                         expected=f"{len(ins[0])} dimensions in every input (as {show(ins[0])})", found=found,
                         hint="the batch dimension is aligned too, so ranks must match: a per-channel scale of "
                              "a [C, H, W] map is [C, 1, 1] (as `global_avgpool` gives), not [C]")
    out = []
    for axis, sizes in enumerate(zip(*ins)):
        wide = {d for d in sizes if d != 1}
        if len(wide) > 1:
            raise ShapeError(f"mul: shapes do not broadcast: dimension {axis} is "
                             + " vs ".join(str(d) for d in sizes) + " in " + " vs ".join(show(s) for s in ins),
                             expected="in each dimension, one size or 1 (PyTorch's broadcasting)", found=found,
                             hint="a per-channel scale of a [C, H, W] map is [C, 1, 1] with the same C: check "
                                  "the `out:` of the branch that makes the scale")
        out.append(wide.pop() if wide else 1)
    return tuple(out)


# All outputs are new tensors; the backward of a cat or a sum keeps nothing.
OPS = [
    Op("concat", "Concatenates its inputs on channels; all other dimensions must agree.", "merge", {},
       _concat_shape, lambda a: "concat", Example([(3, 4, 4), (5, 4, 4)]),
       function=lambda: MergeCall(torch.cat, "list_dim"), fresh_output=True, min_inputs=1, max_inputs=0),
    Op("add", "Elementwise sum of inputs of identical shape.", "merge", {},
       _add_shape, lambda a: "add", Example([(3, 4, 4), (3, 4, 4), (3, 4, 4)]),
       function=lambda: MergeCall(operator.add, "fold"), fresh_output=True, min_inputs=2, max_inputs=0,
       broadcasts=True),
    # The product's backward keeps its inputs, never its output.
    Op("mul", "Elementwise product, with PyTorch's broadcasting: inputs of one rank whose sizes agree or are 1 in "
       "each dimension (squeeze-excitation's [C, H, W] × [C, 1, 1]).", "merge", {},
       _broadcast_shape, lambda a: "mul", Example([(3, 4, 4), (3, 1, 1), (1, 4, 1)]),
       function=lambda: MergeCall(operator.mul, "fold"), fresh_output=True, min_inputs=2, max_inputs=0,
       broadcasts=True),
]
