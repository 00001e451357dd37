"""docs/errors.md is generated from the bad-input catalogue (tools/errors_doc.py) and must not go stale; every
case carries a category and a fix, and every category of tools/errors_doc.py is covered."""

from __future__ import annotations

import importlib.util
import sys

import pytest

from conftest import REPO


def load_tool():
    spec = importlib.util.spec_from_file_location("errors_doc", REPO / "tools" / "errors_doc.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tool():
    return load_tool()


def test_docs_errors_md_is_the_generated_page(tool):
    assert (REPO / "docs" / "errors.md").read_text(encoding="utf-8") == tool.render(), \
        "docs/errors.md is stale: run .venv/bin/python tools/errors_doc.py"


def test_every_case_has_a_category_a_fix_and_an_expected_first_line(tool):
    for case in tool.all_cases():
        assert case.category in tool.CATEGORIES and case.fix.endswith(".") and ": error: " in case.first_line


def test_every_category_has_cases_and_the_catalogue_has_at_least_forty(tool):
    cases = tool.all_cases()
    counts = {category: sum(c.category == category for c in cases) for category in tool.CATEGORIES}
    assert set(counts) == {"syntax", "schema", "semantics", "shapes", "expressions", "imports", "bounds", "security"}
    assert min(counts.values()) >= 5 and len(cases) >= 40, counts


def test_the_generated_cases_match_those_the_catalogue_test_writes(tool):
    from test_errors import ALL_NAMES

    assert {c.name for c in tool.GENERATED} <= set(ALL_NAMES)
    assert sorted(c.name for c in tool.all_cases()) == sorted(ALL_NAMES)


def test_a_case_without_a_fix_is_refused_by_the_tool(tool, tmp_path):
    case = tmp_path / "x.yaml"
    case.write_text("# expect: x.yaml:1:1: error: y\nnetspec: 1\n# category: syntax\n")
    with pytest.raises(ValueError, match="no `# fix:` line"):
        tool.read_case(case)
