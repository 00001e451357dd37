"""`draw` on big networks: work linear in the network's size, and bounds on what is handed to Graphviz's `dot`.

Work is counted, never timed: the number of Python calls (built-in ones included) that drawing makes, for a
network of N blocks and one of 2N.  Linear work doubles; the old fold detection, which compared sibling
scopes by scanning every scope of the network, quadrupled.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from netspec.backends.draw.dot import draw_graph
from netspec.backends.draw.folding import Run
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
