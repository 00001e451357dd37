"""Errors as located data: every user mistake becomes a SpecError with a source mark.

The CLI is the only place that prints them (`render`) and picks exit codes; library code raises
`SpecErrors` (one or more) so that a single run can report every independent mistake.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterable


@dataclass(frozen=True)
class Mark:
    """A position in a source file; line and column are 1-based, as editors show them.  `pointer` is the JSON
    pointer of the value there (`/body/3/conv/out`) when the loader knows it; it plays no part in equality."""

    file: str
    line: int
    col: int
    pointer: str = field(default="", compare=False)

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


UNKNOWN = Mark("<unknown>", 1, 1)


@dataclass(frozen=True)
class Note:
    """A secondary location shown under the error ("in template `basic` defined at ...")."""

    text: str
    mark: Mark | None = None


ERROR, WARNING = "error", "warning"


@dataclass(frozen=True)
class SpecError:
    """One located finding: a mistake (severity "error") or, from lint, a "warning".  `path` is a JSON pointer
    into the file that `mark` points at."""

    message: str
    mark: Mark = UNKNOWN
    path: str = ""
    expected: str | None = None
    found: str | None = None
    hint: str | None = None
    notes: tuple[Note, ...] = ()
    severity: str = ERROR

    def __post_init__(self):
        if not self.path and self.mark.pointer:  # every error gets its key path from where it points
            object.__setattr__(self, "path", self.mark.pointer)

    def with_notes(self, *notes: Note) -> "SpecError":
        return replace(self, notes=self.notes + tuple(notes))

    def first_line(self) -> str:
        return f"{self.mark}: {self.severity}: {self.message}"


class SpecErrors(Exception):
    """Raised by every phase with all the mistakes it found.  Always holds at least one error."""

    def __init__(self, errors: Iterable[SpecError]):
        self.errors: tuple[SpecError, ...] = tuple(errors)
        assert self.errors, "SpecErrors needs at least one error"
        super().__init__(self.errors[0].first_line())

    @classmethod
    def one(cls, message: str, mark: Mark = UNKNOWN, **fields) -> "SpecErrors":
        return cls([SpecError(message, mark, **fields)])


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """A hint naming the closest known names to `word`, or None when nothing is close."""
    close = difflib.get_close_matches(str(word), sorted(set(map(str, choices))), n=3, cutoff=0.6)
    if not close:
        return None
    return "did you mean " + " or ".join(f"`{c}`" for c in close) + "?"


def render(error: SpecError, source_lines: dict[str, list[str]] | None = None) -> str:
    """Compiler-style text: the located first line, the source line with a caret, then details."""
    out = [error.first_line()]
    line_text = _source_line(error.mark, source_lines)
    if line_text is not None:
        gutter = f"{error.mark.line:>5}"
        out.append(f"{gutter} | {line_text}")
        out.append(f"{' ' * len(gutter)} | {' ' * (error.mark.col - 1)}^")
    if error.path:
        out.append(f"  at: {error.path}")
    if error.expected is not None:
        out.append(f"  expected: {error.expected}")
    if error.found is not None:
        out.append(f"  found: {error.found}")
    if error.hint:
        out.append(f"  hint: {error.hint}")
    for note in error.notes:
        out.append(f"  {note.text}" + (f" {note.mark}" if note.mark else ""))  # texts end "… at"
    return "\n".join(out)


def to_json(error: SpecError) -> dict:
    """An error as plain data for `--json` output: the same fields `render` prints, null where absent."""
    def place(mark: Mark | None) -> dict:
        return {"file": mark.file, "line": mark.line, "col": mark.col} if mark else {"file": None, "line": None,
                                                                                     "col": None}

    return {"severity": error.severity, "message": error.message, **place(error.mark), "path": error.path,
            "expected": error.expected, "found": error.found, "hint": error.hint,
            "notes": [{"text": note.text, **place(note.mark)} for note in error.notes]}


def _source_line(mark: Mark, cache: dict[str, list[str]] | None) -> str | None:
    if mark.file.startswith("<"):
        return None
    cache = {} if cache is None else cache
    if mark.file not in cache:
        try:
            # Only the first MiB: a huge file must not be re-read in full just to show one line.
            with open(mark.file, encoding="utf-8", errors="replace") as handle:
                cache[mark.file] = handle.read(1 << 20).splitlines()
        except OSError:
            cache[mark.file] = []
    lines = cache[mark.file]
    if 1 <= mark.line <= len(lines):
        return lines[mark.line - 1].rstrip()[:200]
    return None


def display_path(path: str | Path) -> str:
    """Paths relative to the working directory when possible, so messages stay short."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
