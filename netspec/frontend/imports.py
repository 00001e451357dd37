"""Which files a spec reads: built-in specs by name, and imports — confined to the spec's own folder and the
built-in library, cycle-free, and bounded together (bytes, values, files, errors).

yaml_source.py turns one file into marked data; this module decides which files, and in what order.
"""

from __future__ import annotations

import os
from pathlib import Path

from netspec.errors import Mark, Note, SpecError, SpecErrors, did_you_mean, display_path
from netspec.frontend.yaml_source import MAX_FILE_BYTES, MAX_VALUES, Document, MDict, MList, mark_of, read_document

MAX_IMPORTS = 200
# A spec and everything it imports, together: without a shared bound, 200 imports at the per-file limits took
# 20 s to refuse (found by tests/test_bounds.py).  The largest zoo spec and its imports hold ~1,850 values.
MAX_TOTAL_BYTES = MAX_FILE_BYTES
MAX_TOTAL_VALUES = MAX_VALUES
MAX_IMPORT_ERRORS = 10          # then stop reading imports: 200 files each refused at the limits took 3 s


def builtin_root() -> Path:
    """The built-in specs: `netspec/specs` in an installed package, `specs/` beside the package in a checkout."""
    package = Path(__file__).resolve().parent.parent
    installed = package / "specs"
    return installed if installed.is_dir() else package.parent / "specs"


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
    name = ref.replace(os.sep, "/").removesuffix(".yaml")
    if name in builtin_names():  # network specs only: a block library is not a network
        return builtin_root() / f"{name}.yaml"
    raise SpecErrors.one(f"no spec file or built-in spec named `{ref}`", Mark(ref, 1, 1),
                         hint=did_you_mean(ref, builtin_names()) or "`netspec list` shows the built-in specs")


def load_all(path: Path) -> list[Document]:
    """The spec at `path` and every library it imports (transitively), root first.  Import errors are located
    at the import's entry; an import cycle names the chain."""
    return load_imports(read_document(Path(path)))


def load_imports(root: Document) -> list[Document]:
    """`root` (a spec already read, from a file or from text) and every library it imports, as `load_all`.  A
    spec given as text has the path of a file in the current folder, so it imports from there."""
    allowed = (root.path.parent, builtin_root().resolve())
    documents: dict[Path, Document] = {root.path: root}
    errors: list[SpecError] = []
    budget = _Budget()
    budget.spend(root, Mark(root.name, 1, 1))
    _follow(root, [root.path], documents, allowed, errors, budget)
    if errors:
        raise SpecErrors(errors)
    return list(documents.values())


class _Budget:
    """The bytes and values a spec and its imports hold together (see MAX_TOTAL_BYTES); once spent, no further
    file is read."""

    def __init__(self):
        self.bytes = self.values = 0
        self.exhausted = False

    def spend(self, doc: Document, mark: Mark) -> SpecError | None:
        self.bytes += doc.size
        self.values += _count(doc.data)
        if self.bytes > MAX_TOTAL_BYTES or self.values > MAX_TOTAL_VALUES:
            self.exhausted = True
            what = (f"{self.bytes:,} bytes; the limit is {MAX_TOTAL_BYTES:,}" if self.bytes > MAX_TOTAL_BYTES else
                    f"more than {MAX_TOTAL_VALUES:,} values; the limit is {MAX_TOTAL_VALUES:,}")
            return SpecError(f"with this import, the spec and its imports hold {what} in all", mark,
                             hint="a spec and its libraries hold a few thousand values at most")
        return None


def _count(data) -> int:
    """Values in built data (aliases expanded, as _Sizer counts them); iterative, so depth does not matter."""
    count, stack = 0, [data]
    while stack:
        value = stack.pop()
        count += 1
        if isinstance(value, dict):
            count += len(value)  # the keys
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return count


def _follow(doc: Document, chain: list[Path], documents: dict, allowed: tuple[Path, ...], errors: list,
            budget: _Budget) -> None:
    data = doc.data
    imports = data.get("imports") if isinstance(data, MDict) else None
    if not isinstance(imports, MList):
        return  # the schema reports a malformed `imports`
    for index, entry in enumerate(imports):
        if budget.exhausted or len(errors) >= MAX_IMPORT_ERRORS:
            return
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
        problem = budget.spend(documents[target], mark)
        if problem is not None:
            errors.append(problem)
            return
        empty = _brings_no_blocks(entry, documents[target].data, mark)
        if empty is not None:
            errors.append(empty)
        _follow(documents[target], chain + [target], documents, allowed, errors, budget)


def _brings_no_blocks(entry: str, data, mark: Mark) -> SpecError | None:
    """An import exists for its `blocks:`; one without any is a mistake (typically a network spec named where
    its library was meant).  It is reported at the import, where the cause is: otherwise it would show only as
    every block it should have brought being unknown."""
    if not isinstance(data, MDict) or data.get("blocks"):
        return None  # a file that is not a mapping is the schema's to report
    network = "body" in data
    return SpecError(f"import `{entry}` brings no blocks: it is {'a network spec' if network else 'a file'} "
                     "without `blocks:`", mark, expected="a block library (a file with `blocks:`)",
                     found="a network (`body:`) and no blocks" if network else "no `blocks:`",
                     hint="import the library the blocks are defined in; a network's own `blocks:` can be "
                          "imported, its `body` cannot")


def resolve_import(entry: str, base: Path, allowed: tuple[Path, ...], mark: Mark) -> Path:
    """Relative to the importing file, else to the built-in library; never outside the allowed folders.  A path
    that leaves them is refused whether or not a file is there, so a refusal never tells what exists outside."""
    if os.path.isabs(entry) or entry.startswith("~"):
        raise SpecErrors.one(f"import `{entry}` is an absolute path", mark, expected="a path relative to this file",
                             hint="imports may reach only this spec's folder (and below) and the built-in library")
    escapes = False
    for folder in (base, allowed[1]):
        candidate = _resolved(folder / entry)
        if candidate is None:
            continue
        if not any(candidate.is_relative_to(root) for root in allowed):
            escapes = True
        elif _is_file(candidate):
            return candidate
    if escapes:
        # Shown as written, from the spec's folder: the resolved path would tell where a symbolic link points.
        folder = os.path.relpath(base, allowed[0])  # where the importing library is, when it is not the spec
        written = entry if folder == "." else f"{folder}/{entry}"
        raise SpecErrors.one(f"import `{entry}` leaves the folders a spec may read", mark,
                             expected=f"a file under {display_path(allowed[0])} or the built-in library",
                             found=f"`{written}` (from the spec's folder), which leads outside them")
    known = [str(p.relative_to(allowed[1])) for p in allowed[1].rglob("*.yaml")] if allowed[1].is_dir() else []
    raise SpecErrors.one(f"import `{entry}` not found", mark, expected="a .yaml file relative to this file "
                         "or in the built-in library", hint=did_you_mean(entry, known))


# pathlib raises instead of answering for a name too long for the file system, a NUL byte or a symlink loop
# (found by tests/test_fuzz.py); for an import, each of those is simply "no such file".

def _resolved(path: Path) -> Path | None:
    try:
        return path.resolve()
    except (OSError, RuntimeError, ValueError):
        return None


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False
