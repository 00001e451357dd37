"""ShapedNetwork → Graphviz diagram (DOT, SVG, PNG, PDF).  Never imports torch.

    digraph = draw_graph(shaped, depth=1)      # a graphviz.Digraph; .source is the DOT text
    write_diagram(digraph, Path("net.svg"))    # runs Graphviz's `dot` for svg/png/pdf

What is drawn comes from `view.build_view`; this module only styles it.  Output is deterministic: the DOT
is generated in network order from names alone, so the same spec always gives the same bytes (and, with the
same Graphviz version, the same SVG).
"""

from __future__ import annotations

import html
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import graphviz

from netspec.backends.draw.view import Cluster, Item, View, build_view, show_shape
from netspec.backends.output import write_atomic
from netspec.ir import ShapedNetwork
from netspec.ops import FAMILIES

FORMATS = ("svg", "png", "pdf", "dot")
RANKDIRS = ("TB", "LR", "BT", "RL")
INSTALL_HINT = ("install Graphviz: `sudo apt-get install graphviz` (Debian/Ubuntu), `brew install graphviz` "
                "(macOS), `conda install graphviz`, or see https://graphviz.org/download/")
FONT = "Helvetica"


@dataclass(frozen=True)
class Style:
    fill: str
    border: str
    shape: str = "box"
    style: str = "rounded,filled"


# Each op family declares its own style and legend text (netspec.ops.FAMILIES); these boxes are no op family:
# the input/output, collapsed blocks and folded repeats.
_NOT_OPS = {"io": (Style("#ffffff", "#222222", style="rounded,bold"), "input / output"),
            "block": (Style("#f4f4f4", "#333333", style="rounded,filled,bold"), "collapsed block")}
STYLES = MappingProxyType({**{f.name: Style(f.fill, f.border, f.shape, f.style) for f in FAMILIES.values()},
                           **{name: style for name, (style, _) in _NOT_OPS.items()}})
FOLDED = Style("#f4f4f4", "#333333", "box3d", "filled")
# The op families in their declared order, then collapsed blocks, then input/output.
LEGEND = (*((f.name, f.legend) for f in FAMILIES.values()),
          *((name, _NOT_OPS[name][1]) for name in ("block", "io")))


class DotMissing(Exception):
    """Graphviz's `dot` is not on PATH."""

    dot_file: Path | None = None  # set by write_diagram: the .dot written instead, if any


class DotFailed(Exception):
    """`dot` ran and failed."""


class DotTimedOut(DotFailed):
    """`dot` ran longer than it was given."""


def draw_graph(shaped: ShapedNetwork, depth: int | None = None, fold: bool = True, rankdir: str = "TB",
               legend: bool = False) -> graphviz.Digraph:
    """The diagram of a shaped network (see view.py for what `depth` and `fold` do)."""
    if rankdir not in RANKDIRS:
        raise ValueError(f"rankdir must be one of {', '.join(RANKDIRS)}, not {rankdir!r}")
    return to_digraph(build_view(shaped, depth, fold), rankdir, legend)


def to_digraph(view: View, rankdir: str = "TB", legend: bool = False) -> graphviz.Digraph:
    dot = graphviz.Digraph(view.name)
    dot.attr("graph", rankdir=rankdir, label=_html(view.title, (), 14), labelloc="t", fontname=FONT,
             nodesep="0.2", ranksep="0.3", ordering="out", newrank="true")
    dot.attr("node", fontname=FONT, fontsize="10", shape="box", margin="0.12,0.04", height="0.3")
    dot.attr("edge", fontname=FONT, fontsize="8", fontcolor="#555555", color="#666666", arrowsize="0.6")
    _emit(dot, None, _tree(view))
    for edge in view.edges:
        dot.edge(edge.src, edge.dst, label=show_shape(edge.shape))
    if legend:
        _legend(dot, {item.family for item in view.items})
    return dot


def _tree(view: View) -> dict[str | None, list]:
    """Cluster id (None: the top) → its items and child clusters, in order of first appearance."""
    clusters = {c.id: c for c in view.clusters}
    children: dict[str | None, list] = {None: []}

    def place(cluster_id: str | None, entry) -> None:
        if cluster_id is not None and cluster_id not in children:
            children[cluster_id] = []
            place(clusters[cluster_id].parent, clusters[cluster_id])
        children[cluster_id].append(entry)

    for item in view.items:
        place(item.cluster, item)
    return children


def _emit(graph: graphviz.Digraph, key: str | None, children: dict) -> None:
    for entry in children[key]:
        if isinstance(entry, Item):
            _node(graph, entry)
            continue
        sub = graphviz.Digraph(entry.id)
        sub.attr(**_cluster_attrs(entry))
        _emit(sub, entry.id, children)
        graph.subgraph(sub)


def _node(graph: graphviz.Digraph, item: Item) -> None:
    style = FOLDED if item.count > 1 else STYLES[item.family]
    attrs = dict(label=_html(item.title, item.lines), shape=style.shape, style=style.style,
                 fillcolor=style.fill, color=style.border, tooltip=item.tooltip)
    if item.family == "merge":
        attrs.update(fontsize="8", height="0.2", width="0.3", margin="0.04,0.01")
    graph.node(item.id, **attrs)


def _cluster_attrs(cluster: Cluster) -> dict[str, str]:
    attrs = dict(label=_html(cluster.title, cluster.lines, align="left"), labeljust="l", fontname=FONT, fontsize="10",
                 style="rounded", color="#999999")
    if cluster.style == "block":
        attrs.update(style="rounded,filled", fillcolor="#fbfbfb")
    elif cluster.style == "group":
        attrs.update(style="rounded,dashed")
    else:
        attrs.update(style="rounded,filled,bold", fillcolor="#f1f1f1", color="#333333", penwidth="2")
    return attrs


def _legend(dot: graphviz.Digraph, families: set[str]) -> None:
    sub = graphviz.Digraph("cluster_legend")
    sub.attr(label=_html("legend", ()), labeljust="l", style="rounded", color="#999999", fontname=FONT,
             fontsize="10")
    shown = [(family, text) for family, text in LEGEND if family in families]
    for family, text in shown:
        style = STYLES[family]
        sub.node(f"legend/{family}", label=_html(text, ()), shape=style.shape, style=style.style,
                 fillcolor=style.fill, color=style.border)
    for (a, _), (b, _) in zip(shown, shown[1:]):
        sub.edge(f"legend/{a}", f"legend/{b}", style="invis")
    dot.subgraph(sub)


def _html(title: str, lines: tuple[str, ...], size: int | None = None, align: str | None = None) -> str:
    """A Graphviz HTML-like label: the title, then smaller grey detail lines.  Text is escaped, so nothing a
    spec says (a template argument) can inject markup."""
    head = html.escape(title)
    if size:
        head = f'<font point-size="{size}">{head}</font>'
    br = f'<br align="{align}"/>' if align else "<br/>"
    rest = "".join(f'{br}<font point-size="8" color="#444444">{html.escape(line)}</font>' for line in lines)
    return f"<{head}{rest}{br if align else ''}>"


# ── files ─────────────────────────────────────────────────────────────────────────────────────────────────────

def format_of(path: Path) -> str:
    """The output format picked by the file's suffix (ValueError for anything else)."""
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise ValueError(f"{path}: the suffix picks the format: " + ", ".join(f".{f}" for f in FORMATS))
    return fmt


def render(source: str, fmt: str, timeout: float | None = None) -> bytes:
    """DOT text → image bytes through Graphviz's `dot` (DotMissing when it is not installed; DotTimedOut when
    it runs longer than `timeout` seconds, after which it is stopped)."""
    exe = shutil.which("dot")
    if exe is None:
        raise DotMissing(INSTALL_HINT)
    try:
        proc = subprocess.run([exe, f"-T{fmt}"], input=source.encode("utf-8"), capture_output=True, check=False,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        raise DotTimedOut(f"stopped after {timeout:g} s") from None
    if proc.returncode != 0:
        raise DotFailed(proc.stderr.decode("utf-8", "replace").strip() or f"dot exited with {proc.returncode}")
    return proc.stdout


def write_diagram(digraph: graphviz.Digraph, out: Path, timeout: float | None = None) -> Path:
    """Writes `out` in the format its suffix names (atomically: never half a file; CannotWrite when it cannot).
    When `dot` is missing, writes the DOT beside it (same name, .dot) unless that file exists, and raises
    DotMissing with `.dot_file` set to the file written (None when it already existed and was left alone)."""
    fmt = format_of(out)
    source = digraph.source.encode("utf-8")
    if fmt == "dot":
        write_atomic(out, source)
        return out
    try:
        data = render(digraph.source, fmt, timeout)
    except DotMissing as err:
        fallback = out.with_suffix(".dot")
        err.dot_file = fallback if write_atomic(fallback, source, overwrite=False) else None
        raise
    write_atomic(out, data)
    return out
