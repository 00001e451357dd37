"""The linear family: linear (nn.Linear)."""

from __future__ import annotations

from netspec.ops.base import Args, Example, Family, Op, Param as P, Shape, need_rank, positive
from netspec.ops.torch_build import ModuleSpec, nn

FAMILY = Family("linear", "linear", "#e5dcf2", "#7d64a8")


def _linear_shape(args: Args, ins: list[Shape]) -> Shape:
    (x,) = ins
    need_rank("linear", x, (1,))
    return positive("linear", (args["out"],), "out features")


def _linear_module(args: Args, ins: list[Shape]) -> ModuleSpec:
    return ModuleSpec(nn.Linear, (ins[0][0], args["out"]), (("bias", args["bias"]),))


OPS = [
    Op("linear", "Fully connected layer (nn.Linear) on [features]; in_features is inferred.", "linear", {
        "out": P("int", required=True, doc="output features", minimum=1),
        "bias": P("bool", True, "learnable bias"),
    }, _linear_shape, lambda a: f"linear → {a['out']}",
       count_params=lambda a, i: i[0][0] * a["out"] + (a["out"] if a["bias"] else 0),
       macs=lambda a, i, o: i[0][0] * a["out"], module=_linear_module, fresh_output=True,
       example=Example([(20,)], {"out": 10})),
]
