"""YAML text → plain data whose containers remember where every key and value came from.

PyYAML's composer gives nodes with marks; we build the values ourselves instead of using a constructor, so that
no tag can build an object, aliases cannot expand without bound, and duplicate keys are refused.  Imports are
followed here too, confined to the folders a spec may reach (docs/spec-format.md, "Imports").
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import yaml

from .errors import Mark, Note, SpecError, SpecErrors, did_you_mean, display_path

MAX_FILE_BYTES = 4 << 20        # a spec is a few KB; refuse before parsing anything huge
MAX_VALUES = 200_000            # values after alias expansion (a "billion laughs" file stops here)
MAX_DEPTH = 64                  # nesting of mappings/lists
MAX_IMPORTS = 200

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


def builtin_root() -> Path:
    """The built-in specs: `netspec/specs` in an installed package, `specs/` beside the package in a checkout."""
    here = Path(__file__).resolve().parent
    installed = here / "specs"
    return installed if installed.is_dir() else here.parent / "specs"


def _mark(name: str, yaml_mark) -> Mark:
    return Mark(name, yaml_mark.line + 1, yaml_mark.column + 1)


class _Builder:
    """Turns a composed node tree into MDict/MList/scalars, counting values to bound alias expansion."""

    def __init__(self, name: str):
        self.name, self.count = name, 0
        self.constructor = yaml.constructor.SafeConstructor()

    def build(self, node, depth: int = 0):
        self.count += 1
        mark = _mark(self.name, node.start_mark)
        if self.count > MAX_VALUES:
            raise SpecErrors.one(f"the document expands to more than {MAX_VALUES:,} values (YAML alias bomb?)", mark,
                                 hint="write the values out; aliases may not multiply a spec's size")
        if depth > MAX_DEPTH:
            raise SpecErrors.one(f"values are nested more than {MAX_DEPTH} levels deep", mark)
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node, mark)
        if isinstance(node, yaml.SequenceNode):
            self._check_tag(node, SEQ_TAG, mark)
            out = MList(mark)
            for item in node.value:
                out.item_marks.append(_mark(self.name, item.start_mark))
                out.append(self.build(item, depth + 1))
            return out
        self._check_tag(node, MAP_TAG, mark)
        return self._mapping(node, mark, depth)

    def _mapping(self, node, mark: Mark, depth: int) -> MDict:
        out = MDict(mark)
        for key_node, value_node in node.value:
            kmark = _mark(self.name, key_node.start_mark)
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise SpecErrors.one("YAML merge keys (`<<`) are not supported", kmark,
                                     hint="use a block template or a param instead")
            if not isinstance(key_node, yaml.ScalarNode):
                raise SpecErrors.one("a key must be a plain name, not a list or mapping", kmark)
            key = str(key_node.value)
            if key in out:
                raise SpecErrors([SpecError(f"duplicate key `{key}`", kmark, hint="remove or rename one of them",
                                            notes=(Note("first given at", out.key_marks[key]),))])
            out.key_marks[key] = kmark
            out.value_marks[key] = _mark(self.name, value_node.start_mark)
            out[key] = self.build(value_node, depth + 1)
        return out

    def _check_tag(self, node, expected: str, mark: Mark) -> None:
        if node.tag != expected:
            raise _tag_error(node.tag, mark)

    def _scalar(self, node, mark: Mark):
        if node.tag not in SCALAR_TAGS:
            raise _tag_error(node.tag, mark)
        return self.constructor.construct_object(node)


def _tag_error(tag: str, mark: Mark) -> SpecErrors:
    shown = tag.replace("tag:yaml.org,2002:", "!!")
    return SpecErrors.one(f"the tag `{shown}` is not allowed: a spec is plain data", mark,
                          expected="strings, numbers, booleans, null, lists and mappings", found=shown,
                          hint="remove the tag; custom ops come from registered Python plugins, never from a spec")


def parse_text(text: str, name: str):
    """Parses one YAML document into marked data.  Raises SpecErrors for syntax errors and refused constructs."""
    start = Mark(name, 1, 1)
    if len(text) > MAX_FILE_BYTES:
        raise SpecErrors.one(f"the file is {len(text):,} bytes; the limit is {MAX_FILE_BYTES:,}", start,
                             hint="a spec is a few kilobytes; split it or check you gave the right file")
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as err:
        where = err.problem_mark or err.context_mark
        mark = _mark(name, where) if where else start
        problem = (err.problem or "invalid YAML").strip()
        context = f" ({err.context.strip()})" if err.context else ""
        raise SpecErrors.one(f"YAML syntax error: {problem}{context}", mark,
                             hint="check the indentation and that every `:` after a key is followed by a space")
    except yaml.YAMLError as err:
        raise SpecErrors.one(f"YAML syntax error: {err}", start)
    except RecursionError:
        raise SpecErrors.one("the YAML is nested too deeply to parse", start)
    if node is None:
        raise SpecErrors.one("the file is empty", start, expected="a mapping starting with `netspec: 1`")
    try:
        return _Builder(name).build(node)
    except RecursionError:
        raise SpecErrors.one("the YAML is nested too deeply to parse", start)


def read_document(path: Path, shown: str | None = None) -> Document:
    shown = shown or display_path(path)
    start = Mark(shown, 1, 1)
    try:
        if path.is_dir():
            raise SpecErrors.one(f"{shown} is a directory, not a spec file", start, hint="name a .yaml file")
        if path.stat().st_size > MAX_FILE_BYTES:
            raise SpecErrors.one(f"the file is {path.stat().st_size:,} bytes; the limit is {MAX_FILE_BYTES:,}", start)
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise SpecErrors.one(f"no such file: {shown}", start)
    except UnicodeDecodeError as err:
        raise SpecErrors.one(f"the file is not UTF-8 text ({err.reason} at byte {err.start})", start)
    except OSError as err:
        raise SpecErrors.one(f"cannot read {shown}: {err.strerror}", start)
    return Document(path.resolve(), shown, parse_text(text, shown))


def builtin_names() -> list[str]:
    """Every built-in network spec by the name a user types (`googlenet`, `imagenet/resnet50`)."""
    root = builtin_root()
    if not root.is_dir():
        return []
    return sorted(str(p.relative_to(root).with_suffix("")) for p in root.rglob("*.yaml")
                  if "blocks" not in p.relative_to(root).parts)


def resolve_spec(ref: str) -> Path:
    """A path to an existing file, or the name of a built-in spec."""
    path = Path(ref)
    if path.exists():
        return path
    candidate = builtin_root() / (ref if ref.endswith((".yaml", ".yml")) else ref + ".yaml")
    if candidate.is_file() and "/" not in ref.strip("./").replace(os.sep, "/").split("imagenet/", 1)[-1]:
        return candidate
    raise SpecErrors.one(f"no spec file or built-in spec named `{ref}`", Mark(ref, 1, 1),
                         hint=did_you_mean(ref, builtin_names()) or "`netspec list` shows the built-in specs")


def load_all(path: Path) -> list[Document]:
    """The spec at `path` and every library it imports (transitively), root first.  Import errors are located
    at the import's entry; an import cycle names the chain."""
    root = read_document(Path(path))
    allowed = (root.path.parent, builtin_root().resolve())
    documents: dict[Path, Document] = {root.path: root}
    errors: list[SpecError] = []
    _follow(root, [root.path], documents, allowed, errors)
    if errors:
        raise SpecErrors(errors)
    return list(documents.values())


def _follow(doc: Document, chain: list[Path], documents: dict, allowed: tuple[Path, ...], errors: list) -> None:
    data = doc.data
    imports = data.get("imports") if isinstance(data, MDict) else None
    if not isinstance(imports, MList):
        return  # the schema reports a malformed `imports`
    for index, entry in enumerate(imports):
        if not isinstance(entry, str):
            continue
        mark = mark_of(imports, index)
        try:
            target = resolve_import(entry, doc.path.parent, allowed, mark)
        except SpecErrors as err:
            errors.extend(err.errors)
            continue
        if target in chain:
            cycle = " → ".join(p.name for p in chain[chain.index(target):] + [target])
            errors.append(SpecError(f"import cycle: {cycle}", mark, hint="a library may not import itself, "
                                    "directly or through others; move shared blocks into a third file"))
            continue
        if target in documents:
            continue
        if len(documents) >= MAX_IMPORTS:
            errors.append(SpecError(f"more than {MAX_IMPORTS} files imported", mark))
            return
        try:
            documents[target] = read_document(target)
        except SpecErrors as err:
            errors.extend(e.with_notes(Note("imported at", mark)) for e in err.errors)
            continue
        _follow(documents[target], chain + [target], documents, allowed, errors)


def resolve_import(entry: str, base: Path, allowed: tuple[Path, ...], mark: Mark) -> Path:
    """Relative to the importing file, else to the built-in library; never outside the allowed folders."""
    if os.path.isabs(entry) or entry.startswith("~"):
        raise SpecErrors.one(f"import `{entry}` is an absolute path", mark, expected="a path relative to this file",
                             hint="imports may reach only this spec's folder (and below) and the built-in library")
    for folder in (base, allowed[1]):
        candidate = (folder / entry).resolve()
        if candidate.is_file():
            if not any(candidate.is_relative_to(root) for root in allowed):
                raise SpecErrors.one(f"import `{entry}` leaves the folders a spec may read", mark,
                                     expected=f"a file under {display_path(allowed[0])} or the built-in library",
                                     found=display_path(candidate))
            return candidate
    known = [str(p.relative_to(allowed[1])) for p in allowed[1].rglob("*.yaml")] if allowed[1].is_dir() else []
    raise SpecErrors.one(f"import `{entry}` not found", mark, expected="a .yaml file relative to this file "
                         "or in the built-in library", hint=did_you_mean(entry, known))
