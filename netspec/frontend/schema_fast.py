"""A yes/no check of a document against netspec's JSON Schema, without importing jsonschema.

Valid specs are the common case, and importing jsonschema (with referencing, rpds and its meta-schemas) costs a
cold `netspec validate` about 0.09 s, a third of its time.  So `schema.schema_errors` asks this checker first
and imports jsonschema only for a document that fails, to word the errors.  That makes one property essential:

    accepts(document)  ⇒  jsonschema finds no error in it

The checker is compiled from the shipped schema into closures, one per schema object, for the keywords that
schema uses (draft 2020-12 semantics; `integer` excludes 2.0 as `schema.validator` does).  A schema with any
other keyword does not compile (`Unsupported`), and then every document goes to jsonschema — a schema change can
make validation slower, never wrong.  tests/test_validate.py checks the agreement on every spec, the bad-spec
catalogue and generated documents.
"""

from __future__ import annotations

import re
from typing import Callable, Mapping

Check = Callable[[object], bool]

# Keywords that only annotate: they never make a document invalid.
ANNOTATIONS = frozenset({"description", "title", "$schema", "$id", "$comment", "default", "examples"})


class Unsupported(Exception):
    """The schema uses a keyword this checker does not implement."""


def checker(schema: Mapping) -> Check | None:
    """The compiled check of `schema`, or None when it uses a keyword not implemented here."""
    try:
        return compile_schema(schema)
    except Unsupported:
        return None


def compile_schema(root: Mapping) -> Check:
    return _Compiler(root).compile(root)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


TYPES: dict[str, Check] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": _is_number,
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


def _json_equal(a, b) -> bool:
    """Equality as JSON Schema's enum and const see it: true is not 1, and 1 is 1.0."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b))
    if _is_number(a) and _is_number(b):
        return a == b
    return type(a) is type(b) and a == b


class _Compiler:
    def __init__(self, root: Mapping):
        self.root = root
        self.refs: dict[str, list[Check]] = {}     # "#/$defs/x" → a cell filled once compiled (refs may recurse)

    def compile(self, schema) -> Check:
        if schema is True:
            return lambda value: True
        if schema is False:
            return lambda value: False
        if not isinstance(schema, dict):
            raise Unsupported(f"a schema must be an object or a boolean, not {schema!r}")
        checks = [check for key in schema if key not in ANNOTATIONS and key not in _PAIRED
                  for check in self.keyword(key, schema)]
        if "additionalProperties" in schema and "properties" not in schema:
            checks.append(self.properties({}, schema["additionalProperties"]))
        if len(checks) == 1:
            return checks[0]
        return lambda value: all(check(value) for check in checks)

    def keyword(self, key: str, schema: Mapping) -> list[Check]:
        arg = schema[key]
        if key == "$ref":
            return [self.ref(arg)]
        if key == "$defs":
            return []
        if key == "type":
            names = [arg] if isinstance(arg, str) else list(arg)
            if any(name not in TYPES for name in names):
                raise Unsupported(f"type {arg!r}")
            tests = [TYPES[name] for name in names]
            return [lambda v: any(test(v) for test in tests)]
        if key == "anyOf":
            options = [self.compile(s) for s in arg]
            return [lambda v: any(option(v) for option in options)]
        if key == "enum":
            return [lambda v: any(_json_equal(v, choice) for choice in arg)]
        if key == "const":
            return [lambda v: _json_equal(v, arg)]
        if key in _NUMERIC:
            test = _NUMERIC[key]
            return [lambda v: not _is_number(v) or test(v, arg)]
        if key == "pattern":
            regex = re.compile(arg)
            return [lambda v: not isinstance(v, str) or regex.search(v) is not None]
        if key in ("minItems", "maxItems", "minProperties", "maxProperties"):
            kind = list if key.endswith("Items") else dict
            low = key.startswith("min")
            return [lambda v: not isinstance(v, kind) or (len(v) >= arg if low else len(v) <= arg)]
        if key == "items":
            item = self.compile(arg)
            return [lambda v: not isinstance(v, list) or all(item(x) for x in v)]
        if key == "required":
            return [lambda v: not isinstance(v, dict) or all(name in v for name in arg)]
        if key == "propertyNames":
            name = self.compile(arg)
            return [lambda v: not isinstance(v, dict) or all(name(k) for k in v)]
        if key == "properties":
            return [self.properties(arg, schema.get("additionalProperties", True))]
        raise Unsupported(f"keyword {key!r}")

    def properties(self, props: Mapping, additional) -> Check:
        known = {name: self.compile(s) for name, s in props.items()}
        other = self.compile(additional)

        def check(value) -> bool:
            if not isinstance(value, dict):
                return True
            for key, item in value.items():
                test = known.get(key, other)
                if not test(item):
                    return False
            return True
        return check

    def ref(self, ref: str) -> Check:
        if not ref.startswith("#/"):
            raise Unsupported(f"$ref {ref!r} (only references into this document)")
        if ref not in self.refs:
            cell: list[Check] = []
            self.refs[ref] = cell
            target = self.root
            for part in ref[2:].split("/"):
                part = part.replace("~1", "/").replace("~0", "~")
                if not isinstance(target, dict) or part not in target:
                    raise Unsupported(f"$ref {ref!r} points nowhere")
                target = target[part]
            cell.append(self.compile(target))
        cell = self.refs[ref]
        return lambda v: cell[0](v)


# additionalProperties is compiled together with properties; alone, it applies to every key.
_PAIRED = frozenset({"additionalProperties"})

_NUMERIC = {
    "minimum": lambda v, limit: v >= limit,
    "maximum": lambda v, limit: v <= limit,
    "exclusiveMinimum": lambda v, limit: v > limit,
    "exclusiveMaximum": lambda v, limit: v < limit,
}
