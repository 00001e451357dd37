"""The torchvision-faithful specs (specs/imagenet/) are torchvision's networks, module for module.

Without torchvision (the main venv): the compiled state_dict has exactly torchvision's keys, in order, with its shapes
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
    "inception_v3": (27_161_264, "5.713G"),     # with its auxiliary classifier, which eval does not run
    "mobilenet_v3_large": (5_483_032, "0.217G"),
    "mobilenet_v3_small": (2_542_856, "0.057G"),
    "efficientnet_b0": (5_288_548, "0.386G"),
    "shufflenet_v2_x1_0": (2_278_604, "0.145G"),  # published as 0.14 GFLOPS (two digits)
    "convnext_tiny": (28_589_128, "4.456G"),
    "regnet_y_400mf": (4_344_144, "0.402G"),
}

# EfficientNet-B1…B7 are imagenet/efficientnet_b0 with `variant`; torchvision publishes their figures at the crop
# size of its weights' transforms: params, GMACs as printed, size.
EFFICIENTNET = {f"efficientnet_b{v}": figures for v, figures in enumerate([
    (7_794_184, "0.687G", 240), (9_109_994, "1.088G", 288), (12_233_232, "1.827G", 300),
    (19_341_616, "4.394G", 380), (30_389_784, "10.266G", 456), (43_040_704, "19.068G", 528),
    (66_347_960, "37.746G", 600)], start=1)}

# torchvision model → (netspec spec, overrides).  The VGG variants are the vgg11 spec with `depth`/`batch_norm`;
# other EfficientNets, ShuffleNetV2 widths, ConvNeXt sizes and RegNets are params of their family's spec.
VARIANTS = {name: (name, {}) for name in REFERENCE} | {
    f"vgg{d}{bn}": ("vgg11", {"depth": d, "batch_norm": bool(bn)}) for d in (13, 16, 19) for bn in ("", "_bn")} | {
    name: ("efficientnet_b0", {"variant": int(name[-1])}) for name in EFFICIENTNET} | {
    "shufflenet_v2_x0_5": ("shufflenet_v2_x1_0", {"widths": [24, 48, 96, 192, 1024]}),
    "convnext_small": ("convnext_tiny", {"depths": [3, 3, 27, 3], "stochastic_depth_prob": 0.4}),
    "regnet_y_800mf": ("regnet_y_400mf", {"depths": [1, 3, 8, 2], "widths": [64, 144, 320, 784], "group_width": 16}),
    "regnet_x_400mf": ("regnet_y_400mf", {"depths": [1, 2, 7, 12], "widths": [32, 64, 160, 400], "group_width": 16,
                                          "se_ratio": 0.0}),
    "googlenet_aux": ("googlenet", {"aux": True}), "inception_v3_noaux": ("inception_v3", {"aux": False}),
}

# Each torchvision model's constructor call: the function and its keyword arguments (init_weights only skips
# torchvision's slow initialization; the weights are copied over).
TORCHVISION = {name: (name, {}) for name in VARIANTS} | {
    "googlenet": ("googlenet", {"aux_logits": False, "init_weights": False, "transform_input": False}),
    "googlenet_aux": ("googlenet", {"aux_logits": True, "init_weights": False, "transform_input": False}),
    "inception_v3": ("inception_v3", {"aux_logits": True, "init_weights": False, "transform_input": True}),
    "inception_v3_noaux": ("inception_v3", {"aux_logits": False, "init_weights": False, "transform_input": True}),
}
# The networks with auxiliary classifiers: in training they return the logits and the aux outputs.
AUX = ("googlenet_aux", "inception_v3")

# (number of entries, sha256 of "key [shape]" lines in order)[:16] of torchvision 0.29.1's state_dict
# (googlenet with aux_logits=False; MobileNetV3, EfficientNet, ShuffleNetV2, ConvNeXt and RegNet from torchvision
# 0.28.0, whose definitions of these are 0.29.1's); computed with torchvision's models on the meta device (RegNets
# on the CPU: their widths are computed with torch ops, which meta tensors cannot give).
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
    "googlenet_aux": (364, "e4f1217523f861c4"),
    "inception_v3": (580, "cabfd2014b4dc76a"),
    "inception_v3_noaux": (566, "514a083c6322f33a"),
    "mobilenet_v3_large": (312, "a56c886e8c43a05b"),
    "mobilenet_v3_small": (244, "cb48f2feab283d8f"),
    "efficientnet_b0": (360, "9da4cc5e2bca0790"),
    "efficientnet_b1": (508, "d037a7897a24735c"),
    "efficientnet_b2": (508, "d6c07a751ed53f4d"),
    "efficientnet_b3": (574, "b509cc28dcc3814b"),
    "efficientnet_b4": (706, "47f2ea1a75c4db8d"),
    "efficientnet_b5": (854, "37159318b4be4700"),
    "efficientnet_b6": (986, "6152c4405b9050e0"),
    "efficientnet_b7": (1200, "0342411b57f84381"),
    "shufflenet_v2_x1_0": (338, "cb82a4e6fc1db15e"),
    "shufflenet_v2_x0_5": (338, "54a515f5b9e5104f"),
    "convnext_tiny": (182, "923f285139243a72"),
    "convnext_small": (344, "5f3bc2c6bb725d84"),
    "regnet_y_400mf": (384, "872a203a03e8d754"),
    "regnet_y_800mf": (340, "dd56722b309decbd"),
    "regnet_x_400mf": (428, "94627f7ea87b1457"),
}

# Nets with dropout or stochastic depth whose training forward is compared under one seed.
TRAIN_PARITY = ["mobilenet_v3_large", "mobilenet_v3_small", "efficientnet_b0"]


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
    assert shaped.network.input_shape == (3, 299, 299) if name == "inception_v3" else (3, 224, 224)


@pytest.mark.parametrize("name", VARIANTS)
def test_the_compiled_state_dict_has_torchvisions_keys_in_order_with_its_shapes(name):
    spec, overrides = VARIANTS[name]
    model = meta_model(spec_path(name), **overrides)
    assert fingerprint(model.state_dict()) == FINGERPRINTS[name]


@pytest.mark.parametrize("name", REFERENCE)
def test_inferred_macs_equal_half_the_flops_pytorchs_flop_counter_counts(name):
    # FlopCounterMode counts 2 FLOPs per multiply-accumulate of convolutions and matrix products: exactly the
    # ops netspec counts (docs/ops.md, "What MACs count").  Meta tensors: shapes only, no arithmetic.  In eval a
    # network with auxiliary classifiers does not run them (`macs`); in training it does (`train_macs`).
    model = meta_model(IMAGENET / f"{name}.yaml")
    shaped = netspec.shaped_network(IMAGENET / f"{name}.yaml")
    for training, macs in ((False, shaped.macs), (True, shaped.train_macs)):
        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad():
            model.train(training)(torch.empty(2, *shaped.network.input_shape, device="meta"))
        assert counter.get_total_flops() == 2 * 2 * macs
    assert (shaped.train_macs > shaped.macs) == (name == "inception_v3")


@pytest.mark.parametrize("name", EFFICIENTNET)
def test_each_efficientnet_variant_has_torchvisions_published_params_and_macs_at_its_size(name):
    params, macs, size = EFFICIENTNET[name]
    shaped = netspec.shaped_network(IMAGENET / "efficientnet_b0.yaml", {**VARIANTS[name][1], "size": size})
    assert (shaped.param_count, f"{shaped.macs / 1e9:.3f}G") == (params, macs)
    model = meta_model(IMAGENET / "efficientnet_b0.yaml", **VARIANTS[name][1], size=size)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.empty(1, 3, size, size, device="meta"))
    assert counter.get_total_flops() == 2 * shaped.macs


@pytest.mark.parametrize("variant, blocks", [(0, 16), (3, 26), (7, 55)])
def test_efficientnet_stochastic_depth_rises_with_the_blocks_index_as_torchvision_schedules_it(variant, blocks):
    # torchvision: block k (0-based, over all stages) of n gets stochastic_depth_prob · k / n; only blocks with a
    # residual connection use it, and only those have the module here (it owns no weights).
    from netspec.ops.modules import StochasticDepth
    model = meta_model(IMAGENET / "efficientnet_b0.yaml", variant=variant)
    stages = [model.features[s] for s in range(1, 8)]
    assert sum(len(stage) for stage in stages) == blocks
    found = [(k, block.stochastic_depth) for k, block in enumerate(b for stage in stages for b in stage)
             if hasattr(block, "stochastic_depth")]
    assert len(found) == blocks - 7 and all(isinstance(m, StochasticDepth) and m.mode == "row" for _, m in found)
    assert [m.p for _, m in found] == [0.2 * k / blocks for k, _ in found]


def test_squeeze_excitation_is_a_side_branch_meeting_a_mul():
    shaped = netspec.shaped_network(IMAGENET / "mobilenet_v3_large.yaml")
    node = shaped.network.nodes["features.4.block.2.scale"]
    assert node.op == "mul" and node.inputs == ("features.4.block.2.scale_activation", "features.4.block.1.2")
    assert shaped.facts[node.inputs[0]].shape == (72, 1, 1) and shaped.facts[node.inputs[1]].shape == (72, 28, 28)


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


def test_an_unknown_efficientnet_variant_is_a_located_error_that_names_the_range():
    with pytest.raises(SpecErrors) as caught:
        netspec.shaped_network(IMAGENET / "efficientnet_b0.yaml", {"variant": 8})
    error = caught.value.errors[0]
    assert error.mark.file.endswith("efficientnet_b0.yaml") and "variant must be 0…7" in str(caught.value)


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
    function, kwargs = TORCHVISION[name]
    return getattr(models, function)(weights=None, **kwargs)


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


def twins(name: str, models) -> tuple[nn.Module, nn.Module, torch.Tensor]:
    """torchvision's model (random BN statistics) and the spec's, holding the same weights, and an input."""
    torch.manual_seed(0)
    reference = torchvision_model(models, name)
    randomize_batchnorm(reference)
    spec, overrides = VARIANTS[name]
    model = netspec.load(spec_path(name), **overrides)
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in reference.parameters())
    netspec.load_weights(model, reference.state_dict())
    side = 299 if name.startswith("inception") else 224
    return reference, model, torch.randn(1, 3, side, side, generator=torch.Generator().manual_seed(2))


def max_abs_diff(name: str, models, training: bool = False) -> float:
    """Eval, or training: batch statistics and, under one seed, the same stochastic-depth draws (two examples,
    so that a batch statistic is one)."""
    reference, model, x = twins(name, models)
    batch = 2 if training else 1
    x = torch.randn(batch, *x.shape[1:], generator=torch.Generator().manual_seed(2))
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
def test_the_variants_by_param_equal_torchvisions_too(name, tv_models):
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
@pytest.mark.parametrize("name", TRAIN_PARITY)
def test_in_training_the_outputs_and_batchnorm_statistics_are_equal_under_one_seed(name, tv_models):
    # Dropout and stochastic depth draw from the global generator: the same draws in the same order give the
    # same masks, so the outputs are equal, and a second seed shows the draws matter.
    reference = torchvision_model(tv_models, name).train()
    model = netspec.load(spec_path(name), **VARIANTS[name][1]).train()
    netspec.load_weights(model, reference.state_dict())
    x = torch.randn(4, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    torch.manual_seed(0)
    want = reference(x)
    torch.manual_seed(0)
    got = model(x)
    assert torch.equal(got, want)
    updated = model.state_dict()
    assert all(torch.equal(updated[key], value) for key, value in reference.state_dict().items())
    torch.manual_seed(1)
    assert not torch.equal(model(x), got), "the draws must matter, or this compared nothing random"
    schedule = [m.p for n, m in reference.named_modules() if type(m).__name__ == "StochasticDepth"
                and reference.get_submodule(n.rsplit(".", 1)[0]).use_res_connect]
    assert [m.p for m in model.modules() if type(m).__name__ == "StochasticDepth"] == schedule


@pytest.mark.torchvision
@pytest.mark.parametrize("name", AUX)
def test_in_training_the_aux_nets_return_torchvisions_named_outputs_equal_with_the_same_dropout_masks(name, tv_models):
    # Dropout is made deterministic by seeding: both models draw their masks from the global generator, in the
    # same order (torchvision runs aux1 before aux2 before the classifier's dropout, and so do these specs, whose
    # aux heads sit after the last inception block as torchvision registers them), so equal seeds give equal
    # masks.  BatchNorm uses the batch's statistics, as torchvision's does in training.
    reference, model, x = twins(name, tv_models)
    x = torch.cat([x, x.flip(0) * 0.5])  # two examples: BatchNorm in training needs more than one value
    with torch.no_grad():
        torch.manual_seed(7)
        want = reference.train()(x)
        torch.manual_seed(7)
        got = model.train()(x)
    assert type(got).__name__.endswith("Outputs") and got._fields == want._fields
    for field, a, b in zip(want._fields, want, got):
        assert a.shape == b.shape == (2, 1000) and (a - b).abs().max().item() <= 1e-5, field
    torch.manual_seed(8)
    assert not torch.equal(model.train()(x).logits, got.logits), "dropout must be active in this comparison"


@pytest.mark.torchvision
def test_torchvisions_own_parameter_counts_are_the_reference_table(tv_models):
    for name, (params, *_) in (REFERENCE | EFFICIENTNET).items():
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
