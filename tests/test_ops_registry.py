"""Every op entry, walked generically on its own example: each part is present and agrees with PyTorch.

Nothing here names an op: a new entry is checked the moment it is added.  What a particular op computes
(against PyTorch on many arguments) is in test_torch_ops.py and test_shapes.py.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest
import torch
from torch import nn

from netspec.ops import FAMILIES, OPS, Example, Family, Op, Param, assemble, defaults
from netspec.ops.base import PARAM_TYPES, same_shape
from netspec.ops.formula_bn import FormulaBatchNorm
from netspec.ops.torch_build import MergeCall, ModuleSpec, extra_sources

ENTRIES = [pytest.param(op, id=name) for name, op in OPS.items()]
BATCH = 2


def example_args(op: Op) -> dict:
    return {**defaults(op), **op.example.args}


def example_inputs(op: Op) -> list[tuple[int, ...]]:
    return [tuple(shape) for shape in op.example.inputs]


@pytest.mark.parametrize("op", ENTRIES)
def test_the_entry_describes_itself(op):
    assert op.doc.strip() and op.family in FAMILIES
    for name, param in op.params.items():
        assert param.doc.strip() and param.type in PARAM_TYPES, name
        assert not (param.required and param.default is not None), name
    assert set(op.example.args) <= set(op.params), "the example sets a param the op does not have"
    assert all(p in op.example.args for p, param in op.params.items() if param.required), "a required param is unset"
    assert op.min_inputs >= 1 and (op.max_inputs == 0 or op.max_inputs >= op.min_inputs)
    count = len(op.example.inputs)
    if op.reads_input:
        assert op.min_inputs <= count and (op.max_inputs == 0 or count <= op.max_inputs), "the example's arity"
    else:
        assert count == 0, "a parameter reads no input"
    assert sum(b is not None for b in (op.module, op.function, op.parameter)) == 1
    assert isinstance(op.label(example_args(op)), str) and op.label(example_args(op)).strip()


@pytest.mark.parametrize("op", ENTRIES)
def test_the_module_or_function_gives_the_inferred_shape_params_and_macs(op):
    args, ins = example_args(op), example_inputs(op)
    shape = op.shape(args, ins)
    assert isinstance(shape, tuple) and all(isinstance(d, int) and d > 0 for d in shape)
    assert op.macs(args, ins, shape) >= 0 and op.count_params(args, ins) >= 0
    torch.manual_seed(0)
    inputs = [torch.randn(BATCH, *s) for s in ins]
    if op.parameter is not None:  # one tensor for the whole batch: its shape has no batch dimension
        tensor = op.parameter(args).build()
        assert isinstance(tensor, nn.Parameter) and tuple(tensor.shape) == shape
        assert tensor.numel() == op.count_params(args, ins) and op.macs(args, ins, shape) == 0
        return
    if op.function is not None:
        out = op.function()(inputs)
        assert op.count_params(args, ins) == 0
    else:
        module = op.module(args, ins).build()
        out = module(*inputs)
        assert sum(p.numel() for p in module.parameters()) == op.count_params(args, ins)
        assert getattr(module, "inplace", False) is False, "modules are built out of place (fx decides)"
    if op.outputs is not None:  # several outputs: a tuple of that many parts, each of the inferred shape
        assert isinstance(out, tuple) and len(out) == op.outputs(args)
        assert all(tuple(part.shape) == (BATCH, *shape) for part in out)
        return
    assert tuple(out.shape) == (BATCH, *shape)


@pytest.mark.parametrize("op", [p for p in ENTRIES if p.values[0].module is not None])
def test_the_emitted_source_builds_the_same_module(op):
    spec = op.module(example_args(op), example_inputs(op))
    assert isinstance(spec, ModuleSpec)
    namespace = {"torch": torch, "nn": nn}
    exec("import torch\nfrom torch import nn\n" + extra_sources([spec.cls]), namespace)
    emitted, built = eval(spec.source(), namespace), spec.build()
    assert type(emitted).__name__ == type(built).__name__ and repr(emitted) == repr(built)
    assert {k: v.shape for k, v in emitted.state_dict().items()} == {k: v.shape for k, v in built.state_dict().items()}


@pytest.mark.parametrize("op", [p for p in ENTRIES if p.values[0].parameter is not None])
def test_the_emitted_source_of_a_learnable_tensor_builds_the_same_tensor(op):
    spec = op.parameter(example_args(op))
    emitted, built = eval(spec.source(), {"torch": torch, "nn": nn}), spec.build()
    assert isinstance(emitted, nn.Parameter) and torch.equal(emitted, built) and emitted.requires_grad


@pytest.mark.parametrize("op", [p for p in ENTRIES if p.values[0].function is not None])
def test_a_merge_function_emits_fx_nodes_that_compute_what_it_computes_eagerly(op):
    graph = torch.fx.Graph()
    nodes = [graph.placeholder(f"x{i}") for i in range(len(op.example.inputs))]
    graph.output(op.function().emit(graph, nodes))
    module = torch.fx.GraphModule(nn.Module(), graph)
    inputs = [torch.randn(BATCH, *s) for s in example_inputs(op)]
    assert torch.equal(module(*inputs), op.function()(inputs))


@pytest.mark.parametrize("op", ENTRIES)
def test_a_fresh_output_is_a_new_tensor_and_an_in_place_module_overwrites_its_input(op):
    args, ins = example_args(op), example_inputs(op)
    inputs = [torch.randn(BATCH, *s) for s in ins]
    if op.parameter is not None:
        assert not op.is_fresh(args) and not op.in_place
        return
    if op.is_fresh(args):
        out = op.function()(inputs) if op.function else op.module(args, ins).build()(*inputs)
        assert all(out.untyped_storage().data_ptr() != x.untyped_storage().data_ptr() for x in inputs)
    if op.in_place:
        spec = op.module(args, ins)
        module = dataclasses.replace(spec, kwargs=spec.kwargs + (("inplace", True),)).build()
        assert module(inputs[0]) is inputs[0]


@pytest.mark.parametrize("op", [p for p in ENTRIES if p.values[0].train_only])
def test_a_train_only_op_is_the_identity_in_eval_and_acts_in_training(op):
    args, ins = example_args(op), example_inputs(op)
    assert op.shape(args, ins) == ins[0] and op.count_params(args, ins) == 0 and op.macs(args, ins, ins[0]) == 0
    module = op.module(args, ins).build()
    x = torch.randn(64, *ins[0])
    assert torch.equal(module.eval()(x), x)
    torch.manual_seed(0)
    assert not torch.equal(module.train()(x), x), "the example's args must make the op act in training"


def stochastic_depth_by_its_definition(x, p: float, mode: str, training: bool):
    """torchvision.ops.stochastic_depth as its docstring defines it, where torchvision is not installed: the
    same draws (`bernoulli_` on an `empty` tensor of one entry per example, or one for the batch)."""
    if not training or p == 0:
        return x
    size = [x.shape[0]] + [1] * (x.ndim - 1) if mode == "row" else [1] * x.ndim
    keep = torch.empty(size, dtype=x.dtype).bernoulli_(1 - p)
    return x * (keep / (1 - p))


def test_stochastic_depth_is_torchvisions_draw_for_draw():
    # The one op defined by a library that is no runtime dependency: torchvision's function when it is there,
    # its definition otherwise.  Equal under one seed, in both modes, for p = 0 and in eval.
    try:
        from torchvision.ops import stochastic_depth as reference
    except ImportError:
        reference = stochastic_depth_by_its_definition
    op = OPS["stochastic_depth"]
    x = torch.randn(256, 3, 2, 2)
    for p, mode, training in [(0.3, "row", True), (0.7, "batch", True), (0.0, "row", True), (0.5, "row", False)]:
        module = op.module({"p": p, "mode": mode}, [x.shape[1:]]).build().train(training)
        torch.manual_seed(5)
        got = module(x)
        torch.manual_seed(5)
        assert torch.equal(got, reference(x, p, mode, training)), (p, mode, training)
    y = module.train()(x).flatten(1)  # row mode, p = 0.5: whole examples kept (and doubled) or dropped
    kept = (y == 2 * x.flatten(1)).all(1)
    assert (kept | (y == 0).all(1)).all() and 0.35 < kept.float().mean() < 0.65


def test_families_have_a_style_and_legend_and_every_family_has_ops():
    assert list(FAMILIES) == ["conv", "norm", "activation", "pool", "linear", "merge", "reshape", "regularize",
                              "parameter"]
    assert {op.family for op in OPS.values()} == set(FAMILIES)
    for family in FAMILIES.values():
        assert family.legend and family.fill.startswith("#") and family.border.startswith("#")


def test_the_tables_are_read_only():
    with pytest.raises(TypeError):
        OPS["relu2"] = OPS["relu"]  # type: ignore[index]
    with pytest.raises(TypeError):
        FAMILIES["x"] = FAMILIES["conv"]  # type: ignore[index]


def entry(**changes) -> Op:
    """A valid entry (a made-up activation) with `changes`; constructing it runs the entry's checks."""
    fields = dict(name="twice", doc="2·x.", family="activation", params={}, shape=same_shape,
                  label=lambda a: "twice", example=Example([(3,)]), module=lambda a, i: ModuleSpec("torch.nn.Identity"))
    return Op(**{**fields, **changes})


@pytest.mark.parametrize("changes, message", [
    (dict(module=None), "exactly one of `module`, `function` and `parameter`"),
    (dict(function=lambda: MergeCall(torch.cat, "list_dim")), "exactly one of `module`, `function` and `parameter`"),
    (dict(module=None, parameter=lambda a: None, max_inputs=2), "reads no input"),
    (dict(min_inputs=0), "inputs"),
    (dict(min_inputs=2, max_inputs=1), "inputs"),
    (dict(doc=""), "doc"),
    (dict(params={"k": Param("int", 1)}), "doc"),
    (dict(module=None, function=lambda: MergeCall(torch.add, "fold"), in_place=True), "in place"),
    (dict(train_only=True, fresh_output=True), "train-only"),
    (dict(train_only=True, in_place=True), "train-only"),
], ids=["neither", "both", "parameter-arity", "no-inputs", "max-below-min", "no-doc", "undocumented-param", "in-place-merge",
        "fresh-train-only", "in-place-train-only"])
def test_an_entry_missing_a_part_is_refused_when_it_is_made(changes, message):
    with pytest.raises(ValueError, match=message):
        entry(**changes)


def test_assembly_refuses_a_duplicate_name_an_unknown_family_and_a_non_entry():
    families = FAMILIES.values()
    assert list(assemble(families, [entry()])[1]) == ["twice"]
    with pytest.raises(ValueError, match="declared twice"):
        assemble(families, [entry(), entry()])
    with pytest.raises(ValueError, match="unknown family"):
        assemble(families, [entry(family="shiny")])
    with pytest.raises(ValueError, match="declared twice"):
        assemble([*families, Family("conv", "again", "#000000", "#000000")], [])
    with pytest.raises(TypeError):
        assemble(families, [{"name": "twice"}])


def test_a_merge_call_refuses_an_unknown_layout():
    with pytest.raises(ValueError, match="layout"):
        MergeCall(torch.cat, "zip")


def test_importing_the_op_table_imports_no_torch():
    code = ("import sys, netspec.ops as o; [op.label({**o.defaults(op), **op.example.args}) for op in o.OPS.values()];"
            " assert 'torch' not in sys.modules, sorted(m for m in sys.modules if m.startswith('torch'))")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_formula_batchnorm_is_named_by_its_dotted_path():
    spec = OPS["batchnorm"].module({**defaults(OPS["batchnorm"]), "impl": "formula"}, [(4,)])
    assert spec.cls is FormulaBatchNorm and spec.source() == "FormulaBatchNorm(4, 2)"
