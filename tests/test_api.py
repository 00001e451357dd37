"""The Python API (netspec/__init__.py): specs as names, paths, YAML text or dicts; results that print as the
CLI prints them; everything its docstring mentions exported."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import netspec
from conftest import SPECS, run_python
from netspec.cli import main

TINY = """netspec: 1
name: tiny
input: [1, 8, 8]
body:
  - conv: {out: 4, kernel: 3}
  - relu
  - flatten
  - linear: {out: 3}
"""
TINY_DATA = {"netspec": 1, "name": "tiny", "input": [1, 8, 8],
             "body": [{"conv": {"out": 4, "kernel": 3}}, "relu", "flatten", {"linear": {"out": 3}}]}


def test_every_name_the_docstring_mentions_is_exported_and_exists():
    doc = netspec.__doc__
    mentioned = set(re.findall(r"netspec\.([A-Za-z_]\w*)", doc)) | set(re.findall(r"`([A-Za-z_]\w*)`", doc))
    modules = {"ir"}                                    # netspec.ir: a module named for where the IR lives
    words = {"str", "Path", "pathlib"}                  # names of Python's own that the text uses
    names = mentioned - modules - words
    assert names <= set(netspec.__all__), names - set(netspec.__all__)
    assert all(hasattr(netspec, name) for name in netspec.__all__)
    assert {"load", "summary", "shaped_network", "diff", "compat", "load_matching", "Compat", "WeightsError"} <= names


@pytest.mark.parametrize("given", [TINY, TINY_DATA, "{netspec: 1, name: tiny, input: [1, 8, 8], body: "
                                   "[{conv: {out: 4, kernel: 3}}, relu, flatten, {linear: {out: 3}}]}"],
                         ids=["yaml-text", "dict", "flow-text"])
def test_a_spec_given_as_text_or_data_is_the_same_network_as_from_a_file(given, tmp_path):
    (tmp_path / "tiny.yaml").write_text(TINY)
    from_file = netspec.shaped_network(tmp_path / "tiny.yaml")
    shaped = netspec.shaped_network(given)
    assert (shaped.param_count, shaped.macs, shaped.output_shape) == (from_file.param_count, from_file.macs, (3,))
    assert str(netspec.summary(given)) == str(netspec.summary(from_file))
    assert netspec.load_spec(given).name == "tiny"
    netspec.validate(given)


def test_how_a_string_is_told_apart():
    assert netspec.is_spec_text(TINY) and netspec.is_spec_text("  {netspec: 1}") and netspec.is_spec_text("a\r\nb")
    assert not netspec.is_spec_text("googlenet") and not netspec.is_spec_text("specs/lenet.yaml")
    assert netspec.shaped_network("lenet").name == "lenet"                      # a built-in name
    assert netspec.shaped_network(str(SPECS / "lenet.yaml")).name == "lenet"   # a path


def test_errors_in_text_are_located_in_the_string_and_in_a_dict_by_pointer():
    with pytest.raises(netspec.SpecErrors) as caught:
        netspec.validate(TINY.replace("out: 4", "out: -4"))
    error = caught.value.errors[0]
    assert (error.mark.file, error.mark.line, error.mark.col) == ("<string>", 5, 17)
    with pytest.raises(netspec.SpecErrors) as caught:
        netspec.validate({**TINY_DATA, "body": [{"linear": {"out": -2}}]})
    assert caught.value.errors[0].mark.file == "<dict>" and caught.value.errors[0].path == "/body/0/linear/out"
    netspec.validate({**TINY_DATA, "input": (1, 8, 8)})            # a tuple is a list
    with pytest.raises(TypeError, match="plain data"):
        netspec.validate({**TINY_DATA, "input": object()})
    with pytest.raises(TypeError, match="not int"):
        netspec.validate(3)


def test_text_imports_the_built_in_library_and_nothing_outside_the_current_folder(tmp_path, monkeypatch):
    text = (SPECS / "googlenet.yaml").read_text(encoding="utf-8")
    assert netspec.shaped_network(text).param_count == netspec.shaped_network("googlenet").param_count
    monkeypatch.chdir(tmp_path)
    with pytest.raises(netspec.SpecErrors, match="leaves the folders a spec may read"):
        netspec.validate(TINY.replace("input:", "imports: [../../etc/passwd]\ninput:"))


def test_summary_prints_as_the_cli_table(capsys):
    assert main(["summary", "googlenet", "--depth", "1"]) == 0
    assert str(netspec.summary("googlenet", depth=1)) + "\n" == capsys.readouterr().out


def test_importing_netspec_and_using_text_specs_stays_torch_free():
    done = run_python("import sys, netspec; netspec.summary('netspec: 1\\nname: t\\ninput: [4]\\nbody: [relu]\\n');"
                      " print('torch' in sys.modules)")
    assert done.returncode == 0 and done.stdout.strip() == "False", done.stderr


def test_a_path_object_is_always_a_file_even_where_its_name_would_read_as_text(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("{x}.yaml").write_text(TINY)
    assert netspec.shaped_network(Path("{x}.yaml")).name == "tiny"
    with pytest.raises(netspec.SpecErrors) as caught:    # as a str it starts with `{`: YAML text
        netspec.validate("{x}.yaml")
    assert caught.value.errors[0].mark.file == "<string>"
