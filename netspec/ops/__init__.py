"""THE op table: each op's typed params, shape rule, parameter count, MACs, family and diagram label.

This module never imports torch; the torch side of each op lives in `torch_ops.py`, keyed by the same names.
Shapes exclude the batch dimension: (C, H, W) for images, (F,) for features.  Shape rules follow PyTorch's
formulas exactly (floor division, ceil_mode, padding) and raise `ShapeError`, which callers locate.

MACs count multiply-accumulates of `conv`, `conv_transpose` and `linear` only (the convention behind
torchvision's published GMACs); every other op counts 0.  See docs/ops.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Callable, Mapping

Shape = tuple[int, ...]
Args = Mapping[str, object]


class ShapeError(Exception):
    """An op cannot accept its input shapes (or its args make a non-positive size)."""

    def __init__(self, message: str, expected: str | None = None, found: str | None = None, hint: str | None = None):
        super().__init__(message)
        self.message, self.expected, self.found, self.hint = message, expected, found, hint


@dataclass(frozen=True)
class Param:
    """One typed op parameter.  `type` is one of PARAM_TYPES; `default` MISSING means required."""

    type: str
    default: object = None
    doc: str = ""
    required: bool = False
    choices: tuple = ()
    minimum: float | None = None  # smallest allowed value (each element, for pairs)
    below: float | None = None    # exclusive upper bound (dropout's p < 1)


# int2: an int or a pair [h, w]; padding: int2 or "same"/"valid"; size: int2 or null.
PARAM_TYPES = ("int", "float", "bool", "str", "int2", "padding", "size")


@dataclass(frozen=True)
class Op:
    name: str
    doc: str
    family: str  # conv | norm | activation | pool | linear | merge | reshape | regularize
    params: Mapping[str, Param]
    shape: Callable[[Args, list[Shape]], Shape]
    count_params: Callable[[Args, list[Shape]], int] = lambda args, ins: 0
    macs: Callable[[Args, list[Shape], Shape], int] = lambda args, ins, out: 0
    label: Callable[[Args], str] = lambda args: ""
    min_inputs: int = 1
    max_inputs: int = 1  # 0 means any number


def pair(value) -> tuple[int, int]:
    """`3` → (3, 3); `[3, 5]` → (3, 5)."""
    if isinstance(value, (list, tuple)):
        return int(value[0]), int(value[1])
    return int(value), int(value)


def _fmt_pair(value) -> str:
    h, w = pair(value)
    return f"{h}" if h == w else f"{h}×{w}"


def _fmt_kernel(value) -> str:
    """Kernels always read as h×w in diagrams (`conv 3×3 /2 → 64`)."""
    h, w = pair(value)
    return f"{h}×{w}"


def _need_rank(op: str, shape: Shape, ranks: tuple[int, ...]) -> None:
    if len(shape) not in ranks:
        want = " or ".join({1: "[features]", 3: "[channels, height, width]"}[r] for r in ranks)
        raise ShapeError(f"{op} needs a {want} input", expected=want, found=_show(shape),
                         hint="add `flatten` before a linear layer" if ranks == (1,) else None)


def _show(shape: Shape) -> str:
    return "[" + ", ".join(map(str, shape)) + "]"


def _spatial_out(size: int, kernel: int, stride: int, pad: int, dilation: int = 1, ceil: bool = False) -> int:
    span = size + 2 * pad - dilation * (kernel - 1) - 1
    out = (math.ceil(span / stride) if ceil else span // stride) + 1
    if ceil and (out - 1) * stride >= size + pad:  # PyTorch: the last window must start inside the input
        out -= 1
    return out


def _positive(op: str, shape: Shape, detail: str) -> Shape:
    if any(d <= 0 for d in shape):
        raise ShapeError(f"{op} output size is not positive: {_show(shape)} ({detail})",
                         expected="every dimension ≥ 1", found=_show(shape),
                         hint="the input is too small for this kernel/stride; use a larger input or less downsampling")
    return shape


def conv_padding(args: Args) -> tuple[int, int]:
    """Explicit (ph, pw) for a conv; 'same' is resolved for stride 1 as PyTorch does (odd total padding is not
    expressible with symmetric padding, so it is refused by the shape rule)."""
    padding = args["padding"]
    if padding == "valid":
        return 0, 0
    if padding == "same":
        kh, kw = pair(args["kernel"])
        dh, dw = pair(args["dilation"])
        return dh * (kh - 1) // 2, dw * (kw - 1) // 2
    return pair(padding)


def _check_groups(op: str, channels: int, out: int, groups: int) -> None:
    if channels % groups or out % groups:
        raise ShapeError(f"{op} groups={groups} must divide both input channels ({channels}) and out ({out})",
                         expected=f"channels divisible by {groups}", found=f"in {channels}, out {out}")


def _conv_shape(args: Args, ins: list[Shape]) -> Shape:
    (x,) = ins
    _need_rank("conv", x, (3,))
    c, h, w = x
    out = args["out"]
    _check_groups("conv", c, out, args["groups"])
    kh, kw = pair(args["kernel"])
    sh, sw = pair(args["stride"])
    dh, dw = pair(args["dilation"])
    if args["padding"] == "same":
        if (sh, sw) != (1, 1):
            raise ShapeError("conv padding 'same' needs stride 1 (as in PyTorch)", expected="stride 1",
                             found=f"stride {args['stride']}", hint="write the padding as a number")
        if (dh * (kh - 1)) % 2 or (dw * (kw - 1)) % 2:
            raise ShapeError("conv padding 'same' needs an odd kernel here (symmetric padding)",
                             expected="odd kernel", found=str(args["kernel"]))
    ph, pw = conv_padding(args)
    shape = (out, _spatial_out(h, kh, sh, ph, dh), _spatial_out(w, kw, sw, pw, dw))
    return _positive("conv", shape, f"input {h}×{w}, kernel {_fmt_pair(args['kernel'])}, stride "
                                    f"{_fmt_pair(args['stride'])}, padding {ph}×{pw}")


def _conv_params(args: Args, ins: list[Shape]) -> int:
    kh, kw = pair(args["kernel"])
    weight = args["out"] * (ins[0][0] // args["groups"]) * kh * kw
    return weight + (args["out"] if args["bias"] else 0)


def _conv_macs(args: Args, ins: list[Shape], out: Shape) -> int:
    kh, kw = pair(args["kernel"])
    return math.prod(out) * (ins[0][0] // args["groups"]) * kh * kw


def _conv_label(args: Args, op: str = "conv", stride_sign: str = "/") -> str:
    text = f"{op} {_fmt_kernel(args['kernel'])}"
    if pair(args["stride"]) != (1, 1):
        text += f" {stride_sign}{_fmt_pair(args['stride'])}"
    if args["groups"] != 1:
        text += f" g{args['groups']}"
    if pair(args["dilation"]) != (1, 1):
        text += f" d{_fmt_pair(args['dilation'])}"
    return text + f" → {args['out']}"


def _conv_transpose_shape(args: Args, ins: list[Shape]) -> Shape:
    (x,) = ins
    _need_rank("conv_transpose", x, (3,))
    c, h, w = x
    out = args["out"]
    _check_groups("conv_transpose", c, out, args["groups"])
    kh, kw = pair(args["kernel"])
    sh, sw = pair(args["stride"])
    ph, pw = pair(args["padding"])
    oh, ow = pair(args["output_padding"])
    dh, dw = pair(args["dilation"])
    # PyTorch's check, per dimension: the extra rows must fit inside one stride step (or one dilation gap),
    # otherwise they would be positions no input pixel reaches.
    if (oh >= sh and oh >= dh) or (ow >= sw and ow >= dw):
        raise ShapeError("conv_transpose output_padding must be smaller than the stride or the dilation "
                         "(PyTorch's rule)", expected=f"output_padding < max(stride, dilation) = "
                         f"{_fmt_pair([max(sh, dh), max(sw, dw)])}",
                         found=f"output_padding {_fmt_pair(args['output_padding'])}",
                         hint="output_padding only picks between the output sizes a stride > 1 makes possible")
    shape = (out, (h - 1) * sh - 2 * ph + dh * (kh - 1) + oh + 1, (w - 1) * sw - 2 * pw + dw * (kw - 1) + ow + 1)
    return _positive("conv_transpose", shape, f"input {h}×{w}, kernel {_fmt_pair(args['kernel'])}, stride "
                                              f"{_fmt_pair(args['stride'])}, padding {ph}×{pw}")


def _conv_transpose_params(args: Args, ins: list[Shape]) -> int:
    kh, kw = pair(args["kernel"])
    weight = ins[0][0] * (args["out"] // args["groups"]) * kh * kw  # weight shape (in, out/groups, kh, kw)
    return weight + (args["out"] if args["bias"] else 0)


def _conv_transpose_macs(args: Args, ins: list[Shape], out: Shape) -> int:
    # Every input pixel is multiplied by the whole kernel of its group and added into the output, so the count
    # runs over input pixels (a conv's runs over output pixels); padding only trims the output afterwards.
    # The same as torch.utils.flop_counter's transposed-conv count, halved.
    c, h, w = ins[0]
    kh, kw = pair(args["kernel"])
    return c * (args["out"] // args["groups"]) * kh * kw * h * w


def _conv_transpose_label(args: Args) -> str:
    return _conv_label(args, "conv_transpose", "×")  # a transposed conv's stride enlarges: ×2, where conv reads /2


def _upsample_shape(args: Args, ins: list[Shape]) -> Shape:
    (x,) = ins
    _need_rank("upsample", x, (3,))
    scale, size = args["scale"], args["size"]
    if (scale is None) == (size is None):  # nn.Upsample refuses both and neither
        raise ShapeError("upsample needs exactly one of `scale` and `size`", expected="`scale: 2` or `size: [h, w]`",
                         found="both" if scale is not None else "neither")
    if args["align_corners"] and args["mode"] == "nearest":
        raise ShapeError("upsample align_corners applies to bilinear only (PyTorch refuses it with nearest)",
                         expected="mode: bilinear, or no align_corners", found="mode nearest, align_corners true")
    c, h, w = x
    if size is not None:
        return _positive("upsample", (c, *pair(size)), "size")
    sh, sw = pair(scale)
    return _positive("upsample", (c, h * sh, w * sw), "scale")  # integer factors: floor(h·s) is exactly h·s


def _upsample_label(args: Args) -> str:
    text = f"upsample ×{_fmt_pair(args['scale'])}" if args["scale"] is not None else \
        f"upsample → {_fmt_kernel(args['size'])}"
    return text + (" bilinear" if args["mode"] == "bilinear" else "")


def _pool_shape(op: str) -> Callable[[Args, list[Shape]], Shape]:
    def rule(args: Args, ins: list[Shape]) -> Shape:
        (x,) = ins
        _need_rank(op, x, (3,))
        c, h, w = x
        kh, kw = pair(args["kernel"])
        sh, sw = pair(args["stride"] if args["stride"] is not None else args["kernel"])
        ph, pw = pair(args["padding"])
        if ph > kh // 2 or pw > kw // 2:
            raise ShapeError(f"{op} padding must be at most half the kernel (PyTorch's rule)",
                             expected=f"padding ≤ {kh // 2}", found=f"padding {args['padding']}")
        dil = args.get("dilation", 1)
        dh, dw = pair(dil)
        shape = (c, _spatial_out(h, kh, sh, ph, dh, args["ceil_mode"]), _spatial_out(w, kw, sw, pw, dw, args["ceil_mode"]))
        return _positive(op, shape, f"input {h}×{w}, kernel {_fmt_pair(args['kernel'])}")
    return rule


def _pool_label(op: str) -> Callable[[Args], str]:
    def label(args: Args) -> str:
        stride = args["stride"] if args["stride"] is not None else args["kernel"]
        text = f"{op} {_fmt_kernel(args['kernel'])}"
        return text + (f" /{_fmt_pair(stride)}" if pair(stride) != (1, 1) else "")
    return label


def _adaptive_shape(args: Args, ins: list[Shape]) -> Shape:
    (x,) = ins
    _need_rank("adaptive_avgpool", x, (3,))
    h, w = pair(args["out"])
    return _positive("adaptive_avgpool", (x[0], h, w), "out size")


def _linear_shape(args: Args, ins: list[Shape]) -> Shape:
    (x,) = ins
    _need_rank("linear", x, (1,))
    return _positive("linear", (args["out"],), "out features")


def _norm_shape(op: str) -> Callable[[Args, list[Shape]], Shape]:
    def rule(args: Args, ins: list[Shape]) -> Shape:
        (x,) = ins
        _need_rank(op, x, (1, 3))
        return x
    return rule


def _groupnorm_shape(args: Args, ins: list[Shape]) -> Shape:
    (x,) = ins
    _need_rank("groupnorm", x, (3,))
    if x[0] % args["groups"]:
        raise ShapeError(f"groupnorm groups={args['groups']} must divide the channels ({x[0]})",
                         expected=f"channels divisible by {args['groups']}", found=str(x[0]))
    return x


def _same(args: Args, ins: list[Shape]) -> Shape:
    return ins[0]


def _flatten(args: Args, ins: list[Shape]) -> Shape:
    return (math.prod(ins[0]),)


def _global_pool(args: Args, ins: list[Shape]) -> Shape:
    _need_rank("global_avgpool", ins[0], (3,))
    return (ins[0][0], 1, 1)


def _concat_shape(args: Args, ins: list[Shape]) -> Shape:
    first = ins[0]
    for other in ins[1:]:
        if len(other) != len(first) or other[1:] != first[1:]:
            raise ShapeError("concat: inputs differ in more than the channel dimension: "
                             + " vs ".join(_show(s) for s in ins),
                             expected=f"[*, {', '.join(map(str, first[1:]))}] for every input",
                             found=", ".join(_show(s) for s in ins))
    return (sum(s[0] for s in ins),) + first[1:]


def _add_shape(args: Args, ins: list[Shape]) -> Shape:
    for other in ins[1:]:
        if other != ins[0]:
            raise ShapeError("add: branch shapes differ: " + " vs ".join(_show(s) for s in ins),
                             expected="identical shapes", found=", ".join(_show(s) for s in ins),
                             hint="project the shortcut (a 1×1 conv with the same stride and channels)")
    return ins[0]


def _features(ins: list[Shape]) -> int:
    return ins[0][0]


P = Param
_POOL_PARAMS = {
    "kernel": P("int2", required=True, doc="window size, int or [h, w]", minimum=1),
    "stride": P("int2", None, "step; defaults to the kernel size", minimum=1),
    "padding": P("int2", 0, "implicit padding on each side (at most half the kernel)", minimum=0),
    "ceil_mode": P("bool", False, "round the output size up instead of down"),
}

_TABLE = [
    Op("conv", "2-D convolution (nn.Conv2d); in_channels is inferred.", "conv", {
        "out": P("int", required=True, doc="output channels", minimum=1),
        "kernel": P("int2", required=True, doc="kernel size, int or [h, w]", minimum=1),
        "stride": P("int2", 1, "stride, int or [h, w]", minimum=1),
        "padding": P("padding", 0, "int, [h, w], 'same' (stride 1) or 'valid'", minimum=0),
        "dilation": P("int2", 1, "spacing between kernel elements", minimum=1),
        "groups": P("int", 1, "blocked connections; must divide input and output channels", minimum=1),
        "bias": P("bool", True, "learnable bias"),
    }, _conv_shape, _conv_params, _conv_macs, _conv_label),
    Op("conv_transpose", "2-D transposed convolution (nn.ConvTranspose2d), e.g. a learned ×stride upsampling; "
       "in_channels is inferred. Output size (H−1)·stride − 2·padding + dilation·(kernel−1) + output_padding + 1. "
       "MACs count every input pixel times the whole kernel of its group: in·H·W · out/groups · kh·kw "
       "(input H, W; a conv counts output pixels).", "conv", {
        "out": P("int", required=True, doc="output channels", minimum=1),
        "kernel": P("int2", required=True, doc="kernel size, int or [h, w]", minimum=1),
        "stride": P("int2", 1, "stride, int or [h, w]: the factor the output grows by", minimum=1),
        "padding": P("int2", 0, "rows/columns trimmed from each side of the output, int or [h, w]", minimum=0),
        "output_padding": P("int2", 0, "rows/columns added at the bottom/right of the output, int or [h, w]; "
                            "must be smaller than the stride or the dilation", minimum=0),
        "dilation": P("int2", 1, "spacing between kernel elements", minimum=1),
        "groups": P("int", 1, "blocked connections; must divide input and output channels", minimum=1),
        "bias": P("bool", True, "learnable bias"),
    }, _conv_transpose_shape, _conv_transpose_params, _conv_transpose_macs, _conv_transpose_label),
    Op("linear", "Fully connected layer (nn.Linear) on [features]; in_features is inferred.", "linear", {
        "out": P("int", required=True, doc="output features", minimum=1),
        "bias": P("bool", True, "learnable bias"),
    }, _linear_shape, lambda a, i: i[0][0] * a["out"] + (a["out"] if a["bias"] else 0),
       lambda a, i, o: i[0][0] * a["out"], lambda a: f"linear → {a['out']}"),
    Op("batchnorm", "Batch normalization; 1-D or 2-D by the input's rank. impl `formula` is the course's own "
       "equations in plain tensor ops (moving statistics as buffers, biased running variance).", "norm", {
        "eps": P("float", 1e-5, "added to the variance", minimum=0),
        "momentum": P("float", 0.1, "weight of the new batch in the moving statistics", minimum=0),
        "affine": P("bool", True, "learnable scale γ and shift β"),
        "impl": P("str", "torch", "torch (nn.BatchNorm1d/2d) or formula", choices=("torch", "formula")),
    }, _norm_shape("batchnorm"), lambda a, i: 2 * _features(i) if a["affine"] else 0,
       label=lambda a: "batchnorm" + (" (formula)" if a["impl"] == "formula" else "")),
    Op("layernorm", "Layer normalization over all non-batch dimensions (nn.LayerNorm).", "norm", {
        "eps": P("float", 1e-5, "added to the variance", minimum=0),
        "affine": P("bool", True, "learnable elementwise scale and shift"),
    }, _norm_shape("layernorm"), lambda a, i: 2 * math.prod(i[0]) if a["affine"] else 0,
       label=lambda a: "layernorm"),
    Op("groupnorm", "Group normalization over channel groups (nn.GroupNorm).", "norm", {
        "groups": P("int", required=True, doc="number of channel groups; must divide the channels", minimum=1),
        "eps": P("float", 1e-5, "added to the variance", minimum=0),
        "affine": P("bool", True, "learnable per-channel scale and shift"),
    }, _groupnorm_shape, lambda a, i: 2 * _features(i) if a["affine"] else 0,
       label=lambda a: f"groupnorm g{a['groups']}"),
    Op("lrn", "Local response normalization across channels (nn.LocalResponseNorm).", "norm", {
        "size": P("int", required=True, doc="number of neighbouring channels", minimum=1),
        "alpha": P("float", 1e-4, "multiplicative factor"),
        "beta": P("float", 0.75, "exponent"),
        "k": P("float", 1.0, "additive factor"),
    }, _norm_shape("lrn"), label=lambda a: f"lrn {a['size']}"),
    Op("relu", "max(x, 0).", "activation", {}, _same, label=lambda a: "relu"),
    Op("relu6", "min(max(x, 0), 6), as in MobileNet.", "activation", {}, _same, label=lambda a: "relu6"),
    Op("leaky_relu", "x if x > 0 else slope·x.", "activation", {
        "slope": P("float", 0.01, "negative slope"),
    }, _same, label=lambda a: f"leaky_relu {a['slope']}"),
    Op("sigmoid", "1 / (1 + exp(−x)).", "activation", {}, _same, label=lambda a: "sigmoid"),
    Op("tanh", "Hyperbolic tangent.", "activation", {}, _same, label=lambda a: "tanh"),
    Op("gelu", "Gaussian error linear unit.", "activation", {
        "approximate": P("str", "none", "none or tanh", choices=("none", "tanh")),
    }, _same, label=lambda a: "gelu"),
    Op("silu", "x·sigmoid(x) (swish).", "activation", {}, _same, label=lambda a: "silu"),
    Op("softmax", "Softmax over the features/channels (dim 1 of the batched tensor).", "activation", {},
       _same, label=lambda a: "softmax"),
    Op("dropout", "Zeroes elements with probability p during training (nn.Dropout).", "regularize", {
        "p": P("float", 0.5, "drop probability in [0, 1)", minimum=0, below=1),
    }, _same, label=lambda a: f"dropout {a['p']}"),
    Op("maxpool", "2-D max pooling (nn.MaxPool2d).", "pool", dict(_POOL_PARAMS, dilation=P("int2", 1, "window dilation", minimum=1)),
       _pool_shape("maxpool"), label=_pool_label("maxpool")),
    Op("avgpool", "2-D average pooling (nn.AvgPool2d).", "pool", dict(_POOL_PARAMS, count_include_pad=P(
        "bool", True, "include the zero padding in the average")), _pool_shape("avgpool"), label=_pool_label("avgpool")),
    Op("adaptive_avgpool", "Average pooling to a fixed output size (nn.AdaptiveAvgPool2d).", "pool", {
        "out": P("int2", required=True, doc="output size, int or [h, w]", minimum=1),
    }, _adaptive_shape, label=lambda a: f"adaptive_avgpool → {_fmt_pair(a['out'])}"),
    Op("global_avgpool", "Average over all positions: [C, H, W] → [C, 1, 1] (nn.AdaptiveAvgPool2d(1)).", "pool", {},
       _global_pool, label=lambda a: "global_avgpool"),
    Op("upsample", "Upsampling by an integer factor or to a fixed size (nn.Upsample); channels unchanged. Give "
       "exactly one of `scale` and `size`. No learnable weights; counts 0 MACs, like pooling.", "pool", {
        "scale": P("int2", None, "integer factor, int or [h, w]; give this or `size`", minimum=1),
        "size": P("int2", None, "output size, int or [h, w]; give this or `scale`", minimum=1),
        "mode": P("str", "nearest", "nearest or bilinear", choices=("nearest", "bilinear")),
        "align_corners": P("bool", False, "bilinear only: align the corner pixels of input and output "
                           "(PyTorch refuses it with nearest)"),
    }, _upsample_shape, label=_upsample_label),
    Op("flatten", "[C, H, W] → [C·H·W] (nn.Flatten).", "reshape", {}, _flatten, label=lambda a: "flatten"),
    Op("identity", "Passes its input through (nn.Identity).", "reshape", {}, _same, label=lambda a: "identity"),
    Op("concat", "Concatenates its inputs on channels; all other dimensions must agree.", "merge", {},
       _concat_shape, label=lambda a: "concat", min_inputs=1, max_inputs=0),
    Op("add", "Elementwise sum of inputs of identical shape.", "merge", {},
       _add_shape, label=lambda a: "add", min_inputs=2, max_inputs=0),
]

OPS: Mapping[str, Op] = MappingProxyType({op.name: op for op in _TABLE})


def defaults(op: Op) -> dict[str, object]:
    return {name: p.default for name, p in op.params.items() if not p.required}


class ArgError(Exception):
    def __init__(self, expected: str, found: str):
        super().__init__(f"expected {expected}, found {found}")
        self.expected, self.found = expected, found


def _describe(value) -> str:
    kind = {bool: "bool", int: "int", float: "float", str: "string", type(None): "null",
            list: "list", tuple: "list", dict: "mapping"}.get(type(value), type(value).__name__)
    return f"{kind} {value!r}" if kind != "mapping" else "a mapping"


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
            raise ArgError(" or ".join(map(repr, param.choices)) if param.choices else "a string", _describe(value))
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise ArgError("true or false", _describe(value))
        return value
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ArgError("a number", _describe(value))
        _bounds(param, float(value))
        return float(value)
    if kind == "int" or (kind in ("int2", "padding", "size") and not isinstance(value, (list, tuple))):
        if isinstance(value, bool) or not isinstance(value, int):
            expected = "an int" if kind == "int" else "an int or [h, w]" + (", 'same' or 'valid'" if kind == "padding" else "")
            raise ArgError(expected, _describe(value))
        _bounds(param, value)
        return value
    if len(value) != 2 or any(isinstance(v, bool) or not isinstance(v, int) for v in value):
        raise ArgError("an int or a pair [h, w] of ints", _describe(value))
    for v in value:
        _bounds(param, v)
    return list(value)


def _bounds(param: Param, value: float) -> None:
    if param.minimum is not None and value < param.minimum:
        raise ArgError(f"a value ≥ {param.minimum:g}", repr(value))
    if param.below is not None and value >= param.below:
        raise ArgError(f"a value < {param.below:g}", repr(value))
