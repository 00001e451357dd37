"""The authoring tutorial's networks (docs/tutorial.md): a MobileNetV2 written only in the spec language is
summarized, compiled, checked against shape inference and a hand-written PyTorch MobileNetV2, and trained; its
second section's EfficientNet-style network (MBConv with squeeze-excitation and stochastic depth) is checked
against a hand-written MBConv network in eval and in training."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from torch import nn

import netspec
from netspec.cli import main as cli_main

from oracle import meta_model, one_torch_thread, shape_mismatches  # noqa: F401 (an autouse fixture)

DOCS = Path(__file__).resolve().parents[1] / "docs"
SPEC = DOCS / "tutorial" / "mobilenet_tiny.yaml"
LIBRARY = DOCS / "tutorial" / "blocks" / "mobilenet.yaml"
STAGES = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 2, 2], [6, 64, 2, 2], [6, 96, 1, 1]]   # the spec's default
MBCONV_SPEC = DOCS / "tutorial" / "efficientnet_tiny.yaml"
MBCONV_LIBRARY = DOCS / "tutorial" / "blocks" / "mbconv.yaml"
BLOCKS = [[1, 16, 1, 3], [6, 24, 2, 3], [6, 24, 1, 3], [6, 40, 2, 5], [6, 40, 1, 5], [6, 80, 2, 3], [6, 80, 1, 3]]


@pytest.fixture(scope="module")
def shaped():
    return netspec.shaped_network(SPEC)


def test_the_tutorial_shows_its_final_files_verbatim():
    text = (DOCS / "tutorial.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```yaml\n(.*?)```", text, flags=re.S)
    for path in (SPEC, LIBRARY, MBCONV_SPEC, MBCONV_LIBRARY):
        assert path.read_text(encoding="utf-8") in blocks, f"docs/tutorial.md must show {path.name} as it is"


def test_netspec_summary_prints_the_tutorial_network(capsys):
    assert cli_main(["summary", str(SPEC), "--depth", "3"]) == 0
    out = capsys.readouterr().out
    assert "inverted_residual" in out and "total params: 209,674" in out


def test_every_depthwise_conv_has_one_group_per_channel(shaped):
    depthwise = [n for n in shaped.nodes if shaped.nodes[n].is_op if n.endswith(".depthwise.0")]
    assert len(depthwise) == sum(n for _, _, n, _ in STAGES)
    for node in depthwise:
        channels = shaped.facts[node].in_shapes[0][0]
        assert shaped.nodes[node].args["groups"] == channels == shaped.facts[node].shape[0]
        assert shaped.facts[node].param_count == channels * 9        # one 3×3 filter per channel, no bias


def test_blocks_expand_by_t_except_when_t_is_1(shaped):
    for s, (t, _, n, _) in enumerate(STAGES):
        for i in range(n):
            block = f"stages.{s}.{i}"
            expand = f"{block}.expand.0"
            assert (expand in shaped.nodes) == (t != 1)
            if t != 1:
                assert shaped.facts[expand].shape[0] == t * shaped.facts[expand].in_shapes[0][0]


def test_the_projection_is_linear_and_the_shortcut_is_added_exactly_when_shapes_allow(shaped):
    adds, expected = set(), set()
    channels = 32                                                   # the stem's output
    for s, (_, c, n, stride) in enumerate(STAGES):
        for i in range(n):
            block = f"stages.{s}.{i}"
            if (stride if i == 0 else 1) == 1 and channels == c:
                expected.add(block)
            channels = c
            assert [shaped.nodes[m].op for m in shaped.nodes if shaped.nodes[m].is_op if m.startswith(f"{block}.project.")] == \
                ["conv", "batchnorm"]
    for node in (n.name for n in shaped.op_nodes()):
        if shaped.nodes[node].op == "add":
            block = node.rsplit(".shortcut.", 1)[0]
            adds.add(block)
            assert list(shaped.nodes[node].inputs) == [f"{block}.project.1", _block_input(shaped, block)]
    assert adds == expected == {"stages.1.1", "stages.2.1", "stages.3.1"}


def _block_input(shaped, block: str) -> str:
    first = next(n for n in shaped.nodes if shaped.nodes[n].is_op if n.startswith(block + "."))
    return shaped.nodes[first].inputs[0]


def test_a_meta_forward_gives_every_node_the_inferred_shape(shaped):
    assert shape_mismatches(meta_model(SPEC), shaped) == {}


class InvertedResidual(nn.Module):
    """MobileNetV2's block written by hand in PyTorch, as torchvision writes it (the oracle)."""

    def __init__(self, inp: int, out: int, stride: int, t: int):
        super().__init__()
        hidden = inp * t
        layers = [nn.Conv2d(inp, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6()] if t != 1 else []
        layers += [nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False), nn.BatchNorm2d(hidden),
                   nn.ReLU6(), nn.Conv2d(hidden, out, 1, bias=False), nn.BatchNorm2d(out)]
        self.conv = nn.Sequential(*layers)
        self.use_res_connect = stride == 1 and inp == out

    def forward(self, x):
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


def hand_written_mobilenet() -> nn.Module:
    layers, channels = [nn.Conv2d(1, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU6()], 32
    for t, c, n, s in STAGES:
        for i in range(n):
            layers.append(InvertedResidual(channels, c, s if i == 0 else 1, t))
            channels = c
    layers += [nn.Conv2d(channels, 256, 1, bias=False), nn.BatchNorm2d(256), nn.ReLU6(), nn.AdaptiveAvgPool2d(1),
               nn.Flatten(), nn.Dropout(0.2), nn.Linear(256, 10)]
    return nn.Sequential(*layers)


def test_the_compiled_network_computes_what_a_hand_written_mobilenet_v2_computes():
    torch.manual_seed(0)
    model, reference = netspec.load(SPEC), hand_written_mobilenet()
    for module in reference.modules():                  # non-trivial statistics, so that eval mode tests them too
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    ours, theirs = model.state_dict(), reference.state_dict()
    assert [v.shape for v in ours.values()] == [v.shape for v in theirs.values()]   # same tensors, same order
    model.load_state_dict(dict(zip(ours, theirs.values())))
    x = torch.rand(4, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(x), reference.eval()(x), rtol=1e-5, atol=1e-5)


def test_one_sgd_step_on_random_data_lowers_the_loss_and_changes_every_parameter():
    torch.manual_seed(0)
    model = netspec.load(SPEC).train()
    x, y = torch.rand(16, 1, 28, 28), torch.randint(0, 10, (16,))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    torch.manual_seed(1)                                # the same dropout mask for both losses
    loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()
    optimizer.step()
    torch.manual_seed(1)
    with torch.no_grad():
        after = nn.functional.cross_entropy(model(x), y)
    assert torch.isfinite(loss) and torch.isfinite(after)
    assert [name for name, p in model.named_parameters() if torch.equal(p, before[name])] == []
    assert after < loss


def test_the_tutorials_unet_excerpt_is_the_example_spec_verbatim():
    text = (DOCS / "tutorial.md").read_text(encoding="utf-8")
    excerpt = next(b for b in re.findall(r"```yaml\n(.*?)```", text, flags=re.S) if "enc${depth - 1 - i}" in b)
    assert excerpt in (DOCS.parent / "specs" / "examples" / "unet.yaml").read_text(encoding="utf-8")


# ── the second section: MBConv with squeeze-excitation and stochastic depth ────────────────────────────────────

def stochastic_depth(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """torchvision.ops.stochastic_depth in mode "row", as its source computes it."""
    if not training or p == 0.0:
        return x
    keep = torch.empty([x.shape[0], 1, 1, 1], dtype=x.dtype).bernoulli_(1 - p)
    return x * keep.div_(1 - p)


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int, squeeze: int):
        super().__init__()
        self.fc1, self.fc2 = nn.Conv2d(channels, squeeze, 1), nn.Conv2d(squeeze, channels, 1)

    def forward(self, x):
        return x * torch.sigmoid(self.fc2(nn.functional.silu(self.fc1(x.mean((2, 3), keepdim=True)))))


class MBConv(nn.Module):
    """EfficientNet's block written by hand (the oracle), as torchvision writes it."""

    def __init__(self, inp: int, out: int, stride: int, t: int, kernel: int, drop: float):
        super().__init__()
        hidden = inp * t
        layers = [nn.Conv2d(inp, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.SiLU()] if t != 1 else []
        layers += [nn.Conv2d(hidden, hidden, kernel, stride, kernel // 2, groups=hidden, bias=False),
                   nn.BatchNorm2d(hidden), nn.SiLU(), SqueezeExcite(hidden, max(1, inp // 4)),
                   nn.Conv2d(hidden, out, 1, bias=False), nn.BatchNorm2d(out)]
        self.block, self.drop = nn.Sequential(*layers), drop
        self.residual = stride == 1 and inp == out

    def forward(self, x):
        y = self.block(x)
        return stochastic_depth(y, self.drop, self.training) + x if self.residual else y


def hand_written_mbconv_net() -> nn.Module:
    layers, channels = [nn.Conv2d(1, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.SiLU()], 32
    for i, (t, c, s, k) in enumerate(BLOCKS):
        layers.append(MBConv(channels, c, s, t, k, 0.2 * i / len(BLOCKS)))
        channels = c
    layers += [nn.Conv2d(channels, 256, 1, bias=False), nn.BatchNorm2d(256), nn.SiLU(), nn.AdaptiveAvgPool2d(1),
               nn.Flatten(), nn.Dropout(0.2), nn.Linear(256, 10)]
    return nn.Sequential(*layers)


def test_squeeze_excitation_is_a_side_branch_whose_scale_meets_the_blocks_tensor_at_a_mul():
    shaped = netspec.shaped_network(MBCONV_SPEC)
    muls = [node for node in shaped.op_nodes() if node.op == "mul"]
    assert [node.name for node in muls] == [f"blocks.{i}.se.5" for i in range(len(BLOCKS))]
    for node in muls:
        block_tensor, gate = node.inputs
        assert block_tensor.endswith(".depthwise.2") and gate.endswith(".se.gate")
        channels, height, width = shaped.facts[block_tensor].shape
        assert shaped.facts[gate].shape == (channels, 1, 1) and shaped.facts[node.name].shape == (channels, height, width)


def test_stochastic_depth_sits_before_the_add_of_each_shortcut_with_the_rising_schedule():
    shaped = netspec.shaped_network(MBCONV_SPEC)
    drops = {node.name: node.args["p"] for node in shaped.op_nodes() if node.op == "stochastic_depth"}
    assert drops == {f"blocks.{i}.shortcut.drop": 0.2 * i / len(BLOCKS) for i in (2, 4, 6)}
    for name in drops:
        block = name.rsplit(".", 2)[0]
        add = shaped.nodes[f"{block}.shortcut.1"]
        assert add.op == "add" and add.inputs == (name, shaped.nodes[f"{block}.expand.0"].inputs[0])
        assert shaped.nodes[name].inputs == (f"{block}.project.1",)


def test_the_mbconv_network_computes_what_a_hand_written_one_computes_in_eval_and_in_training():
    torch.manual_seed(0)
    model, reference = netspec.load(MBCONV_SPEC), hand_written_mbconv_net()
    for module in reference.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    ours, theirs = model.state_dict(), reference.state_dict()
    assert [v.shape for v in ours.values()] == [v.shape for v in theirs.values()]
    model.load_state_dict(dict(zip(ours, theirs.values())))
    x = torch.rand(8, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(x), reference.eval()(x), rtol=1e-5, atol=1e-5)
        outputs = []
        for net, seed in ((model, 3), (reference, 3), (model, 4)):
            torch.manual_seed(seed)
            outputs.append(net.train()(x))
    torch.testing.assert_close(outputs[0], outputs[1], rtol=1e-5, atol=1e-5)
    assert not torch.allclose(outputs[0], outputs[2]), "another seed must draw other masks"
