"""The parameter family: `parameter`, a learnable tensor that is a node of its own (ConvNeXt's layer_scale).

It reads no input and has no batch dimension: it is one tensor for the whole batch, which an elementwise merge
broadcasts against the batched tensors (PyTorch aligns shapes on the right).  Its state_dict key is its node's
name, an attribute of its block, as `nn.Parameter` attributes of hand-written modules are.
"""

from __future__ import annotations

import math

from netspec.ops.base import Args, Example, Family, Op, Param as P, Shape
from netspec.ops.torch_build import ParameterSpec

FAMILY = Family("parameter", "learnable tensor", "#fce3c9", "#c07a35", shape="cylinder", style="filled")


def _shape(args: Args, ins: list[Shape]) -> Shape:
    return tuple(args["shape"])


OPS = [
    Op("parameter", "A learnable tensor of a given shape (nn.Parameter), every element starting at `init`; it reads "
       "no input and has no batch dimension, so it is used through an elementwise merge that broadcasts it "
       "(`mul: {from: [scale, x]}`).", "parameter", {
        "shape": P("ints", required=True, doc="its shape, e.g. [C, 1, 1] to scale each channel", minimum=1),
        "init": P("float", 0.0, "the initial value of every element"),
    }, _shape, lambda a: "parameter " + "×".join(map(str, a["shape"])), Example([], {"shape": [4, 1, 1], "init": 0.5}),
       count_params=lambda a, i: math.prod(a["shape"]),
       parameter=lambda a: ParameterSpec(tuple(a["shape"]), a["init"])),
]
