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

from netspec.backends.draw.view import Cluster, Edge, Item, View, build_view, show_shape
from netspec.backends.output import write_atomic
from netspec.ir import ShapedNetwork
from netspec.ops import FAMILIES

FORMATS = ("svg", "png", "pdf", "dot")
RANKDIRS = ("TB", "LR", "BT", "RL")
INSTALL_HINT = ("install Graphviz: `sudo apt-get install graphviz` (Debian/Ubuntu), `brew install graphviz` "
                "(macOS), `conda install graphviz`, or see https://graphviz.org/download/")
FONT = "Helvetica"
PNG_DPI = 144  # Graphviz's default, 96, gives 8-pt edge labels about 11 px high: too small to read
THEMES = ("light", "dark")


@dataclass(frozen=True)
class Theme:
    """The colours around the boxes (boxes keep their family's colours: dark text on a light fill reads on
    either background)."""

    background: str
    text: str                  # titles of the graph and the clusters
    detail: str                # the smaller grey lines under a cluster's title
    edge: str
    edge_text: str
    cluster: str               # a cluster's border
    block_fill: str            # a template call's cluster
    fold_fill: str
    fold_border: str


_THEMES = {"light": Theme("", "#000000", "#444444", "#666666", "#555555", "#999999", "#fbfbfb", "#f1f1f1",
                          "#333333"),
           "dark": Theme("#1e1e1e", "#e6e6e6", "#b8b8b8", "#9a9a9a", "#c8c8c8", "#6a6a6a", "#262626", "#2c2c2c",
                         "#d0d0d0")}


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
               legend: bool = False, theme: str = "light") -> graphviz.Digraph:
    """The diagram of a shaped network (see view.py for what `depth` and `fold` do)."""
    if rankdir not in RANKDIRS:
        raise ValueError(f"rankdir must be one of {', '.join(RANKDIRS)}, not {rankdir!r}")
    return to_digraph(build_view(shaped, depth, fold), rankdir, legend, theme)


@dataclass(frozen=True)
class FanOut:
    """A tensor read by several boxes: drawn as one labelled trunk into a small point, then one unlabelled edge
    to each reader, so its shape is written once."""

    id: str                    # "<src>/fan/<shape>", a point node
    src: str
    shape: tuple[int, ...]
    edges: tuple[Edge, ...]
    cluster: str | None        # the innermost cluster holding the source and every reader


def fan_outs(view: View) -> dict[Edge, FanOut]:
    """Each edge that belongs to a fan-out → its fan-out (edges from one box with one shape to 2+ boxes)."""
    groups: dict[tuple, list[Edge]] = {}
    for edge in view.edges:
        groups.setdefault((edge.src, edge.shape), []).append(edge)
    parents = {c.id: c.parent for c in view.clusters}
    where = {item.id: item.cluster for item in view.items}
    found = {}
    for (src, shape), edges in groups.items():
        if len(edges) < 2:
            continue
        fan = FanOut(f"{src}/fan/{show_shape(shape)}", src, shape, tuple(edges),
                     _common_cluster([where[src], *(where[e.dst] for e in edges)], parents))
        found.update({edge: fan for edge in edges})
    return found


def _common_cluster(clusters: list[str | None], parents: dict[str, str | None]) -> str | None:
    def chain(cluster):
        path = []
        while cluster is not None:
            path.append(cluster)
            cluster = parents[cluster]
        return path[::-1]

    chains = [chain(c) for c in clusters]
    common = None
    for level in zip(*chains):
        if any(c != level[0] for c in level):
            break
        common = level[0]
    return common


def to_digraph(view: View, rankdir: str = "TB", legend: bool = False, theme: str = "light",
               ids: dict[str, str] | None = None) -> graphviz.Digraph:
    """The DOT of a view.  `ids`: box or cluster id → an `id` attribute for it (the viewer finds them in the
    SVG by it)."""
    if theme not in THEMES:
        raise ValueError(f"theme must be one of {', '.join(THEMES)}, not {theme!r}")
    colours = _THEMES[theme]
    dot = graphviz.Digraph(view.name)
    dot.attr("graph", rankdir=rankdir, label=_html(view.title, (), 14), labelloc="t", fontname=FONT,
             nodesep="0.2", ranksep="0.3", ordering="out", newrank="true",
             **({"bgcolor": colours.background, "fontcolor": colours.text} if colours.background else {}))
    dot.attr("node", fontname=FONT, fontsize="10", shape="box", margin="0.12,0.04", height="0.3")
    dot.attr("edge", fontname=FONT, fontsize="8", fontcolor=colours.edge_text, color=colours.edge,
             arrowsize="0.6")
    fans = fan_outs(view)
    _emit(dot, None, _tree(view, fans), colours, ids or {})
    drawn: set[str] = set()
    for edge in view.edges:
        fan = fans.get(edge)
        if fan is None:
            _edge(dot, edge.src, edge.dst, edge.role, label=show_shape(edge.shape))
            continue
        if fan.id not in drawn:
            drawn.add(fan.id)
            rising = all(e.role == "up" for e in fan.edges)
            _edge(dot, fan.src, fan.id, "up" if rising else "down", label=show_shape(fan.shape), arrowhead="none")
        _edge(dot, fan.id, edge.dst, edge.role)
    if legend:
        _legend(dot, {item.family for item in view.items}, colours)
    return dot


def _edge(dot: graphviz.Digraph, src: str, dst: str, role: str, **attrs) -> None:
    """An edge by its role in the layout (view.Edge.role): a rising edge is written backwards with its arrow
    turned (Graphviz ranks its head above its tail); a skip edge leaves the ranks alone and its ends share one."""
    if role == "up":
        dot.edge(dst, src, dir="back", **({"arrowtail": attrs.pop("arrowhead")} if "arrowhead" in attrs else {}),
                 **attrs)
        return
    if role == "skip":
        attrs["constraint"] = "false"
        with dot.subgraph() as same:
            same.attr(rank="same")
            same.node(src)
            same.node(dst)
    dot.edge(src, dst, **attrs)


def _tree(view: View, fans: dict[Edge, FanOut]) -> dict[str | None, list]:
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
    for fan in dict.fromkeys(fans.values()):
        place(fan.cluster, fan)
    return children


def _emit(graph: graphviz.Digraph, key: str | None, children: dict, colours: Theme, ids: dict[str, str]) -> None:
    for entry in children[key]:
        if isinstance(entry, Item):
            _node(graph, entry, colours, ids.get(entry.id))
            continue
        if isinstance(entry, FanOut):
            graph.node(entry.id, label="", shape="point", width="0.05", height="0.05", color=colours.edge)
            continue
        sub = graphviz.Digraph(entry.id)
        sub.attr(**_cluster_attrs(entry, colours), **({"id": ids[entry.id]} if entry.id in ids else {}))
        _emit(sub, entry.id, children, colours, ids)
        graph.subgraph(sub)


def _node(graph: graphviz.Digraph, item: Item, colours: Theme, element_id: str | None) -> None:
    style = FOLDED if item.count > 1 else STYLES[item.family]
    attrs = dict(label=_html(item.title, item.lines), shape=style.shape, style=style.style,
                 fillcolor=style.fill, color=style.border, tooltip=item.tooltip)
    if colours.background and "filled" not in style.style:  # unfilled boxes would show black text on the dark
        attrs["style"] += ",filled"
    if element_id is not None:  # the viewer shows its own tooltips
        del attrs["tooltip"]
        attrs["id"] = element_id
    if item.family == "merge":
        attrs.update(fontsize="8", height="0.2", width="0.3", margin="0.04,0.01")
    graph.node(item.id, **attrs)


def _cluster_attrs(cluster: Cluster, colours: Theme) -> dict[str, str]:
    attrs = dict(label=_html(cluster.title, cluster.lines, align="left", detail=colours.detail), labeljust="l",
                 fontname=FONT, fontsize="10", style="rounded", color=colours.cluster)
    if colours.text != "#000000":
        attrs.update(fontcolor=colours.text)
    if cluster.style == "block":
        attrs.update(style="rounded,filled", fillcolor=colours.block_fill)
    elif cluster.style == "group":
        attrs.update(style="rounded,dashed")
    else:
        attrs.update(style="rounded,filled,bold", fillcolor=colours.fold_fill, color=colours.fold_border,
                     penwidth="2")
    return attrs


def _legend(dot: graphviz.Digraph, families: set[str], colours: Theme) -> None:
    sub = graphviz.Digraph("cluster_legend")
    sub.attr(label=_html("legend", ()), labeljust="l", style="rounded", color=colours.cluster, fontname=FONT,
             fontsize="10", **({"fontcolor": colours.text} if colours.text != "#000000" else {}))
    shown = [(family, text) for family, text in LEGEND if family in families]
    for family, text in shown:
        style = STYLES[family]
        filled = style.style if not colours.background or "filled" in style.style else style.style + ",filled"
        sub.node(f"legend/{family}", label=_html(text, ()), shape=style.shape, style=filled,
                 fillcolor=style.fill, color=style.border)
    for (a, _), (b, _) in zip(shown, shown[1:]):
        sub.edge(f"legend/{a}", f"legend/{b}", style="invis")
    dot.subgraph(sub)


def _html(title: str, lines: tuple[str, ...], size: int | None = None, align: str | None = None,
          detail: str = "#444444") -> str:
    """A Graphviz HTML-like label: the title, then smaller grey detail lines.  Text is escaped, so nothing a
    spec says (a template argument) can inject markup."""
    head = html.escape(title)
    if size:
        head = f'<font point-size="{size}">{head}</font>'
    br = f'<br align="{align}"/>' if align else "<br/>"
    rest = "".join(f'{br}<font point-size="8" color="{detail}">{html.escape(line)}</font>' for line in lines)
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
    # A bitmap's resolution is set for it alone: in SVG and PDF Graphviz would scale the drawing instead.
    dpi = [f"-Gdpi={PNG_DPI}"] if fmt == "png" else []
    try:
        proc = subprocess.run([exe, f"-T{fmt}", *dpi], input=source.encode("utf-8"), capture_output=True, check=False,
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
