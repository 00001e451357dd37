"""Where data sets come from: local folders searched in a fixed order, else a verified download.  No torch.

Search order for a data set's files: `--data-dir` (and its `<name>/` subfolder), `$NETSPEC_DATA` (likewise), the
system folder a Debian package installs, then netspec's cache (`$XDG_CACHE_HOME/netspec` or
`~/.cache/netspec`).  When none has every file, the files are downloaded into the first writable of
`--data-dir`, `$NETSPEC_DATA` or the cache, each verified before it is renamed into place, so a half-written or
corrupt file never looks like data.

Fashion-MNIST is verified by the SHA-256 of the *decompressed* bytes (Debian recompresses the .gz files, so
their MD5s differ from the official ones; the data inside does not).  MNIST and CIFAR-10 publish only the MD5 of
their archives, which is what we check for them.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Callable

from netspec.train.files import umask_mode

CHUNK = 1 << 20


class DataError(Exception):
    """Data that cannot be found, fetched or read; the message says how to fix it."""


@dataclass(frozen=True)
class RemoteFile:
    name: str
    digest: str
    algorithm: str = "sha256"
    of_decompressed: bool = True   # whether `digest` is of the gunzipped bytes or of the file as stored


@dataclass(frozen=True)
class Source:
    key: str                       # the --data value
    title: str
    files: tuple[RemoteFile, ...]
    base_url: str
    system_dir: str | None = None  # where a distribution package installs it
    package: str | None = None     # that package

    def url(self, name: str, base_url: str | None = None) -> str:
        return (base_url or self.base_url).rstrip("/") + "/" + name


FASHION_MNIST = Source(
    key="fashion-mnist", title="Fashion-MNIST",
    base_url="http://fashion-mnist.s3-website.eu-central-1.amazonaws.com",
    system_dir="/usr/share/datasets/fashion-mnist", package="dataset-fashion-mnist",
    files=(  # SHA-256 of the decompressed files of https://github.com/zalandoresearch/fashion-mnist
        RemoteFile("train-images-idx3-ubyte.gz", "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"),
        RemoteFile("train-labels-idx1-ubyte.gz", "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"),
        RemoteFile("t10k-images-idx3-ubyte.gz", "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"),
        RemoteFile("t10k-labels-idx1-ubyte.gz", "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"),
    ))

MNIST = Source(
    key="mnist", title="MNIST", base_url="https://ossci-datasets.s3.amazonaws.com/mnist",
    files=(  # MD5 of the official .gz archives (the only checksums published for them)
        RemoteFile("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873", "md5", False),
        RemoteFile("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432", "md5", False),
        RemoteFile("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3", "md5", False),
        RemoteFile("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c", "md5", False),
    ))

CIFAR10 = Source(
    key="cifar10", title="CIFAR-10 (binary version)", base_url="https://www.cs.toronto.edu/~kriz",
    files=(RemoteFile("cifar-10-binary.tar.gz", "c32a1d4ab5d03f1284b67883e8d87530", "md5", False),))

SOURCES = MappingProxyType({s.key: s for s in (FASHION_MNIST, MNIST, CIFAR10)})


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "netspec"


def candidate_dirs(source: Source, data_dir: str | None) -> list[tuple[str, Path | None]]:
    """(how the user knows it, folder or None when unset), in search order."""
    env = os.environ.get("NETSPEC_DATA")
    out: list[tuple[str, Path | None]] = []
    for label, root in (("--data-dir", data_dir), ("$NETSPEC_DATA", env)):
        if root:
            out += [(label, Path(root)), (label, Path(root) / source.key)]
        else:
            out.append((label, None))
    if source.system_dir:
        out.append((f"package {source.package}", Path(source.system_dir)))
    out.append(("cache", cache_root() / source.key))
    return out


def present(folder: Path, name: str) -> Path | None:
    """The file `name` in `folder`, also accepted already decompressed (`x.gz` as `x`)."""
    for candidate in (folder / name, folder / name.removesuffix(".gz")):
        if candidate.is_file():
            return candidate
    return None


def find(source: Source, data_dir: str | None) -> dict[str, Path] | None:
    """The first searched folder holding every file of `source`, as {remote name: path}."""
    for _, folder in candidate_dirs(source, data_dir):
        if folder is None or not folder.is_dir():
            continue
        paths = {f.name: present(folder, f.name) for f in source.files}
        if all(paths.values()):
            return paths  # type: ignore[return-value]
    return None


def locate(source: Source, data_dir: str | None, download: bool = True, base_url: str | None = None,
           opener: Callable | None = None) -> dict[str, Path]:
    """Local files if any folder has them, else downloaded ones; DataError naming the fix when neither works."""
    found = find(source, data_dir)
    if found:
        return found
    failure = "downloads are off (--no-download)"
    if download:
        target = download_dir(source, data_dir)
        try:
            return fetch_all(source, target, base_url, opener)
        except DataError as err:
            failure = str(err)
    raise DataError(not_found_message(source, data_dir, failure))


def download_dir(source: Source, data_dir: str | None) -> Path:
    env = os.environ.get("NETSPEC_DATA")
    return Path(data_dir or env or cache_root()) / source.key


def fetch_all(source: Source, target: Path, base_url: str | None = None,
              opener: Callable | None = None) -> dict[str, Path]:
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DataError(f"cannot create {target}: {err.strerror}")
    return {f.name: fetch(source.url(f.name, base_url), f, target, opener) for f in source.files}


def fetch(url: str, remote: RemoteFile, target: Path, opener: Callable | None = None) -> Path:
    """Downloads `url` into `target/remote.name` through a temporary file; verified before the rename."""
    opener = opener or urllib.request.urlopen
    final = target / remote.name
    handle, temp = tempfile.mkstemp(prefix=f".{remote.name}.", suffix=".part", dir=target)
    try:
        os.fchmod(handle, umask_mode())   # mkstemp's 0600 would keep a shared data folder's files private
        with os.fdopen(handle, "wb") as out:
            try:
                with opener(url, timeout=60) as response:
                    while chunk := response.read(CHUNK):
                        out.write(chunk)
            except OSError as err:  # URLError, HTTPError, timeouts and refused connections are all OSErrors
                raise DataError(f"download of {url} failed: {getattr(err, 'reason', None) or err}")
        actual = digest_of(Path(temp), remote)
        if actual != remote.digest:
            raise DataError(f"{url}: checksum mismatch ({remote.algorithm} of the "
                            f"{'decompressed' if remote.of_decompressed else 'downloaded'} bytes): expected "
                            f"{remote.digest}, got {actual}; the file was not kept")
        os.replace(temp, final)
        return final
    finally:
        if os.path.exists(temp):
            os.unlink(temp)


def digest_of(path: Path, remote: RemoteFile) -> str:
    """The checksum `remote` promises, computed over the file (or over its decompressed bytes)."""
    digest = hashlib.new(remote.algorithm)
    opener = gzip.open if remote.of_decompressed and is_gzip(path) else open
    try:
        with opener(path, "rb") as stream:
            while chunk := stream.read(CHUNK):
                digest.update(chunk)
    except (OSError, EOFError) as err:
        raise DataError(f"{path}: cannot read ({err})")
    return digest.hexdigest()


def is_gzip(path: Path) -> bool:
    with open(path, "rb") as stream:
        return stream.read(2) == b"\x1f\x8b"


def not_found_message(source: Source, data_dir: str | None, failure: str) -> str:
    lines = [f"{source.title} was not found. Looked in:"]
    for label, folder in candidate_dirs(source, data_dir):
        state = "not set" if folder is None else ("no such folder" if not folder.is_dir() else "files missing")
        lines.append(f"  {label}: {folder if folder is not None else ''} ({state})".replace(":  (", ": ("))
    lines.append(f"and {failure}.")
    names = ", ".join(f.name for f in source.files)
    fix = f"`sudo apt-get install {source.package}`, or " if source.package else ""
    lines.append(f"fix: {fix}put {names} in a folder and pass `--data-dir FOLDER` (or set NETSPEC_DATA)")
    return "\n".join(lines)
