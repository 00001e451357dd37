"""The torch side of an op entry, as plain records: `ModuleSpec` (a module class plus constructor arguments) and
`MergeCall` (a merge done as torch.fx call_function nodes).

Importing this module, or an op entry, never imports torch: validate, summary and draw import the op table
and must stay torch-free.  Entries reach torch through the stand-ins `torch` and `nn` below, which import the
real module at the first attribute read, i.e. when a builder runs, which only the torch backend does.  That
keeps each builder one plain expression, `ModuleSpec(nn.Conv2d, ...)`, with no function-local import to forget.
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, Sequence

_NO_DEFAULT = inspect.Parameter.empty


class _OnFirstUse:
    """A module stand-in: the first attribute read imports the module (through `load`) and later reads go to it."""

    def __init__(self, load: Callable):
        self._load, self._module = load, None

    def __getattr__(self, name: str):
        if self._module is None:
            self._module = self._load()
        return getattr(self._module, name)


def _import_torch():
    import torch as module
    return module


def _import_nn():
    from torch import nn as module
    return module


torch = _OnFirstUse(_import_torch)
nn = _OnFirstUse(_import_nn)


@dataclass(frozen=True)
class ModuleSpec:
    """How to build one op's nn.Module: a class plus constructor arguments (plain Python values only).

    The same description builds the module (`build`, for compile) and writes its source (`source`, for the
    standalone emit).  `kwargs` is stored as a tuple of (name, value) pairs, in order, so the spec stays frozen
    and hashable; a dict is accepted and converted.
    """

    cls: type
    args: tuple = ()
    kwargs: tuple[tuple[str, object], ...] = ()

    def __post_init__(self):
        object.__setattr__(self, "args", tuple(self.args))
        pairs = self.kwargs.items() if isinstance(self.kwargs, Mapping) else self.kwargs
        object.__setattr__(self, "kwargs", tuple((str(k), v) for k, v in pairs))

    def build(self):
        """A fresh module (parameters on the current default device, e.g. inside `with torch.device("meta")`)."""
        return self.cls(*self.args, **dict(self.kwargs))

    def source(self) -> str:
        """The constructor call as Python source, e.g. `nn.Conv2d(1, 6, kernel_size=5, padding=2)`.

        torch.nn classes get an `nn.` prefix (the emitted file does `from torch import nn`); netspec classes are
        named bare (their source comes from `extra_sources`).  Keyword arguments equal to the constructor's own
        default (same type and value) are left out; everything else is written with repr().
        """
        defaults = _constructor_defaults(self.cls)
        parts = [repr(value) for value in self.args]
        parts += [f"{name}={value!r}" for name, value in self.kwargs
                  if not _is_default(value, defaults.get(name, _NO_DEFAULT))]
        return f"{class_name(self.cls)}({', '.join(parts)})"


def class_name(cls: type) -> str:
    """How emitted source names a module class: `nn.Conv2d` for torch.nn, the bare name otherwise."""
    return f"nn.{cls.__name__}" if _is_torch_nn(cls) else cls.__name__


def _is_torch_nn(cls: type) -> bool:
    # torch.nn classes live in submodules (torch.nn.modules.conv, ...) but are all re-exported as nn.<Name>.
    return cls.__module__.startswith("torch.nn") and getattr(nn, cls.__name__, None) is cls


def _constructor_defaults(cls: type) -> dict[str, object]:
    return {name: p.default for name, p in inspect.signature(cls).parameters.items()}


def _is_default(value: object, default: object) -> bool:
    # Type must match too: `bias=1` is not `bias=True`, and a (1, 1) tuple is written out even if it means 1.
    return default is not _NO_DEFAULT and type(value) is type(default) and value == default


def extra_sources(classes: Iterable[type]) -> str:
    """Python source of the non-torch.nn module classes among `classes` (e.g. FormulaBatchNorm), sorted by name,
    for pasting into a standalone model file.  That file must `import torch` and `from torch import nn` first;
    these classes use nothing else."""
    own = sorted({cls for cls in classes if not _is_torch_nn(cls)}, key=lambda cls: cls.__name__)
    return "\n\n".join(inspect.getsource(cls).rstrip() + "\n" for cls in own)


@dataclass(frozen=True)
class ParameterSpec:
    """A learnable tensor: its shape (no batch dimension: it is one tensor for the whole batch, broadcast where it
    is used) and the value every element starts at.  Like ModuleSpec, it both builds the tensor and writes its
    source."""

    shape: tuple[int, ...]
    fill: float

    def build(self):
        return nn.Parameter(torch.full(tuple(self.shape), float(self.fill)))

    def source(self) -> str:
        return f"nn.Parameter(torch.full({tuple(self.shape)!r}, {float(self.fill)!r}))"


@dataclass(frozen=True)
class MergeCall:
    """How a merge op runs: a function `target` applied over its inputs in one of two layouts.

    layout "list_dim": one call on the list and dim 1 (channels)  → `torch.cat([a, b], 1)`
    layout "fold":     one call per extra input, left to right    → `a + b + c`, i.e. `(a + b) + c`

    The same layout writes the fx nodes (`emit`) and runs eagerly (`__call__`), so the two cannot disagree.
    """

    target: Callable
    layout: str

    def __post_init__(self):
        if self.layout not in ("list_dim", "fold"):
            raise ValueError(f"MergeCall layout must be 'list_dim' or 'fold', not {self.layout!r}")

    def emit(self, graph, inputs: Sequence):
        """Appends the call(s) over fx nodes `inputs` to torch.fx `graph`; returns the result node."""
        if self.layout == "list_dim":
            return graph.call_function(self.target, (list(inputs), 1))
        result = inputs[0]
        for node in inputs[1:]:
            result = graph.call_function(self.target, (result, node))
        return result

    def __call__(self, inputs: Sequence):
        """The merge on batched tensors, eagerly."""
        if self.layout == "list_dim":
            return self.target(list(inputs), 1)
        return functools.reduce(self.target, inputs)
