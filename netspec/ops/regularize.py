"""The regularize family: ops that act only in training (`train_only`) and are the identity in eval: dropout
(nn.Dropout) and stochastic_depth (torchvision.ops.StochasticDepth's semantics, netspec's own module)."""

from __future__ import annotations

from netspec.ops.base import Args, Example, Family, Op, Param as P, Shape, same_shape
from netspec.ops.torch_build import ModuleSpec, nn

FAMILY = Family("regularize", "dropout / stochastic depth", "#f6d5d5", "#b35c5c")


def _stochastic_depth_module(args: Args, ins: list[Shape]) -> ModuleSpec:
    from netspec.ops.modules import StochasticDepth  # imports torch: only when a module is wanted
    return ModuleSpec(StochasticDepth, (args["p"], args["mode"]))


OPS = [
    Op("dropout", "Zeroes elements with probability p during training (nn.Dropout).", "regularize", {
        "p": P("float", 0.5, "drop probability in [0, 1)", minimum=0, below=1),
    }, same_shape, lambda a: f"dropout {a['p']}", Example([(10,)], {"p": 0.3}),
       module=lambda a, i: ModuleSpec(nn.Dropout, (), {"p": a["p"]}), train_only=True),
    Op("stochastic_depth", "In training, zeroes a whole example (mode `row`) or the whole batch (`batch`) with "
       "probability p and scales what it keeps by 1/(1 − p); torchvision.ops.StochasticDepth. Put it at the end "
       "of a residual branch, before the `add`.", "regularize", {
        "p": P("float", required=True, doc="drop probability in [0, 1)", minimum=0, below=1),
        "mode": P("str", "row", "row: per example; batch: the whole batch at once", choices=("row", "batch")),
    }, same_shape, lambda a: f"stochastic depth {a['p']:g}" + (" (batch)" if a["mode"] == "batch" else ""),
       Example([(3, 4, 4)], {"p": 0.5}), module=_stochastic_depth_module, train_only=True),
]
