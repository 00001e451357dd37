"""Marked documents → Spec: the JSON Schema first, then semantic rules; every error located, all reported at once.

Each rule is a small function yielding SpecErrors; `validate` runs them all and raises them together.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from types import MappingProxyType
from typing import Iterator, Mapping

from .errors import Mark, Note, SpecError, SpecErrors, did_you_mean
from .ops import OPS
from .schema_gen import COMPOSITES, MODIFIERS, SCHEMA_PATH
from .source import Document, MDict, MList, key_mark, mark_of
from .types import TypeSpecError, check_type, parse_type, type_of_value

RESERVED = frozenset(COMPOSITES) | frozenset(MODIFIERS) | {"input", "output"}


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
    params: Mapping[str, object]
    input: object
    body: MList
    expect: MDict | None
    train: Mapping[str, object]
    templates: Mapping[str, Template]
    root: MDict


@lru_cache(maxsize=1)
def _validator():
    import jsonschema  # imported here: `netspec list` need not pay for it

    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(schema)


def validate(documents: list[Document], overrides: Mapping[str, object] | None = None) -> Spec:
    errors = [e for doc in documents for e in schema_errors(doc)]
    if errors:
        raise SpecErrors(errors)
    templates, template_errors = collect_templates(documents)
    root = documents[0]
    errors = template_errors + list(check_model(root))
    for template in templates.values():
        errors += item_errors_in(template.body, templates, is_block=True)
    if isinstance(root.data.get("body"), MList):
        errors += [e for i, item in enumerate(root.data["body"]) for e in item_errors(root.data["body"], i, templates)]
    params, param_errors = resolve_params(root, overrides or {})
    errors += param_errors
    if errors:
        raise SpecErrors(errors)
    data = root.data
    return Spec(name=data["name"], doc=str(data.get("doc", "")), file=root.name, params=MappingProxyType(params),
                input=data["input"], body=data["body"], expect=data.get("expect"),
                train=MappingProxyType(dict(data.get("train") or {})), templates=MappingProxyType(templates),
                root=data)


# ── the schema ────────────────────────────────────────────────────────────────────────────────────────────────

def schema_errors(doc: Document) -> Iterator[SpecError]:
    if not isinstance(doc.data, MDict):
        found = type(doc.data).__name__ if doc.data is not None else "null"
        yield SpecError("a spec must be a mapping", Mark(doc.name, 1, 1), expected="a mapping starting with "
                        "`netspec: 1`", found=f"a {'list' if isinstance(doc.data, list) else found}")
        return
    version = doc.data.get("netspec")
    if "netspec" in doc.data and version != 1:
        yield SpecError(f"unknown netspec format version {version!r}", mark_of(doc.data, "netspec"), "/netspec",
                        expected="1", found=repr(version), hint="this netspec reads `netspec: 1`")
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
    if error.validator in ("anyOf", "oneOf") and error.context:
        yield from _translate(_best(error), doc)
        return
    path = list(error.absolute_path)
    container, value = _walk(doc.data, path)
    pointer = "/" + "/".join(map(str, path))
    where = _where(path)
    if error.validator == "additionalProperties":
        allowed = list(error.schema.get("properties", {}))
        for key in [k for k in value if k not in error.schema.get("properties", {})]:
            yield SpecError(f"unknown key `{key}`{where}", key_mark(value, key), f"{pointer}/{key}".replace("//", "/"),
                            expected="one of " + ", ".join(f"`{k}`" for k in allowed), found=f"`{key}`",
                            hint=did_you_mean(key, allowed))
        return
    mark = value.mark if isinstance(value, (MDict, MList)) and not path else mark_of(container, path[-1]) if path else Mark(doc.name, 1, 1)
    if error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        yield SpecError(f"missing key `{missing}`{where}", mark, pointer, expected=f"`{missing}: …`",
                        hint=_required_hint(missing))
        return
    expected = _expected(error)
    yield SpecError(f"invalid value{where}: {_short(value)}", mark, pointer, expected=expected, found=_short(value),
                    hint=(error.schema.get("description") or None) if error.validator not in ("const",) else None)


def _best(error):
    from jsonschema.exceptions import best_match

    # Prefer the branch that got furthest into the value (a mapping with a bad key beats "not a string").
    deep = [e for e in error.context if len(e.absolute_path) > len(error.absolute_path)]
    candidates = deep or list(error.context)
    typed = [e for e in candidates if e.validator != "type"]
    return best_match(typed or candidates)


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
    if error.validator == "type":
        kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        return " or ".join({"object": "a mapping", "array": "a list", "integer": "an int", "number": "a number",
                            "string": "a string", "boolean": "true/false", "null": "null"}[k] for k in kinds)
    if error.validator == "const":
        return json.dumps(schema["const"])
    if error.validator == "enum":
        return "one of " + ", ".join(json.dumps(v) for v in schema["enum"])
    if error.validator == "pattern":
        return {r"^\$": "an expression starting with `$`"}.get(schema["pattern"], f"text matching {schema['pattern']}")
    if error.validator in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        sign = {"minimum": "≥", "exclusiveMinimum": ">", "maximum": "≤", "exclusiveMaximum": "<"}[error.validator]
        return f"a value {sign} {schema[error.validator]}"
    if error.validator in ("minItems", "maxItems"):
        return error.message.split(" is ", 1)[-1]
    return error.message


def _required_hint(key: str) -> str | None:
    return {"netspec": "start the file with `netspec: 1`",
            "out": "give the number of output channels/features, e.g. `out: 64`",
            "kernel": "give the window size, e.g. `kernel: 3`"}.get(key)


# ── templates ─────────────────────────────────────────────────────────────────────────────────────────────────

def collect_templates(documents: list[Document]) -> tuple[dict[str, Template], list[SpecError]]:
    templates: dict[str, Template] = {}
    errors: list[SpecError] = []
    for doc in documents:
        blocks = doc.data.get("blocks") or {}
        for name, definition in blocks.items():
            mark = key_mark(blocks, name)
            if name in OPS or name in RESERVED:
                errors.append(SpecError(f"block name `{name}` is taken by {'an op' if name in OPS else 'the language'}",
                                        mark, hint=f"rename it, e.g. `{name}_block`"))
                continue
            if name in templates:
                errors.append(SpecError(f"block `{name}` is defined twice", mark,
                                        notes=(Note("first defined at", templates[name].mark),)))
                continue
            params, param_errors = _template_params(definition.get("params") or MDict(mark))
            errors += param_errors
            body = MDict(definition.mark)
            for key in definition:
                if key not in ("doc", "params"):
                    body[key] = definition[key]
                    body.key_marks[key] = definition.key_marks[key]
                    body.value_marks[key] = definition.value_marks[key]
            templates[name] = Template(name, str(definition.get("doc", "")), MappingProxyType(params), body, mark)
    return templates, errors


def _template_params(decls: MDict) -> tuple[dict[str, TParam], list[SpecError]]:
    params, errors = {}, []
    for name, decl in decls.items():
        mark = key_mark(decls, name)
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
        if not required and default is not None and check_type(parsed, default) is not None:
            errors.append(SpecError(f"param `{name}`: default {default!r} is not a {raw_type}", mark_of(decls, name)))
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


def item_errors(parent, index, templates) -> Iterator[SpecError]:
    item = parent[index]
    mark = mark_of(parent, index)
    if isinstance(item, str) and item.startswith("$"):
        yield SpecError("an item cannot be an expression", mark, expected="an op or template name", found=repr(item))
        return
    kind, extra = item_kind(item)
    if kind is None:
        yield SpecError("the item has no op, template, seq, concat or add", mark,
                        expected="one of them, e.g. `conv: {out: 64, kernel: 3}`", found=", ".join(item) or "{}")
        return
    for key in extra:
        yield SpecError(f"the item has two kinds: `{kind}` and `{key}`", key_mark(item, key),
                        hint="put them in a `seq:` list, one item each")
    kind_mark = key_mark(item, kind) if isinstance(item, MDict) else mark
    if kind not in OPS and kind not in templates and kind not in COMPOSITES:
        known = list(OPS) + list(templates) + list(COMPOSITES)
        yield SpecError(f"unknown op or template `{kind}`", kind_mark, expected="an op, a block template or seq/concat/add",
                        found=f"`{kind}`", hint=did_you_mean(kind, known) or "`netspec list` shows the blocks; "
                        "docs/ops.md the ops; a block library must be listed in `imports:`")
        return
    if isinstance(item, MDict):
        if "as" in item and "repeat" not in item:
            yield SpecError("`as` names the index of a `repeat`, but the item has no `repeat`", key_mark(item, "as"))
        yield from _children_errors(item, kind, templates)


def _children_errors(item: MDict, kind: str, templates) -> Iterator[SpecError]:
    value = item[kind]
    if kind == "seq":
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
    if "body" not in data:
        if "blocks" in data:
            yield SpecError("this file is a block library (it has no `body`), not a network", Mark(doc.name, 1, 1),
                            hint="import it from a network spec with `imports: [...]`")
        else:
            yield SpecError("missing key `body`", data.mark, expected="`body:` with the network's items")
        return
    for key in ("name", "input"):
        if key not in data:
            yield SpecError(f"missing key `{key}`", data.mark, f"/{key}",
                            expected={"name": "`name: mynet`", "input": "`input: [channels, height, width]`"}[key])


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
