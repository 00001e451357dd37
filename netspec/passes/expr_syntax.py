"""The syntax of `$` expressions: a spec string split into literal text and parsed expressions, each checked
against a whitelist of constructs before anything is evaluated (netspec.passes.expr evaluates them).

Expressions are parsed with `ast`; nothing is compiled or eval'ed.  The text's length and each expression's size
are bounded here; the values an evaluation computes are bounded by the evaluator.
"""

from __future__ import annotations

import ast
import functools
import io
import itertools
import re
import tokenize
import warnings
from dataclasses import dataclass
from types import MappingProxyType

from netspec.errors import did_you_mean

MAX_EXPR_LENGTH = 1000
MAX_NODES = 200
MAX_MESSAGE = 300          # characters of an error's message

# `in` is a Python keyword, so `in.x` is rewritten to this name (small-capital letters) before parsing.
# Being as long as `in`, it keeps every column unchanged; a user who types it merely gets `in`.
IN = "\u026a\u0274"
IN_ATTRS = ("channels", "height", "width", "features", "shape")
IN_LIST = ", ".join(f"in.{attr}" for attr in IN_ATTRS)
CONSTANTS = MappingProxyType({"true": True, "false": False, "null": None})  # as YAML users type them
FUNCTIONS = ("abs", "bool", "float", "int", "len", "max", "min", "round", "sum")  # the only names that may be called
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
class Part:
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
def split(text: str) -> tuple[bool, tuple[str | Part, ...]]:
    """(whole, parts): literal text and parsed expressions; whole when one expression keeps its type.  Cached: a
    template's expressions are evaluated once per call, and parsing each time made 10,000 calls of a 200-character
    expression take 9 s (found by tests/test_bounds.py).  Parts are frozen and the evaluator only reads trees."""
    if len(text) > MAX_EXPR_LENGTH:
        raise ExprError(f"expression is {len(text):,} characters long; the limit is {MAX_EXPR_LENGTH}")
    if text.startswith("$") and not text.startswith(("${", "$$")):
        return True, (_parse(text[1:], 1),)
    parts: list[str | Part] = []
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
    return len(parts) == 1 and isinstance(parts[0], Part), tuple(parts)


def _closing_brace(text: str, start: int) -> int | None:
    """Index of the `}` closing a `${` whose body starts at `start`; braces inside quotes do not count."""
    depth = 1
    for token in _BRACE_TOKENS.finditer(text, start):
        depth += {"{": 1, "}": -1}.get(token.group(), 0)
        if depth == 0:
            return token.start()
    return None


def _parse(text: str, base: int) -> Part:
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
                if "$" in stripped else f"`in` needs one of {IN_LIST}" if stripped.strip() == "in" else None)
        raise ExprError(f"invalid expression: {exc.msg}", base + min(at, len(stripped)), hint) from None
    except (RecursionError, MemoryError, ValueError):
        raise ExprError("expression is too deeply nested", base) from None
    # Counted up to one past the limit only: a full walk of each of 3,000 long expressions took a second.
    nodes = sum(1 for _ in itertools.islice((n for n in ast.walk(tree) if isinstance(n, ast.expr)), MAX_NODES + 1))
    if nodes > MAX_NODES:  # also keeps the recursive evaluator far from Python's recursion limit
        raise ExprError(f"expression is too complex: more than {MAX_NODES} parts", base)
    part = Part(stripped, base, code, tree, nodes)
    for node in ast.walk(tree):  # breadth first, so the outermost forbidden construct is reported
        _check(node, part)
    return part


def _rewrite_in(text: str) -> str:
    """Replace the keyword `in` by `IN` where `.` follows it; tokenize leaves strings and `x in y` alone."""
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
            text = text[:spot] + IN + text[spot + 2:]  # as long as `in`: later positions stay valid
    return text


_FORBIDDEN = MappingProxyType({kind: message for kinds, message in (
    ((ast.Lambda,), "lambda functions are not allowed"), ((ast.Set,), "set literals are not allowed"),
    ((ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp), "comprehensions are not allowed"),
    ((ast.JoinedStr, ast.FormattedValue), "f-strings are not allowed"), ((ast.Dict,), "dicts are not allowed"),
    ((ast.NamedExpr,), "`:=` is not allowed"), ((ast.Starred,), "starred arguments (`*x`) are not allowed"),
) for kind in kinds})
_PLAIN = (ast.Expression, ast.List, ast.Tuple, ast.IfExp, ast.BoolOp, ast.Subscript, ast.Slice,
          ast.expr_context, ast.operator, ast.cmpop, ast.boolop, ast.unaryop)
_SYMBOLS = MappingProxyType({ast.MatMult: "@", ast.BitAnd: "&", ast.BitOr: "|", ast.BitXor: "^",
                             ast.LShift: "<<", ast.RShift: ">>", ast.Invert: "~", ast.In: "in",
                             ast.NotIn: "not in", ast.Is: "is", ast.IsNot: "is not"})


def _check(node: ast.AST, part: Part) -> None:
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
        if not (isinstance(node.func, ast.Name) and node.func.id in FUNCTIONS):
            raise part.error(node.func, "calling `{src}` is not allowed; allowed functions: "
                                        + ", ".join(sorted(FUNCTIONS)))
        if node.keywords:
            raise part.error(node, f"keyword arguments are not allowed in `{node.func.id}(...)`")
    elif isinstance(node, ast.Attribute):
        if not (isinstance(node.value, ast.Name) and node.value.id == IN):
            raise part.error(node, f"attribute access is not allowed: only {IN_LIST}")
        if node.attr not in IN_ATTRS:
            raise part.error(node, f"`in` has no attribute `{node.attr}`: only {IN_LIST}",
                             did_you_mean(node.attr, IN_ATTRS))
    else:
        raise part.error(node, _FORBIDDEN.get(type(node), "`{src}` is not allowed in an expression"))
