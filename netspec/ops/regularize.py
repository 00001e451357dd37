"""The regularize family: dropout (nn.Dropout)."""

from __future__ import annotations

from netspec.ops.base import Example, Family, Op, Param as P, same_shape
from netspec.ops.torch_build import ModuleSpec, nn

FAMILY = Family("regularize", "dropout", "#f6d5d5", "#b35c5c")

OPS = [
    Op("dropout", "Zeroes elements with probability p during training (nn.Dropout).", "regularize", {
        "p": P("float", 0.5, "drop probability in [0, 1)", minimum=0, below=1),
    }, same_shape, lambda a: f"dropout {a['p']}", Example([(10,)], {"p": 0.3}),
       module=lambda a, i: ModuleSpec(nn.Dropout, (), {"p": a["p"]})),
]
