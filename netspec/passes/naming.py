"""Names: the dotted paths nodes and scopes claim, and what `from:` can see.

`Namespace` is the state `from:` reads, made explicit: a stack of frames, one per open seq or branch (innermost
last), each holding the names registered in it so far.  A template's body starts a stack of its own: it sees its
own names and `input`, never its caller's.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator

from netspec.errors import Mark, Note, did_you_mean
from netspec.frontend.grammar import module_attribute
from netspec.ir import INPUT, OUTPUT
from netspec.passes.context import Ctx


@dataclass
class Frame:
    names: dict[str, str] = field(default_factory=dict)     # name → node id, for `from:`
    later: dict[str, Mark] = field(default_factory=dict)    # names declared further down this seq, for a better error
    count: int = 0                                          # the number of the scope's next unnamed item


class Namespace:
    def __init__(self):
        self.frames: list[Frame] = []

    @property
    def top(self) -> Frame:
        return self.frames[-1]

    @contextmanager
    def frame(self) -> Iterator[Frame]:
        """A frame for a seq or branch, open while its items are expanded."""
        self.frames.append(Frame())
        try:
            yield self.frames[-1]
        finally:
            self.frames.pop()

    @contextmanager
    def template(self) -> Iterator[Frame]:
        """A fresh stack with one frame, for a template's body."""
        saved, self.frames = self.frames, []
        try:
            with self.frame() as frame:
                yield frame
        finally:
            self.frames = saved

    def register(self, name: str | None, out: str) -> str:
        """Makes a named item's output reachable by `from:` further down its seq, under its name as evaluated
        (`name: "enc${i}"` registers `enc0`, `enc1`, …)."""
        if name is not None:
            self.top.names[name] = out
        return out

    def find(self, ref: str) -> str | None:
        """The node a visible name stands for, or None."""
        if ref == "input":
            return ref
        return next((frame.names[ref] for frame in reversed(self.frames) if ref in frame.names), None)

    def resolve(self, ref: str, mark: Mark, ctx: Ctx) -> str:
        """The node a `from:` name stands for."""
        if ref == "input":
            return ctx.block_input
        for frame in reversed(self.frames):
            if ref in frame.names:
                return frame.names[ref]
        later = next((f.later[ref] for f in self.frames if ref in f.later), None)
        if later is not None:
            if (later.file, later.line, later.col) <= (mark.file, mark.line, mark.col):
                # Declared but not yet defined, and it starts before this `from:`: the item it is in.
                ctx.fail(f"`from: {ref}` names the item it belongs to", mark,
                         expected="an earlier named node or `input`", found=f"`{ref}`",
                         hint="a node cannot take its own output; name a node before it")
            ctx.fail(f"`from: {ref}` names a node defined later (at {later})", mark,
                     hint="`from:` can only name earlier nodes; move the item or reorder the seq")
        visible = [n for f in self.frames for n in f.names] + ["input"]
        ctx.fail(f"`from:` names an unknown node `{ref}`", mark, expected="an earlier named node or `input`",
                 found=f"`{ref}`", hint=did_you_mean(ref, visible) or "visible here: " + ", ".join(visible))


class Paths:
    """The dotted paths claimed so far (nodes and scopes), each with the mark of its item."""

    def __init__(self):
        self.marks: dict[str, Mark] = {}

    def claim(self, path: tuple[str, ...], mark: Mark, ctx: Ctx) -> str:
        dotted = ".".join(path)
        if dotted in (INPUT, OUTPUT):
            ctx.fail(f"the name `{dotted}` is reserved", mark, hint="choose another name")
        if path and module_attribute(path[-1]):
            name = path[-1]
            ctx.fail(f"the name `{name}` starts with `_`, which PyTorch keeps for a module's own attributes"
                     if name.startswith("_") else f"the name `{name}` is taken by PyTorch: a block of the compiled "
                     f"model is a torch module, whose own `{name}` it would shadow", mark, hint="choose another name")
        if dotted in self.marks:
            ctx.fail(f"duplicate name `{dotted}`", mark, hint="give one of them another `name:`",
                     notes=(Note("first used at", self.marks[dotted]),))
        self.marks[dotted] = mark
        return dotted

    @contextmanager
    def lent(self, dotted: str, mark: Mark) -> Iterator[None]:
        """A template call's path, released while its body item claims the same path for its own scope."""
        self.marks.pop(dotted)
        try:
            yield
        finally:
            self.marks.setdefault(dotted, mark)
