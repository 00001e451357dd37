"""The norm family: batchnorm (nn.BatchNorm1d/2d, or the course's formulas), layernorm, groupnorm, lrn, and a
fixed per-channel affine."""

from __future__ import annotations

import math
from typing import Callable

from netspec.ops.base import Args, Example, Family, Op, Param as P, Shape, ShapeError, need_rank, show
from netspec.ops.torch_build import ModuleSpec, nn

FAMILY = Family("norm", "norm", "#fdf1c7", "#b8972f")


def _norm_shape(op: str) -> Callable[[Args, list[Shape]], Shape]:
    def rule(args: Args, ins: list[Shape]) -> Shape:
        (x,) = ins
        need_rank(op, x, (1, 3))
        return x
    return rule


def _groupnorm_shape(args: Args, ins: list[Shape]) -> Shape:
    (x,) = ins
    need_rank("groupnorm", x, (3,))
    if x[0] % args["groups"]:
        raise ShapeError(f"groupnorm groups={args['groups']} must divide the channels ({x[0]})",
                         expected=f"channels divisible by {args['groups']}", found=str(x[0]))
    return x


def _per_channel_affine(args: Args, ins: list[Shape]) -> int:
    """A scale and a shift per channel (per feature), when affine."""
    return 2 * ins[0][0] if args["affine"] else 0


def _batchnorm_module(args: Args, ins: list[Shape]) -> ModuleSpec:
    image = len(ins[0]) == 3  # (C, H, W) without the batch dim; otherwise (F,)
    common = (("eps", args["eps"]), ("momentum", args["momentum"]), ("affine", args["affine"]))
    if args["impl"] == "formula":
        from netspec.ops.formula_bn import FormulaBatchNorm  # imports torch: only when a module is wanted
        return ModuleSpec(FormulaBatchNorm, (ins[0][0], 4 if image else 2), common)
    return ModuleSpec(nn.BatchNorm2d if image else nn.BatchNorm1d, (ins[0][0],), common)


def _layernorm_shape(args: Args, ins: list[Shape]) -> Shape:
    (x,) = ins
    if args["over"] == "all":
        need_rank("layernorm", x, (1, 3))
    elif args["over"] == "channels" and len(x) < 2:
        raise ShapeError(f"layernorm over channels needs a [channels, …] input with positions, not {show(x)}",
                         expected="[channels, height, width] (or any [C, …] of rank ≥ 2)", found=show(x),
                         hint="use `over: last` (or the default) on [features]")
    return x


def _layernorm_normalized(args: Args, x: Shape) -> tuple[int, ...]:
    """The shape normalized over, which is also the shape of the affine weight and bias."""
    return {"all": tuple(x), "last": (x[-1],), "channels": (x[0],)}[args["over"]]


def _layernorm_module(args: Args, ins: list[Shape]) -> ModuleSpec:
    kwargs = (("eps", args["eps"]), ("elementwise_affine", args["affine"]))
    if args["over"] == "channels":
        from netspec.ops.modules import ChannelLayerNorm  # imports torch: only when a module is wanted
        return ModuleSpec(ChannelLayerNorm, (ins[0][0],), kwargs)
    normalized = _layernorm_normalized(args, ins[0])
    return ModuleSpec(nn.LayerNorm, (normalized if args["over"] == "all" else normalized[0],), kwargs)


def _affine_values(args: Args, channels: int) -> dict[str, list[float]]:
    """`scale` and `shift` as one number per channel (a single number stands for every channel)."""
    return {key: list(args[key]) if isinstance(args[key], list) else [args[key]] * channels
            for key in ("scale", "shift")}


def _affine_shape(args: Args, ins: list[Shape]) -> Shape:
    (x,) = ins
    need_rank("affine", x, (1, 3))
    for key in ("scale", "shift"):
        if isinstance(args[key], list) and len(args[key]) not in (1, x[0]):
            raise ShapeError(f"affine `{key}` has {len(args[key])} values for {x[0]} channels",
                             expected=f"one number, or {x[0]} (one per channel)", found=f"{len(args[key])} values",
                             hint=f"give `{key}` one value per channel of the input")
    return x


def _affine_module(args: Args, ins: list[Shape]) -> ModuleSpec:
    from netspec.ops.modules import ChannelAffine  # imports torch: only when a module is wanted
    channels = ins[0][0]
    values = {k: v * channels if len(v) == 1 else v for k, v in _affine_values(args, channels).items()}
    return ModuleSpec(ChannelAffine, (values["scale"], values["shift"], len(ins[0]) + 1))


def _affine_label(args: Args) -> str:
    short = lambda v: (f"{v:g}" if not isinstance(v, list) else
                       "[" + ", ".join(f"{x:.3g}" for x in v[:3]) + (", …" if len(v) > 3 else "") + "]")
    return f"affine ×{short(args['scale'])} +{short(args['shift'])}"


_EPS = P("float", 1e-5, "added to the variance", minimum=0)

OPS = [
    Op("affine", "A fixed scale and shift per channel (per feature): x·scale + shift, with constants, not weights "
       "(torchvision's Inception-v3 `transform_input`). Not in the state_dict.", "norm", {
        "scale": P("floats", 1.0, "a number, or one per channel"),
        "shift": P("floats", 0.0, "a number, or one per channel"),
    }, _affine_shape, _affine_label, module=_affine_module, fresh_output=True,
       example=Example([(3, 4, 4)], {"scale": [0.458, 0.448, 0.45], "shift": [-0.03, -0.088, -0.188]})),
    Op("batchnorm", "Batch normalization; 1-D or 2-D by the input's rank. impl `formula` is the course's own "
       "equations in plain tensor ops (moving statistics as buffers, biased running variance).", "norm", {
        "eps": _EPS,
        "momentum": P("float", 0.1, "weight of the new batch in the moving statistics", minimum=0),
        "affine": P("bool", True, "learnable scale γ and shift β"),
        "impl": P("str", "torch", "torch (nn.BatchNorm1d/2d) or formula", choices=("torch", "formula")),
    }, _norm_shape("batchnorm"), lambda a: "batchnorm" + (" (formula)" if a["impl"] == "formula" else ""),
       count_params=_per_channel_affine, module=_batchnorm_module,
       # nn.BatchNorm's backward keeps its input, not its output.  The formula's output ends a chain of plain
       # tensor ops whose saved tensors nobody has checked, so it is not vouched for.
       fresh_output=lambda a: a["impl"] == "torch",
       example=Example([(6, 5, 5)], {"eps": 1e-3, "momentum": 0.2})),
    Op("layernorm", "Layer normalization (nn.LayerNorm): by default over all non-batch dimensions; `over: last` "
       "over the last dim of any shape (ConvNeXt's block, after a permute); `over: channels` over the channels "
       "of [C, H, W] at each position (torchvision's LayerNorm2d).", "norm", {
        "eps": _EPS,
        "affine": P("bool", True, "learnable elementwise scale and shift"),
        "over": P("str", "all", "the dims normalized, which the affine weights have: all (every non-batch dim of "
                  "[features] or [C, H, W]), last (the last dim, any shape) or channels (dim 0 of [C, …])",
                  choices=("all", "last", "channels")),
    }, _layernorm_shape, lambda a: "layernorm" + ("" if a["over"] == "all" else f" over {a['over']}"),
       count_params=lambda a, i: 2 * math.prod(_layernorm_normalized(a, i[0])) if a["affine"] else 0,
       module=_layernorm_module, example=Example([(6, 4, 4)], {"over": "channels", "eps": 1e-6})),
    Op("groupnorm", "Group normalization over channel groups (nn.GroupNorm).", "norm", {
        "groups": P("int", required=True, doc="number of channel groups; must divide the channels", minimum=1),
        "eps": _EPS,
        "affine": P("bool", True, "learnable per-channel scale and shift"),
    }, _groupnorm_shape, lambda a: f"groupnorm g{a['groups']}", count_params=_per_channel_affine,
       module=lambda a, i: ModuleSpec(nn.GroupNorm, (a["groups"], i[0][0]),
                                      (("eps", a["eps"]), ("affine", a["affine"]))),
       example=Example([(8, 4, 4)], {"groups": 4})),
    Op("lrn", "Local response normalization across channels (nn.LocalResponseNorm).", "norm", {
        "size": P("int", required=True, doc="number of neighbouring channels", minimum=1),
        "alpha": P("float", 1e-4, "multiplicative factor"),
        "beta": P("float", 0.75, "exponent"),
        "k": P("float", 1.0, "additive factor"),
    }, _norm_shape("lrn"), lambda a: f"lrn {a['size']}",
       module=lambda a, i: ModuleSpec(nn.LocalResponseNorm, (a["size"],),
                                      (("alpha", a["alpha"]), ("beta", a["beta"]), ("k", a["k"]))),
       example=Example([(8, 5, 5)], {"size": 5})),
]
