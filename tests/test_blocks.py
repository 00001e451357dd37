"""Blocks are real modules: every container of a spec (template call, named seq, repeat, branch list) is a module
that runs its part of the graph, so that `model.layer1(x)`, hooks on blocks and `print(model)` work as on
hand-written PyTorch, with the flat graph's state_dict keys in the same order."""

from __future__ import annotations

import copy
import dataclasses
import io
import pickle

import pytest
import torch
from torch import fx, nn

import netspec
from netspec.backends.blocks import block_tree
from netspec.backends.fx import BlockModule, forward_code, module_specs, parameter_specs, to_graph_module
from netspec.ir import build_network
from netspec.passes.shapes import infer

from conftest import SPECS, spec_params


def small(spec: str, **params) -> nn.Module:
    torch.manual_seed(0)
    return netspec.load(SPECS / spec, **params).eval()


# ── the tree ──────────────────────────────────────────────────────────────────────────────────────────────────

@pytest.mark.parametrize("path", spec_params())
def test_every_spec_builds_a_tree_in_build_order_with_the_flat_state_dict(path):
    """Depth first, the tree lists the op nodes in build order; the state_dict's keys, in order, are each op
    module's own (built alone, on the reference side), prefixed by its node's name, in node order — but for a
    block's learnable tensors (`parameter` nodes), which PyTorch lists before the block's children."""
    shaped = netspec.shaped_network(path)
    specs = module_specs(shaped)
    tensors = parameter_specs(shaped)
    tree = block_tree(shaped.network, "Net", specs)

    def flatten(container: str) -> list[str]:
        return [name for child in tree[container].children
                for name in (flatten(child) if child in tree else [child])]
    assert flatten("") == [node.name for node in shaped.op_nodes()]

    def keys(container: str) -> list[str]:
        children = tree[container].children
        return [child for child in children if child in tensors] + [
            key for child in children if child not in tensors
            for key in (keys(child) if child in tree else [f"{child}.{k}" for k in specs[child].build().state_dict()]
                        if child in specs else [])]
    with torch.device("meta"):
        expected = keys("")
        model = to_graph_module(shaped)
    assert list(model.state_dict()) == expected


def test_each_container_is_a_sequential_or_a_block_named_after_its_template():
    with torch.device("meta"):
        model = netspec.load(SPECS / "imagenet" / "resnet18.yaml")
    assert type(model).__name__ == "Resnet18" and model.netspec_input_shape == (3, 224, 224)
    assert isinstance(model.layer1, nn.Sequential) and isinstance(model.layer2[0].downsample, nn.Sequential)
    assert isinstance(model.layer1[0], BlockModule) and type(model.layer1[0]).__name__ == "Basic"
    with torch.device("meta"):
        googlenet = netspec.load(SPECS / "googlenet.yaml")
    assert type(googlenet.b3[0]).__name__ == "Inception" and isinstance(googlenet.b3[0].get_submodule("1"), nn.Sequential)


# ── calling a block ───────────────────────────────────────────────────────────────────────────────────────────

def block_io(model: nn.Module, block: str, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The input and output of `block` while the whole model runs on `x` (forward hooks)."""
    seen = {}
    handle = model.get_submodule(block).register_forward_hook(
        lambda module, args, out: seen.update(args=args, out=out))
    with torch.no_grad():
        model(x)
    handle.remove()
    return seen["args"], seen["out"]


@pytest.mark.parametrize("spec, block, size", [("googlenet.yaml", "b3", 32), ("imagenet/resnet18.yaml", "layer1", 32)])
def test_a_block_called_alone_computes_what_it_computes_inside_the_model(spec, block, size):
    model = small(spec, size=size)
    x = torch.randn(2, *model.netspec_input_shape, generator=torch.Generator().manual_seed(1))
    args, out = block_io(model, block, x)
    assert len(args) == 1 and args[0].shape[0] == 2
    with torch.no_grad():
        assert torch.equal(model.get_submodule(block)(*args), out)


def test_the_block_after_is_fed_by_the_block_before():
    model = small("googlenet.yaml", size=32)
    x = torch.randn(2, *model.netspec_input_shape)
    with torch.no_grad():
        assert torch.equal(model.b3(model.b2(model.b1(x))), block_io(model, "b3", x)[1])


def test_a_forward_hook_on_a_block_fires_once_per_forward():
    model = small("imagenet/resnet18.yaml", size=32)
    calls = []
    model.layer1.register_forward_hook(lambda *_: calls.append(1))
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        model(x)
        model(x)
    assert len(calls) == 2


# ── printing, copying, saving ─────────────────────────────────────────────────────────────────────────────────

def test_print_reads_like_torchvision():
    with torch.device("meta"):
        text = str(netspec.load(SPECS / "imagenet" / "resnet18.yaml"))
    assert len(text.splitlines()) < 100
    assert text.startswith("Resnet18(") and "(layer1): Sequential(" in text and "(0): Basic(" in text
    assert "Module(" not in text and "def forward" not in text


def test_compile_prints_the_models_forward_and_each_distinct_blocks_once():
    with torch.device("meta"):
        text = forward_code(netspec.load(SPECS / "imagenet" / "resnet18.yaml"))
    headers = [line for line in text.splitlines() if line.startswith("# ")]
    assert headers == ["# Resnet18: (the model)", "# Basic: layer1.0, layer1.1, layer2.1, layer3.1, layer4.1",
                       "# Basic: layer2.0, layer3.0, layer4.0"]
    assert text.count("def forward(self, x):") == 3 and "downsample = self.downsample(x)" in text


def test_deepcopy_pickle_and_torch_save_keep_a_working_model(forked):
    model = forked[1]
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        expected = model(x)
        copied = copy.deepcopy(model)
        assert torch.equal(copied(x), expected)
        assert type(copied).__name__ == "Chain" and type(copied.pair).__name__ == "Block"
        assert "def forward" not in str(copied)
        assert torch.equal(pickle.loads(pickle.dumps(model))(x), expected)
        buffer = io.BytesIO()
        torch.save(model, buffer)
        buffer.seek(0)
        assert torch.equal(torch.load(buffer, weights_only=False)(x), expected)


# ── blocks with several inputs and outputs ────────────────────────────────────────────────────────────────────

CHAIN = """netspec: 1
name: chain
input: [3, 8, 8]
body:
  - {name: a, conv: {out: 4, kernel: 1}}
  - {name: b, relu: {}}
  - {name: c, conv: {out: 4, kernel: 1}}
  - {name: mix, add: {from: [a, c, b]}}
"""


def renamed(path, names: dict[str, str]):
    """The shaped network of spec `path` with nodes renamed: dotted names put them in containers that the spec
    language cannot write (a container whose inner nodes are read from outside)."""
    network = netspec.shaped_network(path).network
    nodes = [dataclasses.replace(node, name=names.get(node.name, node.name),
                                 inputs=tuple(names.get(i, i) for i in node.inputs)) for node in network.nodes.values()]
    fields = {f.name: getattr(network, f.name) for f in dataclasses.fields(network) if f.name not in ("nodes", "graph")}
    return infer(build_network(nodes, **fields))


@pytest.fixture(scope="module")
def chain_spec(tmp_path_factory):
    path = tmp_path_factory.mktemp("chain") / "chain.yaml"
    path.write_text(CHAIN)
    return path


@pytest.fixture(scope="module")
def forked(chain_spec):
    """`pair` returns two values (a and b, both read later); `tail` reads two values from outside it."""
    shaped = renamed(chain_spec, {"a": "pair.a", "b": "pair.b", "c": "tail.c", "mix": "tail.mix"})
    torch.manual_seed(0)
    return shaped, to_graph_module(shaped).eval()


def test_a_block_with_several_inputs_and_outputs_computes_the_flat_graph(chain_spec, forked):
    shaped, model = forked
    tree = block_tree(shaped.network, "Chain", module_specs(shaped))
    assert (tree["pair"].inputs, tree["pair"].outputs) == (["input"], ["pair.a", "pair.b"])
    assert (tree["tail"].inputs, tree["tail"].outputs) == (["pair.b", "pair.a"], ["tail.mix"])
    flat = small(chain_spec)
    flat.load_state_dict(dict(zip(flat.state_dict(), model.state_dict().values())))
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        a, b = model.pair(x)
        assert torch.equal(model.tail(b, a), model(x)) and torch.equal(model(x), flat(x))


def test_a_container_whose_nodes_are_not_contiguous_is_refused(chain_spec):
    shaped = renamed(chain_spec, {"a": "p.a", "c": "p.c"})  # p.a, b, p.c: `p` would reopen after b
    with pytest.raises(AssertionError, match="`p` are not contiguous"):
        block_tree(shaped.network, "Chain", module_specs(shaped))


# ── PyTorch's tools on the nested model ───────────────────────────────────────────────────────────────────────

MODELS = {"googlenet": ("googlenet.yaml", {"size": 32}), "resnet18": ("imagenet/resnet18.yaml", {"size": 32}),
          "densenet": ("densenet.yaml", {"size": 32}), "unet": ("examples/unet.yaml", {"size": 16, "depth": 2})}


@pytest.fixture(scope="module")
def models(forked):
    """name → (model, input); built once for every tool."""
    built = {name: small(spec, **params) for name, (spec, params) in MODELS.items()} | {"forked": forked[1]}
    inputs = {name: (3, 8, 8) if name == "forked" else model.netspec_input_shape for name, model in built.items()}
    return {name: (model, torch.randn(2, *inputs[name], generator=torch.Generator().manual_seed(3)))
            for name, model in built.items()}


TOOLS = {
    "symbolic_trace": fx.symbolic_trace,
    "jit.trace": lambda model, x: torch.jit.trace(model, x, check_trace=False),
    "jit.script": torch.jit.script,
    "export": lambda model, x: torch.export.export(model, (x,)).module(),
    "compile": lambda model: torch.compile(model, backend="eager", fullgraph=True),
}
# Every tool on the two smallest models with the most kinds of blocks (`forked`: a block of two outputs, one of
# two inputs; `unet`: skips into later blocks); on the larger ones the fast tools, to keep the suite quick.
CASES = ([(tool, name) for tool in TOOLS for name in ("forked", "unet")]
         + [("symbolic_trace", name) for name in ("googlenet", "resnet18", "densenet")]
         + [("jit.script", "resnet18"), ("export", "resnet18")])


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")
@pytest.mark.parametrize("tool, name", CASES)
def test_pytorchs_tools_work_on_the_nested_model_and_give_the_same_outputs(tool, name, models):
    model, x = models[name]
    with torch.no_grad():
        expected = model(x)
        prepared = TOOLS[tool](model, x) if tool in ("jit.trace", "export") else TOOLS[tool](model)
        torch.testing.assert_close(prepared(x), expected, rtol=0, atol=0)


ENTRANCE = """netspec: 1
name: entrance
input: [3, 8, 8]
body:
  - {conv: {out: 4, kernel: 3, padding: 1}, name: a}
  - name: s
    seq:
      - {relu: {}, name: r}
      - {conv: {out: 4, kernel: 1}}
  - relu
"""


@pytest.mark.parametrize("spec", ["lenet", "resnet18", "googlenet", "densenet", "entrance"])
def test_every_block_called_alone_leaves_its_inputs_as_they_were(tmp_path, spec):
    """A ReLU in place at a block's entrance would overwrite the caller's tensor when the block is called on
    its own (in the whole model its input is a fresh tensor nothing else reads)."""
    if spec == "entrance":
        (tmp_path / "entrance.yaml").write_text(ENTRANCE)
        spec = tmp_path / "entrance.yaml"
    shaped = netspec.shaped_network(spec)
    model = to_graph_module(shaped).eval()
    tree = block_tree(shaped.network, "", module_specs(shaped))
    for path, block in tree.items():
        if not path:
            continue
        inputs = [torch.randn(1, *shaped.facts[source].shape) for source in block.inputs]
        kept = [x.clone() for x in inputs]
        with torch.no_grad():
            model.get_submodule(path)(*inputs)
        assert all(torch.equal(x, k) for x, k in zip(inputs, kept)), f"{path} overwrote its input"


def test_the_names_pytorch_takes_are_exactly_a_modules_public_attributes():
    """The language's list (torch-free, for validate) against the installed torch: a new attribute in a torch
    upgrade fails here rather than at someone's compile."""
    from netspec.frontend.grammar import MODULE_ATTRIBUTES

    modules = (nn.Sequential(), BlockModule(nn.Module(), fx.Graph()))
    assert MODULE_ATTRIBUTES == {n for m in modules for n in dir(m) if not n.startswith("_")}


@pytest.mark.parametrize("name", ["training", "code", '"${word}"', "_hidden"])
def test_an_item_named_like_a_module_attribute_is_refused_where_it_is_written(tmp_path, name):
    spec = tmp_path / "taken.yaml"
    spec.write_text("netspec: 1\nname: taken\nparams: {word: eval}\ninput: [4]\nbody:\n"
                    f"  - name: block\n    seq:\n      - {{linear: {{out: 4}}, name: {name}}}\n      - relu\n")
    with pytest.raises(netspec.SpecErrors) as caught:
        netspec.validate(spec)
    (error,) = caught.value.errors
    assert error.mark.line == 8 and "PyTorch" in error.message
