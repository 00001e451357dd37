"""The torch side of the op entries against PyTorch, on more arguments than each entry's own example (which
test_ops_registry.py walks), and the course's BatchNorm (netspec.ops.formula_bn)."""

import functools
import math
import operator

import pytest
import torch
from torch import nn

from netspec.ops.formula_bn import FormulaBatchNorm
from netspec.ops import OPS, ShapeError, defaults
from netspec.ops.modules import StochasticDepth
from netspec.ops.torch_build import ModuleSpec, extra_sources


def module_spec(op, args, shapes):
    """The ModuleSpec of op `op` (None for a merge, which has a function instead)."""
    return OPS[op].module(args, shapes) if OPS[op].module else None


def case(op, shapes, **overrides):
    """One op with its defaulted args plus `overrides`, applied to inputs of `shapes` (no batch dim)."""
    args = {**defaults(OPS[op]), **overrides}
    label = ",".join(f"{k}={v}" for k, v in overrides.items())
    return pytest.param(op, args, [tuple(s) for s in shapes], id=f"{op}[{label}]{shapes}")


# Argument variants (paddings, groups, ranks, ceil_mode edges) beyond each entry's example.
CASES = [
    case("conv", [(1, 28, 28)], out=6, kernel=5, padding=2),
    case("conv", [(8, 16, 16)], out=16, kernel=3, padding=1, groups=4),
    case("conv", [(8, 9, 9)], out=8, kernel=3, groups=8, bias=False),
    case("conv", [(3, 20, 20)], out=4, kernel=3, dilation=2),
    case("conv", [(3, 12, 12)], out=4, kernel=[3, 5], padding="same"),
    case("conv", [(3, 12, 12)], out=4, kernel=3, dilation=[2, 1], padding="same"),
    case("conv", [(3, 12, 12)], out=4, kernel=3, padding="valid"),
    case("conv", [(3, 13, 11)], out=5, kernel=[3, 5], stride=[2, 1], padding=[1, 2]),
    case("conv_transpose", [(4, 5, 6)], out=6, kernel=3, stride=2, groups=2),
    case("conv_transpose", [(3, 7, 7)], out=4, kernel=[3, 4], stride=[2, 1], padding=[1, 0], output_padding=[1, 0],
         bias=False),
    case("conv_transpose", [(2, 5, 5)], out=2, kernel=3, dilation=2, output_padding=1),  # op < dilation, stride 1
    case("linear", [(20,)], out=10),
    case("linear", [(20,)], out=3, bias=False),
    case("batchnorm", [(16,)]),
    case("batchnorm", [(6, 8, 8)]),
    case("batchnorm", [(16,)], impl="formula"),
    case("batchnorm", [(6, 8, 8)], impl="formula"),
    case("batchnorm", [(6, 8, 8)], affine=False, eps=1e-3, momentum=0.2),
    case("batchnorm", [(6, 8, 8)], affine=False, impl="formula"),
    case("layernorm", [(10,)], affine=False),
    case("groupnorm", [(8, 4, 4)], groups=2, affine=False),
    case("relu6", [(10,)]),
    case("leaky_relu", [(3, 4, 4)], slope=0.2),
    case("sigmoid", [(10,)]),
    case("gelu", [(10,)], approximate="tanh"),
    case("softmax", [(10,)]),
    case("dropout", [(10,)], p=0.3),
    case("maxpool", [(4, 8, 8)], kernel=2),
    case("maxpool", [(3, 10, 10)], kernel=3, stride=2, padding=1, ceil_mode=True),
    case("maxpool", [(3, 5, 5)], kernel=2, stride=2, padding=1, ceil_mode=True),  # last window dropped
    case("maxpool", [(3, 12, 12)], kernel=[2, 3], stride=[2, 1], dilation=2),
    case("avgpool", [(4, 8, 8)], kernel=2),
    case("avgpool", [(3, 10, 10)], kernel=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
    case("avgpool", [(3, 5, 5)], kernel=2, stride=2, padding=1, ceil_mode=True),  # last window dropped
    case("avgpool", [(3, 8, 8)], kernel=3, stride=2, ceil_mode=True),  # ceil adds a partial window
    case("avgpool", [(3, 10, 9)], kernel=[3, 2], stride=[1, 2], padding=[1, 0]),
    case("adaptive_avgpool", [(4, 7, 9)], size=1),
    case("upsample", [(3, 4, 5)], scale=2),
    case("upsample", [(3, 4, 5)], scale=[2, 3], mode="bilinear"),
    case("upsample", [(3, 4, 5)], size=[7, 9], mode="bilinear", align_corners=True),
    case("upsample", [(3, 4, 5)], size=6),
    case("concat", [(3, 4, 4)]),
    case("concat", [(6,), (2,), (1,)]),
    case("add", [(3, 4, 4), (3, 4, 4)]),
    case("add", [(10,), (10,), (10,)]),
    case("mul", [(3, 4, 4), (3, 1, 1)]),
    case("mul", [(1, 4, 1), (3, 1, 5)]),
    case("mul", [(10,), (1,), (10,)]),
    case("hardswish", [(10,)]),
    case("hardsigmoid", [(3, 4, 4)]),
    case("stochastic_depth", [(10,)], p=0.2, mode="batch"),
]
MODULE_CASES = [c for c in CASES if OPS[c.values[0]].module is not None]


def run(op, args, shapes, device, batch=3):
    """Runs one op's module (or merge function) on a batch of inputs; returns the output and the module."""
    inputs = [torch.randn(batch, *s, device=device) for s in shapes]
    spec = module_spec(op, args, shapes)
    if spec is None:
        return OPS[op].function()(inputs), None
    with torch.device(device):
        module = spec.build()
    return module(*inputs), module


@pytest.mark.parametrize("device", ["meta", "cpu"])
@pytest.mark.parametrize("op,args,shapes", CASES)
def test_output_shape_matches_the_op_tables_shape_rule(op, args, shapes, device):
    out, _ = run(op, args, shapes, device)
    assert out.device.type == device
    assert tuple(out.shape) == (3, *OPS[op].shape(args, shapes))


@pytest.mark.parametrize("op,args,shapes", CASES)
def test_parameter_count_matches_the_op_tables_count(op, args, shapes):
    _, module = run(op, args, shapes, "meta")
    count = 0 if module is None else sum(p.numel() for p in module.parameters())
    assert count == OPS[op].count_params(args, shapes)


@pytest.mark.parametrize("op,args,shapes", MODULE_CASES)
def test_emitted_source_builds_an_identical_module(op, args, shapes):
    spec = module_spec(op, args, shapes)
    namespace = {"nn": nn, "FormulaBatchNorm": FormulaBatchNorm, "StochasticDepth": StochasticDepth}
    torch.manual_seed(0)
    exec(f"module = {spec.source()}", namespace)
    torch.manual_seed(0)
    built = spec.build()
    assert type(namespace["module"]) is type(built) and repr(namespace["module"]) == repr(built)
    emitted = namespace["module"].state_dict()
    assert emitted.keys() == built.state_dict().keys()
    for name, tensor in built.state_dict().items():
        assert torch.equal(emitted[name], tensor), name


def test_source_writes_torch_classes_with_nn_prefix_and_leaves_out_defaults():
    conv = {**defaults(OPS["conv"]), "out": 6, "kernel": 5, "padding": 2}
    assert module_spec("conv", conv, [(1, 28, 28)]).source() == "nn.Conv2d(1, 6, kernel_size=5, padding=2)"
    conv.update(kernel=[3, 5], padding="same", bias=False)
    assert (module_spec("conv", conv, [(3, 8, 8)]).source()
            == "nn.Conv2d(3, 6, kernel_size=(3, 5), padding='same', bias=False)")
    pool = {**defaults(OPS["maxpool"]), "kernel": 2}
    assert module_spec("maxpool", pool, [(3, 8, 8)]).source() == "nn.MaxPool2d(2, stride=2)"
    bn = {**defaults(OPS["batchnorm"]), "impl": "formula", "eps": 1e-3}
    assert module_spec("batchnorm", bn, [(6, 4, 4)]).source() == "FormulaBatchNorm(6, 4, eps=0.001)"
    assert module_spec("softmax", {}, [(10,)]).source() == "nn.Softmax(dim=1)"


def test_source_of_a_transposed_conv_and_of_upsampling_reads_like_hand_written_pytorch():
    convt = {**defaults(OPS["conv_transpose"]), "out": 4, "kernel": 3, "stride": 2, "padding": 1, "output_padding": 1}
    assert (module_spec("conv_transpose", convt, [(8, 4, 4)]).source()
            == "nn.ConvTranspose2d(8, 4, kernel_size=3, stride=2, padding=1, output_padding=1)")
    up = {**defaults(OPS["upsample"]), "scale": 2}
    assert module_spec("upsample", up, [(3, 4, 4)]).source() == "nn.Upsample(scale_factor=2)"  # no align_corners
    up.update(scale=None, size=[7, 9], mode="bilinear")
    assert module_spec("upsample", up, [(3, 4, 4)]).source() == "nn.Upsample(size=(7, 9), mode='bilinear')"
    up.update(align_corners=True)
    assert (module_spec("upsample", up, [(3, 4, 4)]).source()
            == "nn.Upsample(size=(7, 9), mode='bilinear', align_corners=True)")


def hand_built(op, *cases):
    """(input shape, op args, the module a user would write by hand for them) → test params."""
    return [pytest.param(op, {**defaults(OPS[op]), **kw}, [shape], make, id=f"{op}{kw}") for shape, kw, make in cases]


# Transposed convs and upsampling next to the module PyTorch builds from the same arguments.
BY_HAND = hand_built(
    "conv_transpose",
    ((4, 5, 6), dict(out=6, kernel=3, stride=2, groups=2), lambda: nn.ConvTranspose2d(4, 6, 3, stride=2, groups=2)),
    ((3, 7, 7), dict(out=4, kernel=[3, 4], stride=[2, 1], padding=[1, 0], output_padding=[1, 0], bias=False),
     lambda: nn.ConvTranspose2d(3, 4, (3, 4), stride=(2, 1), padding=(1, 0), output_padding=(1, 0), bias=False)),
    ((2, 5, 5), dict(out=2, kernel=3, dilation=2, output_padding=1),
     lambda: nn.ConvTranspose2d(2, 2, 3, output_padding=1, dilation=2)),
) + hand_built(
    "upsample",
    ((3, 4, 5), dict(scale=2), lambda: nn.Upsample(scale_factor=2)),
    ((3, 4, 5), dict(scale=[2, 3], mode="bilinear"), lambda: nn.Upsample(scale_factor=(2, 3), mode="bilinear")),
    ((3, 4, 5), dict(size=[7, 9], mode="bilinear", align_corners=True),
     lambda: nn.Upsample(size=(7, 9), mode="bilinear", align_corners=True)),
    ((3, 4, 5), dict(size=6), lambda: nn.Upsample(size=6)),
)


def constructor_args(module: nn.Module) -> dict:
    """The public attributes in which ConvTranspose2d and Upsample keep their constructor arguments."""
    return {k: v for k, v in vars(module).items() if not k.startswith("_") and k != "training"}


@pytest.mark.parametrize("op,args,shapes,make", BY_HAND)
def test_the_built_module_is_the_one_pytorch_builds_from_the_same_arguments(op, args, shapes, make):
    built, reference = module_spec(op, args, shapes).build(), make()
    assert type(built) is type(reference) and repr(built) == repr(reference)
    assert constructor_args(built) == constructor_args(reference)
    built.load_state_dict(reference.state_dict())
    x = torch.randn(2, *shapes[0], generator=torch.Generator().manual_seed(0))
    assert torch.equal(built(x), reference(x))


def test_source_keeps_a_value_whose_type_differs_from_the_default():
    assert ModuleSpec(nn.Linear, (2, 3), {"bias": 1}).source() == "nn.Linear(2, 3, bias=1)"


def test_module_spec_is_frozen_and_hashable_with_dict_kwargs_stored_as_pairs():
    spec = ModuleSpec(nn.Linear, [2, 3], {"bias": False})
    assert spec.args == (2, 3) and spec.kwargs == (("bias", False),)
    same = ModuleSpec(nn.Linear, (2, 3), (("bias", False),))
    assert spec == same and hash(spec) == hash(same)
    with pytest.raises(AttributeError):
        spec.cls = nn.Conv2d


def test_module_spec_turns_list_pairs_into_tuples():
    conv = {**defaults(OPS["conv"]), "out": 4, "kernel": [3, 5], "stride": [2, 1], "padding": [1, 2]}
    spec = module_spec("conv", conv, [(3, 9, 9)])
    assert dict(spec.kwargs)["kernel_size"] == (3, 5) and dict(spec.kwargs)["padding"] == (1, 2)


# module attribute ← op arg, for args that change behaviour but neither shapes nor parameter counts
PASSED_THROUGH = {
    "batchnorm": {"eps": "eps", "momentum": "momentum"},
    "layernorm": {"eps": "eps"},
    "groupnorm": {"eps": "eps"},
    "lrn": {"size": "size", "alpha": "alpha", "beta": "beta", "k": "k"},
    "leaky_relu": {"negative_slope": "slope"},
    "gelu": {"approximate": "approximate"},
    "dropout": {"p": "p"},
    "stochastic_depth": {"p": "p", "mode": "mode"},
    "avgpool": {"count_include_pad": "count_include_pad", "ceil_mode": "ceil_mode"},
    "maxpool": {"ceil_mode": "ceil_mode"},
}


@pytest.mark.parametrize("op,args,shapes", [c for c in MODULE_CASES if c.values[0] in PASSED_THROUGH])
def test_behavioural_args_reach_the_module(op, args, shapes):
    module = module_spec(op, args, shapes).build()
    for attribute, arg in PASSED_THROUGH[op].items():
        assert getattr(module, attribute) == args[arg], attribute


def test_extra_sources_is_empty_for_torch_classes_only():
    assert extra_sources([nn.Conv2d, nn.BatchNorm2d]) == ""


def test_extra_sources_runs_with_only_torch_imported_and_matches_the_real_class():
    text = extra_sources([FormulaBatchNorm, nn.Conv2d, FormulaBatchNorm])
    assert text.count("class FormulaBatchNorm(") == 1 and "class Conv2d" not in text
    namespace = {}
    exec("import torch\nfrom torch import nn\n" + text, namespace)
    copy, real = namespace["FormulaBatchNorm"](4, 4), FormulaBatchNorm(4, 4)
    x = torch.randn(5, 4, 3, 3)
    assert torch.equal(copy(x), real(x)) and torch.equal(copy.running_var, real.running_var)
    copy.eval(), real.eval()
    assert torch.equal(copy(x), real(x))


def test_concat_and_add_functions_compute_cat_on_channels_and_sum():
    a, b, c = torch.randn(2, 3, 4, 4), torch.randn(2, 5, 4, 4), torch.randn(2, 3, 4, 4)
    assert torch.equal(OPS["concat"].function()([a, b]), torch.cat([a, b], dim=1))
    assert torch.equal(OPS["add"].function()([a, c, a]), (a + c) + a)


def test_mul_is_pytorchs_broadcasting_product_and_refuses_what_pytorch_refuses():
    a, b, c = torch.randn(2, 3, 4, 5), torch.randn(2, 3, 1, 1), torch.randn(2, 1, 4, 1)
    assert torch.equal(OPS["mul"].function()([a, b, c]), (a * b) * c)
    assert OPS["mul"].shape({}, [(3, 1, 5), (1, 4, 1)]) == (3, 4, 5)
    for shapes in ([(3, 4, 4), (2, 1, 1)], [(3, 4, 4), (3, 1, 1), (3, 2, 1)]):
        with pytest.raises(RuntimeError):
            functools.reduce(operator.mul, [torch.zeros(2, *s) for s in shapes])
        with pytest.raises(ShapeError, match="dimension 0 is 3 vs 2|dimension 1 is 4 vs 1 vs 2") as caught:
            OPS["mul"].shape({}, shapes)
        assert caught.value.expected and caught.value.found and caught.value.hint


def test_mul_refuses_inputs_of_different_ranks_that_pytorch_would_align_with_the_batch():
    # [C, H, W] × [W]: PyTorch accepts it batched (the batch meets H when H equals the batch size), which is
    # never what was meant; the non-batch shapes must have one rank.
    with pytest.raises(ShapeError, match="differ in rank") as caught:
        OPS["mul"].shape({}, [(3, 4, 4), (4,)])
    assert "[C, 1, 1]" in caught.value.hint


def test_add_stays_strict_where_mul_broadcasts():
    with pytest.raises(ShapeError, match="branch shapes differ"):
        OPS["add"].shape({}, [(3, 4, 4), (3, 1, 1)])


def test_merge_calls_name_torch_cat_and_operator_add():
    concat, add, mul = OPS["concat"].function(), OPS["add"].function(), OPS["mul"].function()
    assert (concat.target, concat.layout) == (torch.cat, "list_dim")
    assert (add.target, add.layout) == (operator.add, "fold")
    assert (mul.target, mul.layout) == (operator.mul, "fold")


def test_emit_merge_builds_fx_nodes_that_read_like_hand_written_code():
    graph = torch.fx.Graph()
    a, b, c = (graph.placeholder(name) for name in "abc")
    joined = OPS["concat"].function().emit(graph, [a, b])
    summed = OPS["add"].function().emit(graph, [a, c, a])
    graph.output((joined, summed))
    module = torch.fx.GraphModule(nn.Module(), graph)
    assert "torch.cat([a, b], 1)" in module.code and "a + c" in module.code
    assert [n.target for n in graph.nodes if n.op == "call_function"] == [torch.cat, operator.add, operator.add]
    x, y, z = torch.randn(2, 3, 4, 4), torch.randn(2, 2, 4, 4), torch.randn(2, 3, 4, 4)
    cat_out, sum_out = module(x, y, z)
    assert torch.equal(cat_out, torch.cat([x, y], 1)) and torch.equal(sum_out, x + z + x)


# ------------------------------------------------------------------------------------- FormulaBatchNorm

TORCH_BN = {2: nn.BatchNorm1d, 4: nn.BatchNorm2d}
SHAPES = {2: (8, 5), 4: (4, 3, 5, 6)}


def bn_pair(num_dims, **kwargs):
    """A FormulaBatchNorm and the matching nn.BatchNorm, float64, with equal non-trivial γ and β."""
    torch.manual_seed(1)
    formula, reference = FormulaBatchNorm(SHAPES[num_dims][1], num_dims, **kwargs), TORCH_BN[num_dims](
        SHAPES[num_dims][1], **kwargs)
    formula, reference = formula.double(), reference.double()
    if formula.affine:
        with torch.no_grad():
            for name in ("weight", "bias"):
                value = torch.randn(SHAPES[num_dims][1], dtype=torch.float64)
                getattr(formula, name).copy_(value)
                getattr(reference, name).copy_(value)
    return formula, reference


def batch(num_dims, seed=0):
    torch.manual_seed(seed)
    return torch.randn(*SHAPES[num_dims], dtype=torch.float64) * 3 + 1


def elements_per_feature(num_dims):
    shape = SHAPES[num_dims]
    return shape[0] * math.prod(shape[2:])


@pytest.mark.parametrize("num_dims", [2, 4])
@pytest.mark.parametrize("kwargs", [{}, {"affine": False}, {"eps": 1e-3, "momentum": 0.3}], ids=str)
def test_formula_batchnorm_training_output_and_gradients_match_pytorch(num_dims, kwargs):
    formula, reference = bn_pair(num_dims, **kwargs)
    x1 = batch(num_dims).requires_grad_()
    x2 = x1.detach().clone().requires_grad_()
    y1, y2 = formula(x1), reference(x2)
    torch.testing.assert_close(y1, y2, atol=1e-6, rtol=0)
    upstream = torch.randn_like(y1)
    (y1 * upstream).sum().backward()
    (y2 * upstream).sum().backward()
    torch.testing.assert_close(x1.grad, x2.grad, atol=1e-6, rtol=0)
    for name in ("weight", "bias") if formula.affine else ():
        torch.testing.assert_close(getattr(formula, name).grad, getattr(reference, name).grad, atol=1e-6, rtol=0)


@pytest.mark.parametrize("num_dims", [2, 4])
def test_formula_batchnorm_running_mean_matches_pytorch_over_several_steps(num_dims):
    formula, reference = bn_pair(num_dims)
    for step in range(5):
        x = batch(num_dims, seed=step)
        formula(x), reference(x)
    torch.testing.assert_close(formula.running_mean, reference.running_mean, atol=1e-12, rtol=0)


@pytest.mark.parametrize("num_dims", [2, 4])
def test_formula_batchnorm_stores_biased_variance_where_pytorch_stores_unbiased(num_dims):
    formula, reference = bn_pair(num_dims)
    x = batch(num_dims)
    formula(x), reference(x)
    dims = (0,) if num_dims == 2 else (0, 2, 3)
    biased, unbiased = x.var(dim=dims, unbiased=False), x.var(dim=dims, unbiased=True)
    torch.testing.assert_close(formula.running_var, 0.9 * 1 + 0.1 * biased, atol=1e-12, rtol=0)
    torch.testing.assert_close(reference.running_var, 0.9 * 1 + 0.1 * unbiased, atol=1e-12, rtol=0)
    assert not torch.allclose(formula.running_var, reference.running_var)


@pytest.mark.parametrize("num_dims", [2, 4])
def test_formula_batchnorm_running_var_differs_from_pytorch_only_by_the_per_step_factor(num_dims):
    # Each step PyTorch adds momentum·σ²·N/(N−1) where this layer adds momentum·σ² (N elements per feature).
    formula, reference = bn_pair(num_dims, momentum=0.25)
    n = elements_per_feature(num_dims)
    dims = (0,) if num_dims == 2 else (0, 2, 3)
    expected = torch.ones(SHAPES[num_dims][1], dtype=torch.float64)
    for step in range(4):
        x = batch(num_dims, seed=step)
        formula(x), reference(x)
        expected = 0.75 * expected + 0.25 * x.var(dim=dims, unbiased=False)
    torch.testing.assert_close(formula.running_var, expected, atol=1e-12, rtol=0)
    rescaled = 0.75 ** 4 + (reference.running_var - 0.75 ** 4) * (n - 1) / n  # undo N/(N−1) on the batch terms
    torch.testing.assert_close(formula.running_var, rescaled, atol=1e-12, rtol=0)


@pytest.mark.parametrize("num_dims", [2, 4])
def test_formula_batchnorm_eval_output_matches_pytorch_given_the_same_statistics(num_dims):
    formula, reference = bn_pair(num_dims)
    for step in range(3):
        formula(batch(num_dims, seed=step))
    reference.load_state_dict(formula.state_dict())  # fills in num_batches_tracked
    formula.eval(), reference.eval()
    x = batch(num_dims, seed=9)
    torch.testing.assert_close(formula(x), reference(x), atol=1e-6, rtol=0)
    before = formula.running_mean.clone()
    formula(x)
    assert torch.equal(formula.running_mean, before)  # eval leaves the statistics alone


def test_formula_batchnorm_state_dict_names_match_nn_batchnorm():
    assert list(FormulaBatchNorm(3, 4).state_dict()) == ["weight", "bias", "running_mean", "running_var"]
    assert list(FormulaBatchNorm(3, 2, affine=False).state_dict()) == ["running_mean", "running_var"]
    state = FormulaBatchNorm(3, 4).state_dict()
    assert torch.equal(state["weight"], torch.ones(3)) and torch.equal(state["bias"], torch.zeros(3))
    assert torch.equal(state["running_mean"], torch.zeros(3)) and torch.equal(state["running_var"], torch.ones(3))


def test_formula_batchnorm_rejects_a_rank_other_than_2_or_4():
    with pytest.raises(ValueError, match="num_dims"):
        FormulaBatchNorm(3, 3)


def test_formula_batchnorm_handles_channels_last_inputs():
    formula, reference = bn_pair(4)
    x = batch(4).to(memory_format=torch.channels_last)
    y = formula(x)
    torch.testing.assert_close(y, reference(x), atol=1e-6, rtol=0)
    assert y.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(formula.running_mean, reference.running_mean, atol=1e-12, rtol=0)


@pytest.mark.parametrize("num_dims", [2, 4])
def test_formula_batchnorm_traces_with_torch_fx_and_still_updates_its_statistics(num_dims):
    formula, reference = bn_pair(num_dims)
    traced = torch.fx.symbolic_trace(formula)  # shares parameters and buffers with `formula`
    x = batch(num_dims).requires_grad_()
    y = traced(x)
    torch.testing.assert_close(y, reference(x), atol=1e-6, rtol=0)
    y.sum().backward()
    torch.testing.assert_close(traced.running_mean, reference.running_mean, atol=1e-12, rtol=0)
    assert not traced.running_mean.requires_grad and not traced.running_var.requires_grad
    assert torch.fx.symbolic_trace(formula.eval())(x).shape == x.shape


@pytest.mark.parametrize("num_dims", [2, 4])
def test_formula_batchnorm_traces_with_torch_jit(num_dims):
    formula, reference = bn_pair(num_dims)
    x = batch(num_dims)
    traced = torch.jit.trace(formula.eval(), x)
    reference.load_state_dict(formula.state_dict())
    torch.testing.assert_close(traced(x), reference.eval()(x), atol=1e-6, rtol=0)
    fresh, fresh_reference = bn_pair(num_dims)
    traced_train = torch.jit.trace(fresh, x, check_trace=False)  # tracing ran one update; compare after two
    traced_train(x), fresh_reference(x), fresh_reference(x)
    torch.testing.assert_close(fresh.running_mean, fresh_reference.running_mean, atol=1e-12, rtol=0)


def test_formula_batchnorm_runs_under_torch_compile():
    formula, reference = bn_pair(4)
    compiled = torch.compile(formula, backend="aot_eager", fullgraph=True)
    for step in range(2):
        x = batch(4, seed=step)
        torch.testing.assert_close(compiled(x), reference(x), atol=1e-6, rtol=0)
    torch.testing.assert_close(formula.running_mean, reference.running_mean, atol=1e-12, rtol=0)


@pytest.mark.slow
def test_formula_batchnorm_runs_under_torch_compile_with_inductor():
    formula, reference = bn_pair(4)
    compiled = torch.compile(formula, fullgraph=True)
    x = batch(4)
    torch.testing.assert_close(compiled(x), reference(x), atol=1e-6, rtol=0)
    torch.testing.assert_close(formula.running_mean, reference.running_mean, atol=1e-12, rtol=0)
