"""The editor's view (docs/editor.md): the published schema file alone, as the YAML language server applies it,
accepts every shipped spec and library, refuses the bad specs that netspec's schema stage refuses, never refuses
what `netspec validate` accepts, and describes every op and block param with its default and choices."""

from __future__ import annotations

import json

import jsonschema
import pytest
import yaml

from conftest import REPO, SPECS, spec_params
from netspec.errors import SpecErrors
from netspec.frontend.grammar import SCHEMA_PATH
from netspec.frontend.schema import schema_errors
from netspec.frontend.yaml_source import read_document
from netspec.ops import OPS
from netspec.pipeline import load_spec

PUBLISHED = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
# The YAML language server implements draft-07 (docs/editor.md); the schema declares 2020-12.  Both read it alike
# because it uses only keywords whose meaning is the same in the two drafts ($defs is reached by JSON pointer).
VALIDATORS = {"draft-07": jsonschema.Draft7Validator(PUBLISHED), "2020-12": jsonschema.Draft202012Validator(PUBLISHED)}
DRAFT7_KEYWORDS = {"$defs", "$id", "$ref", "$schema", "additionalProperties", "anyOf", "const", "default",
                   "description", "enum", "exclusiveMaximum", "exclusiveMinimum", "items", "maxItems", "maximum",
                   "minItems", "minProperties", "minimum", "pattern", "properties", "propertyNames", "required",
                   "title", "type"}
BAD = sorted((REPO / "tests" / "bad_specs").glob("*.yaml"))


def keywords(node, inside_names=False) -> set[str]:
    found = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if not inside_names:
                found.add(key)
            found |= keywords(value, key in ("properties", "$defs"))
    elif isinstance(node, list):
        for value in node:
            found |= keywords(value)
    return found


def test_the_schema_uses_only_keywords_that_draft_07_reads_alike():
    assert keywords(PUBLISHED) <= DRAFT7_KEYWORDS, keywords(PUBLISHED) - DRAFT7_KEYWORDS


@pytest.mark.parametrize("path", spec_params(sorted(SPECS.rglob("*.yaml"))))
def test_every_shipped_file_passes_the_published_schema_alone_and_netspec(path):
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    for draft, validator in VALIDATORS.items():
        assert [e.message for e in validator.iter_errors(data)] == [], draft
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# yaml-language-server: $schema=") and first.endswith("netspec.schema.json")
    target = (path.parent / first.split("$schema=", 1)[1]).resolve()
    assert target == SCHEMA_PATH.resolve(), "the modeline points at the published schema"
    if "body" in data:
        assert load_spec(path).name


def plain_data(path):
    """The document as an editor's YAML parser reads it, or None when it is no YAML mapping at all (syntax
    errors, tags, bad encodings: the editor's YAML check, not the schema, reports those)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.stem)
def test_the_editor_and_netspec_agree_on_each_bad_spec(path):
    data = plain_data(path)
    if data is None:
        pytest.skip("not a YAML mapping: no schema applies")
    editor_refuses = not VALIDATORS["draft-07"].is_valid(data)
    try:
        netspec_schema_refuses = bool(list(schema_errors(read_document(path))))
    except SpecErrors:
        pytest.skip("netspec's reader refuses it before the schema (size, aliases, duplicate keys)")
    if editor_refuses:  # never a false alarm in the editor: netspec refuses it too
        with pytest.raises(SpecErrors):
            load_spec(path)
    assert editor_refuses == netspec_schema_refuses


def test_every_op_param_has_a_description_its_default_and_its_choices():
    items = PUBLISHED["$defs"]["item_map"]["properties"]
    for name, op in OPS.items():
        entry = items[name]
        schema = entry["anyOf"][0] if "anyOf" in entry and "properties" not in entry else entry
        assert entry["description"].startswith(f"`{name}`: ")
        for key, param in op.params.items():
            described = schema["properties"][key]
            assert param.doc in described["description"], (name, key)
            assert ("default" in described) == (not param.required), (name, key)
            if not param.required:
                assert described["default"] == json.loads(json.dumps(param.default)), (name, key)
            if param.choices:
                assert {"enum": list(param.choices)} in described["anyOf"], (name, key)


def test_every_library_block_is_described_with_its_params_and_defaults():
    from netspec.frontend.catalog import catalog

    items = PUBLISHED["$defs"]["item_map"]["properties"]
    _, blocks = catalog()
    assert blocks
    for block in blocks:
        entry = items[block.name]
        assert entry["description"].startswith(f"`{block.name}` (block from `imports: [{block.source}]`)")
        assert set(entry["properties"]) == set(block.params)
        for key, param in block.params.items():
            assert entry["properties"][key]["description"]
            assert entry["properties"][key].get("default", "required") == param.get("default", "required")


def test_lint_rules_are_offered_as_choices():
    from netspec.frontend.grammar import LINT_RULES

    ignore = PUBLISHED["$defs"]["lint"]["properties"]["ignore"]
    assert ignore["items"]["enum"] == list(LINT_RULES)
    assert all(rule in ignore["description"] for rule in LINT_RULES)
