"""Shape inference (netspec.passes.shapes, with the op table's rules) against PyTorch as the oracle.

For every spec: a forward pass on the meta device, walked node by node with torch.fx.Interpreter, gives the
inferred shape at every node, and the parameters PyTorch allocates number exactly the inferred count.
For the rules themselves: conv, transposed conv, pooling and upsampling shapes on random arguments equal what
PyTorch computes (or PyTorch refuses exactly where netspec does).
"""

from __future__ import annotations

import operator

import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import fx

import netspec
from netspec.errors import SpecErrors
from netspec.ir import INPUT, OUTPUT
from netspec.ops import OPS, ShapeError, defaults
from netspec.passes.shapes import infer

from conftest import SPECS, spec_params
from oracle import flat_module

# ── every spec, node by node ──────────────────────────────────────────────────────────────────────────────────


class ShapeRecorder(fx.Interpreter):
    """Runs a GraphModule and keeps the shape (batch dropped) of every fx node's output."""

    def __init__(self, module: fx.GraphModule):
        super().__init__(module)
        self.shapes: dict[fx.Node, tuple[int, ...]] = {}

    def run_node(self, node: fx.Node):
        out = super().run_node(node)
        if node.op == "get_attr":  # a learnable tensor: one for the whole batch, with no batch dimension
            self.shapes[node] = tuple(out.shape)
        elif isinstance(out, torch.Tensor):
            self.shapes[node] = tuple(out.shape[1:])
        elif isinstance(out, tuple) and out and all(isinstance(part, torch.Tensor) for part in out):
            self.shapes[node] = tuple(out[0].shape[1:])  # a chunk: every part has the inferred shape
        return out


def fx_node_of(module: fx.GraphModule, shaped) -> dict[str, fx.Node]:
    """Each graph node's fx node in the compiled model's flat graph (`flat_module`): in graph order, one
    call_module per module op and for a merge the calls of its MergeCall layout (one `cat` of a list; a chain of
    `add`s, the last one its result); a learnable tensor is a get_attr.  The getitems that take a chunk's parts
    belong to no graph node, and a network with several outputs ends with the call that packs them into its named
    tuple, which is no node of the network either."""
    packs = lambda n: n.op == "call_function" and isinstance(n.target, type) and issubclass(n.target, tuple)
    calls = iter(n for n in module.graph.nodes if n.op not in ("placeholder", "output") and not packs(n)
                 and not (n.op == "call_function" and n.target is operator.getitem))
    found = {INPUT: next(n for n in module.graph.nodes if n.op == "placeholder")}
    for node in (n.name for n in shaped.op_nodes()):
        op = shaped.nodes[node].op
        if OPS[op].function is not None:
            count = 1 if OPS[op].function().layout == "list_dim" else len(shaped.nodes[node].inputs) - 1
            for _ in range(count):
                found[node] = next(calls)
        else:
            found[node] = next(calls)
            kind = "get_attr" if OPS[op].parameter is not None else "call_module"
            assert (found[node].op, found[node].target) == (kind, node)
    assert next(calls, None) is None, "fx nodes left over: the walk lost step with the compiled graph"
    return found


@pytest.fixture(scope="module", params=spec_params())
def compiled(request):
    """(shaped network, the compiled model on the meta device, shapes PyTorch computed per fx node)."""
    shaped = netspec.shaped_network(request.param)
    with torch.device("meta"):
        module = flat_module(netspec.load(request.param))
    recorder = ShapeRecorder(module)
    out = recorder.run(torch.empty(2, *shaped.network.input_shape, device="meta"))
    main = out if isinstance(out, torch.Tensor) else out[0]   # several outputs: the first is the main one
    return shaped, module, recorder.shapes, tuple(main.shape)


def test_the_inferred_shape_of_every_node_is_the_shape_pytorch_computes(compiled):
    shaped, module, observed, _ = compiled
    by_node = fx_node_of(module, shaped)
    mismatches = {node: (observed[by_node[node]], shaped.facts[node].shape) for node in (n.name for n in shaped.op_nodes())
                  if observed[by_node[node]] != shaped.facts[node].shape}
    assert mismatches == {}, "node: (PyTorch, inferred)"


def test_the_output_shape_is_the_inferred_one_with_the_batch(compiled):
    shaped, _, _, out = compiled
    assert out == (2, *shaped.output_shape) == (2, *shaped.facts[OUTPUT].shape)


def test_the_inferred_parameter_count_is_what_pytorch_allocates(compiled):
    shaped, module, _, _ = compiled
    assert sum(p.numel() for p in module.parameters()) == shaped.param_count


def test_each_nodes_parameter_count_is_its_modules(compiled):
    shaped, module, _, _ = compiled
    modules = dict(module.named_modules())
    tensors = dict(module.named_parameters())
    for node in (n.name for n in shaped.op_nodes()):
        own = sum(p.numel() for p in modules[node].parameters()) if node in modules else \
            tensors[node].numel() if node in tensors else 0
        assert own == shaped.facts[node].param_count, node


def test_the_googlenet_total_is_the_reference():
    assert netspec.shaped_network(SPECS / "googlenet.yaml").param_count == 5_977_530


def test_the_recorder_would_notice_a_wrong_shape():
    """The comparison can fail: a graph whose annotation is off by one is caught."""
    shaped = netspec.shaped_network(SPECS / "lenet.yaml")
    with torch.device("meta"):
        module = flat_module(netspec.load(SPECS / "lenet.yaml"))
    recorder = ShapeRecorder(module)
    recorder.run(torch.empty(1, 1, 28, 28, device="meta"))
    observed = recorder.shapes[fx_node_of(module, shaped)["0"]]
    assert observed == shaped.facts["0"].shape and observed != (6, 27, 28)


# ── the rules against PyTorch, on random arguments ────────────────────────────────────────────────────────────

RANDOM = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
pairs = st.one_of(st.integers(1, 4), st.tuples(st.integers(1, 4), st.integers(1, 4)).map(list))


def ours(op: str, shape: tuple[int, ...], **args):
    try:
        return tuple(OPS[op].shape({**defaults(OPS[op]), **args}, [shape]))
    except ShapeError:
        return None


def theirs(run, device: str = "meta") -> tuple[int, ...] | None:
    """PyTorch's output shape on the meta device, or None where PyTorch refuses the arguments.  `device="cpu"`
    for refusals that only a real kernel makes (the meta device computes any transposed conv's output_padding)."""
    try:
        with torch.device(device):
            out = run()
    except (RuntimeError, ValueError):
        return None
    return tuple(out.shape[1:]) if all(d > 0 for d in out.shape) else None


@RANDOM
@given(c=st.integers(1, 8), h=st.integers(1, 12), w=st.integers(1, 12), out=st.integers(1, 8), kernel=pairs,
       stride=pairs, padding=st.one_of(st.integers(0, 3), st.tuples(st.integers(0, 3), st.integers(0, 3)).map(list)),
       dilation=pairs, groups=st.sampled_from([1, 2, 4]))
def test_the_conv_rule_matches_pytorch(c, h, w, out, kernel, stride, padding, dilation, groups):
    args = dict(out=out, kernel=kernel, stride=stride, padding=padding, dilation=dilation, groups=groups)
    expected = theirs(lambda: torch.nn.Conv2d(c, out, kernel, stride, padding, dilation, groups)(
        torch.empty(1, c, h, w)))
    assert ours("conv", (c, h, w), **args) == expected


@RANDOM
@given(c=st.integers(1, 4), h=st.integers(1, 12), w=st.integers(1, 12), kernel=pairs, dilation=pairs)
def test_same_padding_keeps_the_size_as_in_pytorch(c, h, w, kernel, dilation):
    inferred = ours("conv", (c, h, w), out=3, kernel=kernel, dilation=dilation, padding="same")
    expected = theirs(lambda: torch.nn.Conv2d(c, 3, kernel, padding="same", dilation=dilation)(torch.empty(1, c, h, w)))
    if inferred is None:  # netspec refuses an even total padding (PyTorch pads asymmetrically)
        kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
        dh, dw = (dilation, dilation) if isinstance(dilation, int) else dilation
        assert (dh * (kh - 1)) % 2 or (dw * (kw - 1)) % 2
    else:
        assert inferred == expected == (3, h, w)


def test_same_padding_with_a_stride_is_refused_as_pytorch_does():
    assert ours("conv", (3, 8, 8), out=4, kernel=3, stride=2, padding="same") is None
    assert theirs(lambda: torch.nn.Conv2d(3, 4, 3, stride=2, padding="same")(torch.empty(1, 3, 8, 8))) is None


@RANDOM
@given(c=st.integers(1, 4), h=st.integers(1, 14), w=st.integers(1, 14), kernel=pairs,
       stride=st.one_of(st.none(), pairs), padding=st.integers(0, 2), dilation=pairs, ceil=st.booleans())
def test_the_maxpool_rule_matches_pytorch_including_ceil_mode(c, h, w, kernel, stride, padding, dilation, ceil):
    expected = theirs(lambda: F.max_pool2d(torch.empty(1, c, h, w), kernel, stride, padding, dilation, ceil))
    assert ours("maxpool", (c, h, w), kernel=kernel, stride=stride, padding=padding, dilation=dilation,
                ceil_mode=ceil) == expected


@RANDOM
@given(c=st.integers(1, 4), h=st.integers(1, 14), w=st.integers(1, 14), kernel=pairs,
       stride=st.one_of(st.none(), pairs), padding=st.integers(0, 2), ceil=st.booleans())
def test_the_avgpool_rule_matches_pytorch_including_ceil_mode(c, h, w, kernel, stride, padding, ceil):
    expected = theirs(lambda: F.avg_pool2d(torch.empty(1, c, h, w), kernel, stride, padding, ceil))
    assert ours("avgpool", (c, h, w), kernel=kernel, stride=stride, padding=padding, ceil_mode=ceil) == expected


@pytest.mark.parametrize("size, kernel, stride, padding", [(7, 3, 2, 1), (6, 3, 2, 0), (5, 2, 2, 0), (1, 2, 2, 1)])
def test_ceil_mode_drops_a_last_window_that_would_start_in_the_padding(size, kernel, stride, padding):
    expected = theirs(lambda: F.max_pool2d(torch.empty(1, 1, size, size), kernel, stride, padding, 1, True))
    assert ours("maxpool", (1, size, size), kernel=kernel, stride=stride, padding=padding, ceil_mode=True) == expected


def _tuple(value):
    """Hypothesis's [h, w] lists as the tuples nn.Upsample wants (it refuses a list as scale_factor)."""
    return tuple(value) if isinstance(value, list) else value


paddings = st.one_of(st.integers(0, 3), st.tuples(st.integers(0, 3), st.integers(0, 3)).map(list))


@RANDOM
@given(c=st.integers(1, 8), h=st.integers(1, 8), w=st.integers(1, 8), out=st.integers(1, 8), kernel=pairs,
       stride=pairs, padding=paddings, output_padding=paddings, dilation=pairs, groups=st.sampled_from([1, 2, 4]),
       bias=st.booleans())
def test_the_conv_transpose_rule_and_parameter_count_match_pytorch_including_its_output_padding_check(
        c, h, w, out, kernel, stride, padding, output_padding, dilation, groups, bias):
    args = dict(out=out, kernel=kernel, stride=stride, padding=padding, output_padding=output_padding,
                dilation=dilation, groups=groups, bias=bias)
    built = {}

    def run():
        built["module"] = torch.nn.ConvTranspose2d(c, out, kernel, stride, padding, output_padding, groups, bias,
                                                   dilation)
        return built["module"](torch.empty(1, c, h, w))

    expected = theirs(run, device="cpu")
    assert ours("conv_transpose", (c, h, w), **args) == expected
    if expected is not None:
        counted = OPS["conv_transpose"].count_params({**defaults(OPS["conv_transpose"]), **args}, [(c, h, w)])
        assert counted == sum(p.numel() for p in built["module"].parameters())


def test_output_padding_may_reach_the_stride_when_the_dilation_is_larger_as_pytorch_allows():
    run = lambda: torch.nn.ConvTranspose2d(2, 2, 3, stride=1, output_padding=1, dilation=2)(torch.empty(1, 2, 4, 4))
    assert ours("conv_transpose", (2, 4, 4), out=2, kernel=3, output_padding=1, dilation=2) == (2, 9, 9)
    assert theirs(run, device="cpu") == (2, 9, 9)


@RANDOM
@given(c=st.integers(1, 4), h=st.integers(1, 10), w=st.integers(1, 10), scale=st.one_of(st.none(), pairs),
       size=st.one_of(st.none(), st.integers(1, 12), st.tuples(st.integers(1, 12), st.integers(1, 12)).map(list)),
       mode=st.sampled_from(["nearest", "bilinear"]), align_corners=st.booleans())
def test_the_upsample_rule_matches_pytorch_and_refuses_where_pytorch_does(c, h, w, scale, size, mode, align_corners):
    # align_corners false is the op's default and means "not set": PyTorch refuses even False with nearest.
    align = align_corners if align_corners or mode == "bilinear" else None
    expected = theirs(lambda: torch.nn.Upsample(size=_tuple(size), scale_factor=_tuple(scale), mode=mode,
                                                align_corners=align)(torch.empty(1, c, h, w)))
    assert ours("upsample", (c, h, w), scale=scale, size=size, mode=mode, align_corners=align_corners) == expected


# ── merges and errors ─────────────────────────────────────────────────────────────────────────────────────────

def shaped_text(tmp_path, text: str):
    path = tmp_path / "net.yaml"
    path.write_text("netspec: 1\nname: net\n" + text)
    return netspec.shaped_network(path)


def test_concat_adds_channels_and_add_keeps_the_shape(tmp_path):
    shaped = shaped_text(tmp_path, "input: [4, 6, 6]\nbody:\n  - name: c\n    concat: [[conv: {out: 2, kernel: 1}], []]\n"
                                   "  - name: a\n    add: [[conv: {out: 6, kernel: 3, padding: 1}], []]\n")
    assert shaped.facts["c.concat"].shape == (6, 6, 6) and shaped.facts["a.add"].shape == (6, 6, 6)


def test_every_independent_shape_error_is_reported_and_later_nodes_are_not_blamed(tmp_path):
    with pytest.raises(SpecErrors) as caught:
        shaped_text(tmp_path, "input: [4, 6, 6]\nbody:\n"
                              "  - {name: x, conv: {out: 4, kernel: 9}}\n  - {name: after, relu: {}}\n"
                              "  - {from: input, name: y, conv: {out: 3, kernel: 3, groups: 2}}\n")
    assert [e.mark.line for e in caught.value.errors] == [5, 7]


def test_params_and_macs_of_a_conv_are_counted_per_group(tmp_path):
    shaped = shaped_text(tmp_path, "input: [4, 6, 6]\nbody:\n  - conv: {out: 8, kernel: 3, groups: 2, padding: 1}\n")
    assert shaped.facts["0"].param_count == 8 * 2 * 9 + 8
    assert shaped.facts["0"].macs == 8 * 6 * 6 * 2 * 9


def test_params_and_macs_of_a_transposed_conv_count_every_input_pixel_times_the_kernel(tmp_path):
    shaped = shaped_text(tmp_path, "input: [4, 5, 6]\nbody:\n  - conv_transpose: {out: 6, kernel: 3, stride: 2, "
                                   "groups: 2}\n  - upsample: {scale: 2, mode: bilinear}\n")
    assert shaped.facts["0"].shape == (6, 11, 13)             # (5−1)·2 + (3−1) + 1, (6−1)·2 + (3−1) + 1
    assert shaped.facts["0"].param_count == 4 * 3 * 9 + 6          # weight (in 4, out/groups 3, 3, 3) + bias
    # 5·6 input pixels × 4 input channels, each multiplied by its group's 3 output channels × 3·3 kernel taps;
    # a conv's formula (out·H'·W' · in/groups · kh·kw = 6·11·13·2·9 = 15,444) would count the output pixels.
    assert shaped.facts["0"].macs == 5 * 6 * 4 * 3 * 9 == 3240
    assert (shaped.facts["1"].shape, shaped.facts["1"].param_count, shaped.facts["1"].macs) == ((6, 22, 26), 0, 0)


def test_transposed_conv_macs_are_half_of_torchs_flop_counter():
    from torch.utils.flop_counter import FlopCounterMode

    args = {**defaults(OPS["conv_transpose"]), "out": 6, "kernel": [3, 2], "stride": 2, "padding": 1,
            "output_padding": 1, "groups": 2}
    out_shape = OPS["conv_transpose"].shape(args, [(4, 5, 7)])
    module = torch.nn.ConvTranspose2d(4, 6, (3, 2), stride=2, padding=1, output_padding=1, groups=2)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        module(torch.empty(1, 4, 5, 7))
    assert 2 * OPS["conv_transpose"].macs(args, [(4, 5, 7)], out_shape) == counter.get_total_flops()


def test_inference_adds_facts_beside_the_network_it_was_given():
    from netspec.passes.expand import expand
    from netspec.pipeline import load_spec

    network = expand(load_spec(SPECS / "lenet.yaml"))
    shaped = infer(network)
    assert shaped.network is network and set(shaped.facts) == set(network.nodes)
    assert shaped.facts["0"].shape == (6, 28, 28) and not hasattr(network.nodes["0"], "shape")
