"""Where commands write: never over the spec they read or a library it imports, and an output that cannot be
written is one line, `netspec: cannot write FILE: reason`, and exit 1 — for compile (.py and .pt) and draw."""

from __future__ import annotations

import os
import shutil

import pytest

from netspec.backends import output
from netspec.cli import main

from conftest import SPECS


def cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err: str) -> str:
    assert err.count("\n") == 1 and "Traceback" not in err and "internal error" not in err, err
    return err.rstrip("\n")


# ── never over the input ──────────────────────────────────────────────────────────────────────────────────────

@pytest.mark.parametrize("command, name", [("compile", "net.py"), ("draw", "net.dot")])
def test_an_output_that_is_the_spec_itself_is_refused_and_the_spec_kept(tmp_path, capsys, command, name):
    spec = tmp_path / name
    shutil.copy(SPECS / "lenet.yaml", spec)
    before = spec.read_bytes()
    code, _, err = cli(capsys, command, str(spec), "-o", str(spec))
    assert code == 2 and one_line(err).startswith(f"netspec: error: -o {spec} is the spec ({spec})")
    assert spec.read_bytes() == before


def test_an_output_that_links_to_an_imported_library_is_refused(tmp_path, capsys):
    shutil.copytree(SPECS / "blocks", tmp_path / "blocks")
    shutil.copy(SPECS / "resnet18.yaml", tmp_path / "net.yaml")
    library = tmp_path / "blocks" / "residual.yaml"
    before = library.read_bytes()
    (tmp_path / "out.py").symlink_to(library)
    code, _, err = cli(capsys, "compile", str(tmp_path / "net.yaml"), "-o", str(tmp_path / "out.py"))
    assert code == 2 and "is a library the spec imports" in one_line(err)
    assert library.read_bytes() == before


# ── outputs that cannot be written ────────────────────────────────────────────────────────────────────────────

@pytest.mark.parametrize("command, name", [("compile", "x.py"), ("compile", "x.pt"), ("draw", "x.dot")])
def test_an_output_under_a_file_is_one_line_and_exit_1(tmp_path, capsys, command, name):
    (tmp_path / "file").write_text("")
    target = tmp_path / "file" / name
    code, _, err = cli(capsys, command, "lenet", "-o", str(target))
    assert code == 1 and one_line(err) == f"netspec: cannot write {target}: {tmp_path / 'file'} is a file, not a directory"


@pytest.mark.parametrize("command, name", [("compile", "x.py"), ("compile", "x.pt"), ("draw", "x.dot")])
def test_an_output_that_is_a_directory_is_one_line_and_exit_1(tmp_path, capsys, command, name):
    (tmp_path / name).mkdir()
    code, _, err = cli(capsys, command, "lenet", "-o", str(tmp_path / name))
    assert code == 1 and one_line(err) == f"netspec: cannot write {tmp_path / name}: it is a directory"


@pytest.mark.parametrize("command, name", [("compile", "x.py"), ("compile", "x.pt"), ("draw", "x.dot")])
def test_a_read_only_place_is_one_line_and_exit_1_and_leaves_nothing(tmp_path, capsys, monkeypatch, command, name):
    def refuse(*args, **kwargs):  # what a read-only folder does, also for root (see the test below)
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(output.os, "replace", refuse)
    code, _, err = cli(capsys, command, "lenet", "-o", str(tmp_path / name))
    assert code == 1 and one_line(err) == f"netspec: cannot write {tmp_path / name}: Permission denied"
    assert list(tmp_path.iterdir()) == []  # the temporary file is gone too


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes whatever the mode")
def test_a_read_only_folder_is_one_line_and_exit_1(tmp_path, capsys):
    folder = tmp_path / "ro"
    folder.mkdir(mode=0o555)
    code, _, err = cli(capsys, "compile", "lenet", "-o", str(folder / "x.py"))
    assert code == 1 and one_line(err).startswith(f"netspec: cannot write {folder / 'x.py'}: Permission denied")


def test_written_outputs_replace_an_older_file_of_the_same_name(tmp_path, capsys):
    (tmp_path / "x.py").write_text("old")
    assert cli(capsys, "compile", "lenet", "-o", str(tmp_path / "x.py"))[0] == 0
    assert (tmp_path / "x.py").read_text().startswith(("\"\"\"", "#", "import", "from"))


@pytest.mark.parametrize("links", [True, False], ids=["hard-links", "no-hard-links"])
def test_a_file_written_only_if_absent_never_replaces_one(tmp_path, monkeypatch, links):
    if not links:
        def no_links(*args):
            raise PermissionError(1, "Operation not permitted")

        monkeypatch.setattr(output.os, "link", no_links)
    assert output.write_atomic(tmp_path / "a.dot", b"new", overwrite=False) is True
    assert output.write_atomic(tmp_path / "a.dot", b"newer", overwrite=False) is False
    assert (tmp_path / "a.dot").read_bytes() == b"new" and [p.name for p in tmp_path.iterdir()] == ["a.dot"]
