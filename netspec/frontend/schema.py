"""The shipped JSON Schema: loading it, the fast yes/no check, and jsonschema's errors worded for a person.

Each independent mistake is its own error: where a value fits none of an `anyOf`'s alternatives, the errors of
the alternative that accepted the value's type are all reported (two misspelt keys in one item are two errors).
"""

from __future__ import annotations

import difflib
import itertools
import json
from functools import lru_cache
from typing import Iterator

from netspec.errors import Mark, SpecError, did_you_mean
from netspec.frontend import formats
from netspec.frontend.grammar import NAME_PATTERN, NAME_RULE, SCHEMA_PATH
from netspec.frontend.schema_fast import checker
from netspec.frontend.yaml_source import Document, MDict, MList, key_mark, mark_of

MAX_RAW_ERRORS = 1_000      # jsonschema errors read per document


@lru_cache(maxsize=1)
def _schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def top_level_keys() -> list[str]:
    return list(_schema()["properties"])


@lru_cache(maxsize=1)
def fast_check():
    """The yes/no check compiled from the shipped schema (None if it cannot be: jsonschema then does it all)."""
    return checker(_schema())


@lru_cache(maxsize=1)
def validator():
    # Imported here: only a document that fails the fast check (schema_fast.py) pays for jsonschema.
    import jsonschema

    schema = _schema()
    # JSON Schema counts 2.0 as an integer; the phases after validation compute with Python ints (range,
    # slicing, `:,` formats), so a float must not pass where the schema says integer.
    strict = jsonschema.Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda checker, value: isinstance(value, int) and not isinstance(value, bool))
    return jsonschema.validators.extend(jsonschema.Draft202012Validator, type_checker=strict)(schema)


# ── the schema ────────────────────────────────────────────────────────────────────────────────────────────────

def schema_errors(doc: Document) -> Iterator[SpecError]:
    if not isinstance(doc.data, MDict):
        found = type(doc.data).__name__ if doc.data is not None else "null"
        yield SpecError("a spec must be a mapping", Mark(doc.name, 1, 1), expected="a mapping starting with "
                        f"`netspec: {formats.CURRENT}`", found=f"a {'list' if isinstance(doc.data, list) else found}")
        return
    version = doc.data.get("netspec")
    if "netspec" in doc.data and not formats.is_readable(version):
        newer = type(version) is int and version > formats.CURRENT
        yield SpecError(f"unknown netspec format version {version!r}", mark_of(doc.data, "netspec"), "/netspec",
                        expected=" or ".join(map(str, formats.READABLE)), found=repr(version),
                        hint="the file needs a newer netspec" if newer else
                        f"this netspec reads `netspec: {formats.CURRENT}` and the older versions it upgrades")
        return
    check = fast_check()
    if check is not None and check(doc.data):  # valid: no need to import jsonschema (schema_fast.py)
        return
    seen: set[tuple] = set()
    # jsonschema yields its errors lazily: beyond the first MAX_RAW_ERRORS nobody reads them (see
    # validate.MAX_ERRORS), and finding them all took minutes for a file of 20,000 bad items.
    found = itertools.islice(validator().iter_errors(doc.data), MAX_RAW_ERRORS)
    for error in sorted(found, key=lambda e: list(map(str, e.absolute_path))):
        for spec_error in _translate(error, doc):
            key = (spec_error.mark, spec_error.message)
            if key not in seen:
                seen.add(key)
                yield spec_error


def _translate(error, doc: Document) -> Iterator[SpecError]:
    """A jsonschema error → located SpecErrors, worded for a person (no schema jargon)."""
    path = list(error.absolute_path)
    value = _walk(doc.data, path)[1]
    if error.validator in ("anyOf", "oneOf") and error.context:
        relevant = _relevant(error, value)
        for inner in _unmasked(relevant, doc):
            yield from _translate(inner, doc)
        if not relevant:  # every alternative refused the value itself (`bias: maybe`): list the alternatives
            yield _invalid_value(error, doc, describe_schema(error.schema), error.schema.get("description"))
        return
    pointer = "/" + "/".join(map(str, path))
    where = _where(path)
    if error.validator == "additionalProperties":
        allowed = list(error.schema.get("properties", {}))
        for key in _unknown_keys(error, value):
            yield SpecError(f"unknown key `{key}`{where}", key_mark(value, key), f"{pointer}/{key}".replace("//", "/"),
                            expected="one of " + ", ".join(f"`{k}`" for k in allowed), found=f"`{key}`",
                            hint=did_you_mean(key, allowed))
        return
    if "propertyNames" in error.schema_path and isinstance(value, MDict) and error.instance in value:
        yield SpecError(f"invalid name `{error.instance}`{where}", key_mark(value, error.instance),
                        f"{pointer}/{error.instance}".replace("//", "/"), expected=NAME_RULE,
                        found=f"`{error.instance}`")
        return
    if error.validator == "required":
        mark = value.mark if isinstance(value, (MDict, MList)) else Mark(doc.name, 1, 1)
        missing = _missing_key(error)
        yield SpecError(f"missing key `{missing}`{where}", mark, pointer, expected=f"`{missing}: …`",
                        hint=_required_hint(missing))
        return
    yield _invalid_value(error, doc, _expected(error),
                         error.schema.get("description") if error.validator != "const" else None)


def _unknown_keys(error, value) -> list[str]:
    return [k for k in value if k not in error.schema.get("properties", {})]


def _missing_key(error) -> str:
    return error.message.split("'")[1] if "'" in error.message else error.message


def _unmasked(errors: list, doc: Document) -> list:
    """`errors` less each missing key that an unknown key beside it misspells (`outt` for `out`): that is one
    mistake, reported at the misspelt key."""
    unknown: dict[tuple, list[str]] = {}
    for e in errors:
        if e.validator == "additionalProperties":
            unknown.setdefault(tuple(e.absolute_path), []).extend(map(str, _unknown_keys(e, _walk(doc.data, list(
                e.absolute_path))[1])))
    return [e for e in errors if e.validator != "required" or not difflib.get_close_matches(
        _missing_key(e), unknown.get(tuple(e.absolute_path), []), n=1, cutoff=0.6)]


def _relevant(error, value) -> list:
    """The errors worth reporting when a value fits none of an anyOf: all those of the alternative that accepted
    the value's type and then found something inside it (bad keys in a mapping, bad list items).  Empty when every
    alternative refused the value as a whole, which is how a scalar fails."""
    alternatives: dict[object, list] = {}
    for e in error.context:
        alternatives.setdefault(e.relative_schema_path[0], []).append(e)
    inside = [e for e in error.context if len(e.absolute_path) > len(error.absolute_path)]
    if not inside and not isinstance(value, (MDict, MList)):
        return []
    candidates = inside or [e for e in error.context if not _type_only(e)]
    if not candidates:
        return []
    from jsonschema.exceptions import relevance

    deepest = max(len(e.absolute_path) for e in candidates)
    best = max((e for e in candidates if len(e.absolute_path) == deepest), key=relevance)
    return alternatives[best.relative_schema_path[0]]


def _type_only(error) -> bool:
    """Whether the error only says that the value has the wrong type (in every alternative, for an anyOf)."""
    if error.validator in ("anyOf", "oneOf") and error.context:
        return all(_type_only(e) for e in error.context)
    return error.validator == "type"


def _invalid_value(error, doc: Document, expected: str, hint: str | None) -> SpecError:
    path = list(error.absolute_path)
    container, value = _walk(doc.data, path)
    mark = mark_of(container, path[-1]) if path else Mark(doc.name, 1, 1)
    return SpecError(f"invalid value{_where(path)}: {_short(value)}", mark, "/" + "/".join(map(str, path)),
                     expected=expected, found=_short(value), hint=hint or None)


_TYPE_WORDS = {"object": "a mapping", "array": "a list", "integer": "an int", "number": "a number",
               "string": "a string", "boolean": "true/false", "null": "null"}
_PATTERN_WORDS = {r"^\$": "starting with `$`", r"^[0-9]+(\.[0-9]+)?[KMG]$": 'like "1.8G" (K, M or G)'}
_BOUND_SIGNS = {"minimum": "≥", "exclusiveMinimum": ">", "maximum": "≤", "exclusiveMaximum": "<"}


def describe_schema(schema: dict) -> str:
    """What a (sub)schema accepts, in words, e.g. "an int ≥ 1 or a `$` expression"."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return "a `$` expression" if name == "expression" else describe_schema(validator().schema["$defs"][name])
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return " or ".join(dict.fromkeys(describe_schema(s) for s in schema[key]))
    if "const" in schema:
        return json.dumps(schema["const"])
    if "enum" in schema:
        return " or ".join(json.dumps(v) for v in schema["enum"])
    if schema.get("pattern") == NAME_PATTERN:
        return NAME_RULE
    kinds = schema.get("type", [])
    words = " or ".join(_TYPE_WORDS[k] for k in (kinds if isinstance(kinds, list) else [kinds])) or "a value"
    bounds = [f"{sign} {schema[key]}" for key, sign in _BOUND_SIGNS.items() if key in schema]
    if schema.get("minItems") is not None and schema.get("minItems") == schema.get("maxItems"):
        bounds.append(f"of {schema['minItems']}")
    if "pattern" in schema:
        bounds.append(_PATTERN_WORDS.get(schema["pattern"], f"matching {schema['pattern']}"))
    return " ".join([words, " and ".join(bounds)]).strip()


def _walk(data, path):
    container, value = None, data
    for key in path:
        container, value = value, value[key]
    return container, value


def _where(path) -> str:
    if not path:
        return ""
    return " in `" + ".".join(map(str, path)) + "`"


def _short(value) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "…"


def _expected(error) -> str:
    schema = error.schema
    if error.validator in ("anyOf", "oneOf"):
        return describe_schema(schema)
    if error.validator == "minProperties":
        return "a mapping with at least one key"
    if error.validator == "type":
        kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        return " or ".join(_TYPE_WORDS[k] for k in kinds)
    if error.validator == "const":
        return json.dumps(schema["const"])
    if error.validator == "enum":
        return "one of " + ", ".join(json.dumps(v) for v in schema["enum"])
    if error.validator == "pattern":
        return describe_schema(schema)
    if error.validator in _BOUND_SIGNS:
        return f"a value {_BOUND_SIGNS[error.validator]} {schema[error.validator]}"
    if error.validator == "minItems":
        return f"at least {schema['minItems']} item{'s' if schema['minItems'] != 1 else ''}"
    if error.validator == "maxItems":
        return f"at most {schema['maxItems']} item{'s' if schema['maxItems'] != 1 else ''}"
    return error.message


def _required_hint(key: str) -> str | None:
    return {"netspec": f"start the file with `netspec: {formats.CURRENT}`",
            "out": "give the number of output channels/features, e.g. `out: 64`",
            "kernel": "give the window size, e.g. `kernel: 3`"}.get(key)
