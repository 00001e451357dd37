"""A training UI for tests: requests a stop (as Ctrl-C does) at the `steps`-th check (one check per step on one
process; under DDP rank 0's request stops every rank), and keeps the messages a run prints."""

from __future__ import annotations

from netspec.train import run


class StopAfter(run.UI):
    def __init__(self, steps: int):
        self.left, self.messages = steps, []

    def stop_requested(self) -> bool:
        self.left -= 1
        return self.left <= 0

    def message(self, text: str) -> None:
        self.messages.append(text)
