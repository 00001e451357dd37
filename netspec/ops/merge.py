"""The merge family: concat and add, which join branches.  They own no module: each is call_function nodes in
the fx graph (`torch.cat`, `+`), so the compiled code reads like hand-written PyTorch."""

from __future__ import annotations

import operator

from netspec.ops.base import Args, Example, Family, Op, Shape, ShapeError, show
from netspec.ops.torch_build import MergeCall, torch

FAMILY = Family("merge", "concat / add", "#eeeeee", "#555555", "ellipse", "filled")


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


# Both outputs are new tensors; the backward of a cat or a sum keeps nothing.
OPS = [
    Op("concat", "Concatenates its inputs on channels; all other dimensions must agree.", "merge", {},
       _concat_shape, lambda a: "concat", Example([(3, 4, 4), (5, 4, 4)]),
       function=lambda: MergeCall(torch.cat, "list_dim"), fresh_output=True, min_inputs=1, max_inputs=0),
    Op("add", "Elementwise sum of inputs of identical shape.", "merge", {},
       _add_shape, lambda a: "add", Example([(3, 4, 4), (3, 4, 4), (3, 4, 4)]),
       function=lambda: MergeCall(operator.add, "fold"), fresh_output=True, min_inputs=2, max_inputs=0,
       broadcasts=True),
]
