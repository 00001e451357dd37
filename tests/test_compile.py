"""Compilation (netspec.backends.fx): the GraphModule's names, its fitness for PyTorch's tools, and the standalone
Python file that reproduces it with nothing but torch."""

from __future__ import annotations

import ast
import importlib.util
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn import functional as F

import netspec
from netspec.backends.fx import class_name
from netspec.backends.pysource import to_python_source


from conftest import SPECS, all_specs, run_cli, spec_params

# A small network with every kind of node compile emits: convs, batchnorm, pools, concat, add (with a shortcut
# from the block input, after stochastic depth), mul (a squeeze-excitation), flatten, dropout and linear.
MIXED = """netspec: 1
name: mixed
input: [3, 16, 16]
blocks:
  res:
    seq:
      - {name: a, conv: {out: 8, kernel: 3, padding: 1, groups: 2}}
      - {name: sd, stochastic_depth: {p: 0.5}}
      - add: {from: [sd, input]}
body:
  - {name: stem, conv: {out: 8, kernel: 3, padding: 1}}
  - {name: bn, batchnorm: {}}
  - relu
  - name: mix
    concat:
      - [conv: {out: 4, kernel: 1}]
      - [maxpool: {kernel: 3, stride: 1, padding: 1}, conv: {out: 4, kernel: 1}]
  - {name: res, res: {}}
  - {name: se, mul: [[], [global_avgpool, conv: {out: 8, kernel: 1}, hardsigmoid]]}
  - hardswish
  - avgpool: {kernel: 2}
  - global_avgpool
  - flatten
  - dropout: {p: 0.1}
  - {name: fc, linear: {out: 5}}
"""


@pytest.fixture(scope="module")
def mixed_spec(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("mixed") / "mixed.yaml"
    path.write_text(MIXED)
    return path


@pytest.fixture(scope="module")
def mixed(mixed_spec):
    torch.manual_seed(0)
    return netspec.load(mixed_spec).eval()


@pytest.fixture(scope="module")
def batch():
    return torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))


# ── names and modules ─────────────────────────────────────────────────────────────────────────────────────────

def test_submodules_sit_at_the_graphs_dotted_names(mixed, mixed_spec):
    shaped = netspec.shaped_network(mixed_spec)
    called = {node.target for node in torch.fx.symbolic_trace(mixed).graph.nodes if node.op == "call_module"}
    # Merges are call_function nodes; symbolic_trace traces through netspec's own StochasticDepth (no torch.nn
    # leaf), which in eval is the identity, and calls every other op's module.
    assert called == {n for n in shaped.nodes if shaped.nodes[n].is_op
                      if shaped.nodes[n].op not in ("concat", "add", "mul", "stochastic_depth")}
    assert {"stem", "bn", "mix.0.0", "mix.1.1", "res.a", "fc"} <= called
    assert {key.rsplit(".", 1)[0] for key in mixed.state_dict()} == {"stem", "bn", "mix.0.0", "mix.1.1", "res.a", "se.1.1",
                                                                   "fc"}


@pytest.mark.parametrize("path", spec_params())
def test_state_dict_keys_are_the_specs_dotted_names_with_no_lazy_modules(path):
    shaped = netspec.shaped_network(path)
    with torch.device("meta"):
        model = netspec.load(path)
    assert not any(isinstance(m, nn.modules.lazy.LazyModuleMixin) for m in model.modules())
    nodes = {n.name for n in shaped.op_nodes()}
    # A module's tensor is NODE.weight; a learnable tensor (`parameter`) is the node itself.
    assert all(key.rsplit(".", 1)[0] in nodes or shaped.nodes[key].op == "parameter" for key in model.state_dict())
    assert type(model).__name__ == class_name(shaped.name)


# ── PyTorch's tools ───────────────────────────────────────────────────────────────────────────────────────────

def test_the_module_round_trips_through_its_state_dict(mixed_spec, mixed, batch):
    buffer = io.BytesIO()
    torch.save(mixed.state_dict(), buffer)
    buffer.seek(0)
    fresh = netspec.load(mixed_spec).eval()
    assert not torch.equal(fresh(batch), mixed(batch))        # fresh weights differ …
    fresh.load_state_dict(torch.load(buffer, weights_only=True))
    assert torch.equal(fresh(batch), mixed(batch))            # … until the saved ones are loaded


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_torch_jit_trace_gives_the_same_outputs(mixed, batch):
    traced = torch.jit.trace(mixed, batch)
    assert torch.equal(traced(batch), mixed(batch))


def test_torch_compile_gives_the_same_outputs(mixed, batch):
    compiled = torch.compile(mixed, backend="aot_eager")
    torch.testing.assert_close(compiled(batch), mixed(batch))


def test_channels_last_gives_the_same_outputs_as_contiguous(mixed_spec, mixed, batch):
    other = netspec.load(mixed_spec).eval()
    other.load_state_dict(mixed.state_dict())
    other = other.to(memory_format=torch.channels_last)
    torch.testing.assert_close(other(batch.to(memory_format=torch.channels_last)), mixed(batch))


def test_the_module_trains_a_step(mixed_spec, batch):
    model = netspec.load(mixed_spec).train()
    loss = model(batch).square().mean()
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())


def test_onnx_export_writes_a_checked_model(mixed, batch, tmp_path):
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    torch.onnx.export(mixed, (batch,), str(tmp_path / "mixed.onnx"))
    onnx.checker.check_model(onnx.load(str(tmp_path / "mixed.onnx")))


# ── the standalone Python file ────────────────────────────────────────────────────────────────────────────────

REAL_FORWARD_MACS = 3e8      # above this or REAL_FORWARD_PARAMS, only meta tensors (keys, shapes): stay fast
REAL_FORWARD_PARAMS = 15e6


def import_file(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def emitted_class(path: Path, folder: Path):
    shaped = netspec.shaped_network(path)
    stem = "emitted_" + str(path.relative_to(SPECS).with_suffix("")).replace("/", "_")
    target = folder / f"{stem}.py"
    target.write_text(to_python_source(shaped), encoding="utf-8")
    return shaped, getattr(import_file(target, stem), class_name(shaped.name))


@pytest.mark.parametrize("path", spec_params())
def test_the_emitted_file_has_the_same_state_dict_and_identical_outputs(path, tmp_path):
    shaped, cls = emitted_class(path, tmp_path)
    small = shaped.macs < REAL_FORWARD_MACS and shaped.param_count < REAL_FORWARD_PARAMS
    with torch.device("cpu" if small else "meta"):
        torch.manual_seed(0)
        ours, theirs = netspec.load(path).eval(), cls().eval()
    assert list(theirs.state_dict()) == list(ours.state_dict())
    assert {k: v.shape for k, v in theirs.state_dict().items()} == {k: v.shape for k, v in ours.state_dict().items()}
    assert ([(name, isinstance(m, nn.Sequential)) for name, m in theirs.named_modules()]
            == [(name, isinstance(m, nn.Sequential)) for name, m in ours.named_modules()])   # the same block tree
    if not small:
        return
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(1, *shaped.network.input_shape, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert (theirs(x) - ours(x)).abs().max().item() == 0.0


def test_the_emitted_file_has_one_class_per_distinct_block_and_sequentials_for_chains():
    googlenet = netspec.emit_python(SPECS / "googlenet.yaml")
    assert googlenet.count("class Inception(Block):") == 1 and googlenet.count("Inception({") == 9
    assert "self.b1 = nn.Sequential(" in googlenet and "Module()" not in googlenet
    resnet = netspec.emit_python(SPECS / "imagenet" / "resnet18.yaml")
    assert resnet.startswith('"""resnet18: generated by netspec from')
    assert [line for line in resnet.splitlines() if line.startswith("class ")] == [
        "class Block(nn.Module):", "class Basic(Block):", "class Basic2(Block):", "class Resnet18(nn.Module):"]
    assert resnet.count("Basic2({") == 3 and resnet.count("Basic({") == 5  # the first block of layers 2-4 projects


def test_the_emitted_file_of_a_network_with_every_merge_gives_identical_outputs(mixed_spec, mixed, batch, tmp_path):
    target = tmp_path / "mixed_emitted.py"
    target.write_text(netspec.emit_python(mixed_spec), encoding="utf-8")
    theirs = import_file(target, "mixed_emitted").Mixed().eval()
    theirs.load_state_dict(mixed.state_dict())
    with torch.no_grad():
        assert (theirs(batch) - mixed(batch)).abs().max().item() == 0.0


def test_the_emitted_file_trains_like_the_compiled_model_under_one_seed(mixed_spec, mixed, batch, tmp_path):
    # Dropout and stochastic depth draw the same masks in the emitted file (which carries its own copy of
    # netspec's StochasticDepth) as in the compiled model.
    target = tmp_path / "mixed_emitted.py"
    target.write_text(netspec.emit_python(mixed_spec), encoding="utf-8")
    theirs = import_file(target, "mixed_emitted_train").Mixed()
    theirs.load_state_dict(mixed.state_dict())
    outputs = []
    for model, seed in ((theirs, 0), (mixed, 0), (mixed, 1)):
        torch.manual_seed(seed)
        outputs.append(model.train()(torch.cat([batch] * 8)))
    mixed.eval()
    assert torch.equal(outputs[0], outputs[1]) and not torch.equal(outputs[1], outputs[2])


# A decoder: a strided conv down, a transposed conv back up (a ReLU after each, made in place), then three ways of
# upsampling side by side.
DECODER = """netspec: 1
name: decoder
input: [3, 8, 8]
body:
  - {name: down, conv: {out: 8, kernel: 3, stride: 2, padding: 1}}
  - relu
  - {name: up, conv_transpose: {out: 4, kernel: 3, stride: 2, padding: 1, output_padding: 1, groups: 2}}
  - relu
  - name: mix
    concat:
      - [upsample: {scale: 2, mode: bilinear}]
      - [upsample: {size: [16, 16]}]
      - [upsample: {scale: [2, 2], mode: bilinear, align_corners: true}]
"""


def test_a_network_with_transposed_convs_and_upsampling_trains_and_its_emitted_file_gives_identical_outputs(
        tmp_path):
    spec = tmp_path / "decoder.yaml"
    spec.write_text(DECODER)
    assert netspec.shaped_network(spec).output_shape == (12, 16, 16)
    torch.manual_seed(0)
    model = netspec.load(spec)
    assert isinstance(model.up, nn.ConvTranspose2d) and model.get_submodule("3").inplace
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    model(x).square().mean().backward()              # the in-place ReLU after `up` leaves backward intact
    assert all(p.grad is not None for p in model.parameters())
    target = tmp_path / "decoder_emitted.py"
    target.write_text(netspec.emit_python(spec), encoding="utf-8")
    emitted = import_file(target, "decoder_emitted").Decoder()
    emitted.load_state_dict(model.state_dict())
    with torch.no_grad():
        assert torch.equal(emitted(x), model(x))


def test_a_relu_works_in_place_only_on_a_fresh_tensor_that_nothing_else_reads(tmp_path):
    spec = tmp_path / "inplace.yaml"
    spec.write_text("netspec: 1\nname: inplace\ninput: [3, 6, 6]\nbody:\n"
                    "  - relu\n"                                  # 0: the caller's input
                    "  - conv: {out: 4, kernel: 3, padding: 1}\n"
                    "  - relu\n"                                  # 2: a conv's output, read once
                    "  - batchnorm: {impl: formula}\n"
                    "  - relu\n"                                  # 4: the formula BatchNorm is not fresh
                    "  - conv: {out: 4, kernel: 1}\n"
                    "  - {name: r, add: [[relu], []]}\n"          # r.0.0: the shortcut reads the conv again
                    "  - relu\n"                                  # 7: an add's output
                    "  - flatten\n"
                    "  - relu\n")                                 # 9: flatten gives a view
    model = netspec.load(spec)
    relus = {name: module.inplace for name, module in model.named_modules() if isinstance(module, nn.ReLU)}
    assert relus == {"0": False, "2": True, "4": False, "r.0.0": False, "7": True, "9": False}
    model(torch.randn(2, 3, 6, 6)).sum().backward()  # autograd would refuse a wrong in-place ReLU


def test_emitted_files_import_only_torch(tmp_path):
    """Every spec's file, imported in an isolated interpreter (`-I`: no cwd, no user site) after torch: nothing
    but torch's own modules and the files themselves gets imported, and netspec never."""
    files = []
    for path in all_specs():
        target = tmp_path / f"m{len(files)}.py"
        target.write_text(netspec.emit_python(path), encoding="utf-8")
        files.append(str(target))
    probe = (
        "import importlib.util, json, sys\n"
        "import torch\n"
        "before = set(sys.modules)\n"
        f"for i, file in enumerate({files!r}):\n"
        "    spec = importlib.util.spec_from_file_location(f'm{i}', file)\n"
        "    spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
        "new = sorted(m for m in set(sys.modules) - before if m.split('.')[0] != 'torch')\n"
        "print(json.dumps({'new': new, 'netspec': any(m.startswith('netspec') for m in sys.modules)}))\n")
    done = subprocess.run([sys.executable, "-I", "-c", probe], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"new": [], "netspec": False}


@pytest.mark.parametrize("path", spec_params())
def test_the_emitted_file_imports_nothing_but_torch(path):
    tree = ast.parse(netspec.emit_python(path))
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported <= {"torch"}


def test_the_course_batchnorm_is_emitted_with_its_source(tmp_path):
    source = netspec.emit_python(SPECS / "bn_lenet.yaml", bn_impl="formula")
    assert "class FormulaBatchNorm(nn.Module)" in source
    target = tmp_path / "bn_formula.py"
    target.write_text(source)
    model_cls = getattr(import_file(target, "bn_formula"), "BnLenet")
    torch.manual_seed(0)
    ours = netspec.load(SPECS / "bn_lenet.yaml", bn_impl="formula")
    theirs = model_cls()
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(4, 1, 28, 28)
    assert (theirs(x) - ours(x)).abs().max().item() == 0.0     # training mode: batch statistics


# ── the command line ──────────────────────────────────────────────────────────────────────────────────────────

def test_compile_to_a_pt_file_writes_weights_that_load(tmp_path):
    run = run_cli("compile", "lenet", "-o", str(tmp_path / "lenet.pt"))
    assert run.code == 0, run.stderr
    weights = torch.load(tmp_path / "lenet.pt", weights_only=True)
    model = netspec.load("lenet")
    model.load_state_dict(weights)
    assert set(weights) == set(model.state_dict())


def test_compile_refuses_an_unknown_output_suffix(tmp_path):
    run = run_cli("compile", "lenet", "-o", str(tmp_path / "lenet.onnx"))
    assert run.code == 2 and len(run.stderr.strip().splitlines()) == 1 and "Traceback" not in run.stderr


def test_a_merge_may_take_the_same_node_twice(tmp_path):
    """`concat: {from: [b, b]}` once compiled to torch.cat([b]) — a DiGraph keeps one edge per pair — and
    `add: {from: [a, a]}` vanished; the node's `inputs` attribute keeps both places."""
    spec = tmp_path / "twice.yaml"
    spec.write_text("netspec: 1\nname: twice\ninput: [4]\nbody:\n  - {name: a, linear: {out: 4}}\n"
                    "  - add: {from: [a, a]}\n  - {name: b, linear: {out: 3}}\n  - concat: {from: [b, b, a]}\n")
    torch.manual_seed(0)
    model = netspec.load(spec).eval()
    x = torch.randn(2, 4)
    a = model.a(x)
    b = model.b(a + a)
    with torch.no_grad():
        assert torch.equal(model(x), torch.cat([b, b, a], 1))
    assert netspec.shaped_network(spec).output_shape == (10,)
    target = tmp_path / "twice_emitted.py"
    target.write_text(netspec.emit_python(spec), encoding="utf-8")
    emitted = import_file(target, "twice_emitted").Twice().eval()
    emitted.load_state_dict(model.state_dict())
    with torch.no_grad():
        assert torch.equal(emitted(x), model(x))


# ── the U-Net example against hand-written PyTorch ────────────────────────────────────────────────────────────

def double_conv(inp: int, out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(inp, out, 3, padding=1, bias=False), nn.BatchNorm2d(out), nn.ReLU(),
                         nn.Conv2d(out, out, 3, padding=1, bias=False), nn.BatchNorm2d(out), nn.ReLU())


class HandWrittenUNet(nn.Module):
    """specs/examples/unet.yaml as one would write it in PyTorch; modules registered in the spec's order, so the
    two state_dicts line up tensor by tensor."""

    def __init__(self, in_channels=1, classes=2, width=16, depth=3):
        super().__init__()
        self.depth, channels = depth, in_channels
        for i in range(depth):
            self.add_module(f"enc{i}", double_conv(channels, width * 2 ** i))
            channels = width * 2 ** i
        self.bottom = double_conv(channels, width * 2 ** depth)
        channels = width * 2 ** depth
        for i in range(depth):
            out = width * 2 ** (depth - 1 - i)
            self.add_module(f"up{i}", nn.ConvTranspose2d(channels, out, 2, stride=2))
            self.add_module(f"dec{i}", double_conv(2 * out, out))
            channels = out
        self.head = nn.Conv2d(channels, classes, 1)

    def forward(self, x):
        skips = []
        for i in range(self.depth):
            x = getattr(self, f"enc{i}")(x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        x = self.bottom(x)
        for i in range(self.depth):
            x = getattr(self, f"dec{i}")(torch.cat([getattr(self, f"up{i}")(x), skips[-1 - i]], 1))
        return self.head(x)


@pytest.mark.parametrize("depth", [3, 2])
def test_the_unet_example_is_the_hand_written_unet(depth):
    ours = netspec.load(SPECS / "examples" / "unet.yaml", depth=depth).eval()
    theirs = HandWrittenUNet(depth=depth).eval()
    mine, reference = ours.state_dict(), theirs.state_dict()
    assert [v.shape for v in mine.values()] == [v.shape for v in reference.values()]
    assert [k.rsplit(".", 1)[-1] for k in mine] == [k.rsplit(".", 1)[-1] for k in reference]
    ours.load_state_dict(dict(zip(mine, reference.values())))
    x = torch.randn(2, 1, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(ours(x), theirs(x))
