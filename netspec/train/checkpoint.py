"""Checkpoints and weight files, written atomically and read without pickle.

A checkpoint is a plain dict of tensors, numbers, strings, lists and dicts, so `torch.load(weights_only=True)`
reads it.  It carries the spec's source text too, so a lone `best.pt` is enough to rebuild and evaluate the
network (`netspec eval best.pt`).  Every file goes to a temporary name in the same folder, is flushed and
fsync'ed, then renamed over the old one: a crash or Ctrl-C mid-write leaves the previous file intact.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable, Mapping

import torch

FORMAT = "netspec-checkpoint"
VERSION = 1


class CheckpointError(Exception):
    """A checkpoint or weights file that cannot be read or does not fit the network."""


def atomic_write(path: Path, write: Callable[[object], None]) -> Path:
    """Calls `write(binary file)` on a temporary file beside `path`, fsyncs it, then renames it to `path`.  A
    failed write (a full disk: torch.save raises OSError or RuntimeError) is a CheckpointError, so that training
    stops with one line instead of an internal error, and leaves `path` as it was (tests/test_faults.py)."""
    path = Path(path)
    temp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(handle, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp, path)
    except (OSError, RuntimeError) as err:
        kept = f"the previous {path.name} is intact" if path.exists() else "nothing was written"
        raise CheckpointError(f"{path}: cannot write it ({err}); {kept}") from err
    finally:
        if temp is not None and os.path.exists(temp):
            os.unlink(temp)
    _fsync_dir(path.parent)
    return path


def _fsync_dir(folder: Path) -> None:
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


def save(path: Path, checkpoint: Mapping[str, object]) -> Path:
    payload = {"format": FORMAT, "version": VERSION, **checkpoint}
    return atomic_write(path, lambda stream: torch.save(payload, stream))


def load(path: Path, needs: tuple[str, ...] = ("model",)) -> dict:
    """A netspec checkpoint, read on the CPU without running code (see netspec.backends.weights.read_weights_file); one
    CheckpointError line for a missing, damaged, refused or foreign file, or one that lacks a key in `needs`."""
    data = _read(Path(path))
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a netspec checkpoint (use --init-from for plain weights)")
    version = data.get("version", 0)
    if not isinstance(version, int) or version > VERSION:
        raise CheckpointError(f"{path}: written by a newer netspec (checkpoint version {version!r})")
    missing = [key for key in needs if key not in data]
    if missing:
        raise CheckpointError(f"{path}: the checkpoint lacks `{missing[0]}` (resume needs a run's last.pt)")
    return data


def _read(path: Path) -> object:
    from netspec.backends.weights import WeightsFileError, read_weights_file

    try:
        return read_weights_file(path)
    except WeightsFileError as err:
        raise CheckpointError(str(err)) from None


def plain_state(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Contiguous CPU copies that share no storage (safetensors refuses shared or strided tensors)."""
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in state_dict.items()}


def save_safetensors(path: Path, state_dict: Mapping[str, torch.Tensor], metadata: Mapping[str, str]) -> Path:
    from safetensors.torch import save

    data = save(plain_state(state_dict), metadata={k: str(v) for k, v in metadata.items()})
    return atomic_write(path, lambda stream: stream.write(data))


def load_weights(path: Path) -> dict[str, torch.Tensor]:
    """A state dict from `.safetensors`, a netspec checkpoint, or a plain `torch.save`d state dict."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except (SafetensorError, OSError) as err:
            raise CheckpointError(f"{path}: not a readable safetensors file ({err})")
    data = _read(path)
    if isinstance(data, dict) and data.get("format") == FORMAT and isinstance(data.get("model"), dict):
        return data["model"]
    if isinstance(data, dict) and all(isinstance(v, torch.Tensor) for v in data.values()):
        return data
    raise CheckpointError(f"{path}: holds neither a state dict nor a netspec checkpoint")


def load_into(model: torch.nn.Module, state: Mapping[str, torch.Tensor], origin: str) -> None:
    """`load_state_dict` with a message that names what differs instead of a traceback."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    extra = [k for k in state if k not in own]
    shapes = [f"{k}: {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in own
              if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or extra or shapes:
        parts = [f"missing {', '.join(missing[:5])}" if missing else "",
                 f"unexpected {', '.join(extra[:5])}" if extra else "",
                 f"shape mismatch {'; '.join(shapes[:5])}" if shapes else ""]
        raise CheckpointError(f"{origin} does not fit this network: " + "; ".join(p for p in parts if p))
    model.load_state_dict(dict(state))
