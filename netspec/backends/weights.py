"""Loading a state_dict from elsewhere (torchvision, a checkpoint) into a compiled netspec model, strictly.

    model = netspec.load("imagenet/resnet50")
    netspec.load_weights(model, torchvision.models.resnet50(weights="DEFAULT").state_dict())

Strict means: every tensor of the state_dict is used exactly once, every tensor of the model is given exactly
once, and shapes agree; anything else raises `WeightsError` listing every missing, unexpected, doubly mapped
and mismatched key at once.  The specs in `specs/imagenet/` name their modules as torchvision does, so their
keys are identical and no name map is needed.  For other sources, `rename` maps dotted module prefixes of the
incoming keys to the model's (`{"module": ""}` strips DataParallel's prefix), and `skip` names model modules to
leave as they are (a new classifier for fine-tuning: `skip=["fc"]`); see docs/zoo.md.

This module does not import torch: it needs only `.shape` of tensors and the model's own `load_state_dict`
(torch is imported lazily to read a file path).  Files are read by `read_weights_file`, which netspec's
checkpoints share: `weights_only=True` (a pickle that would run code is refused, never run) and the archive's
checksums verified first.
"""

from __future__ import annotations

import pickle
import re
import warnings
import zipfile
from pathlib import Path
from typing import Iterable, Mapping

from netspec.backends.compat import SHOWN, Compat, compare, render, rename_key

WEIGHT_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".safetensors")  # a path ending so names weights, not a spec
__all__ = ["SHOWN", "Compat", "WEIGHT_SUFFIXES", "WeightsError", "WeightsFileError", "load_matching", "load_weights",
           "plan", "read_weights_file", "rename_key", "shapes_of"]


class WeightsError(ValueError):
    """A state_dict that does not fit the model.  `report` (a netspec.backends.compat.Compat) says exactly how,
    all of it, not just the first problem; the message is its text, as `netspec compat` prints it."""

    def __init__(self, report: Compat):
        self.report = report
        self.missing = list(report.new)
        self.unexpected = list(report.dropped)
        self.mismatched = list(report.reshaped)
        self.doubled = [(key, list(sources)) for key, sources in report.doubled]
        super().__init__(self.render())

    def render(self) -> str:
        return "the state_dict does not fit the model: " + render(self.report, "the state_dict", "the model")


def plan(model_shapes: Mapping[str, tuple], given_shapes: Mapping[str, tuple],
         rename: Mapping[str, str] | None = None, skip: Iterable[str] = ()) -> dict[str, str]:
    """Which incoming key feeds which model key ({model key: incoming key}); raises WeightsError when the two do
    not match one to one with equal shapes.  Pure: works on shapes only, so it is testable without tensors."""
    report = compare(model_shapes, given_shapes, rename, skip)
    if not report.complete:
        raise WeightsError(report)
    return dict(report.loaded)


class WeightsFileError(ValueError):
    """A weights file that cannot be read (missing, truncated, damaged, not PyTorch's), or that is refused because
    it holds Python objects besides tensors, which could run code when unpickled.  The message is one line."""


def read_weights_file(path: str | Path) -> object:
    """`torch.load(path, weights_only=True)` on the CPU, after checking the archive's CRC-32s: torch.load does
    not, and 17 of 1,556 one-bit flips of a small checkpoint loaded as different weights without a word (found
    by tests/test_faults.py).  Every failure is a WeightsFileError naming the file."""
    import torch

    path = Path(path)
    problem = archive_problem(path)
    if problem:
        raise WeightsFileError(f"{path}: {problem}")
    try:
        with warnings.catch_warnings():  # "Detected pickle protocol 4": noise to a user, the load is checked anyway
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # the refusal, a damaged pickle, or a file torch does not know
        raise WeightsFileError(f"{path}: {load_problem(err, zipfile.is_zipfile(path))}") from None


def archive_problem(path: Path) -> str | None:
    """Why `path` cannot be a PyTorch file (None when its records pass their checksums, or it is a legacy,
    non-zip torch.save file that torch.load will judge)."""
    if not path.is_file():
        return "no such file" if not path.exists() else "not a file"
    try:
        if not zipfile.is_zipfile(path):
            return None
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, RuntimeError) as err:
        return f"damaged or truncated: not a readable PyTorch archive ({err})"
    return f"damaged: the record `{bad}` fails its checksum" if bad else None


def load_problem(err: Exception, archive: bool = True) -> str:
    """One line for what torch.load raised; a weights_only refusal names the global it refused.  A file that is
    not a zip archive went through torch's legacy unpickler, which fails on arbitrary bytes with whatever error
    the bytes provoke (IndexError, UnicodeDecodeError, … in 7 % of random files): all of them mean the same."""
    text = str(err)
    refused = re.search(r"GLOBAL ([\w.]+)", text)
    if isinstance(err, pickle.UnpicklingError) and refused:
        return (f"refused: it holds a Python object (`{refused.group(1)}`) besides tensors; netspec reads weights "
                "with weights_only=True and runs no code from a file")
    if not archive or isinstance(err, (pickle.UnpicklingError, EOFError, KeyError)) or "zip archive" in text:
        return "not a PyTorch weights file, or a truncated one"
    return f"cannot be read ({type(err).__name__}: {text.strip().splitlines()[0] if text.strip() else ''})"


def _state_dict_of(state_dict) -> Mapping:
    """A mapping of tensors as given, or read from a file saved with torch.save (see `read_weights_file`)."""
    if isinstance(state_dict, (str, Path)):
        origin, state_dict = state_dict, read_weights_file(state_dict)
        if not isinstance(state_dict, Mapping) or not all(hasattr(v, "shape") for v in state_dict.values()):
            raise WeightsFileError(f"{origin}: holds no state_dict (a mapping of names to tensors)")
    return state_dict


def shapes_of(state_dict: Mapping) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in state_dict.items()}


def load_weights(model, state_dict, rename: Mapping[str, str] | None = None, skip: Iterable[str] = ()):
    """Loads `state_dict` (a mapping of tensors, or a path to a file saved with torch.save) into `model` strictly;
    returns the model.  `rename`: {incoming module prefix: model module prefix}; `skip`: model modules to leave
    untouched (their incoming tensors are dropped).  Raises WeightsError (its `report`: what `netspec compat`
    prints) listing every problem, and WeightsFileError for a file that cannot be read or is refused (see
    `read_weights_file`)."""
    state_dict = _state_dict_of(state_dict)
    own = model.state_dict()
    mapping = plan(shapes_of(own), shapes_of(state_dict), rename, skip)
    new = dict(own)  # skipped entries keep the model's own tensors
    new.update({key: state_dict[src] for key, src in mapping.items()})
    model.load_state_dict(new, strict=True)
    return model


def load_matching(model, state_dict, rename: Mapping[str, str] | None = None, skip: Iterable[str] = ()) -> Compat:
    """Loads every tensor of `state_dict` whose name (after `rename`) and shape match one of `model`'s, leaves the
    model's other tensors as they are, and returns the report of what loaded, what is new and what was dropped
    (netspec.backends.compat.Compat; `render(report)` is `netspec compat`'s text).  What fine-tuning an edited
    network starts from; `train --init-from` does this."""
    state_dict = _state_dict_of(state_dict)
    own = model.state_dict()
    report = compare(shapes_of(own), shapes_of(state_dict), rename, skip)
    new = dict(own)
    new.update({key: state_dict[src] for key, src in report.loaded.items()})
    model.load_state_dict(new, strict=True)
    return report
