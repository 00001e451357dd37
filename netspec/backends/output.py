"""Writing an output file (a diagram, generated source, weights) safely.  No torch, no graphviz.

- Atomic: the data goes to a temporary file beside the target, then is renamed over it, so an interrupted run
  never leaves half a file.
- `overwrite=False` never replaces an existing file (the rename is a hard link, which fails when the name is
  taken): for files nobody asked for by name, such as the .dot `draw` writes when Graphviz is missing.
- Failures are `CannotWrite` with a reason a person can act on ("Permission denied", "… is a directory",
  "… is a file, not a directory"), never a bare OSError.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import BinaryIO, Callable, Iterable


class CannotWrite(Exception):
    """The output file could not be written; `str()` is `cannot write PATH: reason`."""

    def __init__(self, path: Path, reason: str):
        self.path, self.reason = path, reason
        super().__init__(f"cannot write {path}: {reason}")


def write_atomic(path: Path, data: bytes | Callable[[BinaryIO], None], overwrite: bool = True) -> bool:
    """Writes `data` (bytes, or a function that writes to a binary file) to `path`, creating its folder.
    Returns False, writing nothing, when `overwrite` is False and `path` exists."""
    path = Path(path)
    if not overwrite and os.path.lexists(path):
        return False
    check_target(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as handle:
            if callable(data):
                data(handle)
            else:
                handle.write(data)
        if overwrite:
            os.replace(tmp, path)
        else:
            _link_or_create(tmp, path)
    except FileExistsError as err:
        if not overwrite and os.path.lexists(path):
            return False
        raise CannotWrite(path, _reason_for_parent(path) or err.strerror) from None
    except OSError as err:
        raise CannotWrite(path, err.strerror or str(err)) from None
    finally:
        if os.path.lexists(tmp):
            tmp.unlink()
    return True


def _link_or_create(tmp: Path, path: Path) -> None:
    """`tmp` under the new name `path`, failing (FileExistsError) when the name is taken, even meanwhile."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise
    except OSError:  # no hard links here (FAT, some network file systems): an exclusive create instead
        with open(tmp, "rb") as source, open(path, "xb") as target:
            shutil.copyfileobj(source, target)


def check_target(path: Path) -> None:
    """CannotWrite when `path` is a directory or under a file (checked before work whose result would be lost)."""
    if path.is_dir():
        raise CannotWrite(path, "it is a directory")
    reason = _reason_for_parent(path)
    if reason:
        raise CannotWrite(path, reason)


def _reason_for_parent(path: Path) -> str:
    """Why `path`'s folder cannot exist: a component of it is a file (mkdir would say "File exists")."""
    for parent in reversed(path.parents):
        if parent.exists() and not parent.is_dir():
            return f"{parent} is a file, not a directory"
    return ""


def same_file_as(out: Path, inputs: Iterable[Path]) -> Path | None:
    """The input that `out` names (through any link), or None: an output must never be written over the spec
    being read or a library it imports."""
    if not os.path.exists(out):
        return None
    for path in inputs:
        try:
            if os.path.samefile(out, path):
                return Path(path)
        except OSError:
            continue
    return None
