"""The semantic rules: what the JSON Schema cannot say (item kinds, template names and params, names, the
network's own keys).  Each rule yields SpecErrors and skips what is malformed (the schema reports that), so one
run reports every independent mistake.
"""

from __future__ import annotations

import difflib
from typing import Iterator, Mapping

from netspec.errors import Mark, Note, SpecError, did_you_mean
from netspec.frontend.grammar import (COMPOSITES, ITEM_NAME, ITEM_NAME_RULE, LINT_RULES, MODIFIERS, RESERVED, SEQ,
                                      is_expression)
from netspec.frontend.param_types import TypeSpecError, check_type, parse_type, type_of_value
from netspec.frontend.parse import (blocks_of, children, item_kind, param_default, params_of, template_body,
                                    template_params)
from netspec.frontend.schema import top_level_keys
from netspec.frontend.yaml_source import Document, MDict, MList, key_mark, mark_of
from netspec.ops import OPS
from netspec.ops.base import describe, shown


def rule_errors(documents: list[Document]) -> list[SpecError]:
    """Every rule's errors, over the spec's documents (the first is the network, the others its imports)."""
    templates, errors = collect_templates(documents)
    for definition in templates.values():
        body = template_body(definition)
        errors += item_errors(body, body.mark, templates)
    body = documents[0].data.get("body")
    if isinstance(body, MList):
        errors += [e for i, item in enumerate(body) for e in item_errors(item, mark_of(body, i), templates)]
    return errors + list(check_model(documents[0]))


# ── templates ─────────────────────────────────────────────────────────────────────────────────────────────────

def collect_templates(documents: list[Document]) -> tuple[dict[str, MDict], list[SpecError]]:
    """Every well-formed block definition, by name, and the errors of its name and params.  Malformed entries
    (already reported by the schema) are skipped."""
    templates: dict[str, MDict] = {}
    first: dict[str, Mark] = {}
    errors: list[SpecError] = []
    for name, mark, definition in blocks_of(documents):
        if name in OPS or name in RESERVED:
            errors.append(SpecError(f"block name `{name}` is taken by {'an op' if name in OPS else 'the language'}",
                                    mark, hint=f"rename it, e.g. `{name}_block`"))
            continue
        if name in first:
            errors.append(SpecError(f"block `{name}` is defined twice", mark,
                                    notes=(Note("first defined at", first[name]),)))
            continue
        if isinstance(definition, MDict):
            first[name] = mark
            errors += template_params(params_of(definition))[1]
            templates[name] = definition
    return templates, errors


_COMPOSITES_TEXT = ", ".join(COMPOSITES[:-1]) + " or " + COMPOSITES[-1]    # "seq, concat or add"


# ── items ─────────────────────────────────────────────────────────────────────────────────────────────────────

def item_errors(item, mark: Mark, templates: Mapping[str, object]) -> list[SpecError]:
    """The errors of one item and of the items inside it."""
    return list(_item_errors(item, mark, templates))


def _item_errors(item, mark: Mark, templates) -> Iterator[SpecError]:
    if not isinstance(item, (str, MDict)):
        return  # the schema reports it
    if isinstance(item, str) and item.startswith("$"):
        yield SpecError("an item cannot be an expression", mark, expected="an op or template name", found=describe(item))
        return
    kind, extra = item_kind(item)
    if kind is None:
        yield SpecError(f"the item has no op, template, {_COMPOSITES_TEXT}", mark,
                        expected="one of them, e.g. `conv: {out: 64, kernel: 3}`", found=", ".join(item) or "{}")
        return
    if kind == SEQ and not isinstance(item, MDict):
        yield SpecError("a bare `seq` has no items", mark, expected="`seq: [item, …]`", found="`seq`")
        return
    for key in extra:
        yield SpecError(f"the item has two kinds: `{kind}` and `{key}`", key_mark(item, key),
                        hint="put them in a `seq:` list, one item each")
    kind_mark = key_mark(item, kind) if isinstance(item, MDict) else mark
    known_kind = kind in OPS or kind in templates or kind in COMPOSITES
    if not known_kind:
        known = list(OPS) + list(templates) + list(COMPOSITES) + list(MODIFIERS)  # `form:` → `from`
        yield SpecError(f"unknown op or template `{kind}`", kind_mark, expected="an op, a block template or " + "/".join(COMPOSITES),
                        found=f"`{kind}`", hint=did_you_mean(kind, known) or "`netspec list` shows the blocks; "
                        "docs/ops.md the ops; a block library must be listed in `imports:`")
    if isinstance(item, MDict):  # `as` and `name` whatever the kind; `inline` and the children depend on it
        if "as" in item and "repeat" not in item:
            yield SpecError("`as` names the index of a `repeat`, but the item has no `repeat`", key_mark(item, "as"))
        yield from _name_errors(item, mark)
        yield from lint_errors(item)
        if known_kind:
            yield from _inline_errors(item, kind)
            for child, child_mark in children(item, kind):
                yield from _item_errors(child, child_mark, templates)


def _name_errors(item: MDict, mark: Mark) -> Iterator[SpecError]:
    """A plain `name:` is checked here; one computed by an expression, once evaluated (the expander)."""
    name = item.get("name")
    if isinstance(name, str) and not is_expression(name) and not ITEM_NAME.match(name):
        yield SpecError(f"invalid name {shown(name)}", mark, expected=ITEM_NAME_RULE, found=describe(name))


def lint_errors(holder: MDict) -> Iterator[SpecError]:
    """An unknown rule in `lint: {ignore: [...]}` (of an item or the spec), with the closest rule's name."""
    lint = holder.get("lint")
    rules = lint.get("ignore") if isinstance(lint, MDict) else None
    for i, rule in enumerate(rules if isinstance(rules, MList) else ()):
        if isinstance(rule, str) and rule not in LINT_RULES:
            yield SpecError(f"unknown lint rule `{rule}`", mark_of(rules, i), expected="one of " + ", ".join(
                f"`{r}`" for r in LINT_RULES), found=f"`{rule}`", hint=did_you_mean(rule, LINT_RULES) or
                "docs/cli.md lists the rules")


def _inline_errors(item: MDict, kind: str) -> Iterator[SpecError]:
    """`inline: true` applies to a seq only, and an inline seq has no name of its own (it opens no scope)."""
    if item.get("inline") is not True:
        return
    if kind != SEQ:
        yield SpecError(f"`inline` applies to a `seq`, not to `{kind}`", key_mark(item, "inline"),
                        hint=f"wrap it: `{{inline: true, seq: [{kind}: …]}}`, or drop `inline`")
    if "name" in item:
        yield SpecError("an inline seq has no name: its items are named in the enclosing seq", key_mark(item, "name"),
                        hint="name the items inside it, or drop `inline` to make the seq a named scope")


# ── the model ─────────────────────────────────────────────────────────────────────────────────────────────────

def check_model(doc: Document) -> Iterator[SpecError]:
    data = doc.data
    yield from lint_errors(data)
    # A key the schema reports as misspelt (`bodyy`, "did you mean `body`?") is not missing a second time.
    known = top_level_keys()
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


def resolve_params(doc: Document, overrides: Mapping[str, object]) -> tuple[dict[str, object], list[SpecError]]:
    decls = doc.data.get("params") or MDict(doc.data.mark)
    values, errors = {}, []
    for name, decl in decls.items():
        declared = isinstance(decl, MDict)
        default = param_default(decl)
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
                                    f"/params/{name}", expected=str(kind), found=describe(value)))
        elif kind == "float" and isinstance(value, int):  # checked: a float holds it
            value = float(value)
        values[name] = value
    for name in overrides:
        if name not in decls:
            errors.append(SpecError(f"unknown param `{name}` in the overrides", key_mark(doc.data, "params")
                                    if "params" in doc.data else doc.data.mark,
                                    expected="one of " + (", ".join(f"`{n}`" for n in decls) or "(no params)"),
                                    found=f"`{name}`", hint=did_you_mean(name, decls)))
    return values, errors
