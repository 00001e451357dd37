"""THE op table: one `Op` entry per op, holding everything about it (typed params, shape rule, parameter count,
MACs, diagram label, family, and its torch side).  Adding an op means adding an entry to its family's file.

Each family file (`conv.py`, `linear.py`, …) declares its `FAMILY` (legend text and diagram style) and its `OPS`;
this module only assembles them.  Importing it never imports torch: the torch side of an entry names classes
and functions through the lazy `torch`/`nn` stand-ins of `torch_build.py`.  docs/ops.md is generated from it.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Iterable, Mapping

from netspec.ops import activation, conv, linear, merge, norm, parameter, pool, regularize, reshape
from netspec.ops.base import (PARAM_TYPES, ArgError, Args, Example, Family, Op, Param, Shape, ShapeError, check_arg,
                              defaults, pair)

__all__ = ["OPS", "FAMILIES", "PARAM_TYPES", "ArgError", "Args", "Example", "Family", "Op", "Param", "Shape",
           "ShapeError", "check_arg", "defaults", "pair", "assemble"]


def assemble(families: Iterable[Family], ops: Iterable[Op]) -> tuple[Mapping[str, Family], Mapping[str, Op]]:
    """Read-only name → Family and name → Op mappings, in the order given; a duplicate name, or an op whose
    family is not among `families`, is an error here, at import, rather than a silent overwrite later."""
    family_table: dict[str, Family] = {}
    for family in families:
        if family.name in family_table:
            raise ValueError(f"op family {family.name!r} is declared twice")
        family_table[family.name] = family
    op_table: dict[str, Op] = {}
    for op in ops:
        if not isinstance(op, Op):
            raise TypeError(f"the op table holds Op entries, not {type(op).__name__}")
        if op.name in op_table:
            raise ValueError(f"op {op.name!r} is declared twice")
        if op.family not in family_table:
            raise ValueError(f"op {op.name!r}: unknown family {op.family!r}")
        op_table[op.name] = op
    return MappingProxyType(family_table), MappingProxyType(op_table)


# Two orders, both user-visible.  Families in the diagrams' legend order; ops in the order of the JSON Schema
# and docs/ops.md, which is the family files' order below, each file's entries in its own order.
FAMILIES, OPS = assemble(
    (m.FAMILY for m in (conv, norm, activation, pool, linear, merge, reshape, regularize, parameter)),
    (op for m in (conv, linear, norm, activation, regularize, pool, reshape, merge, parameter) for op in m.OPS))
