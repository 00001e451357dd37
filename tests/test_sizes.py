"""Sizes beyond any tensor, and networks too large to build: int op params are at most 2**31 - 1, an inferred
shape at most 2**31 - 1 per dimension and 2**40 elements, and the torch backend refuses, before allocating
anything, a network with more parameters than --max-params (by default 2·10⁹, or what the memory holds).  Also
the spec params' edge: an int no float holds, and values quoted capped."""

from __future__ import annotations

from pathlib import Path

import pytest

import netspec
from netspec.backends import limits
from netspec.backends.fx import to_graph_module
from netspec.cli import main
from netspec.errors import SpecErrors
from netspec.ops import OPS
from netspec.ops.base import MAX_ELEMENTS, MAX_INT, MAX_SHOWN, ArgError, check_arg

INT_PARAMS = [(op.name, name) for op in OPS.values() for name, p in op.params.items()
              if p.type in ("int", "int2", "padding", "size")]


def spec_file(tmp_path: Path, input_shape: str, *items: str, params: str = "") -> Path:
    path = tmp_path / "net.yaml"
    path.write_text("netspec: 1\nname: net\n" + params + f"input: {input_shape}\nbody:\n"
                    + "".join(f"  - {item}\n" for item in items))
    return path


def first_error(path: Path, **params):
    with pytest.raises(SpecErrors) as info:
        netspec.shaped_network(path, params)
    return info.value.errors[0]


# ── 1. ints beyond any tensor size ────────────────────────────────────────────────────────────────────────────

@pytest.mark.parametrize("op, param", INT_PARAMS)
def test_every_int_param_stops_at_two_to_the_31_minus_one(op, param):
    spec = OPS[op].params[param]
    assert check_arg(spec, MAX_INT) == MAX_INT
    for value in (MAX_INT + 1, 10**20) + (([1, MAX_INT + 1],) if spec.type != "int" else ()):
        with pytest.raises(ArgError) as info:
            check_arg(spec, value)
        assert info.value.expected == "a value ≤ 2,147,483,647 (2**31 - 1)"


def test_an_int_of_thousands_of_digits_is_quoted_capped():
    with pytest.raises(ArgError) as info:
        check_arg(OPS["linear"].params["out"], 10**4000)
    assert info.value.found.startswith("<an int of about ") and len(info.value.found) < MAX_SHOWN


def test_linear_out_above_int64_is_a_located_error(tmp_path):
    """It was 12 lines of C++ stack frames at compile."""
    error = first_error(spec_file(tmp_path, "[8]", "linear: {out: 100000000000000000000}"))
    assert (error.message, error.mark.line, error.expected) == (
        "linear: invalid `out`", 5, "a value ≤ 2,147,483,647 (2**31 - 1)")


def test_an_inferred_dimension_over_the_limit_is_refused_where_it_arises(tmp_path):
    """Strides at the limit, repeated: the first output over 2**31 - 1 is the error (300 of them made a shape of
    thousands of digits, and every command failed formatting it); reading it with `in.*` adds nothing."""
    path = spec_file(tmp_path, "[1, 2, 2]",
                     "{repeat: 300, conv_transpose: {out: 1, kernel: 1, stride: 2147483647}}",
                     'conv: {out: "${in.height}", kernel: 1}')
    with pytest.raises(SpecErrors) as info:
        netspec.shaped_network(path)
    (error,) = info.value.errors
    assert error.message == "conv_transpose output [1, 2147483648, 2147483648] is too large for a tensor"
    assert error.mark.line == 5


def test_a_dimension_at_the_limit_is_accepted(tmp_path):
    path = spec_file(tmp_path, "[1, 2, 1]", "conv_transpose: {out: 1, kernel: 1, stride: 2147483646}")
    assert netspec.shaped_network(path).output_shape == (1, MAX_INT, 1)


def test_an_element_count_over_the_limit_is_refused_though_each_dimension_fits(tmp_path):
    side = 2**20
    fits = spec_file(tmp_path, f"[1, {side}, {side // 2}]", "relu")
    assert netspec.shaped_network(fits).output_shape == (1, side, side // 2)  # 2**39 elements
    error = first_error(spec_file(tmp_path, f"[1, {side}, {side // 2}]", "upsample: {scale: 2}"))
    assert error.message.startswith("upsample output [1, 2097152, 1048576] is too large")
    assert error.expected.endswith(f"at most {MAX_ELEMENTS:,} (2**40) elements per example")


def test_an_input_over_the_limit_is_a_located_error(tmp_path):
    error = first_error(spec_file(tmp_path, "[3, 2147483648, 1]", "relu"))
    assert error.message == "the input [3, 2147483648, 1] is too large for a tensor" and error.mark.line == 3


# ── 2. networks too large to build ────────────────────────────────────────────────────────────────────────────

HUGE = "linear: {out: 1000000}"  # on [5000000]: 5·10¹² params, 20 TB


def test_the_default_limit_is_the_constant_or_what_the_memory_holds(monkeypatch):
    monkeypatch.setattr(limits, "available_memory", lambda: None)
    limits.check_param_count(limits.DEFAULT_MAX_PARAMS)
    with pytest.raises(limits.ModelTooLarge, match="more than the default limit of 2,000,000,000"):
        limits.check_param_count(limits.DEFAULT_MAX_PARAMS + 1)
    monkeypatch.setattr(limits, "available_memory", lambda: 4_000_000)
    limits.check_param_count(1_000_000)
    with pytest.raises(limits.ModelTooLarge, match=r"more than the 4\.0 MB of memory available holds \(1,000,000\)"):
        limits.check_param_count(1_000_001)
    limits.check_param_count(10**9, max_params=10**9)  # a given limit replaces both
    with pytest.raises(limits.ModelTooLarge, match="more than the given limit of 10; pass max_params=N"):
        limits.check_param_count(11, max_params=10)


def test_the_available_memory_is_read_from_the_system():
    available = limits.available_memory()
    assert available is None or available > 0


def test_a_network_too_large_is_refused_before_anything_is_built(tmp_path, monkeypatch):
    shaped = netspec.shaped_network(spec_file(tmp_path, "[5000000]", HUGE))
    monkeypatch.setattr("netspec.backends.fx.module_specs", lambda shaped: pytest.fail("building started"))
    with pytest.raises(netspec.ModelTooLarge, match="5,000,001,000,000 parameters \\(20.0 TB as float32\\)"):
        to_graph_module(shaped)
    with pytest.raises(netspec.ModelTooLarge):
        netspec.load(shaped)


def test_load_takes_the_limit_as_a_keyword_that_no_spec_param_shadows(tmp_path):
    assert netspec.load("lenet", max_params=61_706) is not None
    with pytest.raises(netspec.ModelTooLarge, match="61,706 parameters"):
        netspec.load("lenet", max_params=61_705)
    # A spec param named `max_params` (or `spec`) is still a spec param, through shaped_network.
    path = spec_file(tmp_path, "[4]", 'linear: {out: "$max_params"}', params="params: {max_params: 3}\n")
    model = netspec.load(netspec.shaped_network(path, {"max_params": 5}), max_params=100)
    assert netspec.shaped_network(path, {"max_params": 5}).output_shape == (5,) and model is not None


def test_compile_refuses_in_one_line_naming_the_flag(tmp_path, capsys):
    path = spec_file(tmp_path, "[5000000]", HUGE)
    assert main(["compile", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("netspec: error: the network has 5,000,001,000,000 parameters")
    assert "--max-params" in err
    assert main(["compile", "lenet", "--max-params", "61705"]) == 2
    assert main(["compile", "lenet", "--max-params", "61706"]) == 0
    capsys.readouterr()
    assert main(["compile", "lenet", "--max-params", "-1"]) == 2
    assert "--max-params: must be 0 or more" in capsys.readouterr().err


def test_running_out_of_memory_while_building_is_one_line_and_exit_1(monkeypatch, capsys):
    def fail(*args, **kwargs):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:127] DefaultCPUAllocator: can't allocate memory")

    monkeypatch.setattr("netspec.backends.fx._Build.module", fail)
    assert main(["compile", "lenet"]) == 1
    assert capsys.readouterr().err == ("netspec: error: not enough memory to build the network's 61,706 "
                                       "parameters (246.8 kB as float32)\n")


def test_train_eval_and_export_take_the_limit(tmp_path, capsys):
    path = spec_file(tmp_path, "[1, 8, 8]", "flatten", "linear: {out: 10}")  # 650 params
    common = ["--data", "synthetic", "--no-download", "--device", "cpu", "--subset", "32", "--epochs", "1",
              "--batch-size", "32", "--threads", "1", "--out", str(tmp_path / "runs"), "--no-progress"]
    assert main(["train", str(path), *common, "--max-params", "649"]) == 2
    assert "650 parameters" in capsys.readouterr().err and not (tmp_path / "runs").exists()
    assert main(["train", str(path), *common, "--max-params", "650"]) == 0
    (run_dir,) = (tmp_path / "runs").iterdir()
    capsys.readouterr()
    assert main(["eval", str(run_dir), "--no-download", "--device", "cpu", "--max-params", "649"]) == 2
    assert main(["export", str(run_dir), "-o", str(tmp_path / "model.pt"), "--max-params", "649"]) == 2
    assert capsys.readouterr().err.count("650 parameters") == 2 and not (tmp_path / "model.pt").exists()
    assert main(["export", str(run_dir), "-o", str(tmp_path / "model.pt"), "--max-params", "650"]) == 0


# ── 3. floats and quoted values in spec params ────────────────────────────────────────────────────────────────

FLOAT_PARAM = "params:\n  p: {type: float, default: 0.5}\n"


def test_a_float_param_refuses_an_int_no_float_holds(tmp_path):
    path = spec_file(tmp_path, "[8]", 'dropout: {p: "$p"}', params="params:\n  p: {type: float, default: 1" +
                     "0" * 309 + "}\n")
    error = first_error(path)
    assert error.message == ("param `p` (default): expected float, found int <an int of about 309 digits>, too "
                             "large for a float")
    assert error.mark.line == 4
    assert first_error(spec_file(tmp_path, "[8]", "relu", params=FLOAT_PARAM), p=-10**400).message.startswith(
        "param `p` (--set): expected float, found int <an int of about 400 digits>")
    assert netspec.shaped_network(path, {"p": 10**308}).network.params["p"] == 1e308


def test_a_mistyped_spec_param_is_quoted_capped(tmp_path):
    error = first_error(spec_file(tmp_path, "[8]", "relu", params=FLOAT_PARAM), p="x" * 4 * 2**20)
    assert len(error.message) < 300 and error.message.endswith("…")
    assert error.found.startswith("string 'xxx") and len(error.found) < MAX_SHOWN + 10


def test_template_arguments_and_the_input_are_quoted_capped(tmp_path):
    long = "y" * 5000
    blocks = "blocks:\n  b: {params: {n: int}, seq: [relu]}\n"
    path = spec_file(tmp_path, "[8]", f"b: {{n: {long}}}", params=blocks)
    error = first_error(path)
    assert error.message.startswith("template `b`: argument `n`: expected int, found string 'yyy")
    assert len(error.message) < 300 and len(error.found) < MAX_SHOWN + 10
    error = first_error(spec_file(tmp_path, '["$s", 1, 1]', "relu", params=f"params: {{s: {long}}}\n"))
    assert error.message.startswith("`input` must be") and len(error.found) < MAX_SHOWN + 10
