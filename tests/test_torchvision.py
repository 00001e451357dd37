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
}

# torchvision model → (netspec spec, overrides).  The VGG variants are the vgg11 spec with `depth`/`batch_norm`.
VARIANTS = {name: (name, {}) for name in REFERENCE} | {
    f"vgg{d}{bn}": ("vgg11", {"depth": d, "batch_norm": bool(bn)}) for d in (13, 16, 19) for bn in ("", "_bn")} | {
    "googlenet_aux": ("googlenet", {"aux": True}), "inception_v3_noaux": ("inception_v3", {"aux": False})}

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
# (googlenet with aux_logits=False); computed with torchvision's models on the meta device.
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
    function, kwargs = TORCHVISION[name]
    return getattr(models, function)(weights=None, **kwargs)


def randomize_batchnorm(model: nn.Module, seed: int = 1) -> None:
    """Fresh BN layers are the identity in eval mode (mean 0, var 1, γ 1, β 0), which would hide a wrong eps or a
    swapped γ/β; random statistics make every BN tensor count."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
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


def max_abs_diff(name: str, models) -> float:
    reference, model, x = twins(name, models)
    with torch.no_grad():
        want, got = reference.eval()(x), model.eval()(x)
    assert got.shape == want.shape == (1, 1000)
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
def test_the_vgg_depth_and_batch_norm_variants_equal_torchvisions_too(name, tv_models):
    assert max_abs_diff(name, tv_models) <= 1e-5


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
    for name, (params, _) in REFERENCE.items():
        with torch.device("meta"):
            model = torchvision_model(tv_models, name)
        assert sum(p.numel() for p in model.parameters()) == params, name


@pytest.mark.parametrize("name", REFERENCE)
def test_docs_zoo_lists_each_spec_with_its_params_and_exact_macs(name):
    shaped = netspec.shaped_network(IMAGENET / f"{name}.yaml")
    row = next(line for line in (IMAGENET.parents[1] / "docs" / "zoo.md").read_text().splitlines()
               if line.startswith(f"| `imagenet/{name}` |"))
    assert f"{shaped.param_count:,}" in row and f"{shaped.macs:,}" in row
