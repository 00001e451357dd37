"""`netspec diff` and `netspec compat` on the zoo's specs, their answers checked against the real state_dicts of
both compiled models; the rename advice; `train --init-from` and `load_matching`, which share compat's logic."""

from __future__ import annotations

import json
import shlex

import pytest
import torch

import netspec
from conftest import REPO, SPECS, run_cli, spec_params
from netspec.backends.compat import compare, render, suggest_renames
from netspec.backends.diff import ADDED, CHANGED, REMOVED, RESHAPED, SAME, diff_networks
from netspec.backends.fx import state_shapes, to_graph_module
from netspec.cli import main
from test_doc_outputs import shown_outputs

GOOGLENET = (SPECS / "googlenet.yaml").read_text(encoding="utf-8")
FIRST_INCEPTION = "inception: {c1: 64, c2: [96, 128]"
# b3.0's 1×1 path widened, and the `expect:` line (the old counts) dropped
WIDE_GOOGLENET = "".join(line for line in GOOGLENET.replace(FIRST_INCEPTION, "inception: {c1: 96, c2: [96, 128]")
                         .splitlines(keepends=True) if not line.startswith("expect:"))


def shapes(model: torch.nn.Module) -> dict:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def expected_keys(old: dict, new: dict) -> dict:
    """What compat must say, computed from two real state_dicts with set operations only."""
    return {"loaded": {k for k in new if k in old and old[k] == new[k]},
            "reshaped": {k for k in new if k in old and old[k] != new[k]},
            "new": set(new) - set(old), "dropped": set(old) - set(new)}


def answered(report) -> dict:
    return {"loaded": set(report.loaded), "reshaped": {r.key for r in report.reshaped}, "new": set(report.new),
            "dropped": set(report.dropped)}


@pytest.mark.parametrize("spec", spec_params())
def test_the_state_dict_keys_diff_compares_are_the_compiled_models_own(spec):
    shaped = netspec.shaped_network(spec)
    with torch.device("meta"):       # the real module tree, without allocating its weights
        model = to_graph_module(shaped)
    assert list(state_shapes(shaped).items()) == list(shapes(model).items())


# ── resnet18 against resnet34 ─────────────────────────────────────────────────────────────────────────────────

@pytest.fixture(scope="module")
def resnets():
    return netspec.shaped_network("imagenet/resnet18"), netspec.shaped_network("imagenet/resnet34")


def test_resnet18_against_resnet34_adds_the_extra_basic_blocks_and_keeps_every_resnet18_key(resnets):
    r18, r34 = resnets
    diff = diff_networks(r18, r34)
    rows = {row.name: row for row in diff.blocks}
    # [2, 2, 2, 2] → [3, 4, 6, 3] BasicBlocks: 1, 2, 4 and 1 more, 7 nodes each (conv, bn, relu, conv, bn, add,
    # relu); no downsample, since only a stage's first block has one.
    assert {name: rows[name].added for name in ("layer1", "layer2", "layer3", "layer4")} == \
        {"layer1": 7, "layer2": 14, "layer3": 28, "layer4": 7}
    assert [s.path for s in diff.added_scopes] == ["layer1.2", "layer2.2", "layer2.3", "layer3.2", "layer3.3",
                                                   "layer3.4", "layer3.5", "layer4.2"]
    assert not diff.removed_scopes and not any(n.status == REMOVED for n in diff.nodes)
    assert sum(r.params_b - r.params_a for r in diff.blocks) == r34.param_count - r18.param_count
    assert sum(r.macs_b - r.macs_a for r in diff.blocks) == r34.macs - r18.macs
    for name in ("conv1", "bn1", "maxpool", "fc"):
        assert rows[name].status == SAME
    # What reads a stage's last block now reads the new last block: a wiring change, named as such.
    assert diff.status["layer2.0.conv1"] == CHANGED
    changed = next(n for n in diff.nodes if n.name == "layer2.0.conv1")
    assert changed.changes == ("inputs",) and changed.a.inputs == ("layer1.1.relu_out",)
    assert set(diff.status) == set(r18.nodes) - {"input", "output"} | set(r34.nodes) - {"input", "output"}


def test_resnet18_against_resnet34_keys_match_the_real_state_dicts(resnets):
    old, new = shapes(netspec.load("imagenet/resnet18")), shapes(netspec.load("imagenet/resnet34"))
    diff = diff_networks(*resnets)
    assert answered(diff.keys) == expected_keys(old, new)
    assert len(diff.keys.loaded) == len(old) == 122 and len(diff.keys.new) == 96 and not diff.keys.dropped
    assert answered(netspec.compat("imagenet/resnet18", "imagenet/resnet34")) == expected_keys(old, new)
    assert answered(netspec.compat("imagenet/resnet34", "imagenet/resnet18")) == expected_keys(new, old)


# ── one block widened ─────────────────────────────────────────────────────────────────────────────────────────

def test_a_widened_block_changes_that_node_reshapes_its_readers_and_keeps_the_other_keys():
    assert WIDE_GOOGLENET != GOOGLENET
    narrow, wide = netspec.shaped_network("googlenet"), netspec.shaped_network(WIDE_GOOGLENET)
    diff = diff_networks(narrow, wide)
    touched = {name: status for name, status in diff.status.items() if status != SAME}
    # The widened conv changes; what its output reaches until the next concat re-joins at the same width
    # (b3.1's output is 480 channels either way) has other shapes or parameter counts.
    assert touched == {"b3.0.0.0": CHANGED, "b3.0.0.1": RESHAPED, "b3.0.concat": RESHAPED,
                       "b3.1.0.0": RESHAPED, "b3.1.1.0": RESHAPED, "b3.1.2.0": RESHAPED, "b3.1.3.0": RESHAPED,
                       "b3.1.3.1": RESHAPED}
    b3 = next(row for row in diff.blocks if row.name == "b3")
    assert (b3.status, b3.changed, b3.reshaped, b3.shape_a, b3.shape_b) == (CHANGED, 1, 7, (480, 6, 6), (480, 6, 6))
    assert b3.params_b - b3.params_a == wide.param_count - narrow.param_count == 32 * 193 + 32 * (128 + 128 + 32 + 64)
    assert all(row.status == SAME for row in diff.blocks if row.name != "b3")
    old, new = shapes(netspec.load("googlenet")), shapes(netspec.load(WIDE_GOOGLENET))
    assert answered(diff.keys) == expected_keys(old, new)
    assert {r.key for r in diff.keys.reshaped} == {"b3.0.0.0.weight", "b3.0.0.0.bias", "b3.1.0.0.weight",
                                                   "b3.1.1.0.weight", "b3.1.2.0.weight", "b3.1.3.1.weight"}


def test_googlenet_at_96_against_224_differs_only_in_shapes_and_macs():
    small, large = netspec.shaped_network("googlenet"), netspec.shaped_network("googlenet", {"size": 224})
    diff = diff_networks(small, large)
    statuses = set(diff.status.values())
    assert statuses == {RESHAPED, SAME} and not diff.added_scopes and not diff.removed_scopes
    same = [(n.name, n.a.op) for n in diff.nodes if n.status == SAME]
    assert same == [("b5.2", "global_avgpool"), ("b5.3", "flatten"), ("fc", "linear")]
    assert diff.a.params == diff.b.params and diff.keys.complete
    assert sum(r.macs_b - r.macs_a for r in diff.blocks) == large.macs - small.macs > 0


def test_a_spec_against_itself_is_identical():
    diff = netspec.diff("lenet", "lenet")
    assert diff.identical and set(diff.status.values()) == {SAME} and diff.keys.complete


def test_a_removed_node_is_placed_where_it_was():
    a = "netspec: 1\nname: a\ninput: [1, 8, 8]\nbody:\n  - conv: {out: 4, kernel: 3}\n  - relu\n  - flatten\n" \
        "  - linear: {out: 2}\n"
    b = a.replace("  - relu\n", "")
    diff = netspec.diff(a, b)
    assert [(n.name, n.status) for n in diff.nodes][:2] == [("0", SAME), ("1", CHANGED)]
    assert [n.name for n in diff.nodes if n.status == REMOVED] == ["3"]  # names are positions: 3 (linear) left
    assert diff.status["2"] == CHANGED and not diff.identical


# ── the commands ──────────────────────────────────────────────────────────────────────────────────────────────

def test_diff_prints_a_table_and_the_same_data_as_json(capsys):
    assert main(["diff", "imagenet/resnet18", "imagenet/resnet34"]) == 0
    table = capsys.readouterr().out
    assert "layer3   basic_stage" in table and "+4,722,688" in table and "layer3.5 (basic, 7 nodes)" in table
    assert "122 of 218 tensors load, 96 new" in table
    assert main(["diff", "imagenet/resnet18", "imagenet/resnet34", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["a"]["params"] == 11689512 and data["b"]["params"] == 21797672 and not data["identical"]
    layer3 = next(b for b in data["blocks"] if b["name"] == "layer3")
    assert (layer3["added"], layer3["delta_params"]) == (28, 4722688)
    assert len(data["state_dict"]["loaded"]) == 122 and len(data["state_dict"]["new"]) == 96


def test_set_applies_to_both_and_set_b_to_b_only(capsys):
    assert main(["diff", "googlenet", "googlenet", "--set", "num_classes=5", "--set-b", "size=224", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["a"]["input"] == [1, 96, 96] and data["b"]["input"] == [1, 224, 224]
    assert data["a"]["output"] == data["b"]["output"] == [5]
    assert (data["a"]["spec"], data["a"]["set"]) == ("googlenet", {"num_classes": 5})
    assert data["b"]["set"] == {"num_classes": 5, "size": 224}


def test_exit_codes_0_whatever_the_differences_1_with_exit_code_2_on_mistakes(tmp_path):
    assert main(["diff", "lenet", "bn_lenet"]) == 0
    assert main(["diff", "lenet", "bn_lenet", "--exit-code"]) == 1
    assert main(["diff", "lenet", "lenet", "--exit-code"]) == 0
    assert main(["compat", "lenet", "bn_lenet", "--exit-code"]) == 1
    assert main(["compat", "lenet", "lenet", "--exit-code"]) == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("netspec: 1\nname: bad\ninput: [1, 8, 8]\nbody:\n  - conv: {out: -1, kernel: 3}\n")
    run = run_cli("diff", str(bad), "nope")
    assert run.code == 2 and run.stderr.count("error:") == 2 and "Traceback" not in run.stderr
    assert main(["diff", "lenet", "lenet", "--depth", "-1"]) == 2
    assert main(["compat", "lenet", "lenet", "--rename", "nothing"]) == 2


def test_compat_reads_weights_files_and_run_folders_as_well_as_specs(tmp_path, capsys):
    torch.save(netspec.load("lenet").state_dict(), tmp_path / "lenet.pt")
    assert main(["compat", str(tmp_path / "lenet.pt"), "lenet"]) == 0
    assert "10 of 10 tensors load" in capsys.readouterr().out
    assert main(["compat", str(tmp_path / "lenet.pt"), "bn_lenet", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert answered_json(data) == expected_keys(shapes(netspec.load("lenet")), shapes(netspec.load("bn_lenet")))
    assert main(["compat", str(tmp_path / "lenet.pt"), "lenet", "--set-old", "num_classes=3"]) == 2
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    assert main(["compat", str(tmp_path / "junk.pt"), "lenet"]) == 2
    assert "junk.pt: not a PyTorch weights file" in capsys.readouterr().err


def answered_json(data: dict) -> dict:
    return {"loaded": {e["key"] for e in data["loaded"]}, "reshaped": {e["key"] for e in data["reshaped"]},
            "new": set(data["new"]), "dropped": set(data["dropped"])}


def test_compat_refuses_a_malicious_weights_file_and_runs_nothing(tmp_path, capsys):
    from test_security import Payload

    sentinel = tmp_path / "ran"
    torch.save({"model": {}, "hook": Payload(f"touch {sentinel}")}, tmp_path / "evil.pt")
    assert main(["compat", str(tmp_path / "evil.pt"), "lenet"]) == 2
    err = capsys.readouterr().err
    assert "refused: it holds a Python object" in err and len(err.splitlines()) == 1 and not sentinel.exists()
    with pytest.raises(netspec.WeightsFileError, match="refused"):
        netspec.compat(tmp_path / "evil.pt", "lenet")
    assert not sentinel.exists()


# ── rename advice ─────────────────────────────────────────────────────────────────────────────────────────────

def test_a_renamed_block_gets_one_rename_covering_all_its_keys():
    own = state_shapes(netspec.shaped_network("imagenet/resnet18"))
    source = {k.replace("layer1.0.", "layer1.first.", 1): v for k, v in own.items()}
    report = compare(own, source)
    assert len(report.new) == 12
    assert [(r.source, r.target, r.keys) for r in report.renames] == [("layer1.first", "layer1.0", 12)]
    text = str(report)
    assert "pass rename={'layer1.first': 'layer1.0'}" in text and "matches 12 of the 12 dropped tensors" in text
    assert "rename the spec's `layer1.0` to the source's name, `layer1.first`" in text
    fixed = compare(own, source, {r.source: r.target for r in report.renames})
    assert fixed.complete


def test_renamed_stages_and_a_wrapper_prefix_are_covered_by_few_renames_for_most_keys():
    own = state_shapes(netspec.shaped_network("imagenet/resnet18"))
    source = {("backbone." + k.replace("layer", "stage")) if k.startswith("layer") else k: v for k, v in own.items()}
    report = compare(own, source)
    suggested = {r.source: r.target for r in report.renames}
    assert suggested == {f"backbone.stage{i}": f"layer{i}" for i in range(1, 5)}
    assert compare(own, source, suggested).complete


def test_a_data_parallel_prefix_gets_its_own_advice():
    report = compare({"fc.weight": (2, 3)}, {"module.fc.weight": (2, 3)})
    assert 'rename={"module": ""}' in str(report)


def test_suggestions_stay_bounded_on_many_keys_that_look_alike():
    missing = {f"a{i}.weight": (4,) for i in range(1000)}
    unexpected = {f"b{i}.weight": (4,) for i in range(1000)}
    renames = suggest_renames(missing, unexpected)
    assert 1 <= len(renames) <= 5 and all(r.keys == 1 for r in renames)


# ── load_matching and train --init-from ───────────────────────────────────────────────────────────────────────

def test_load_matching_loads_what_fits_and_returns_compats_report():
    imagenet = netspec.load("imagenet/resnet18", size=32)
    ten = netspec.load("imagenet/resnet18", size=32, num_classes=10)
    fc_before = ten.fc.weight.clone()
    report = netspec.load_matching(ten, imagenet.state_dict())
    assert {r.key for r in report.reshaped} == {"fc.weight", "fc.bias"} and len(report.loaded) == 120
    assert torch.equal(ten.fc.weight, fc_before)
    assert torch.equal(ten.layer4[1].conv2.weight, imagenet.layer4[1].conv2.weight)
    assert str(report) == str(netspec.compat(imagenet, ten))


def test_init_from_starts_an_edited_network_from_what_it_shares_and_prints_the_report(tmp_path):
    from netspec.train import run
    from netspec.train.recipe import RunOptions

    old = netspec.load("bn_lenet")
    torch.save(old.state_dict(), tmp_path / "old.pt")
    messages = []

    class UI(run.UI):
        def message(self, text: str) -> None:
            messages.append(text)

    options = RunOptions(device="cpu", subset=64, out=str(tmp_path / "runs"), download=False, threads=1,
                         init_from=str(tmp_path / "old.pt"), params={"num_classes": 12})
    result = run.start("bn_lenet", {"data": "synthetic", "epochs": 0, "batch_size": 32}, options, UI())
    new = result.model.state_dict()
    report = compare(shapes(result.model), shapes(old))
    assert {r.key for r in report.reshaped} == {"15.weight", "15.bias"} and len(report.loaded) == len(new) - 2
    for key in report.loaded:
        assert torch.equal(new[key], old.state_dict()[key])
    text = "\n".join(messages)
    assert f"--init-from {tmp_path / 'old.pt'}: " + render(report, "the weights", "the network", hint=False) in text
    assert "hint" not in text   # what loads is loaded: a skip or rename hint has nothing to act on here


def test_init_from_weights_of_which_nothing_fits_is_refused(tmp_path):
    from netspec.train import run
    from netspec.train.checkpoint import CheckpointError
    from netspec.train.recipe import RunOptions

    torch.save({"other.weight": torch.zeros(3)}, tmp_path / "other.pt")
    options = RunOptions(device="cpu", subset=64, out=str(tmp_path / "runs"), download=False, threads=1,
                         init_from=str(tmp_path / "other.pt"))
    with pytest.raises(CheckpointError, match="none of its tensors fits this network"):
        run.start("lenet", {"data": "synthetic", "epochs": 0, "batch_size": 32}, options)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


# ── the docs ──────────────────────────────────────────────────────────────────────────────────────────────────

CLI_DOC = REPO / "docs" / "cli.md"
DOC_EXAMPLES = [s for s in shown_outputs(CLI_DOC) if s.command.startswith(("netspec diff", "netspec compat"))]


def test_the_cli_doc_shows_each_example_the_issue_asked_for():
    assert {s.command for s in DOC_EXAMPLES} >= {
        "netspec diff imagenet/resnet18 imagenet/resnet34", "netspec diff googlenet googlenet --set-b size=224",
        "netspec diff googlenet docs/examples/wide_googlenet.yaml",
        "netspec compat googlenet docs/examples/wide_googlenet.yaml"}


@pytest.mark.parametrize("shown", DOC_EXAMPLES, ids=str)
def test_a_diff_or_compat_output_in_the_cli_doc_is_real(shown, capsys, monkeypatch):
    monkeypatch.chdir(REPO)   # the docs run commands from the repository root
    assert main(shlex.split(shown.command)[1:]) == 0
    assert list(shown.output) == capsys.readouterr().out.rstrip("\n").splitlines()


def test_the_edited_copy_in_the_docs_is_googlenet_with_one_block_widened():
    shipped = netspec.shaped_network(REPO / "docs" / "examples" / "wide_googlenet.yaml")
    assert netspec.diff(shipped, WIDE_GOOGLENET).identical


def test_the_rename_example_in_the_cli_doc_is_real():
    text = CLI_DOC.read_text(encoding="utf-8")
    model = netspec.load("imagenet/resnet18")
    source = {k.replace("layer1.0.", "layer1.first.", 1): v for k, v in model.state_dict().items()}
    real = str(netspec.compat(source, model)).splitlines()
    assert f"{real[0]}\n{real[1]}\n{real[2]}\n…" in text and real[-1] in text


@pytest.mark.parametrize("spec", spec_params())
def test_every_zoo_spec_is_identical_to_itself_and_differs_from_lenet_in_json_that_round_trips(spec):
    shaped = netspec.shaped_network(spec)
    assert netspec.diff(shaped, shaped).identical
    other = netspec.diff("lenet", shaped)
    data = json.loads(json.dumps(other.to_json()))
    assert {n["name"]: n["status"] for n in data["nodes"]} == other.status
    assert sum(b["delta_params"] for b in data["blocks"]) == shaped.param_count - 61706
    assert str(other).endswith("identical" if spec.stem == "lenet" else " same")
