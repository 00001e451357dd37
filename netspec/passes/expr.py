"""The safe `$` expressions of spec files: `$name[0]` (everything after `$`), `${expr}` (the whole string
is one expression and keeps its type) or text with `${...}` parts (`"layer${i+1}"`, a str); `$$` is a `$`.

expr_syntax.py splits and parses a string and checks each expression against the whitelist; this module walks
the checked trees by hand (nothing is compiled or eval'ed) and bounds every value they compute, so that a spec
cannot hang or eat memory.  The language's whole API is importable from here.
"""

from __future__ import annotations

import ast
import builtins
import math
import operator
from collections import OrderedDict
from dataclasses import dataclass
from types import MappingProxyType
from typing import Callable, Iterable, Mapping

from netspec.errors import did_you_mean
from netspec.frontend.grammar import is_expression  # noqa: F401 (part of the API: what this module evaluates)
from netspec.passes.expr_syntax import (CONSTANTS, FUNCTIONS, IN, MAX_EXPR_LENGTH, MAX_MESSAGE,  # noqa: F401 (API)
                                        MAX_NODES, ExprError, Part, split)

MAX_EXPONENT = 64          # also bounds round()'s digits: round(1, -10**18) would build 10**(10**18)
MAX_MAGNITUDE = 10**18     # every number an expression computes stays within +-10**18
MAX_SEQUENCE = 10_000      # characters of a computed str, elements of a computed list

_SEQUENCES = (str, list, tuple)
_NUMBERS = (int, float)  # bool included, as in Python: True + 1 == 2
_TOO_LARGE = "`{src}` is too large: numbers are limited to 10**18 in size"
_TOO_MANY = f"`{{src}}` holds more than {MAX_SEQUENCE:,} characters and list elements; the limit is {MAX_SEQUENCE:,}"
_SHARED = ("nested lists and strings count each time they occur: a value built as `[a, a]` or `${a}${a}` from "
           "one built the same way doubles at each step")


@dataclass(frozen=True)
class InputShape:
    """The value bound to `in`: one sample's shape (no batch dim); channels/height/width need 3-D (C, H, W)."""

    shape: tuple[int, ...]

    channels = property(lambda self: self.shape[0] if len(self.shape) == 3 else None)
    height = property(lambda self: self.shape[1] if len(self.shape) == 3 else None)
    width = property(lambda self: self.shape[2] if len(self.shape) == 3 else None)
    features = property(lambda self: math.prod(self.shape))


class _InputFailure(Exception):
    """Carries whatever `lazy_in` raised (its only arg) past the evaluator's nets, to be re-raised as is."""


def evaluate(text: str, env: Mapping[str, object], lazy_in: Callable[[], InputShape] | None = None) -> object:
    """The value of a spec string: typed for `$x` and `${x}`, a str for interpolation, else `text` itself."""
    if not isinstance(text, str) or "$" not in text:
        return text
    whole, parts = split(text)
    evaluator = _Evaluator(env, lazy_in)
    try:
        if whole:
            return evaluator.run(parts[0])
        return _joined(p if isinstance(p, str) else str(evaluator.run(p)) for p in parts)
    except _InputFailure as caught:
        failure = caught.args[0]
    except (ArithmeticError, LookupError, TypeError, ValueError, RecursionError, MemoryError) as exc:
        # A safety net, so that only ExprError escapes (str() of a 5000-digit int in an env list, say).
        raise ExprError(f"cannot evaluate expression: {exc}") from None
    raise failure  # outside the except block, so the error's own context is left untouched


def _joined(pieces: Iterable[str]) -> str:
    """Interpolated text, refused before it is built when longer than MAX_SEQUENCE: `${s}${s}` doubles `s`."""
    kept, length = [], 0
    for piece in pieces:
        length += len(piece)
        if length > MAX_SEQUENCE:
            raise ExprError(f"the text would have more than {MAX_SEQUENCE:,} characters; the limit is "
                            f"{MAX_SEQUENCE:,}", 0, _SHARED)
        kept.append(piece)
    return "".join(kept)


def cost(text: str) -> int:
    """The expression nodes one evaluation of `text` walks at most (0 for plain values); raises ExprError like
    `evaluate` for a malformed expression.  The expander sums it to bound the work of a whole spec."""
    if not isinstance(text, str) or "$" not in text:
        return 0
    return sum(part.size for part in split(text)[1] if isinstance(part, Part))


def names_used(text: str) -> frozenset[str]:
    """The free names an expression string references (`in` included), without evaluating it."""
    if not isinstance(text, str) or "$" not in text:
        return frozenset()
    nodes = [node for part in split(text)[1] if isinstance(part, Part) for node in ast.walk(part.tree)]
    called = {id(node.func) for node in nodes if isinstance(node, ast.Call)}  # `min` in min(x) is no name
    return frozenset("in" if node.id == IN else node.id for node in nodes
                     if isinstance(node, ast.Name) and id(node) not in called and node.id not in CONSTANTS)


_ARITHMETIC = MappingProxyType({
    ast.Add: ("+", operator.add), ast.Sub: ("-", operator.sub), ast.Mult: ("*", operator.mul),
    ast.Div: ("/", operator.truediv), ast.FloorDiv: ("//", operator.floordiv),
    ast.Mod: ("%", operator.mod), ast.Pow: ("**", operator.pow)})
_UNARY = MappingProxyType({ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Not: operator.not_})
_COMPARE = MappingProxyType({ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt,
                             ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge})


def _kind(value: object) -> str:
    """The type's name as a spec author knows it: a list from a spec is a `list`, not the loader's MList."""
    if value is None:
        return "None"
    return next((t.__name__ for t in (bool, int, float, str, list, tuple, dict) if isinstance(value, t)),
                type(value).__name__)


def _sequence_size(symbol: str, left: object, right: object) -> int | None:
    """The size of a concatenation or repetition; None for other uses (`str % x` is printf formatting)."""
    if symbol == "+" and type(left) is type(right) and isinstance(left, _SEQUENCES):
        return _size(left) + _size(right)
    seq, count = (left, right) if isinstance(left, _SEQUENCES) else (right, left)
    if symbol == "*" and isinstance(seq, _SEQUENCES) and type(count) in (int, bool):
        return _size(seq) * max(count, 0)
    return None


# Sizes of the lists and tuples seen lately, by id, each entry holding its value so that the id stays its own.
# A value in the env (a param, a template argument) is measured each time an expression reads it; without the
# memory, 10,000 reads of a 10,000-element list would walk 10**8 elements.  Small values are not worth keeping.
_SIZES: OrderedDict[int, tuple[object, int]] = OrderedDict()
_SIZES_KEPT, _SIZES_WORTH = 256, 16


def _size(value: object) -> int:
    """Characters and elements in `value`, nested ones included each time they occur: `[[0] * 10**4] * 10**4` is
    10**8, and `[a, a]` is twice `a` and two.  Exact up to MAX_SEQUENCE; above it, some larger number.

    Shared structure is what makes this matter: params whose defaults are `[a, a]`, `[b, b]`, … double at each
    step while holding a few objects, and comparing, printing or joining 2**40 elements never ends.  So each
    distinct list is walked once (remembered by id in this walk and in _SIZES), and the walk stops as soon as
    the distinct elements it met pass the limit: it costs at most MAX_SEQUENCE steps, whatever `value` is."""
    if isinstance(value, str):
        return len(value)
    if not isinstance(value, (list, tuple)):
        return 0
    sizes: dict[int, int] = {}
    walked, stack = 0, [(value, False)]
    while stack:
        node, children_done = stack.pop()
        if children_done:
            total = len(node) + sum(_leaf(item) if not isinstance(item, (list, tuple)) else
                                    sizes.get(id(item), _OVER) for item in node)  # absent: a cycle
            if total > MAX_SEQUENCE:
                return _OVER
            sizes[id(node)] = total
            if total >= _SIZES_WORTH:
                _SIZES[id(node)] = (node, total)
                if len(_SIZES) > _SIZES_KEPT:
                    _SIZES.popitem(last=False)
            continue
        if id(node) in sizes:
            continue
        known = _SIZES.get(id(node))
        if known is not None and known[0] is node:
            sizes[id(node)] = known[1]
            _SIZES.move_to_end(id(node))
            continue
        walked += len(node)  # distinct elements: never more than the size itself
        if walked > MAX_SEQUENCE:
            return _OVER
        stack.append((node, True))
        stack.extend((item, False) for item in node if isinstance(item, (list, tuple)))
    return sizes[id(value)]


_OVER = MAX_SEQUENCE + 1


def _leaf(value: object) -> int:
    return len(value) if isinstance(value, str) else 0


class _Evaluator:
    """Walks validated trees; `in` is fetched from `lazy_in` at most once, and only when used."""

    def __init__(self, env: Mapping[str, object], lazy_in: Callable[[], InputShape] | None):
        self.env, self.lazy_in = env, lazy_in
        self.shape: InputShape | None = None  # fetched on first use of `in`
        self.part: Part | None = None  # the expression being walked, to locate errors

    def run(self, part: Part) -> object:
        self.part = part
        return self.walk(part.tree.body)

    def walk(self, node: ast.AST) -> object:
        # Python's own errors (len(1), min([])...) say what is wrong and only need the innermost location.
        try:
            return self._bounded(node, self._value(node))
        except ZeroDivisionError:
            raise self.part.error(node, "division by zero in `{src}`") from None
        except OverflowError:  # float ** float beyond 1e308
            raise self.part.error(node, _TOO_LARGE) from None
        except (ArithmeticError, LookupError, TypeError, ValueError) as exc:
            raise self.part.error(node, f"cannot evaluate `{{src}}`: {exc}") from None

    def _value(self, node: ast.AST) -> object:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, (ast.List, ast.Tuple)):
            items = [self.walk(item) for item in node.elts]
            return items if isinstance(node, ast.List) else tuple(items)
        if isinstance(node, ast.UnaryOp):
            return _UNARY[type(node.op)](self.walk(node.operand))
        if isinstance(node, ast.IfExp):
            return self.walk(node.body if self.walk(node.test) else node.orelse)
        if isinstance(node, ast.Call):
            return _FUNCTIONS[node.func.id](*[self.walk(arg) for arg in node.args])
        return _METHODS[type(node)](self, node)  # validation let no other kind of node through

    def _bounded(self, node: ast.AST, value: object) -> object:  # so chained arithmetic cannot run away
        if isinstance(value, complex) or (isinstance(value, float) and not math.isfinite(value)):
            raise self.part.error(node, "`{src}` is not a finite real number")  # 1e308 * 10, (-8) ** 0.5
        if isinstance(value, _NUMBERS) and abs(value) > MAX_MAGNITUDE:
            raise self.part.error(node, _TOO_LARGE)
        if isinstance(value, _SEQUENCES) and _size(value) > MAX_SEQUENCE:  # a list literal, or a value read
            raise self.part.error(node, _TOO_MANY, _SHARED)                # from the env: `[a, a]`, `$a`
        return value

    def _name(self, node: ast.Name) -> object:
        if node.id in CONSTANTS:
            return CONSTANTS[node.id]
        if node.id in self.env:
            return self.env[node.id]
        raise self.part.error(node, f"unknown name `{node.id}`", did_you_mean(node.id, [*self.env, "in"]))

    def _attribute(self, node: ast.Attribute) -> object:
        if self.shape is None:
            if self.lazy_in is None:
                raise self.part.error(node, "`in` is not available here")
            try:
                self.shape = self.lazy_in()
            except Exception as exc:
                raise _InputFailure(exc) from exc
        value = getattr(self.shape, node.attr)
        if value is None:
            dims = list(self.shape.shape)
            raise self.part.error(node, f"in.{node.attr} is not defined: the input is {len(dims)}-D "
                                        f"(shape {dims})")
        return list(value) if node.attr == "shape" else value

    def _binop(self, node: ast.BinOp) -> object:
        (symbol, func), left, right = _ARITHMETIC[type(node.op)], self.walk(node.left), self.walk(node.right)
        if isinstance(left, _NUMBERS) and isinstance(right, _NUMBERS):
            if symbol == "**" and abs(right) > MAX_EXPONENT:  # checked first: 2 ** 10**10 must not run
                raise self.part.error(node, f"exponent {right} is too large in `{{src}}` (limit {MAX_EXPONENT})")
            return func(left, right)
        size = _sequence_size(symbol, left, right)
        if size is None:
            verb = "cannot add" if symbol == "+" else f"cannot use `{symbol}` on"
            raise self.part.error(node, f"{verb} {_kind(left)} and {_kind(right)} in `{{src}}`")
        if size > MAX_SEQUENCE:  # checked before building: `"a" * 10**9` must not allocate anything
            raise self.part.error(node, f"`{{src}}` would have {size:,} elements; "
                                        f"the limit is {MAX_SEQUENCE:,}")
        return func(left, right)

    def _boolop(self, node: ast.BoolOp) -> object:
        value = None
        for item in node.values:  # short-circuits like Python: `and` stops at falsy, `or` at truthy
            value = self.walk(item)
            if bool(value) == isinstance(node.op, ast.Or):
                return value
        return value

    def _compare(self, node: ast.Compare) -> bool:
        left = self.walk(node.left)
        for op, item in zip(node.ops, node.comparators):  # chained: a < b < c stops at the first False
            right = self.walk(item)
            if not _COMPARE[type(op)](left, right):
                return False
            left = right
        return True

    def _subscript(self, node: ast.Subscript) -> object:
        value = self.walk(node.value)
        if isinstance(node.slice, ast.Slice):  # slicing only shrinks; Python rejects float bounds, a 0 step
            bounds = (node.slice.lower, node.slice.upper, node.slice.step)
            return value[slice(*[b if b is None else self.walk(b) for b in bounds])]
        index = self.walk(node.slice)
        if isinstance(value, _SEQUENCES) and type(index) is int and not -len(value) <= index < len(value):
            raise self.part.error(node, f"index {index} is out of range for a {_kind(value)} of length "
                                        f"{len(value)} in `{{src}}`")
        return value[index]


_METHODS = MappingProxyType({ast.Name: _Evaluator._name, ast.Attribute: _Evaluator._attribute,
                             ast.BinOp: _Evaluator._binop, ast.BoolOp: _Evaluator._boolop,
                             ast.Compare: _Evaluator._compare, ast.Subscript: _Evaluator._subscript})


def _round(number: object, digits: object = None) -> object:
    if type(digits) is int and abs(digits) > MAX_EXPONENT:
        raise ValueError(f"round() takes at most {MAX_EXPONENT} digits")
    return round(number, digits)


def _sum(*args: object) -> object:
    """sum() of one list of numbers: the total of per-stage depths, for a block's index in the whole network
    (ConvNeXt's stochastic-depth ramp).  No start value and no lists of lists: `sum(lists, [])` would concatenate
    before any bound could look at the result."""
    values = args[0] if len(args) == 1 else None
    if not isinstance(values, (list, tuple)) or any(isinstance(v, bool) or not isinstance(v, (int, float))
                                                    for v in values):
        raise TypeError("sum() takes one list of numbers")
    return sum(values)


# The whitelist's functions: Python's own, but for a round() whose digits are bounded and a sum() of numbers.
_SPECIAL = {"round": _round, "sum": _sum}
_FUNCTIONS = MappingProxyType({name: _SPECIAL.get(name) or getattr(builtins, name) for name in FUNCTIONS})
