"""Checkpoints and weight files, written atomically and read without pickle.

A checkpoint is a plain dict of tensors, numbers, strings, lists and dicts, so `torch.load(weights_only=True)`
reads it.  It carries the spec's source text too, so a lone `best.pt` is enough to rebuild and evaluate the
network (`netspec eval best.pt`).  Every file goes to a temporary name in the same folder, is flushed and
fsync'ed, then renamed over the old one: a crash or Ctrl-C mid-write leaves the previous file intact.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Mapping

import torch

from netspec.train.files import replace_atomically

FORMAT = "netspec-checkpoint"
VERSION = 1


class CheckpointError(Exception):
    """A checkpoint or weights file that cannot be read or does not fit the network."""


def atomic_write(path: Path, write: Callable[[object], None]) -> Path:
    """Calls `write(binary file)` on a temporary file beside `path`, fsyncs it, then renames it to `path`
    (netspec.train.files: a unique temporary name, never a link followed, the umask's mode).  A failed write (a
    full disk: torch.save raises OSError or RuntimeError) is a CheckpointError, so that training stops with one
    line instead of an internal error, and leaves `path` as it was (tests/test_faults.py)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return replace_atomically(path, write)
    except (OSError, RuntimeError) as err:
        kept = f"the previous {path.name} is intact" if path.exists() else "nothing was written"
        raise CheckpointError(f"{path}: cannot write it ({err}); {kept}") from err


def on_cpu(value: object) -> object:
    """`value` with every tensor in it (nested in dicts, lists and tuples) copied to the CPU, so that a
    checkpoint written on a GPU loads with `torch.load(weights_only=True)` on a machine without one."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu")
    if isinstance(value, dict):
        return {k: on_cpu(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(on_cpu(v) for v in value)
    return value


def save(path: Path, checkpoint: Mapping[str, object]) -> Path:
    payload = on_cpu({"format": FORMAT, "version": VERSION, **checkpoint})
    return atomic_write(path, lambda stream: torch.save(payload, stream))


def file_of(ref: str | Path, names: tuple[str, ...] = ("best.pt", "last.pt")) -> Path:
    """A file as given, or for a run folder the first of `names` it holds (best weights before last)."""
    path = Path(ref)
    if path.is_dir():
        for name in names:
            if (path / name).is_file():
                return path / name
        raise CheckpointError(f"{path}: no {', '.join(names[:-1])} or {names[-1]} in this folder (is it a run folder?)")
    return path


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
    problem = structure_problem(data)
    if problem:
        raise CheckpointError(f"{path}: not a valid netspec checkpoint: {problem}")
    return data


# ── the structure of a checkpoint ─────────────────────────────────────────────────────────────────────────────
# A file with the right format tag is still only bytes someone wrote: every field netspec uses is checked for
# its type before anything is built from it, so that a malformed one is one line, not an error deep in torch.

def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_bytes_tensor(value: object) -> bool:
    return isinstance(value, torch.Tensor) and value.dtype == torch.uint8 and value.dim() == 1


def _model_problem(value: object) -> str | None:
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in value.items()):
        return "`model` must map parameter names to tensors"
    return None


def _optimizer_problem(value: object) -> str | None:
    groups = value.get("param_groups") if isinstance(value, dict) else None
    if not isinstance(value, dict) or not isinstance(value.get("state"), dict) or not isinstance(groups, list) \
            or not all(isinstance(g, dict) and isinstance(g.get("params"), list) for g in groups):
        return "`optimizer` must be an optimizer's state dict (`state` and a list of `param_groups`)"
    return None


STATE_TYPES = {"epoch": _is_int, "step_in_epoch": _is_int, "global_step": _is_int, "count": _is_int,
               "examples": _is_int, "best_epoch": _is_int, "loss_sum": _is_number, "correct": _is_number,
               "train_time": _is_number, "best_acc": _is_number, "history": lambda v: isinstance(v, list),
               "epoch_time": _is_number, "logged_loss": _is_number, "logged_count": _is_int}
EPOCH_RECORD_KEYS = ("epoch", "loss", "train_acc", "examples_per_s")   # what summaries and plots use
OPTIONAL_RECORD_KEYS = ("val_loss", "val_acc", "test_loss", "test_acc")  # numbers where present


def _state_problem(value: object) -> str | None:
    if not isinstance(value, dict):
        return "`state` must be a mapping"
    for key, item in value.items():
        if key not in STATE_TYPES:
            return f"`state` has an unknown field {key!r}"
        if not STATE_TYPES[key](item) or (_is_int(item) and item < 0):
            return f"`state.{key}` is {item!r:.60}"
    for record in value.get("history", []):
        if not isinstance(record, dict) or not all(_is_number(record.get(k)) for k in EPOCH_RECORD_KEYS) \
                or not all(_is_number(record[k]) for k in OPTIONAL_RECORD_KEYS if k in record):
            return f"`state.history` holds a record without numbers for {', '.join(EPOCH_RECORD_KEYS)}"
    return None


def _rng_problem(value: object) -> str | None:
    if not isinstance(value, dict) or not _is_bytes_tensor(value.get("torch")) \
            or not _is_bytes_tensor(value.get("aug")) or not (value.get("cuda") is None
                                                               or _is_bytes_tensor(value.get("cuda"))):
        return "`rng` must hold the generators' states (`torch`, `aug`, `cuda`) as byte tensors"
    if value.get("aug_device") not in (None, "cpu", "cuda", "mps"):
        return f"`rng.aug_device` is {value.get('aug_device')!r:.60}, not cpu, cuda or mps"
    return None


def _options_problem(value: object) -> str | None:
    if not isinstance(value, dict):
        return "`options` must be a mapping"
    for key in ("subset", "log_every"):
        item = value.get(key)
        if item is not None and not (_is_int(item) and item >= 1):
            return f"`options.{key}` is {item!r:.60}, not a positive whole number"
    return None


def _recipe_problem(value: object) -> str | None:
    from netspec.train.recipe import RecipeError, from_json

    try:
        from_json(value)
    except RecipeError as err:
        return f"`recipe`: {err}"
    return None


def _spec_problem(value: object) -> str | None:
    from netspec.train.rundir import SpecFiles, SpecFilesError

    try:
        SpecFiles.from_json(value)
    except SpecFilesError as err:
        return f"`spec`: {err}"
    return None


def _precision_problem(value: object) -> str | None:
    if not isinstance(value, dict) or not all(isinstance(value.get(k), bool) for k in ("amp", "channels_last")):
        return "`precision` must hold `amp` and `channels_last` as true or false"
    return None


FIELD_CHECKS = {"precision": _precision_problem, "model": _model_problem, "optimizer": _optimizer_problem, "state": _state_problem,
                "rng": _rng_problem, "options": _options_problem, "recipe": _recipe_problem, "spec": _spec_problem}


def structure_problem(data: dict) -> str | None:
    """What is wrong with the fields of a checkpoint that carries netspec's format tag, or None."""
    for key, check in FIELD_CHECKS.items():
        problem = check(data[key]) if key in data else None
        if problem:
            return problem
    return None


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
