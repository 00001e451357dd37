"""What the docs show a command printing is what it prints.

In README.md, docs/tutorial.md and docs/spec-format.md, a fenced block line `$ netspec ARGS` followed by lines
of output is run (from the repository root, as the docs say) and its output compared with them: exactly, or —
when the output has lines that are `...` — each run of shown lines must appear, in order, with any lines in
place of each `...`; such a block must say in the text before it that it is shortened.  Output blocks without
a command (excerpts of an earlier step's summary or error) must say so too.  The tutorial's first step runs on
the skeleton file it shows, written to a temporary folder.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import REPO, run_cli

DOCS = [REPO / "README.md", REPO / "docs" / "tutorial.md", REPO / "docs" / "spec-format.md"]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", flags=re.S | re.M)
GAP = "..."


@dataclass(frozen=True)
class Shown:
    doc: Path
    line: int            # of the command, 1-based, in the doc
    command: str
    output: tuple[str, ...]
    prose: str           # the text between the previous block and this one

    @property
    def shortened(self) -> bool:
        return GAP in (line.strip() for line in self.output)

    def __str__(self) -> str:
        return f"{self.doc.relative_to(REPO)}:{self.line}: $ {self.command}"


def blocks(doc: Path):
    """(language, body, first line number of the body, prose before the block) of each fenced block."""
    text, end = doc.read_text(encoding="utf-8"), 0
    for match in FENCE.finditer(text):
        yield match.group(1), match.group(2), text.count("\n", 0, match.start(2)) + 1, text[end:match.start()]
        end = match.end()


def shown_outputs(doc: Path) -> list[Shown]:
    found = []
    for language, body, first, prose in blocks(doc):
        lines = body.splitlines()
        starts = [i for i, line in enumerate(lines) if line.startswith("$ ")]
        for i, start in enumerate(starts):
            stop = starts[i + 1] if i + 1 < len(starts) else len(lines)
            output = lines[start + 1:stop]
            while output and not output[-1].strip():
                output.pop()
            command = lines[start][2:].split("  #")[0].strip()
            if output and command.startswith("netspec "):
                found.append(Shown(doc, first + start, command, tuple(output), prose))
    return found


SHOWN = [shown for doc in DOCS for shown in shown_outputs(doc)]


def test_the_docs_show_the_outputs_this_test_checks():
    """The parser finds every example it is meant to check (an example it missed would go unchecked)."""
    assert {(s.doc.name, s.command) for s in SHOWN} >= {
        ("README.md", "netspec summary googlenet --depth 0"),
        ("README.md", "netspec validate tests/bad_specs/unknown_op.yaml"),
        ("spec-format.md", "netspec validate tests/bad_specs/two_errors.yaml"),
        ("tutorial.md", "netspec summary mobilenet_tiny.yaml"),
        ("tutorial.md", "netspec summary docs/tutorial/mobilenet_tiny.yaml --depth 2"),
        ("tutorial.md", "netspec validate docs/tutorial/mobilenet_tiny.yaml"),
    }


def tutorial_skeleton(folder: Path) -> Path:
    """The tutorial's first step: the skeleton network, the first yaml block of docs/tutorial.md."""
    body = next(body for language, body, _, _ in blocks(REPO / "docs" / "tutorial.md") if language == "yaml")
    (folder / "mobilenet_tiny.yaml").write_text(body, encoding="utf-8")
    return folder


@pytest.mark.parametrize("shown", SHOWN, ids=str)
def test_a_shown_output_is_the_commands_real_output(shown, tmp_path):
    args = shlex.split(shown.command)[1:]
    run = run_cli(*args, cwd=tutorial_skeleton(tmp_path) if "mobilenet_tiny.yaml" in args else REPO)
    real = (run.stdout + run.stderr).rstrip("\n").splitlines()
    if not shown.shortened:
        assert list(shown.output) == real, f"{shown} prints:\n" + "\n".join(real)
        return
    assert "shortened" in shown.prose, f"{shown}: say before the block that its output is shortened"
    assert_in_order(shown, real)


def assert_in_order(shown: Shown, real: list[str]) -> None:
    """Each run of shown lines between `...` lines is a run of real lines, in order; the first run starts the
    real output and the last one ends it, unless a `...` stands before or after them."""
    runs, current = [], []
    for line in shown.output:
        if line.strip() == GAP:
            runs.append(current)
            current = []
        else:
            current.append(line)
    runs.append(current)
    at = 0
    for index, run in enumerate(runs):
        if not run:
            continue
        starts = [i for i in range(at, len(real) - len(run) + 1) if real[i:i + len(run)] == run]
        assert starts, f"{shown}: these lines are not in its output (in this order):\n" + "\n".join(run)
        if index == 0:
            assert starts[0] == 0, f"{shown}: its output starts with {real[0]!r}"
        at = starts[0] + len(run)
    if runs[-1]:
        assert at == len(real), f"{shown}: its output goes on after {runs[-1][-1]!r}"


def test_an_output_excerpt_without_its_command_says_it_is_shortened():
    """Errors and summary rows shown without a command (an earlier step of the tutorial) leave lines out."""
    unlabelled = []
    for doc in DOCS:
        for language, body, first, prose in blocks(doc):
            lines = body.splitlines()
            if language in ("", "console") and not any(line.startswith("$ ") for line in lines) and \
                    any(": error: " in line or line.strip() == GAP for line in lines):
                if "shortened" not in prose:
                    unlabelled.append(f"{doc.relative_to(REPO)}:{first}")
    assert not unlabelled
