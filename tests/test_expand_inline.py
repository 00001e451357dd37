"""`inline: true` seqs: no scope of their own; their items are named in the enclosing seq, unnamed ones numbered
on as nn.Sequential(*layers) numbers them — what torchvision's flat `features.N` indices need (VGG)."""

from __future__ import annotations

import textwrap

import pytest
import torch

import netspec
from netspec.errors import SpecErrors



def write(tmp_path, body: str, params: str = "{}") -> str:
    path = tmp_path / "net.yaml"
    path.write_text(textwrap.dedent("""\
        netspec: 1
        name: net
        params: {params}
        input: [3, 16, 16]
        body:
        """).format(params=params) + textwrap.indent(textwrap.dedent(body), "  "))
    return str(path)


def ops(path: str, **params) -> dict[str, str]:
    shaped = netspec.shaped_network(path, params)
    return {node: shaped.nodes[node].op for node in (n.name for n in shaped.op_nodes())}


def test_items_of_inline_seqs_are_numbered_on_in_the_enclosing_seq(tmp_path):
    path = write(tmp_path, """\
        - name: features
          seq:
            - conv: {out: 4, kernel: 3, padding: 1}
            - {repeat: 2, inline: true, seq: [conv: {out: 4, kernel: 3, padding: 1}, relu]}
            - maxpool: {kernel: 2}
        """)
    assert ops(path) == {"features.0": "conv", "features.1": "conv", "features.2": "relu", "features.3": "conv",
                         "features.4": "relu", "features.5": "maxpool"}


def test_a_skipped_inline_seq_takes_no_number_but_a_skipped_item_keeps_its_own(tmp_path):
    path = write(tmp_path, """\
        - {when: $bn, inline: true, seq: [batchnorm]}
        - {when: $bn, batchnorm: {}}
        - relu
        """, params="{bn: false}")
    assert ops(path) == {"1": "relu"}                      # the plain skipped item still owns number 0
    assert ops(path, bn=True) == {"0": "batchnorm", "1": "batchnorm", "2": "relu"}


def test_seqs_without_inline_items_keep_naming_unnamed_items_by_their_index(tmp_path):
    path = write(tmp_path, """\
        - conv: {out: 4, kernel: 3}
        - {name: act, relu: {}}
        - {when: false, relu: {}}
        - flatten
        """)
    assert ops(path) == {"0": "conv", "act": "relu", "3": "flatten"}


def test_the_loop_variables_of_nested_inline_repeats_reach_the_items(tmp_path):
    path = write(tmp_path, """\
        - repeat: 2
          as: s
          inline: true
          seq:
            - {repeat: "${s + 1}", inline: true, seq: [conv: {out: "${8 * (s + 1)}", kernel: 1}]}
            - maxpool: {kernel: 2}
        """)
    shaped = netspec.shaped_network(path)
    assert [(n, shaped.facts[n].shape[0]) for n in shaped.nodes if shaped.nodes[n].is_op] == [
        ("0", 8), ("1", 8), ("2", 16), ("3", 16), ("4", 16)]


def test_inline_items_see_the_enclosing_seqs_names_and_are_seen_after_it(tmp_path):
    path = write(tmp_path, """\
        - {name: stem, conv: {out: 4, kernel: 1}}
        - inline: true
          seq:
            - {name: act, relu: {}}
            - {name: sum, add: {from: [stem, act]}}
        - {name: out, add: {from: [sum, act]}}
        """)
    assert ops(path) == {"stem": "conv", "act": "relu", "sum": "add", "out": "add"}


def test_the_compiled_state_dict_keys_are_flat(tmp_path):
    path = write(tmp_path, """\
        - name: features
          seq:
            - {repeat: 2, inline: true, seq: [conv: {out: 4, kernel: 3, padding: 1}, relu]}
        """)
    with torch.device("meta"):
        keys = list(netspec.load(path).state_dict())
    assert keys == ["features.0.weight", "features.0.bias", "features.2.weight", "features.2.bias"]


@pytest.mark.parametrize("item, message", [
    ("- {inline: true, relu: {}}", "`inline` applies to a `seq`, not to `relu`"),
    ("- {name: block, inline: true, seq: [relu]}", "an inline seq has no name"),
    ("- {repeat: 2, inline: true, seq: [{name: act, relu: {}}]}", "duplicate name `act`"),
])
def test_misuses_of_inline_are_located_errors(tmp_path, item, message):
    with pytest.raises(SpecErrors) as caught:
        netspec.shaped_network(write(tmp_path, item))
    assert message in str(caught.value)
    assert caught.value.errors[0].mark.line == 6
