"""The conv family: conv (nn.Conv2d) and conv_transpose (nn.ConvTranspose2d)."""

from __future__ import annotations

import math

from netspec.ops.base import (Args, Example, Family, Op, Param as P, Shape, ShapeError, as_pair, fmt_kernel,
                              fmt_pair, need_rank, pair, positive, spatial_out)
from netspec.ops.torch_build import ModuleSpec, nn

FAMILY = Family("conv", "conv", "#dbe9f6", "#4a78a8")


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


def _image_size(op: str, args: Args, ins: list[Shape]) -> tuple[int, int]:
    """The input's (H, W), after the checks both convs make: one [C, H, W] input; groups divide C and out."""
    (x,) = ins
    need_rank(op, x, (3,))
    channels, out, groups = x[0], args["out"], args["groups"]
    if channels % groups or out % groups:
        raise ShapeError(f"{op} groups={groups} must divide both input channels ({channels}) and out ({out})",
                         expected=f"channels divisible by {groups}", found=f"in {channels}, out {out}")
    return x[1], x[2]


def _conv_shape(args: Args, ins: list[Shape]) -> Shape:
    h, w = _image_size("conv", args, ins)
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
    shape = (args["out"], spatial_out(h, kh, sh, ph, dh), spatial_out(w, kw, sw, pw, dw))
    return positive("conv", shape, f"input {h}×{w}, kernel {fmt_pair(args['kernel'])}, stride "
                                   f"{fmt_pair(args['stride'])}, padding {ph}×{pw}")


def _conv_params(args: Args, ins: list[Shape]) -> int:
    kh, kw = pair(args["kernel"])
    weight = args["out"] * (ins[0][0] // args["groups"]) * kh * kw
    return weight + (args["out"] if args["bias"] else 0)


def _conv_macs(args: Args, ins: list[Shape], out: Shape) -> int:
    kh, kw = pair(args["kernel"])
    return math.prod(out) * (ins[0][0] // args["groups"]) * kh * kw


def _conv_label(args: Args, op: str = "conv", stride_sign: str = "/") -> str:
    text = f"{op} {fmt_kernel(args['kernel'])}"
    if pair(args["stride"]) != (1, 1):
        text += f" {stride_sign}{fmt_pair(args['stride'])}"
    if args["groups"] != 1:
        text += f" g{args['groups']}"
    if pair(args["dilation"]) != (1, 1):
        text += f" d{fmt_pair(args['dilation'])}"
    return text + f" → {args['out']}"


def _conv_module(args: Args, ins: list[Shape]) -> ModuleSpec:
    return ModuleSpec(nn.Conv2d, (ins[0][0], args["out"]), (
        ("kernel_size", as_pair(args["kernel"])), ("stride", as_pair(args["stride"])),
        ("padding", as_pair(args["padding"])), ("dilation", as_pair(args["dilation"])),
        ("groups", args["groups"]), ("bias", args["bias"])))


def _conv_transpose_shape(args: Args, ins: list[Shape]) -> Shape:
    h, w = _image_size("conv_transpose", args, ins)
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
                         f"{fmt_pair([max(sh, dh), max(sw, dw)])}",
                         found=f"output_padding {fmt_pair(args['output_padding'])}",
                         hint="output_padding only picks between the output sizes a stride > 1 makes possible")
    shape = (args["out"], (h - 1) * sh - 2 * ph + dh * (kh - 1) + oh + 1, (w - 1) * sw - 2 * pw + dw * (kw - 1) + ow + 1)
    return positive("conv_transpose", shape, f"input {h}×{w}, kernel {fmt_pair(args['kernel'])}, stride "
                                             f"{fmt_pair(args['stride'])}, padding {ph}×{pw}")


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


def _conv_transpose_module(args: Args, ins: list[Shape]) -> ModuleSpec:
    return ModuleSpec(nn.ConvTranspose2d, (ins[0][0], args["out"]), (
        ("kernel_size", as_pair(args["kernel"])), ("stride", as_pair(args["stride"])),
        ("padding", as_pair(args["padding"])), ("output_padding", as_pair(args["output_padding"])),
        ("groups", args["groups"]), ("bias", args["bias"]), ("dilation", as_pair(args["dilation"]))))


_OUT = P("int", required=True, doc="output channels", minimum=1)
_KERNEL = P("int2", required=True, doc="kernel size, int or [h, w]", minimum=1)
_DILATION = P("int2", 1, "spacing between kernel elements", minimum=1)
_GROUPS = P("int", 1, "blocked connections; must divide input and output channels", minimum=1)
_BIAS = P("bool", True, "learnable bias")

OPS = [
    Op("conv", "2-D convolution (nn.Conv2d); in_channels is inferred.", "conv", {
        "out": _OUT,
        "kernel": _KERNEL,
        "stride": P("int2", 1, "stride, int or [h, w]", minimum=1),
        "padding": P("padding", 0, "int, [h, w], 'same' (stride 1) or 'valid'", minimum=0),
        "dilation": _DILATION,
        "groups": _GROUPS,
        "bias": _BIAS,
    }, _conv_shape, _conv_label, count_params=_conv_params, macs=_conv_macs, module=_conv_module,
       fresh_output=True, example=Example([(4, 9, 9)], {"out": 6, "kernel": [3, 5], "stride": 2, "padding": 1,
                                                         "groups": 2})),
    Op("conv_transpose", "2-D transposed convolution (nn.ConvTranspose2d), e.g. a learned ×stride upsampling; "
       "in_channels is inferred. Output size (H−1)·stride − 2·padding + dilation·(kernel−1) + output_padding + 1. "
       "MACs count every input pixel times the whole kernel of its group: in·H·W · out/groups · kh·kw "
       "(input H, W; a conv counts output pixels).", "conv", {
        "out": _OUT,
        "kernel": _KERNEL,
        "stride": P("int2", 1, "stride, int or [h, w]: the factor the output grows by", minimum=1),
        "padding": P("int2", 0, "rows/columns trimmed from each side of the output, int or [h, w]", minimum=0),
        "output_padding": P("int2", 0, "rows/columns added at the bottom/right of the output, int or [h, w]; "
                            "must be smaller than the stride or the dilation", minimum=0),
        "dilation": _DILATION,
        "groups": _GROUPS,
        "bias": _BIAS,
    }, _conv_transpose_shape, _conv_transpose_label, count_params=_conv_transpose_params,
       macs=_conv_transpose_macs, module=_conv_transpose_module, fresh_output=True,
       example=Example([(4, 5, 6)], {"out": 6, "kernel": 3, "stride": 2, "padding": 1, "output_padding": 1,
                                     "groups": 2})),
]
