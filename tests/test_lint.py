"""`netspec lint`: each rule on a deliberately flawed spec (tests/lint_specs/, whose first line says which rule
fires where), grouping by place, dead branches reported once, silencing with `lint:`, the zoo's silence, and
the command's output and exit codes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from conftest import REPO, all_specs, spec_params
from netspec.cli import main
from netspec.frontend.grammar import LINT_RULES
from netspec.passes.lint import lint
from netspec.pipeline import shaped_network

FIXTURES = sorted((REPO / "tests" / "lint_specs").glob("*.yaml"))


def expected(path: Path) -> tuple[str, int, int] | None:
    """From the fixture's first line, `# lint: RULE at LINE:COL` (or `# lint: nothing`)."""
    first = path.read_text(encoding="utf-8").split("\n", 1)[0]
    if first == "# lint: nothing":
        return None
    rule, line, col = re.fullmatch(r"# lint: (\S+) at (\d+):(\d+)", first).groups()
    return rule, int(line), int(col)


def findings(path: Path, **kwargs):
    return lint(shaped_network(path), **kwargs)


def test_every_rule_has_a_flawed_fixture():
    assert {expected(p)[0] for p in FIXTURES if expected(p)} == set(LINT_RULES)


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_each_fixture_gets_its_finding_at_its_place_and_no_other_warning(path):
    want = expected(path)
    got = [(f.rule, f.mark.line, f.mark.col) for f in findings(path)]
    warnings = [(f.rule, f.mark.line, f.mark.col) for f in findings(path) if f.severity == "warning"]
    if want is None:
        assert got == []
        return
    assert want in got
    assert warnings in ([], [want])   # the fixture's flaw is its only warning (an info finding may come along)
    mark = next(f.mark for f in findings(path) if f.rule == want[0])
    assert mark.file == str(path.relative_to(REPO)) or Path(mark.file).resolve() == path.resolve()


@pytest.mark.parametrize("path", spec_params())
def test_the_zoo_has_no_warnings_and_says_why_where_one_is_silenced(path):
    everything = findings(path, silenced=True)
    assert [f.first_line() for f in everything if not f.silenced and f.severity != "info"] == []
    for finding in everything:
        if finding.silenced:  # every `lint:` of the zoo gives its reason (in the spec, or the library it is in)
            texts = [(REPO / file).read_text(encoding="utf-8") for file in (finding.mark.file, path)]
            assert any("reason:" in text for text in texts)


def test_findings_in_a_template_are_grouped_with_their_instances():
    path = REPO / "tests" / "lint_specs" / "grouped.yaml"
    [finding] = [f for f in findings(path) if f.rule == "bias-before-batchnorm"]
    assert len(finding.instances) == 20
    assert finding.instances[0].node == "stage1.0.0" and finding.instances[-1].node == "stage2.9.0"
    assert "in 20 instances: stage1.0.0, stage1.1.0" in finding.error().notes[0].text
    assert finding.to_json()["count"] == 20


def test_a_dead_branch_is_reported_once_as_a_whole():
    path = REPO / "tests" / "lint_specs" / "unused.yaml"
    [finding] = [f for f in findings(path) if f.rule == "unused"]
    assert [(i.node, i.detail) for i in finding.instances] == [("aux", "4 nodes, aux.0 … aux.3")]


def test_a_dead_node_alone_is_named(tmp_path):
    spec = tmp_path / "dead.yaml"
    spec.write_text("netspec: 1\nname: dead\ninput: [4]\nbody:\n  - {name: a, linear: {out: 8}}\n"
                    "  - {name: side, linear: {out: 8}}\n  - {from: a, linear: {out: 8}}\n", encoding="utf-8")
    [finding] = findings(spec)
    assert (finding.message, finding.mark.line, finding.instances[0].node) == \
        ("the output of this `linear` is never used", 6, "side")


def test_lint_silences_only_the_rules_named_and_only_inside_the_item(tmp_path):
    body = ("netspec: 1\nname: s\ninput: [3, 8, 8]\nbody:\n"
            "  - {name: a, seq: [conv: {out: 8, kernel: 3}, batchnorm], lint: {ignore: [%s]}}\n"
            "  - conv: {out: 8, kernel: 3}\n  - batchnorm\n  - flatten\n  - linear: {out: 2}\n")
    spec = tmp_path / "s.yaml"
    spec.write_text(body % "bias-before-batchnorm", encoding="utf-8")
    assert [(f.rule, f.mark.line) for f in findings(spec)] == [("bias-before-batchnorm", 6)]
    assert [(f.rule, f.mark.line, f.silenced) for f in findings(spec, silenced=True)][0] == \
        ("bias-before-batchnorm", 5, True)
    spec.write_text(body % "unused", encoding="utf-8")
    assert [f.mark.line for f in findings(spec)] == [5, 6]


def test_a_template_called_with_and_without_lint_is_reported_for_the_loud_calls(tmp_path):
    spec = tmp_path / "t.yaml"
    spec.write_text("netspec: 1\nname: t\ninput: [3, 8, 8]\nblocks:\n  cb:\n    seq: [conv: {out: 8, kernel: 1}, "
                    "batchnorm]\nbody:\n  - {name: x, cb: {}, lint: {ignore: [bias-before-batchnorm]}}\n"
                    "  - {name: y, cb: {}}\n  - flatten\n  - linear: {out: 2}\n", encoding="utf-8")
    [finding] = findings(spec)
    assert [i.node for i in finding.instances] == ["y.0"]


def test_dropped_pixels_follows_pytorchs_floor_formula():
    """Checked against torch: the windows of a conv with the fixture's sizes really stop short of the last row."""
    torch = pytest.importorskip("torch")
    x = torch.zeros(1, 1, 4, 4)
    x[..., 3, :] = 1.0   # only the last row is set
    conv = torch.nn.Conv2d(1, 1, 3, stride=2, bias=False)
    torch.nn.init.ones_(conv.weight)
    assert conv(x).abs().sum().item() == 0.0  # the dropped row never reaches the output
    x = torch.zeros(1, 1, 32, 32)
    x[..., 31, :] = 1.0
    conv = torch.nn.Conv2d(1, 1, 7, stride=2, padding=3, bias=False)  # the fixture's first conv: not flagged
    torch.nn.init.ones_(conv.weight)
    assert conv(x).abs().sum().item() > 0.0


def test_a_cycle_in_a_transformed_graph_is_an_error(tmp_path):
    from netspec.passes.expand import expand
    from netspec.pipeline import load_spec

    spec = tmp_path / "c.yaml"
    spec.write_text("netspec: 1\nname: c\ninput: [4]\nbody:\n  - {name: a, linear: {out: 4}}\n"
                    "  - {name: b, relu: {}}\n", encoding="utf-8")
    network = expand(load_spec(spec))
    network.graph.add_edge("b", "a")
    [finding] = lint(network)
    assert finding.severity == "error" and finding.message.startswith("the graph has a cycle")


# ── the command ───────────────────────────────────────────────────────────────────────────────────────────────

def cli(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_lint_exits_0_with_warnings_1_with_strict_and_2_on_a_broken_spec(capsys):
    flawed = "tests/lint_specs/double_activation.yaml"
    code, _, err = cli(capsys, "lint", flawed)
    assert code == 0 and err.startswith(f"{flawed}:8:5: warning: two activations in a row: `relu` then `relu6` "
                                        "[double-activation]")
    assert err.rstrip().endswith("1 warning")
    assert cli(capsys, "lint", flawed, "--strict")[0] == 1
    assert cli(capsys, "lint", "lenet", "--strict")[0] == 0      # info findings never fail --strict
    code, _, err = cli(capsys, "lint", "tests/bad_specs/two_errors.yaml", flawed)
    assert code == 2 and "[double-activation]" in err and err.count(": error: ") == 2


def test_lint_counts_info_and_silenced_findings_and_shows_info_with_a_flag(capsys):
    code, _, err = cli(capsys, "lint", "nin")
    assert code == 0 and err == ("no warnings (5 silenced by `lint:` in the specs; 2 info findings not shown: "
                                 "--info shows them)\n")
    _, _, err = cli(capsys, "lint", "lenet", "--info")
    assert err.count(": info: ") == 2 and "[unaligned-channels]" in err and err.rstrip().endswith("2 info")


def test_lint_json_has_rule_count_and_instances(capsys):
    code, out, err = cli(capsys, "lint", "lenet", "tests/lint_specs/grouped.yaml", "--json", "--strict")
    clean, grouped = json.loads(out)["specs"]
    assert code == 1 and err == ""
    assert {w["severity"] for w in clean["warnings"]} == {"info"} and clean["silenced"] == 0
    [warning] = grouped["warnings"]
    assert (warning["rule"], warning["line"], warning["col"], warning["count"]) == ("bias-before-batchnorm", 10, 9, 20)
    assert warning["instances"][0] == {"node": "stage1.0.0", "detail": None}


def test_every_shipped_spec_lints_clean_from_the_command_line(capsys):
    code, _, err = cli(capsys, "lint", "--strict", *map(str, all_specs()))
    assert code == 0 and err.startswith("no warnings"), err
