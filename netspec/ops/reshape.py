"""The reshape family: ops that move values without computing new ones — flatten, identity, permute, reshape,
channel_shuffle and chunk (whose parts are views of the input).

Dims here are dims of the shape netspec shows, without the batch: in [C, H, W], 0 is the channels.  The batch
dimension always stays first and whole; the modules add it back (dim d of the shape is dim d + 1 of the tensor).
"""

from __future__ import annotations

import math

from netspec.ops.base import Args, Example, Family, Op, Param as P, Shape, ShapeError, same_shape, show
from netspec.ops.torch_build import ModuleSpec, nn

FAMILY = Family("reshape", "flatten, identity, permute, reshape, chunk", "#ffffff", "#888888",
                style="rounded,dashed")


def _dims(values) -> str:
    return ",".join(map(str, values))


def _permute_shape(args: Args, ins: list[Shape]) -> Shape:
    (x,) = ins
    dims = list(args["dims"])
    if sorted(dims) != list(range(len(x))):
        raise ShapeError(f"permute dims {dims} are not a permutation of the input's {len(x)} dims {show(x)}",
                         expected=f"each of 0…{len(x) - 1} exactly once (dims of the shape without the batch)",
                         found=str(dims), hint="[1, 2, 0] moves the channels of [C, H, W] last; [2, 0, 1] moves "
                                               "them back")
    return tuple(x[d] for d in dims)


def _permute_module(args: Args, ins: list[Shape]) -> ModuleSpec:
    from netspec.ops.modules import Permute  # imports torch: only when a module is wanted
    return ModuleSpec(Permute, ((0,) + tuple(d + 1 for d in args["dims"]),))


def _reshape_shape(args: Args, ins: list[Shape]) -> Shape:
    (x,) = ins
    shape, size = list(args["shape"]), math.prod(x)
    if 0 in shape:
        raise ShapeError(f"reshape {shape}: a size of 0 would empty the tensor", expected="sizes ≥ 1, or one -1",
                         found=str(shape))
    if shape.count(-1) > 1:
        raise ShapeError(f"reshape {shape}: at most one size may be -1 (inferred)", expected="at most one -1",
                         found=str(shape))
    known = math.prod(d for d in shape if d != -1)
    if (-1 in shape and size % known) or (-1 not in shape and known != size):
        raise ShapeError(f"reshape {shape} does not fit the input {show(x)} of {size:,} elements per example",
                         expected=f"sizes whose product is {size:,}" + (f" (a divisor of {size:,} besides the -1)"
                                                                         if -1 in shape else ""),
                         found=f"{shape}: {known:,} elements" + (" times the -1" if -1 in shape else ""),
                         hint="the batch dimension is not part of the shape; -1 infers one size")
    return tuple(size // known if d == -1 else d for d in shape)


def _reshape_module(args: Args, ins: list[Shape]) -> ModuleSpec:
    from netspec.ops.modules import Reshape
    return ModuleSpec(Reshape, (tuple(args["shape"]),))


def _channel_shuffle_shape(args: Args, ins: list[Shape]) -> Shape:
    (x,) = ins
    if len(x) != 3:
        raise ShapeError(f"channel_shuffle needs a [channels, height, width] input, not {show(x)}",
                         expected="[channels, height, width]", found=show(x))
    if x[0] % args["groups"]:
        raise ShapeError(f"channel_shuffle groups={args['groups']} must divide the channels ({x[0]})",
                         expected=f"channels divisible by {args['groups']}", found=str(x[0]))
    return x


def _chunk_shape(args: Args, ins: list[Shape]) -> Shape:
    (x,) = ins
    dim, parts = args["dim"], args["parts"]
    if dim >= len(x):
        raise ShapeError(f"chunk dim {dim} is not a dim of the input {show(x)}",
                         expected=f"0…{len(x) - 1} (dims of the shape without the batch)", found=str(dim))
    if x[dim] % parts:
        raise ShapeError(f"chunk: {parts} parts do not divide dim {dim} of the input {show(x)} ({x[dim]})",
                         expected=f"a size of dim {dim} divisible by {parts}", found=str(x[dim]),
                         hint="torch.chunk would give parts of unequal sizes; netspec's parts are equal")
    return x[:dim] + (x[dim] // parts,) + x[dim + 1:]


def _chunk_module(args: Args, ins: list[Shape]) -> ModuleSpec:
    from netspec.ops.modules import Chunk
    return ModuleSpec(Chunk, (args["parts"], args["dim"] + 1))


OPS = [
    Op("flatten", "[C, H, W] → [C·H·W] (nn.Flatten).", "reshape", {}, lambda a, i: (math.prod(i[0]),),
       lambda a: "flatten", Example([(3, 4, 4)]), module=lambda a, i: ModuleSpec(nn.Flatten)),
    Op("identity", "Passes its input through (nn.Identity).", "reshape", {}, same_shape,
       lambda a: "identity", Example([(5,)]), module=lambda a, i: ModuleSpec(nn.Identity)),
    Op("permute", "Reorders the dims of each example (x.permute, the batch staying first): `dims: [1, 2, 0]` "
       "makes [C, H, W] into [H, W, C], as torchvision's Permute([0, 2, 3, 1]).", "reshape", {
        "dims": P("ints", required=True, doc="the input's dims in their new order, 0-based, without the batch",
                  minimum=0),
    }, _permute_shape, lambda a: f"permute {_dims(a['dims'])}", Example([(3, 4, 5)], {"dims": [1, 2, 0]}),
       module=_permute_module),
    Op("reshape", "Gives each example a new shape with the same number of elements (x.reshape, the batch "
       "staying first); one size may be -1, inferred as torch infers it.", "reshape", {
        "shape": P("ints", required=True, doc="the new shape without the batch; one size may be -1", minimum=-1),
    }, _reshape_shape, lambda a: f"reshape {_dims(a['shape'])}", Example([(6, 4, 4)], {"shape": [2, -1, 4, 4]}),
       module=_reshape_module),
    Op("channel_shuffle", "Interleaves channel groups (nn.ChannelShuffle): [g·k, H, W] seen as [g, k, H, W], "
       "transposed to [k, g, H, W]; torchvision's ShuffleNetV2 channel_shuffle.", "reshape", {
        "groups": P("int", required=True, doc="number of channel groups; must divide the channels", minimum=1),
    }, _channel_shuffle_shape, lambda a: f"channel_shuffle g{a['groups']}", Example([(6, 3, 3)], {"groups": 2}),
       module=lambda a, i: ModuleSpec(nn.ChannelShuffle, (a["groups"],))),
    Op("chunk", "Splits each example into `parts` equal parts along a dim (x.chunk): a node with several "
       "outputs, read as `from: NAME.0`, `from: NAME.1`, ….", "reshape", {
        "parts": P("int", required=True, doc="number of parts; must divide the size of the dim", minimum=1),
        "dim": P("int", 0, "the dim split, without the batch (0: channels)", minimum=0),
    }, _chunk_shape, lambda a: f"chunk {a['parts']}" + (f" dim {a['dim']}" if a["dim"] else ""),
       Example([(6, 3, 3)], {"parts": 2}), module=_chunk_module, outputs=lambda a: a["parts"]),
]
