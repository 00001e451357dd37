"""The pool family: max/avg pooling, adaptive and global average pooling, and upsampling (which, like pooling,
only resamples: no weights, 0 MACs)."""

from __future__ import annotations

from typing import Callable

from netspec.ops.base import (Args, Example, Family, Op, Param as P, Shape, ShapeError, as_pair, fmt_kernel,
                              fmt_pair, need_rank, pair, positive, spatial_out)
from netspec.ops.torch_build import ModuleSpec, nn

FAMILY = Family("pool", "pool", "#fbe0c8", "#c27c3e")


def _pool_shape(op: str) -> Callable[[Args, list[Shape]], Shape]:
    def rule(args: Args, ins: list[Shape]) -> Shape:
        (x,) = ins
        need_rank(op, x, (3,))
        c, h, w = x
        kh, kw = pair(args["kernel"])
        sh, sw = pair(args["stride"] if args["stride"] is not None else args["kernel"])
        ph, pw = pair(args["padding"])
        if ph > kh // 2 or pw > kw // 2:
            raise ShapeError(f"{op} padding must be at most half the kernel (PyTorch's rule)",
                             expected=f"padding ≤ {kh // 2}", found=f"padding {args['padding']}")
        dh, dw = pair(args.get("dilation", 1))
        shape = (c, spatial_out(h, kh, sh, ph, dh, args["ceil_mode"]), spatial_out(w, kw, sw, pw, dw, args["ceil_mode"]))
        return positive(op, shape, f"input {h}×{w}, kernel {fmt_pair(args['kernel'])}")
    return rule


def _pool_label(op: str) -> Callable[[Args], str]:
    def label(args: Args) -> str:
        stride = args["stride"] if args["stride"] is not None else args["kernel"]
        text = f"{op} {fmt_kernel(args['kernel'])}"
        return text + (f" /{fmt_pair(stride)}" if pair(stride) != (1, 1) else "")
    return label


def _maxpool_module(args: Args, ins: list[Shape]) -> ModuleSpec:
    return ModuleSpec(nn.MaxPool2d, (as_pair(args["kernel"]),), (
        ("stride", _pool_stride(args)), ("padding", as_pair(args["padding"])),
        ("dilation", as_pair(args["dilation"])), ("ceil_mode", args["ceil_mode"])))


def _avgpool_module(args: Args, ins: list[Shape]) -> ModuleSpec:
    return ModuleSpec(nn.AvgPool2d, (as_pair(args["kernel"]),), (
        ("stride", _pool_stride(args)), ("padding", as_pair(args["padding"])),
        ("ceil_mode", args["ceil_mode"]), ("count_include_pad", args["count_include_pad"])))


def _pool_stride(args: Args):
    # Written out rather than left as None so the emitted source says what the stride is.
    return as_pair(args["stride"] if args["stride"] is not None else args["kernel"])


def _adaptive_shape(args: Args, ins: list[Shape]) -> Shape:
    (x,) = ins
    need_rank("adaptive_avgpool", x, (3,))
    h, w = pair(args["size"])
    return positive("adaptive_avgpool", (x[0], h, w), "size")


def _global_pool(args: Args, ins: list[Shape]) -> Shape:
    need_rank("global_avgpool", ins[0], (3,))
    return (ins[0][0], 1, 1)


def _upsample_shape(args: Args, ins: list[Shape]) -> Shape:
    (x,) = ins
    need_rank("upsample", x, (3,))
    scale, size = args["scale"], args["size"]
    if (scale is None) == (size is None):  # nn.Upsample refuses both and neither
        raise ShapeError("upsample needs exactly one of `scale` and `size`", expected="`scale: 2` or `size: [h, w]`",
                         found="both" if scale is not None else "neither")
    if args["align_corners"] and args["mode"] == "nearest":
        raise ShapeError("upsample align_corners applies to bilinear only (PyTorch refuses it with nearest)",
                         expected="mode: bilinear, or no align_corners", found="mode nearest, align_corners true")
    c, h, w = x
    if size is not None:
        return positive("upsample", (c, *pair(size)), "size")
    sh, sw = pair(scale)
    return positive("upsample", (c, h * sh, w * sw), "scale")  # integer factors: floor(h·s) is exactly h·s


def _upsample_label(args: Args) -> str:
    text = f"upsample ×{fmt_pair(args['scale'])}" if args["scale"] is not None else \
        f"upsample → {fmt_kernel(args['size'])}"
    return text + (" bilinear" if args["mode"] == "bilinear" else "")


def _upsample_module(args: Args, ins: list[Shape]) -> ModuleSpec:
    how = ("size", as_pair(args["size"])) if args["size"] is not None else ("scale_factor", as_pair(args["scale"]))
    kwargs = [how, ("mode", args["mode"])]
    # Passed only when true: PyTorch refuses align_corners (even False) with nearest, and its unset value means
    # False for bilinear, so leaving it out builds the module a hand-written `nn.Upsample(...)` builds.
    if args["align_corners"]:
        kwargs.append(("align_corners", True))
    return ModuleSpec(nn.Upsample, (), kwargs)


_POOL_PARAMS = {
    "kernel": P("int2", required=True, doc="window size, int or [h, w]", minimum=1),
    "stride": P("int2", None, "step; defaults to the kernel size", minimum=1),
    "padding": P("int2", 0, "implicit padding on each side (at most half the kernel)", minimum=0),
    "ceil_mode": P("bool", False, "round the output size up instead of down"),
}
# Big enough for a 3×3 window with stride 2, padding 1 and ceil_mode (whose last window PyTorch may drop).
_POOL_EXAMPLE = Example([(3, 10, 9)], {"kernel": 3, "stride": 2, "padding": 1, "ceil_mode": True})

OPS = [
    # Fresh: max pooling's backward keeps the input's argmax indices, not the output.
    Op("maxpool", "2-D max pooling (nn.MaxPool2d).", "pool",
       dict(_POOL_PARAMS, dilation=P("int2", 1, "window dilation", minimum=1)),
       _pool_shape("maxpool"), _pool_label("maxpool"), _POOL_EXAMPLE,
       module=_maxpool_module, fresh_output=True),
    # Fresh: average pooling's backward keeps nothing.
    Op("avgpool", "2-D average pooling (nn.AvgPool2d).", "pool", dict(_POOL_PARAMS, count_include_pad=P(
        "bool", True, "include the zero padding in the average")), _pool_shape("avgpool"), _pool_label("avgpool"),
       _POOL_EXAMPLE, module=_avgpool_module, fresh_output=True),
    Op("adaptive_avgpool", "Average pooling to a fixed output size (nn.AdaptiveAvgPool2d).", "pool", {
        "size": P("int2", required=True, doc="output size, int or [h, w]", minimum=1),
    }, _adaptive_shape, lambda a: f"adaptive_avgpool → {fmt_pair(a['size'])}", Example([(4, 7, 9)], {"size": [2, 3]}),
       module=lambda a, i: ModuleSpec(nn.AdaptiveAvgPool2d, (as_pair(a["size"]),))),
    Op("global_avgpool", "Average over all positions: [C, H, W] → [C, 1, 1] (nn.AdaptiveAvgPool2d(1)).", "pool", {},
       _global_pool, lambda a: "global_avgpool", Example([(8, 5, 5)]),
       module=lambda a, i: ModuleSpec(nn.AdaptiveAvgPool2d, (), {"output_size": 1})),
    Op("upsample", "Upsampling by an integer factor or to a fixed size (nn.Upsample); channels unchanged. Give "
       "exactly one of `scale` and `size`. No learnable weights; counts 0 MACs, like pooling.", "pool", {
        "scale": P("int2", None, "integer factor, int or [h, w]; give this or `size`", minimum=1),
        "size": P("int2", None, "output size, int or [h, w]; give this or `scale`", minimum=1),
        "mode": P("str", "nearest", "nearest or bilinear", choices=("nearest", "bilinear")),
        "align_corners": P("bool", False, "bilinear only: align the corner pixels of input and output "
                           "(PyTorch refuses it with nearest)"),
    }, _upsample_shape, _upsample_label, Example([(3, 4, 5)], {"scale": [2, 3], "mode": "bilinear"}),
       module=_upsample_module),
]
