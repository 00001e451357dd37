"""Validation (netspec.frontend.validate and the JSON Schema): strict on unknown keys with suggestions, every error located
and reported at once, and the shipped schema in step with the op table."""

from __future__ import annotations

import json
import subprocess
import sys

import jsonschema
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netspec.errors import SpecErrors
from netspec.frontend.grammar import SCHEMA_PATH
from netspec.frontend.schema import fast_check
from netspec.frontend.schema_fast import Unsupported, checker, compile_schema
from netspec.frontend.validate import validate
from netspec.frontend.yaml_source import Document, parse_text, read_document
from netspec.generators.schema import build_schema, render_schema
from netspec.pipeline import load_spec

from conftest import REPO, SPECS, all_specs, run_cli, spec_params
from test_fuzz import LIBRARY_DATA, ORIGINALS, mutated_data

NET = "netspec: 1\nname: net\ninput: [3, 8, 8]\n"


def errors_of(text: str, overrides=None, name: str = "t.yaml") -> list:
    with pytest.raises(SpecErrors) as caught:
        validate([Document(REPO / name, name, parse_text(text, name))], overrides)
    return list(caught.value.errors)


def only_error(text: str, overrides=None):
    errors = errors_of(text, overrides)
    assert len(errors) == 1, [e.first_line() for e in errors]
    return errors[0]


# ── strict on unknown keys ────────────────────────────────────────────────────────────────────────────────────

@pytest.mark.parametrize("text, key, suggestion, line", [
    (NET + "bdy: [relu]\n", "bdy", "body", 4),
    (NET + "body: [relu]\ntrain: {lr: 0.1, epoch: 3}\n", "epoch", "epochs", 5),
    (NET + "body: [relu]\nexpect: {parms: 3}\n", "parms", "params", 5),
    (NET + "body:\n  - conv: {out: 4, kernal: 3}\n", "kernal", "kernel", 5),
    (NET + "body:\n  - maxpool: {kernel: 2, strides: 2}\n", "strides", "stride", 5),
    (NET + "params: {n: {default: 1, tpye: int}}\nbody: [relu]\n", "tpye", "type", 4),
])
def test_an_unknown_key_is_refused_at_the_key_with_a_suggestion(text, key, suggestion, line):
    error = only_error(text)
    assert error.message.startswith(f"unknown key `{key}`")
    assert error.hint == f"did you mean `{suggestion}`?"
    assert error.mark.line == line
    assert error.path.endswith(f"/{key}")


def test_an_unknown_op_is_refused_with_a_suggestion_among_ops_and_templates():
    error = only_error(NET + "blocks:\n  stage: {seq: [relu]}\nbody: [stgae]\n")
    assert (error.message, error.hint) == ("unknown op or template `stgae`", "did you mean `stage`?")


def test_a_misspelt_modifier_is_suggested_too():
    error = errors_of(NET + "body:\n  - {form: input, relu: {}}\n")[0]
    assert error.hint == "did you mean `from`?"


def test_a_value_of_the_wrong_kind_lists_what_is_accepted():
    error = only_error(NET + "body:\n  - linear: {out: 10, bias: maybe}\n")
    assert error.expected == "true/false or a `$` expression"
    assert error.found == "'maybe'" and error.mark.line == 5 and error.mark.col == 29


def test_a_missing_required_op_param_is_named():
    error = only_error(NET + "body:\n  - conv: {out: 4}\n")
    assert error.message == "missing key `kernel` in `body.0.conv`"


def test_a_bad_param_name_is_located_at_the_name():
    error = only_error(NET + "params: {bad-name: 1}\nbody: [relu]\n")
    assert error.message == "invalid name `bad-name` in `params`" and error.mark.col == 10


# ── every error at once, in source order ──────────────────────────────────────────────────────────────────────

def test_schema_errors_and_rule_errors_are_reported_together_in_source_order():
    errors = errors_of(NET + "body:\n  - sigmod\n  - linear: {out: 10, bias: maybe}\n  - {as: i, relu: {}}\n")
    assert [e.mark.line for e in errors] == [5, 6, 7]
    assert errors[0].message == "unknown op or template `sigmod`"
    assert errors[2].message.startswith("`as` names the index of a `repeat`")


def test_an_unknown_kind_does_not_hide_the_items_other_mistakes():
    errors = errors_of(NET + "body:\n  - {convv: {out: 4}, name: \"1bad\"}\n")
    assert {e.first_line() for e in errors} == {"t.yaml:5:6: error: unknown op or template `convv`",
                                                "t.yaml:5:5: error: invalid name '1bad'"}


def test_an_unknown_kind_still_has_its_as_checked_but_not_its_inline():
    messages = [e.message for e in errors_of(NET + "body:\n  - {inline: true, as: i, seqq: [relu]}\n")]
    assert "unknown op or template `seqq`" in messages
    assert "`as` names the index of a `repeat`, but the item has no `repeat`" in messages
    assert not any("inline" in m for m in messages)  # whether `inline` fits depends on the kind meant


def test_the_same_spot_is_not_reported_twice():
    errors = errors_of(NET + "body:\n  - {}\n")
    assert [e.message for e in errors] == ["the item has no op, template, seq, concat, add or mul"]


def test_errors_in_templates_and_in_the_body_are_all_reported():
    errors = errors_of(NET + "blocks:\n  a: {seq: [rleu]}\n  conv: {seq: [relu]}\nbody: [a, sigmod]\n")
    assert sorted(e.message for e in errors) == ["block name `conv` is taken by an op",
                                                 "unknown op or template `rleu`",
                                                 "unknown op or template `sigmod`"]


def test_an_unknown_format_version_is_refused():
    error = only_error(NET.replace("netspec: 1", "netspec: 3") + "body: [relu]\n")
    assert error.message == "unknown netspec format version 3" and error.expected == "1 or 2"
    assert error.hint == "the file needs a newer netspec"


def test_a_file_that_is_not_a_mapping_is_refused():
    assert only_error("- a\n- b\n").message == "a spec must be a mapping"


def test_a_block_library_given_as_a_network_says_so():
    assert "block library" in only_error("netspec: 1\nblocks: {a: {seq: [relu]}}\n").message


# ── params and overrides ──────────────────────────────────────────────────────────────────────────────────────

def test_params_take_their_defaults_and_overrides():
    spec = validate([Document(REPO / "t.yaml", "t.yaml", parse_text(
        NET + "params: {n: 3, ratio: {default: 0.5, type: float}}\nbody: [relu]\n", "t.yaml"))], {"n": 7})
    assert dict(spec.params) == {"n": 7, "ratio": 0.5}


def test_an_override_of_the_wrong_type_is_located_at_the_param():
    error = only_error(NET + "params:\n  n: 3\nbody: [relu]\n", {"n": "three"})
    assert error.message.startswith("param `n` (--set): expected int") and error.mark.line == 5


def test_an_unknown_override_suggests_a_param():
    error = only_error(NET + "params: {num_classes: 3}\nbody: [relu]\n", {"num_clases": 4})
    assert error.message == "unknown param `num_clases` in the overrides"
    assert error.hint == "did you mean `num_classes`?"


def test_a_template_param_with_an_unknown_type_is_refused():
    error = only_error(NET + "blocks:\n  b: {params: {n: integer}, seq: [relu]}\nbody: [b]\n")
    assert error.message == "param `n`: unknown type `integer`"


def test_a_template_default_may_be_an_expression_but_a_plain_default_must_fit_its_type():
    text = NET + "blocks:\n  b:\n    params: {c: int, d: {type: int, default: \"${c * 2}\"}}\n    seq: [relu]\nbody: [b]\n"
    validate([Document(REPO / "t.yaml", "t.yaml", parse_text(text, "t.yaml"))])
    error = only_error(text.replace('"${c * 2}"', "two"))
    assert error.message == "param `d`: default: expected int, found string 'two'"


# ── the JSON Schema ───────────────────────────────────────────────────────────────────────────────────────────

def test_the_shipped_schema_is_the_one_the_op_table_generates():
    assert SCHEMA_PATH.read_text(encoding="utf-8") == render_schema(), \
        "netspec/schema/netspec.schema.json is stale: run `python -m netspec.generators.schema`"


def test_the_op_reference_in_docs_ops_md_is_the_one_the_op_table_generates():
    from netspec.generators.opdocs import DOC_PATH, updated

    text = DOC_PATH.read_text(encoding="utf-8")
    assert text == updated(text), "docs/ops.md is stale: run `python -m netspec.generators.opdocs`"


def properties_without_description(node, path="#"):
    if isinstance(node, dict):
        for key, sub in node.get("properties", {}).items():
            if not (isinstance(sub, dict) and sub.get("description")):
                yield f"{path}/properties/{key}"
        for key, sub in node.items():
            yield from properties_without_description(sub, f"{path}/{key}")
    elif isinstance(node, list):
        for i, sub in enumerate(node):
            yield from properties_without_description(sub, f"{path}/{i}")


def test_every_property_in_the_schema_has_a_description():
    schema = build_schema()
    assert list(properties_without_description(schema)) == []
    assert all(definition.get("description") for definition in schema["$defs"].values())


def test_the_description_check_finds_a_property_without_one():
    assert list(properties_without_description({"properties": {"a": {"type": "string"}}})) == ["#/properties/a"]


def test_netspec_schema_prints_a_valid_draft_2020_12_schema():
    run = run_cli("schema")
    assert run.code == 0
    schema = json.loads(run.stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema == build_schema()


def test_the_schema_is_strict_on_unknown_top_level_keys():
    validator = jsonschema.Draft202012Validator(build_schema())
    assert not validator.is_valid({"netspec": 1, "name": "x", "input": [1], "body": [], "bodyy": []})


@pytest.mark.parametrize("path", spec_params(sorted(SPECS.rglob("*.yaml"))))
def test_every_shipped_spec_and_library_validates_against_the_schema(path):
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    errors = list(jsonschema.Draft202012Validator(build_schema()).iter_errors(data))
    assert errors == [], [e.message for e in errors]


def test_every_spec_file_names_the_schema_for_editors():
    for path in all_specs():
        first = path.read_text(encoding="utf-8").splitlines()[0]
        assert first.startswith("# yaml-language-server: $schema=") and first.endswith("netspec.schema.json"), path


@pytest.mark.parametrize("path", spec_params())
def test_every_spec_passes_validation(path):
    assert load_spec(path).name


def test_missing_model_keys_are_reported_with_the_other_mistakes():
    errors = errors_of("netspec: 1\nparams: {n: 3}\nbody: [rleu]\n", {"m": 1})
    assert [e.message for e in errors] == ["missing key `name`", "missing key `input`",
                                           "unknown param `m` in the overrides", "unknown op or template `rleu`"]


def test_a_misspelt_key_is_not_also_reported_missing():
    assert [e.message for e in errors_of(NET + "bdy: [relu]\n")] == ["unknown key `bdy`"]


def test_a_bare_seq_is_refused():
    assert only_error(NET + "body: [relu, seq]\n").message == "a bare `seq` has no items"


# ── the fast schema check (netspec/frontend/schema_fast.py) ───────────────────────────────────────────────────────────

def jsonschema_accepts(data) -> bool:
    from netspec.frontend.schema import validator

    return validator().is_valid(data)


def test_the_fast_check_compiles_the_shipped_schema():
    assert fast_check() is not None, "schema_fast.py lacks a keyword the schema now uses"


@pytest.mark.parametrize("path", spec_params(sorted(SPECS.rglob("*.yaml"))))
def test_the_fast_check_accepts_every_shipped_spec_and_library(path):
    assert fast_check()(read_document(path).data)


def test_the_fast_check_agrees_with_jsonschema_on_every_bad_spec_of_the_catalogue():
    check = fast_check()
    verdicts = []
    for path in sorted((REPO / "tests" / "bad_specs").glob("*.yaml")):
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (yaml.YAMLError, ValueError):
            continue   # not YAML at all: the loader refuses it before any schema
        verdicts.append((path.name, check(data), jsonschema_accepts(data)))
    assert len(verdicts) > 50
    assert [v for v in verdicts if v[1] != v[2]] == []
    assert sum(not fast for _, fast, _ in verdicts) > 10       # the catalogue does exercise the refusals


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.one_of(mutated_data(ORIGINALS["googlenet"]), mutated_data(ORIGINALS["resnet18"]),
                      mutated_data(ORIGINALS["densenet"]), mutated_data(LIBRARY_DATA["inception.yaml"]),
                      mutated_data(LIBRARY_DATA["residual.yaml"])))
def test_the_fast_check_agrees_with_jsonschema_on_mutated_specs(data):
    assert fast_check()(data) == jsonschema_accepts(data)


@pytest.mark.parametrize("schema, good, bad", [
    ({"type": "integer"}, [3, -1, 10**30], [2.0, True, "3", None]),
    ({"type": ["string", "null"]}, ["", None], [0, [], {}]),
    ({"enum": [1, "a"]}, [1, 1.0, "a"], [True, "b", [1]]),
    ({"const": False}, [False], [0, None]),
    ({"minimum": 1, "exclusiveMaximum": 3}, [1, 2.5, "x", True], [0, 3, 0.5]),
    ({"items": {"type": "integer"}, "minItems": 1, "maxItems": 2}, [[1], [1, 2], "not a list"], [[], [1, 2, 3],
                                                                                                 ["1"]]),
    ({"properties": {"a": {"type": "integer"}}, "additionalProperties": False, "required": ["a"]},
     [{"a": 1}, 7], [{}, {"a": "1"}, {"a": 1, "b": 2}]),
    ({"additionalProperties": {"type": "string"}, "minProperties": 1}, [{"k": "v"}], [{}, {"k": 1}]),
    ({"propertyNames": {"pattern": "^[a-z]+$"}}, [{"ab": 1}, {}], [{"a1": 1}, {"A": 2}]),
    ({"$defs": {"n": {"anyOf": [{"type": "null"}, {"items": {"$ref": "#/$defs/n"}, "type": "array"}]}},
      "$ref": "#/$defs/n"}, [None, [], [[None, []]]], [1, [[1]]]),
])
def test_the_fast_check_follows_json_schema_keyword_by_keyword(schema, good, bad):
    check = compile_schema(schema)
    strict = jsonschema.validators.extend(jsonschema.Draft202012Validator, type_checker=jsonschema.Draft202012Validator
                                          .TYPE_CHECKER.redefine("integer", lambda _, v: isinstance(v, int) and not
                                                                 isinstance(v, bool)))(schema)
    assert [check(v) for v in good] == [True] * len(good) == [strict.is_valid(v) for v in good]
    assert [check(v) for v in bad] == [False] * len(bad) == [strict.is_valid(v) for v in bad]


@pytest.mark.parametrize("schema", [{"patternProperties": {"x": {}}}, {"$ref": "https://example.com/s.json"},
                                    {"type": "decimal"}, {"not": {}}])
def test_a_keyword_the_fast_check_lacks_sends_every_document_to_jsonschema(schema):
    with pytest.raises(Unsupported):
        compile_schema(schema)
    assert checker(schema) is None


def test_a_valid_spec_is_validated_without_importing_jsonschema():
    code = ("import sys, netspec.pipeline as p; p.shaped_network('googlenet'); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('jsonschema', 'torch')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_an_invalid_spec_still_gets_jsonschemas_located_errors():
    error = only_error(NET + "body:\n  - conv: {out: 8, kernel: 3, bias: maybe}\n")
    assert error.mark.line == 5 and "bias" in error.message


# ── every independent mistake, in one run ─────────────────────────────────────────────────────────────────────

def test_two_misspelt_keys_inside_one_items_seq_are_two_errors():
    errors = errors_of(NET + "body:\n  - {seq: [{conv: {out: 4, kernal: 3}}, {relu: {inplase: true}}]}\n")
    assert [e.message for e in errors] == ["unknown key `kernal` in `body.0.seq.0.conv`",
                                           "unknown key `inplase` in `body.0.seq.1.relu`"]


def test_two_misspelt_keys_of_one_op_are_one_error_each_not_also_missing_keys():
    errors = errors_of(NET + "body:\n  - {conv: {outt: 4, kernal: 3}}\n")
    assert [e.message for e in errors] == ["unknown key `outt` in `body.0.conv`",
                                           "unknown key `kernal` in `body.0.conv`"]
    assert [e.hint for e in errors] == ["did you mean `out`?", "did you mean `kernel`?"]


def test_a_misspelt_key_beside_a_missing_one_is_two_errors():
    errors = errors_of(NET + "body:\n  - {seq: [{conv: {outt: 4}}]}\n")
    assert [e.message for e in errors] == ["missing key `kernel` in `body.0.seq.0.conv`",   # at the mapping
                                           "unknown key `outt` in `body.0.seq.0.conv`"]


def test_a_bad_name_and_a_misspelt_op_elsewhere_are_both_reported():
    errors = errors_of(NET + "body:\n  - {conv: {out: 4, kernel: 3}, name: 3bad}\n  - {reluu: {}}\n")
    assert [(e.message, e.mark.line) for e in errors] == [("invalid name '3bad'", 5),
                                                          ("unknown op or template `reluu`", 6)]


def test_mistakes_in_two_branches_of_one_merge_are_two_errors():
    errors = errors_of(NET + "body:\n  - concat: [[{conv: {out: 4, kernal: 3}}], [{maxpool: {kernel: 2, strid: 2}}]]\n")
    assert [e.message.split(" in ")[0] for e in errors] == ["unknown key `kernal`", "unknown key `strid`"]


def test_twenty_thousand_bad_items_give_the_first_hundred_errors_and_a_count_of_the_rest(tmp_path):
    """A file within every size limit whose every item is wrong: the run stays linear (a set of marks was once
    rebuilt per schema error, and every jsonschema error was found and sorted: minutes for this file) and shows
    the first errors in source order, then how many more there are."""
    from cpu_time import cpu_limit

    from netspec.frontend.validate import MAX_ERRORS

    path = tmp_path / "empty_items.yaml"
    path.write_text("netspec: 1\nname: big\ninput: [1, 8, 8]\nbody:\n" + "  - {}\n" * 19_900)
    with cpu_limit(20), pytest.raises(SpecErrors) as caught:   # took 130 s of CPU before
        load_spec(path)
    errors = caught.value.errors
    assert len(errors) == MAX_ERRORS + 1
    assert [e.mark.line for e in errors[:MAX_ERRORS]] == list(range(5, 5 + MAX_ERRORS))
    assert errors[-1].message == f"… and {19_900 - MAX_ERRORS:,} more errors from here on; only the first " \
                                 f"{MAX_ERRORS} are shown"
