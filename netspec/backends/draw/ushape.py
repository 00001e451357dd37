"""Encoder–decoder networks (U-Net and the like): which nodes are the way back up, so the diagram reads as a U.

A network is drawn as a U when its feature maps shrink to a smallest size and grow again to an output that is
itself a feature map larger than that smallest size, and some node on the way up reads a node from the way down
(a skip connection).  The *turn* is the last node at the smallest size (in build order); every node after it is
on the way up.  `dot.py` then draws the way up rising beside the way down (its edges point back, so Graphviz ranks
them upwards), and each skip edge level (`constraint=false` plus a same-rank constraint): every coordinate is still
Graphviz's.  Nothing here looks at names, so any spec that has this shape gets the layout.
"""

from __future__ import annotations

from dataclasses import dataclass

from netspec.ir import OUTPUT, ShapedNetwork


@dataclass(frozen=True)
class UShape:
    turn: str                   # the last node at the smallest size: the bottom of the U
    up: frozenset[str]          # the nodes after it (the output included): the way up


def area(shape) -> int | None:
    """Height × width of a C×H×W feature map; None for anything else (a vector, a sequence)."""
    return shape[1] * shape[2] if len(shape) == 3 else None


def find_ushape(shaped: ShapedNetwork) -> UShape | None:
    order = list(shaped.network.nodes)
    areas = {name: area(shaped.facts[name].shape) for name in order}
    smallest = min((a for a in areas.values() if a is not None), default=None)
    out = areas[OUTPUT]
    if smallest is None or out is None or out <= smallest:
        return None
    turn = max(i for i, name in enumerate(order) if areas[name] == smallest)
    up = frozenset(order[turn + 1:])
    down = set(order[:turn])
    nodes = shaped.network.nodes
    if not any(src in down for name in up for src in nodes[name].inputs):
        return None  # no skip connection: an hourglass, not a U
    return UShape(order[turn], up)
