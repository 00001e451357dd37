"""Marked documents → Spec: the JSON Schema first, then semantic rules; every error located, all reported at once.

Each rule is a small function yielding SpecErrors; `validate` runs them all and raises them together.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from functools import lru_cache
from types import MappingProxyType
from typing import Iterator, Mapping

from netspec.errors import Mark, Note, SpecError, SpecErrors, did_you_mean
from netspec.ops import OPS
from netspec.frontend.schema_fast import checker
from netspec.frontend.grammar import COMPOSITES, MODIFIERS, NAME_PATTERN, RESERVED, SCHEMA_PATH
from netspec.frontend.yaml_source import Document, MDict, MList, key_mark, mark_of
from netspec.passes.expr import is_expression
from netspec.frontend.param_types import TypeSpecError, check_type, parse_type, show, type_of_value

@dataclass(frozen=True)
class TParam:
    name: str
    type: object          # a parsed type (see types.py)
    default: object
    required: bool
    doc: str
    mark: Mark


@dataclass(frozen=True)
class Template:
    name: str
    doc: str
    params: Mapping[str, TParam]
    body: MDict           # the block's item keys (doc and params removed)
    mark: Mark


@dataclass(frozen=True)
class Spec:
    """A validated network: resolved params, the raw (marked) body, and every template it can call."""

    name: str
    doc: str
    file: str
    params: Mapping[str, object]       # resolved: the defaults with the overrides applied
    defaults: Mapping[str, object]     # as the spec declares them
    input: object
    body: MList
    expect: MDict | None
    train: Mapping[str, object]
    templates: Mapping[str, Template]
    root: MDict


@lru_cache(maxsize=1)
def _schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def fast_check():
    """The yes/no check compiled from the shipped schema (None if it cannot be: jsonschema then does it all)."""
    return checker(_schema())


@lru_cache(maxsize=1)
def _validator():
    # Imported here: only a document that fails the fast check (schema_check.py) pays for jsonschema.
    import jsonschema

    schema = _schema()
    # JSON Schema counts 2.0 as an integer; the phases after validation compute with Python ints (range,
    # slicing, `:,` formats), so a float must not pass where the schema says integer (found by tests/test_fuzz.py).
    strict = jsonschema.Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda checker, value: isinstance(value, int) and not isinstance(value, bool))
    return jsonschema.validators.extend(jsonschema.Draft202012Validator, type_checker=strict)(schema)


def validate(documents: list[Document], overrides: Mapping[str, object] | None = None) -> Spec:
    schema = [e for doc in documents for e in schema_errors(doc)]
    if any(not isinstance(doc.data, MDict) for doc in documents):
        raise SpecErrors(schema)
    # The rules run even when the schema failed (they skip what is malformed), so that a typo in a key and a
    # misspelt op elsewhere are reported by the same run.
    templates, template_errors = collect_templates(documents)
    root = documents[0]
    semantic = template_errors + _item_errors_everywhere(root, templates) + list(check_model(root))
    # Where a rule and the schema flag the same spot, the rule's message is the more specific one.
    errors = [e for e in schema if e.mark not in {s.mark for s in semantic}] + semantic
    params: dict[str, object] = {}
    if not schema:  # param declarations are read as the schema shapes them
        params, param_errors = resolve_params(root, overrides or {})
        errors += param_errors
    if errors:
        raise SpecErrors(_in_source_order(errors, documents))
    data = root.data
    return Spec(name=data["name"], doc=str(data.get("doc", "")), file=root.name, params=MappingProxyType(params),
                defaults=MappingProxyType(param_defaults(data.get("params") or {})),
                input=data["input"], body=data["body"], expect=data.get("expect"),
                train=MappingProxyType(dict(data.get("train") or {})), templates=MappingProxyType(templates),
                root=data)


def _item_errors_everywhere(root: Document, templates: Mapping[str, Template]) -> list[SpecError]:
    errors = [e for template in templates.values() for e in item_errors_in(template.body, templates)]
    body = root.data.get("body")
    if isinstance(body, MList):
        errors += [e for i in range(len(body)) for e in item_errors(body, i, templates)]
    return errors


def _in_source_order(errors: list[SpecError], documents: list[Document]) -> list[SpecError]:
    """Errors file by file (the spec first, then its imports), top to bottom; duplicates dropped."""
    rank = {doc.name: i for i, doc in enumerate(documents)}
    unique = {(e.mark, e.message): e for e in errors}
    return sorted(unique.values(), key=lambda e: (rank.get(e.mark.file, len(rank)), e.mark.line, e.mark.col))


# ── the schema ────────────────────────────────────────────────────────────────────────────────────────────────

def schema_errors(doc: Document) -> Iterator[SpecError]:
    if not isinstance(doc.data, MDict):
        found = type(doc.data).__name__ if doc.data is not None else "null"
        yield SpecError("a spec must be a mapping", Mark(doc.name, 1, 1), expected="a mapping starting with "
                        "`netspec: 1`", found=f"a {'list' if isinstance(doc.data, list) else found}")
        return
    version = doc.data.get("netspec")
    if "netspec" in doc.data and (version != 1 or type(version) is not int):  # True == 1.0 == 1 in Python
        yield SpecError(f"unknown netspec format version {version!r}", mark_of(doc.data, "netspec"), "/netspec",
                        expected="1", found=repr(version), hint="this netspec reads `netspec: 1`")
        return
    check = fast_check()
    if check is not None and check(doc.data):  # valid: no need to import jsonschema (schema_check.py)
        return
    seen: set[tuple] = set()
    for error in sorted(_validator().iter_errors(doc.data), key=lambda e: list(map(str, e.absolute_path))):
        for spec_error in _translate(error, doc):
            key = (spec_error.mark, spec_error.message)
            if key not in seen:
                seen.add(key)
                yield spec_error


def _translate(error, doc: Document) -> Iterator[SpecError]:
    """A jsonschema error → located SpecErrors, worded for a person (no schema jargon)."""
    path = list(error.absolute_path)
    container, value = _walk(doc.data, path)
    if error.validator in ("anyOf", "oneOf") and error.context:
        relevant = _relevant(error, value)
        if relevant is not None:
            yield from _translate(relevant, doc)
        else:  # every alternative refused the value itself (`bias: maybe`): list the alternatives
            yield _invalid_value(error, doc, describe_schema(error.schema), error.schema.get("description"))
        return
    pointer = "/" + "/".join(map(str, path))
    where = _where(path)
    if error.validator == "additionalProperties":
        allowed = list(error.schema.get("properties", {}))
        for key in [k for k in value if k not in error.schema.get("properties", {})]:
            yield SpecError(f"unknown key `{key}`{where}", key_mark(value, key), f"{pointer}/{key}".replace("//", "/"),
                            expected="one of " + ", ".join(f"`{k}`" for k in allowed), found=f"`{key}`",
                            hint=did_you_mean(key, allowed))
        return
    if "propertyNames" in error.schema_path and isinstance(value, MDict) and error.instance in value:
        yield SpecError(f"invalid name `{error.instance}`{where}", key_mark(value, error.instance),
                        f"{pointer}/{error.instance}".replace("//", "/"), expected=_NAME_RULE,
                        found=f"`{error.instance}`")
        return
    if error.validator == "required":
        mark = value.mark if isinstance(value, (MDict, MList)) else Mark(doc.name, 1, 1)
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        yield SpecError(f"missing key `{missing}`{where}", mark, pointer, expected=f"`{missing}: …`",
                        hint=_required_hint(missing))
        return
    yield _invalid_value(error, doc, _expected(error),
                         error.schema.get("description") if error.validator != "const" else None)


def _relevant(error, value):
    """The alternative worth reporting when a value fits none of an anyOf: one that accepted the value's type and
    then found something inside it (a bad key in a mapping, a bad list item).  None when every alternative
    refused the value as a whole, which is how a scalar fails."""
    inside = [e for e in error.context if len(e.absolute_path) > len(error.absolute_path)]
    if not inside and not isinstance(value, (MDict, MList)):
        return None
    candidates = inside or [e for e in error.context if not _type_only(e)]
    if not candidates:
        return None
    from jsonschema.exceptions import relevance

    deepest = max(len(e.absolute_path) for e in candidates)
    return max((e for e in candidates if len(e.absolute_path) == deepest), key=relevance)


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


_NAME_RULE = "a name: letters, digits and _, not starting with a digit"
_TYPE_WORDS = {"object": "a mapping", "array": "a list", "integer": "an int", "number": "a number",
               "string": "a string", "boolean": "true/false", "null": "null"}
_PATTERN_WORDS = {r"^\$": "starting with `$`", r"^[0-9]+(\.[0-9]+)?[KMG]$": 'like "1.8G" (K, M or G)'}
_BOUND_SIGNS = {"minimum": "≥", "exclusiveMinimum": ">", "maximum": "≤", "exclusiveMaximum": "<"}


def describe_schema(schema: dict) -> str:
    """What a (sub)schema accepts, in words, e.g. "an int ≥ 1 or a `$` expression"."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return "a `$` expression" if name == "expression" else describe_schema(_validator().schema["$defs"][name])
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return " or ".join(dict.fromkeys(describe_schema(s) for s in schema[key]))
    if "const" in schema:
        return json.dumps(schema["const"])
    if "enum" in schema:
        return " or ".join(json.dumps(v) for v in schema["enum"])
    if schema.get("pattern") == NAME_PATTERN:
        return _NAME_RULE
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
    return {"netspec": "start the file with `netspec: 1`",
            "out": "give the number of output channels/features, e.g. `out: 64`",
            "kernel": "give the window size, e.g. `kernel: 3`"}.get(key)


# ── templates ─────────────────────────────────────────────────────────────────────────────────────────────────

def collect_templates(documents: list[Document]) -> tuple[dict[str, Template], list[SpecError]]:
    """Every block of every document, by name.  Malformed entries (already reported by the schema) are skipped."""
    templates: dict[str, Template] = {}
    errors: list[SpecError] = []
    for doc in documents:
        blocks = doc.data.get("blocks") if isinstance(doc.data, MDict) else None
        for name, definition in (blocks.items() if isinstance(blocks, MDict) else ()):
            mark = key_mark(blocks, name)
            if name in OPS or name in RESERVED:
                errors.append(SpecError(f"block name `{name}` is taken by {'an op' if name in OPS else 'the language'}",
                                        mark, hint=f"rename it, e.g. `{name}_block`"))
                continue
            if name in templates:
                errors.append(SpecError(f"block `{name}` is defined twice", mark,
                                        notes=(Note("first defined at", templates[name].mark),)))
                continue
            if not isinstance(definition, MDict):
                continue
            decls = definition.get("params")
            params, param_errors = template_params(decls if isinstance(decls, MDict) else MDict(mark))
            errors += param_errors
            # The body's mark is its first own key (`seq:`, `add:`), not `params:` above it.
            body = MDict(next((definition.key_marks[k] for k in definition if k not in ("doc", "params")),
                              definition.mark))
            for key in definition:
                if key not in ("doc", "params"):
                    body[key] = definition[key]
                    body.key_marks[key] = definition.key_marks[key]
                    body.value_marks[key] = definition.value_marks[key]
            templates[name] = Template(name, str(definition.get("doc", "")), MappingProxyType(params), body, mark)
    return templates, errors


def template_params(decls: MDict) -> tuple[dict[str, TParam], list[SpecError]]:
    params, errors = {}, []
    for name, decl in decls.items():
        mark = key_mark(decls, name)
        if isinstance(decl, MDict) and "type" not in decl:
            continue  # the schema reports it
        if isinstance(decl, MDict):
            raw_type, default, doc = decl["type"], decl.get("default"), str(decl.get("doc", ""))
            required = "default" not in decl
        else:
            raw_type, default, doc, required = decl, None, "", True
        try:
            parsed = parse_type(raw_type)
        except TypeSpecError as err:
            errors.append(SpecError(f"param `{name}`: {err}", mark_of(decls, name), expected=err.expected,
                                    found=repr(raw_type)))
            continue
        # A default may be an expression over the other arguments (`"${channels * 4}"`): checked once evaluated.
        problem = None if required or default is None or _has_expression(default) else check_type(parsed, default)
        if problem:
            errors.append(SpecError(f"param `{name}`: default: {problem}", mark_of(decls[name], "default"),
                                    f"/params/{name}/default", expected=show(parsed), found=repr(default)))
        params[name] = TParam(name, parsed, default, required, doc, mark)
    return params, errors


# ── items ─────────────────────────────────────────────────────────────────────────────────────────────────────

def item_kind(item) -> tuple[str | None, list[str]]:
    """The item's kind key (an op, template or composite) and any extra kind keys (an error)."""
    if isinstance(item, str):
        return item, []
    kinds = [k for k in item if k not in MODIFIERS]
    return (kinds[0] if kinds else None), kinds[1:]


def item_errors_in(body: MDict, templates, is_block: bool = False) -> list[SpecError]:
    holder = MList(body.mark)
    holder.append(body)
    holder.item_marks.append(body.mark)
    return list(item_errors(holder, 0, templates))


def _has_expression(value) -> bool:
    return any(map(_has_expression, value)) if isinstance(value, list) else is_expression(value)


def item_errors(parent, index, templates) -> Iterator[SpecError]:
    item = parent[index]
    mark = mark_of(parent, index)
    if not isinstance(item, (str, MDict)):
        return  # the schema reports it
    if isinstance(item, str) and item.startswith("$"):
        yield SpecError("an item cannot be an expression", mark, expected="an op or template name", found=repr(item))
        return
    kind, extra = item_kind(item)
    if kind is None:
        yield SpecError("the item has no op, template, seq, concat or add", mark,
                        expected="one of them, e.g. `conv: {out: 64, kernel: 3}`", found=", ".join(item) or "{}")
        return
    if kind == "seq" and not isinstance(item, MDict):
        yield SpecError("a bare `seq` has no items", mark, expected="`seq: [item, …]`", found="`seq`")
        return
    for key in extra:
        yield SpecError(f"the item has two kinds: `{kind}` and `{key}`", key_mark(item, key),
                        hint="put them in a `seq:` list, one item each")
    kind_mark = key_mark(item, kind) if isinstance(item, MDict) else mark
    if kind not in OPS and kind not in templates and kind not in COMPOSITES:
        known = list(OPS) + list(templates) + list(COMPOSITES) + list(MODIFIERS)  # `form:` → `from`
        yield SpecError(f"unknown op or template `{kind}`", kind_mark, expected="an op, a block template or seq/concat/add",
                        found=f"`{kind}`", hint=did_you_mean(kind, known) or "`netspec list` shows the blocks; "
                        "docs/ops.md the ops; a block library must be listed in `imports:`")
        return
    if isinstance(item, MDict):
        if "as" in item and "repeat" not in item:
            yield SpecError("`as` names the index of a `repeat`, but the item has no `repeat`", key_mark(item, "as"))
        yield from _inline_errors(item, kind)
        yield from _children_errors(item, kind, templates)


def _inline_errors(item: MDict, kind: str) -> Iterator[SpecError]:
    """`inline: true` applies to a seq only, and an inline seq has no name of its own (it opens no scope)."""
    if item.get("inline") is not True:
        return
    if kind != "seq":
        yield SpecError(f"`inline` applies to a `seq`, not to `{kind}`", key_mark(item, "inline"),
                        hint=f"wrap it: `{{inline: true, seq: [{kind}: …]}}`, or drop `inline`")
    if "name" in item:
        yield SpecError("an inline seq has no name: its items are named in the enclosing seq", key_mark(item, "name"),
                        hint="name the items inside it, or drop `inline` to make the seq a named scope")


def _children_errors(item: MDict, kind: str, templates) -> Iterator[SpecError]:
    value = item[kind]
    if kind == "seq" and isinstance(value, MList):
        for i in range(len(value)):
            yield from item_errors(value, i, templates)
    elif kind in ("concat", "add") and isinstance(value, MList):
        for i, branch in enumerate(value):
            if isinstance(branch, MList):
                for j in range(len(branch)):
                    yield from item_errors(branch, j, templates)
            else:
                yield from item_errors(value, i, templates)


# ── the model ─────────────────────────────────────────────────────────────────────────────────────────────────

def check_model(doc: Document) -> Iterator[SpecError]:
    data = doc.data
    # A key the schema reports as misspelt (`bodyy`, "did you mean `body`?") is not missing a second time.
    known = list(_schema()["properties"])
    present = set(data) | {close for key in data if key not in known for close in difflib.get_close_matches(
        str(key), known, n=1, cutoff=0.6)}
    if "body" not in present:
        if "blocks" in data:
            yield SpecError("this file is a block library (it has no `body`), not a network", Mark(doc.name, 1, 1),
                            hint="import it from a network spec with `imports: [...]`")
        else:
            yield SpecError("missing key `body`", data.mark, expected="`body:` with the network's items")
        return
    for key in ("name", "input"):
        if key not in present:
            yield SpecError(f"missing key `{key}`", data.mark, f"/{key}",
                            expected={"name": "`name: mynet`", "input": "`input: [channels, height, width]`"}[key])


def param_defaults(decls: Mapping) -> dict[str, object]:
    """Each network param's default: the value itself, or the `default` of a `{default, type, doc}` mapping."""
    return {name: decl["default"] if isinstance(decl, MDict) else decl for name, decl in decls.items()}


def resolve_params(doc: Document, overrides: Mapping[str, object]) -> tuple[dict[str, object], list[SpecError]]:
    decls = doc.data.get("params") or MDict(doc.data.mark)
    values, errors = {}, []
    for name, decl in decls.items():
        declared = isinstance(decl, MDict)
        default = decl["default"] if declared else decl
        try:
            kind = parse_type(decl["type"]) if declared and "type" in decl else type_of_value(default)
        except TypeSpecError as err:
            errors.append(SpecError(f"param `{name}`: {err}", mark_of(decls, name), expected=err.expected))
            continue
        value = overrides.get(name, default)
        problem = check_type(kind, value)
        if problem:
            origin = "--set" if name in overrides else "default"
            errors.append(SpecError(f"param `{name}` ({origin}): {problem}", key_mark(decls, name),
                                    f"/params/{name}", expected=str(kind), found=repr(value)))
        values[name] = float(value) if kind == "float" and isinstance(value, int) else value
    for name in overrides:
        if name not in decls:
            errors.append(SpecError(f"unknown param `{name}` in the overrides", key_mark(doc.data, "params")
                                    if "params" in doc.data else doc.data.mark,
                                    expected="one of " + (", ".join(f"`{n}`" for n in decls) or "(no params)"),
                                    found=f"`{name}`", hint=did_you_mean(name, decls)))
    return values, errors
