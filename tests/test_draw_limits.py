"""`draw` on big networks: work linear in the network's size, and bounds on what is handed to Graphviz's `dot`.

Work is counted, never timed: the number of Python calls (built-in ones included) that drawing makes, for a
network of N blocks and one of 2N.  Linear work doubles; the old fold detection, which compared sibling
scopes by scanning every scope of the network, quadrupled.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from netspec import cli
from netspec.backends.draw import dot as draw_dot
from netspec.backends.draw.dot import draw_graph
from netspec.backends.draw.folding import Run
from netspec.cli import draw as draw_cli_module
from netspec.pipeline import shaped_network


def repeat_spec(folder: Path, n: int) -> Path:
    """A repeat of n identical scopes side by side: n siblings for fold detection to compare."""
    path = folder / f"rep{n}.yaml"
    path.write_text(f"netspec: 1\nname: rep{n}\ninput: [4, 4, 4]\nbody:\n  - {{repeat: {n}, seq: [conv: {{out: 4, kernel: 1}}, relu]}}\n"
                    "  - flatten\n", encoding="utf-8")
    return path


def calls_to_draw(path: Path, **options) -> int:
    """Python and built-in function calls made while drawing an already shaped network."""
    shaped = shaped_network(path)
    count = 0

    def profile(frame, event, arg):
        nonlocal count
        if event in ("call", "c_call"):
            count += 1

    sys.setprofile(profile)
    try:
        draw_graph(shaped, **options).source
    finally:
        sys.setprofile(None)
    return count


@pytest.mark.parametrize("options", [{}, {"fold": False}], ids=["fold", "no-fold"])
def test_drawing_work_grows_linearly_with_the_number_of_sibling_blocks(tmp_path, options):
    small = calls_to_draw(repeat_spec(tmp_path, 300), **options)
    large = calls_to_draw(repeat_spec(tmp_path, 600), **options)
    assert large / small < 2.3, (small, large)  # the quadratic fold detection gave 3.4


def test_a_fold_run_is_hashed_without_looking_at_its_paths():
    """The view keys dicts by run for every edge: hashing all of a run's paths each time was quadratic."""
    hashed = 0

    class Path_(str):
        def __hash__(self):
            nonlocal hashed
            hashed += 1
            return str.__hash__(self)

    run = Run(tuple(Path_(f"blocks.{i}") for i in range(1000)))
    table = {run: 0}
    assert table[run] == 0 and hashed == 0


# ── what is handed to `dot` ───────────────────────────────────────────────────────────────────────────────────

def draw_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(["draw", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_a_diagram_of_more_boxes_than_dot_is_given_is_refused_with_a_depth_that_fits(tmp_path, capsys,
                                                                                      monkeypatch):
    spec = repeat_spec(tmp_path, draw_cli_module.MAX_BOXES // 2 + 1)  # two ops each: over the default limit
    rendered = []
    monkeypatch.setattr(draw_dot, "render", lambda *a, **k: rendered.append(a) or b"<svg/>")
    code, _, err = draw_cli(capsys, str(spec), "--no-fold", "-o", str(tmp_path / "net.svg"))
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith(f"netspec: error: the diagram has {draw_cli_module.MAX_BOXES + 5:,} boxes")
    assert "try --depth 1 (504 boxes)" in err  # the deepest that fits: the repeat opened, its iterations boxed
    assert rendered == [] and not (tmp_path / "net.svg").exists()
    # dot never sees a .dot file or stdout: those are not limited
    assert draw_cli(capsys, str(spec), "--no-fold", "-o", str(tmp_path / "net.dot"))[0] == 0
    assert draw_cli(capsys, str(spec), "--no-fold")[1].startswith("digraph")
    # folded, the same network is small; --max-boxes moves the limit
    assert draw_cli(capsys, str(spec), "-o", str(tmp_path / "net.svg"))[0] == 0 and len(rendered) == 1
    code, _, err = draw_cli(capsys, "lenet", "--max-boxes", "5", "-o", str(tmp_path / "lenet.svg"))
    assert code == 2 and "more than `dot` is given (--max-boxes 5)" in err


@pytest.mark.skipif(os.name != "posix", reason="a shell script stands in for dot")
def test_dot_is_stopped_at_the_time_limit_with_one_line_and_exit_1(tmp_path, capsys, monkeypatch):
    slow = tmp_path / "dot"
    slow.write_text("#!/bin/sh\nexec sleep 30\n")
    slow.chmod(0o755)
    monkeypatch.setattr(draw_dot.shutil, "which", lambda name: str(slow))
    code, _, err = draw_cli(capsys, "lenet", "--timeout", "0.3", "-o", str(tmp_path / "net.svg"))
    assert code == 1 and err.count("\n") == 1, err
    assert err.startswith("netspec: dot did not finish") and "--timeout" in err
    assert not (tmp_path / "net.svg").exists()


@pytest.mark.parametrize("flag, value", [("--max-boxes", "0"), ("--timeout", "0"), ("--timeout", "nan")])
def test_limits_that_allow_nothing_are_usage_errors(capsys, flag, value):
    code, _, err = draw_cli(capsys, "lenet", flag, value, "-o", "never.svg")
    assert code == 2 and err.startswith(f"netspec: error: {flag} must be")


# ── files nobody asked for, and the input ─────────────────────────────────────────────────────────────────────

def test_without_dot_an_existing_dot_file_is_left_alone_and_the_message_says_so(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(draw_dot.shutil, "which", lambda name: None)
    (tmp_path / "net.dot").write_text("mine")
    code, _, err = draw_cli(capsys, "lenet", "-o", str(tmp_path / "net.svg"))
    assert code == 1 and f"{tmp_path / 'net.dot'} exists, so it was not written either" in err.splitlines()[0]
    assert (tmp_path / "net.dot").read_text() == "mine" and not (tmp_path / "net.svg").exists()
