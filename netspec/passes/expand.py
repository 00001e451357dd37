"""Spec → Network: templates called, `repeat` unrolled, `when` applied, names built, `from:` resolved.

The walker goes over the parsed items (netspec.frontend.syntax); names and `from:` are naming.py's, values and
on-demand shapes values.py's, the context and work budget context.py's.  Nodes are added in a topological order.
A failing item records its error and yields the ERROR sentinel, so later independent items are still checked
and every error is reported in one run.
"""

from __future__ import annotations

import difflib
import keyword
from dataclasses import replace
from types import MappingProxyType
from typing import Mapping

from netspec.errors import Mark, Note, SpecError, SpecErrors, did_you_mean
from netspec.frontend.grammar import ITEM_NAME, ITEM_NAME_RULE
from netspec.frontend.param_types import check_type, show
from netspec.frontend.syntax import (Arg, Branch, Branches, Item, OpCall, OutputDecl, Seq, Spec, Template,
                                     TemplateCall, Value)
from netspec.ir import INPUT, OUTPUT, Network, Node, Output, Scope, build_network, part_ref
from netspec.ops import OPS, ArgError, ShapeError, check_arg, defaults
from netspec.ops.base import check_size, describe, shown
from netspec.passes.context import (MAX_NODES, MAX_SCOPE_DEPTH, MAX_TEMPLATE_DEPTH, Budget, Ctx, Failed,
                                    Mistakes, TooBig)
from netspec.passes.expr import is_expression
from netspec.passes.naming import Namespace, Paths
from netspec.passes.values import ERROR, Built, Evaluator

_NO_ARGS: Mapping[str, object] = MappingProxyType({})


def expand(spec: Spec) -> Network:
    return _Walker(spec).run()


def _with_var(ctx: Ctx, var: str | None, i: int) -> Ctx:
    """`ctx` for iteration `i` of a repeat whose index is `var`."""
    return replace(ctx, env=MappingProxyType({**ctx.env, var: i})) if var else ctx


class _Walker:
    def __init__(self, spec: Spec):
        self.spec = spec
        self.built = Built()
        self.budget = Budget()
        self.values = Evaluator(self.budget, self.built)
        self.names = Namespace()
        self.paths = Paths()

    # ── driver ────────────────────────────────────────────────────────────────────────────────────────────────
    def run(self) -> Network:
        spec, built = self.spec, self.built
        ctx = Ctx(env=MappingProxyType(dict(spec.params)), path=(), block_input=INPUT, lint_ignore=spec.lint_ignore)
        try:
            built.shapes[INPUT] = self.input_shape(ctx)
            built.nodes[INPUT] = Node(INPUT, INPUT, _NO_ARGS, (), spec.input_mark)
            with self.names.frame() as top:
                out = self.seq(spec.body, ctx, INPUT)
                outputs = self.outputs(ctx, out)
                names = {name: node for name, node in {**built.items, **top.names}.items() if node != ERROR}
        except Failed as stop:  # the input's shape, or a budget (TooBig): nothing more can be checked
            raise SpecErrors(built.errors + list(stop.errors)) from None
        if built.errors:
            raise SpecErrors(_first_of_each(built.errors))
        ends = [o.node for o in outputs] if outputs else [out]
        try:  # located at the item that makes the output (its last, unless a `when:` skipped it)
            producer = built.nodes.get(out) or built.nodes.get(out.rpartition(".")[0])
            inputs, parts = self.node_inputs(None, ends, producer.mark if producer else spec.body_mark, ctx)
        except Failed as failed:
            raise SpecErrors(list(failed.errors)) from None
        built.nodes[OUTPUT] = Node(OUTPUT, OUTPUT, _NO_ARGS, inputs, spec.body_mark, parts=parts)
        return build_network(list(built.nodes.values()), name=spec.name, doc=spec.doc, file=spec.file,
                             params=MappingProxyType(dict(spec.params)), input_shape=built.shapes[INPUT],
                             expect=spec.expect, train=MappingProxyType(dict(spec.train)),
                             scopes=MappingProxyType(built.scopes), outputs=outputs,
                             names=MappingProxyType(names))

    def outputs(self, ctx: Ctx, last: str) -> tuple[Output, ...]:
        """The spec's `outputs:` resolved to nodes, in order (empty: no `outputs:`, the last item is the output).
        An entry names a top-level name or a nested item's dotted path; one whose `when` is false is left out."""
        spec, outputs, mistakes = self.spec, [], Mistakes()
        if not spec.outputs:
            return ()
        taken: dict[str, OutputDecl] = {}
        for decl in spec.outputs:
            with mistakes.record():
                if decl.name.startswith("_") or keyword.iskeyword(decl.name):
                    ctx.fail(f"the output name `{decl.name}` is not a field name Python allows", decl.mark,
                             hint="outputs are the fields of a named tuple: no leading `_`, no Python keyword")
                if decl.when is not None and not self.condition(decl.when, ctx, last):
                    continue
                train_only = False
                if decl.train_only is not None:
                    train_only = self.values.value(decl.train_only, ctx, last)
                    if not isinstance(train_only, bool):
                        ctx.fail("`train_only` must be true or false", decl.train_only.mark,
                                 found=describe(train_only))
                node = self.output_node(decl.from_, ctx)
                if node == ERROR:
                    continue
                if node in taken:
                    ctx.fail(f"outputs `{taken[node].name}` and `{decl.name}` return the same node `{node}`",
                             decl.from_.mark, hint="each output returns a different node; drop one of them",
                             notes=(Note(f"`{taken[node].name}` is declared at", taken[node].mark),))
                taken[node] = decl
                outputs.append(Output(decl.name, node, train_only, decl.mark))
        self.built.errors += mistakes.errors
        if outputs and outputs[0].train_only:
            ctx.fail(f"the first output, `{outputs[0].name}`, is train-only: the first output is the network's main "
                     "one, which eval returns", outputs[0].mark,
                     hint="list the main output (the classifier's logits, no `train_only`) first")
        if not outputs and not mistakes.errors:
            ctx.fail("no output is left: the `when` of every entry of `outputs:` is false", spec.outputs[0].mark)
        return tuple(outputs)

    def output_node(self, ref: Value, ctx: Ctx) -> str:
        """The node an `outputs:` entry names: a top-level name as `from:` sees it, or the dotted path of a
        nested item (`b4.aux1`: an auxiliary head inside a stage)."""
        if not isinstance(ref.raw, str) or "." not in ref.raw:
            return self.lookup(ref, ctx)
        if ref.raw not in self.built.items:
            ctx.fail(f"`outputs:` names an unknown item `{ref.raw}`", ref.mark,
                     expected="a top-level name, or the dotted path of an item (`b4.aux1`)", found=f"`{ref.raw}`",
                     hint=did_you_mean(ref.raw, self.built.items))
        return self.built.items[ref.raw]

    def input_shape(self, ctx: Ctx) -> tuple[int, ...]:
        value = self.values.value(self.spec.input, ctx, None)
        if not isinstance(value, (list, tuple)) or len(value) not in (1, 3) or \
                any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in value):
            ctx.fail("`input` must be [channels, height, width] or [features] of positive ints",
                     self.spec.input.mark, expected="e.g. [1, 28, 28]", found=describe(value))
        try:
            check_size("the input", value)
        except ShapeError as err:
            ctx.fail(err.message, self.spec.input.mark, expected=err.expected, found=err.found, hint=err.hint)
        return tuple(value)

    # ── items ─────────────────────────────────────────────────────────────────────────────────────────────────
    def seq(self, items: tuple[Item, ...], ctx: Ctx, inp: str) -> str:
        """Expands items in the current frame.  An unnamed item is named by its number in the scope: its index,
        unless the scope holds inline seqs, whose items are numbered on as nn.Sequential(*layers) numbers them."""
        frame = self.names.top
        for item in items:
            name = item.mods.name
            if name is not None and isinstance(name.raw, str) and not is_expression(name.raw):
                frame.later.setdefault(name.raw, item.mark)
        for i, item in enumerate(items):
            if isinstance(item, Seq) and item.inline:
                inp = self.item(item, ctx, inp, i)
            else:
                frame.count += 1
                inp = self.item(item, ctx, inp, frame.count - 1)
        return inp

    def item(self, item: Item, ctx: Ctx, inp: str, number: int) -> str:
        """Expands the item; returns its output node (ERROR when it failed).  `number`: its name when it has
        none."""
        try:
            return self._item(item, ctx, inp, number)
        except TooBig:
            raise
        except Failed as failed:
            self.built.errors += failed.errors
            self.register_failed(item, ctx)
            return ERROR

    def register_failed(self, item: Item, ctx: Ctx) -> None:
        """A failed item's literal name stands for ERROR further down its seq, so a `from:` that names it is
        poisoned like any item it feeds, rather than told that the name is unknown (a cascade)."""
        name = item.mods.name
        if name is not None and isinstance(name.raw, (str, int)) and not isinstance(name.raw, bool) \
                and not is_expression(name.raw) and ITEM_NAME.match(str(name.raw)):
            self.names.register(str(name.raw), ERROR)

    def _item(self, item: Item, ctx: Ctx, inp: str, number: int, path: tuple[str, ...] | None = None) -> str:
        """`path` given: the item is a template's body and takes the call's path instead of a name of its own."""
        mark, mods = item.mark, item.mods
        self.budget.step(mark, ctx)
        if mods.lint_ignore:
            ctx = replace(ctx, lint_ignore=ctx.lint_ignore | mods.lint_ignore)
        if len(ctx.path) > MAX_SCOPE_DEPTH:
            ctx.fail(f"scopes are nested more than {MAX_SCOPE_DEPTH} deep", mark,
                     hint="templates nest their bodies' seqs: flatten some of them")
        sources = self.sources(item, ctx, inp)
        if mods.when is not None and not self.condition(mods.when, ctx, sources[0]):
            if len(sources) > 1:
                ctx.fail("a skipped item with several `from:` inputs has no single output", mark)
            return self.names.register(self.given_name(mods.name, number, ctx, mark), sources[0])
        if isinstance(item, Seq) and item.inline:
            return self.inline(item, ctx, sources)
        if mods.repeat is not None:
            out, per_iteration = self.repeat(item, number, ctx, sources, path)
            if per_iteration:
                return out  # each iteration registered its own name
            return self.names.register(self.given_name(mods.name, number, ctx, mark), out)
        label = self.name(mods.name, number, ctx, mark)
        item_path = path if path is not None else ctx.path + (label,)
        out = self.kind(item, ctx, item_path, sources)
        self.built.items[".".join(item_path)] = out
        return self.names.register(label if mods.name is not None else None, out)

    def condition(self, when: Value, ctx: Ctx, inp: str) -> bool:
        cond = self.values.value(when, ctx, inp)
        if not isinstance(cond, bool):
            ctx.fail("`when` must be true or false", when.mark, found=describe(cond))
        return cond

    def kind(self, item: Item, ctx: Ctx, path: tuple[str, ...], sources: list[str]) -> str:
        if isinstance(item, Seq):
            self.built.scopes.setdefault(self.paths.claim(path, item.mark, ctx), Scope(".".join(path), "seq", item.mark))
            if len(sources) > 1:
                ctx.fail("a seq takes one input, but `from:` names several", item.mark)
            with self.names.frame():
                return self.seq(item.items, replace(ctx, path=path), sources[0])
        if isinstance(item, Branches):
            return self.branches(item, ctx, path, sources)
        if isinstance(item, TemplateCall):
            return self.call(self.spec.templates[item.template], item.args, item.mark, ctx, path, sources)
        return self.op(item.op, item.args, item.mark, ctx, path, sources)

    def branches(self, item: Branches, ctx: Ctx, path: tuple[str, ...], sources: list[str]) -> str:
        if len(sources) > 1:
            ctx.fail(f"{item.op} with branches takes one input, but `from:` names several", item.mark)
        self.built.scopes.setdefault(self.paths.claim(path, item.mark, ctx), Scope(".".join(path), item.op, item.mark))
        outs = []
        for i, branch in enumerate(item.branches):
            with self.names.frame():
                if isinstance(branch, Branch):
                    branch_path = path + (str(i),)
                    if branch.items:
                        self.paths.claim(branch_path, branch.mark, ctx)
                    outs.append(self.seq(branch.items, replace(ctx, path=branch_path), sources[0]))
                else:
                    outs.append(self.item(branch, replace(ctx, path=path), sources[0], i))
        return self.op(item.op, _NO_ARGS, item.mark, ctx, path + (item.op,), outs)

    # ── repeat ────────────────────────────────────────────────────────────────────────────────────────────────
    def repeat_count(self, item: Item, ctx: Ctx, inp: str) -> int:
        raw = item.mods.repeat
        count = self.values.value(raw, ctx, inp)
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            ctx.fail("`repeat` must be a non-negative int", raw.mark, found=describe(count))
        if count > MAX_NODES:
            ctx.fail(f"`repeat: {count:,}` exceeds the limit of {MAX_NODES:,} nodes per network", raw.mark)
        return count

    def repeat(self, item: Item, number: int, ctx: Ctx, sources: list[str], path) -> tuple[str, bool]:
        """The repeat's output, and whether it names each iteration by its `name` expression (which then uses
        the index variable) rather than opening one scope numbered by iteration."""
        mark, var, raw_name = item.mods.repeat.mark, item.mods.as_, item.mods.name
        count = self.repeat_count(item, ctx, sources[0])
        per_iteration = var is not None and raw_name is not None and is_expression(raw_name.raw) and \
            var in self.values.names_in(raw_name.raw, ctx, mark)
        base = path if path is not None else ctx.path + ((self.name(raw_name, number, ctx, mark),) if not per_iteration else ())
        if not per_iteration:
            self.built.scopes.setdefault(self.paths.claim(base, mark, ctx), Scope(".".join(base), "repeat", item.mark))
        cur = sources
        for i in range(count):
            self.budget.step(item.mark, ctx)
            it_ctx = _with_var(ctx, var, i)
            it_name = self.name(raw_name, 0, it_ctx, item.mark) if per_iteration else None
            it_path = ctx.path + (it_name,) if per_iteration else base + (str(i),)
            cur = [self.kind(item, it_ctx, it_path, cur)]
            self.built.items[".".join(it_path)] = cur[0]
            if per_iteration:  # `from:` in later iterations and later items may name it
                self.names.register(it_name, cur[0])
        if count and not per_iteration:
            self.built.items[".".join(base)] = cur[0]
        return cur[0], per_iteration

    def inline(self, item: Seq, ctx: Ctx, sources: list[str]) -> str:
        """An `inline: true` seq opens no scope: its items are expanded in the enclosing seq's scope and frame,
        as if written there (once per iteration under `repeat`), so torchvision's flat nn.Sequential indices
        (`features.0` … `features.28` of VGG) can come from nested loops."""
        if len(sources) > 1:
            ctx.fail("an inline seq takes one input, but `from:` names several", item.mods.from_.mark)
        if item.mods.repeat is None:
            return self.seq(item.items, ctx, sources[0])
        count, out = self.repeat_count(item, ctx, sources[0]), sources[0]
        for i in range(count):
            self.budget.step(item.mark, ctx)
            out = self.seq(item.items, _with_var(ctx, item.mods.as_, i), out)
        return out

    # ── names and `from:` ─────────────────────────────────────────────────────────────────────────────────────
    def given_name(self, raw: Value | None, number: int, ctx: Ctx, mark: Mark) -> str | None:
        """The item's `name:` as evaluated, or None when it has none."""
        return None if raw is None else self.name(raw, number, ctx, mark)

    def name(self, raw: Value | None, number: int, ctx: Ctx, mark: Mark) -> str:
        if raw is None:
            return str(number)
        value = self.values.scalar(raw.raw, mark, ctx, None)
        text = str(value)
        if isinstance(value, bool) or not ITEM_NAME.match(text):
            ctx.fail(f"invalid name {shown(text)}", mark, expected=ITEM_NAME_RULE, found=describe(text))
        return text

    def sources(self, item: Item, ctx: Ctx, inp: str) -> list[str]:
        """The item's inputs: its `from:` (also accepted inside a merge op's mapping), else the previous output."""
        refs = item.mods.from_
        if isinstance(item, OpCall) and not OPS[item.op].reads_input and refs is not None:
            ctx.fail(f"`{item.op}` reads no input, so it takes no `from:`", refs.mark,
                     hint="a learnable tensor is used by naming it in a merge: `mul: {from: [scale, x]}`")
        if refs is None:
            return [inp]
        entries = refs.parts if refs.parts is not None else (refs,)
        var = item.mods.as_ if item.mods.repeat is not None else None
        for ref in entries:
            if var is not None and is_expression(ref.raw) and var in self.values.names_in(ref.raw, ctx, ref.mark):
                # The repeat's inputs are read once, before its first iteration, where `i` has no value yet.
                ctx.fail(f"`from: {ref.raw}` uses the loop variable `{var}`, but a repeat's `from:` is its input, "
                         "read once before the loop", ref.mark,
                         hint="put the `from:` on an item inside the repeated `seq:` (with `inline: true` if "
                              "later items must name the loop's items)")
        return [self.lookup(ref, ctx) for ref in entries]

    def lookup(self, ref: Value, ctx: Ctx) -> str:
        name = ref.raw
        if is_expression(name):  # `from: "enc${depth - 1 - i}"`: a name computed from params and loop variables
            name = self.values.scalar(name, ref.mark, ctx, None)
            if isinstance(name, bool) or not isinstance(name, (str, int)):
                ctx.fail("a `from:` expression must give a node's name", ref.mark,
                         expected="a name (text or a number)", found=describe(name))
            name = str(name)
        if isinstance(name, int) and not isinstance(name, bool):  # `from: 3`: an unnamed item's number
            name = str(name)
        node, _, part = name.rpartition(".") if isinstance(name, str) else ("", "", "")
        if node and part.isdigit() and self.names.find(name) is None and self.names.find(node) is not None:
            return self.part(self.names.resolve(node, ref.mark, ctx), node, int(part), ref.mark, ctx)
        return self.names.resolve(name, ref.mark, ctx)

    def part(self, source: str, written: str, part: int, mark: Mark, ctx: Ctx) -> str:
        """`from: halves.1`: part 1 of the node `halves` stands for, which must have several outputs."""
        if source in self.built.failed:
            return source
        node = self.built.nodes.get(source)
        count = self.output_count(source)
        if count is None:
            what = f"a `{node.op}` node" if node is not None else "no op node"
            ctx.fail(f"`from: {written}.{part}` names a part of `{written}`, which is {what} with one output",
                     mark, expected="a part of a node with several outputs (a `chunk`), or a node's name",
                     found=f"`{written}.{part}`", hint=f"write `from: {written}` for its output")
        if part >= count:
            ctx.fail(f"`from: {written}.{part}`: `{written}` has {count} parts, numbered from 0", mark,
                     expected=" or ".join(f"`{written}.{k}`" for k in range(min(count, 4))) + (" …" if count > 4 else ""),
                     found=f"`{written}.{part}`")
        return part_ref(source, part)

    def output_count(self, source: str) -> int | None:
        """How many parts node `source` has; None for a node with one output."""
        node = self.built.nodes.get(source)
        if node is None or not node.is_op or OPS[node.op].outputs is None:
            return None
        return OPS[node.op].outputs(node.args)

    def node_inputs(self, op, sources: list[str], mark: Mark, ctx: Ctx) -> tuple[tuple[str, ...], tuple]:
        """A node's inputs and the part it reads of each (see ir.Node), checking that a node with several outputs
        is read part by part and that a learnable tensor (no batch dimension) only feeds an op that broadcasts it
        against a batched input.  `op` None: the network's output."""
        inputs, parts = [], []
        for source in sources:
            node, part = (source, None) if source in self.built.nodes or source in self.built.failed else \
                (source.rpartition(".")[0], int(source.rpartition(".")[2]))
            if part is None and self.output_count(node) is not None:
                short = node.rpartition(".")[2]
                ctx.fail(f"`{short}` has {self.output_count(node)} outputs; "
                         + ("the network's output" if op is None else f"`{op.name}`") + " must read one of them",
                         mark, expected=f"`from: {short}.0` … `from: {short}.{self.output_count(node) - 1}`",
                         found=f"`{short}` (all its parts)", hint="name the chunk and read its parts with `from:`")
            inputs.append(node)
            parts.append(part)
        tensors = [s for s in inputs if s in self.built.nodes and self.built.nodes[s].op == "parameter"]
        if tensors and (op is None or not op.broadcasts or len(tensors) == len(inputs)):
            short = tensors[0].rpartition(".")[2]
            ctx.fail(f"the learnable tensor `{short}` has no batch dimension, so "
                     + ("it cannot be the network's output" if op is None else f"`{op.name}` cannot read it"
                        if not op.broadcasts else f"`{op.name}` must also read a tensor that has one"), mark,
                     expected="an elementwise merge (`mul`, `add`) of the tensor with a batched one",
                     found=", ".join(f"`{s.rpartition('.')[2]}`" for s in inputs) if op else f"`{short}`",
                     hint="`mul: {from: [" + short + ", x]}` scales x by it")
        return tuple(inputs), (tuple(parts) if any(p is not None for p in parts) else ())

    # ── ops and templates ─────────────────────────────────────────────────────────────────────────────────────
    def op(self, name: str, args: Mapping[str, Arg], mark: Mark, ctx: Ctx, path, sources: list[str]) -> str:
        op = OPS[name]
        checked = self.op_args(op, args, mark, ctx, sources[0])
        if len(sources) < op.min_inputs:
            ctx.fail(f"`{name}` needs at least {op.min_inputs} inputs", mark,
                     hint="give branches (a list) or `from: [a, b]`")
        if op.max_inputs and len(sources) > op.max_inputs:
            ctx.fail(f"`{name}` takes one input, but `from:` names {len(sources)}", mark)
        node = self.paths.claim(path, mark, ctx)
        if not op.reads_input:
            sources = []
        inputs, parts = self.node_inputs(op, sources, mark, ctx)
        if any(s in self.built.failed for s in inputs):
            self.built.failed.add(node)
            raise Failed
        if len(self.built.nodes) >= MAX_NODES:
            ctx.fail(f"the network has more than {MAX_NODES:,} nodes", mark)
        self.built.nodes[node] = Node(node, name, MappingProxyType(checked), inputs, mark, ctx.lint_ignore, parts)
        return node

    def op_args(self, op, args: Mapping[str, Arg], mark: Mark, ctx: Ctx, inp: str) -> dict:
        """The op's arguments evaluated and checked; every mistake among them is reported, in source order (the
        missing ones at the item, which precedes its arguments)."""
        checked, mistakes = defaults(op), Mistakes()
        missing = [k for k, p in op.params.items() if p.required and k not in args]
        if missing:
            example = ", ".join(f"{k}: …" for k in missing)
            mistakes.add(ctx.error(f"{op.name}: missing required param{'s' if len(missing) > 1 else ''} "
                                   + ", ".join(f"`{k}`" for k in missing), mark,
                                   expected=f"`{op.name}: {{{example}}}`"))
        for key, arg in args.items():
            with mistakes.record():
                try:
                    checked[key] = check_arg(op.params[key], self.values.value(arg.value, ctx, inp))
                except ArgError as err:
                    ctx.fail(f"{op.name}: invalid `{key}`", arg.value.mark, expected=err.expected, found=err.found,
                             hint=op.params[key].doc)
        mistakes.check()
        return checked

    def call(self, template: Template, args: Mapping[str, Arg], mark: Mark, ctx: Ctx, path, sources: list[str]) -> str:
        if len(ctx.calls) >= MAX_TEMPLATE_DEPTH:
            ctx.fail(f"templates nested more than {MAX_TEMPLATE_DEPTH} deep", mark)
        if any(t.name == template.name for t, _ in ctx.calls):
            ctx.fail(f"template `{template.name}` calls itself", mark, hint="templates may not be recursive; "
                     "use `repeat` for repeated structure")
        if len(sources) > 1:
            ctx.fail(f"template `{template.name}` takes one input, but `from:` names several", mark)
        values = self.template_args(template, args, mark, ctx, sources[0])
        dotted = self.paths.claim(path, mark, ctx)
        self.built.scopes[dotted] = Scope(dotted, "template", mark, template.name, MappingProxyType(values),
                                          template.mark)
        inner = Ctx(env=MappingProxyType(values), path=path, block_input=sources[0],
                    calls=ctx.calls + ((template, mark),), lint_ignore=ctx.lint_ignore)
        with self.paths.lent(dotted, mark), self.names.template():  # the body claims the call's path as its scope
            return self._item(template.body, inner, sources[0], 0, path)

    def template_args(self, template: Template, args: Mapping[str, Arg], mark: Mark, ctx: Ctx, inp: str) -> dict:
        """The call's arguments, then the defaults of the params it omits (which may read them), each checked
        against its param's type.  Every mistake is reported, in source order: the missing arguments at the
        call, then the arguments' own; a default that reads a failed argument is not evaluated (its error would
        repeat that one)."""
        where = (Note(f"template `{template.name}` is defined at", template.mark),)
        mistakes, values = Mistakes(), {}
        # A param that an unknown key is a misspelling of (`cc` for `c`) is not reported missing as well, as the
        # schema does for an op's keys.
        meant = {close for key in args if key not in template.params
                 for close in difflib.get_close_matches(key, list(template.params), n=1, cutoff=0.6)}
        for name, param in template.params.items():
            if param.required and name not in args and name not in meant:
                mistakes.add(ctx.error(f"template `{template.name}`: missing argument `{name}` ({show(param.type)})",
                                       mark, expected=f"`{template.name}: {{{name}: …}}`", hint=param.doc or None,
                                       notes=where))
        for key, arg in args.items():
            with mistakes.record():
                if key not in template.params:
                    ctx.fail(f"template `{template.name}` has no param `{key}`", arg.key_mark,
                             expected="one of " + (", ".join(f"`{p}`" for p in template.params) or "(none)"),
                             found=f"`{key}`", hint=did_you_mean(key, template.params), notes=where)
                values[key] = self.typed(template, key, self.values.value(arg.value, ctx, inp), arg.value.mark, ctx,
                                         where)
        failed = {name for name, param in template.params.items() if name in args or param.required} - set(values)
        for name, param in template.params.items():
            if name in args or param.required:
                continue
            with mistakes.record():
                if not (failed and failed & self.values.reads(param.default, ctx)):
                    default = self.values.value(param.default, replace(ctx, env=MappingProxyType(values)), inp)
                    values[name] = self.typed(template, name, default, mark, ctx, where)
            if name not in values:
                failed.add(name)
        mistakes.check()
        return values

    def typed(self, template: Template, name: str, value, mark: Mark, ctx: Ctx, where: tuple[Note, ...]):
        """`value`, if it fits the type of the template's param `name`."""
        param = template.params[name]
        problem = check_type(param.type, value)
        if problem:
            ctx.fail(f"template `{template.name}`: argument `{name}`: {problem}", mark, expected=show(param.type),
                     found=describe(value), notes=where)
        return value


def _first_of_each(errors: list[SpecError]) -> list[SpecError]:
    """One error per (place, message): a mistake inside a template called N times is reported once, with the
    first call's notes, not N times."""
    seen: dict[tuple, SpecError] = {}
    for error in errors:
        seen.setdefault((error.mark, error.message), error)
    return list(seen.values())
