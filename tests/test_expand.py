"""Expansion (netspec.passes.expand): stable dotted names, templates, repeat, when, from, params and `in.*`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from netspec.errors import SpecErrors
from netspec.passes.expand import expand
from netspec.ir import INPUT, OUTPUT
from netspec.passes.lint import lint
from netspec.pipeline import load_spec, shaped_network

from conftest import SPECS, run_cli

HEAD = "netspec: 1\nname: net\n"


def write(folder: Path, text: str, name: str = "net.yaml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def graph_of(folder: Path, text: str, **overrides):
    return expand(load_spec(write(folder, text), overrides))


def ops(graph) -> dict[str, str]:
    return {node: graph.nodes[node].op for node in graph.nodes if graph.nodes[node].is_op}


def chain(graph) -> list[str]:
    """The op nodes from the output back to the input, following each node's first input."""
    nodes, node = [], graph.nodes[OUTPUT].inputs[0]
    while node != INPUT:
        nodes.append(node)
        node = graph.nodes[node].inputs[0]
    return nodes[::-1]


# ── names ─────────────────────────────────────────────────────────────────────────────────────────────────────

def test_unnamed_items_are_named_by_their_index_and_named_ones_by_their_name(tmp_path):
    graph = graph_of(tmp_path, HEAD + "input: [3, 8, 8]\nbody:\n"
                     "  - conv: {out: 4, kernel: 3}\n  - {name: act, relu: {}}\n"
                     "  - name: head\n    seq: [flatten, {name: fc, linear: {out: 2}}]\n")
    assert ops(graph) == {"0": "conv", "act": "relu", "head.0": "flatten", "head.fc": "linear"}
    assert chain(graph) == ["0", "act", "head.0", "head.fc"]


def test_a_name_does_not_shift_when_a_layer_is_inserted_elsewhere(tmp_path):
    base = HEAD + "input: [4]\nbody:\n  - {name: a, linear: {out: 4}}\n  - {name: b, linear: {out: 2}}\n"
    inserted = base.replace("  - {name: b", "  - relu\n  - {name: b")
    assert set(ops(graph_of(tmp_path, base))) <= set(ops(graph_of(tmp_path, inserted)))


def test_a_template_call_is_a_scope_named_by_its_position_or_name(tmp_path):
    graph = graph_of(tmp_path, HEAD + "input: [4]\nblocks:\n  pair: {seq: [{name: fc, linear: {out: 4}}, relu]}\n"
                     "body:\n  - pair\n  - {name: second, pair: {}}\n")
    assert ops(graph) == {"0.fc": "linear", "0.1": "relu", "second.fc": "linear", "second.1": "relu"}
    scopes = graph.scopes
    assert scopes["0"].kind == "template" and scopes["0"].template == "pair"
    assert scopes["second"].mark.line == 8


def test_repeat_numbers_its_iterations_under_the_items_name(tmp_path):
    graph = graph_of(tmp_path, HEAD + "input: [4]\nbody:\n  - {name: stack, repeat: 3, linear: {out: 4}}\n")
    assert ops(graph) == {"stack.0": "linear", "stack.1": "linear", "stack.2": "linear"}
    assert chain(graph) == ["stack.0", "stack.1", "stack.2"]
    assert graph.scopes["stack"].kind == "repeat"


def test_repeat_with_as_names_each_iteration_by_an_expression(tmp_path):
    graph = graph_of(tmp_path, HEAD + "input: [4]\nbody:\n"
                     "  - {repeat: 2, as: i, name: \"layer${i+1}\", seq: [linear: {out: \"${4 * (i + 1)}\"}, relu]}\n")
    assert ops(graph) == {"layer1.0": "linear", "layer1.1": "relu", "layer2.0": "linear", "layer2.1": "relu"}
    assert graph.nodes["layer2.0"].args["out"] == 8


def test_the_index_variable_is_visible_inside_a_template_called_in_the_loop(tmp_path):
    graph = graph_of(tmp_path, HEAD + "input: [4]\nblocks:\n  fc: {params: {n: int}, linear: {out: $n}}\n"
                     "body:\n  - {repeat: 3, as: k, name: \"fc${k}\", fc: {n: \"${k + 1}\"}}\n")
    assert [graph.nodes[n].args["out"] for n in ("fc0", "fc1", "fc2")] == [1, 2, 3]


def test_branches_of_concat_are_numbered_and_merged_by_a_node_of_their_own(tmp_path):
    graph = graph_of(tmp_path, HEAD + "input: [3, 8, 8]\nbody:\n"
                     "  - name: mix\n    concat:\n      - [conv: {out: 2, kernel: 1}]\n"
                     "      - [conv: {out: 3, kernel: 1}, relu]\n      - []\n")
    assert ops(graph) == {"mix.0.0": "conv", "mix.1.0": "conv", "mix.1.1": "relu", "mix.concat": "concat"}
    assert list(graph.nodes["mix.concat"].inputs) == ["mix.0.0", "mix.1.1", INPUT]


def test_the_googlenet_spec_names_its_inception_paths_stably():
    graph = expand(load_spec(SPECS / "googlenet.yaml"))
    assert graph.nodes["b3.0.1.2"].op == "conv" and graph.nodes["b3.0.concat"].op == "concat"
    assert graph.nodes["fc"].op == "linear"


def test_nodes_are_inserted_in_a_topological_order():
    graph = expand(load_spec(SPECS / "googlenet.yaml"))
    order = list(graph.nodes)
    assert all(order.index(src) < order.index(dst) for src, dst in graph.graph.edges)


# ── when, from, input ─────────────────────────────────────────────────────────────────────────────────────────

WHEN = HEAD + "input: [4]\nparams: {extra: false}\nbody:\n  - {name: a, linear: {out: 4}}\n" \
              "  - {name: b, when: $extra, linear: {out: 4}}\n  - {name: c, linear: {out: 2}}\n"


def test_a_false_when_passes_the_input_through_and_builds_nothing(tmp_path):
    graph = graph_of(tmp_path, WHEN)
    assert list(ops(graph)) == ["a", "c"] and list(graph.nodes["c"].inputs) == ["a"]


def test_a_true_when_builds_the_item(tmp_path):
    graph = graph_of(tmp_path, WHEN, extra=True)
    assert list(ops(graph)) == ["a", "b", "c"] and list(graph.nodes["c"].inputs) == ["b"]


def test_a_skipped_named_node_can_still_be_named_in_from(tmp_path):
    graph = graph_of(tmp_path, HEAD + "input: [4]\nbody:\n  - {name: a, linear: {out: 4}}\n"
                     "  - {name: down, when: false, from: input, linear: {out: 4}}\n  - add: {from: [a, down]}\n")
    assert list(graph.nodes["2"].inputs) == ["a", INPUT]


def test_from_input_is_the_enclosing_blocks_input(tmp_path):
    graph = graph_of(tmp_path, HEAD + "input: [4]\nblocks:\n  res:\n    seq:\n      - {name: fc, linear: {out: 4}}\n"
                     "      - add: {from: [fc, input]}\nbody:\n  - {name: stem, linear: {out: 4}}\n  - res\n")
    assert list(graph.nodes["1.1"].inputs) == ["1.fc", "stem"]
    assert list(graph.nodes["1.fc"].inputs) == ["stem"]


def test_from_names_an_earlier_node_and_add_merges_in_order(tmp_path):
    graph = graph_of(tmp_path, HEAD + "input: [4]\nbody:\n  - {name: a, linear: {out: 4}}\n"
                     "  - {name: b, linear: {out: 4}}\n  - {from: a, name: c, linear: {out: 4}}\n"
                     "  - add: {from: [c, b]}\n")
    assert list(graph.nodes["c"].inputs) == ["a"] and list(graph.nodes["3"].inputs) == ["c", "b"]


@pytest.mark.parametrize("ref, message", [
    ("nope", "`from:` names an unknown node `nope`"),
    ("later", "`from: later` names a node defined later"),
])
def test_from_an_unknown_or_later_node_is_an_error(tmp_path, ref, message):
    with pytest.raises(SpecErrors) as caught:
        graph_of(tmp_path, HEAD + f"input: [4]\nbody:\n  - {{from: {ref}, relu: {{}}}}\n  - {{name: later, relu: {{}}}}\n")
    assert caught.value.errors[0].message.startswith(message)


@pytest.mark.parametrize("failing", ["{name: a, conv: {out: 4, kernel: 3, stride: \"${'x'}\"}}",  # a fails
                                     "{name: a, relu: {}}"])                                 # a is fed a failure
def test_a_from_naming_a_failed_item_is_poisoned_not_told_the_name_is_unknown(tmp_path, failing):
    with pytest.raises(SpecErrors) as caught:
        graph_of(tmp_path, HEAD + "input: [4, 8, 8]\nbody:\n  - {conv: {out: 4, kernel: 3, padding: \"${'x'}\"}}\n"
                 "  - " + failing + "\n  - add: {from: [a, input]}\n")
    assert [e.message for e in caught.value.errors] == \
        ["conv: invalid `padding`"] + (["conv: invalid `stride`"] if "stride" in failing else [])


MULTISCALE = HEAD + """params: {stages: 3}
input: [3, 16, 16]
body:
  - {repeat: $stages, as: i, name: "stage${i}", seq: [{conv: {out: "${4 * (i + 1)}", kernel: 3, padding: 1}},
                                                      {maxpool: {kernel: 2}}]}
  - {repeat: $stages, as: i, name: "pool${i}", seq: [{from: "stage${i}", global_avgpool: {}}, flatten]}
  - concat: {from: [pool0, pool1, "pool${stages - 1}"]}
"""


def test_names_built_from_expressions_can_be_named_by_from(tmp_path):
    graph = graph_of(tmp_path, MULTISCALE)
    assert list(graph.nodes["pool1.0"].inputs) == ["stage1.1"] and list(graph.nodes["pool2.0"].inputs) == ["stage2.1"]
    assert list(graph.nodes["2"].inputs) == ["pool0.1", "pool1.1", "pool2.1"]


def test_a_from_expression_sees_params(tmp_path):
    graph = graph_of(tmp_path, MULTISCALE.replace("[pool0, pool1, ", "[pool0, "), stages=2)
    assert list(graph.nodes["2"].inputs) == ["pool0.1", "pool1.1"]


def test_a_from_expression_may_name_an_earlier_iteration(tmp_path):
    graph = graph_of(tmp_path, HEAD + "input: [4]\nbody:\n  - {name: l0, linear: {out: 4}}\n  - relu\n"
                     "  - {repeat: 3, as: i, name: \"l${i + 1}\", seq: [{from: \"l${i}\", linear: {out: 4}}]}\n")
    assert list(graph.nodes["l1.0"].inputs) == ["l0"] and list(graph.nodes["l3.0"].inputs) == ["l2.0"]


@pytest.mark.parametrize("ref, message", [
    ("\"stage${9}\"", "`from:` names an unknown node `stage9`"),
    ("\"${1.5}\"", "a `from:` expression must give a node's name"),
])
def test_a_from_expression_that_names_no_node_is_located(tmp_path, ref, message):
    with pytest.raises(SpecErrors) as caught:
        graph_of(tmp_path, MULTISCALE.replace("[pool0, pool1, \"pool${stages - 1}\"]", f"[pool0, {ref}]"))
    error = caught.value.errors[0]
    assert error.message.startswith(message) and error.mark.line == 9


@pytest.mark.parametrize("body", ["  - {name: a, from: a, relu: {}}\n",
                                  "  - name: a\n    seq:\n      - relu\n      - {from: a, relu: {}}\n"],
                         ids=["itself", "its-own-seq"])
def test_from_naming_the_item_it_belongs_to_says_so(tmp_path, body):
    with pytest.raises(SpecErrors) as caught:
        graph_of(tmp_path, HEAD + "input: [4]\nbody:\n" + body)
    error = caught.value.errors[0]
    assert error.message == "`from: a` names the item it belongs to" and "its own output" in error.hint


def test_duplicate_names_are_refused_with_the_first_use_noted(tmp_path):
    with pytest.raises(SpecErrors) as caught:
        graph_of(tmp_path, HEAD + "input: [4]\nbody:\n  - {name: a, relu: {}}\n  - {name: a, relu: {}}\n")
    error = caught.value.errors[0]
    assert error.message == "duplicate name `a`" and error.notes[0].mark.line == 5


# ── params, overrides and `in` ────────────────────────────────────────────────────────────────────────────────

SIZED = HEAD + "params: {classes: 10, width: 8}\ninput: [3, 8, 8]\nbody:\n  - conv: {out: $width, kernel: 3}\n" \
               "  - flatten\n  - linear: {out: $classes}\n"


def test_params_flow_into_op_args_and_overrides_replace_them(tmp_path):
    graph = graph_of(tmp_path, SIZED, classes=3)
    assert graph.nodes["0"].args["out"] == 8 and graph.nodes["2"].args["out"] == 3


def test_set_on_the_command_line_overrides_a_param(tmp_path):
    path = write(tmp_path, SIZED)
    run = run_cli("summary", str(path), "--set", "classes=5", "--set", "width=2", "--json")
    assert run.code == 0, run.stderr
    summary = json.loads(run.stdout)
    assert summary["output"] == [5] and summary["rows"][0]["shape"] == [2, 6, 6]


def test_an_override_that_changes_the_network_skips_its_expectations(tmp_path):
    path = write(tmp_path, SIZED + "expect: {output: [10]}\n")
    assert shaped_network(path, {"classes": 4}).output_shape == (4,)
    with pytest.raises(SpecErrors):
        shaped_network(write(tmp_path, SIZED + "expect: {output: [4]}\n"))


def test_in_channels_reads_the_inferred_input_of_the_item(tmp_path):
    graph = graph_of(tmp_path, HEAD + "input: [6, 8, 8]\nbody:\n  - conv: {out: 10, kernel: 1}\n"
                     "  - conv: {out: \"${in.channels // 2}\", kernel: 1}\n  - avgpool: {kernel: \"${in.height // 4}\"}\n")
    assert graph.nodes["1"].args["out"] == 5 and graph.nodes["2"].args["kernel"] == 2


def test_in_channels_works_inside_a_template_argument(tmp_path):
    graph = graph_of(tmp_path, HEAD + "input: [3, 8, 8]\nblocks:\n  squeeze: {params: {c: int}, conv: {out: $c, kernel: 1}}\n"
                     "body:\n  - conv: {out: 12, kernel: 1}\n  - squeeze: {c: \"${in.channels // 4}\"}\n")
    assert graph.nodes["1"].args["out"] == 3


def test_template_defaults_may_use_earlier_arguments(tmp_path):
    graph = graph_of(tmp_path, HEAD + "input: [4]\nblocks:\n  mlp:\n    params: {n: int, hidden: {type: int, default: \"${n * 4}\"}}\n"
                     "    seq: [linear: {out: $hidden}, linear: {out: $n}]\nbody:\n  - mlp: {n: 2}\n")
    assert graph.nodes["0.0"].args["out"] == 8


# ── lint ──────────────────────────────────────────────────────────────────────────────────────────────────────

def test_lint_finds_a_node_whose_output_is_never_used(tmp_path):
    graph = graph_of(tmp_path, HEAD + "input: [4]\nbody:\n  - {name: a, linear: {out: 4}}\n"
                     "  - {name: unused, linear: {out: 3}}\n  - {from: a, name: c, linear: {out: 2}}\n")
    problems = [p for p in lint(graph) if p.severity != "info"]
    assert [(p.message, p.instances[0].node) for p in problems] == [("the output of this `linear` is never used",
                                                                     "unused")]
    assert problems[0].mark.line == 6


def test_lint_is_quiet_on_every_shipped_network():
    from conftest import all_specs

    assert [p.first_line() for path in all_specs() for p in lint(expand(load_spec(path)))
            if p.severity != "info"] == []


# ── bounds ────────────────────────────────────────────────────────────────────────────────────────────────────

def test_a_huge_repeat_is_refused_before_anything_is_built(tmp_path):
    with pytest.raises(SpecErrors, match="exceeds the limit"):
        graph_of(tmp_path, HEAD + "input: [4]\nbody:\n  - {repeat: 1000000000, relu: {}}\n")


def test_nested_repeats_are_bounded_by_the_total_node_count(tmp_path):
    with pytest.raises(SpecErrors, match="more than 10,000 nodes"):
        graph_of(tmp_path, HEAD + "input: [4]\nbody:\n  - {repeat: 1000, seq: [{repeat: 1000, relu: {}}]}\n")


def test_a_recursive_template_is_refused(tmp_path):
    with pytest.raises(SpecErrors, match="calls itself"):
        graph_of(tmp_path, HEAD + "input: [4]\nblocks:\n  a: {seq: [relu, b]}\n  b: {seq: [a]}\nbody: [a]\n")


def test_a_repeats_own_from_cannot_use_its_loop_variable_and_says_where_it_can(tmp_path):
    with pytest.raises(SpecErrors) as caught:
        graph_of(tmp_path, HEAD + "input: [3, 8, 8]\nbody:\n  - {repeat: 2, as: i, name: \"e${i}\", conv: {out: 4, "
                 "kernel: 1}}\n  - {repeat: 2, as: i, name: \"d${i}\", concat: {from: [e1, \"e${i}\"]}}\n")
    error = caught.value.errors[0]
    assert error.message.startswith("`from: e${i}` uses the loop variable `i`") and error.mark.line == 6
    assert "inside the repeated `seq:`" in error.hint


def test_no_loader_container_reaches_the_ir(tmp_path):
    """After parsing, values are plain: the network's params, its recipe and every node's args hold lists and
    dicts, never the loader's marked MList/MDict."""
    from netspec.frontend.yaml_source import MDict, MList
    from netspec.pipeline import shaped_network

    path = tmp_path / "plain.yaml"
    path.write_text(HEAD + "params: {ks: [3, 3]}\ninput: [1, 8, 8]\ntrain: {augment: [flip]}\nbody:\n"
                    "  - conv: {out: 4, kernel: $ks, padding: [1, 1]}\n")
    network = shaped_network(path).network

    def marked(value) -> bool:
        if isinstance(value, (MList, MDict)):
            return True
        items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
        return any(marked(v) for v in items)

    assert network.params["ks"] == [3, 3] and network.train["augment"] == ["flip"]
    assert not marked(dict(network.params)) and not marked(dict(network.train))
    assert not any(marked(dict(node.args)) for node in network.nodes.values())


# ── several mistakes in one item ──────────────────────────────────────────────────────────────────────────────

def first_lines(folder: Path, text: str) -> set[str]:
    with pytest.raises(SpecErrors) as caught:
        graph_of(folder, text)
    return {e.first_line() for e in caught.value.errors}


def test_every_invalid_argument_of_an_op_is_reported_at_its_own_value(tmp_path):
    lines = first_lines(tmp_path, HEAD + "params: {w: 4}\ninput: [3, 8, 8]\nbody:\n"
                        "  - conv: {out: \"${-w}\", kernel: \"${-1}\"}\n")
    net = tmp_path / "net.yaml"
    assert lines == {f"{net}:6:17: error: conv: invalid `out`", f"{net}:6:34: error: conv: invalid `kernel`"}


def test_an_expression_error_and_an_invalid_argument_of_one_op_are_both_reported(tmp_path):
    lines = first_lines(tmp_path, HEAD + "input: [3, 8, 8]\nbody:\n  - conv: {out: \"${1 // 0}\", kernel: \"${-1}\"}\n")
    net = tmp_path / "net.yaml"
    assert lines == {f"{net}:5:17: error: in `${{1 // 0}}`: division by zero in `1 // 0`",
                     f"{net}:5:38: error: conv: invalid `kernel`"}


BLK = HEAD + "input: [3, 8, 8]\nblocks:\n  blk:\n    params: {c: int, d: int}\n    seq: [relu]\nbody:\n"


def test_unknown_missing_and_mistyped_template_arguments_are_all_reported_with_the_template(tmp_path):
    with pytest.raises(SpecErrors) as caught:
        graph_of(tmp_path, BLK + "  - blk: {zz: 4, d: \"x\"}\n")
    errors, net = caught.value.errors, tmp_path / "net.yaml"
    assert [e.first_line() for e in errors] == [  # in source order: the missing one is located at the call
        f"{net}:9:5: error: template `blk`: missing argument `c` (int)",
        f"{net}:9:11: error: template `blk` has no param `zz`",
        f"{net}:9:21: error: template `blk`: argument `d`: expected int, found string 'x'"]
    assert all(e.notes[0].text == "template `blk` is defined at" and e.notes[0].mark.line == 5 for e in errors)


def test_a_misspelt_template_argument_is_not_also_reported_missing(tmp_path):
    with pytest.raises(SpecErrors) as caught:
        graph_of(tmp_path, BLK + "  - blk: {cc: 4, d: 5}\n")
    (error,) = caught.value.errors
    assert error.message == "template `blk` has no param `cc`" and error.hint == "did you mean `c`?"


def test_a_failed_item_still_poisons_what_it_feeds(tmp_path):
    lines = first_lines(tmp_path, BLK + "  - blk: {zz: 4, d: \"x\"}\n  - conv: {out: \"${in.channels}\", kernel: 1}\n"
                        "  - conv: {out: \"${-1}\", kernel: \"${-1}\"}\n")
    assert len(lines) == 5 and not any(":10:" in line for line in lines)


def test_a_default_reading_a_missing_or_failed_argument_is_not_reported_again(tmp_path):
    text = BLK.replace("{c: int, d: int}", "{c: int, d: int, e: {type: int, default: \"${c * d}\"}}")
    net = tmp_path / "net.yaml"
    assert first_lines(tmp_path, text + "  - blk: {d: \"${1 // 0}\"}\n") == {
        f"{net}:9:5: error: template `blk`: missing argument `c` (int)",
        f"{net}:9:14: error: in `${{1 // 0}}`: division by zero in `1 // 0`"}


def test_an_output_given_as_a_number_is_a_located_error(tmp_path):
    # A number is a name (an unnamed item's index), so it reaches name lookup and must be read as one.
    text = (SPECS / "resnet18.yaml").read_text(encoding="utf-8")
    path = write(tmp_path, text.replace("body:\n", "outputs:\n  logits: 0\nbody:\n", 1), "resnet18.yaml")
    (tmp_path / "blocks").mkdir()
    (tmp_path / "blocks" / "residual.yaml").write_text((SPECS / "blocks" / "residual.yaml").read_text())
    with pytest.raises(SpecErrors) as caught:
        shaped_network(path)
    assert caught.value.errors[0].mark.file.endswith(".yaml")
