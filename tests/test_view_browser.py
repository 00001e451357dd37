"""`netspec view` in a real browser: Debian's `chromium`, headless, driven by Playwright's Python package.

One page is opened per test module (GoogLeNet's); each test starts from a fresh load of it.  Skipped, with the
reason, where Playwright or chromium is missing (`make test` installs both: chromium with the system packages,
Playwright with the dev extra).  Nothing here measures time: bench/view_timing.py does.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import netspec
from conftest import REPO
from netspec.generators.browser import headless_browser, missing

pytestmark = [pytest.mark.skipif(missing() is not None, reason=str(missing())),
              pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's `dot` lays out the page "
                                                                     "(apt-get install graphviz)")]


@pytest.fixture(scope="module")
def browser():
    with headless_browser() as browser:
        yield browser


def make_page(tmp: Path, *argv: str) -> Path:
    from netspec import cli

    out = tmp / "page.html"
    assert cli.main(["view", *argv, "-o", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def googlenet_page(tmp_path_factory) -> Path:
    return make_page(tmp_path_factory.mktemp("view"), "googlenet")


class Opened:
    """A page in a tab, with every console message, page error, request and dialog it caused."""

    def __init__(self, browser, path: Path):
        self.tab = browser.new_page(viewport={"width": 1280, "height": 800})
        self.console, self.requests, self.dialogs = [], [], []
        self.tab.on("console", lambda m: self.console.append(f"{m.type}: {m.text}"))
        self.tab.on("pageerror", lambda e: self.console.append(f"pageerror: {e}"))
        self.tab.on("request", lambda r: self.requests.append(r.url))
        self.tab.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.url = path.resolve().as_uri()
        self.tab.goto(self.url)

    def box(self, name: str):
        """The box or open block of the entity called `name` (its aria-label is `name (op)…`)."""
        return self.tab.locator(f'#graph g[aria-label^="{name} ("]')


@pytest.fixture
def opened(browser, googlenet_page):
    page = Opened(browser, googlenet_page)
    yield page
    page.tab.close()


def test_the_page_loads_with_no_console_message_and_no_request_but_its_own_file(opened):
    opened.tab.wait_for_selector("#graph svg")
    opened.tab.locator("#expand-all").click()  # every level is drawn once
    opened.tab.locator("#collapse-all").click()
    assert opened.console == []
    assert opened.requests == [opened.url]
    assert opened.tab.title() == "googlenet — netspec view"


def test_a_click_opens_a_block_in_place_and_its_blocks_appear(opened, tmp_path):
    shaped = netspec.shaped_network("googlenet")
    b3 = opened.box("b3")
    assert b3.get_attribute("class") == "node"  # drawn closed at first
    before = b3.bounding_box()
    b3.click()
    opened.tab.wait_for_selector('#graph g.cluster[aria-label^="b3 ("]')
    after = opened.box("b3").bounding_box()
    assert abs(after["x"] - before["x"]) < 4 and abs(after["y"] - before["y"]) < 4  # where it was (scrolling is by whole pixels)
    inceptions = sorted({s.path for s in shaped.network.scopes.values() if s.path.startswith("b3.")
                         and s.template == "inception"})
    assert inceptions == ["b3.0", "b3.1"]
    for path in inceptions:
        assert opened.box(path).count() == 1 and opened.box(path).is_visible()
    opened.tab.screenshot(path=str(tmp_path / "googlenet-b3-open.png"))
    assert (tmp_path / "googlenet-b3-open.png").read_bytes()[:4] == b"\x89PNG"
    opened.box("b3").locator("text").first.click()  # its title: … and it closes again
    opened.tab.wait_for_selector('#graph g.node[aria-label^="b3 ("]')
    assert opened.box("b3.0").count() == 0
    assert opened.console == []


def test_hovering_a_box_shows_its_name_op_arguments_shape_params_and_macs(opened):
    shaped = netspec.shaped_network("googlenet")
    opened.box("b3").click()
    opened.box("b3.0").hover()
    tip = opened.tab.locator("#tip")
    tip.wait_for(state="visible")
    text = tip.inner_text()
    members = [n for n in shaped.nodes if n.startswith("b3.0.")]
    params = sum(shaped.facts[n].param_count for n in members)
    assert "b3.0" in text and "inception" in text and "c1=64" in text
    assert "192×12×12 → 256×12×12" in text and f"{params:,} params" in text and "MACs" in text
    opened.tab.locator("#expand-all").click()
    opened.box("b3.0.concat").hover()
    text = tip.inner_text()
    assert "b3.0.concat" in text and "concat" in text and "output 256×12×12" in text


def test_a_box_links_to_its_call_and_its_templates_definition_with_the_line_highlighted(opened):
    shaped = netspec.shaped_network("googlenet")
    scope = shaped.network.scopes["b3.0"]
    opened.box("b3").click()
    opened.box("b3.0").click()
    links = opened.tab.locator("#info a.src-link")
    assert links.count() == 2
    assert_line_shown(opened, scope.mark)  # selecting shows the first link's line at once
    for i, mark in enumerate((scope.mark, scope.defined)):
        links.nth(i).click()
        assert_line_shown(opened, mark)
    assert "inception" in opened.tab.locator("#source .ln.hl").inner_text()  # the definition's own line


def assert_line_shown(opened, mark):
    """The line `mark` points at is the one highlighted, inside the source panel's visible part, in its file."""
    lit = opened.tab.locator("#source .ln.hl")
    assert lit.count() == 1 and lit.is_visible()
    shown, panel = lit.bounding_box(), opened.tab.locator("#source").bounding_box()
    assert panel["y"] <= shown["y"] and shown["y"] + shown["height"] <= panel["y"] + panel["height"]
    assert lit.get_attribute("id").endswith(f"-{mark.line}")
    expected = Path(mark.file).read_text(encoding="utf-8").splitlines()[mark.line - 1]
    assert lit.inner_text().strip() == expected.strip()
    tab = opened.tab.locator('#file-tabs button[aria-selected="true"]')
    assert tab.inner_text() == "specs/" + Path(mark.file).resolve().relative_to(REPO / "specs").as_posix()


def test_the_totals_bar_shows_the_selected_blocks_share(opened):
    shaped = netspec.shaped_network("googlenet")
    opened.box("b5").click()
    totals = opened.tab.locator("#totals").inner_text()
    b5 = sum(shaped.facts[n].param_count for n in shaped.nodes if n.startswith("b5."))
    assert f"{shaped.param_count:,} params" in totals
    assert f"selected b5: {b5:,} params ({100 * b5 / shaped.param_count:.1f}%)" in totals


def test_search_finds_a_node_by_name_and_by_op_and_shows_it(opened):
    search = opened.tab.locator("#search")
    search.fill("b4.2.concat")
    search.press("Enter")
    box = opened.box("b4.2.concat")
    box.wait_for()
    assert "selected" in box.get_attribute("class") and box.is_visible()
    search.fill("maxpool")
    assert opened.tab.locator("#results button").count() >= 2


def test_everything_works_from_the_keyboard(opened):
    tab = opened.tab
    tab.keyboard.press("/")
    assert tab.evaluate("document.activeElement.id") == "search"
    tab.keyboard.press("Escape")
    tab.locator("#graph").click(position={"x": 5, "y": 5})
    for _ in range(60):  # Tab through the boxes up to the block b3, then Enter opens it
        tab.keyboard.press("Tab")
        if (tab.evaluate("document.activeElement.getAttribute('aria-label')") or "").startswith("b3 ("):
            break
    else:
        pytest.fail("Tab never reached b3")
    assert tab.locator("#tip").is_visible()  # focus shows the tooltip too
    tab.keyboard.press("Enter")
    tab.wait_for_selector('#graph g.cluster[aria-label^="b3 ("]')
    assert tab.evaluate("document.activeElement.getAttribute('aria-label')").startswith("b3 (")
    tab.keyboard.press("e")
    assert tab.locator('#level-buttons button[aria-pressed="true"]').inner_text() == "full"


def test_text_from_a_spec_never_runs_as_script(browser, tmp_path):
    payload = '</script><script>alert(1)</script><img src=x onerror=alert(2)>'
    spec = tmp_path / "evil.yaml"
    spec.write_text("netspec: 1\nname: evil\ndoc: 'PAYLOAD'\nblocks:\n  b:\n"
                    "    params: {out: int, note: {type: str, default: x}}\n    seq: [conv: {out: $out, kernel: 1}]\n"
                    "input: [3, 4, 4]\nbody:\n  - b: {out: 2, note: 'PAYLOAD'}\n".replace("PAYLOAD", payload),
                    encoding="utf-8")
    page = Opened(browser, make_page(tmp_path, str(spec)))
    page.box("0").hover()
    assert payload in page.tab.locator("#tip").inner_text()  # shown as text
    assert page.tab.locator("img").count() == 0 and page.dialogs == []
    assert page.requests == [page.url] and page.console == []
    page.tab.close()


def test_a_diff_colours_what_was_added_and_changed_and_counts_what_was_removed(browser, tmp_path):
    old, new = tmp_path / "old.yaml", tmp_path / "new.yaml"
    head = "netspec: 1\nname: NAME\ninput: [1, 8, 8]\nbody:\n"
    old.write_text(head.replace("NAME", "old") + "  - {name: a, conv: {out: 4, kernel: 3}}\n  - {name: r, relu: {}}\n"
                   "  - {name: gone, dropout: {p: 0.5}}\n  - {name: f, flatten: {}}\n", encoding="utf-8")
    new.write_text(head.replace("NAME", "new") + "  - {name: a, conv: {out: 8, kernel: 3}}\n  - {name: r, relu: {}}\n"
                   "  - {name: extra, relu: {}}\n  - {name: f, flatten: {}}\n", encoding="utf-8")
    page = Opened(browser, make_page(tmp_path, str(new), "--diff", str(old)))
    classes = {name: page.box(name).get_attribute("class") for name in ("a", "r", "extra", "f")}
    assert "diff-changed" in classes["a"] and "diff-added" in classes["extra"]
    assert "diff-changed" in classes["f"]  # it reads `extra` instead of `gone`
    assert "diff" not in classes["r"]      # only its shape changed ("reshaped" in `netspec diff`)
    legend = page.tab.locator("#diff-legend").inner_text()
    assert "added 1" in legend and "changed 2" in legend and "removed 1" in legend
    assert page.console == []
    page.tab.close()
