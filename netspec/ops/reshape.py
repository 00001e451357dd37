"""The reshape family: flatten and identity, which move no values (their outputs are views of the input)."""

from __future__ import annotations

import math

from netspec.ops.base import Example, Family, Op, same_shape
from netspec.ops.torch_build import ModuleSpec, nn

FAMILY = Family("reshape", "flatten, identity", "#ffffff", "#888888", style="rounded,dashed")

OPS = [
    Op("flatten", "[C, H, W] → [C·H·W] (nn.Flatten).", "reshape", {}, lambda a, i: (math.prod(i[0]),),
       lambda a: "flatten", Example([(3, 4, 4)]), module=lambda a, i: ModuleSpec(nn.Flatten)),
    Op("identity", "Passes its input through (nn.Identity).", "reshape", {}, same_shape,
       lambda a: "identity", Example([(5,)]), module=lambda a, i: ModuleSpec(nn.Identity)),
]
