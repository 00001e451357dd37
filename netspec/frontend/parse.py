"""Validated marked data → the parsed spec (netspec.frontend.syntax): typed items, templates and the Spec.

The item structure is read here once (`item_kind`, `children`); the rules walk the same structure to check it.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Iterator, Mapping

from netspec.errors import Mark, SpecError
from netspec.frontend.grammar import MERGES, MODIFIERS, SEQ, TEMPLATE_KEYS, is_expression
from netspec.frontend.param_types import TypeSpecError, check_type, parse_type, show
from netspec.frontend.syntax import (Arg, Branch, Branches, Item, Modifiers, OpCall, Seq, Spec, Template,
                                     TemplateCall, TParam, Value)
from netspec.frontend.yaml_source import Document, MDict, MList, key_mark, mark_of, plain
from netspec.ir import Expect
from netspec.ops import OPS
from netspec.ops.base import describe


def parse_spec(documents: list[Document], params: Mapping[str, object]) -> Spec:
    """The Spec of validated documents (the network first, then its imports), with its resolved params."""
    data = documents[0].data
    templates = {name: parse_template(name, mark, definition) for name, mark, definition in blocks_of(documents)}
    body = data["body"]
    return Spec(name=data["name"], doc=str(data.get("doc", "")), file=documents[0].name,
                params=MappingProxyType(plain(dict(params))),
                defaults=MappingProxyType(plain(param_defaults(data.get("params") or {}))),
                input=value_of(data["input"], mark_of(data, "input")), input_mark=key_mark(data, "input"),
                body=items_of(body), body_mark=key_mark(data, "body"), expect=expect_of(data.get("expect")),
                train=MappingProxyType(plain(dict(data.get("train") or {}))), templates=MappingProxyType(templates),
                lint_ignore=lint_ignore(data))


def lint_ignore(holder: MDict) -> frozenset[str]:
    """The rules a `lint: {ignore: [...]}` of this mapping (an item, or the spec's top level) silences."""
    lint = holder.get("lint")
    return frozenset(lint.get("ignore") or ()) if isinstance(lint, MDict) else frozenset()


def value_of(data, mark: Mark) -> Value:
    if isinstance(data, list):
        return Value(plain(data), mark, tuple(value_of(v, mark_of(data, i, mark)) for i, v in enumerate(data)))
    return Value(data, mark)


def expect_of(raw: MDict | None) -> Expect:
    """The spec's `expect:` as typed facts, each with the mark of its value."""
    if not raw:
        return Expect()
    return Expect(params=raw.get("params"), output=tuple(raw["output"]) if "output" in raw else None,
                  macs=raw.get("macs"), marks=MappingProxyType({key: mark_of(raw, key) for key in raw}))


def param_default(decl) -> object:
    """A network param's default: the value itself, or the `default` of a `{default, type, doc}` mapping."""
    return decl["default"] if isinstance(decl, MDict) else decl


def param_defaults(decls: Mapping) -> dict[str, object]:
    return {name: param_default(decl) for name, decl in decls.items()}


# ── items ─────────────────────────────────────────────────────────────────────────────────────────────────────

def item_kind(item) -> tuple[str | None, list[str]]:
    """The item's kind key (an op, template or composite) and any extra kind keys (an error)."""
    if isinstance(item, str):
        return item, []
    kinds = [k for k in item if k not in MODIFIERS]
    return (kinds[0] if kinds else None), kinds[1:]


def children(item: MDict, kind: str) -> Iterator[tuple[object, Mark]]:
    """The items directly inside a seq or a merge's branches, each with its mark."""
    value = item[kind]
    if not isinstance(value, MList) or (kind != SEQ and kind not in MERGES):
        return
    for i, child in enumerate(value):
        if kind != SEQ and isinstance(child, MList):
            yield from ((c, mark_of(child, j)) for j, c in enumerate(child))
        else:
            yield child, mark_of(value, i)


def items_of(items: MList) -> tuple[Item, ...]:
    return tuple(parse_item(item, mark_of(items, i)) for i, item in enumerate(items))


def parse_item(item, mark: Mark) -> Item:
    kind, _ = item_kind(item)
    if isinstance(item, str):
        return (OpCall if kind in OPS else TemplateCall)(mark, Modifiers(), kind, MappingProxyType({}))
    value = item[kind]
    mods = modifiers(item, kind)
    if kind == SEQ:
        return Seq(mark, mods, items_of(value), inline=item.get("inline") is True)
    if kind in MERGES and isinstance(value, MList):
        return Branches(mark, mods, kind, tuple(
            Branch(items_of(b), mark_of(value, i)) if isinstance(b, MList) else parse_item(b, mark_of(value, i))
            for i, b in enumerate(value)))
    args = args_of(value, skip="from" if kind in OPS else None)
    return (OpCall if kind in OPS else TemplateCall)(mark, mods, kind, args)


def modifiers(item: MDict, kind: str) -> Modifiers:
    def get(key, holder=item):
        return value_of(holder[key], mark_of(holder, key)) if key in holder else None

    inner = item[kind]
    from_ = get("from") or (get("from", inner) if isinstance(inner, MDict) else None)
    return Modifiers(name=get("name"), from_=from_, when=get("when"), repeat=get("repeat"), as_=item.get("as"),
                     doc=str(item.get("doc", "")), lint_ignore=lint_ignore(item))


def args_of(raw, skip: str | None = None) -> Mapping[str, Arg]:
    given = raw if isinstance(raw, MDict) else {}
    return MappingProxyType({key: Arg(value_of(value, mark_of(given, key)), key_mark(given, key))
                             for key, value in given.items() if key != skip})


# ── templates ─────────────────────────────────────────────────────────────────────────────────────────────────

def blocks_of(documents: list[Document]) -> Iterator[tuple[str, Mark, object]]:
    """(name, mark of the name, definition) of every block of every document, in order."""
    for doc in documents:
        blocks = doc.data.get("blocks") if isinstance(doc.data, MDict) else None
        for name, definition in (blocks.items() if isinstance(blocks, MDict) else ()):
            yield name, key_mark(blocks, name), definition


def parse_template(name: str, mark: Mark, definition: MDict) -> Template:
    params, _ = template_params(params_of(definition))
    body = template_body(definition)
    return Template(name, str(definition.get("doc", "")), MappingProxyType(params), parse_item(body, body.mark), mark)


def params_of(definition: MDict) -> MDict:
    decls = definition.get("params")
    return decls if isinstance(decls, MDict) else MDict(definition.mark)


def template_body(definition: MDict) -> MDict:
    """The block's item: its keys other than doc and params, marked at its first own key (`seq:`, `add:`), not at
    `params:` above it."""
    body = MDict(next((definition.key_marks[k] for k in definition if k not in TEMPLATE_KEYS), definition.mark))
    for key in definition:
        if key not in TEMPLATE_KEYS:
            body[key] = definition[key]
            body.key_marks[key] = definition.key_marks[key]
            body.value_marks[key] = definition.value_marks[key]
    return body


def template_params(decls: MDict) -> tuple[dict[str, TParam], list[SpecError]]:
    """A block's typed params, and the errors of their types and plain defaults."""
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
                                    found=describe(raw_type)))
            continue
        # A default may be an expression over the other arguments (`"${channels * 4}"`): checked once evaluated.
        problem = None if required or default is None or _has_expression(default) else check_type(parsed, default)
        if problem:
            errors.append(SpecError(f"param `{name}`: default: {problem}", mark_of(decls[name], "default"),
                                    f"/params/{name}/default", expected=show(parsed), found=describe(default)))
        params[name] = TParam(name, parsed, None if required else value_of(default, mark), required, doc, mark)
    return params, errors


def _has_expression(value) -> bool:
    return any(map(_has_expression, value)) if isinstance(value, list) else is_expression(value)
