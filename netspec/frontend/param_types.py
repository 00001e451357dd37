"""Types of template and network params: `int`, `float`, `bool`, `str`, `int2` (an int or a pair [h, w], as a
conv's kernel), `any`, `list`, `list[T]`, and a list of types for a fixed-length list (`[int, int]`).  A parsed
type is a str ("int", "list[int]") or a tuple of them."""

from __future__ import annotations

import sys

from netspec.ops.base import describe, shown

SCALARS = ("int", "float", "bool", "str", "int2", "any", "list")


class TypeSpecError(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.expected = "int, float, bool, str, int2, any, list, list[int] (etc.) or a list of those like [int, int]"


def parse_type(raw) -> object:
    if isinstance(raw, list):
        return tuple(parse_type(item) for item in raw)
    if not isinstance(raw, str):
        raise TypeSpecError(f"unknown type {shown(raw)}")
    text = raw.replace(" ", "")
    if text in SCALARS:
        return text
    if text.startswith("list[") and text.endswith("]") and text[5:-1] in SCALARS:
        return text
    raise TypeSpecError(f"unknown type `{raw}`")


def type_of_value(value) -> object:
    """The type a network param gets from its default (`10` → int, `[4, 4]` → list[int])."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    if isinstance(value, list):
        inner = {type_of_value(v) for v in value}
        only = inner.pop() if len(inner) == 1 else None
        return f"list[{only}]" if only in ("int", "float", "bool", "str") else "list"
    return "any"


def show(kind) -> str:
    return "[" + ", ".join(map(show, kind)) + "]" if isinstance(kind, tuple) else kind


def check_type(kind, value) -> str | None:
    """None when `value` has type `kind`, else a short description of the mismatch."""
    if isinstance(kind, tuple):
        if not isinstance(value, (list, tuple)) or len(value) != len(kind):
            return f"expected a list of {len(kind)} ({show(kind)}), found {describe(value)}"
        for item_kind, item in zip(kind, value):
            problem = check_type(item_kind, item)
            if problem:
                return problem
        return None
    if kind == "any":
        return None
    if kind.startswith("list"):
        if not isinstance(value, (list, tuple)):
            return f"expected a list, found {describe(value)}"
        inner = kind[5:-1] if kind != "list" else "any"
        for item in value:
            problem = check_type(inner, item)
            if problem:
                return problem
        return None
    if kind == "int2":
        if isinstance(value, (list, tuple)):
            if len(value) != 2 or any(check_type("int", v) for v in value):
                return f"expected an int or a pair [h, w] of ints, found {describe(value)}"
            return None
        return None if check_type("int", value) is None else f"expected an int or [h, w], found {describe(value)}"
    if kind == "float" and _beyond_float(value):
        return f"expected float, found {describe(value)}, too large for a float"
    ok = {
        "int": isinstance(value, int) and not isinstance(value, bool),
        "float": isinstance(value, (int, float)) and not isinstance(value, bool),
        "bool": isinstance(value, bool),
        "str": isinstance(value, str),
    }[kind]
    return None if ok else f"expected {kind}, found {describe(value)}"


def _beyond_float(value) -> bool:
    """An int no float holds (10**309): a float param converts its int values, which would overflow."""
    return isinstance(value, int) and not isinstance(value, bool) and abs(value) > sys.float_info.max
