"""Evaluating a spec's values during expansion: `$` expressions under the work budget, and the shapes they may
read (`in.channels`), inferred on demand over the nodes built so far."""

from __future__ import annotations

from dataclasses import dataclass, field

from netspec.errors import Mark, SpecError
from netspec.frontend.syntax import Value
from netspec.ir import Node, Scope, call_notes
from netspec.ops import ShapeError
from netspec.passes.context import Budget, Ctx, Failed
from netspec.passes.expr import MAX_NODES as MAX_EXPR_NODES
from netspec.passes.expr import ExprError, InputShape, cost, evaluate, is_expression, names_used
from netspec.passes.shapes import infer_node

ERROR = "<error>"  # the output of an item that failed; items fed by it are checked but build nothing


@dataclass
class Built:
    """The network so far: nodes in build order, their scopes, the shapes inferred yet, the nodes that failed
    (or depend on one that did) and the errors recorded."""

    nodes: dict[str, Node] = field(default_factory=dict)
    scopes: dict[str, Scope] = field(default_factory=dict)
    shapes: dict[str, tuple] = field(default_factory=dict)
    failed: set[str] = field(default_factory=lambda: {ERROR})
    errors: list[SpecError] = field(default_factory=list)
    items: dict[str, str] = field(default_factory=dict)   # every item's dotted path → its output node

    def shape_of(self, node: str) -> tuple[int, ...]:
        """The inferred shape of an already built node (or of a part of one, `NODE.k`: every part of a chunk has
        the node's shape), inferring (in build order) what is not known yet."""
        if node not in self.nodes and node not in self.failed:
            node = node.rpartition(".")[0]
        if node in self.failed:
            raise Failed
        if node not in self.shapes:
            for pending, record in self.nodes.items():
                if pending in self.shapes:
                    continue
                self._infer(pending, record)
                if pending == node:
                    break
        if node not in self.shapes:
            raise Failed
        return self.shapes[node]

    def _infer(self, name: str, node: Node) -> None:
        ins = [self.shapes.get(s) for s in node.inputs]
        if any(s is None for s in ins):
            self.failed.add(name)
            return
        try:
            self.shapes[name] = infer_node(node, ins).shape
        except ShapeError as err:
            self.failed.add(name)
            self.errors.append(SpecError(err.message, node.mark, expected=err.expected, found=err.found,
                                         hint=err.hint, notes=call_notes(self.scopes, name)))


class Evaluator:
    def __init__(self, budget: Budget, built: Built):
        self.budget, self.built = budget, built

    def value(self, value: Value, ctx: Ctx, inp: str | None):
        """The value with its `$` expressions evaluated (recursively in lists); `inp`: the node `in.*` reads."""
        if value.parts is not None:
            return [self.value(part, ctx, inp) for part in value.parts]
        return self.scalar(value.raw, value.mark, ctx, inp)

    def scalar(self, raw, mark: Mark, ctx: Ctx, inp: str | None):
        if not is_expression(raw):
            return raw
        lazy = (lambda: InputShape(self.built.shape_of(inp))) if inp is not None else None
        try:
            self.budget.charge(cost(raw), mark, ctx)
            return evaluate(raw, ctx.env, lazy)
        except ExprError as err:
            # A refused expression was parsed too (3,000 long ones took 2 s): each counts as five of the largest,
            # so at most 200 are refused before everything stops — more would only repeat the lesson.
            self.budget.charge(5 * MAX_EXPR_NODES, mark, ctx)
            ctx.fail(f"in `{raw}`: {err.message}" if len(raw) <= 80 else f"in an expression: {err.message}",
                     mark, hint=err.hint)

    def reads(self, value: Value, ctx: Ctx) -> frozenset:
        """The names the value's expressions read (in every item of a list)."""
        if value.parts is not None:
            return frozenset().union(*(self.reads(part, ctx) for part in value.parts))
        return self.names_in(value.raw, ctx, value.mark)

    def names_in(self, text, ctx: Ctx, mark: Mark) -> frozenset:
        try:
            return names_used(str(text))
        except ExprError as err:
            ctx.fail(f"in `{text}`: {err.message}", mark, hint=err.hint)
