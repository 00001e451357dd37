"""The linear family: linear (nn.Linear), on [features] or over the last dim of any shape."""

from __future__ import annotations

import math

from netspec.ops.base import Args, Example, Family, Op, Param as P, Shape, need_rank, positive
from netspec.ops.torch_build import ModuleSpec, nn

FAMILY = Family("linear", "linear", "#e5dcf2", "#7d64a8")


def _linear_shape(args: Args, ins: list[Shape]) -> Shape:
    (x,) = ins
    if args["over"] == "features":
        need_rank("linear", x, (1,))
    return positive("linear", x[:-1] + (args["out"],), "out features")


def _linear_module(args: Args, ins: list[Shape]) -> ModuleSpec:
    return ModuleSpec(nn.Linear, (ins[0][-1], args["out"]), (("bias", args["bias"]),))


def _linear_macs(args: Args, ins: list[Shape], out: Shape) -> int:
    # One in·out product per position: a [H, W, C] input is H·W rows of C features.
    return math.prod(ins[0][:-1]) * ins[0][-1] * args["out"]


OPS = [
    Op("linear", "Fully connected layer (nn.Linear) on [features], or with `over: last` on the last dim of any "
       "shape (ConvNeXt's Linear after a permute to [H, W, C]); in_features is inferred.", "linear", {
        "out": P("int", required=True, doc="output features", minimum=1),
        "bias": P("bool", True, "learnable bias"),
        "over": P("str", "features", "features: the input must be [features] (flatten a map first); last: the "
                  "last dim of any shape, every other dim kept", choices=("features", "last")),
    }, _linear_shape, lambda a: f"linear → {a['out']}",
       count_params=lambda a, i: i[0][-1] * a["out"] + (a["out"] if a["bias"] else 0),
       macs=_linear_macs, module=_linear_module, fresh_output=True,
       example=Example([(20,)], {"out": 10})),
]
