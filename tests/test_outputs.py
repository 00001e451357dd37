"""Several outputs: a spec's `outputs:` (train-only auxiliary heads), `netspec.load(spec, outputs=[…])` feature
extractors, and what every backend makes of them — the fx module, the standalone source, summary, draw and the
training loss.  Torchvision parity of the aux nets is in test_torchvision.py."""

from __future__ import annotations

import copy
import io
import json
import math
from pathlib import Path

import pytest
import torch
from torch import fx

import netspec
from netspec.backends.pysource import to_python_source
from netspec.backends.summary import render_table, summarize
from netspec.cli import main
from netspec.errors import SpecErrors
from netspec.ir import OUTPUT
from netspec.ops.modules import ChannelAffine
from netspec.train import run
from netspec.train.losses import classification_loss
from netspec.train.recipe import RunOptions
from oracle import meta_model

ROOT = Path(__file__).resolve().parents[1]

# A stage whose middle feeds an auxiliary head (train-only, nested in the stage) and the main path.
NESTED = """\
netspec: 1
name: nested
input: [1, 8, 8]
outputs:
  logits: fc
  aux: {from: stage.aux, train_only: true}
body:
  - name: stage
    seq:
      - {name: c1, conv: {out: 4, kernel: 3, padding: 1}}
      - {name: r, relu: {}}
      - {name: aux, seq: [{conv: {out: 4, kernel: 1}}, flatten, {linear: {out: 3}}]}
      - {name: c2, from: r, conv: {out: 4, kernel: 3}}
  - {name: flat, flatten: {}}
  - {name: fc, linear: {out: 3}}
"""


@pytest.fixture
def nested(tmp_path) -> Path:
    path = tmp_path / "nested.yaml"
    path.write_text(NESTED)
    return path


def as_tuple(value) -> tuple:
    return (value,) if isinstance(value, torch.Tensor) else tuple(value)


def calls(model: torch.nn.Module, names) -> tuple[list[str], list]:
    """Records which of the modules `names` run (forward hooks); returns the list and the hook handles."""
    ran: list[str] = []
    handles = [model.get_submodule(n).register_forward_hook(lambda m, a, o, n=n: ran.append(n)) for n in names]
    return ran, handles


# ── the IR ────────────────────────────────────────────────────────────────────────────────────────────────────

def test_outputs_resolve_in_order_and_what_feeds_only_train_only_outputs_is_train_only(nested):
    network = netspec.shaped_network(nested).network
    assert [(o.name, o.node, o.train_only) for o in network.output_list()] == [
        ("logits", "fc", False), ("aux", "stage.aux.2", True)]
    assert network.nodes[OUTPUT].inputs == ("fc", "stage.aux.2")
    assert network.train_only_nodes() == {"stage.aux.0", "stage.aux.1", "stage.aux.2"}


def test_the_default_outputs_of_every_course_spec_are_unchanged():
    # The course's GoogLeNet gained an opt-in `aux`; off, it is the course's network, key for key.
    shaped = netspec.shaped_network("googlenet")
    assert shaped.param_count == 5_977_530 and shaped.network.output_list()[0].node == "fc"
    keys = list(meta_model("googlenet").state_dict())
    assert keys[:2] == ["b1.0.weight", "b1.0.bias"] and not any("aux" in k for k in keys)
    assert [k for k in keys if k.startswith("b4.") and k.endswith("0.0.weight")] == [
        f"b4.{i}.0.0.weight" for i in range(5)]


def test_googlenet_aux_adds_the_papers_two_heads_trained_only():
    shaped = netspec.shaped_network("googlenet", {"aux": True})
    outputs = shaped.network.output_list()
    assert [(o.name, o.node, o.train_only) for o in outputs] == [
        ("logits", "fc", False), ("aux_logits2", "b4.aux2.fc2", True), ("aux_logits1", "b4.aux1.fc2", True)]
    assert shaped.macs == netspec.shaped_network("googlenet").macs < shaped.train_macs


# ── the fx module ─────────────────────────────────────────────────────────────────────────────────────────────

def test_training_returns_a_named_tuple_and_eval_the_main_output_without_running_the_aux_heads():
    model = netspec.load("googlenet", aux=True, size=32)
    x = torch.randn(2, 1, 32, 32)
    ran, handles = calls(model, ["b4.aux1", "b4.aux2", "fc"])
    out = model.train()(x)
    assert type(out).__name__ == "GooglenetOutputs" and out._fields == ("logits", "aux_logits2", "aux_logits1")
    assert all(t.shape == (2, 10) for t in out) and ran == ["b4.aux1", "b4.aux2", "fc"]
    ran.clear()
    with torch.no_grad():
        logits = model.eval()(x)
    assert isinstance(logits, torch.Tensor) and logits.shape == (2, 10) and ran == ["fc"]
    assert torch.equal(logits, model(x)) and "aux" not in model.b4.code and "aux" in model.train().b4.code
    for handle in handles:
        handle.remove()


def test_eval_of_an_aux_net_equals_the_same_weights_without_aux_heads():
    torch.manual_seed(0)
    with_aux, plain = netspec.load("googlenet", aux=True, size=32), netspec.load("googlenet", size=32)
    plain.load_state_dict({k: v for k, v in with_aux.state_dict().items() if ".aux" not in k})
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        assert torch.equal(with_aux.eval()(x), plain.eval()(x))


def test_tracers_and_deepcopy_see_the_forward_of_the_current_mode(nested):
    model = netspec.load(nested)
    x = torch.randn(2, 1, 8, 8)
    for training in (True, False):
        model.train(training)
        want = model(x)
        traced = fx.symbolic_trace(model)
        assert ("aux" in traced.code) == training
        copied = copy.deepcopy(model)
        jitted = torch.jit.trace(model, x, strict=False)
        exported = torch.export.export(model, (x,)).module()   # runs `model.graph` with an fx Interpreter
        for got in (traced(x), copied(x), jitted(x), exported(x)):
            assert isinstance(got, tuple) == training   # jit.trace gives a plain tuple for the named one
            assert all(torch.equal(a, b) for a, b in zip(as_tuple(want), as_tuple(got)))
    assert type(copied.train()(x)).__name__ == "NestedOutputs" and isinstance(copied.eval()(x), torch.Tensor)
    with pytest.raises(TypeError, match="save its state_dict"):   # fx's pickle would keep one forward only
        torch.save(model, io.BytesIO())


def test_a_single_output_net_still_compiles_to_one_graph():
    model = netspec.load("lenet")
    assert type(model).__mro__[1].__name__ == "BlockModule" and not hasattr(model, "eval_graph")


# ── the standalone source ─────────────────────────────────────────────────────────────────────────────────────

@pytest.mark.parametrize("spec", ["nested", "googlenet"])
def test_the_standalone_source_returns_what_the_module_returns_in_both_modes(spec, nested):
    ref, params = (nested, {}) if spec == "nested" else ("googlenet", {"aux": True, "size": 32})
    shaped = netspec.shaped_network(ref, params)
    namespace: dict = {}
    exec(compile(to_python_source(shaped), "model.py", "exec"), namespace)
    source = namespace[{"nested": "Nested", "googlenet": "Googlenet"}[spec]]()
    model = netspec.load(shaped)
    source.load_state_dict(model.state_dict())
    x = torch.randn(2, *shaped.network.input_shape)
    torch.manual_seed(1)
    want = model.train()(x)
    torch.manual_seed(1)
    got = source.train()(x)
    assert type(got).__name__ == type(want).__name__ and got._fields == want._fields
    assert all(torch.equal(a, b) for a, b in zip(want, got))
    with torch.no_grad():
        assert torch.equal(model.eval()(x), source.eval()(x))


# ── summary and draw ──────────────────────────────────────────────────────────────────────────────────────────

def test_summary_lists_every_output_marks_the_train_only_rows_and_counts_params_once():
    shaped = netspec.shaped_network("imagenet/googlenet", {"aux": True})
    summary = summarize(shaped, 0)
    assert [(o.name, o.train_only) for o in summary.outputs] == [
        ("logits", False), ("aux_logits2", True), ("aux_logits1", True)]
    assert {r.name for r in summary.rows if r.train_only} == {"aux1", "aux2"}
    assert sum(r.params for r in summary.rows) == summary.params == 13_004_888
    table = render_table(summary)
    assert "aux_logits2 1000 (train only)" in table.splitlines()[0]
    assert "inception_aux_v1 ▸ (train)" in table and f"{shaped.train_macs:,}" in table
    assert json.loads(json.dumps(summary.to_json()))["outputs"][1]["train_only"] is True


def test_draw_shows_a_box_per_output():
    source = netspec.draw("imagenet/inception_v3", depth=0).source
    assert '"output/logits"' in source and '"output/aux_logits"' in source and "train only" in source
    assert '"block/AuxLogits" -> "output/aux_logits"' in source


# ── feature extractors ────────────────────────────────────────────────────────────────────────────────────────

def test_resnet50_features_have_the_shapes_timm_reports_for_features_only():
    # timm's resnet50 features_only: act1, layer1..4 with 64, 256, 512, 1024, 2048 channels at reductions
    # 2, 4, 8, 16, 32.  `relu` is the act after bn1.
    names = ["relu", "layer1", "layer2", "layer3", "layer4"]
    model = meta_model("imagenet/resnet50", outputs=names)
    out = model.eval()(torch.empty(1, 3, 224, 224, device="meta"))
    assert isinstance(out, list)
    assert [tuple(t.shape[1:]) for t in out] == [(64, 112, 112), (256, 56, 56), (512, 28, 28), (1024, 14, 14),
                                                 (2048, 7, 7)]
    assert not any(k.startswith("fc.") for k in model.state_dict())
    assert sum(p.numel() for p in model.parameters()) == 25_557_032 - 2_049_000


def test_a_feature_extractor_returns_the_nodes_in_the_order_asked_and_prunes_what_they_do_not_need():
    model = netspec.load("imagenet/resnet18", outputs=["layer2", "layer1.0", "bn1"], size=64)
    assert list(dict(model.named_children())) == ["conv1", "bn1", "relu", "maxpool", "layer1", "layer2"]
    full = netspec.load("imagenet/resnet18", size=64).eval()
    full.load_state_dict(model.state_dict(), strict=False)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        out = model.eval()(x)
        bn1 = full.bn1(full.conv1(x))          # the full network's own modules, one by one
        block = full.layer1[0](full.maxpool(full.relu(bn1.clone())))   # clone: its ReLU works in place
        layer2 = full.layer2(full.layer1[1](block.clone()))
    assert isinstance(out, list) and [t.shape[1] for t in out] == [128, 64, 64]
    assert torch.equal(out[0], layer2) and torch.equal(out[1], block) and torch.equal(out[2], bn1)


@pytest.mark.parametrize("names, message", [
    (["layer1", "layer5"], "unknown output `layer5`"),
    (["layer1", "layer1"], "output `layer1` is asked for twice"),
    ([], "`outputs` must be a non-empty list"),
])
def test_an_unknown_or_repeated_output_is_a_located_error(names, message):
    with pytest.raises(SpecErrors) as caught:
        netspec.load("imagenet/resnet18", outputs=names)
    assert message in str(caught.value.errors[0].message)
    assert caught.value.errors[0].mark.file.endswith("resnet18.yaml") and caught.value.errors[0].mark.line > 0


@pytest.mark.parametrize("spec, name, message", [
    ("imagenet/shufflenet_v2_x1_0", "stage2.1.halves", "output `stage2.1.halves` is a `chunk` with 2 parts"),
    ("imagenet/convnext_tiny", "features.1.0.layer_scale", "is a learnable tensor, which has no batch dimension"),
])
def test_a_chunk_or_a_learnable_tensor_is_no_feature_map(spec, name, message):
    with pytest.raises(SpecErrors) as caught:
        netspec.load(spec, outputs=["features.0" if "convnext" in spec else "conv1", name])
    assert len(caught.value.errors) == 1 and message in caught.value.errors[0].message
    assert caught.value.errors[0].mark.file.endswith(spec.split("/")[1] + ".yaml")


def test_the_cli_takes_outputs_and_refuses_an_unknown_one_with_exit_2(capsys):
    assert main(["summary", "imagenet/resnet50", "--depth", "0", "--outputs", "relu,layer1,layer4"]) == 0
    assert "→ outputs relu 64×112×112, layer1 256×56×56, layer4 2048×7×7" in capsys.readouterr().out
    assert main(["compile", "imagenet/resnet50", "--outputs", "layer9"]) == 2
    err = capsys.readouterr().err
    assert "resnet50.yaml:" in err and "unknown output `layer9`" in err and "did you mean" in err
    assert "Traceback" not in err


# ── affine and int2 ───────────────────────────────────────────────────────────────────────────────────────────

def test_affine_equals_torchvisions_transform_input_and_is_not_in_the_state_dict():
    x = torch.randn(4, 3, 9, 9)
    # torchvision's Inception3._transform_input, verbatim.
    x_ch0 = torch.unsqueeze(x[:, 0], 1) * (0.229 / 0.5) + (0.485 - 0.5) / 0.5
    x_ch1 = torch.unsqueeze(x[:, 1], 1) * (0.224 / 0.5) + (0.456 - 0.5) / 0.5
    x_ch2 = torch.unsqueeze(x[:, 2], 1) * (0.225 / 0.5) + (0.406 - 0.5) / 0.5
    want = torch.cat((x_ch0, x_ch1, x_ch2), 1)
    model = netspec.load("imagenet/inception_v3")
    assert isinstance(model.transform_input, ChannelAffine)
    assert (model.transform_input(x) - want).abs().max() <= 1e-5
    assert not any(k.startswith("transform_input") for k in model.state_dict())
    assert {n for n, _ in model.named_buffers()} >= {"transform_input.scale", "transform_input.shift"}
    assert netspec.load("imagenet/inception_v3", transform_input=False).get_submodule("Conv2d_1a_3x3") is not None


def test_int2_params_take_an_int_or_a_pair():
    shaped = netspec.shaped_network("imagenet/inception_v3")
    args = shaped.nodes["Mixed_6b.branch7x7_2.conv"].args
    assert args["kernel"] == [1, 7] and args["padding"] == [0, 3]
    assert shaped.facts["Mixed_6b.branch7x7_2.conv"].shape == (128, 17, 17)


# ── training ──────────────────────────────────────────────────────────────────────────────────────────────────

def test_the_loss_adds_each_aux_output_weighted():
    out = netspec.load("googlenet", aux=True, size=32).train()(torch.randn(3, 1, 32, 32))
    labels = torch.tensor([0, 1, 2])
    total, logits, aux = classification_loss(out, labels, 0.0, 0.3)
    ce = torch.nn.functional.cross_entropy
    assert logits is out.logits and set(aux) == {"aux_logits2", "aux_logits1"}
    want = ce(out.logits, labels) + 0.3 * ce(out.aux_logits2, labels) + 0.3 * ce(out.aux_logits1, labels)
    assert torch.allclose(total, want)
    plain, same, none = classification_loss(out.logits, labels, 0.0, 0.3)
    assert none == {} and torch.allclose(plain, ce(out.logits, labels))


def test_netspec_train_trains_googlenets_aux_heads_and_logs_their_loss(tmp_path):
    data = "fashion-mnist" if Path("/usr/share/datasets/fashion-mnist").is_dir() else "synthetic"
    options = RunOptions(device="cpu", subset=96, out=str(tmp_path / "runs"), download=False, threads=1,
                         params={"aux": True, "size": 32})
    result = run.start("googlenet", {"data": data, "epochs": 2, "batch_size": 32, "resize": 32, "lr": 0.05,
                                     "aux_weight": 0.3}, options)
    records = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    epochs = [r for r in records if r["kind"] == "epoch"]
    first, last = (e["aux_loss"] for e in (epochs[0], epochs[-1]))
    assert set(first) == {"aux_logits2", "aux_logits1"} and all(math.isfinite(v) for v in first.values())
    assert all(first[name] != last[name] for name in first), "the aux losses must move"
    # The logged loss is what was minimized: the main loss plus 0.3 of each aux loss (≥ 1.6·ln 10 at chance).
    assert epochs[0]["loss"] > sum(first.values()) * 0.3
