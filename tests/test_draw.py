"""netspec draw: the view (what is drawn), the DOT (golden files), the CLI, rendering, and the gallery.

Golden files: `NETSPEC_UPDATE_GOLDEN=1 pytest tests/test_draw.py` rewrites tests/golden/*.dot; review the diff.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import networkx as nx
import pytest

import netspec
from conftest import REPO, all_specs, spec_params
from netspec import cli
from netspec.backends.draw import dot as draw_dot
from netspec.cli import draw as draw_cli
from netspec.backends.draw.folding import scope_tree
from netspec.backends.draw.view import build_view, show_shape
from netspec.generators.gallery import gallery_files, gallery_specs
from netspec.ir import INPUT, OUTPUT
from netspec.ops import OPS
from netspec.backends.summary import summarize

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden"
GALLERY = ROOT / "docs" / "gallery"
SPECS = all_specs()
FOLD_NET = GOLDEN / "fold_net.yaml"
HAS_DOT = shutil.which("dot") is not None
needs_dot = pytest.mark.skipif(not HAS_DOT, reason="Graphviz's `dot` is not installed (apt-get install graphviz)")
MAGIC = {"svg": b"<svg", "png": b"\x89PNG", "pdf": b"%PDF", "dot": b"digraph"}

_shaped: dict[Path, nx.DiGraph] = {}


def shaped(spec: Path) -> nx.DiGraph:
    if spec not in _shaped:
        _shaped[spec] = netspec.shaped_network(spec)
    return _shaped[spec]


def depths(graph: nx.DiGraph) -> list[int | None]:
    """Full depth, then every depth at which something is collapsed."""
    deepest = max((len(chain) for chain in scope_tree(graph).chains.values()), default=0)
    return [None, *range(deepest)]


def run_cli(*argv: str, capsys) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


every_spec = pytest.mark.parametrize("spec", spec_params())


# ── golden DOT ────────────────────────────────────────────────────────────────────────────────────────────────

@pytest.mark.parametrize("name, spec", [("lenet", ROOT / "specs" / "lenet.yaml"),
                                        ("inception_block", GOLDEN / "inception_block.yaml"),
                                        ("fold_net", FOLD_NET)])
def test_dot_output_equals_the_golden_file(name, spec):
    source = netspec.draw(spec).source
    golden = GOLDEN / f"{name}.dot"
    if os.environ.get("NETSPEC_UPDATE_GOLDEN") and source != golden.read_text(encoding="utf-8"):
        golden.write_text(source, encoding="utf-8")
        pytest.fail(f"rewrote {golden}: review the diff, then run the tests without NETSPEC_UPDATE_GOLDEN")
    assert source == golden.read_text(encoding="utf-8"), f"{golden} differs; NETSPEC_UPDATE_GOLDEN=1 rewrites it"


def test_the_cli_prints_the_same_dot_as_the_python_api(capsys):
    code, out, _ = run_cli("draw", str(GOLDEN / "inception_block.yaml"), "--depth", "0", capsys=capsys)
    assert code == 0
    assert out == netspec.draw(GOLDEN / "inception_block.yaml", depth=0).source


def test_python_api_returns_a_graphviz_digraph_and_applies_param_overrides():
    import graphviz

    digraph = netspec.draw("lenet", num_classes=7)
    assert isinstance(digraph, graphviz.Digraph)
    assert "linear → 7" in digraph.source and "linear → 10" not in digraph.source


def test_dot_bytes_are_identical_across_processes_and_hash_seeds():
    def dot(seed: str) -> bytes:
        code = "import sys, netspec; sys.stdout.write(netspec.draw(sys.argv[1]).source)"
        return subprocess.run([sys.executable, "-c", code, str(FOLD_NET)], capture_output=True, check=True,
                              env={**os.environ, "PYTHONHASHSEED": seed}).stdout

    assert dot("1") == dot("2") != b""


def test_draw_does_not_import_torch(tmp_path):
    code = ("import sys, netspec.cli; rc = netspec.cli.main(sys.argv[1:]); "
            "assert rc == 0, rc; assert 'torch' not in sys.modules, 'draw imported torch'")
    for out in ("net.svg", "net.dot"):
        args = ["draw", str(ROOT / "specs" / "googlenet.yaml"), "-o", str(tmp_path / out), "--depth", "1"]
        if out == "net.svg" and not HAS_DOT:
            continue
        subprocess.run([sys.executable, "-c", code, *args], check=True, capture_output=True)
    subprocess.run([sys.executable, "-c", "import sys, netspec; netspec.draw('googlenet'); "
                    "assert 'torch' not in sys.modules"], check=True, capture_output=True)


# ── what the view shows, for every spec ──────────────────────────────────────────────────────────────────────

@every_spec
def test_at_full_depth_every_op_is_drawn_with_its_op_label_and_param_count(spec):
    graph = shaped(spec)
    view = build_view(graph, fold=False)
    ops = {item.id: item for item in view.items if item.kind == "op"}
    assert set(ops) == {n.name for n in graph.op_nodes()}
    for node, item in ops.items():
        record, params = graph.nodes[node], graph.facts[node].param_count
        assert item.title == OPS[record.op].label(record.args)
        assert item.family == OPS[record.op].family
        assert item.lines == ((f"{params:,} params",) if params else ())
    io = {item.id: item for item in view.items if item.kind == "io"}
    assert io[INPUT].lines == (show_shape(graph.network.input_shape),)
    assert {key: io[key].lines for key in io if key != INPUT} == output_boxes(graph)


def output_boxes(graph) -> dict[str, tuple]:
    """The output boxes a diagram must have: `output`, or one per output named after it, train-only ones marked."""
    outputs = graph.network.output_list()
    if len(outputs) == 1:
        return {OUTPUT: (show_shape(graph.output_shape),)}
    return {f"output/{o.name}": (show_shape(graph.facts[o.node].shape),) + (("train only",) if o.train_only else ())
            for o in outputs}


def output_id(graph, node: str, index: int) -> str:
    """The drawn id of the `index`-th input of node `node` when it is the network's output."""
    outputs = graph.network.output_list()
    return f"output/{outputs[index].name}" if node == OUTPUT and len(outputs) > 1 else node


@every_spec
def test_at_full_depth_every_edge_carries_the_shape_of_its_tensor(spec):
    graph = shaped(spec)
    view = build_view(graph, fold=False)
    expected = {(u, output_id(graph, v, graph.nodes[v].inputs.index(u)), tuple(graph.facts[u].shape))
                for u, v in graph.network.graph.edges}
    assert {(e.src, e.dst, e.shape) for e in view.edges} == expected


@every_spec
def test_depth_n_draws_exactly_the_rows_of_summary_depth_n(spec):
    graph = shaped(spec)
    for depth in depths(graph)[1:]:
        view = build_view(graph, depth, fold=False)
        rows = summarize(graph, depth).rows
        boxes = {item.id.removeprefix("block/") for item in view.items if item.kind == "block"}
        assert boxes == {r.name for r in rows if r.block and r.depth == depth}, depth
        assert {item.id for item in view.items if item.kind == "op"} == {r.name for r in rows if not r.block}


@every_spec
@pytest.mark.parametrize("fold", [True, False], ids=["fold", "no-fold"])
def test_boxes_clusters_and_folds_account_for_every_parameter(spec, fold):
    graph = shaped(spec)
    for depth in depths(graph):
        view = build_view(graph, depth, fold)
        clusters = {c.id: c for c in view.clusters}

        def in_fold(cluster_id):
            while cluster_id is not None:
                if clusters[cluster_id].style == "fold":
                    return True
                cluster_id = clusters[cluster_id].parent
            return False

        outer_folds = [c for c in view.clusters if c.style == "fold" and not in_fold(c.parent)]
        loose = [item for item in view.items if not in_fold(item.cluster)]
        assert sum(c.params for c in outer_folds) + sum(i.params for i in loose) == graph.param_count


@every_spec
@pytest.mark.parametrize("fold", [True, False], ids=["fold", "no-fold"])
def test_every_depth_gives_a_connected_acyclic_diagram_from_input_to_output(spec, fold):
    graph = shaped(spec)
    for depth in depths(graph):
        view = build_view(graph, depth, fold)
        drawn = nx.DiGraph()
        drawn.add_nodes_from(item.id for item in view.items)
        drawn.add_edges_from((e.src, e.dst) for e in view.edges)
        assert drawn.number_of_nodes() == len(view.items), "an edge names an item that is not drawn"
        assert nx.is_directed_acyclic_graph(drawn)
        sources = [item.id for item in view.items if item.family == "parameter"] + [INPUT]  # read no input
        for item in view.items:
            assert any(nx.has_path(drawn, source, item.id) for source in sources), item.id
            assert item.id in output_boxes(graph) or any(nx.has_path(drawn, item.id, out)
                                                         for out in output_boxes(graph)), item.id


@every_spec
def test_collapsed_blocks_show_in_and_out_shapes_and_their_parameter_total(spec):
    graph = shaped(spec)
    view = build_view(graph, 0, fold=False)
    for item in (i for i in view.items if i.kind == "block"):
        path = item.id.removeprefix("block/")
        members = [n.name for n in graph.op_nodes() if n.name.startswith(path + ".") or n.name == path]
        assert item.params == sum(graph.facts[n].param_count for n in members)
        assert item.lines[-1] == f"{item.params:,} params"
        last = graph.facts[members[-1]].shape
        assert item.lines[-2].endswith("→ " + show_shape(last)), item.lines


# ── folding ──────────────────────────────────────────────────────────────────────────────────────────────────

def fold_view(depth=None, fold=True):
    return build_view(shaped(FOLD_NET), depth, fold)


def test_consecutive_identical_blocks_fold_into_one_cluster_marked_times_n():
    folds = {c.path: c for c in fold_view().clusters if c.style == "fold"}
    assert folds["layer1.0"].title == "0–2: basic ×3" and folds["layer1.0"].count == 3
    assert folds["layer2.1"].title == "1–2: basic ×2"
    assert folds["dense.layer1"].title == "layer1–3: dense_layer ×3"
    ops = {item.id for item in fold_view().items if item.kind == "op"}
    assert "layer1.0.conv1" in ops and not any(n.startswith(("layer1.1.", "layer1.2.")) for n in ops)


def test_the_first_block_of_a_stage_strides_and_projects_so_it_is_not_folded():
    clusters = {c.path: c for c in fold_view().clusters}
    assert clusters["layer2.0"].style == "block" and clusters["layer2.0"].count == 1
    assert "layer2.0.downsample.0" in {item.id for item in fold_view().items}


def test_identical_blocks_side_by_side_are_never_folded():
    clusters = {c.path: c for c in fold_view().clusters}
    assert clusters["pair.0"].style == clusters["pair.1"].style == "block"


def test_no_fold_draws_every_instance():
    ops = {item.id for item in fold_view(fold=False).items if item.kind == "op"}
    assert ops == {n.name for n in shaped(FOLD_NET).op_nodes()}
    assert not [c for c in fold_view(fold=False).clusters if c.style == "fold"]


def test_edges_leaving_a_fold_carry_the_last_instances_shape_and_inner_shapes_are_marked_as_the_first():
    view, graph = fold_view(), shaped(FOLD_NET)
    out = [e for e in view.edges if e.src == "dense.layer1.cat"]  # into both branches of `pair`
    assert [e.shape for e in out] == [graph.facts["dense.layer3.cat"].shape] * 2 == [(28, 8, 8)] * 2
    dense = next(c for c in view.clusters if c.path == "dense.layer1")
    assert "edge shapes: the first block's" in dense.lines
    resnet = next(c for c in view.clusters if c.path == "layer1.0")
    assert not any(line.startswith("edge shapes") for line in resnet.lines)  # every instance has the same shapes


def test_a_collapsed_fold_is_one_box_with_the_runs_in_and_out_shapes_and_total():
    items = {item.id: item for item in fold_view(depth=1).items}
    box = items["block/dense.layer1"]
    assert (box.title, box.count) == ("layer1–3: dense_layer ×3", 3)
    assert box.lines[-2:] == ("16×8×8 → 28×8×8", "2,292 params")
    assert "block/dense.layer2" not in items


# ── GoogLeNet ─────────────────────────────────────────────────────────────────────────────────────────────────

def test_googlenet_full_depth_shows_each_inceptions_four_paths_and_concat_with_shapes():
    graph = shaped(ROOT / "specs" / "googlenet.yaml")
    view = build_view(graph)
    clusters = {c.path: c for c in view.clusters if c.title.endswith(": inception")}
    assert len(clusters) == 9
    items = {item.id: item for item in view.items}
    for path, cluster in clusters.items():
        concat = items[f"{path}.concat"]
        assert (concat.family, concat.cluster) == ("merge", cluster.id)
        into = [e for e in view.edges if e.dst == concat.id]
        assert [e.src.removeprefix(path + ".").split(".")[0] for e in into] == ["0", "1", "2", "3"]
        assert all(e.shape == graph.facts[e.src].shape for e in into)
        assert sum(e.shape[0] for e in into) == graph.facts[concat.id].shape[0]


def test_googlenet_at_depth_1_is_one_column_of_blocks_with_inception_boxes():
    view = build_view(shaped(ROOT / "specs" / "googlenet.yaml"), 1)
    boxes = [item for item in view.items if item.kind == "block"]
    assert [b.title.split(": ")[1] for b in boxes] == ["inception"] * 9
    assert boxes[0].lines[-2:] == ("192×12×12 → 256×12×12", "163,696 params")
    assert len(view.items) <= 30


@needs_dot
def test_googlenet_at_depth_1_renders_as_one_narrow_page(tmp_path, capsys):
    code, _, _ = run_cli("draw", "googlenet", "--depth", "1", "-o", str(tmp_path / "g.svg"), capsys=capsys)
    assert code == 0
    width, height = map(float, re.search(r'<svg width="([\d.]+)pt" height="([\d.]+)pt"',
                                         (tmp_path / "g.svg").read_text()).groups())
    assert width < 400 and height < 1800, (width, height)  # one column, legible at 100 %


# ── CLI: formats, options, errors ────────────────────────────────────────────────────────────────────────────

@needs_dot
@every_spec
@pytest.mark.parametrize("fmt", ["svg", "png", "pdf", "dot"])
def test_every_format_is_written_for_every_spec(spec, fmt, tmp_path, capsys):
    out = tmp_path / f"net.{fmt}"
    code, _, err = run_cli("draw", str(spec), "--depth", "1", "-o", str(out), capsys=capsys)
    assert code == 0, err
    assert MAGIC[fmt] in out.read_bytes()[:400]
    assert [p.name for p in tmp_path.iterdir()] == [out.name]


@pytest.mark.slow
@needs_dot
@every_spec
@pytest.mark.parametrize("fold", [True, False], ids=["fold", "no-fold"])
def test_every_spec_renders_at_full_depth(spec, fold, tmp_path, capsys):
    out = tmp_path / "net.svg"
    code, _, err = run_cli("draw", str(spec), *([] if fold else ["--no-fold"]), "-o", str(out), capsys=capsys)
    assert code == 0, err
    view = build_view(shaped(spec), fold=fold)
    points = set(draw_dot.fan_outs(view).values())  # one point node per fan-out (see below)
    assert out.read_bytes().count(b'class="node"') == len(view.items) + len(points)


def test_an_unwritable_output_exits_1_with_the_reason(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    code, _, err = run_cli("draw", "lenet", "-o", str(tmp_path / "file" / "net.dot"), capsys=capsys)
    assert code == 1 and "cannot write" in err and "internal error" not in err


def test_without_dot_an_image_request_writes_the_dot_says_how_to_install_and_exits_1(tmp_path, capsys,
                                                                                   monkeypatch):
    monkeypatch.setattr(draw_dot.shutil, "which", lambda name: None)
    code, _, err = run_cli("draw", "lenet", "-o", str(tmp_path / "net.png"), capsys=capsys)
    assert code == 1
    assert "apt-get install graphviz" in err and "dot -Tpng" in err
    assert not (tmp_path / "net.png").exists()
    assert (tmp_path / "net.dot").read_text(encoding="utf-8") == netspec.draw("lenet").source


def test_without_dot_on_path_a_dot_request_still_succeeds(tmp_path):
    code = "import sys, netspec.cli; sys.exit(netspec.cli.main(sys.argv[1:]))"
    env = {**os.environ, "PATH": str(tmp_path)}  # no Graphviz on this PATH; python is called by its full path

    def draw_to(name: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-c", code, "draw", "lenet", "-o", str(tmp_path / name)], env=env,
                              capture_output=True, text=True)

    ok = draw_to("a.dot")
    assert ok.returncode == 0 and (tmp_path / "a.dot").read_text().startswith("digraph lenet")
    missing = draw_to("b.svg")
    assert missing.returncode == 1 and "apt-get install graphviz" in missing.stderr
    assert (tmp_path / "b.dot").exists() and not (tmp_path / "b.svg").exists()


@pytest.mark.parametrize("out", [None, "net.svg", "net.dot"])
def test_a_spec_with_an_error_prints_the_located_error_exits_2_and_writes_nothing(out, tmp_path, capsys):
    bad = ROOT / "tests" / "bad_specs" / "add_shape_mismatch.yaml"
    code, stdout, err = run_cli("draw", str(bad), *(["-o", str(tmp_path / out)] if out else []), capsys=capsys)
    assert code == 2
    assert re.search(r"add_shape_mismatch\.yaml:\d+:\d+: error: ", err) and "Traceback" not in err
    assert stdout == "" and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv, message", [(["-o", "net.jpg"], "the suffix picks the format"),
                                           (["--depth", "-1"], "--depth must be 0 or more"),
                                           (["--rankdir", "XY"], "invalid choice")])
def test_usage_mistakes_exit_2_with_one_line(argv, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli("draw", "lenet", *argv, capsys=capsys)
    assert code == 2 and message in err and list(tmp_path.iterdir()) == []


def test_rankdir_legend_and_fold_flags_reach_the_dot(capsys):
    code, out, _ = run_cli("draw", str(FOLD_NET), "--rankdir", "LR", "--legend", capsys=capsys)
    assert code == 0 and "rankdir=LR" in out and "subgraph cluster_legend" in out
    families = {item.family for item in fold_view().items}
    assert len(re.findall(r'^\s+"legend/\w+" \[', out, re.M)) == len(families)
    _, unfolded, _ = run_cli("draw", str(FOLD_NET), "--no-fold", capsys=capsys)
    assert "basic ×3" in out and "basic ×" not in unfolded and "box3d" not in unfolded


@needs_dot
def test_text_from_a_spec_is_escaped_in_labels(tmp_path, capsys):
    spec = tmp_path / "quote.yaml"
    spec.write_text('netspec: 1\nname: quote\nblocks:\n  b:\n    params: {out: int, note: {type: str, default: x}}\n'
                    '    seq: [conv: {out: $out, kernel: 1}]\ninput: [3, 4, 4]\n'
                    'body:\n  - b: {out: 2, note: "<b>&\\"q\\\\N</font>"}\n', encoding="utf-8")
    code, _, err = run_cli("draw", str(spec), "-o", str(tmp_path / "q.svg"), capsys=capsys)
    assert code == 0, err
    assert "note=&lt;b&gt;&amp;&quot;q\\N&lt;/font&gt;" in (tmp_path / "q.svg").read_text()


def test_the_cli_offers_the_formats_directions_and_themes_the_library_supports():
    assert draw_cli.FORMATS == draw_dot.FORMATS and draw_cli.RANKDIRS == draw_dot.RANKDIRS
    assert draw_cli.THEMES == draw_dot.THEMES


# ── fan-outs, the U of encoder–decoders, PNG resolution, the dark theme ─────────────────────────────────────────

def labelled_edges(source: str) -> list[tuple[str, str]]:
    """(tail, label) of every labelled edge of a DOT source."""
    return re.findall(r'^\s*("[^"]+"|\w+) -> .*\[.*?label="?([^" \]]+)', source, re.M)


@every_spec
def test_a_tensor_read_by_several_boxes_is_labelled_once(spec):
    graph = shaped(spec)
    for depth in depths(graph):
        view = build_view(graph, depth)
        source = draw_dot.to_digraph(view).source
        labels = labelled_edges(source)
        assert len(labels) == len(set(labels)), depth
        # … and every edge of the view is still drawn: one edge per reader, through the fan-out's point
        fans = draw_dot.fan_outs(view)
        assert len(re.findall(r" -> ", source)) == len(view.edges) + len(set(fans.values()))


def test_inception_inputs_four_branches_with_one_label():
    source = netspec.draw(GOLDEN / "inception_block.yaml").source
    assert len(re.findall(r'^\s*input -> .*label=', source, re.M)) == 1
    assert len(re.findall(r'^\s*"input/fan/192×12×12" -> "block\.\d\.0"$', source, re.M)) == 4


def unet_view(depth):
    return build_view(shaped(ROOT / "specs" / "examples" / "unet.yaml"), depth)


@pytest.mark.parametrize("depth", [0, None], ids=["depth0", "full"])
def test_an_encoder_decoder_has_one_skip_edge_per_stage_and_rises_after_its_bottom(depth):
    view = unet_view(depth)
    skips = [e for e in view.edges if e.role == "skip"]
    assert len(skips) == 3  # the spec's depth
    assert all(e.dst.startswith("skip") for e in skips)
    up = {e.dst for e in view.edges if e.role == "up"}
    assert "output" in up and not any(i.startswith(("enc", "down", "input")) for i in up)


def test_a_network_without_a_way_back_up_has_only_downward_edges():
    for spec in SPECS:
        if "unet" not in spec.name:
            assert {e.role for e in build_view(shaped(spec)).edges} == {"down"}, spec


@needs_dot
def test_the_unet_is_laid_out_as_a_u(tmp_path):
    """Way down on the left, way up on the right, each skip edge level, the output above the bottom."""
    import json

    view = unet_view(0)
    layout = json.loads(draw_dot.render(draw_dot.to_digraph(view).source, "json"))
    where = {obj["name"]: tuple(map(float, obj["pos"].split(","))) for obj in layout["objects"] if "pos" in obj}
    down = [i.id for i in view.items if i.id.startswith(("enc", "down", "block/enc", "block/down", "input"))]
    rising = [i.id for i in view.items if i.id.startswith(("up", "dec", "block/dec", "output"))]
    assert max(where[n][0] for n in down) < min(where[n][0] for n in rising)
    fans = draw_dot.fan_outs(view)
    for edge in (e for e in view.edges if e.role == "skip"):
        assert where[fans[edge].id][1] == where[edge.dst][1]  # Graphviz's y grows upwards
    assert where["output"][1] > where["block/bottom"][1]


@needs_dot
def test_png_is_drawn_at_a_readable_resolution(tmp_path, capsys):
    for fmt in ("svg", "png"):
        assert run_cli("draw", "lenet", "-o", str(tmp_path / f"n.{fmt}"), capsys=capsys)[0] == 0
    width_pt = float(re.search(r'<svg width="([\d.]+)pt"', (tmp_path / "n.svg").read_text()).group(1))
    png = (tmp_path / "n.png").read_bytes()
    width_px = int.from_bytes(png[16:20], "big")  # the IHDR chunk
    assert abs(width_px - width_pt * draw_dot.PNG_DPI / 72) < 4 and draw_dot.PNG_DPI >= 144


def test_the_dark_theme_colours_the_background_and_the_text_around_the_boxes(capsys):
    code, out, _ = run_cli("draw", str(FOLD_NET), "--theme", "dark", "--legend", capsys=capsys)
    assert code == 0
    dark = draw_dot._THEMES["dark"]
    assert f'bgcolor="{dark.background}"' in out and f'fontcolor="{dark.text}"' in out
    cluster_labels = re.findall(r"^\s*color=.* label=(<.*>) labeljust", out, re.M)
    details = [label for label in cluster_labels if "<font" in label]
    assert details and all(f'color="{dark.detail}"' in label for label in details)
    assert run_cli("draw", str(FOLD_NET), capsys=capsys)[1] == netspec.draw(FOLD_NET).source


# ── the gallery ───────────────────────────────────────────────────────────────────────────────────────────────

def _graphviz_version(svg: bytes) -> str | None:
    found = re.search(rb"Generated by graphviz version ([^\n]+)", svg)
    return found.group(1).decode().strip() if found else None


def test_the_committed_gallery_is_up_to_date():
    """DOT sources and the index are compared byte for byte; SVGs too when the local Graphviz is the version that
    made the committed ones (dot's SVG is deterministic for one version, not across versions)."""
    local = subprocess.run(["dot", "-V"], capture_output=True, text=True).stderr if HAS_DOT else ""
    committed = sorted(GALLERY.glob("*.svg"))
    made_by = _graphviz_version(committed[0].read_bytes()) if committed else None
    fresh = gallery_files(ROOT / "specs", svg=HAS_DOT and (made_by is None or made_by in local))
    stale = [name for name, data in fresh.items()
             if not (GALLERY / name).exists() or (GALLERY / name).read_bytes() != data]
    stale += [p.name for p in GALLERY.glob("*.*") if p.suffix in (".svg", ".dot")
              and p.with_suffix(".dot").name not in fresh]  # a picture of a spec that is gone
    stale += [n for n in fresh if n.endswith(".dot") and not (GALLERY / n).with_suffix(".svg").exists()]
    assert not stale, f"docs/gallery is stale ({', '.join(stale)}): run `make gallery`"
    assert len([n for n in fresh if n.endswith(".dot") and not n.endswith("-full.dot")]) == len(SPECS)


def test_the_gallery_draws_squeeze_excitation_as_a_side_branch_meeting_a_mul():
    dot = (GALLERY / "imagenet-mobilenet_v3_small-full.dot").read_text(encoding="utf-8")
    assert '"features.4.block.2.scale" [label=<mul>' in dot
    into = re.findall(r'^\s*"([^"]+)" -> "features\.4\.block\.2\.scale"', dot, re.M)
    # the scale, from inside the SE cluster, and the block's own tensor from outside it: the depthwise conv's
    # output, which also feeds the SE's pooling (a fan-out, drawn through one labelled point)
    assert sorted(into) == ["features.4.block.1.2/fan/96×14×14", "features.4.block.2.scale_activation"]
    assert re.search(r'"features\.4\.block\.1\.2" -> "features\.4\.block\.1\.2/fan/96×14×14"', dot)
    assert re.search(r'"features\.4\.block\.1\.2/fan/96×14×14" -> "features\.4\.block\.2\.avgpool"', dot)


def test_docs_draw_gives_every_op_family_its_colour():
    from netspec.ops import FAMILIES

    text = (REPO / "docs" / "draw.md").read_text(encoding="utf-8")
    listed = set(re.findall(r"^\| (\w+) \| [^|]+ \|$", text, re.M))
    assert set(FAMILIES) <= listed, f"docs/draw.md has no colour for {sorted(set(FAMILIES) - listed)}"
