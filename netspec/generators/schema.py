"""Builds the JSON Schema (draft 2020-12) of the spec language; the op part comes from the op table.

`python -m netspec.generators.schema` rewrites `netspec/schema/netspec.schema.json`; a test fails when the shipped file
is stale.  The schema checks structure only; meaning (names, types after evaluation, shapes) is checked later.
"""

from __future__ import annotations

import json
import sys

from netspec.frontend.grammar import (LINT_SCHEMA, MODIFIER_SCHEMAS, NAME_PATTERN, SCHEMA_PATH, SEQ, TRAIN_KEYS,
                                      takes_branches)
from netspec.frontend.formats import CURRENT, READABLE
from netspec.ops import OPS, Param
from netspec.ops.base import MAX_RANK

SCHEMA_ID = "https://netspec.dev/schema/netspec.schema.json"


def _d(schema: dict, description: str) -> dict:
    return {"description": description, **schema}


def _param_schema(param: Param) -> dict:
    expr = {"$ref": "#/$defs/expression"}
    integer = {"type": "integer"} | ({"minimum": int(param.minimum)} if param.minimum is not None else {})
    pair = {"type": "array", "items": {"anyOf": [integer, expr]}, "minItems": 2, "maxItems": 2}
    number = {"type": "number"} | ({"minimum": param.minimum} if param.minimum is not None else {}) \
        | ({"exclusiveMaximum": param.below} if param.below is not None else {})
    shapes = {
        "int": [integer, expr],
        "float": [number, expr],
        "bool": [{"type": "boolean"}, expr],
        "str": [{"enum": list(param.choices)} if param.choices else {"type": "string"}, expr],
        "int2": [integer, pair, expr] + ([{"type": "null"}] if param.default is None and not param.required else []),
        "padding": [integer, pair, {"enum": ["same", "valid"]}, expr],
        "size": [integer, pair, {"type": "null"}, expr],
        "floats": [number, {"type": "array", "minItems": 1, "items": {"anyOf": [number, expr]}}, expr],
        "ints": [{"type": "array", "items": {"anyOf": [integer, expr]}, "minItems": 1, "maxItems": MAX_RANK}, expr],
    }[param.type]
    default = "" if param.required else f" Default: {json.dumps(param.default)}."
    schema = {"description": f"{param.doc}.{default}".replace("..", "."), "anyOf": shapes}
    # `default` is what editors offer on completion; the value netspec uses when the key is left out.
    return schema if param.required else schema | {"default": json.loads(json.dumps(param.default))}


def _op_schema(op) -> dict:
    schema = {
        "description": f"`{op.name}`: {op.doc}",
        "type": ["object", "null"],
        "additionalProperties": False,
        "properties": {name: _param_schema(p) for name, p in op.params.items()},
    }
    required = [name for name, p in op.params.items() if p.required]
    if required:
        schema["required"] = required
    if takes_branches(op):
        schema["properties"]["from"] = _d({"$ref": "#/$defs/from"}, "the nodes to merge (sugar for the item's `from`)")
        schema["type"] = ["object", "null", "array"]
        schema = {"description": schema["description"], "anyOf": [
            {k: v for k, v in schema.items() if k != "description"} | {"type": ["object", "null"]},
            _d({"$ref": "#/$defs/branches"}, "parallel branches from the same input, merged")]}
    return schema


def _item_properties() -> dict:
    props = {key: _d(schema, doc) for key, (schema, doc) in MODIFIER_SCHEMAS.items()}
    props[SEQ] = _d({"$ref": "#/$defs/seq"}, "items applied one after another")
    for name, op in OPS.items():
        props[name] = _op_schema(op)
    for name, schema in _library_blocks().items():
        props.setdefault(name, schema)
    return props


def _library_blocks() -> dict:
    """The public blocks of the built-in library (specs/blocks/), each a template call whose params an editor
    describes and completes.  Only described: a spec may define its own template of the same name, with other
    params, so the call is checked as any template call is (netspec checks the params against the template)."""
    from netspec.frontend.imports import builtin_root
    from netspec.frontend.parse import blocks_of, params_of, template_params
    from netspec.frontend.param_types import show
    from netspec.frontend.yaml_source import read_document

    root = builtin_root()
    blocks = {}
    for path in sorted((root / "blocks").glob("*.yaml")):
        source = path.relative_to(root).as_posix()
        for name, _, definition in blocks_of([read_document(path, source)]):
            params, _ = template_params(params_of(definition))
            doc = str(definition.get("doc", "")).strip().split("\n")[0]
            properties = {}
            for key, p in params.items():
                default = "" if p.required else f" Default: {json.dumps(p.default.raw)}."
                properties[key] = {"description": f"{p.doc or key} ({show(p.type)}).{default}".replace("..", "."),
                                   "anyOf": [{"$ref": "#/$defs/value"}]} | ({} if p.required else {"default": p.default.raw})
            blocks[name] = {"description": f"`{name}` (block from `imports: [{source}]`): {doc}",
                            "type": ["object", "null"], "properties": properties,
                            "additionalProperties": {"$ref": "#/$defs/value"}}
    return blocks


def build_schema() -> dict:
    item_props = _item_properties()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "netspec network spec or block library",
        "description": "A convolutional network (or a library of block templates) as data; see docs/spec-format.md.",
        "type": "object",
        "additionalProperties": False,
        "required": ["netspec"],
        "properties": _top_level_properties(),
        "$defs": _value_defs() | _item_defs(item_props) | _template_defs(item_props),
    }


def _named(ref: str, description: str) -> dict:
    """A mapping from names (NAME_PATTERN) to values of the definition `ref`."""
    return _d({"type": "object", "propertyNames": {"pattern": NAME_PATTERN},
               "additionalProperties": {"$ref": f"#/$defs/{ref}"}}, description)


def _template_call() -> dict:
    return _d({"type": ["object", "null"], "additionalProperties": {"$ref": "#/$defs/value"}},
              "a call of a block template with its arguments")


def _top_level_properties() -> dict:
    """The keys of a spec file."""
    return {
        "netspec": _d({"enum": list(READABLE)}, f"format version of the spec language: {CURRENT} is current; older "
                      "versions are read too, and `netspec upgrade` rewrites a file in the current one "
                      "(docs/spec-format.md)"),
        "name": _d({"type": "string", "pattern": NAME_PATTERN}, "the network's name (also the run folder's)"),
        "doc": _d({"type": "string"}, "one line shown by `netspec list`, then details"),
        "imports": _d({"type": "array", "items": {"type": "string"}},
                      "block libraries, relative to this file or in the built-in library"),
        "params": _named("model_param",
                         "network parameters with defaults; override with `--set k=v` or netspec.load(..., k=v)"),
        "input": _d({"anyOf": [{"type": "array", "items": {"$ref": "#/$defs/int_or_expression"},
                                "minItems": 1, "maxItems": 3}, {"$ref": "#/$defs/expression"}]},
                    "input shape without the batch: [channels, height, width] or [features]"),
        "blocks": _named("block", "block templates defined here"),
        "body": _d({"$ref": "#/$defs/seq"}, "the network: items applied in order"),
        "outputs": _d({"type": "object", "minProperties": 1, "propertyNames": {"pattern": NAME_PATTERN},
                       "additionalProperties": {"anyOf": [
                           _d({"type": ["string", "integer"]}, "the top-level name of the node it returns"),
                           {"type": "object", "additionalProperties": False, "required": ["from"], "properties": {
                               "from": _d({"type": ["string", "integer"]}, "the top-level name of the node it "
                                          "returns"),
                               "train_only": _d({"anyOf": [{"type": "boolean"}, {"$ref": "#/$defs/expression"}]},
                                                "returned in training only (an auxiliary head); in eval what "
                                                "feeds only it does not run"),
                               "when": _d({"anyOf": [{"type": "boolean"}, {"$ref": "#/$defs/expression"}]},
                                          "when false, the network has no such output"),
                               "doc": _d({"type": "string"}, "a note for readers")}}]}},
                      "the network's outputs by name, in the order the module returns them (default: the body's "
                      "last item alone); several are returned as a named tuple"),
        "expect": _d({"type": "object", "additionalProperties": False, "properties": {
            "params": _d({"type": "integer", "minimum": 0}, "exact number of trainable parameters"),
            "output": _d({"type": "array", "items": {"type": "integer"}}, "output shape without the batch"),
            "macs": _d({"anyOf": [{"type": "integer", "minimum": 0},
                                  {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?[KMG]$"}]},
                       "multiply-accumulates per example: an int, or e.g. \"1.814G\" compared at that precision"),
        }}, "facts checked whenever the spec is compiled with its default params; a mismatch is an error"),
        "lint": _d({"$ref": "#/$defs/lint"}, "`netspec lint` rules silenced on the whole network"),
        "train": _d({"type": "object", "additionalProperties": False,
                     "properties": {k: _d(s, doc) for k, (s, doc) in TRAIN_KEYS.items()}},
                    "the training recipe used by `netspec train` (flags override it)"),
    }


def _value_defs() -> dict:
    """Expressions, template arguments and `from:` names."""
    return {
        "expression": _d({"type": "string", "pattern": r"^\$"},
                         "a `$` expression: $name, or ${...} with arithmetic, params, loop variables and "
                         "in.channels|height|width"),
        "int_or_expression": _d({"anyOf": [{"type": "integer", "minimum": 1}, {"$ref": "#/$defs/expression"}]},
                                "a positive int or an expression"),
        "value": _d({"anyOf": [{"type": ["string", "number", "boolean", "null"]},
                               {"type": "array", "items": {"$ref": "#/$defs/value"}}]},
                    "a template argument: a scalar, a list or an expression"),
        "from": _d({"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "minItems": 1}]},
                   "one name or a list of names"),
        "lint": _d(LINT_SCHEMA, "`netspec lint` rules to silence, with the reason they are intended"),
    }


def _item_defs(item_props: dict) -> dict:
    """An item (op, template call, seq, merge) and the lists of items: seqs and branches."""
    item_map = {"type": "object", "minProperties": 1, "properties": item_props,
                "additionalProperties": _template_call()}
    return {
        "item": _d({"anyOf": [_d({"type": "string"}, "an op or template with no arguments, e.g. `relu`"),
                              {"$ref": "#/$defs/item_map"}]}, "one step of a network or block"),
        "item_map": _d(item_map, "an op, template call, seq or merge (concat, add, mul…), with optional name/from/when/repeat"),
        "seq": _d({"type": "array", "items": {"$ref": "#/$defs/item"}}, "items applied one after another"),
        "branches": _d({"type": "array", "minItems": 1, "items": {"anyOf": [
            {"$ref": "#/$defs/seq"}, {"$ref": "#/$defs/item"}]}},
            "parallel branches, each a list of items (empty: the identity) or one item"),
    }


def _template_defs(item_props: dict) -> dict:
    """A block template (an item with typed params and a doc), its params, and the network's params."""
    block = {
        "type": "object", "additionalProperties": _template_call(),
        "properties": item_props | {
            "doc": _d({"type": "string"}, "one line for `netspec list`, then details"),
            "params": _named("template_param", "typed parameters: `int`, `float`, `bool`, `str`, `int2`, `list`, "
                             "`any`, a list of types for a fixed-length list, or {type, default, doc}"),
        },
    }
    type_names = {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}
    what = _d({"type": "string"}, "what the param means")
    return {
        "block": _d(block, "a block template: an item with typed params and a doc"),
        "template_param": _d({"anyOf": [
            {"type": "string"}, {"type": "array", "items": {"type": "string"}},
            {"type": "object", "additionalProperties": False, "required": ["type"], "properties": {
                "type": _d(type_names, "the param's type"),
                "default": _d({"$ref": "#/$defs/value"}, "value when the call omits it"),
                "doc": what}}]}, "a typed template parameter"),
        "model_param": _d({"anyOf": [{"$ref": "#/$defs/value"}, {
            "type": "object", "additionalProperties": False, "required": ["default"], "properties": {
                "type": _d(type_names, "the param's type (inferred from the default when omitted)"),
                "default": _d({"$ref": "#/$defs/value"}, "the value unless overridden"),
                "doc": what}}]},
            "a network parameter: its default value, or {default, type, doc}"),
    }


def render_schema() -> str:
    return json.dumps(build_schema(), indent=2, ensure_ascii=False) + "\n"


def main() -> int:
    SCHEMA_PATH.write_text(render_schema(), encoding="utf-8")
    print(f"wrote {SCHEMA_PATH}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
