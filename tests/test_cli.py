"""The command line (netspec.cli): the acceptance commands, exit codes, one-line usage errors, and the commands
that must answer without importing torch.

Most checks call `main()` in-process (fast); the acceptance commands and the import checks run a fresh
interpreter, as a user would.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from netspec.cli import main

from conftest import REPO, all_specs, run_cli, run_python


def cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


# ── the acceptance commands ───────────────────────────────────────────────────────────────────────────────────

def test_validate_accepts_every_shipped_spec_in_one_run():
    run = run_cli("validate", *[str(p.relative_to(REPO)) for p in all_specs()])
    assert run.code == 0, run.stderr
    assert run.stdout.count(": ok") == len(all_specs())


def test_summary_of_googlenet_reports_the_reference_parameter_count(capsys):
    code, out, _ = cli(capsys, "summary", "googlenet")
    assert code == 0
    assert "total params: 5,977,530" in out


def test_summary_json_parses_and_its_rows_add_up(capsys):
    code, out, _ = cli(capsys, "summary", "googlenet", "--json")
    summary = json.loads(out)
    assert code == 0 and summary["params"] == 5_977_530 and summary["output"] == [10]
    assert sum(row["params"] for row in summary["rows"] if not row["block"]) == 5_977_530
    assert {"name", "op", "shape", "params", "macs"} <= set(summary["rows"][0])


def test_summary_depth_zero_shows_only_the_top_level_blocks(capsys):
    code, out, _ = cli(capsys, "summary", "googlenet", "--depth", "0", "--json")
    rows = json.loads(out)["rows"]
    assert code == 0
    assert [row["name"] for row in rows] == ["b1", "b2", "b3", "b4", "b5", "fc"]
    assert sum(row["params"] for row in rows) == 5_977_530


def test_summary_depth_one_opens_the_top_level_blocks_and_shows_inceptions_as_rows(capsys):
    code, out, _ = cli(capsys, "summary", "googlenet", "--depth", "1", "--json")
    rows = json.loads(out)["rows"]
    assert code == 0
    inceptions = [row for row in rows if row["op"] == "inception"]
    assert len(inceptions) == 9 and all(row["block"] for row in inceptions)
    assert not any(row["name"].startswith("b3.0.") for row in rows)
    assert sum(row["params"] for row in rows if row["depth"] == 1 or not row["block"] and row["depth"] == 0) == 5_977_530


def test_list_names_the_builtin_specs_and_blocks_with_their_docs(capsys):
    code, out, _ = cli(capsys, "list")
    assert code == 0
    assert out.startswith("specs:") and "\nblocks:" in out
    assert "googlenet " in out and "GoogLeNet" in out and "inception " in out


def test_schema_prints_json(capsys):
    code, out, _ = cli(capsys, "schema")
    assert code == 0 and json.loads(out)["$schema"].endswith("2020-12/schema")


def test_load_builds_the_googlenet_of_the_issue():
    import torch

    import netspec

    assert netspec.load("specs/googlenet.yaml")(torch.zeros(2, 1, 96, 96)).shape == (2, 10)


# ── torch stays unimported ────────────────────────────────────────────────────────────────────────────────────

def test_validate_summary_list_and_schema_never_import_torch():
    probe = ("import contextlib, io, sys\n"
             "from netspec.cli import main\n"
             "for args in (['validate', 'specs/googlenet.yaml', 'specs/bn_lenet.yaml'], ['summary', 'googlenet'],\n"
             "             ['summary', 'lenet', '--json'], ['list'], ['schema'], ['validate', 'nosuchspec'],\n"
             "             ['validate', 'lenet', '--json'], ['lint', 'lenet', '--json'], ['list', '--json'],\n"
             "             ['completion', 'bash']):\n"
             "    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):\n"
             "        code = main(args)\n"
             "    print(args[0], code, 'torch' in sys.modules)\n")
    run = run_python(probe)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split("\n")[:-1] == ["validate 0 False", "summary 0 False", "summary 0 False", "list 0 False",
                                           "schema 0 False", "validate 2 False", "validate 0 False", "lint 0 False",
                                           "list 0 False", "completion 0 False"]


def test_a_cold_validate_takes_well_under_a_second_of_cpu():
    """CPU time of the child, not wall time (the cores are shared); a cold validate takes about 0.3 s."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    run = run_cli("validate", "specs/lenet.yaml")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    assert run.code == 0 and cpu < 2.0


# ── the terminal ──────────────────────────────────────────────────────────────────────────────────────────────

@pytest.mark.parametrize("args, code", [(["summary", "lenet"], 0), (["validate", "lenet"], 0),
                                        (["validate", "tests/bad_specs/add_shape_mismatch.yaml"], 2)])
def test_a_terminal_that_cannot_show_unicode_gets_ascii_instead_of_an_error(args, code):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    done = subprocess.run([sys.executable, "-m", "netspec", *args], cwd=REPO, capture_output=True, timeout=60,
                          env={**env, "PYTHONIOENCODING": "ascii"})
    assert done.returncode == code and b"internal error" not in done.stderr, done.stderr
    text = done.stdout + done.stderr
    assert text.isascii() and b"?" not in text  # every character the output uses has its ASCII stand-in
    assert b"1x28x28" in text or b"ok - " in text or b"a 1x1 conv" in text


# ── params on the command line ────────────────────────────────────────────────────────────────────────────────

def test_set_overrides_a_param(capsys):
    code, out, _ = cli(capsys, "summary", "googlenet", "--set", "num_classes=100", "--json")
    assert code == 0 and json.loads(out)["output"] == [100]


def test_set_reads_yaml_values(capsys):
    code, out, _ = cli(capsys, "validate", "googlenet", "--set", "size=64", "--set", "in_channels=3")
    assert code == 0 and "output [10]" in out


@pytest.mark.parametrize("args, first", [
    (["--set", "num_classes"], "netspec: error: --set expects name=value, got 'num_classes'"),
    (["--set", "num_classes=[1"], "netspec: error: --set num_classes: cannot read the value '[1'"),
])
def test_a_malformed_set_is_one_line_and_exit_2(capsys, args, first):
    code, out, err = cli(capsys, "validate", "lenet", *args)
    assert code == 2 and err.splitlines() == [first]


def test_a_set_of_an_unknown_param_is_a_located_error_with_a_suggestion(capsys):
    code, _, err = cli(capsys, "validate", "lenet", "--set", "num_clases=3")
    assert code == 2
    assert err.splitlines()[0] == "specs/lenet.yaml:5:1: error: unknown param `num_clases` in the overrides"
    assert "hint: did you mean `num_classes`?" in err


def test_a_set_of_the_wrong_type_is_a_located_error(capsys):
    code, _, err = cli(capsys, "validate", "lenet", "--set", "num_classes=ten")
    assert code == 2 and err.startswith("specs/lenet.yaml:6:3: error: param `num_classes` (--set): expected int")


# ── usage mistakes ────────────────────────────────────────────────────────────────────────────────────────────

@pytest.mark.parametrize("args, start", [
    (["frobnicate"], "netspec: error: unknown command 'frobnicate'; `netspec -h` lists the commands"),
    (["valdiate", "lenet"], "netspec: error: unknown command 'valdiate'; did you mean `validate`?"),
    (["--debug", "summry"], "netspec: error: unknown command 'summry'; did you mean `summary`?"),
    (["validate", "--bogus", "lenet"], "netspec: error: unrecognized arguments: --bogus"),
    (["summary", "lenet", "--depth", "x"], "netspec: error: argument --depth: invalid int value: 'x'"),
    (["validate"], "netspec: error: the following arguments are required: SPEC"),
])
def test_a_usage_mistake_is_one_line_and_exit_2(capsys, args, start):
    code, out, err = cli(capsys, *args)
    assert code == 2 and out == ""
    assert len(err.splitlines()) == 1 and err.startswith(start)


def test_a_usage_mistake_from_a_fresh_interpreter_has_no_traceback():
    run = run_cli("frobnicate")
    assert run.code == 2 and len(run.stderr.splitlines()) == 1 and "Traceback" not in run.stderr


def test_an_unknown_spec_name_exits_2_with_a_suggestion(capsys):
    code, _, err = cli(capsys, "summary", "googlenett")
    assert code == 2
    assert err.splitlines()[0] == "googlenett:1:1: error: no spec file or built-in spec named `googlenett`"
    assert "did you mean `googlenet`" in err


def test_a_bad_spec_exits_2_and_says_how_many_errors(capsys):
    code, _, err = cli(capsys, "validate", "tests/bad_specs/two_errors.yaml")
    assert code == 2 and err.rstrip().endswith("2 errors")


def test_an_internal_error_exits_1_with_one_line_unless_debug(capsys, monkeypatch):
    import netspec.pipeline

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(netspec.pipeline, "shaped_network", broken)
    code, _, err = cli(capsys, "validate", "lenet")
    assert code == 1 and err.splitlines() == [
        "netspec: internal error: RuntimeError: boom (run with --debug for a traceback)"]
    for args in (["--debug", "validate", "lenet"], ["validate", "--debug", "lenet"], ["validate", "lenet", "--debug"]):
        code, _, err = cli(capsys, *args)
        assert code == 1 and "Traceback" in err, args


# ── what people expect of a command line ─────────────────────────────────────────────────────────────────────

MINE = ("validate", "summary", "lint", "compile", "list", "schema", "completion", "draw", "view")  # train, eval and
# export are described in netspec/cli/train.py, with SPEC's help checked there


@pytest.mark.parametrize("args", [[], ["--debug"]])
def test_a_bare_netspec_prints_the_usage_and_every_command_and_exits_2(capsys, args):
    code, out, err = cli(capsys, *args)
    assert code == 2 and out == "" and err.startswith("usage: netspec")
    from netspec.cli import build_parser

    assert all(f"\n    {name}" in err for name in build_parser().commands)


def flags(command: str):
    from netspec.cli import build_parser

    return [a for a in build_parser().commands[command]._actions if a.option_strings and a.dest != "help"]


@pytest.mark.parametrize("command", MINE + ("train", "eval", "export", "diff", "compat", "new", "upgrade"))
def test_every_flag_has_help_that_shows_its_default(command):
    lacking = [a.option_strings[0] for a in flags(command)
               if not a.help or "(default: " not in a.help and not a.required]   # a required flag has none
    assert lacking == []


@pytest.mark.parametrize("command", [c for c in MINE if c not in ("list", "schema", "completion")])
def test_spec_is_described_as_a_path_or_a_built_in_name(command):
    from netspec.cli import build_parser

    spec = next(a for a in build_parser().commands[command]._actions if a.metavar == "SPEC")
    assert spec.help.startswith(("a path or a built-in name", "paths or built-in names"))


def test_validate_json_lists_each_spec_with_its_facts_or_its_located_errors(capsys):
    code, out, err = cli(capsys, "validate", "lenet", "tests/bad_specs/two_errors.yaml", "--json")
    report = json.loads(out)
    assert code == 2 and err == "" and report["errors"] == 2
    ok, bad = report["specs"]
    assert ok == {"spec": "lenet", "ok": True, "name": "lenet", "params": 61_706, "macs": 416_520,
                  "input": [1, 28, 28], "output": [10], "errors": []}
    assert bad["ok"] is False and len(bad["errors"]) == 2
    assert set(bad["errors"][0]) == {"severity", "message", "file", "line", "col", "path", "expected", "found", "hint",
                                     "notes"}
    assert bad["errors"][0]["file"] == "tests/bad_specs/two_errors.yaml" and bad["errors"][0]["line"] >= 1


def test_lint_json_lists_warnings_per_spec_and_strict_sets_the_exit_code(capsys, tmp_path):
    spec = tmp_path / "unused.yaml"
    spec.write_text("netspec: 1\nname: unused\ninput: [3, 8, 8]\nbody:\n  - {name: side, relu: {}}\n"
                    "  - {from: input, flatten: {}}\n", encoding="utf-8")
    code, out, _ = cli(capsys, "lint", "lenet", str(spec), "--json")
    clean, warned = json.loads(out)["specs"]
    assert code == 0 and {w["severity"] for w in clean["warnings"]} <= {"info"} and clean["ok"]
    assert [w["message"] for w in warned["warnings"]] == ["the output of this `relu` is never used"]
    assert warned["warnings"][0]["severity"] == "warning" and warned["warnings"][0]["line"] == 5
    assert cli(capsys, "lint", str(spec), "--json", "--strict")[0] == 1


def test_list_shows_only_public_blocks_each_with_the_import_that_brings_it(capsys):
    code, out, _ = cli(capsys, "list", "--json")
    listing = json.loads(out)
    blocks = {b["name"]: b for b in listing["blocks"]}
    assert code == 0 and "double_conv" not in blocks  # defined inside specs/examples/unet.yaml: private
    assert blocks["residual"]["import"] == "blocks/residual.yaml"
    assert blocks["residual"]["params"]["stride"] == {"type": "int", "default": 1}
    assert all(b["import"].startswith("blocks/") for b in listing["blocks"])
    assert {"name": "lenet", "doc": listing["specs"][-1]["doc"], "params": {}}.keys() == listing["specs"][0].keys()
    _, text, _ = cli(capsys, "list")
    assert "double_conv" not in text and "imports: [blocks/residual.yaml]" in text


def complete(script: str, line: str) -> list[str]:
    """What bash offers after `line` (a trailing space: a new word) with `script` loaded."""
    words = line.split() + ([""] if line.endswith(" ") else [])
    probe = (f"{script}\nCOMP_WORDS=({' '.join(repr(w) for w in words)}); COMP_CWORD={len(words) - 1}\n"
             '_netspec; printf "%s\\n" "${COMPREPLY[@]}"\n')
    done = subprocess.run(["bash", "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
def test_bash_completion_offers_commands_flags_choices_and_spec_names(capsys):
    code, script, _ = cli(capsys, "completion", "bash")
    assert code == 0 and "complete -o filenames -F _netspec netspec" in script
    assert complete(script, "netspec val") == ["validate"]
    assert complete(script, "netspec draw lenet --rank") == ["--rankdir"]
    assert complete(script, "netspec draw lenet --rankdir ") == ["TB", "LR", "BT", "RL"]
    assert complete(script, "netspec train --optimizer ") == ["sgd", "momentum", "adamw"]
    assert "googlenet" in complete(script, "netspec summary goog")
    assert complete(script, "netspec summary lenet --depth ") == []
    for line in ("netspec diff goog", "netspec diff lenet goog", "netspec compat goog", "netspec view lenet --diff goog",
                 "netspec new mynet --from goog"):
        assert "googlenet" in complete(script, line), line


def test_zsh_completion_is_the_bash_one_through_bashcompinit(capsys):
    _, bash, _ = cli(capsys, "completion", "bash")
    code, zsh, _ = cli(capsys, "completion", "zsh")
    assert code == 0 and zsh.startswith("autoload -U +X bashcompinit && bashcompinit\n")
    assert zsh.split("\n", 2)[2] == bash.split("\n", 1)[1]  # after the first (comment) line, the same script
    if shutil.which("zsh"):
        done = subprocess.run(["zsh", "-n"], input=zsh, capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr


def test_lint_reports_a_broken_spec_and_still_lints_the_others(capsys, tmp_path):
    unused = tmp_path / "unused.yaml"
    unused.write_text("netspec: 1\nname: unused\ninput: [4]\nbody:\n  - {name: a, linear: {out: 4}}\n"
                      "  - {name: dead, linear: {out: 3}}\n  - {from: a, linear: {out: 2}}\n")
    code, _, err = cli(capsys, "lint", "tests/bad_specs/two_errors.yaml", str(unused))
    assert code == 2
    assert "the output of this `linear` is never used" in err and err.count(": error: ") == 2
