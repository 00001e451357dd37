"""Format versions of the spec language (`netspec: N`) and the steps between them (docs/spec-format.md, "Format
versions").

A step from version N to N + 1 is a function that finds, in a document's marked data, the keys to rename; the
same renames serve twice: reading an older file (the data are renamed in memory, keeping every mark, so errors
still point into the file as written) and `netspec upgrade` (the keys are replaced in the text where their marks
say, so comments and layout stay).  Only renames have been needed so far; a step of another kind would add its
own record here, with both uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

from netspec.frontend.text_edits import Edit
from netspec.frontend.yaml_source import Document, MDict, MList, key_mark, mark_of

CURRENT = 2


@dataclass(frozen=True)
class Rename:
    """In mapping `holder`, the key `old` becomes `new`."""

    holder: MDict
    old: str
    new: str


@dataclass(frozen=True)
class Step:
    to: int             # the version it upgrades to (from `to - 1`)
    what: str           # one line for the docs and for `netspec upgrade`'s report
    renames: Callable[[MDict], Iterator[Rename]]


def _mappings(value) -> Iterator[MDict]:
    """Every mapping in the document, outermost first (iterative: a document is at most 64 levels deep)."""
    todo = [value]
    while todo:
        node = todo.pop()
        if isinstance(node, MDict):
            yield node
            todo.extend(reversed(list(node.values())))
        elif isinstance(node, MList):
            todo.extend(reversed(node))


def _adaptive_avgpool_size(data: MDict) -> Iterator[Rename]:
    for mapping in _mappings(data):
        call = mapping.get("adaptive_avgpool")
        if isinstance(call, MDict) and "out" in call and "size" not in call:
            yield Rename(call, "out", "size")


STEPS = (
    Step(2, "`adaptive_avgpool: {out: …}` is `{size: …}`: the output's height and width, as `upsample`'s `size` "
            "(`out` means channels everywhere else)", _adaptive_avgpool_size),
)
READABLE = tuple(range(STEPS[0].to - 1, CURRENT + 1))   # every version this netspec reads: 1 … CURRENT


def version_of(data) -> object:
    return data.get("netspec") if isinstance(data, MDict) else None


def is_readable(version) -> bool:
    return type(version) is int and version in READABLE  # True == 1.0 == 1 in Python: the type is checked


def renames(data: MDict, version: int) -> list[tuple[Step, Rename]]:
    """The renames that bring `data`, written in `version`, to CURRENT, step by step.  Renames of one step are
    applied before the next step looks (`upgrade` applies them in memory as it goes)."""
    found = []
    for step in STEPS:
        if step.to > version:
            for rename in list(step.renames(data)):
                found.append((step, rename))
                _rename(rename)
    return found


def _rename(rename: Rename) -> None:
    """The key renamed in place, at its position, with its marks."""
    holder = rename.holder
    items = list(holder.items())
    key_marks, value_marks = dict(holder.key_marks), dict(holder.value_marks)
    holder.clear()
    holder.key_marks.clear()
    holder.value_marks.clear()
    for key, value in items:
        new = rename.new if key == rename.old else key
        holder[new] = value
        holder.key_marks[new] = key_marks.get(key, holder.mark)
        holder.value_marks[new] = value_marks.get(key, holder.mark)


def upgrade_in_memory(doc: Document) -> Document:
    """An older document's data as the current version reads them (the marks unchanged); a current, unknown or
    missing version is left for the schema to report."""
    version = version_of(doc.data)
    if is_readable(version) and version < CURRENT:
        renames(doc.data, version)
        doc.data["netspec"] = CURRENT
    return doc


def text_edits(doc: Document) -> tuple[list[Edit], list[tuple[Step, Rename, Edit]]]:
    """The located edits that rewrite an older document's text in the current version: the version number, and
    one per rename (reported with its step).  Reads `doc.data` through the renames (it is changed)."""
    version = version_of(doc.data)
    found = renames(doc.data, version)
    changes = {}  # by edit: a mapping reached through several YAML aliases is one place in the text
    for step, rename in found:
        changes.setdefault(Edit(key_mark(rename.holder, rename.new), rename.old, rename.new), (step, rename))
    changes = [(step, rename, edit) for edit, (step, rename) in changes.items()]
    return [Edit(mark_of(doc.data, "netspec"), str(version), str(CURRENT))] + [e for _, _, e in changes], changes
