"""Stage 1 of the IR: the parsed spec, typed records built by `frontend.parse` from validated marked data.

    Spec ──expand──▶ Network (ir.py) ──infer──▶ ShapedNetwork (ir.py)

Values stay as written (a value may be a `$` expression, evaluated by the expander) but carry their marks; a
list carries one mark per item.  After parsing, nothing reads the YAML containers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Union

from netspec.errors import Mark
from netspec.ir import Expect


@dataclass(frozen=True)
class Value:
    """A value as written, with its mark; `parts` holds a list's items (each with its own mark), else None."""

    raw: object
    mark: Mark
    parts: tuple["Value", ...] | None = None


@dataclass(frozen=True)
class Arg:
    """One argument of an op or template call: the value, and the mark of its key."""

    value: Value
    key_mark: Mark


@dataclass(frozen=True)
class Modifiers:
    """An item's optional keys.  `from_` is the item's `from:`, or a merge op's own (`add: {from: [a, b]}`)."""

    name: Value | None = None
    from_: Value | None = None
    when: Value | None = None
    repeat: Value | None = None
    as_: str | None = None
    doc: str = ""
    lint_ignore: frozenset[str] = frozenset()    # `lint: {ignore: [...]}`: rules silenced on the item's nodes


@dataclass(frozen=True)
class OpCall:
    """An op of the registry with its arguments (a merge op given a mapping takes its inputs from `from:`)."""

    mark: Mark
    mods: Modifiers
    op: str
    args: Mapping[str, Arg]


@dataclass(frozen=True)
class TemplateCall:
    mark: Mark
    mods: Modifiers
    template: str
    args: Mapping[str, Arg]


@dataclass(frozen=True)
class Seq:
    """Items applied one after another; an inline seq opens no scope of its own."""

    mark: Mark
    mods: Modifiers
    items: tuple["Item", ...]
    inline: bool = False


@dataclass(frozen=True)
class Branch:
    """A branch written as a list of items (empty: the identity)."""

    items: tuple["Item", ...]
    mark: Mark


@dataclass(frozen=True)
class Branches:
    """A merge op over parallel branches fed the same input; each branch is a list of items or one item."""

    mark: Mark
    mods: Modifiers
    op: str
    branches: tuple[Union[Branch, "Item"], ...]


Item = Union[OpCall, TemplateCall, Seq, Branches]


@dataclass(frozen=True)
class TParam:
    name: str
    type: object          # a parsed type (see param_types.py)
    default: Value | None
    required: bool
    doc: str
    mark: Mark


@dataclass(frozen=True)
class Template:
    name: str
    doc: str
    params: Mapping[str, TParam]
    body: Item            # the block's item (its keys other than doc and params)
    mark: Mark


@dataclass(frozen=True)
class Spec:
    """A validated network: resolved params, the parsed body, and every template it can call."""

    name: str
    doc: str
    file: str
    params: Mapping[str, object]       # resolved: the defaults with the overrides applied
    defaults: Mapping[str, object]     # as the spec declares them
    input: Value
    input_mark: Mark                   # the `input:` key (the input node's mark)
    body: tuple[Item, ...]
    body_mark: Mark                    # the `body:` key (the output node's mark)
    expect: Expect
    train: Mapping[str, object]
    templates: Mapping[str, Template]
    lint_ignore: frozenset[str] = frozenset()    # the top-level `lint: {ignore: [...]}`
