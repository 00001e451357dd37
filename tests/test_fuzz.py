"""Fuzzing the front end: whatever a file holds, `netspec.pipeline.shaped_network` either succeeds or raises
`netspec.SpecErrors` whose errors render as `file:line:col: error: …` — never any other exception.

Inputs (hypothesis):
- mutations of the zoo's specs and block libraries, as data: keys deleted, duplicated, renamed, swapped; values
  replaced by random scalars of any type, by random expressions, by other subtrees; values nested deeply;
- mutations of the zoo's files as text: lines deleted, duplicated (so keys are duplicated), swapped, cut;
- random YAML documents: random text, soups of YAML tokens (anchors, tags, flow brackets), and random
  structures shaped like specs (random ops with random arguments).

The default run tries ≥ 500 inputs in all (≈ 20–40 s on 2 cores); `pytest -m slow tests/test_fuzz.py` runs the
same properties on 20× as many (≥ 10,000).  docs/testing.md records the last long run.
"""

from __future__ import annotations

import copy
import re
import shutil
from collections import Counter
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netspec.errors import SpecErrors, render
from netspec.frontend.grammar import MERGES
from netspec.ops import OPS
from netspec.pipeline import shaped_network

from conftest import SPECS

# Fast specs (each compiles to a shaped network in < 30 ms) that together use every kind of item: templates,
# repeat/as, when, from, concat, add, inline seqs, expressions over `in`, expect.
# The three torchvision families add chunks and their parts, learnable tensors, permutes, layernorm/linear over
# the last dim or the channels, names with `-` and sum() in expressions.
ZOO = ["lenet", "bn_lenet", "googlenet", "nin", "vgg11", "alexnet", "resnet18", "densenet",
       "imagenet/shufflenet_v2_x1_0", "imagenet/convnext_tiny", "imagenet/regnet_y_400mf"]
LIBRARIES = sorted(p.name for p in (SPECS / "blocks").glob("*.yaml"))
SCALE = 20                                 # the slow run's examples per default example
EXAMPLES = {"data": 340, "text": 150, "random_text": 80, "tokens": 100, "structures": 120, "overrides": 60}  # 850
FIRST_LINE = re.compile(r"^[^\n]+:\d+:\d+: error: \S")
COUNTS: Counter = Counter()                # inputs tried per property (each test checks its promised number)


def _settings(examples: int):
    return settings(max_examples=examples, deadline=None, derandomize=False, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much, HealthCheck.large_base_example])


# ── the property ──────────────────────────────────────────────────────────────────────────────────────────────

@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """A spec folder with copies of the block libraries, so that `imports: [blocks/x.yaml]` finds the (possibly
    mutated) copy first and nothing in the repository is touched."""
    root = tmp_path_factory.mktemp("fuzz")
    shutil.copytree(SPECS / "blocks", root / "blocks")
    return root


def check(folder: Path, text: str, library: tuple[str, str] | None = None, overrides: dict | None = None) -> str:
    """Writes `text` as the network (and `library` = (name, text) over one block library), runs the pipeline
    (with `overrides` as `--set` gives them), and fails on anything but success or SpecErrors.  Returns "ok" or
    the first error's message."""
    spec = folder / "net.yaml"
    spec.write_text(text, encoding="utf-8", errors="surrogatepass")
    for name in LIBRARIES:  # every library as shipped, but the mutated one
        shipped = (SPECS / "blocks" / name).read_text(encoding="utf-8")
        (folder / "blocks" / name).write_text(library[1] if library and library[0] == name else shipped,
                                              encoding="utf-8")
    try:
        shaped_network(spec, overrides)
        return "ok"
    except SpecErrors as err:
        for error in err.errors:   # errors must also be printable as the CLI prints them
            assert FIRST_LINE.match(error.first_line()), error.first_line()
            assert error.mark.line >= 1 and error.mark.col >= 1, error.first_line()
            render(error)
        return err.errors[0].message


def run_case(folder: Path, kind: str, text: str, library: tuple[str, str] | None = None,
             overrides: dict | None = None) -> None:
    COUNTS[kind] += 1
    check(folder, text, library, overrides)


# ── strategies ────────────────────────────────────────────────────────────────────────────────────────────────

NAMES = ["conv", "relu", "seq", "concat", "add", "repeat", "as", "when", "from", "name", "params", "blocks",
         "body", "input", "output", "imports", "expect", "train", "out", "kernel", "stride", "padding", "netspec",
         "doc", "type", "default", "inception", "residual", "i", "x", "__class__", "in"]
EXPR_TOKENS = ["in.channels", "in.height", "in.width", "in.features", "in.shape", "in", "i", "num_classes",
               "size", "x", "__import__", "open", "len", "min", "max", "int", "round", "abs", "float", "bool",
               "0", "1", "2", "-1", "10**18", "9", "1.5", "1e308", "'s'", "[", "]", "(", ")", ",", "+", "-", "*",
               "/", "//", "%", "**", "<", "==", "and", "or", "not", " if ", " else ", "lambda", ":", ".", "{",
               "}", "true", "null", "$", "\\"]
SCALARS = st.one_of(st.integers(), st.integers(-3, 300), st.floats(allow_nan=True, allow_infinity=True),
                    st.booleans(), st.none(), st.text(max_size=20), st.sampled_from(NAMES + list(OPS)),
                    st.just([]), st.just({}))


@st.composite
def expressions(draw) -> str:
    """A string in an expression position: `$` followed by random text or by a soup of expression tokens."""
    body = draw(st.one_of(st.text(max_size=30),
                          st.lists(st.sampled_from(EXPR_TOKENS), max_size=12).map(" ".join)))
    return draw(st.sampled_from(["$", "${", "$x", "a${", "${1}"])) + body + draw(st.sampled_from(["", "}", "}}"]))


def _paths(data, path=()):
    yield path
    children = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else ()
    for key, value in children:
        yield from _paths(value, path + (key,))


def _at(data, path):
    for key in path:
        data = data[key]
    return data


@st.composite
def mutated_data(draw, original):
    """`original` (plain data) after 1–4 random edits at random places."""
    data = copy.deepcopy(original)
    for _ in range(draw(st.integers(1, 4))):
        # The network's items first: hypothesis leans towards the first choice, which should not be `netspec:`.
        paths = sorted((p for p in _paths(data) if p), key=lambda p: (p[0] not in ("body", "blocks"), len(p) == 1))
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent, key = _at(data, path[:-1]), path[-1]
        edit = draw(st.sampled_from(["delete", "scalar", "expression", "duplicate", "swap", "rename", "nest",
                                     "graft", "wrap"]))
        _edit(draw, data, paths, parent, key, edit)
    return data


def _edit(draw, data, paths, parent, key, edit: str) -> None:
    if edit == "delete":
        del parent[key]
    elif edit == "scalar":
        parent[key] = draw(SCALARS)
    elif edit == "expression":
        parent[key] = draw(expressions())
    elif edit == "duplicate":  # the same value twice: a repeated list item, or a second key holding it
        if isinstance(parent, list):
            parent.insert(key, copy.deepcopy(parent[key]))
        else:
            parent[draw(st.sampled_from(NAMES))] = copy.deepcopy(parent[key])
    elif edit == "swap":
        other = draw(st.sampled_from(list(parent.keys()) if isinstance(parent, dict) else range(len(parent))))
        parent[key], parent[other] = parent[other], parent[key]
    elif edit == "rename" and isinstance(parent, dict):
        parent[draw(st.one_of(st.sampled_from(NAMES + list(OPS)), st.text(max_size=8)))] = parent.pop(key)
    elif edit == "nest":  # deep nesting, around the 64-level limit and past it
        value = parent[key]
        for wrapper in draw(st.lists(st.sampled_from(["list", "seq", "map"]), min_size=1, max_size=90)):
            value = [value] if wrapper == "list" else {"seq": [value]} if wrapper == "seq" else {"x": value}
        parent[key] = value
    elif edit == "graft":  # another part of the same spec, out of place
        parent[key] = copy.deepcopy(_at(data, draw(st.sampled_from(paths))))
    elif edit == "wrap":
        parent[key] = [parent[key]]


def _dump(data) -> str:
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=120)


def _load(path: Path):
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _text(name: str) -> str:
    """A zoo spec's text as the fuzzed copy needs it: the copy sits beside its libraries, so an imagenet spec's
    `../blocks/` imports become `blocks/`."""
    return (SPECS / f"{name}.yaml").read_text(encoding="utf-8").replace("../blocks/", "blocks/")


ORIGINALS = {name: yaml.safe_load(_text(name)) for name in ZOO}
LIBRARY_DATA = {name: _load(SPECS / "blocks" / name) for name in LIBRARIES}
# A spec that imports the library, to exercise a mutated copy of it: a zoo spec, else one of specs/imagenet/.
HOSTS = {lib: next((n for n in ZOO + sorted(f"imagenet/{p.stem}" for p in (SPECS / "imagenet").glob("*.yaml"))
                    if f"blocks/{lib}" in _text(n)), None) for lib in LIBRARIES}


@st.composite
def data_mutations(draw) -> tuple[str, tuple[str, str] | None]:
    """(network text, optional (library name, library text)): a mutated spec, or a mutated library imported by
    an intact spec."""
    libraries = [lib for lib, host in HOSTS.items() if host]
    if draw(st.integers(0, 3)) == 0 and libraries:
        lib = draw(st.sampled_from(libraries))
        return _text(HOSTS[lib]), (lib, _dump(draw(mutated_data(LIBRARY_DATA[lib]))))
    return _dump(draw(mutated_data(ORIGINALS[draw(st.sampled_from(ZOO))]))), None


@st.composite
def text_mutations(draw) -> str:
    """A zoo file edited as lines: duplicated lines repeat keys, cut lines break the syntax."""
    lines = _text(draw(st.sampled_from(ZOO))).splitlines()
    for _ in range(draw(st.integers(1, 4))):
        if not lines:
            break
        index = draw(st.integers(0, len(lines) - 1))
        edit = draw(st.sampled_from(["delete", "duplicate", "swap", "cut", "insert", "indent"]))
        if edit == "delete":
            del lines[index]
        elif edit == "duplicate":
            lines.insert(index, lines[index])
        elif edit == "swap":
            other = draw(st.integers(0, len(lines) - 1))
            lines[index], lines[other] = lines[other], lines[index]
        elif edit == "cut":
            lines[index] = lines[index][:draw(st.integers(0, max(0, len(lines[index]) - 1)))]
        elif edit == "insert":
            lines.insert(index, draw(st.text(max_size=30)))
        else:
            lines[index] = draw(st.sampled_from([" ", "  ", "\t", "- "])) + lines[index]
    return "\n".join(lines) + "\n"


# Any text; mostly printable (YAML refuses most control characters at once) and rich in YAML's punctuation.
RANDOM_TEXT = st.one_of(
    st.text(st.one_of(st.characters(exclude_categories=["Cc", "Cs"]), st.sampled_from("\n :-[]{}&*!|>'\"#%@,?$\t")),
            max_size=400),
    st.text(max_size=200))
YAML_TOKENS = ["netspec: 1\n", "name: n\n", "input: [1, 8, 8]\n", "body:\n", "blocks:\n", "  ", "- ", "\n", ": ",
               "{", "}", "[", "]", ",", "&a ", "*a", "&b ", "*b", "<<: ", "? ", "!!python/object/apply:os.system",
               "!!python/name:os.system ", "!!set ", "!!binary ", "!foo ", "!!int ", "!!str ", "'", '"', "|\n",
               ">\n", "#", "---\n", "...\n", "%YAML 1.1\n", "%TAG ! tag:x,2000:\n", "conv", "relu", "repeat: ",
               "$x", "${in.channels}", "1", "-1", "1e9", ".nan", "~", "null", "true", "\t", "\ufeff", "\x85", "é"]


TYPED = {"int": st.integers(-1, 9), "int2": st.one_of(st.integers(0, 5), st.lists(st.integers(0, 5), max_size=3)),
         "bool": st.booleans(), "float": st.floats(-1, 2),
         "str": st.sampled_from(["torch", "formula", "tanh", "x", "last", "channels", "features", "all", "row"]),
         "padding": st.one_of(st.integers(0, 3), st.sampled_from(["same", "valid"])), "size": st.integers(1, 9),
         "floats": st.one_of(st.floats(-2, 2), st.lists(st.floats(-2, 2), max_size=4)),
         "ints": st.lists(st.integers(-2, 4), max_size=5)}
# Names and `from:`s that meet: parts of chunks (`h.1`, `h.7`), learnable tensors, names with `-`.
ITEM_NAMES = ["h", "p", "a-b", "-x", "h.0"]
REFS = ["h", "h.0", "h.1", "h.7", "p", "p.0", "a-b", "input"]


def mostly(usual, rare):
    """`rare` about one time in five, else `usual` (hypothesis's one_of would give each half).  The rare branch is
    not at 0 or at the bounds, which hypothesis favours."""
    return st.integers(0, 9).flatmap(lambda roll: rare if roll in (3, 6) else usual)


@st.composite
def op_items(draw):
    """An op with arguments that mostly have the right names and types (so that many reach the shape rules)."""
    name = draw(mostly(st.sampled_from(sorted(OPS) + ["x"]), st.sampled_from(["chunk", "parameter", "mul"])))
    params = OPS[name].params if name in OPS else {}
    args = {}
    for key in draw(st.lists(st.sampled_from(sorted(params) + ["x"]), max_size=4, unique=True)):
        kind = params[key].type if key in params else "int"
        args[key] = draw(mostly(TYPED[kind], st.one_of(expressions(), SCALARS)))
    item = {name: args} if args else name
    if draw(st.integers(0, 2)) == 0:
        own = {"chunk": "h", "parameter": "p"}.get(name)  # so that `from: h.1` often meets a chunk
        item = {name: args or {}, "name": own if own and draw(st.booleans()) else draw(st.sampled_from(ITEM_NAMES))}
        if draw(st.booleans()):
            item["from"] = draw(st.one_of(st.sampled_from(REFS), st.lists(st.sampled_from(REFS), max_size=3)))
    return item


def spec_like():
    """Random structures with a spec's outline: random ops (with random arguments) and composites."""
    item = st.recursive(op_items(), lambda inner: st.one_of(
        st.builds(lambda items: {"seq": items}, st.lists(inner, max_size=3)),
        st.builds(lambda merge, items: {merge: items}, st.sampled_from(MERGES),   # concat, add, mul, …
                  st.lists(st.lists(inner, max_size=2), min_size=1, max_size=3)),
        st.builds(lambda n, items: {"repeat": n, "as": "i", "seq": items}, st.one_of(st.integers(-1, 4),
                                                                                  expressions()),
                  st.lists(inner, max_size=2)),
        st.builds(lambda w, it: {"when": w, **it} if isinstance(it, dict) else it,
                  mostly(st.booleans(), st.one_of(expressions(), SCALARS)), inner)), max_leaves=12)
    shape = mostly(st.sampled_from([[1, 8, 8], [3, 16, 16], [16]]),
                   st.one_of(st.lists(st.integers(-1, 40), max_size=4), expressions(), SCALARS))
    params = st.dictionaries(st.sampled_from(["x", "size"]), st.one_of(st.integers(1, 8), SCALARS), max_size=2)
    # `outputs:` naming nodes that may or may not exist, train-only or not, in any order.
    node = st.one_of(st.sampled_from(["0", "1", "input", "x", "0.0", "1.concat"]), SCALARS)
    entry = st.one_of(node, st.fixed_dictionaries({"from": node}, optional={
        "train_only": mostly(st.booleans(), SCALARS), "when": mostly(st.booleans(), expressions())}))
    outputs = st.dictionaries(st.sampled_from(["logits", "aux", "_x", "class", "a"]), entry, max_size=3)
    return st.fixed_dictionaries({"netspec": st.just(1), "name": st.just("n"), "input": shape,
                                  "body": st.lists(item, max_size=6)}, optional={"params": params,
                                                                                 "outputs": outputs})


@st.composite
def overridden(draw) -> tuple[str, dict]:
    """A zoo spec as shipped with random `--set` values for its params (and for params it does not have)."""
    name = draw(st.sampled_from(ZOO))
    own = sorted(ORIGINALS[name].get("params") or {}) or ["x"]
    key = mostly(st.sampled_from(own), st.sampled_from(["x", "in", "__class__"]))
    value = mostly(st.one_of(st.integers(-2, 200), st.lists(st.integers(-2, 200), max_size=5)),
                   st.one_of(SCALARS, st.lists(SCALARS, max_size=5), expressions()))
    return _text(name), draw(st.dictionaries(key, value, min_size=1,
                                                                                       max_size=3))


# ── the tests: each property twice, at the CI size and at the long run's ──────────────────────────────────────

def _data_test(examples: int):
    @_settings(examples)
    @given(case=data_mutations())
    def test(folder, case):
        run_case(folder, "data", case[0], case[1])
    return test


def _overrides_test(examples: int):
    @_settings(examples)
    @given(case=overridden())
    def test(folder, case):
        run_case(folder, "overrides", case[0], overrides=case[1])
    return test


def _text_test(kind: str, strategy, examples: int):
    @_settings(examples)
    @given(text=strategy)
    def test(folder, text):
        run_case(folder, kind, text)
    return test


def _counted(kind: str, property_test, examples: int):
    """The property, then a check that it really tried its number of inputs (hypothesis stops early only when it
    believes a space is exhausted; these are not).  Checked inside each test, so no test depends on another."""
    def test(folder):
        before = COUNTS[kind]
        property_test(folder)
        tried = COUNTS[kind] - before
        assert tried >= examples, f"{kind}: {tried} inputs tried, {examples} promised"
    return test


def _tests(scale: int):
    properties = {
        "data": _data_test(EXAMPLES["data"] * scale),
        "text": _text_test("text", text_mutations(), EXAMPLES["text"] * scale),
        "random_text": _text_test("random_text", RANDOM_TEXT, EXAMPLES["random_text"] * scale),
        "tokens": _text_test("tokens", st.lists(st.sampled_from(YAML_TOKENS), max_size=40).map("".join),
                             EXAMPLES["tokens"] * scale),
        "structures": _text_test("structures", spec_like().map(_dump), EXAMPLES["structures"] * scale),
        "overrides": _overrides_test(EXAMPLES["overrides"] * scale),
    }
    return {kind: _counted(kind, test, EXAMPLES[kind] * scale) for kind, test in properties.items()}


CI, LONG = _tests(1), _tests(SCALE)

test_mutated_zoo_specs_and_libraries_succeed_or_raise_spec_errors = CI["data"]
test_zoo_files_with_edited_lines_succeed_or_raise_spec_errors = CI["text"]
test_random_text_succeeds_or_raises_spec_errors = CI["random_text"]
test_soups_of_yaml_tokens_succeed_or_raise_spec_errors = CI["tokens"]
test_random_spec_like_structures_succeed_or_raise_spec_errors = CI["structures"]
test_zoo_specs_with_random_param_overrides_succeed_or_raise_spec_errors = CI["overrides"]

test_long_run_of_mutated_zoo_specs = pytest.mark.slow(LONG["data"])
test_long_run_of_edited_zoo_files = pytest.mark.slow(LONG["text"])
test_long_run_of_random_text = pytest.mark.slow(LONG["random_text"])
test_long_run_of_yaml_token_soups = pytest.mark.slow(LONG["tokens"])
test_long_run_of_random_spec_like_structures = pytest.mark.slow(LONG["structures"])
test_long_run_of_random_param_overrides = pytest.mark.slow(LONG["overrides"])


def test_the_default_run_promises_at_least_500_inputs_and_the_long_run_10000():
    assert sum(EXAMPLES.values()) >= 500 and sum(EXAMPLES.values()) * SCALE >= 10_000


def test_the_harness_itself_tells_success_from_a_spec_error(folder):
    """The property is not vacuous: the zoo passes through `check`, and a broken spec gives its message."""
    assert check(folder, (SPECS / "googlenet.yaml").read_text(encoding="utf-8")) == "ok"
    assert check(folder, "netspec: 1\nname: n\ninput: [1, 8, 8]\nbody: [sigmod]\n") == "unknown op or template `sigmod`"


def test_a_crash_outside_spec_errors_would_fail_the_property(folder, monkeypatch):
    import netspec.passes.shapes

    def broken(graph):
        raise KeyError("bug")

    monkeypatch.setattr(netspec.passes.shapes, "infer", broken)
    with pytest.raises(KeyError):
        check(folder, (SPECS / "lenet.yaml").read_text(encoding="utf-8"))
