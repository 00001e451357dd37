"""Misusing the command line: each mistake is exit 2 with one error line and no traceback.

Usage mistakes (flags, values) print exactly one line, `netspec: error: …`.  A spec file that is missing, a
directory or unreadable is a located spec error: its one error line is `FILE:1:1: error: …` (a hint and the error
count may follow, as for every spec error).  tests/test_cli.py has the basic cases (unknown command, unknown
flag of validate, two malformed --set); these are the rest.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from netspec.cli import main

from conftest import run_cli


def cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if "error:" in line]


def assert_usage_error(code: int, err: str, start: str) -> None:
    assert code == 2, err
    assert err.splitlines() == [err.rstrip("\n")], f"not one line: {err!r}"
    assert err.startswith(start), err
    assert "Traceback" not in err


# ── unknown commands and flags ────────────────────────────────────────────────────────────────────────────────

@pytest.mark.parametrize("args, start", [
    (["valdiate", "lenet"], "netspec: error: unknown command 'valdiate'; did you mean `validate`?"),
    (["--bogus", "validate", "lenet"], "netspec: error: unrecognized arguments: --bogus"),
    (["summary", "lenet", "--jsn"], "netspec: error: unrecognized arguments: --jsn"),
    (["compile", "lenet", "--emit", "c"], "netspec: error: unrecognized arguments: --emit c"),
    (["draw", "lenet", "--colour"], "netspec: error: unrecognized arguments: --colour"),
    (["train", "lenet", "--epochz", "3"], "netspec: error: unrecognized arguments: --epochz 3"),
    (["eval", "runs/x", "--jsno"], "netspec: error: unrecognized arguments: --jsno"),
    (["train", "lenet", "--epochs", "1.5"], "netspec: error: argument --epochs: invalid int value: '1.5'"),
    (["train", "lenet", "--optimizer", "adam"], "netspec: error: argument --optimizer: invalid choice: 'adam'"),
    (["export", "runs/x"], "netspec: error: the following arguments are required: -o/--output"),
])
def test_an_unknown_command_flag_or_choice_is_one_line_and_exit_2(capsys, args, start):
    code, out, err = cli(capsys, *args)
    assert_usage_error(code, err, start)
    assert out == ""


# ── spec files that are not there, not files, or not readable ─────────────────────────────────────────────────

@pytest.mark.parametrize("command", [["validate"], ["summary"], ["lint"], ["compile"], ["draw"]])
def test_a_missing_spec_file_is_one_located_error_line_and_exit_2(capsys, command):
    code, _, err = cli(capsys, *command, "no/such/spec.yaml")
    assert code == 2
    assert error_lines(err) == ["no/such/spec.yaml:1:1: error: no spec file or built-in spec named `no/such/spec.yaml`"]


@pytest.mark.parametrize("command", [["validate"], ["summary"], ["compile"], ["draw"]])
def test_a_directory_instead_of_a_spec_file_is_one_located_error_line_and_exit_2(capsys, tmp_path, command):
    code, _, err = cli(capsys, *command, str(tmp_path))
    assert code == 2
    assert error_lines(err) == [f"{tmp_path}:1:1: error: {tmp_path} is a directory, not a spec file"]


def test_train_of_a_missing_spec_is_exit_2_before_anything_is_built(capsys, tmp_path):
    code, _, err = cli(capsys, "train", "no/such/spec.yaml", "--out", str(tmp_path / "runs"))
    assert code == 2 and len(error_lines(err)) == 1 and not (tmp_path / "runs").exists()


def test_an_unreadable_spec_file_is_one_located_error_line_and_exit_2(capsys, tmp_path, monkeypatch):
    """Simulated: the tests run as root, for whom chmod 000 changes nothing (the real case is below)."""
    spec = tmp_path / "secret.yaml"
    spec.write_text("netspec: 1\n")
    real_open = Path.open

    def denied(self, *args, **kwargs):
        if self.name == "secret.yaml":
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", denied)
    code, _, err = cli(capsys, "validate", str(spec))
    assert code == 2
    assert error_lines(err) == [f"{spec}:1:1: error: cannot read {spec}: Permission denied"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode (simulated in the test above)")
def test_a_file_without_read_permission_is_one_located_error_line_and_exit_2(capsys, tmp_path):
    spec = tmp_path / "secret.yaml"
    spec.write_text("netspec: 1\n")
    spec.chmod(0)
    code, _, err = cli(capsys, "validate", str(spec))
    assert code == 2 and error_lines(err) == [f"{spec}:1:1: error: cannot read {spec}: Permission denied"]


@pytest.mark.parametrize("args", [["validate", "no/such.yaml"], ["validate", "specs"],
                                  ["train", "lenet", "--epochs", "-1"]])
def test_from_a_fresh_interpreter_these_mistakes_print_no_traceback(args):
    run = run_cli(*args)
    assert run.code == 2 and len(error_lines(run.stderr)) == 1 and "Traceback" not in run.stderr


# ── malformed --set ───────────────────────────────────────────────────────────────────────────────────────────

@pytest.mark.parametrize("pair, start", [
    ("=3", "netspec: error: --set expects name=value, got '=3'"),
    ("1x=3", "netspec: error: --set expects name=value, got '1x=3'"),
    ("a.b=3", "netspec: error: --set expects name=value, got 'a.b=3'"),
    ("num_classes={a: 1}", "netspec: error: --set num_classes: a value must be a scalar or a list"),
    ("num_classes=!!int x", "netspec: error: --set num_classes: cannot read the value '!!int x'"),
    ("num_classes=&a [*a]", "netspec: error: --set num_classes: cannot read the value '&a [*a]'"),
    ("num_classes=" + "9" * 5000, "netspec: error: --set num_classes: cannot read the value"),
    ("num_classes=[1, [2", "netspec: error: --set num_classes: cannot read the value '[1, [2'"),
])
def test_a_malformed_set_is_one_line_and_exit_2(capsys, pair, start):
    code, _, err = cli(capsys, "validate", "lenet", "--set", pair)
    assert_usage_error(code, err, start)


# ── numbers out of range ──────────────────────────────────────────────────────────────────────────────────────

@pytest.mark.parametrize("flags, message", [
    (["--epochs", "-1"], "epochs must be ≥ 1, got -1"),
    (["--batch-size", "-5"], "--batch-size must be a positive number, got -5"),
    (["--batch-size", "0"], "--batch-size must be a positive number, got 0"),
    (["--eval-batch-size", "0"], "eval_batch_size must be positive, got 0"),
    (["--lr", "-1"], "lr must be positive, got -1.0"),
    (["--lr", "inf"], "lr must be positive, got inf"),
    (["--lr", "nan"], "lr must be positive, got nan"),
    (["--momentum", "-0.5"], "momentum must be in [0, 1), got -0.5"),
    (["--weight-decay", "-1"], "weight_decay must be ≥ 0, got -1.0"),
    (["--warmup-epochs", "-2"], "warmup_epochs must be ≥ 0, got -2.0"),
    (["--label-smoothing", "1"], "label_smoothing must be in [0, 1), got 1.0"),
    (["--resize", "-3"], "resize must be a positive side length"),
    (["--subset", "0"], "--subset must be a positive number, got 0"),
    (["--subset", "-5"], "--subset must be a positive number, got -5"),
    (["--threads", "0"], "--threads must be a positive number, got 0"),
    (["--threads", "-1"], "--threads must be a positive number, got -1"),
    (["--log-every", "0"], "--log-every must be a positive number, got 0"),
])
def test_a_negative_or_zero_count_for_train_is_one_line_and_exit_2(capsys, tmp_path, flags, message):
    code, _, err = cli(capsys, "train", "lenet", "--data", "synthetic", "--device", "cpu", *flags,
                       "--out", str(tmp_path / "runs"))
    assert_usage_error(code, err, f"netspec: error: {message}")
    assert not (tmp_path / "runs").exists()   # refused before any run folder is made


@pytest.mark.parametrize("flags, message", [
    (["--batch-size", "0"], "--batch-size must be a positive number, got 0"),
    (["--subset", "-1"], "--subset must be a positive number, got -1"),
])
def test_a_negative_or_zero_count_for_eval_is_one_line_and_exit_2(capsys, tmp_path, flags, message):
    code, _, err = cli(capsys, "eval", str(tmp_path), *flags)
    assert_usage_error(code, err, f"netspec: error: {message}")


@pytest.mark.parametrize("args, start", [
    (["train"], "netspec: error: train needs SPEC, or --resume RUN_DIR (not both)"),
    (["train", "lenet", "--resume", "runs/x"], "netspec: error: train needs SPEC, or --resume RUN_DIR (not both)"),
    (["train", "--resume", "specs/lenet.yaml"], "netspec: error: --resume specs/lenet.yaml: no last.pt there"),
    (["eval", "no/such/run"], "netspec: error: no/such/run: no such run folder or checkpoint"),
])
def test_train_and_eval_without_what_they_need_are_one_line_and_exit_2(capsys, args, start):
    code, _, err = cli(capsys, *args)
    assert_usage_error(code, err, start)


def test_a_negative_summary_depth_is_a_one_line_usage_error(capsys):
    code, _, err = cli(capsys, "summary", "lenet", "--depth", "-1")
    assert_usage_error(code, err, "netspec: error: --depth must be 0 or more")


@pytest.mark.parametrize("spec, words", [
    ("examples/unet", "must output [classes], but this one outputs [2, 64, 64]"),
    ("lenet", "has 10 classes but the network outputs [3]"),
])
def test_training_a_network_whose_output_does_not_fit_the_labels_is_one_located_line(capsys, tmp_path, spec, words):
    extra = ["--set", "num_classes=3"] if spec == "lenet" else []
    code, _, err = cli(capsys, "train", spec, "--data", "synthetic", "--subset", "32", "--epochs", "1",
                       "--out", str(tmp_path), *extra)
    assert code == 2 and words in err and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


# ── numbers beyond a float ────────────────────────────────────────────────────────────────────────────────────

HUGE = """netspec: 1
name: huge
input: [1, 2, 2]
body:
  - {repeat: 10, seq: [conv_transpose: {out: 1, kernel: 1, stride: 2147483647}]}
  - {conv: {out: 1, kernel: 1}}
"""  # each conv_transpose would multiply H and W by 2**31 - 1: the first output is already beyond the size limit


@pytest.mark.parametrize("args", [["validate"], ["summary"], ["summary", "--json"], ["draw"], ["lint"]])
def test_a_size_beyond_the_limit_is_a_located_error_in_every_command(capsys, tmp_path, args):
    """Strides of 10**18 once made MACs beyond a float (1e360), and 300 of them shapes beyond Python's 4,300
    digits; now the first output over 2**31 - 1 per dimension is the error, wherever the network is read."""
    spec = tmp_path / "huge.yaml"
    spec.write_text(HUGE, encoding="utf-8")
    code, _, err = cli(capsys, args[0], str(spec), *args[1:])
    assert code == 2 and "internal error" not in err, err
    assert error_lines(err)[0] == (f"{spec}:5:24: error: conv_transpose output [1, 2147483648, 2147483648] is too "
                                   "large for a tensor")


def test_counts_beyond_a_float_still_print_and_never_match_a_figure():
    """No spec reaches them within the size limits; the formatting stays safe regardless."""
    from netspec.passes.shapes import format_count, macs_match

    assert format_count(10**360) == "1.00e+360" and macs_match("1.5G", 10**360) is False
