"""Loading YAML (netspec.frontend.yaml_source): marks on every key and value, refused constructs, bounds, imports."""

from __future__ import annotations

from pathlib import Path

import pytest

from netspec.errors import Mark, SpecErrors
from netspec.frontend.imports import load_all, resolve_spec
from netspec.frontend.yaml_source import MAX_DEPTH, MAX_FILE_BYTES, MAX_VALUES, MDict, MList, key_mark, mark_of, parse_text, read_document

from conftest import REPO, SPECS
from cpu_time import cpu_limit


def parse(text: str):
    return parse_text(text, "t.yaml")


def error_of(text: str):
    with pytest.raises(SpecErrors) as caught:
        parse(text)
    return caught.value.errors[0]


# ── marks ─────────────────────────────────────────────────────────────────────────────────────────────────────

def test_keys_and_values_remember_their_line_and_column():
    data = parse("netspec: 1\nbody:\n  - conv: {out: 6, kernel: 5}\n  - relu\n")
    assert key_mark(data, "body") == Mark("t.yaml", 2, 1)
    assert mark_of(data, "netspec") == Mark("t.yaml", 1, 10)
    body = data["body"]
    assert isinstance(body, MList) and mark_of(body, 0) == Mark("t.yaml", 3, 5)
    assert mark_of(body, 1) == Mark("t.yaml", 4, 5)
    conv = body[0]["conv"]
    assert key_mark(conv, "kernel") == Mark("t.yaml", 3, 20)
    assert mark_of(conv, "kernel") == Mark("t.yaml", 3, 28)


def test_every_mark_knows_the_json_pointer_of_its_value():
    data = parse("body:\n  - conv: {out: 6, kernel: 5}\n  - {name: x, relu: {}}\nparams: {a/b~c: 1}\n")
    assert mark_of(data["body"][0]["conv"], "kernel").pointer == "/body/0/conv/kernel"
    assert key_mark(data["body"][1], "name").pointer == "/body/1/name"
    assert mark_of(data["body"], 1).pointer == "/body/1"
    assert key_mark(data["params"], "a/b~c").pointer == "/params/a~1b~0c"   # RFC 6901 escapes


def test_the_pointer_plays_no_part_in_comparing_marks():
    assert Mark("f", 1, 2, "/a") == Mark("f", 1, 2) and hash(Mark("f", 1, 2, "/a")) == hash(Mark("f", 1, 2))


def test_columns_count_characters_not_bytes():
    data = parse('doc: "äöü€"\nx: {a: "é", b: 2}\n')
    assert mark_of(data["x"], "b") == Mark("t.yaml", 2, 16)


def test_containers_are_plain_dicts_and_lists_with_marks():
    data = parse("a: [1, 2.5, true, null, text]\n")
    assert isinstance(data, MDict) and isinstance(data, dict)
    assert data == {"a": [1, 2.5, True, None, "text"]}
    assert data.mark == Mark("t.yaml", 1, 1)


def test_a_date_looking_value_is_read_as_text_not_refused_as_a_tag():
    assert parse("doc: 2024-01-31\n") == {"doc": "2024-01-31"}


# ── refused constructs ────────────────────────────────────────────────────────────────────────────────────────

def test_duplicate_keys_are_refused_at_the_second_with_a_note_at_the_first():
    error = error_of("name: a\ninput: [1]\nname: b\n")
    assert error.message == "duplicate key `name`"
    assert error.mark == Mark("t.yaml", 3, 1)
    assert error.notes[0].mark == Mark("t.yaml", 1, 1)


@pytest.mark.parametrize("text, tag", [
    ("a: !!python/object/apply:os.system [ls]\n", "!!python/object/apply:os.system"),
    ("a: !!python/name:os.system ''\n", "!!python/name:os.system"),
    ("a: !!python/tuple [1, 2]\n", "!!python/tuple"),
    ("a: !!set {x: null}\n", "!!set"),
    ("a: !!omap [{x: 1}]\n", "!!omap"),
    ("a: !!binary aGVsbG8=\n", "!!binary"),
    ("a: !!timestamp 2024-01-31\n", "!!timestamp"),
    ("a: !custom {x: 1}\n", "!custom"),
    ("!!python/name:os.system : 1\n", "!!python/name:os.system"),
])
def test_tags_that_build_objects_are_refused_where_they_are_written(text, tag):
    error = error_of(text)
    assert error.message == f"the tag `{tag}` is not allowed: a spec is plain data"
    assert error.mark.line == 1


def test_the_plain_scalar_tags_are_harmless_and_allowed():
    assert parse("a: !!str 12\nb: !!int '7'\n") == {"a": "12", "b": 7}


def test_merge_keys_are_refused():
    error = error_of("base: &b {x: 1}\nc: {<<: *b, y: 2}\n")
    assert "merge keys" in error.message and error.mark == Mark("t.yaml", 2, 5)


def test_a_syntax_error_is_located_and_worded_by_the_parser():
    error = error_of("a: 1\nb: [1, 2\nc: 3\n")
    assert error.message.startswith("YAML syntax error:")
    assert error.mark.line in (2, 3)


def test_an_unclosed_bracket_is_located_where_it_opens_not_past_the_end():
    error = error_of("a: 1\nb: {x: 1\n")
    assert error.mark == Mark("t.yaml", 2, 4)


def test_an_empty_document_is_an_error_at_the_start():
    assert error_of("# only a comment\n").message == "the file is empty"
    assert error_of("").mark == Mark("t.yaml", 1, 1)


# ── bounds ────────────────────────────────────────────────────────────────────────────────────────────────────

def billion_laughs(levels: int = 9) -> str:
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_is_refused_fast_without_expanding_it():
    with cpu_limit(1.0):  # milliseconds; expanding the aliases would build 9**9 values
        error = error_of(billion_laughs())
    assert f"the limit is {MAX_VALUES:,}" in error.message
    assert error.mark == Mark("t.yaml", 5, 5)  # l4: the first anchor whose expansion passes the limit


def test_aliases_within_the_bound_are_expanded_like_copies():
    data = parse("a: &x [1, 2]\nb: *x\n")
    assert data["b"] == [1, 2] and data["b"] is not data["a"]


def test_a_recursive_alias_is_refused():
    assert "refers to a value that contains it" in error_of("a: &x [1, *x]\n").message


def test_nesting_deeper_than_the_limit_is_refused():
    depth = MAX_DEPTH + 5
    assert f"more than {MAX_DEPTH}" in error_of("a: " + "[" * depth + "]" * depth + "\n").message


def test_a_file_over_the_size_limit_is_refused_before_parsing(tmp_path):
    big = tmp_path / "big.yaml"
    big.write_bytes(b"#" * (MAX_FILE_BYTES + 1))
    with pytest.raises(SpecErrors, match="larger than the limit"):
        read_document(big)


def test_a_file_that_is_not_utf8_is_located_at_the_bad_byte(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"a: 1\nname: caf\xe9\n")
    with pytest.raises(SpecErrors) as caught:
        read_document(bad, "bad.yaml")
    assert caught.value.errors[0].mark == Mark("bad.yaml", 2, 10)


# ── files, names and imports ──────────────────────────────────────────────────────────────────────────────────

def test_a_builtin_spec_is_found_by_name_and_a_block_library_is_not():
    assert resolve_spec("googlenet") == SPECS / "googlenet.yaml"
    with pytest.raises(SpecErrors):
        resolve_spec("blocks/inception")


def test_an_unknown_spec_name_suggests_the_closest_builtin():
    with pytest.raises(SpecErrors) as caught:
        resolve_spec("googlenett")
    assert caught.value.errors[0].hint.startswith("did you mean `googlenet`")


def test_imports_are_loaded_transitively_root_first():
    documents = load_all(SPECS / "googlenet.yaml")
    assert documents[0].path == (SPECS / "googlenet.yaml").resolve()
    assert (SPECS / "blocks" / "inception.yaml").resolve() in [d.path for d in documents]


def test_an_import_cycle_names_the_chain():
    with pytest.raises(SpecErrors) as caught:
        load_all(REPO / "tests" / "bad_specs" / "import_cycle.yaml")
    assert caught.value.errors[0].message == "import cycle: cycle_a.yaml → cycle_b.yaml → cycle_a.yaml"


def test_an_import_may_not_leave_the_specs_folder(tmp_path):
    (tmp_path / "inner").mkdir()
    (tmp_path / "secret.yaml").write_text("netspec: 1\nblocks: {}\n")
    spec = tmp_path / "inner" / "net.yaml"
    spec.write_text("netspec: 1\nimports: [../secret.yaml]\n")
    with pytest.raises(SpecErrors, match="leaves the folders a spec may read"):
        load_all(spec)


def test_an_error_in_an_imported_file_notes_where_it_was_imported(tmp_path):
    (tmp_path / "lib.yaml").write_text("netspec: 1\nblocks: {a: 1, a: 2}\n")
    spec = tmp_path / "net.yaml"
    spec.write_text("netspec: 1\nimports: [lib.yaml]\n")
    with pytest.raises(SpecErrors) as caught:
        load_all(spec)
    error = caught.value.errors[0]
    assert error.message == "duplicate key `a`" and error.mark.file.endswith("lib.yaml")
    assert error.notes[-1].text == "imported at" and error.notes[-1].mark.line == 2


def test_every_shipped_spec_and_library_parses(tmp_path):
    for path in sorted(SPECS.rglob("*.yaml")):
        assert isinstance(read_document(path).data, MDict), path


def test_an_import_that_brings_no_blocks_is_refused_at_the_import(tmp_path):
    (tmp_path / "other_net.yaml").write_text("netspec: 1\nname: n\ninput: [4]\nbody: [relu]\n")
    spec = tmp_path / "net.yaml"
    spec.write_text("netspec: 1\nimports:\n  - other_net.yaml\n")
    with pytest.raises(SpecErrors) as caught:
        load_all(spec)
    error = caught.value.errors[0]
    assert error.message == "import `other_net.yaml` brings no blocks: it is a network spec without `blocks:`"
    assert (error.mark.line, error.mark.col) == (3, 5)


def test_a_network_that_defines_blocks_may_be_imported_for_them(tmp_path):
    (tmp_path / "other_net.yaml").write_text("netspec: 1\nname: n\ninput: [4]\nblocks:\n  b: {seq: [relu]}\n"
                                             "body: [b]\n")
    spec = tmp_path / "net.yaml"
    spec.write_text("netspec: 1\nimports: [other_net.yaml]\n")
    assert [d.path.name for d in load_all(spec)] == ["net.yaml", "other_net.yaml"]
