"""How a run folder's files are opened: never through a symbolic link, temporary files under unique names, the
user's umask respected, and one lock per run folder.  No torch.

A run folder is trusted no more than any other folder a user hands to `--resume`, `eval` or `export`: a link
planted in it (`metrics.jsonl -> ~/.bashrc`) must not make netspec write, truncate or read outside it.  So files
are replaced by renaming a fresh temporary file (created with O_EXCL by `tempfile.mkstemp`) over them, appended
to and read with O_NOFOLLOW, and `refuse_links` turns away a folder whose entries are links before anything is
read.
"""

from __future__ import annotations

import errno
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

try:
    import fcntl
except ImportError:  # not POSIX: no locking (netspec runs on Linux and macOS)
    fcntl = None  # type: ignore[assignment]

NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


class RunDirError(Exception):
    """A run folder's file that cannot be written or read (a full disk, a read-only place): exit 1."""


class RunDirRefused(RunDirError):
    """A run folder netspec will not use as it is (links inside it, in use by another process): exit 2."""


def umask_mode(mode: int = 0o666) -> int:
    """`mode` as the process's umask leaves it (what `open` would give a new file)."""
    mask = os.umask(0)
    os.umask(mask)
    return mode & ~mask


def replace_atomically(path: Path, write: Callable[[object], None]) -> Path:
    """Calls `write(binary file)` on a new temporary file beside `path` (unique name, O_EXCL, so nothing planted
    there is followed), fsyncs it, gives it the umask's mode and renames it over `path` (a link at `path` is
    replaced, never followed).  Raises OSError (or what `write` raises) with `path` untouched."""
    path = Path(path)
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(handle, umask_mode())
        with os.fdopen(handle, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp, path)
    finally:
        if os.path.lexists(temp):
            os.unlink(temp)
    fsync_dir(path.parent)
    return path


def fsync_dir(folder: Path) -> None:
    # The rename itself is durable only once the directory entry is on disk (POSIX; a no-op elsewhere).
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def cannot_write(path: Path, err: OSError) -> RunDirError:
    """The one line for a failed write: the file and the reason (`No space left on device`)."""
    return RunDirError(f"cannot write {path}: {err.strerror or err}")


def write_file(path: Path, data: bytes) -> Path:
    """`data` to `path` atomically; RunDirError naming the file when that fails."""
    try:
        return replace_atomically(path, lambda stream: stream.write(data))
    except OSError as err:
        raise cannot_write(path, err) from None


def append_line(path: Path, line: str) -> None:
    """Appends one line, never through a link; RunDirError naming the file when it fails (ENOSPC)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | NOFOLLOW, 0o666)
        with os.fdopen(fd, "a", encoding="utf-8") as stream:
            stream.write(line)
    except OSError as err:
        raise _refused_link(path, err) or cannot_write(path, err) from None


def read_text(path: Path) -> str | None:
    """The file's text, or None when there is none; never through a link."""
    try:
        fd = os.open(path, os.O_RDONLY | NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError as err:
        raise _refused_link(path, err) or RunDirError(f"cannot read {path}: {err.strerror or err}") from None
    with os.fdopen(fd, "rb") as stream:
        return stream.read().decode("utf-8", errors="replace")


def _refused_link(path: Path, err: OSError) -> RunDirError | None:
    return RunDirRefused(link_message(path)) if err.errno == errno.ELOOP else None


def link_message(path: Path) -> str:
    return f"{path} is a symbolic link; a run folder's files must be plain files"


def refuse_links(folder: Path) -> None:
    """RunDirRefused when anything inside the run folder (its spec/ folder included) is a symbolic link."""
    for root, dirs, names in os.walk(folder):
        for name in dirs + names:
            if os.path.islink(os.path.join(root, name)):
                raise RunDirRefused(link_message(Path(root) / name))


@contextmanager
def locked(folder: Path) -> Iterator[None]:
    """Holds an exclusive lock on the run folder for the block; RunDirRefused at once when another process holds
    it.  The lock is taken on the folder itself (flock on its descriptor), so nothing is created in a folder that
    is then refused, and it goes with the process: a killed run leaves none behind."""
    if fcntl is None:
        yield
        return
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError as err:
        raise RunDirError(f"cannot open the run folder {folder}: {err.strerror or err}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunDirRefused(f"run folder {folder} is in use by another netspec process") from None
        yield
    finally:
        os.close(fd)
