"""YAML text → plain data whose containers remember where every key and value came from.

PyYAML's composer gives nodes with marks; we build the values ourselves instead of using a constructor, so that
no tag can build an object, aliases cannot expand without bound, and duplicate keys are refused.  Which files
are read (built-in names, imports) is imports.py's business.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from netspec.errors import Mark, Note, SpecError, SpecErrors, display_path

MAX_FILE_BYTES = 4 << 20        # a spec is a few KB; refuse before parsing anything huge
MAX_VALUES = 20_000             # values after alias expansion: 13× the largest zoo file; a "billion laughs" stops here
MAX_DEPTH = 64                  # nesting of mappings/lists

SCALAR_TAGS = {
    "tag:yaml.org,2002:str", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool", "tag:yaml.org,2002:null",
}
MAP_TAG, SEQ_TAG = "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"


class MDict(dict):
    """A mapping that knows the mark of itself, of each key and of each value."""

    def __init__(self, mark: Mark):
        super().__init__()
        self.mark = mark
        self.key_marks: dict[str, Mark] = {}
        self.value_marks: dict[str, Mark] = {}


class MList(list):
    """A list that knows the mark of itself and of each item."""

    def __init__(self, mark: Mark):
        super().__init__()
        self.mark = mark
        self.item_marks: list[Mark] = []


def plain(value):
    """The value with plain lists and dicts for the marked ones: what leaves the front end (the IR, run.json,
    checkpoints that `torch.load(weights_only=True)` must read back) holds no loader class."""
    if isinstance(value, list):
        return [plain(item) for item in value]
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    return value


def mark_of(container, key, default: Mark | None = None) -> Mark:
    """The mark of `container[key]` (falling back to the container's own mark)."""
    if isinstance(container, MDict) and key in container.value_marks:
        return container.value_marks[key]
    if isinstance(container, MList) and isinstance(key, int) and 0 <= key < len(container.item_marks):
        return container.item_marks[key]
    return getattr(container, "mark", default or Mark("<unknown>", 1, 1))


def key_mark(container, key) -> Mark:
    if isinstance(container, MDict) and key in container.key_marks:
        return container.key_marks[key]
    return mark_of(container, key)


@dataclass(frozen=True)
class Document:
    path: Path          # resolved path on disk
    name: str           # how messages show it
    data: object        # MDict for a well-formed spec
    size: int = 0       # bytes read


def _mark(name: str, yaml_mark, pointer: str = "") -> Mark:
    return Mark(name, yaml_mark.line + 1, yaml_mark.column + 1, pointer)


def _pointer(parent: str, key) -> str:
    """`parent` extended by one JSON-pointer step (RFC 6901 escapes `~` and `/`)."""
    return f"{parent}/" + str(key).replace("~", "~0").replace("/", "~1")


class _Sizer:
    """Counts the values a composed tree stands for once its aliases are expanded, without expanding them: the
    composer shares an aliased node, so sizes are memoized per node and a billion laughs costs a few hundred
    steps.  Also refuses recursive aliases (`&a [*a]`) and nesting deeper than MAX_DEPTH."""

    def __init__(self, name: str):
        self.name = name
        self.sizes: dict[int, int] = {}
        self.active: set[int] = set()

    def size(self, node, depth: int = 0) -> int:
        key = id(node)
        if key in self.sizes:
            return self.sizes[key]
        if key in self.active:
            raise SpecErrors.one("a YAML alias refers to a value that contains it", _mark(self.name, node.start_mark),
                                 hint="write the values out; a spec is a tree, not a cycle")
        if depth > MAX_DEPTH:
            raise SpecErrors.one(f"values are nested more than {MAX_DEPTH} levels deep",
                                 _mark(self.name, node.start_mark))
        self.active.add(key)
        total = 1 + sum(self.size(child, depth + 1) for child in _children(node))
        self.active.discard(key)
        self.sizes[key] = total
        return total

    def check(self, root) -> None:
        """Raises when the expanded tree has more than MAX_VALUES values, located at the smallest value that
        alone is too big (for a billion laughs: the first anchor whose expansion crosses the limit)."""
        total = self.size(root)
        if total <= MAX_VALUES:
            return
        node, pointer = root, ""
        while (step := next(((k, c) for k, c in _steps(node) if self.sizes[id(c)] > MAX_VALUES), None)) is not None:
            pointer, node = _pointer(pointer, step[0]), step[1]
        size = self.sizes[id(node)]
        raise SpecErrors.one(f"this value expands to {size:,} values (YAML aliases included); the limit is "
                             f"{MAX_VALUES:,}", _mark(self.name, node.start_mark, pointer),
                             expected=f"≤ {MAX_VALUES:,} values",
                             found=f"{size:,}", hint="a spec has a few thousand values at most; "
                             "aliases (`*name`) may not multiply its size")


def _children(node) -> list:
    if isinstance(node, yaml.SequenceNode):
        return node.value
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _steps(node) -> list[tuple[object, object]]:
    """(JSON-pointer step, child value) of a composed node."""
    if isinstance(node, yaml.SequenceNode):
        return list(enumerate(node.value))
    if isinstance(node, yaml.MappingNode):
        return [(key.value, value) for key, value in node.value]
    return []


class _Builder:
    """Turns a composed node tree (already sized by _Sizer) into MDict/MList/scalars."""

    def __init__(self, name: str, text: str):
        self.name, self.text = name, text
        self.constructor = yaml.constructor.SafeConstructor()

    def build(self, node, pointer: str = "", mark: Mark | None = None):
        """`mark`: the node's own, when the caller has built it already (a list item's, a value's)."""
        mark = mark or _mark(self.name, node.start_mark, pointer)
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node, mark)
        if isinstance(node, yaml.SequenceNode):
            self._check_tag(node, SEQ_TAG, mark)
            out = MList(mark)
            for index, item in enumerate(node.value):
                item_pointer = _pointer(pointer, index)
                out.item_marks.append(item_mark := _mark(self.name, item.start_mark, item_pointer))
                out.append(self.build(item, item_pointer, item_mark))
            return out
        self._check_tag(node, MAP_TAG, mark)
        return self._mapping(node, mark, pointer)

    def _mapping(self, node, mark: Mark, pointer: str) -> MDict:
        out = MDict(mark)
        for key_node, value_node in node.value:
            kmark = _mark(self.name, key_node.start_mark, _pointer(pointer, key_node.value))
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise SpecErrors.one("YAML merge keys (`<<`) are not supported", kmark,
                                     hint="use a block template or a param instead")
            if not isinstance(key_node, yaml.ScalarNode):
                raise SpecErrors.one("a key must be a plain name, not a list or mapping", kmark)
            if self._explicit_tag(key_node) and key_node.tag not in SCALAR_TAGS:
                raise _tag_error(key_node.tag, kmark)
            key = str(key_node.value)
            if key in out:
                raise SpecErrors([SpecError(f"duplicate key `{key}`", kmark, hint="remove or rename one of them",
                                            notes=(Note("first given at", out.key_marks[key]),))])
            out.key_marks[key] = kmark
            out.value_marks[key] = value_mark = _mark(self.name, value_node.start_mark, kmark.pointer)
            out[key] = self.build(value_node, kmark.pointer, value_mark)
        return out

    def _check_tag(self, node, expected: str, mark: Mark) -> None:
        if node.tag != expected:
            raise _tag_error(node.tag, mark)

    def _scalar(self, node, mark: Mark):
        if node.tag in SCALAR_TAGS:
            try:
                return self.constructor.construct_object(node)
            except (ValueError, IndexError, KeyError) as err:
                # `!!int x`, `!!bool maybe`, an empty `!!int`, or an int of more than 4,300 digits (Python's
                # limit): PyYAML's constructors raise plain Python errors for these (found by tests/test_fuzz.py).
                raise _scalar_error(node, mark, err) from None
        if self._explicit_tag(node):
            raise _tag_error(node.tag, mark)
        # A plain scalar that YAML 1.1 would read as a date (`2024-01-31`) or `=`: plain text here, since no
        # spec value is a date and a "tag not allowed" error would puzzle someone who wrote no tag.
        return str(node.value)

    def _explicit_tag(self, node) -> bool:
        """Whether the source spells a tag (`!!set`, `!foo`) at the node, rather than the resolver choosing one."""
        return self.text.startswith("!", node.start_mark.index)


def _scalar_error(node, mark: Mark, err: Exception) -> SpecErrors:
    kind = {"int": "an int", "float": "a number", "bool": "true or false"}.get(node.tag.rsplit(":", 1)[-1], "a value")
    text = node.value if len(node.value) <= 40 else f"{node.value[:20]}…{node.value[-10:]}"
    too_long = "Exceeds the limit" in str(err)
    return SpecErrors.one(f"cannot read `{text}` as {kind}", mark, expected=kind,
                          found=f"{len(node.value):,} digits" if too_long else repr(text),
                          hint="numbers in a spec have at most a few digits" if too_long else
                          "write the value without a tag, or quote it to make it text")


def _tag_error(tag: str, mark: Mark) -> SpecErrors:
    shown = tag.replace("tag:yaml.org,2002:", "!!")
    return SpecErrors.one(f"the tag `{shown}` is not allowed: a spec is plain data", mark,
                          expected="strings, numbers, booleans, null, lists and mappings", found=shown,
                          hint="remove the tag; a spec is plain data, and ops are defined in netspec's op registry, never in a spec")


# libyaml's parser is ~20× faster than PyYAML's (a 1 MB expression must be refused within a second) and bounds
# nesting itself; PyYAML's own parser words syntax errors better, so it re-reads small files to explain them.
_FAST_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_EXPLAIN_BYTES = 256 << 10


def parse_text(text: str, name: str):
    """Parses one YAML document into marked data.  Raises SpecErrors for syntax errors and refused constructs."""
    start = Mark(name, 1, 1)
    if len(text) > MAX_FILE_BYTES:
        raise SpecErrors.one(f"the file is {len(text):,} bytes; the limit is {MAX_FILE_BYTES:,}", start,
                             hint="a spec is a few kilobytes; split it or check you gave the right file")
    node = _compose(text, name)
    if node is None:
        raise SpecErrors.one("the file is empty", start, expected="a mapping starting with the format version, `netspec: N`")
    try:
        _Sizer(name).check(node)
        return _Builder(name, text).build(node)
    except RecursionError:
        raise SpecErrors.one("the YAML is nested too deeply to parse", start)


_NODE_EVENTS = (yaml.ScalarEvent, yaml.SequenceStartEvent, yaml.MappingStartEvent, yaml.AliasEvent)


def _count_values(text: str, name: str) -> None:
    """Refuses a document that holds more than MAX_VALUES values as written, before any node is built: composing
    4 MiB of `[a, a, a, …]` took 5 s and 460 MB (found by tests/test_bounds.py).  Each value written counts once
    and expands to at least one, so this refuses nothing that _Sizer would accept.  Syntax errors are left to
    `_compose`, which words them."""
    count = 0
    try:
        for event in yaml.parse(text, Loader=_FAST_LOADER):
            count += isinstance(event, _NODE_EVENTS)
            if count > MAX_VALUES:
                raise SpecErrors.one(f"the file holds more than {MAX_VALUES:,} values; the limit is {MAX_VALUES:,}",
                                     _mark(name, event.start_mark), expected=f"≤ {MAX_VALUES:,} values",
                                     hint="a spec has a few thousand values at most; check you gave the right file")
    except (yaml.YAMLError, RecursionError):
        return


def _compose(text: str, name: str):
    _count_values(text, name)
    try:
        return yaml.compose(text, Loader=_FAST_LOADER)
    except yaml.YAMLError as err:
        if _FAST_LOADER is not yaml.SafeLoader and len(text) <= _EXPLAIN_BYTES:
            try:
                yaml.compose(text, Loader=yaml.SafeLoader)
            except (yaml.YAMLError, RecursionError) as worded:
                err = worded if isinstance(worded, yaml.YAMLError) else err
        raise _syntax_error(err, text, name) from None
    except RecursionError:
        raise SpecErrors.one("the YAML is nested too deeply to parse", Mark(name, 1, 1)) from None


def _syntax_error(err: yaml.YAMLError, text: str, name: str) -> SpecErrors:
    if isinstance(err, yaml.reader.ReaderError):  # a control character: located by its offset, not at 1:1
        line = text.count("\n", 0, err.position) + 1
        column = err.position - (text.rfind("\n", 0, err.position) + 1) + 1
        return SpecErrors.one(f"YAML syntax error: {err.reason} (#x{err.character:04x})", Mark(name, line, column),
                              hint="remove the character; a spec is plain text")
    if not isinstance(err, yaml.MarkedYAMLError):
        return SpecErrors.one(f"YAML syntax error: {err}", Mark(name, 1, 1))
    where = err.problem_mark or err.context_mark
    if err.context_mark is not None and where is not None and where.index >= len(text.rstrip()):
        where = err.context_mark  # "got <stream end>": the place that was never closed is the useful one
    mark = _mark(name, where) if where else Mark(name, 1, 1)
    problem = (err.problem or "invalid YAML").strip()
    context = f" ({err.context.strip()})" if err.context else ""
    return SpecErrors.one(f"YAML syntax error: {problem}{context}", mark,
                          hint="check the indentation and that every `:` after a key is followed by a space")


def read_document(path: Path, shown: str | None = None) -> Document:
    shown = shown or display_path(path)
    start = Mark(shown, 1, 1)
    try:
        if path.is_dir():
            raise SpecErrors.one(f"{shown} is a directory, not a spec file", start, hint="name a .yaml file")
        with path.open("rb") as handle:  # a bounded read: /dev/zero or a pipe has no size to check first
            data = handle.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:
            raise SpecErrors.one(f"the file is larger than the limit of {MAX_FILE_BYTES:,} bytes", start,
                                 hint="a spec is a few kilobytes; check you gave the right file")
        text = data.decode("utf-8")
    except FileNotFoundError:
        raise SpecErrors.one(f"no such file: {shown}", start)
    except UnicodeDecodeError as err:
        raise SpecErrors.one(f"the file is not UTF-8 text ({err.reason} at byte {err.start})",
                             _byte_mark(shown, err.object, err.start), hint="save the file as UTF-8")
    except OSError as err:
        raise SpecErrors.one(f"cannot read {shown}: {err.strerror}", start)
    return Document(path.resolve(), shown, parse_text(text, shown), len(data))


def _byte_mark(name: str, data: bytes, offset: int) -> Mark:
    """The line and column of a byte offset (the column counts the characters before it on its line)."""
    line_start = data.rfind(b"\n", 0, offset) + 1
    column = len(data[line_start:offset].decode("utf-8", errors="replace"))
    return Mark(name, data.count(b"\n", 0, offset) + 1, column + 1)
