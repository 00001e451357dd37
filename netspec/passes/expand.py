"""Spec → Graph: templates called, `repeat` unrolled, `when` applied, names built, `from:` resolved.

Nodes are added in a topological order.  Expressions that read the input's shape (`in.channels`) get it from
shape inference run on demand over the nodes built so far.  A failing item records its error and yields the
ERROR sentinel, so later independent items are still checked and every error is reported in one run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Mapping

from netspec.errors import Mark, Note, SpecError, SpecErrors, did_you_mean
from netspec.passes.expr import MAX_NODES as MAX_EXPR_NODES
from netspec.passes.expr import ExprError, InputShape, cost, evaluate, is_expression, names_used
from netspec.ir import INPUT, OUTPUT, Expect, Network, Node, Scope, build_network, call_notes
from netspec.ops import OPS, ArgError, ShapeError, check_arg, defaults
from netspec.passes.shapes import infer_node
from netspec.frontend.yaml_source import MDict, MList, key_mark, mark_of
from netspec.frontend.param_types import check_type, show
from netspec.frontend.validate import Spec, Template, item_kind

MAX_NODES = 10_000             # op nodes per network; real CNNs have a few hundred to a few thousand
MAX_TEMPLATE_DEPTH = 64
MAX_STEPS = 2 * MAX_NODES      # items and repeat iterations expanded, built or not (see `step`)
MAX_SCOPE_DEPTH = 100          # nested scopes (seqs, branches, calls): Python's recursion limit is ~7 frames each
MAX_NOTES = 8                  # template-call notes shown under one error
MAX_EVALUATION = 200_000       # expression nodes evaluated per network (each expression has ≤ 200): 10,000 calls
                               # of a 200-node expression took 2 s; the most the zoo needs is 748 (resnet50)
NAME_RE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*|[0-9]+)$")
ERROR = "<error>"  # the output of an item that failed; items fed by it are checked but build nothing


_NO_ARGS: Mapping[str, object] = MappingProxyType({})


def expect_of(raw: MDict | None) -> Expect:
    """The spec's `expect:` as typed facts, each with the mark of its value."""
    if not raw:
        return Expect()
    return Expect(params=raw.get("params"), output=tuple(raw["output"]) if "output" in raw else None,
                  macs=raw.get("macs"), marks=MappingProxyType({key: mark_of(raw, key) for key in raw}))


def _inline(item) -> bool:
    return isinstance(item, MDict) and item.get("inline") is True


class _Failed(Exception):
    """An item cannot go on (its error is already recorded, or it depends on one that failed)."""


class _TooBig(_Failed):
    """The expansion passed MAX_STEPS: everything stops (the error is recorded once)."""


@dataclass
class _Frame:
    names: dict = field(default_factory=dict)     # name → node id, for `from:`
    later: dict = field(default_factory=dict)     # names declared further down this seq, for a better error
    count: int = 0                                # the number of the scope's next item (see `seq`)


@dataclass(frozen=True)
class _Ctx:
    env: Mapping[str, object]
    path: tuple[str, ...]
    frames: tuple[_Frame, ...]
    block_input: str
    calls: tuple[tuple[Template, Mark], ...] = ()

    def child(self, path: tuple[str, ...], frame: _Frame | None = None) -> "_Ctx":
        return replace(self, path=path, frames=self.frames + (frame or _Frame(),))


def expand(spec: Spec) -> Network:
    return _Expander(spec).run()


class _Expander:
    def __init__(self, spec: Spec):
        self.spec = spec
        self.nodes: dict[str, Node] = {}          # build order
        self.scopes: dict[str, Scope] = {}
        self.errors: list[SpecError] = []
        self.paths: dict[str, Mark] = {}
        self.shapes: dict[str, tuple] = {}
        self.failed: set[str] = {ERROR}
        self.steps = 0
        self.evaluated = 0        # expression nodes evaluated so far (MAX_EVALUATION)

    # ── driver ────────────────────────────────────────────────────────────────────────────────────────────────
    def run(self) -> Network:
        root = self.spec.root
        ctx = _Ctx(env=MappingProxyType(dict(self.spec.params)), path=(), frames=(), block_input=INPUT)
        try:
            shape = self.input_shape(root, ctx)
            self.nodes[INPUT] = Node(INPUT, INPUT, _NO_ARGS, (), key_mark(root, "input"))
            self.shapes[INPUT] = shape
        except _Failed:
            raise SpecErrors(self.errors)
        try:
            out = self.seq(self.spec.body, ctx.child(()), INPUT)
        except _TooBig:
            raise SpecErrors(self.errors) from None
        if self.errors:
            raise SpecErrors(_first_of_each(self.errors))
        self.nodes[OUTPUT] = Node(OUTPUT, OUTPUT, _NO_ARGS, (out,), key_mark(root, "body"))
        spec = self.spec
        return build_network(list(self.nodes.values()), name=spec.name, doc=spec.doc, file=spec.file,
                             params=MappingProxyType(dict(spec.params)), input_shape=self.shapes[INPUT],
                             expect=expect_of(spec.expect), train=MappingProxyType(dict(spec.train)),
                             scopes=MappingProxyType(self.scopes))

    def input_shape(self, root: MDict, ctx: _Ctx) -> tuple[int, ...]:
        raw = root["input"]
        value = self.value(raw, ctx, mark_of(root, "input"), None)
        if not isinstance(value, (list, tuple)) or len(value) not in (1, 3) or \
                any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in value):
            self.fail("`input` must be [channels, height, width] or [features] of positive ints",
                      mark_of(root, "input"), ctx, expected="e.g. [1, 28, 28]", found=repr(value))
        return tuple(value)

    # ── errors ────────────────────────────────────────────────────────────────────────────────────────────────
    def fail(self, message: str, mark: Mark, ctx: _Ctx, notes: tuple[Note, ...] = (), **fields) -> None:
        # The caller's own notes ("first used at", "defined at") come first; the template call chain follows.
        calls = tuple(Note(f"in template `{t.name}` ({t.mark}), called at", call)
                      for t, call in reversed(ctx.calls))
        if len(calls) > MAX_NOTES:  # a 64-deep chain would bury the message: keep both ends
            calls = calls[:MAX_NOTES - 2] + (Note(f"… {len(calls) - MAX_NOTES + 1} more template calls …"),) + calls[-1:]
        self.errors.append(SpecError(message, mark, notes=tuple(notes) + calls, **fields))
        raise _Failed

    # ── items ─────────────────────────────────────────────────────────────────────────────────────────────────
    def seq(self, items: MList, ctx: _Ctx, inp: str) -> str:
        frame = ctx.frames[-1]
        for i, item in enumerate(items):
            if isinstance(item, MDict) and isinstance(item.get("name"), str) and not is_expression(item["name"]):
                frame.later.setdefault(item["name"], mark_of(items, i))
        for i in range(len(items)):
            # An unnamed item is named by its number in the scope: its index, unless the scope holds `inline`
            # seqs, whose items are numbered on in the scope as nn.Sequential(*layers) numbers them.
            if _inline(items[i]):
                inp = self.item(items, i, ctx, inp)
            else:
                frame.count += 1
                inp = self.item(items, i, ctx, inp, number=frame.count - 1)
        return inp

    def item(self, parent, index: int, ctx: _Ctx, inp: str, path: tuple[str, ...] | None = None,
             number: int | None = None) -> str:
        """Expands parent[index]; returns its output node (ERROR when it failed).  `path` given: the item is a
        template's body and takes the call's path instead of a name of its own.  `number`: its name when it has
        none (default: `index`)."""
        try:
            return self._item(parent, index, ctx, inp, path, number)
        except _TooBig:
            raise
        except _Failed:
            return ERROR

    def _item(self, parent, index: int, ctx: _Ctx, inp: str, path, number: int | None = None) -> str:
        item, mark = parent[index], mark_of(parent, index)
        self.step(mark, ctx)
        if len(ctx.path) > MAX_SCOPE_DEPTH:
            self.fail(f"scopes are nested more than {MAX_SCOPE_DEPTH} deep", mark, ctx,
                      hint="templates nest their bodies' seqs: flatten some of them")
        number = index if number is None else number
        kind, _ = item_kind(item)
        mods = item if isinstance(item, MDict) else {}
        raw_name = mods.get("name")
        frame = ctx.frames[-1]
        sources = self.sources(item, kind, ctx, inp, mark)
        if "when" in mods:
            cond = self.value(mods["when"], ctx, mark_of(item, "when"), sources[0])
            if not isinstance(cond, bool):
                self.fail("`when` must be true or false", mark_of(item, "when"), ctx, found=repr(cond))
            if not cond:
                if len(sources) > 1:
                    self.fail("a skipped item with several `from:` inputs has no single output", mark, ctx)
                return self.register(frame, self.given_name(raw_name, number, ctx, mark), sources[0])
        value = item[kind] if isinstance(item, MDict) else None
        if _inline(item):
            return self.inline(item, value, ctx, sources)
        if "repeat" in mods:
            out = self.repeat(item, number, kind, value, ctx, sources, path)
            if self.per_iteration(item, ctx, mark):
                return out  # each iteration registered its own name
            return self.register(frame, self.given_name(raw_name, number, ctx, mark), out)
        label = self.name(raw_name, number, ctx, mark)
        out = self.kind(kind, value, item, mark, ctx, path if path is not None else ctx.path + (label,), sources)
        return self.register(frame, label if raw_name is not None else None, out)

    def step(self, mark: Mark, ctx: _Ctx) -> None:
        """Counts expansion work.  Nested repeats, or templates that call others twice, can ask for billions of
        steps that build no node (empty seqs), which the node limit would never see."""
        self.steps += 1
        if self.steps > MAX_STEPS:
            try:
                self.fail(f"the spec expands to more than {MAX_STEPS:,} items and repeat iterations", mark, ctx,
                          hint="nested `repeat`s and templates multiply; a real network needs a few thousand")
            except _Failed:
                raise _TooBig from None

    def register(self, frame: _Frame, name: str | None, out: str) -> str:
        """Makes a named item's output reachable by `from:` further down its seq, under its name as evaluated
        (`name: "enc${i}"` registers `enc0`, `enc1`, …)."""
        if name is not None:
            frame.names[name] = out
        return out

    def given_name(self, raw, number: int, ctx: _Ctx, mark: Mark) -> str | None:
        """The item's `name:` as evaluated, or None when it has none."""
        return None if raw is None else self.name(raw, number, ctx, mark)

    def per_iteration(self, item: MDict, ctx: _Ctx, mark: Mark) -> bool:
        """Whether a `repeat` names each iteration by its `name` expression (which uses the index variable)."""
        var, raw_name = item.get("as"), item.get("name")
        return var is not None and is_expression(raw_name) and var in self.names_in(raw_name, ctx, mark)

    def name(self, raw, index: int, ctx: _Ctx, mark: Mark) -> str:
        if raw is None:
            return str(index)
        value = self.value(raw, ctx, mark, None) if is_expression(raw) else raw
        text = str(value)
        if isinstance(value, bool) or not NAME_RE.match(text):
            self.fail(f"invalid name {text!r}", mark, ctx, expected="letters, digits and _ (not starting with a "
                      "digit), or a plain number", found=repr(text))
        return text

    def claim(self, path: tuple[str, ...], mark: Mark, ctx: _Ctx) -> str:
        dotted = ".".join(path)
        if dotted in (INPUT, OUTPUT):
            self.fail(f"the name `{dotted}` is reserved", mark, ctx, hint="choose another name")
        if dotted in self.paths:
            self.fail(f"duplicate name `{dotted}`", mark, ctx, hint="give one of them another `name:`",
                      notes=(Note("first used at", self.paths[dotted]),))
        self.paths[dotted] = mark
        return dotted

    def sources(self, item, kind: str, ctx: _Ctx, inp: str, mark: Mark) -> list[str]:
        """The item's inputs: its `from:` (also accepted inside a merge op's mapping), else the previous output."""
        refs, holder, key = None, None, None
        if isinstance(item, MDict) and "from" in item:
            refs, holder, key = item["from"], item, "from"
        elif isinstance(item, MDict) and isinstance(item.get(kind), MDict) and "from" in item[kind]:
            refs, holder, key = item[kind]["from"], item[kind], "from"
        if refs is None:
            return [inp]
        entries = refs if isinstance(refs, list) else [refs]
        marks = [mark_of(refs, i, mark_of(holder, key)) for i in range(len(refs))] if isinstance(refs, list) \
            else [mark_of(holder, key)]
        var = item.get("as") if "repeat" in item else None
        for ref, mark in zip(entries, marks):
            if var is not None and is_expression(ref) and var in self.names_in(ref, ctx, mark):
                # The repeat's inputs are read once, before its first iteration, where `i` has no value yet.
                self.fail(f"`from: {ref}` uses the loop variable `{var}`, but a repeat's `from:` is its input, "
                          "read once before the loop", mark, ctx,
                          hint="put the `from:` on an item inside the repeated `seq:` (with `inline: true` if "
                               "later items must name the loop's items)")
        return [self.lookup(ref, ctx, mark) for ref, mark in zip(entries, marks)]

    def lookup(self, ref, ctx: _Ctx, mark: Mark) -> str:
        if is_expression(ref):  # `from: "enc${depth - 1 - i}"`: a name computed from params and loop variables
            ref = self.value(ref, ctx, mark, None)
            if isinstance(ref, bool) or not isinstance(ref, (str, int)):
                self.fail("a `from:` expression must give a node's name", mark, ctx,
                          expected="a name (text or a number)", found=repr(ref))
            ref = str(ref)
        if ref == "input":
            return ctx.block_input
        for frame in reversed(ctx.frames):
            if ref in frame.names:
                return frame.names[ref]
        visible = [n for f in ctx.frames for n in f.names] + ["input"]
        if any(ref in f.later for f in ctx.frames):
            later = next(f.later[ref] for f in ctx.frames if ref in f.later)
            if (later.file, later.line, later.col) <= (mark.file, mark.line, mark.col):
                # Declared but not yet defined, and it starts before this `from:`: the item it is in.
                self.fail(f"`from: {ref}` names the item it belongs to", mark, ctx,
                          expected="an earlier named node or `input`", found=f"`{ref}`",
                          hint="a node cannot take its own output; name a node before it")
            self.fail(f"`from: {ref}` names a node defined later (at {later})", mark, ctx,
                      hint="`from:` can only name earlier nodes; move the item or reorder the seq")
        self.fail(f"`from:` names an unknown node `{ref}`", mark, ctx, expected="an earlier named node or `input`",
                  found=f"`{ref}`", hint=did_you_mean(ref, visible) or "visible here: " + ", ".join(visible))

    def repeat_count(self, item: MDict, ctx: _Ctx, inp: str) -> int:
        mark = mark_of(item, "repeat")
        count = self.value(item["repeat"], ctx, mark, inp)
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            self.fail("`repeat` must be a non-negative int", mark, ctx, found=repr(count))
        if count > MAX_NODES:
            self.fail(f"`repeat: {count:,}` exceeds the limit of {MAX_NODES:,} nodes per network", mark, ctx)
        return count

    def repeat(self, item: MDict, index: int, kind: str, value, ctx: _Ctx, sources: list[str], path) -> str:
        mark = mark_of(item, "repeat")
        count = self.repeat_count(item, ctx, sources[0])
        var = item.get("as")
        raw_name = item.get("name")
        per_iteration = self.per_iteration(item, ctx, mark)
        base = path if path is not None else ctx.path + ((self.name(raw_name, index, ctx, mark),) if not per_iteration else ())
        if not per_iteration:
            self.scopes.setdefault(self.claim(base, mark, ctx), Scope(".".join(base), "repeat", item.mark))
        cur = sources
        for i in range(count):
            self.step(item.mark, ctx)
            it_ctx = replace(ctx, env=MappingProxyType({**ctx.env, var: i})) if var else ctx
            it_name = self.name(raw_name, 0, it_ctx, item.mark) if per_iteration else None
            it_path = ctx.path + (it_name,) if per_iteration else base + (str(i),)
            cur = [self.kind(kind, value, item, item.mark, it_ctx, it_path, cur)]
            if per_iteration:  # `from:` in later iterations and later items may name it
                ctx.frames[-1].names[it_name] = cur[0]
        return cur[0]

    def inline(self, item: MDict, items: MList, ctx: _Ctx, sources: list[str]) -> str:
        """An `inline: true` seq opens no scope: its items are expanded in the enclosing seq's scope and frame,
        as if written there (once per iteration under `repeat`), so torchvision's flat nn.Sequential indices
        (`features.0` … `features.28` of VGG) can come from nested loops."""
        if len(sources) > 1:
            self.fail("an inline seq takes one input, but `from:` names several", mark_of(item, "from"), ctx)
        if "repeat" not in item:
            return self.seq(items, ctx, sources[0])
        count, var, out = self.repeat_count(item, ctx, sources[0]), item.get("as"), sources[0]
        for i in range(count):
            self.step(item.mark, ctx)
            out = self.seq(items, replace(ctx, env=MappingProxyType({**ctx.env, var: i})) if var else ctx, out)
        return out

    def names_in(self, text, ctx: _Ctx, mark: Mark) -> frozenset:
        try:
            return names_used(str(text))
        except ExprError as err:
            self.fail(f"in `{text}`: {err.message}", mark, ctx, hint=err.hint)

    def kind(self, kind: str, value, item, mark: Mark, ctx: _Ctx, path: tuple[str, ...], sources: list[str]) -> str:
        if kind == "seq":
            self.scopes.setdefault(self.claim(path, mark, ctx), Scope(".".join(path), "seq", mark))
            if len(sources) > 1:
                self.fail("a seq takes one input, but `from:` names several", mark, ctx)
            return self.seq(value, ctx.child(path), sources[0])
        if kind in ("concat", "add") and isinstance(value, MList):
            return self.branches(kind, value, mark, ctx, path, sources)
        if kind in self.spec.templates:
            return self.call(self.spec.templates[kind], value, item, mark, ctx, path, sources)
        return self.op(kind, value, item, mark, ctx, path, sources)

    def branches(self, kind: str, branches: MList, mark: Mark, ctx: _Ctx, path, sources: list[str]) -> str:
        if len(sources) > 1:
            self.fail(f"{kind} with branches takes one input, but `from:` names several", mark, ctx)
        self.scopes.setdefault(self.claim(path, mark, ctx), Scope(".".join(path), kind, mark))
        outs = []
        for i, branch in enumerate(branches):
            if isinstance(branch, MList):
                branch_path = path + (str(i),)
                if branch:
                    self.claim(branch_path, mark_of(branches, i), ctx)
                outs.append(self.seq(branch, ctx.child(branch_path), sources[0]))
            else:
                outs.append(self.item(branches, i, ctx.child(path), sources[0]))
        return self.op(kind, None, None, mark, ctx, path + (kind,), outs)

    # ── ops and templates ─────────────────────────────────────────────────────────────────────────────────────
    def op(self, name: str, raw, item, mark: Mark, ctx: _Ctx, path, sources: list[str]) -> str:
        op = OPS[name]
        args = self.op_args(op, raw, mark, ctx, sources[0])
        if len(sources) < op.min_inputs:
            self.fail(f"`{name}` needs at least {op.min_inputs} inputs", mark, ctx,
                      hint="give branches (a list) or `from: [a, b]`")
        if op.max_inputs and len(sources) > op.max_inputs:
            self.fail(f"`{name}` takes one input, but `from:` names {len(sources)}", mark, ctx)
        node = self.claim(path, mark, ctx)
        if any(s in self.failed for s in sources):
            self.failed.add(node)
            raise _Failed
        if len(self.nodes) >= MAX_NODES:
            self.fail(f"the network has more than {MAX_NODES:,} nodes", mark, ctx)
        self.nodes[node] = Node(node, name, MappingProxyType(args), tuple(sources), mark)
        return node

    def op_args(self, op, raw, mark: Mark, ctx: _Ctx, inp: str) -> dict:
        args = defaults(op)
        given = raw if isinstance(raw, MDict) else {}
        for key, value in given.items():
            if key == "from":
                continue
            vmark = mark_of(given, key)
            try:
                args[key] = check_arg(op.params[key], self.value(value, ctx, vmark, inp))
            except ArgError as err:
                self.fail(f"{op.name}: invalid `{key}`", vmark, ctx, expected=err.expected, found=err.found,
                          hint=op.params[key].doc)
        missing = [k for k, p in op.params.items() if p.required and k not in given]
        if missing:
            example = ", ".join(f"{k}: …" for k in missing)
            self.fail(f"{op.name}: missing required param{'s' if len(missing) > 1 else ''} "
                      + ", ".join(f"`{k}`" for k in missing), mark, ctx, expected=f"`{op.name}: {{{example}}}`")
        return args

    def call(self, template: Template, raw, item, mark: Mark, ctx: _Ctx, path, sources: list[str]) -> str:
        if len(ctx.calls) >= MAX_TEMPLATE_DEPTH:
            self.fail(f"templates nested more than {MAX_TEMPLATE_DEPTH} deep", mark, ctx)
        if any(t.name == template.name for t, _ in ctx.calls):
            self.fail(f"template `{template.name}` calls itself", mark, ctx, hint="templates may not be recursive; "
                      "use `repeat` for repeated structure")
        if len(sources) > 1:
            self.fail(f"template `{template.name}` takes one input, but `from:` names several", mark, ctx)
        args = self.template_args(template, raw, mark, ctx, sources[0])
        dotted = self.claim(path, mark, ctx)
        self.scopes[dotted] = Scope(dotted, "template", mark, template.name, MappingProxyType(args),
                                                   template.mark)
        inner = _Ctx(env=MappingProxyType(args), path=path, frames=(_Frame(),), block_input=sources[0],
                     calls=ctx.calls + ((template, mark),))
        self.paths.pop(dotted)  # the body item claims the same path for its own scope
        holder = MList(template.body.mark)
        holder.append(template.body)
        holder.item_marks.append(template.body.mark)
        out = self._item(holder, 0, inner, sources[0], path)
        self.paths.setdefault(dotted, mark)
        return out

    def template_args(self, template: Template, raw, mark: Mark, ctx: _Ctx, inp: str) -> dict:
        given = raw if isinstance(raw, MDict) else {}
        where = (Note(f"template `{template.name}` is defined at", template.mark),)
        args = {}
        for key, value in given.items():
            vmark = key_mark(given, key)
            if key not in template.params:
                self.fail(f"template `{template.name}` has no param `{key}`", vmark, ctx,
                          expected="one of " + (", ".join(f"`{p}`" for p in template.params) or "(none)"),
                          found=f"`{key}`", hint=did_you_mean(key, template.params), notes=where)
            args[key] = self.value(value, ctx, mark_of(given, key), inp)
        for name, param in template.params.items():
            if name not in args:
                if param.required:
                    self.fail(f"template `{template.name}`: missing argument `{name}` ({show(param.type)})", mark, ctx,
                              expected=f"`{template.name}: {{{name}: …}}`", hint=param.doc or None, notes=where)
                inner = _Ctx(env=MappingProxyType(args), path=ctx.path, frames=ctx.frames, block_input=inp,
                             calls=ctx.calls)
                args[name] = self.value(param.default, inner, param.mark, inp)
            problem = check_type(param.type, args[name])
            if problem:
                self.fail(f"template `{template.name}`: argument `{name}`: {problem}",
                          mark_of(given, name) if name in given else mark, ctx, expected=show(param.type),
                          found=repr(args[name]), notes=where)
        return args

    # ── values ────────────────────────────────────────────────────────────────────────────────────────────────
    def value(self, raw, ctx: _Ctx, mark: Mark, inp: str | None):
        """Evaluates `$` expressions inside a value (recursively in lists)."""
        if isinstance(raw, list):
            return [self.value(v, ctx, mark_of(raw, i, mark), inp) for i, v in enumerate(raw)]
        if not is_expression(raw):
            return raw
        lazy = (lambda: InputShape(self.shape_of(inp, ctx))) if inp is not None else None
        try:
            self.charge(cost(raw), mark, ctx)
            return evaluate(raw, ctx.env, lazy)
        except ExprError as err:
            # A refused expression was parsed too (3,000 long ones took 2 s): each counts as five of the largest,
            # so at most 200 are refused before everything stops — more would only repeat the lesson.
            self.charge(5 * MAX_EXPR_NODES, mark, ctx)
            self.fail(f"in `{raw}`: {err.message}" if len(raw) <= 80 else f"in an expression: {err.message}",
                      mark, ctx, hint=err.hint)

    def charge(self, nodes: int, mark: Mark, ctx: _Ctx) -> None:
        """Counts expression work as `step` counts items: past MAX_EVALUATION, everything stops."""
        self.evaluated += nodes
        if self.evaluated > MAX_EVALUATION:
            try:
                self.fail(f"the spec's expressions take more than {MAX_EVALUATION:,} steps to evaluate", mark, ctx,
                          hint="a long expression in a large `repeat`, or in a template called many times, is "
                               "evaluated each time; compute it once as a param")
            except _Failed:
                raise _TooBig from None

    def shape_of(self, node: str, ctx: _Ctx) -> tuple[int, ...]:
        """The inferred shape of an already built node, inferring (in build order) what is not known yet."""
        if node in self.failed:
            raise _Failed
        if node not in self.shapes:
            for pending, record in self.nodes.items():
                if pending in self.shapes:
                    continue
                ins = [self.shapes.get(s) for s in record.inputs]
                if any(s is None for s in ins):
                    self.failed.add(pending)
                    continue
                try:
                    self.shapes[pending] = infer_node(record, ins).shape
                except ShapeError as err:
                    self.failed.add(pending)
                    self.errors.append(SpecError(err.message, record.mark,
                                                 expected=err.expected, found=err.found, hint=err.hint,
                                                 notes=call_notes(self.scopes, pending)))
                if pending == node:
                    break
        if node not in self.shapes:
            raise _Failed
        return self.shapes[node]


def _first_of_each(errors: list[SpecError]) -> list[SpecError]:
    """One error per (place, message): a mistake inside a template called N times is reported once, with the
    first call's notes, not N times."""
    seen: dict[tuple, SpecError] = {}
    for error in errors:
        seen.setdefault((error.mark, error.message), error)
    return list(seen.values())
