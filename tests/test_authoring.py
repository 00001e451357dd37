"""`netspec new` and `netspec upgrade`: starter specs that validate, in the user's folder, never over a file or
outside it; format upgrades that change only what the format changed (comments and layout kept), on an older
fixture (tests/format_specs/) and on every shipped file written back in format 1."""

from __future__ import annotations

import os
import re
import shutil

import pytest

from conftest import REPO, SPECS, spec_params
from netspec.cli import main
from netspec.frontend import formats
from netspec.frontend.grammar import SCHEMA_PATH
from netspec.passes.lint import lint
from netspec.pipeline import shaped_network

FIXTURE = REPO / "tests" / "format_specs" / "v1_classifier.yaml"
UPGRADED = REPO / "tests" / "format_specs" / "v1_classifier.upgraded.yaml"


def cli(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


# ── new ───────────────────────────────────────────────────────────────────────────────────────────────────────

def test_new_writes_a_starter_spec_that_validates_and_lints_clean(capsys, folder):
    code, _, err = cli(capsys, "new", "mynet")
    assert code == 0 and err.startswith("wrote mynet.yaml: ")
    text = (folder / "mynet.yaml").read_text(encoding="utf-8")
    first = text.splitlines()[0]
    assert first == f"# yaml-language-server: $schema={SCHEMA_PATH.resolve().as_posix()}"  # outside the folder: absolute
    assert f"\nnetspec: {formats.CURRENT}\n" in text and "\nname: mynet\n" in text
    shaped = shaped_network(folder / "mynet.yaml")
    assert shaped.name == "mynet" and shaped.output_shape == (10,)
    assert [f.first_line() for f in lint(shaped)] == []
    assert cli(capsys, "lint", "--strict", "--info", "mynet.yaml")[0] == 0


def test_new_names_the_schema_relative_to_the_folder_when_it_lies_inside(capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    try:
        assert cli(capsys, "new", "probe_relative_schema")[0] == 0
        first = (REPO / "probe_relative_schema.yaml").read_text(encoding="utf-8").splitlines()[0]
        assert first == "# yaml-language-server: $schema=netspec/schema/netspec.schema.json"
    finally:
        (REPO / "probe_relative_schema.yaml").unlink(missing_ok=True)


def test_new_refuses_an_existing_file_unless_forced(capsys, folder):
    (folder / "taken.yaml").write_text("mine\n", encoding="utf-8")
    code, _, err = cli(capsys, "new", "taken")
    assert code == 2 and err == "netspec: error: taken.yaml exists; it is never written over unless you add --force\n"
    assert (folder / "taken.yaml").read_text(encoding="utf-8") == "mine\n"
    assert cli(capsys, "new", "taken", "--force")[0] == 0
    assert "name: taken" in (folder / "taken.yaml").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", ["../evil", "a/b", "/etc/passwd", "..", ".hidden", "1net", "", "a b", "x" * 101,
                                  "net.yaml", "tab\tname", "~user"])
def test_new_refuses_names_that_are_no_plain_name_and_writes_nothing(capsys, folder, name):
    code, _, err = cli(capsys, "new", name)
    assert code == 2 and err.startswith("netspec: error: ") and err.count("\n") == 1
    assert list(folder.iterdir()) == [] and not (folder.parent / "evil.yaml").exists()


@pytest.mark.parametrize("path", spec_params())
def test_new_from_each_zoo_spec_gives_the_same_network_under_the_new_name(capsys, folder, path):
    source = str(path.relative_to(SPECS).with_suffix(""))
    code, _, err = cli(capsys, "new", "copy", "--from", source)
    assert code == 0, err
    original, copy = shaped_network(path), shaped_network(folder / "copy.yaml")
    assert copy.name == "copy"
    assert (copy.param_count, copy.macs, copy.output_shape) == (original.param_count, original.macs,
                                                                original.output_shape)
    assert list(copy.nodes) == list(original.nodes)
    text = (folder / "copy.yaml").read_text(encoding="utf-8")
    source_text = path.read_text(encoding="utf-8")
    # Only the modeline, the name and the imports differ: the rest (comments included) is the source's text.
    differing = [(a, b) for a, b in zip(source_text.splitlines(), text.splitlines()) if a != b]
    assert all(b.startswith(("# yaml-language-server:", "name: copy", "imports:")) for _, b in differing), differing


def test_new_from_a_spec_whose_library_a_spec_here_cannot_import_is_refused(capsys, folder):
    elsewhere = folder / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "lib.yaml").write_text("netspec: 2\nblocks:\n  b: {seq: [relu]}\n", encoding="utf-8")
    (elsewhere / "net.yaml").write_text("netspec: 2\nname: net\nimports: [lib.yaml]\ninput: [4]\nbody: [b]\n",
                                        encoding="utf-8")
    here = folder / "here"
    here.mkdir()
    os.chdir(here)
    code, _, err = cli(capsys, "new", "mine", "--from", str(elsewhere / "net.yaml"))
    assert code == 2 and "imports lib.yaml, which a spec in this folder cannot import" in err
    assert list(here.iterdir()) == []


# ── upgrade ───────────────────────────────────────────────────────────────────────────────────────────────────

def test_upgrade_rewrites_in_place_keeping_comments_and_layout_with_a_backup(capsys, folder):
    spec = folder / "old.yaml"
    shutil.copy(FIXTURE, spec)
    code, _, err = cli(capsys, "upgrade", "old.yaml")
    assert code == 0 and err.startswith("upgraded old.yaml from format 1 to 2 (the original is old.yaml.v1.bak): "
                                        "3 changes\n")
    assert re.findall(r"line (\d+), column (\d+)", err) == [("11", "11"), ("16", "37"), ("17", "44")]
    assert (folder / "old.yaml.v1.bak").read_bytes() == FIXTURE.read_bytes()
    assert spec.read_bytes() == UPGRADED.read_bytes()
    changed = [(a, b) for a, b in zip(FIXTURE.read_text().splitlines(), UPGRADED.read_text().splitlines()) if a != b]
    assert [a.replace("netspec: 1", "netspec: 2").replace("out", "size") == b for a, b in changed] == [True] * 4
    assert cli(capsys, "upgrade", "old.yaml") == (0, "", "old.yaml is already in format 2: nothing to do\n")


def test_an_older_format_is_read_as_the_current_one_with_marks_into_the_file_as_written():
    old, new = shaped_network(FIXTURE), shaped_network(UPGRADED)
    assert [(n.name, n.op, dict(n.args), n.mark.line, n.mark.col) for n in old.nodes.values()] == \
        [(n.name, n.op, dict(n.args), n.mark.line, n.mark.col) for n in new.nodes.values()]
    assert old.facts["pool"].shape == (16, 4, 4) and old.param_count == new.param_count


def test_upgrade_to_another_file_leaves_the_original(capsys, folder):
    shutil.copy(FIXTURE, folder / "old.yaml")
    code, _, err = cli(capsys, "upgrade", "old.yaml", "-o", "new.yaml")
    assert code == 0 and "written to new.yaml" in err
    assert (folder / "old.yaml").read_bytes() == FIXTURE.read_bytes() and not (folder / "old.yaml.v1.bak").exists()
    assert (folder / "new.yaml").read_bytes() == UPGRADED.read_bytes()
    assert cli(capsys, "upgrade", "old.yaml", "-o", "old.yaml")[0] == 2


def test_upgrade_never_writes_over_a_backup(capsys, folder):
    shutil.copy(FIXTURE, folder / "old.yaml")
    (folder / "old.yaml.v1.bak").write_text("an earlier backup\n", encoding="utf-8")
    code, _, err = cli(capsys, "upgrade", "old.yaml")
    assert code == 2 and "the backup old.yaml.v1.bak exists already" in err
    assert (folder / "old.yaml").read_bytes() == FIXTURE.read_bytes()
    assert (folder / "old.yaml.v1.bak").read_text(encoding="utf-8") == "an earlier backup\n"


def test_upgrade_refuses_a_newer_or_unknown_version_located(capsys, folder):
    (folder / "new.yaml").write_text("netspec: 9\nname: x\ninput: [4]\nbody: [relu]\n", encoding="utf-8")
    code, _, err = cli(capsys, "upgrade", "new.yaml")
    assert code == 2 and err.startswith("new.yaml:1:10: error: unknown netspec format version 9")
    assert "hint: the file needs a newer netspec" in err
    code, _, err = cli(capsys, "upgrade", "missing.yaml")
    assert code == 2 and err.startswith("missing.yaml:1:1: error: no such file")


def test_every_shipped_file_is_in_the_current_format():
    for path in sorted(SPECS.rglob("*.yaml")):
        assert f"\nnetspec: {formats.CURRENT}\n" in path.read_text(encoding="utf-8"), path


@pytest.mark.parametrize("path", spec_params(sorted(SPECS.rglob("*.yaml"))))
def test_each_shipped_file_written_in_format_1_upgrades_back_to_itself(capsys, folder, path):
    text = path.read_text(encoding="utf-8")
    old = text.replace(f"\nnetspec: {formats.CURRENT}\n", "\nnetspec: 1\n")
    old = re.sub(r"adaptive_avgpool: \{size:", "adaptive_avgpool: {out:", old)
    (folder / "f.yaml").write_text(old, encoding="utf-8")
    assert cli(capsys, "upgrade", "f.yaml", "-o", "g.yaml")[0] == 0
    assert (folder / "g.yaml").read_text(encoding="utf-8") == text


def test_new_and_upgrade_never_import_torch(folder):
    from conftest import run_python

    shutil.copy(FIXTURE, folder / "old.yaml")
    probe = ("import contextlib, io, sys\n"
             f"sys.path.insert(0, {str(REPO)!r})\n"
             "from netspec.cli import main\n"
             "for args in (['new', 'fresh'], ['new', 'copy', '--from', 'googlenet'], ['upgrade', 'old.yaml']):\n"
             "    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):\n"
             "        code = main(args)\n"
             "    print(args[0], code, 'torch' in sys.modules)\n")
    run = run_python(probe, cwd=folder)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split("\n")[:-1] == ["new 0 False", "new 0 False", "upgrade 0 False"]
