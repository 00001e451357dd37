"""The safe `$` expression language of spec files.

A YAML string that contains `$` is evaluated here: `$name[0]` (bare: everything after `$`), `${expr}` (the
whole string is one expression and keeps its type) or text with `${...}` parts (`"layer${i+1}"`, a str).
`$$` is a literal `$`.  Expressions are parsed with `ast` and walked by hand over a whitelist of node
types; nothing is ever compiled or eval'ed, and every size is bounded so a spec cannot hang or eat memory.
"""

from __future__ import annotations

import ast
import io
import math
import operator
import tokenize
from dataclasses import dataclass
from types import MappingProxyType
from typing import Callable, Mapping

from netspec.errors import did_you_mean

MAX_EXPR_LENGTH = 1000
MAX_NODES = 200
MAX_EXPONENT = 64          # also bounds round()'s digits: round(1, -10**18) would build 10**(10**18)
MAX_MAGNITUDE = 10**18     # every number an expression computes stays within +-10**18
MAX_SEQUENCE = 10_000      # characters of a computed str, elements of a computed list

# `in` is a Python keyword, so `in.x` is rewritten to this name (small-capital letters) before parsing.
# Being as long as `in`, it keeps every column unchanged; a user who types it merely gets `in`.
_IN = "\u026a\u0274"
_IN_ATTRS = ("channels", "height", "width", "features", "shape")
_IN_ONLY = "only " + ", ".join(f"in.{attr}" for attr in _IN_ATTRS)
_CONSTANTS = MappingProxyType({"true": True, "false": False, "null": None})  # as YAML users type them
_SEQUENCES = (str, list, tuple)


class ExprError(Exception):
    """A user mistake in an expression.  `message` is one line; `offset` is the 0-based character offset
    inside the original string where the problem is (best effort, 0 if unknown); `hint` is optional."""

    def __init__(self, message: str, offset: int = 0, hint: str | None = None):
        super().__init__(message)
        self.message, self.offset, self.hint = message, offset, hint


@dataclass(frozen=True)
class InputShape:
    """The value bound to `in`: the shape of one sample, without the batch dimension.  channels, height
    and width are defined only for a 3-D (C, H, W) input and are None otherwise."""

    shape: tuple[int, ...]

    channels = property(lambda self: self.shape[0] if len(self.shape) == 3 else None)
    height = property(lambda self: self.shape[1] if len(self.shape) == 3 else None)
    width = property(lambda self: self.shape[2] if len(self.shape) == 3 else None)
    features = property(lambda self: math.prod(self.shape))


class _InputFailure(Exception):
    """Carries whatever `lazy_in` raised (its only arg) past the evaluator's nets, to be re-raised as is."""


def is_expression(value: object) -> bool:
    """True for strings with a `$` that is not part of a `$$` escape."""
    return isinstance(value, str) and "$" in value.replace("$$", "")


def evaluate(text: str, env: Mapping[str, object],
             lazy_in: Callable[[], InputShape] | None = None) -> object:
    """The value of a spec string: typed for `$x` and `${x}`, a str for interpolation, else `text` itself."""
    if not isinstance(text, str) or "$" not in text:
        return text
    whole, parts = _split(text)
    evaluator = _Evaluator(env, lazy_in)
    try:
        if whole:
            return evaluator.run(parts[0])
        return "".join(p if isinstance(p, str) else str(evaluator.run(p)) for p in parts)
    except _InputFailure as caught:
        failure = caught.args[0]
    except (ArithmeticError, LookupError, TypeError, ValueError, RecursionError, MemoryError) as exc:
        # A safety net: known failures are reported where they happen; this only makes sure nothing but
        # ExprError reaches the caller (str() of a 5000-digit int from env, say).
        raise ExprError(f"cannot evaluate expression: {exc}") from None
    raise failure  # outside the except block, so the error's own context is left untouched


def names_used(text: str) -> frozenset[str]:
    """The free names an expression string references (`in` included), without evaluating it."""
    if not isinstance(text, str) or "$" not in text:
        return frozenset()
    found: set[str] = set()
    for part in _split(text)[1]:
        if isinstance(part, _Part):
            called = {id(n.func) for n in ast.walk(part.tree) if isinstance(n, ast.Call)}
            found.update("in" if n.id == _IN else n.id for n in ast.walk(part.tree)
                         if isinstance(n, ast.Name) and id(n) not in called and n.id not in _CONSTANTS)
    return frozenset(found)


# ---------------------------------------------------------------------------------------------- parsing

@dataclass(frozen=True)
class _Part:
    """One parsed, validated expression and how to map its positions back to the original string."""

    text: str                  # the expression as the user wrote it
    base: int                  # where `text` starts in the original string
    code: str                  # `text` with `in.` rewritten, character for character as long
    tree: ast.Expression

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


def _split(text: str) -> tuple[bool, list[str | _Part]]:
    """(whole, parts): literal text and parsed expressions; `whole` when the string is one expression
    whose value keeps its type."""
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
        parts += [literal, _parse(text[i + 2:end], i + 2)] if literal else [_parse(text[i + 2:end], i + 2)]
        literal, pos = "", end + 1
    parts += [literal + text[pos:]] if literal + text[pos:] else []
    return len(parts) == 1 and isinstance(parts[0], _Part), parts


def _closing_brace(text: str, start: int) -> int | None:
    """Index of the `}` closing a `${` whose body starts at `start`, skipping braces inside quotes."""
    depth, quote, i = 1, None, start
    while i < len(text):
        char = text[i]
        if quote:
            i += char == "\\"  # skip the escaped character
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "{}":
            depth += 1 if char == "{" else -1
            if depth == 0:
                return i
        i += 1
    return None


def _parse(text: str, base: int) -> _Part:
    stripped = text.lstrip()  # ast.parse rejects leading indentation, and users write `${ a + b }`
    base += len(text) - len(stripped)
    if not stripped.strip():
        raise ExprError("empty expression: write a name or a value after `$`", base)
    code = _rewrite_in(stripped)
    try:
        tree = ast.parse(code, mode="eval")
    except SyntaxError as exc:
        at = _position(code, exc.lineno, (exc.offset or 1) - 1, in_bytes=False)
        hint = ("a string starting with `$` is one expression; use `${...}` for each part of a text"
                if "$" in stripped else f"`in` is used as {_IN_ONLY}" if stripped.strip() == "in" else None)
        raise ExprError(f"invalid expression: {exc.msg}", base + min(at, len(stripped)), hint) from None
    except (RecursionError, MemoryError, ValueError):
        raise ExprError("expression is too deeply nested", base) from None
    part = _Part(stripped, base, code, tree)
    nodes = sum(isinstance(node, ast.expr) for node in ast.walk(tree))
    if nodes > MAX_NODES:  # also keeps the recursive evaluator far from Python's recursion limit
        raise ExprError(f"expression is too complex: {nodes} parts; the limit is {MAX_NODES}", base)
    for node in ast.walk(tree):  # breadth first, so the outermost forbidden construct is reported
        _check(node, part)
    return part


def _rewrite_in(text: str) -> str:
    """Replace the keyword `in` by `_IN` where `.` follows it, found with tokenize so that strings and
    the `x in y` operator are left alone."""
    tokens: list[tokenize.TokenInfo] = []
    try:
        tokens.extend(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError, ValueError):
        pass  # keep the tokens read so far; ast.parse reports the real problem
    spots = [_position(text, a.start[0], a.start[1], in_bytes=False) for a, b in zip(tokens, tokens[1:])
             if (a.type, a.string, b.type, b.string) == (tokenize.NAME, "in", tokenize.OP, ".")]
    for spot in spots:
        text = text[:spot] + _IN + text[spot + len(_IN):]
    return text


# ------------------------------------------------------------------------------------------- validation

_FORBIDDEN = MappingProxyType({kind: message for kinds, message in (
    ((ast.Lambda,), "lambda functions are not allowed"),
    ((ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp), "comprehensions are not allowed"),
    ((ast.JoinedStr, ast.FormattedValue), "f-strings are not allowed"),
    ((ast.NamedExpr,), "assignment expressions (`:=`) are not allowed"),
    ((ast.Starred,), "starred arguments (`*x`) are not allowed"),
    ((ast.Dict,), "dict literals are not allowed"), ((ast.Set,), "set literals are not allowed"),
    ((ast.Await, ast.Yield, ast.YieldFrom), "`await` and `yield` are not allowed"),
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
            raise part.error(node, f"attribute access is not allowed: {_IN_ONLY}")
        if node.attr not in _IN_ATTRS:
            raise part.error(node, f"`in` has no attribute `{node.attr}`: {_IN_ONLY}",
                             did_you_mean(node.attr, _IN_ATTRS))
    else:
        raise part.error(node, _FORBIDDEN.get(type(node), "`{src}` is not allowed in an expression"))


# ------------------------------------------------------------------------------------------- evaluation

def _kind(value: object) -> str:
    return "None" if value is None else type(value).__name__


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float))


def _sequence_size(symbol: str, left: object, right: object) -> int | None:
    """The length of a concatenation or repetition; None for any other use of a sequence (`str % x` would
    be printf-style formatting)."""
    if symbol == "+" and type(left) is type(right) and isinstance(left, _SEQUENCES):
        return len(left) + len(right)
    seq, count = (left, right) if isinstance(left, _SEQUENCES) else (right, left)
    if symbol == "*" and isinstance(seq, _SEQUENCES) and type(count) in (int, bool):
        return len(seq) * max(count, 0)
    return None


class _Evaluator:
    """Walks validated trees; `in` is fetched from `lazy_in` at most once, and only when used."""

    def __init__(self, env: Mapping[str, object], lazy_in: Callable[[], InputShape] | None):
        self.env, self.lazy_in = env, lazy_in
        self.shape: InputShape | None = None
        self.part: _Part | None = None  # the expression being walked, to locate errors

    def run(self, part: _Part) -> object:
        self.part = part
        return self.eval(part.tree.body)

    def eval(self, node: ast.AST) -> object:
        # Python's own errors (bad index, len(1), min([])...) already say what is wrong; they only need
        # the location.  The innermost failing node reports, as an ExprError passes through unchanged.
        try:
            return self._bounded(node, self._value(node))
        except ZeroDivisionError:
            raise self.part.error(node, "division by zero in `{src}`") from None
        except OverflowError:  # float ** float beyond 1e308
            raise self.part.error(node, "`{src}` is too large: numbers are limited to 10**18 in size") from None
        except (ArithmeticError, LookupError, TypeError, ValueError) as exc:
            raise self.part.error(node, f"cannot evaluate `{{src}}`: {exc}") from None

    def _value(self, node: ast.AST) -> object:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, (ast.List, ast.Tuple)):
            items = [self.eval(item) for item in node.elts]
            return items if isinstance(node, ast.List) else tuple(items)
        if isinstance(node, ast.UnaryOp):
            return _UNARY[type(node.op)](self.eval(node.operand))
        if isinstance(node, ast.IfExp):
            return self.eval(node.body if self.eval(node.test) else node.orelse)
        if isinstance(node, ast.Call):
            return _FUNCTIONS[node.func.id](*[self.eval(arg) for arg in node.args])
        return _METHODS[type(node)](self, node)  # validation let no other kind of node through

    def _bounded(self, node: ast.AST, value: object) -> object:
        """Bound every number so that chained arithmetic cannot grow without limit."""
        if isinstance(value, float) and not math.isfinite(value):
            raise self.part.error(node, "`{src}` is not a finite number")
        if _is_number(value) and abs(value) > MAX_MAGNITUDE:
            raise self.part.error(node, "`{src}` is too large: numbers are limited to 10**18 in size")
        if isinstance(value, complex):  # (-8) ** 0.5
            raise self.part.error(node, "`{src}` has no real-numbered result")
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
        (symbol, func), left, right = _ARITHMETIC[type(node.op)], self.eval(node.left), self.eval(node.right)
        if _is_number(left) and _is_number(right):
            if symbol == "**" and abs(right) > MAX_EXPONENT:  # checked first: 2 ** 10**10 must not run
                raise self.part.error(node, f"exponent {right} is too large in `{{src}}`; "
                                            f"the limit is {MAX_EXPONENT}")
            return func(left, right)
        size = _sequence_size(symbol, left, right)
        if size is None:
            verb = "cannot add" if symbol == "+" else f"cannot use `{symbol}` on"
            raise self.part.error(node, f"{verb} {_kind(left)} and {_kind(right)} in `{{src}}`")
        if size > MAX_SEQUENCE:  # checked before building: `"a" * 10**9` must not allocate anything
            raise self.part.error(node, f"`{{src}}` would have {size:,} elements; the limit is {MAX_SEQUENCE:,}")
        return func(left, right)

    def _boolop(self, node: ast.BoolOp) -> object:
        value = None
        for item in node.values:  # short-circuits like Python: `and` stops at falsy, `or` at truthy
            value = self.eval(item)
            if bool(value) == isinstance(node.op, ast.Or):
                return value
        return value

    def _compare(self, node: ast.Compare) -> bool:
        left = self.eval(node.left)
        for op, item in zip(node.ops, node.comparators):  # chained: a < b < c stops at the first False
            right = self.eval(item)
            if not _COMPARE[type(op)](left, right):
                return False
            left = right
        return True

    def _subscript(self, node: ast.Subscript) -> object:
        value = self.eval(node.value)
        if isinstance(node.slice, ast.Slice):  # slicing only shrinks; Python rejects float bounds, a 0 step
            bounds = (node.slice.lower, node.slice.upper, node.slice.step)
            return value[slice(*[b if b is None else self.eval(b) for b in bounds])]
        index = self.eval(node.slice)
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
