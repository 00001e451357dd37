"""The tensor tools: permute, reshape, channel_shuffle, chunk (a node with several outputs, read as `NAME.k`),
parameter (a learnable tensor as a node), linear and layernorm over the last dim or the channels, and `-` in
names.  Each against PyTorch (or torchvision's own definition), through every backend, and each misuse a
located error.  The zoo's ShuffleNetV2, ConvNeXt and RegNet use them against torchvision (test_torchvision.py).
"""

from __future__ import annotations

import textwrap

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import netspec
from netspec.backends.pysource import to_python_source
from netspec.backends.summary import render_table, summarize
from netspec.errors import SpecErrors
from netspec.ops import OPS, ShapeError, defaults
from netspec.passes.lint import lint

from conftest import SPECS


def write(tmp_path, body: str, input_shape: str = "[4, 6, 6]", extra: str = "") -> str:
    path = tmp_path / "net.yaml"
    path.write_text(textwrap.dedent(f"""\
        netspec: 1
        name: net
        input: {input_shape}
        """) + textwrap.dedent(extra) + "body:\n" + textwrap.indent(textwrap.dedent(body), "  "))
    return str(path)


def standalone(shaped) -> nn.Module:
    """The standalone source's model class, instantiated."""
    namespace: dict = {}
    exec(compile(to_python_source(shaped), "model.py", "exec"), namespace)
    from netspec.backends.blocks import class_name
    return namespace[class_name(shaped.name)]()


def both_backends_agree(path: str, batch: int = 2) -> tuple[nn.Module, torch.Tensor]:
    """The fx model and the standalone source's: same state_dict keys in order; equal outputs on shared weights."""
    shaped = netspec.shaped_network(path)
    model, source = netspec.load(shaped).eval(), standalone(shaped).eval()
    assert list(model.state_dict()) == list(source.state_dict())
    source.load_state_dict(model.state_dict())
    x = torch.randn(batch, *shaped.network.input_shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = model(x)
        assert torch.equal(out, source(x))
    assert tuple(out.shape) == (batch, *shaped.output_shape)
    return model, x


def module(op: str, in_shape, **args) -> nn.Module:
    return OPS[op].module({**defaults(OPS[op]), **args}, [tuple(in_shape)]).build()


# ── each op against PyTorch ───────────────────────────────────────────────────────────────────────────────────

def channel_shuffle_by_torchvisions_definition(x: torch.Tensor, groups: int) -> torch.Tensor:
    """torchvision.models.shufflenetv2.channel_shuffle, where torchvision is not installed."""
    batch, channels, height, width = x.size()
    x = x.view(batch, groups, channels // groups, height, width)
    x = torch.transpose(x, 1, 2).contiguous()
    return x.view(batch, channels, height, width)


def test_channel_shuffle_is_torchvisions_forward_and_backward():
    try:
        from torchvision.models.shufflenetv2 import channel_shuffle as reference
    except ImportError:
        reference = channel_shuffle_by_torchvisions_definition
    for groups, channels in ((2, 6), (3, 12), (4, 8)):
        x = torch.randn(2, channels, 3, 5, requires_grad=True)
        got, want = module("channel_shuffle", (channels, 3, 5), groups=groups)(x), reference(x, groups)
        assert torch.equal(got, want) and not torch.equal(got, x)
        weights = torch.randn_like(got)
        (grad_got,) = torch.autograd.grad((got * weights).sum(), x)
        (grad_want,) = torch.autograd.grad((want * weights).sum(), x)
        assert torch.equal(grad_got, grad_want)


def test_channel_shuffle_written_as_reshape_permute_reshape_is_the_same(tmp_path):
    path = write(tmp_path, """\
        - {name: shuffled, channel_shuffle: {groups: 2}}
        - {from: input, reshape: {shape: [2, -1, 6, 6]}}
        - permute: {dims: [1, 0, 2, 3]}
        - {name: by_hand, reshape: {shape: [4, 6, 6]}}
        - concat: {from: [shuffled, by_hand]}
        """)
    model, x = both_backends_agree(path)
    with torch.no_grad():
        out = model(x)
    assert torch.equal(out[:, :4], out[:, 4:]) and torch.equal(out[:, :4], channel_shuffle_by_torchvisions_definition(x, 2))


def test_layernorm_over_channels_normalizes_each_position_as_torchvisions_layernorm2d():
    x = torch.randn(2, 5, 3, 4)
    norm = module("layernorm", (5, 3, 4), over="channels", eps=1e-6)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5), norm.bias.normal_()
        mean, var = x.mean(1, keepdim=True), x.var(1, unbiased=False, keepdim=True)
        want = (x - mean) / torch.sqrt(var + 1e-6) * norm.weight[:, None, None] + norm.bias[:, None, None]
        assert torch.allclose(norm(x), want, atol=1e-5)
        # torchvision's LayerNorm2d.forward, step by step: the same kernels, so bitwise equal.
        steps = nn.functional.layer_norm(x.permute(0, 2, 3, 1), (5,), norm.weight, norm.bias, 1e-6).permute(0, 3, 1, 2)
        assert torch.equal(norm(x), steps)
    assert [tuple(p.shape) for p in norm.parameters()] == [(5,), (5,)]


def test_linear_and_layernorm_over_the_last_dim_keep_the_other_dims_and_count_what_pytorch_counts():
    args = {**defaults(OPS["linear"]), "out": 7, "over": "last"}
    ins = [(3, 4, 5)]
    shape = OPS["linear"].shape(args, ins)
    assert shape == (3, 4, 7)
    linear = OPS["linear"].module(args, ins).build()
    x = torch.randn(2, 3, 4, 5)
    counter = FlopCounterMode(display=False)
    with counter:
        out = linear(x)
    assert tuple(out.shape) == (2, *shape) and torch.allclose(out, x @ linear.weight.T + linear.bias)
    assert counter.get_total_flops() == 2 * 2 * OPS["linear"].macs(args, ins, shape)
    assert OPS["layernorm"].count_params({**defaults(OPS["layernorm"]), "over": "last"}, ins) == 2 * 5
    assert OPS["layernorm"].count_params(defaults(OPS["layernorm"]), [(3, 4, 4)]) == 2 * 48  # the default: all


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 4), min_size=1, max_size=4), st.data())
def test_permute_reshape_and_chunk_shapes_are_what_torch_computes(shape, data):
    x = torch.randn(2, *shape)  # values, not `empty`: a NaN in uninitialized memory would never equal itself
    dims = data.draw(st.permutations(range(len(shape))))
    assert OPS["permute"].shape({"dims": dims}, [tuple(shape)]) == tuple(x.permute(0, *[d + 1 for d in dims]).shape[1:])
    assert tuple(module("permute", shape, dims=dims)(x).shape[1:]) == tuple(x.permute(0, *[d + 1 for d in dims]).shape[1:])
    new = data.draw(st.lists(st.integers(1, 6), min_size=1, max_size=4))
    if data.draw(st.booleans()):
        new[data.draw(st.integers(0, len(new) - 1))] = -1
    try:
        want = tuple(x.reshape(2, *new).shape[1:])
    except RuntimeError:
        with pytest.raises(ShapeError):
            OPS["reshape"].shape({"shape": new}, [tuple(shape)])
    else:
        assert OPS["reshape"].shape({"shape": new}, [tuple(shape)]) == want
        assert tuple(module("reshape", shape, shape=new)(x).shape[1:]) == want
    dim, parts = data.draw(st.integers(0, len(shape) - 1)), data.draw(st.integers(1, 4))
    if shape[dim] % parts:
        with pytest.raises(ShapeError, match="do not divide"):
            OPS["chunk"].shape({"dim": dim, "parts": parts}, [tuple(shape)])
    else:
        inferred = OPS["chunk"].shape({"dim": dim, "parts": parts}, [tuple(shape)])
        pieces = module("chunk", shape, dim=dim, parts=parts)(x)
        assert len(pieces) == parts and all(tuple(p.shape[1:]) == inferred for p in pieces)
        assert all(torch.equal(a, b) for a, b in zip(pieces, x.chunk(parts, dim + 1)))


# ── chunk: a node with several outputs ────────────────────────────────────────────────────────────────────────

SPLIT = """\
    - {name: halves, chunk: {parts: 2}}
    - name: right
      from: halves.1
      seq: [conv: {out: 2, kernel: 1}, relu]
    - {name: both, concat: {from: [halves.0, right]}}
    - {name: quarters, chunk: {parts: 2, dim: 1}}
    - {name: top, from: quarters.0, seq: [relu]}
    - add: {from: [top, quarters.1]}
    """


def test_the_parts_of_a_chunk_are_read_by_name_in_every_backend(tmp_path):
    path = write(tmp_path, SPLIT)
    model, x = both_backends_agree(path)
    with torch.no_grad():
        left, right = x.chunk(2, 1)
        both = torch.cat([left, torch.relu(model.right[0](right))], 1)
        top, bottom = both.chunk(2, 2)
        assert torch.equal(model(x), torch.relu(top) + bottom)
    assert isinstance(model.right, nn.Sequential), "a block given one part stays a chain"
    shaped = netspec.shaped_network(path)
    assert shaped.nodes["both"].inputs == ("halves", "right.1") and shaped.nodes["both"].parts == (0, None)
    assert shaped.nodes["both"].refs() == ("halves.0", "right.1")
    assert shaped.facts["halves"].shape == (2, 6, 6) and shaped.facts["quarters"].shape == (4, 3, 6)
    assert "halves" in render_table(summarize(shaped)) and not [f for f in lint(shaped.network) if f.severity != "info"]


def test_a_block_can_read_a_part_of_a_chunk_made_outside_it_and_return_one(tmp_path):
    path = write(tmp_path, """\
        - {name: halves, chunk: {parts: 2}}
        - name: inner
          from: halves.1
          seq:
            - {name: split, chunk: {parts: 2}}
            - {from: split.1, relu: {}}
        - {name: outer, from: inner.split.0, relu: {}}
        - concat: {from: [halves.0, inner, outer]}
        """)
    with pytest.raises(SpecErrors, match="unknown node `inner.split.0`"):
        netspec.shaped_network(path)  # names inside a seq are its own: `from:` sees `inner`, not its parts
    path = write(tmp_path, """\
        - {name: halves, chunk: {parts: 2}}
        - name: inner
          from: input
          seq:
            - {name: split, from: halves.1, chunk: {parts: 2}}
            - {from: split.1, relu: {}}
            - {from: halves.0, relu: {}}
        - concat: {from: [inner, halves.1]}
        """)
    model, x = both_backends_agree(path)
    with torch.no_grad():
        assert torch.equal(model(x), torch.cat([torch.relu(x[:, :2]), x[:, 2:]], 1))


def test_the_shufflenet_units_split_their_input_and_shuffle_the_channels():
    with torch.device("meta"):
        model = netspec.load(SPECS / "imagenet" / "shufflenet_v2_x1_0.yaml")
    unit = model.stage2[1]
    assert type(unit).__name__ == "ShuffleUnit" and isinstance(unit.branch2, nn.Sequential)
    assert [type(m).__name__ for m in unit.children()] == ["Chunk", "Sequential", "ChannelShuffle"]
    assert "torch.cat" in unit.code and "getitem" in unit.code


# ── parameter: a learnable tensor as a node ───────────────────────────────────────────────────────────────────

def test_a_learnable_tensor_has_its_own_key_its_initial_value_and_counts(tmp_path):
    path = write(tmp_path, """\
        - name: blk
          seq:
            - {name: conv, conv: {out: 4, kernel: 1}}
            - {name: scale, parameter: {shape: ["${in.channels}", 1, 1], init: 0.25}}
            - mul: {from: [scale, conv]}
        - {name: shift, parameter: {shape: [4, 6, 6]}}
        - add: {from: [blk, shift]}
        """)
    shaped = netspec.shaped_network(path)
    assert shaped.facts["blk.scale"].param_count == 4 and shaped.facts["shift"].param_count == 144
    assert shaped.param_count == 20 + 4 + 144 and shaped.nodes["blk.scale"].inputs == ()
    model, x = both_backends_agree(path)
    # PyTorch lists a module's own tensors before its children's (as torchvision's CNBlock has layer_scale first).
    assert list(model.state_dict()) == ["shift", "blk.scale", "blk.conv.weight", "blk.conv.bias"]
    assert torch.equal(model.blk.scale, torch.full((4, 1, 1), 0.25)) and model.shift.requires_grad
    with torch.no_grad():
        assert torch.equal(model(x), model.blk.conv(x) * 0.25 + model.shift)
    model(x).sum().backward()
    assert model.blk.scale.grad is not None and model.shift.grad.shape == (4, 6, 6)
    assert not [f for f in lint(shaped.network) if f.severity != "info"], "a learnable tensor read by a merge is used"


def test_convnext_scales_its_block_by_layer_scale_as_torchvision_does():
    shaped = netspec.shaped_network(SPECS / "imagenet" / "convnext_tiny.yaml")
    with torch.device("meta"):
        model = netspec.load(shaped)
    keys = list(model.state_dict())
    assert keys[keys.index("features.1.0.layer_scale") + 1] == "features.1.0.block.0.weight"
    assert model.get_parameter("features.1.0.layer_scale").shape == (96, 1, 1)
    assert [shaped.nodes[f"features.1.0.block.{i}"].op for i in range(7)] == [
        "conv", "permute", "layernorm", "linear", "gelu", "linear", "permute"]
    assert model.features[1][0].block[3].weight.shape == (384, 96) and model.features[0][1].weight.shape == (96,)
    probabilities = [shaped.nodes[f"features.{s}.{i}.stochastic_depth"].args["p"]
                     for s, n in ((1, 3), (3, 3), (5, 9), (7, 3)) for i in range(n)]
    assert probabilities == [0.1 * k / 17.0 for k in range(18)]  # torchvision's ramp, to the last bit


# ── `-` in names ──────────────────────────────────────────────────────────────────────────────────────────────

def test_names_with_a_dash_compile_and_reach_their_modules(tmp_path):
    path = write(tmp_path, """\
        - name: block1
          seq:
            - {repeat: 2, as: i, name: "block1-${i}", conv: {out: 4, kernel: 1}}
            - {name: scale-1, parameter: {shape: [4, 1, 1], init: 1.0}}
            - mul: {from: [scale-1, block1-1]}
        - {name: out-put, relu: {}}
        """)
    model, _ = both_backends_agree(path)
    assert list(model.state_dict()) == ["block1.scale-1", "block1.block1-0.weight", "block1.block1-0.bias",
                                        "block1.block1-1.weight", "block1.block1-1.bias"]
    assert model.get_submodule("block1.block1-0").out_channels == 4
    with torch.device("meta"):
        keys = list(netspec.load(SPECS / "imagenet" / "regnet_y_400mf.yaml").state_dict())
    assert "trunk_output.block1.block1-0.f.se.fc1.weight" in keys


# ── misuse: located errors ────────────────────────────────────────────────────────────────────────────────────

MISUSES = {
    "permute-repeat": ("- permute: {dims: [0, 0, 1]}", "not a permutation"),
    "permute-rank": ("- permute: {dims: [1, 0]}", "not a permutation of the input's 3 dims"),
    "permute-not-ints": ("- permute: {dims: [1, 2.5, 0]}", "dims"),
    "permute-too-long": ("- permute: {dims: [0, 1, 2, 3, 4, 5, 6, 7, 8]}", "dims"),
    "reshape-divide": ("- reshape: {shape: [5, -1]}", "does not fit"),
    "reshape-product": ("- reshape: {shape: [4, 6]}", "does not fit"),
    "reshape-two-inferred": ("- reshape: {shape: [-1, -1]}", "at most one size may be -1"),
    "reshape-zero": ("- reshape: {shape: [0, -1]}", "a size of 0"),
    "chunk-divide": ("- {name: h, chunk: {parts: 3}}\n- {from: h.0, relu: {}}", "3 parts do not divide dim 0"),
    "chunk-dim": ("- {name: h, chunk: {parts: 2, dim: 3}}\n- {from: h.1, relu: {}}", "chunk dim 3 is not a dim"),
    "shuffle-divide": ("- channel_shuffle: {groups: 3}", "must divide the channels"),
    "layernorm-channels-of-features": ("- flatten\n- layernorm: {over: channels}", "needs a [channels, …] input"),
    "linear-map": ("- linear: {out: 3}", "linear needs a [features] input"),
    "part-out-of-range": ("- {name: h, chunk: {parts: 2}}\n- {from: h.2, relu: {}}", "`h` has 2 parts"),
    "part-of-one-output": ("- {name: c, relu: {}}\n- {from: c.0, relu: {}}", "which is a `relu` node with one"),
    "chunk-read-whole": ("- {name: h, chunk: {parts: 2}}\n- relu", "`h` has 2 outputs; `relu` must read one"),
    "chunk-as-output": ("- {name: h, chunk: {parts: 2}}", "the network's output must read one"),
    "parameter-from": ("- {name: p, from: input, parameter: {shape: [4]}}", "reads no input"),
    "parameter-into-conv": ("- {name: p, parameter: {shape: [4, 6, 6]}}\n- conv: {out: 2, kernel: 1}",
                            "`conv` cannot read it"),
    "parameter-as-output": ("- {name: p, parameter: {shape: [4, 6, 6]}}", "it cannot be the network's output"),
    "parameters-only": ("- {name: p, parameter: {shape: [4, 1, 1]}}\n- {name: q, parameter: {shape: [4, 1, 1]}}\n"
                        "- mul: {from: [p, q]}", "must also read a tensor that has one"),
    "name-leading-dash": ("- {name: -a, relu: {}}", "invalid name"),
}


@pytest.mark.parametrize("body, message", MISUSES.values(), ids=MISUSES)
def test_each_misuse_is_a_located_error(tmp_path, body, message):
    path = write(tmp_path, body)
    with pytest.raises(SpecErrors) as caught:
        netspec.shaped_network(path)
    error = caught.value.errors[0]
    assert message in str(caught.value), str(caught.value)
    assert error.mark.file == path and error.mark.line >= 5, "located in the spec's body"


# ── the naming rules of inline seqs ───────────────────────────────────────────────────────────────────────────

def test_an_inline_seq_holding_a_named_repeat_puts_the_iterations_in_the_enclosing_scope(tmp_path):
    path = write(tmp_path, """\
        - name: features
          seq:
            - conv: {out: 4, kernel: 1}
            - {inline: true, seq: [{repeat: 2, as: i, name: "block${i}", seq: [relu]}]}
            - {inline: true, seq: [{repeat: 2, name: stage, seq: [relu]}]}
            - {from: block0, relu: {}}
        """)
    shaped = netspec.shaped_network(path)
    assert [n.name for n in shaped.op_nodes()] == [
        "features.0", "features.block0.0", "features.block1.0", "features.stage.0.0", "features.stage.1.0",
        "features.3"]
    assert shaped.nodes["features.3"].inputs == ("features.block0.0",)  # `from:` sees the iterations
