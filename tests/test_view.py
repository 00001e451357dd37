"""`netspec view`: the page's content as data (levels, entities, links, diff), that it is self-contained and small,
that nothing from a spec reaches it as markup, and the command's errors.  In a browser: test_view_browser.py."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import netspec
from conftest import REPO, spec_params
from netspec import cli
from netspec.backends.draw import dot as draw_dot
from netspec.backends.draw.page import clean_svg, levels

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's `dot` is not installed "
                                                                  "(apt-get install graphviz)")
SPECS = REPO / "specs"


def view(capsys, *argv: str) -> tuple[int, str]:
    code = cli.main(["view", *argv])
    return code, capsys.readouterr().err


def page_of(path: Path) -> tuple[str, dict]:
    text = path.read_text(encoding="utf-8")
    data = re.search(r'<script type="application/json" id="data">(.*?)</script>', text, re.S).group(1)
    return text, json.loads(data)


_built: dict[str, tuple[str, dict]] = {}


def built(spec: str, tmp_path_factory) -> tuple[str, dict]:
    if spec not in _built:
        out = tmp_path_factory.mktemp("view") / "page.html"
        assert cli.main(["view", spec, "-o", str(out)]) == 0
        _built[spec] = page_of(out)
    return _built[spec]


def ids_in(svg: str) -> dict[int, str]:
    """Entity number → node | cluster, for one level's SVG."""
    return {int(k): kind for k, kind in re.findall(r'<g id="v(\d+)" class="(node|cluster)"', svg)}


# ── what the page holds ───────────────────────────────────────────────────────────────────────────────────────

@needs_dot
@pytest.mark.parametrize("spec", ["googlenet", "imagenet/densenet121", "examples/unet"])
def test_every_op_is_an_entity_or_folded_into_one_and_every_block_opens_at_a_later_level(spec, tmp_path_factory):
    _, data = built(spec, tmp_path_factory)
    shaped = netspec.shaped_network(spec)
    names = {e["name"] for e in data["entities"]}
    ops = {n.name for n in shaped.op_nodes()}
    drawn = levels(shaped)
    full = drawn[-1].view
    assert full.items and drawn[-1].depth is None
    assert {i.id for i in full.items if i.kind == "op"} <= names  # the full level draws every op not folded away
    kinds = [ids_in(level["svg"]) for level in data["levels"]]
    for k, entity in enumerate(data["entities"]):
        where = [i for i, level in enumerate(kinds) if k in level]
        assert where, entity["name"]
        if entity["kind"] == "block":
            closed = [i for i in where if kinds[i][k] == "node"]
            assert all(any(kinds[j].get(k) == "cluster" for j in range(i + 1, len(kinds))) for i in closed)
    assert len(ops - names) == 0 or any(e["count"] > 1 for e in data["entities"])  # only folds hide ops


@needs_dot
def test_entities_carry_what_the_tooltip_shows(tmp_path_factory):
    _, data = built("googlenet", tmp_path_factory)
    shaped = netspec.shaped_network("googlenet")
    entities = {e["name"]: e for e in data["entities"]}
    conv = entities["b1.0"]
    facts = shaped.facts["b1.0"]
    assert (conv["op"], conv["shape"], conv["params"], conv["macs"]) == ("conv", "64×48×48", facts.param_count,
                                                                         facts.macs)
    assert "kernel=7" in conv["args"] and "stride=2" in conv["args"]
    block = entities["b3.0"]
    members = [n for n in shaped.nodes if n.startswith("b3.0.")]
    assert block["kind"] == "block" and block["op"] == "inception" and "c1=64" in block["args"]
    assert block["params"] == sum(shaped.facts[n].param_count for n in members)
    assert block["macs"] == sum(shaped.facts[n].macs for n in members)
    assert block["shape"] == "192×12×12 → 256×12×12"
    assert (data["params"], data["macs"]) == (shaped.param_count, shaped.macs)


@needs_dot
def test_a_template_call_links_to_its_call_and_to_its_definition(tmp_path_factory):
    _, data = built("googlenet", tmp_path_factory)
    shaped = netspec.shaped_network("googlenet")
    files = data["files"]
    entities = {e["name"]: e for e in data["entities"]}

    def line(link):
        return files[link[1]][1].splitlines()[link[2] - 1]

    call, definition = entities["b3.0"]["links"]
    assert call[0] == "call of inception" and "inception:" in line(call)
    assert definition[0] == "definition of inception" and line(definition).strip() == "inception:"
    assert files[call[1]][0] == "specs/googlenet.yaml" and files[definition[1]][0] == "specs/blocks/inception.yaml"
    scope = shaped.network.scopes["b3.0"]
    assert (call[2], definition[2]) == (scope.mark.line, scope.defined.line)
    op_links = entities["b3.0.concat"]["links"]  # an op inside a template: its own line, and the call
    assert [link[0] for link in op_links] == ["concat", "call of inception"] and op_links[1] == call
    assert all(not label.startswith("/") for label, _ in files)  # no path of this machine


@needs_dot
@pytest.mark.parametrize("spec", ["imagenet/densenet121", "imagenet/googlenet", "imagenet/efficientnet_b0"])  # the largest
def test_a_page_is_self_contained_and_under_a_megabyte(spec, tmp_path_factory):
    text, data = built(spec, tmp_path_factory)
    assert len(text.encode("utf-8")) < 1_000_000
    assert not re.search(r"<(link|script|img|iframe)[^>]+(src|href)=\"(?!data:|#)", text)
    urls = set(re.findall(r"https?://[^\s\"'<>)\\]+", text))
    assert urls <= {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}, urls  # SVG namespaces only
    script = re.search(r"<script>(.*?)</script>", text, re.S).group(1)
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode()
    policy = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', text).group(1)
    assert f"script-src &#x27;sha256-{digest}&#x27;" in policy and "default-src &#x27;none&#x27;" in policy


@needs_dot
def test_nothing_a_spec_says_reaches_the_page_as_markup(tmp_path, capsys):
    payload = '</script><script>alert(1)</script><img src=x onerror=alert(2)>&amp;"\''
    spec = tmp_path / "evil.yaml"
    spec.write_text("netspec: 1\nname: evil\ndoc: \"PAYLOAD\"\nblocks:\n  b:\n"
                    "    params: {out: int, note: {type: str, default: x}}\n    seq: [conv: {out: $out, kernel: 1}]\n"
                    "input: [3, 4, 4]\nbody:\n  - b: {out: 2, note: \"PAYLOAD\"}\n"
                    .replace("PAYLOAD", payload.replace('"', '\\"')), encoding="utf-8")
    assert view(capsys, str(spec), "-o", str(tmp_path / "evil.html"))[0] == 0
    text, data = page_of(tmp_path / "evil.html")
    for piece in ("<script>alert", "<img", "onerror=alert(2)>"):
        assert piece not in text
    assert text.count("<script") == 2  # the data and the page's own script
    assert any(f"note={payload}" in e["args"] for e in data["entities"])  # the data holds it, as text
    assert data["files"][0][1] == spec.read_text(encoding="utf-8")


def test_clean_svg_drops_titles_comments_and_the_prolog():
    svg = ('<?xml version="1.0"?>\n<!DOCTYPE svg>\n<!-- a --&gt; -->\n<svg><g id="v1" class="node"><title>x&lt;'
           '</title>\n<text>conv</text></g></svg>\n')
    assert clean_svg(svg) == '<svg><g id="v1" class="node"><text>conv</text></g></svg>'


# ── the command ───────────────────────────────────────────────────────────────────────────────────────────────

@needs_dot
def test_without_o_the_page_is_named_after_the_network_in_the_working_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, err = view(capsys, "lenet")
    assert code == 0 and (tmp_path / "lenet.html").exists() and "wrote lenet.html" in err


@needs_dot
def test_open_hands_the_file_to_the_browser(tmp_path, capsys, monkeypatch):
    import webbrowser

    opened = []
    monkeypatch.setattr(webbrowser, "open", lambda url: opened.append(url) or True)
    assert view(capsys, "lenet", "-o", str(tmp_path / "p.html"), "--open")[0] == 0
    assert opened == [(tmp_path / "p.html").resolve().as_uri()]


@pytest.mark.parametrize("argv, message", [(["-o", "page.svg"], "name it .html"),
                                           (["--max-boxes", "0"], "--max-boxes must be 1 or more"),
                                           (["--timeout", "0"], "--timeout must be more than 0")])
def test_usage_mistakes_exit_2_with_one_line_and_write_nothing(argv, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, err = view(capsys, "lenet", *argv)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1 and list(tmp_path.iterdir()) == []


def test_a_spec_with_an_error_exits_2_and_writes_nothing(tmp_path, capsys):
    bad = REPO / "tests" / "bad_specs" / "add_shape_mismatch.yaml"
    code, err = view(capsys, str(bad), "-o", str(tmp_path / "p.html"))
    assert code == 2 and re.search(r"add_shape_mismatch\.yaml:\d+:\d+: error: ", err) and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_the_page_never_overwrites_the_spec(tmp_path, capsys):
    spec = tmp_path / "net.html"
    spec.write_text((SPECS / "lenet.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    code, err = view(capsys, str(spec), "-o", str(spec))
    assert code == 2 and "is the spec" in err


def test_without_dot_it_says_how_to_install_graphviz_and_exits_1(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(draw_dot.shutil, "which", lambda name: None)
    code, err = view(capsys, "lenet", "-o", str(tmp_path / "p.html"))
    assert code == 1 and "apt-get install graphviz" in err and list(tmp_path.iterdir()) == []


@needs_dot
def test_a_network_too_big_for_dot_even_folded_is_refused(tmp_path, capsys):
    code, err = view(capsys, "googlenet", "--max-boxes", "5", "-o", str(tmp_path / "p.html"))
    assert code == 2 and "raise --max-boxes" in err and list(tmp_path.iterdir()) == []


@needs_dot
def test_levels_deeper_than_max_boxes_are_left_out(tmp_path, capsys):
    assert view(capsys, "googlenet", "--max-boxes", "30", "-o", str(tmp_path / "p.html"))[0] == 0
    _, data = page_of(tmp_path / "p.html")
    assert [level["depth"] for level in data["levels"]] == [0, 1]  # full depth has 141 boxes


@needs_dot
def test_view_does_not_import_torch(tmp_path):
    code = ("import sys, netspec.cli; assert netspec.cli.main(sys.argv[1:]) == 0; "
            "assert 'torch' not in sys.modules, 'view imported torch'")
    subprocess.run([sys.executable, "-c", code, "view", "googlenet", "-o", str(tmp_path / "p.html")], check=True,
                   capture_output=True)


@needs_dot
def test_diff_marks_the_nodes_netspec_diff_reports_and_the_blocks_holding_them(tmp_path, capsys):
    from netspec.backends.diff import diff_networks

    assert view(capsys, "imagenet/resnet34", "--diff", "imagenet/resnet18", "-o", str(tmp_path / "p.html"))[0] == 0
    _, data = page_of(tmp_path / "p.html")
    status = diff_networks(netspec.shaped_network("imagenet/resnet18"), netspec.shaped_network("imagenet/resnet34"),
                           keys=False).status
    assert data["diff"] == {s: sum(1 for v in status.values() if v == s) for s in ("added", "removed", "changed")}
    assert data["diff"]["added"] > 0
    entities = {e["name"]: e for e in data["entities"]}
    for name, entity in entities.items():
        if entity["kind"] != "block":
            assert entity["diff"] == (status.get(name) if status.get(name) in ("added", "changed") else None)
    assert entities["layer1"]["diff"] == "changed" and entities["conv1"]["diff"] is None


@needs_dot
@pytest.mark.parametrize("spec", spec_params())
def test_every_spec_gives_a_page(spec, tmp_path, capsys):
    assert view(capsys, str(spec), "-o", str(tmp_path / "p.html"))[0] == 0


def test_the_gallery_has_a_small_screenshot_of_every_specs_page():
    from netspec.generators.gallery import VIEW, gallery_specs, page_name

    shots = REPO / "docs" / "gallery" / VIEW
    expected = {page_name(spec, SPECS) for spec in gallery_specs(SPECS)}
    assert {p.stem for p in shots.glob("*.png")} == expected, "docs/gallery is stale: run `make gallery`"
    for shot in shots.glob("*.png"):
        data = shot.read_bytes()
        assert data[:4] == b"\x89PNG" and len(data) < 100_000, shot.name


@needs_dot
def test_a_block_that_lost_nodes_is_marked_changed(tmp_path, capsys):
    assert view(capsys, "imagenet/resnet18", "--diff", "imagenet/resnet34", "-o", str(tmp_path / "p.html"))[0] == 0
    _, data = page_of(tmp_path / "p.html")
    entities = {e["name"]: e for e in data["entities"]}
    assert "layer1.2.conv1" in data["removed"] and data["diff"]["added"] == 0
    assert entities["layer1"]["diff"] == "changed" and entities["fc"]["diff"] is None



@pytest.mark.parametrize("spec", spec_params())
def test_each_level_opens_more_than_the_one_before(spec):
    drawn = levels(netspec.shaped_network(spec))
    pictures = [({i.id for i in level.view.items}, {c.id for c in level.view.clusters}) for level in drawn]
    assert all(a != b and len(a[1]) <= len(b[1]) for a, b in zip(pictures, pictures[1:]))
    assert drawn[-1].depth is None


@needs_dot
def test_each_output_of_a_network_with_several_is_an_entity_linked_to_its_declaration(tmp_path, capsys):
    out = tmp_path / "aux.html"
    assert view(capsys, "googlenet", "--set", "aux=true", "-o", str(out))[0] == 0
    _, data = page_of(out)
    shaped = netspec.shaped_network("googlenet", {"aux": True})
    outputs = {e["name"]: e for e in data["entities"] if e["kind"] == "io" and e["op"].startswith("output")}
    assert list(outputs) == [o.name for o in shaped.network.output_list()]
    for declared in shaped.network.output_list():
        entity = outputs[declared.name]
        assert entity["shape"] == "10" and entity["args"] == [f"from={declared.node}"]
        assert entity["op"] == ("output (train only)" if declared.train_only else "output")
        assert entity["links"] and entity["links"][0][2] == declared.mark.line
