"""The torchvision-faithful specs (specs/imagenet/) are torchvision's networks, module for module.

Without torchvision (CI): the compiled state_dict has exactly torchvision's keys, in order, with its shapes
(a fingerprint taken from torchvision 0.29.1), and the inferred MACs equal what PyTorch's own FLOP counter sees.
With torchvision: its state_dict loads strictly through `netspec.load_weights` and the outputs are equal
(eval, fp32, max abs diff ≤ 1e-5).  docs/zoo.md says how to run these in a separate virtual environment.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import netspec
from netspec.cli import main as cli_main
from netspec.errors import SpecErrors
from oracle import meta_model

IMAGENET = Path(__file__).resolve().parents[1] / "specs" / "imagenet"

# torchvision's published figures for its ImageNet weights (https://pytorch.org/vision/stable/models.html, whose
# "GFLOPS" count multiply-adds): params, GMACs as printed.
REFERENCE = {
    "alexnet": (61_100_840, "0.714G"),
    "vgg11": (132_863_336, "7.609G"),
    "vgg11_bn": (132_868_840, "7.609G"),
    "googlenet": (6_624_904, "1.498G"),
    "resnet18": (11_689_512, "1.814G"),
    "resnet34": (21_797_672, "3.664G"),
    "resnet50": (25_557_032, "4.089G"),
    "densenet121": (7_978_856, "2.834G"),
    "shufflenet_v2_x1_0": (2_278_604, "0.145G"),  # published as 0.14 GFLOPS (two digits)
    "convnext_tiny": (28_589_128, "4.456G"),
    "regnet_y_400mf": (4_344_144, "0.402G"),
}

# torchvision model → (netspec spec, overrides).  The VGG variants are the vgg11 spec with `depth`/`batch_norm`;
# other ShuffleNetV2 widths, ConvNeXt sizes and RegNets are params of their family's spec.
VARIANTS = {name: (name, {}) for name in REFERENCE} | {
    f"vgg{d}{bn}": ("vgg11", {"depth": d, "batch_norm": bool(bn)}) for d in (13, 16, 19) for bn in ("", "_bn")} | {
    "shufflenet_v2_x0_5": ("shufflenet_v2_x1_0", {"widths": [24, 48, 96, 192, 1024]}),
    "convnext_small": ("convnext_tiny", {"depths": [3, 3, 27, 3], "stochastic_depth_prob": 0.4}),
    "regnet_y_800mf": ("regnet_y_400mf", {"depths": [1, 3, 8, 2], "widths": [64, 144, 320, 784], "group_width": 16}),
    "regnet_x_400mf": ("regnet_y_400mf", {"depths": [1, 2, 7, 12], "widths": [32, 64, 160, 400], "group_width": 16,
                                          "se_ratio": 0.0}),
}

# (number of entries, sha256 of "key [shape]" lines in order)[:16] of torchvision 0.29.1's state_dict
# (googlenet with aux_logits=False); computed with torchvision's models on the meta device (RegNets on the CPU:
# their widths are computed with torch ops, which meta tensors cannot give).  ShuffleNetV2, ConvNeXt and RegNet
# were taken from torchvision 0.28, whose keys for them are 0.29's.
FINGERPRINTS = {
    "alexnet": (16, "23c3b8d4a3e86dc8"),
    "vgg11": (22, "ddb4b3f56e9755a6"),
    "vgg11_bn": (62, "dc54d45fed4bc7b4"),
    "googlenet": (344, "3cf031916e017580"),
    "resnet18": (122, "66b04efc1dfd4b80"),
    "resnet34": (218, "4aa3e2bbbdc5e2fd"),
    "resnet50": (320, "614cd53ddf849669"),
    "densenet121": (727, "08ed4bd108558638"),
    "vgg13": (26, "08687bab35dc8767"),
    "vgg16": (32, "8a41c838cadbc3e0"),
    "vgg19": (38, "5319ee52249b66d1"),
    "vgg13_bn": (76, "057b00c1243905f9"),
    "vgg16_bn": (97, "ae5d7d87f5e61a76"),
    "vgg19_bn": (118, "555ec1b35ce917df"),
    "shufflenet_v2_x1_0": (338, "cb82a4e6fc1db15e"),
    "shufflenet_v2_x0_5": (338, "54a515f5b9e5104f"),
    "convnext_tiny": (182, "923f285139243a72"),
    "convnext_small": (344, "5f3bc2c6bb725d84"),
    "regnet_y_400mf": (384, "872a203a03e8d754"),
    "regnet_y_800mf": (340, "dd56722b309decbd"),
    "regnet_x_400mf": (428, "94627f7ea87b1457"),
}


def fingerprint(state_dict) -> tuple[int, str]:
    text = "\n".join(f"{key} {list(value.shape)}" for key, value in state_dict.items())
    return len(state_dict), hashlib.sha256(text.encode()).hexdigest()[:16]


def spec_path(name: str) -> Path:
    return IMAGENET / f"{VARIANTS[name][0]}.yaml"


# ── without torchvision ───────────────────────────────────────────────────────────────────────────────────────

def test_every_reference_model_has_a_spec_and_nothing_else_sits_in_imagenet():
    assert {p.stem for p in IMAGENET.glob("*.yaml")} == set(REFERENCE)


@pytest.mark.parametrize("name", REFERENCE)
def test_each_spec_has_torchvisions_published_params_and_macs(name):
    params, macs = REFERENCE[name]
    shaped = netspec.shaped_network(IMAGENET / f"{name}.yaml")
    assert shaped.param_count == params
    assert f"{shaped.macs / 1e9:.3f}G" == macs
    assert list(shaped.output_shape) == [1000]
    assert shaped.network.input_shape == (3, 224, 224)


@pytest.mark.parametrize("name", VARIANTS)
def test_the_compiled_state_dict_has_torchvisions_keys_in_order_with_its_shapes(name):
    spec, overrides = VARIANTS[name]
    model = meta_model(spec_path(name), **overrides)
    assert fingerprint(model.state_dict()) == FINGERPRINTS[name]


@pytest.mark.parametrize("name", REFERENCE)
def test_inferred_macs_equal_half_the_flops_pytorchs_flop_counter_counts(name):
    # FlopCounterMode counts 2 FLOPs per multiply-accumulate of convolutions and matrix products: exactly the
    # ops netspec counts (docs/ops.md, "What MACs count").  Meta tensors: shapes only, no arithmetic.
    model = meta_model(IMAGENET / f"{name}.yaml")
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.empty(1, 3, 224, 224, device="meta"))
    assert counter.get_total_flops() == 2 * netspec.shaped_network(IMAGENET / f"{name}.yaml").macs


def test_netspec_list_shows_vgg11_and_vgg11_bn_with_the_depth_and_batch_norm_params(capsys):
    assert cli_main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    for name, batch_norm in (("imagenet/vgg11", "false"), ("imagenet/vgg11_bn", "true")):
        at = next(i for i, line in enumerate(lines) if line.split()[:1] == [name])
        assert "depth=11" in lines[at + 1] and f"batch_norm={batch_norm}" in lines[at + 1].lower()


def test_an_unknown_vgg_depth_is_a_located_error_that_names_the_choices():
    with pytest.raises(SpecErrors) as caught:
        netspec.shaped_network(IMAGENET / "vgg11.yaml", {"depth": 12})
    error = caught.value.errors[0]
    assert error.mark.file.endswith("vgg11.yaml") and "11, 13, 16 or 19" in str(caught.value)


def test_resnet_shortcuts_are_downsampled_exactly_where_torchvision_does():
    keys = {k.rsplit(".", 2)[0] for k in meta_model(IMAGENET / "resnet50.yaml").state_dict() if ".downsample." in k}
    assert keys == {f"layer{i}.0.downsample" for i in (1, 2, 3, 4)}       # layer1 too: 64 → 256 channels
    keys = {k.rsplit(".", 2)[0] for k in meta_model(IMAGENET / "resnet18.yaml").state_dict() if ".downsample." in k}
    assert keys == {f"layer{i}.0.downsample" for i in (2, 3, 4)}


# ── against torchvision ───────────────────────────────────────────────────────────────────────────────────────

@pytest.fixture(scope="module")
def tv_models():
    torchvision = pytest.importorskip(
        "torchvision", reason="torchvision is not installed; the parity tests compare against it "
        "(docs/zoo.md shows the separate virtual environment that runs them)")
    return torchvision.models


def torchvision_model(models, name: str) -> nn.Module:
    extra = {"aux_logits": False, "init_weights": False, "transform_input": False} if name == "googlenet" else {}
    return getattr(models, name)(weights=None, **extra)


def randomize_batchnorm(model: nn.Module, seed: int = 1) -> None:
    """Fresh BN layers are the identity in eval mode (mean 0, var 1, γ 1, β 0), which would hide a wrong eps or a
    swapped γ/β; random statistics make every BN tensor count.  Likewise ConvNeXt's layer_scale starts at 1e-6,
    which would make every block's branch invisible next to its shortcut."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.endswith("layer_scale"):
                parameter.uniform_(0.5, 1.5, generator=gen)
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.normal_(0, 0.1, generator=gen)
                module.running_var.uniform_(0.5, 1.5, generator=gen)
                module.weight.uniform_(0.5, 1.5, generator=gen)
                module.bias.normal_(0, 0.1, generator=gen)


def max_abs_diff(name: str, models, training: bool = False) -> float:
    """Eval, or training: batch statistics and, under one seed, the same stochastic-depth draws (two examples,
    so that a batch statistic is one)."""
    torch.manual_seed(0)
    reference = torchvision_model(models, name).eval()
    randomize_batchnorm(reference)
    spec, overrides = VARIANTS[name]
    model = netspec.load(spec_path(name), **overrides).eval()
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in reference.parameters())
    netspec.load_weights(model, reference.state_dict())
    batch = 2 if training else 1
    x = torch.randn(batch, 3, 224, 224, generator=torch.Generator().manual_seed(2))
    reference.train(training), model.train(training)
    with torch.no_grad():
        torch.manual_seed(3)
        want = reference(x)
        torch.manual_seed(3)
        got = model(x)
    assert got.shape == want.shape == (batch, 1000)
    assert want.std() > 1e-3, "a degenerate output would make the comparison meaningless"
    return (got - want).abs().max().item()


@pytest.mark.torchvision
@pytest.mark.parametrize("name", REFERENCE)
def test_torchvision_weights_load_strictly_and_the_outputs_are_equal(name, tv_models):
    diff = max_abs_diff(name, tv_models)
    print(f"{name}: max abs diff {diff:.3g}")
    assert diff <= 1e-5


@pytest.mark.torchvision
@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in VARIANTS if n not in REFERENCE])
def test_the_variants_reached_by_params_equal_torchvisions_too(name, tv_models):
    assert max_abs_diff(name, tv_models) <= 1e-5


# The specs whose torchvision network is deterministic in training given one seed (BatchNorm uses the batch's
# statistics; ConvNeXt's stochastic depth draws the same masks): no dropout, whose masks depend on the order of
# draws over a whole layer.
DETERMINISTIC_IN_TRAINING = ["resnet18", "shufflenet_v2_x1_0", "convnext_tiny", "regnet_y_400mf"]


@pytest.mark.torchvision
@pytest.mark.parametrize("name", DETERMINISTIC_IN_TRAINING)
def test_the_outputs_are_equal_in_training_too(name, tv_models):
    assert max_abs_diff(name, tv_models, training=True) <= 1e-5


@pytest.mark.torchvision
def test_torchvisions_own_parameter_counts_are_the_reference_table(tv_models):
    for name, (params, _) in REFERENCE.items():
        # RegNet computes its widths with torch ops, which meta tensors cannot give.
        with torch.device("cpu" if name.startswith("regnet") else "meta"):
            model = torchvision_model(tv_models, name)
        assert sum(p.numel() for p in model.parameters()) == params, name


@pytest.mark.parametrize("name", REFERENCE)
def test_docs_zoo_lists_each_spec_with_its_params_and_exact_macs(name):
    shaped = netspec.shaped_network(IMAGENET / f"{name}.yaml")
    row = next(line for line in (IMAGENET.parents[1] / "docs" / "zoo.md").read_text().splitlines()
               if line.startswith(f"| `imagenet/{name}` |"))
    assert f"{shaped.param_count:,}" in row and f"{shaped.macs:,}" in row
