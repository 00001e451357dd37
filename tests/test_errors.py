"""The bad-input catalogue: every case in tests/bad_specs/ is refused as a user mistake — exit 2, a located first
line `file:line:col: error: …`, no traceback — quickly, by a fresh `python -m netspec validate` as a user runs it.
"Quickly" is measured in the CPU time of that process (tests/cpu_time.py), which a busy machine does not inflate
as it does the time on the wall.

A case is one `tests/bad_specs/*.yaml` whose first line is `# expect: <the first line of the error>` (paths as
the CLI prints them from the repository root; the line is matched as a prefix).  Files a case needs but that are
no case themselves (import targets) live in tests/bad_specs/lib/.  Cases too big to commit are generated below.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import REPO, run_cli
from cpu_time import CpuRun, run_cli_cpu

CASES_DIR = REPO / "tests" / "bad_specs"
CASES = sorted(CASES_DIR.glob("*.yaml"))
CPU_LIMIT = 2.0    # CPU seconds per run, start-up included (about 0.4 s); "within a second", with headroom
MIN_CASES = 40


def expectation(path: Path) -> str:
    first = path.read_bytes().split(b"\n", 1)[0].decode("utf-8")
    assert first.startswith("# expect: "), f"{path.name}: the first line must be `# expect: <first error line>`"
    return first[len("# expect: "):].strip()


def generated_cases(folder: Path) -> dict[Path, str]:
    """Bounds cases whose files would be too big (or impossible, for a 0-byte file) to commit with a comment."""
    cases = {}
    empty = folder / "zero_bytes.yaml"
    empty.write_bytes(b"")
    cases[empty] = f"{empty}:1:1: error: the file is empty"

    # 100 distinct templates, each calling the next: deeper than the nesting limit, and no recursion.
    deep = folder / "deep_templates.yaml"
    blocks = [f"  t{i}: {{seq: [{f't{i + 1}' if i < 99 else 'relu'}]}}" for i in range(100)]
    deep.write_text("\n".join(["netspec: 1", "name: deep", "input: [4]", "blocks:", *blocks, "body: [t0]", ""]))
    cases[deep] = f"{deep}:68:15: error: templates nested more than 64 deep"  # t63's body calls t64

    big = folder / "huge_expression.yaml"
    expression = "${" + "1+" * 600_000 + "1}"          # 1.2 MB in one string
    big.write_text(f'netspec: 1\nname: big\ninput: [4]\nbody:\n  - linear: {{out: "{expression}"}}\n')
    cases[big] = f"{big}:5:19: error: in an expression: expression is 1,200,004 characters long; the limit is 1000"
    return cases


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict[str, tuple[str, CpuRun]]:
    """Every case run once, two at a time (2 cores), keyed by case name: (expected first line, the run)."""
    expected = {path: expectation(path) for path in CASES}
    expected |= generated_cases(tmp_path_factory.mktemp("generated"))

    def run(path: Path) -> CpuRun:
        shown = str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)
        return run_cli_cpu("validate", shown)

    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = dict(zip(expected, pool.map(run, expected)))
    return {path.stem: (expected[path], runs[path]) for path in expected}


ALL_NAMES = [p.stem for p in CASES] + ["zero_bytes", "deep_templates", "huge_expression"]


def test_the_catalogue_covers_at_least_forty_cases():
    assert len(ALL_NAMES) >= MIN_CASES


@pytest.mark.parametrize("name", ALL_NAMES)
def test_a_bad_spec_exits_2_with_its_located_first_line_and_no_traceback(results, name):
    expected, run = results[name]
    assert run.code == 2, run.stderr
    assert run.first_error_line.startswith(expected), f"\nexpected: {expected}\nfound:    {run.first_error_line}"
    assert "Traceback" not in run.stdout + run.stderr
    assert "internal error" not in run.stderr


@pytest.mark.parametrize("name", ALL_NAMES)
def test_a_bad_spec_is_refused_within_two_seconds_of_cpu_time(results, name):
    assert results[name][1].cpu < CPU_LIMIT


def test_the_slowest_refusal_is_reported(results, capsys):
    slowest = max(results, key=lambda n: results[n][1].cpu)
    with capsys.disabled():
        print(f"\n[bad specs] {len(results)} cases; slowest: {slowest} in {results[slowest][1].cpu:.2f} s of CPU time")
    assert results[slowest][1].cpu < CPU_LIMIT


def test_every_error_line_shows_the_source_line_with_a_caret_when_the_file_is_readable(results):
    for name, (_, run) in results.items():
        lines = run.stderr.splitlines()
        if name not in ("zero_bytes", "yaml_syntax") and len(lines) > 2 and " | " in lines[1]:
            assert lines[2].rstrip().endswith("^"), name


def test_one_run_reports_every_independent_error():
    """A misspelt op (a semantic rule) and a bad value (the schema) in the same file: both, in source order."""
    run = run_cli("validate", "tests/bad_specs/two_errors.yaml")
    located = [line for line in run.stderr.splitlines() if ": error: " in line]
    assert run.code == 2
    assert [line.split(": error: ")[1] for line in located] == [
        "unknown op or template `sigmod`", "invalid value in `body.2.linear.bias`: 'maybe'"]
    assert run.stderr.rstrip().endswith("2 errors")


def test_independent_expansion_errors_are_all_reported(tmp_path):
    spec = tmp_path / "three.yaml"
    spec.write_text("netspec: 1\nname: three\ninput: [3, 8, 8]\nbody:\n"
                    "  - {from: nowhere, relu: {}}\n"
                    "  - conv: {out: \"${1 // 0}\", kernel: 3}\n"
                    "  - conv: {out: $undefined, kernel: 3}\n")
    run = run_cli("validate", str(spec))
    located = [line for line in run.stderr.splitlines() if ": error: " in line]
    assert [line.split(": error: ")[0].rsplit(":", 2)[1] for line in located] == ["5", "6", "7"]


def test_several_files_on_one_command_line_report_all_their_errors():
    run = run_cli("validate", "tests/bad_specs/unknown_op.yaml", "specs/lenet.yaml", "tests/bad_specs/unknown_key.yaml")
    assert run.code == 2
    assert "specs/lenet.yaml: ok" in run.stdout
    located = [line for line in run.stderr.splitlines() if ": error: " in line]
    assert [line.split(":")[0] for line in located] == ["tests/bad_specs/unknown_op.yaml",
                                                        "tests/bad_specs/unknown_key.yaml"]


def test_an_error_inside_a_template_names_the_call_site_and_the_definition():
    run = run_cli("validate", "tests/bad_specs/template_shape_error.yaml")
    assert ("in template `shortcut` (tests/bad_specs/template_shape_error.yaml:6:3), called at "
            "tests/bad_specs/template_shape_error.yaml:13:5") in run.stderr


def test_a_wrong_template_argument_points_at_the_call_and_notes_the_definition():
    run = run_cli("validate", "tests/bad_specs/template_extra_arg.yaml")
    assert "hint: did you mean `stride`?" in run.stderr
    assert "template `stage` is defined at tests/bad_specs/lib/blocks.yaml:4:3" in run.stderr


@pytest.mark.parametrize("name, pointer", [
    ("unknown_op", "/body/1"),                                  # a rule of validation
    ("expr_division_by_zero", "/body/0/conv/out"),              # expansion
    ("from_unknown_in_template", "/blocks/skip/seq/1/add/from/1"),
    ("template_shape_error", "/blocks/shortcut/add"),           # shape inference
])
def test_errors_carry_the_key_path_of_what_they_point_at(results, name, pointer):
    assert f"\n  at: {pointer}\n" in results[name][1].stderr


@pytest.mark.parametrize("name, hint", [
    ("unknown_key", "did you mean `body`?"),
    ("unknown_op", "did you mean `batchnorm`?"),
    ("unknown_template", "did you mean `inception` or `inception_aux`?"),
    ("unknown_op_param", "did you mean `kernel`?"),
    ("from_unknown", "did you mean `stem`?"),
    ("from_unknown_in_template", "did you mean `input`?"),
    ("unknown_train_key", "did you mean `epochs`?"),
])
def test_unknown_names_come_with_a_suggestion(results, name, hint):
    assert f"hint: {hint}" in results[name][1].stderr


def test_every_case_file_but_the_generated_ones_is_committed_small():
    assert all(path.stat().st_size < 4096 for path in CASES)
