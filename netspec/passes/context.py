"""What the expander carries down the items: the evaluation context, failures, and the work budget.

A mistake is raised as `Failed` carrying its SpecError (with the template calls it sits in as notes); the item
walker records it and goes on with the next independent item.  An item with several checks of its own (its
arguments) collects them in `Mistakes` and fails once with all of them.  `TooBig` stops everything.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, Mapping, NoReturn

from netspec.errors import Mark, Note, SpecError
from netspec.frontend.syntax import Template

MAX_NODES = 10_000             # op nodes per network; real CNNs have a few hundred to a few thousand
MAX_TEMPLATE_DEPTH = 64
MAX_STEPS = 2 * MAX_NODES      # items and repeat iterations expanded, built or not (see `Budget.step`)
MAX_SCOPE_DEPTH = 100          # nested scopes (seqs, branches, calls): Python's recursion limit is ~7 frames each
MAX_NOTES = 8                  # template-call notes shown under one error
MAX_EVALUATION = 200_000       # expression nodes evaluated per network (each expression has ≤ 200): 10,000 calls
                               # of a 200-node expression took 2 s; the most the zoo needs is 748 (resnet50)


class Failed(Exception):
    """An item cannot go on: `errors` are its mistakes, none when it depends on one already recorded."""

    def __init__(self, *errors: SpecError):
        super().__init__(*errors)
        self.errors = errors


class TooBig(Failed):
    """A work budget ran out: everything stops."""


class Mistakes:
    """The mistakes of one item's checks, each recorded as it is found, so that the item fails once (`check`)
    with all of them rather than with the first."""

    def __init__(self):
        self.errors: list[SpecError] = []
        self.failed = False

    def add(self, error: SpecError) -> None:
        self.errors.append(error)
        self.failed = True

    @contextmanager
    def record(self) -> Iterator[None]:
        """Runs one check, recording the `Failed` it raises (an error, or none when it read a failed value)
        instead of passing it on; a budget running out (TooBig) still stops everything."""
        try:
            yield
        except TooBig:
            raise
        except Failed as failed:
            self.errors += failed.errors
            self.failed = True

    def check(self) -> None:
        """Fails the item if any check failed."""
        if self.failed:
            raise Failed(*self.errors)


@dataclass(frozen=True)
class Ctx:
    """Where an item is expanded: the names expressions see, its scope path, its block's input, the template
    calls it sits in (innermost last)."""

    env: Mapping[str, object]
    path: tuple[str, ...]
    block_input: str
    calls: tuple[tuple[Template, Mark], ...] = ()
    lint_ignore: frozenset[str] = frozenset()   # lint rules silenced by a `lint:` on this item or one around it

    def error(self, message: str, mark: Mark, notes: tuple[Note, ...] = (), **fields) -> SpecError:
        """The caller's own notes ("first used at", "defined at") first; the template call chain follows."""
        calls = tuple(Note(f"in template `{t.name}` ({t.mark}), called at", call) for t, call in reversed(self.calls))
        if len(calls) > MAX_NOTES:  # a 64-deep chain would bury the message: keep both ends
            calls = calls[:MAX_NOTES - 2] + (Note(f"… {len(calls) - MAX_NOTES + 1} more template calls …"),) + calls[-1:]
        return SpecError(message, mark, notes=tuple(notes) + calls, **fields)

    def fail(self, message: str, mark: Mark, notes: tuple[Note, ...] = (), **fields) -> NoReturn:
        raise Failed(self.error(message, mark, notes, **fields))


class Budget:
    """The expansion's work: items and repeat iterations expanded, and expression nodes evaluated."""

    def __init__(self):
        self.steps = 0
        self.evaluated = 0

    def step(self, mark: Mark, ctx: Ctx) -> None:
        """Counts one item or iteration.  Nested repeats, or templates that call others twice, can ask for
        billions of steps that build no node (empty seqs), which the node limit would never see."""
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise TooBig(ctx.error(f"the spec expands to more than {MAX_STEPS:,} items and repeat iterations", mark,
                                   hint="nested `repeat`s and templates multiply; a real network needs a few "
                                        "thousand"))

    def charge(self, nodes: int, mark: Mark, ctx: Ctx) -> None:
        """Counts expression work as `step` counts items: past MAX_EVALUATION, everything stops."""
        self.evaluated += nodes
        if self.evaluated > MAX_EVALUATION:
            raise TooBig(ctx.error(f"the spec's expressions take more than {MAX_EVALUATION:,} steps to evaluate",
                                   mark, hint="a long expression in a large `repeat`, or in a template called many "
                                              "times, is evaluated each time; compute it once as a param"))
