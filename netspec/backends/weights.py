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

import difflib
import pickle
import re
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

SHOWN = 12  # keys listed per kind of problem before "… and N more"


@dataclass(frozen=True)
class Mismatch:
    key: str
    model_shape: tuple[int, ...]
    given_shape: tuple[int, ...]


class WeightsError(ValueError):
    """A state_dict that does not fit the model; the lists say exactly how (all of them, not just the first)."""

    def __init__(self, missing: list[str], unexpected: list[str], mismatched: list[Mismatch],
                 doubled: list[tuple[str, list[str]]], hint: str | None = None):
        self.missing, self.unexpected, self.mismatched, self.doubled, self.hint = (
            missing, unexpected, mismatched, doubled, hint)
        super().__init__(self.render())

    def render(self) -> str:
        counts = [(len(self.missing), "missing"), (len(self.unexpected), "unexpected"),
                  (len(self.mismatched), "with another shape"), (len(self.doubled), "given twice")]
        lines = ["the state_dict does not fit the model: " + ", ".join(f"{n} {what}" for n, what in counts if n)]
        lines += _section("missing (in the model, not in the state_dict)", self.missing)
        lines += _section("unexpected (in the state_dict, not in the model)", self.unexpected)
        lines += _section("shape differs (model vs state_dict)", [
            f"{m.key}: {list(m.model_shape)} vs {list(m.given_shape)}" for m in self.mismatched])
        lines += _section("given twice (after `rename`)", [f"{key} ← {', '.join(srcs)}" for key, srcs in self.doubled])
        if self.hint:
            lines.append(f"hint: {self.hint}")
        return "\n".join(lines)


def _section(title: str, items: list[str]) -> list[str]:
    if not items:
        return []
    shown = [f"    {item}" for item in items[:SHOWN]]
    more = [f"    … and {len(items) - SHOWN} more"] if len(items) > SHOWN else []
    return [f"  {title}:"] + shown + more


def _under(key: str, prefix: str) -> bool:
    """Whether `key` is the module `prefix` or inside it (`fc.weight` is under `fc`, `fc2.weight` is not)."""
    return prefix == "" or key == prefix or key.startswith(prefix + ".")


def rename_key(key: str, rename: Mapping[str, str]) -> str:
    """`key` with its longest matching module prefix in `rename` replaced (`{"module": ""}` strips one level)."""
    matches = [p for p in rename if _under(key, p)]
    if not matches:
        return key
    prefix = max(matches, key=len)
    rest = key[len(prefix):].lstrip(".")
    return ".".join(part for part in (rename[prefix], rest) if part)


def plan(model_shapes: Mapping[str, tuple], given_shapes: Mapping[str, tuple],
         rename: Mapping[str, str] | None = None, skip: Iterable[str] = ()) -> dict[str, str]:
    """Which incoming key feeds which model key ({model key: incoming key}); raises WeightsError when the two do
    not match one to one with equal shapes.  Pure: works on shapes only, so it is testable without tensors."""
    rename, skip = dict(rename or {}), tuple(skip)

    def skipped(key: str) -> bool:
        return any(_under(key, p) for p in skip)

    sources: dict[str, list[str]] = {}
    for key in given_shapes:
        target = rename_key(key, rename)
        if not skipped(target):
            sources.setdefault(target, []).append(key)
    wanted = [k for k in model_shapes if not skipped(k)]
    missing = [k for k in wanted if k not in sources]
    unexpected = [src for target, srcs in sources.items() if target not in model_shapes for src in srcs]
    doubled = [(k, srcs) for k, srcs in sources.items() if k in model_shapes and len(srcs) > 1]
    mismatched = [Mismatch(k, tuple(model_shapes[k]), tuple(given_shapes[sources[k][0]])) for k in wanted
                  if k in sources and tuple(model_shapes[k]) != tuple(given_shapes[sources[k][0]])]
    if missing or unexpected or doubled or mismatched:
        raise WeightsError(missing, unexpected, mismatched, doubled, _hint(missing, unexpected, mismatched))
    return {k: sources[k][0] for k in wanted}


def _hint(missing: list[str], unexpected: list[str], mismatched: list[Mismatch]) -> str | None:
    if unexpected and all(k.startswith("module.") for k in unexpected):
        return "the state_dict was saved from a DataParallel/DDP wrapper: pass rename={\"module\": \"\"}"
    if mismatched and not missing and not unexpected:
        modules = sorted({m.key.rsplit(".", 1)[0] for m in mismatched})
        return f"to keep the model's own {', '.join(modules)} (e.g. another num_classes), pass skip={modules!r}"
    if missing and unexpected:
        close = difflib.get_close_matches(unexpected[0], missing, n=1)
        if close:
            old, new = _module_of(unexpected[0]), _module_of(close[0])
            return (f"`{unexpected[0]}` looks like `{close[0]}`: name the spec's module `{new}` as the source "
                    f"does, or pass rename={{{old!r}: {new!r}}}")
    return None


def _module_of(key: str) -> str:
    return key.rsplit(".", 1)[0] if "." in key else key


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


def load_weights(model, state_dict, rename: Mapping[str, str] | None = None, skip: Iterable[str] = ()):
    """Loads `state_dict` (a mapping of tensors, or a path to a file saved with torch.save) into `model` strictly;
    returns the model.  `rename`: {incoming module prefix: model module prefix}; `skip`: model modules to leave
    untouched (their incoming tensors are dropped).  Raises WeightsError listing every problem, and
    WeightsFileError for a file that cannot be read or is refused (see `read_weights_file`)."""
    if isinstance(state_dict, (str, Path)):
        origin, state_dict = state_dict, read_weights_file(state_dict)
        if not isinstance(state_dict, Mapping) or not all(hasattr(v, "shape") for v in state_dict.values()):
            raise WeightsFileError(f"{origin}: holds no state_dict (a mapping of names to tensors)")
    own = model.state_dict()
    mapping = plan({k: tuple(v.shape) for k, v in own.items()},
                   {k: tuple(v.shape) for k, v in state_dict.items()}, rename, skip)
    new = dict(own)  # skipped entries keep the model's own tensors
    new.update({key: state_dict[src] for key, src in mapping.items()})
    model.load_state_dict(new, strict=True)
    return model
