"""The safe `$` expressions of spec files: `$name[0]` (everything after `$`), `${expr}` (the whole string
is one expression and keeps its type) or text with `${...}` parts (`"layer${i+1}"`, a str); `$$` is a `$`.
Expressions are parsed with `ast` and walked by hand over a whitelist; nothing is compiled or eval'ed, and
every size is bounded so that a spec cannot hang or eat memory."""

from __future__ import annotations

import ast
import functools
import io
import itertools
import math
import operator
import re
import tokenize
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from types import MappingProxyType
from typing import Callable, Iterable, Mapping

from netspec.errors import did_you_mean
from netspec.frontend.grammar import is_expression

MAX_EXPR_LENGTH = 1000
MAX_NODES = 200
MAX_EXPONENT = 64          # also bounds round()'s digits: round(1, -10**18) would build 10**(10**18)
MAX_MAGNITUDE = 10**18     # every number an expression computes stays within +-10**18
MAX_SEQUENCE = 10_000      # characters of a computed str, elements of a computed list
MAX_MESSAGE = 300          # characters of an error's message

# `in` is a Python keyword, so `in.x` is rewritten to this name (small-capital letters) before parsing.
# Being as long as `in`, it keeps every column unchanged; a user who types it merely gets `in`.
_IN = "\u026a\u0274"
_IN_ATTRS = ("channels", "height", "width", "features", "shape")
_IN_LIST = ", ".join(f"in.{attr}" for attr in _IN_ATTRS)
_CONSTANTS = MappingProxyType({"true": True, "false": False, "null": None})  # as YAML users type them
_SEQUENCES = (str, list, tuple)
_NUMBERS = (int, float)  # bool included, as in Python: True + 1 == 2
_TOO_LARGE = "`{src}` is too large: numbers are limited to 10**18 in size"
_TOO_MANY = f"`{{src}}` holds more than {MAX_SEQUENCE:,} characters and list elements; the limit is {MAX_SEQUENCE:,}"
_SHARED = ("nested lists and strings count each time they occur: a value built as `[a, a]` or `${a}${a}` from "
           "one built the same way doubles at each step")
_IN_WORD = re.compile(r"\bin\b")
_BRACE_TOKENS = re.compile(r"""'(?:\\.|[^'\\])*'|"(?:\\.|[^"\\])*"|[{}]""")  # quoted strings and braces


class ExprError(Exception):
    """A user mistake in an expression.  `message` is one line; `offset` is the 0-based character offset
    inside the original string where the problem is (best effort, 0 if unknown); `hint` is optional."""

    def __init__(self, message: str, offset: int = 0, hint: str | None = None):
        if len(message) > MAX_MESSAGE:  # Python's own messages may quote a value
            message = message[:MAX_MESSAGE - 1] + "…"
        super().__init__(message)
        self.message, self.offset, self.hint = message, offset, hint


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
    whole, parts = _split(text)
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
    return sum(part.size for part in _split(text)[1] if isinstance(part, _Part))


def names_used(text: str) -> frozenset[str]:
    """The free names an expression string references (`in` included), without evaluating it."""
    if not isinstance(text, str) or "$" not in text:
        return frozenset()
    nodes = [node for part in _split(text)[1] if isinstance(part, _Part) for node in ast.walk(part.tree)]
    called = {id(node.func) for node in nodes if isinstance(node, ast.Call)}  # `min` in min(x) is no name
    return frozenset("in" if node.id == _IN else node.id for node in nodes
                     if isinstance(node, ast.Name) and id(node) not in called and node.id not in _CONSTANTS)


@dataclass(frozen=True)
class _Part:
    """One parsed, validated expression and how to map its positions back to the original string."""

    text: str                  # the expression as the user wrote it
    base: int                  # where `text` starts in the original string
    code: str                  # `text` with `in.` rewritten, character for character as long
    tree: ast.Expression
    size: int = 0              # its expression nodes: what one evaluation walks at most

    def offset(self, node: ast.AST, end: bool = False) -> int:
        line, col = (node.end_lineno, node.end_col_offset) if end else (node.lineno, node.col_offset)
        return self.base + _position(self.code, line, col, in_bytes=True)

    def error(self, node: ast.AST, message: str, hint: str | None = None) -> ExprError:
        """An error at `node`; `{src}` in the message becomes the node's source text."""
        source = self.text[self.offset(node) - self.base:self.offset(node, end=True) - self.base]
        source = source if len(source) <= 60 else source[:57] + "..."
        return ExprError(message.replace("{src}", source), self.offset(node), hint)


def _position(code: str, line: int | None, col: int | None, in_bytes: bool) -> int:
    """A character offset in `code` from a 1-based line and a column (ast counts UTF-8 bytes)."""
    lines = code.split("\n")
    if not line or not 1 <= line <= len(lines):
        return 0
    text, col = lines[line - 1], max(col or 0, 0)
    chars = len(text.encode("utf-8")[:col].decode("utf-8", "ignore")) if in_bytes else min(col, len(text))
    return sum(len(before) + 1 for before in lines[:line - 1]) + chars


@functools.lru_cache(maxsize=1024)
def _split(text: str) -> tuple[bool, tuple[str | _Part, ...]]:
    """(whole, parts): literal text and parsed expressions; whole when one expression keeps its type.  Cached: a
    template's expressions are evaluated once per call, and parsing each time made 10,000 calls of a 200-character
    expression take 9 s (found by tests/test_bounds.py).  Parts are frozen and the evaluator only reads trees."""
    if len(text) > MAX_EXPR_LENGTH:
        raise ExprError(f"expression is {len(text):,} characters long; the limit is {MAX_EXPR_LENGTH}")
    if text.startswith("$") and not text.startswith(("${", "$$")):
        return True, [_parse(text[1:], 1)]
    parts: list[str | _Part] = []
    literal, pos = "", 0
    while (i := text.find("$", pos)) != -1:
        literal += text[pos:i]
        if text.startswith("$$", i):
            literal, pos = literal + "$", i + 2
            continue
        if not text.startswith("${", i):
            raise ExprError("a `$` inside text must start `${...}`", i, "write `$$` for a literal `$`")
        end = _closing_brace(text, i + 2)
        if end is None:
            raise ExprError("`${` is never closed: missing `}`", i)
        parts += [literal, _parse(text[i + 2:end], i + 2)]
        literal, pos = "", end + 1
    parts = [part for part in parts + [literal + text[pos:]] if part != ""]
    return len(parts) == 1 and isinstance(parts[0], _Part), tuple(parts)


def _closing_brace(text: str, start: int) -> int | None:
    """Index of the `}` closing a `${` whose body starts at `start`; braces inside quotes do not count."""
    depth = 1
    for token in _BRACE_TOKENS.finditer(text, start):
        depth += {"{": 1, "}": -1}.get(token.group(), 0)
        if depth == 0:
            return token.start()
    return None


def _parse(text: str, base: int) -> _Part:
    stripped = text.lstrip()  # ast.parse rejects leading indentation, and users write `${ a + b }`
    base += len(text) - len(stripped)
    if not stripped:
        raise ExprError("empty expression: write a name or a value after `$`", base)
    code = _rewrite_in(stripped)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # `1if x` or '\d' would print a warning; refuse them instead
            tree = ast.parse(code, mode="eval")
    except SyntaxError as exc:
        at = _position(code, exc.lineno, (exc.offset or 1) - 1, in_bytes=False)
        hint = ("a string starting with `$` is one expression; use `${...}` for each part of a text"
                if "$" in stripped else f"`in` needs one of {_IN_LIST}" if stripped.strip() == "in" else None)
        raise ExprError(f"invalid expression: {exc.msg}", base + min(at, len(stripped)), hint) from None
    except (RecursionError, MemoryError, ValueError):
        raise ExprError("expression is too deeply nested", base) from None
    # Counted up to one past the limit only: a full walk of each of 3,000 long expressions took a second.
    nodes = sum(1 for _ in itertools.islice((n for n in ast.walk(tree) if isinstance(n, ast.expr)), MAX_NODES + 1))
    if nodes > MAX_NODES:  # also keeps the recursive evaluator far from Python's recursion limit
        raise ExprError(f"expression is too complex: more than {MAX_NODES} parts", base)
    part = _Part(stripped, base, code, tree, nodes)
    for node in ast.walk(tree):  # breadth first, so the outermost forbidden construct is reported
        _check(node, part)
    return part


def _rewrite_in(text: str) -> str:
    """Replace the keyword `in` by `_IN` where `.` follows it; tokenize leaves strings and `x in y` alone."""
    if not _IN_WORD.search(text):  # most expressions: tokenizing would cost ~1 ms per 1,000 characters
        return text
    tokens: list[tokenize.TokenInfo] = []
    try:
        tokens.extend(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError, ValueError):
        pass  # keep the tokens read so far; ast.parse reports the real problem
    for a, b in zip(tokens, tokens[1:]):
        if (a.string, b.type, b.string) != ("in", tokenize.OP, "."):
            continue  # _position is linear in the text: computed for every token, 3,000 long expressions
                      # took 4 s (found by tests/test_bounds.py)
        spot = _position(text, a.start[0], a.start[1], in_bytes=False)
        if text[spot:spot + 2] == "in":
            text = text[:spot] + _IN + text[spot + 2:]  # as long as `in`: later positions stay valid
    return text


_FORBIDDEN = MappingProxyType({kind: message for kinds, message in (
    ((ast.Lambda,), "lambda functions are not allowed"), ((ast.Set,), "set literals are not allowed"),
    ((ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp), "comprehensions are not allowed"),
    ((ast.JoinedStr, ast.FormattedValue), "f-strings are not allowed"), ((ast.Dict,), "dicts are not allowed"),
    ((ast.NamedExpr,), "`:=` is not allowed"), ((ast.Starred,), "starred arguments (`*x`) are not allowed"),
) for kind in kinds})
_PLAIN = (ast.Expression, ast.List, ast.Tuple, ast.IfExp, ast.BoolOp, ast.Subscript, ast.Slice,
          ast.expr_context, ast.operator, ast.cmpop, ast.boolop, ast.unaryop)
_ARITHMETIC = MappingProxyType({
    ast.Add: ("+", operator.add), ast.Sub: ("-", operator.sub), ast.Mult: ("*", operator.mul),
    ast.Div: ("/", operator.truediv), ast.FloorDiv: ("//", operator.floordiv),
    ast.Mod: ("%", operator.mod), ast.Pow: ("**", operator.pow)})
_UNARY = MappingProxyType({ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Not: operator.not_})
_COMPARE = MappingProxyType({ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt,
                             ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge})
_SYMBOLS = MappingProxyType({ast.MatMult: "@", ast.BitAnd: "&", ast.BitOr: "|", ast.BitXor: "^",
                             ast.LShift: "<<", ast.RShift: ">>", ast.Invert: "~", ast.In: "in",
                             ast.NotIn: "not in", ast.Is: "is", ast.IsNot: "is not"})


def _check(node: ast.AST, part: _Part) -> None:
    """Reject one node that is not in the whitelist; children are visited by the caller's walk."""
    if isinstance(node, _PLAIN):
        return
    if isinstance(node, ast.Constant):
        if not isinstance(node.value, (int, float, str, bool, type(None))):
            raise part.error(node, f"{type(node.value).__name__} literals are not allowed")
    elif isinstance(node, ast.Name):
        if node.id.startswith("__"):
            raise part.error(node, f"names starting with `__` are not allowed: `{node.id}`")
    elif isinstance(node, (ast.BinOp, ast.UnaryOp, ast.Compare)):
        ops = node.ops if isinstance(node, ast.Compare) else [node.op]
        bad = [op for op in ops if type(op) in _SYMBOLS]
        if bad:
            raise part.error(node, f"operator `{_SYMBOLS[type(bad[0])]}` is not allowed")
    elif isinstance(node, ast.Call):
        if not (isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS):
            raise part.error(node.func, "calling `{src}` is not allowed; allowed functions: "
                                        + ", ".join(sorted(_FUNCTIONS)))
        if node.keywords:
            raise part.error(node, f"keyword arguments are not allowed in `{node.func.id}(...)`")
    elif isinstance(node, ast.Attribute):
        if not (isinstance(node.value, ast.Name) and node.value.id == _IN):
            raise part.error(node, f"attribute access is not allowed: only {_IN_LIST}")
        if node.attr not in _IN_ATTRS:
            raise part.error(node, f"`in` has no attribute `{node.attr}`: only {_IN_LIST}",
                             did_you_mean(node.attr, _IN_ATTRS))
    else:
        raise part.error(node, _FORBIDDEN.get(type(node), "`{src}` is not allowed in an expression"))


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
        self.part: _Part | None = None  # the expression being walked, to locate errors

    def run(self, part: _Part) -> object:
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
        if node.id in _CONSTANTS:
            return _CONSTANTS[node.id]
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


_FUNCTIONS = MappingProxyType({"abs": abs, "bool": bool, "float": float, "int": int, "len": len,
                               "max": max, "min": min, "round": _round})
