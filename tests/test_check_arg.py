"""Op arguments at their edges (netspec.ops.base.check_arg): numbers no float can hold, NaN and infinities, and
how much of a wrong value an error quotes."""

from __future__ import annotations

import math

import pytest

from cpu_time import cpu_limit
from netspec.ops import OPS
from netspec.ops.base import MAX_SHOWN, ArgError, check_arg


def refused(op: str, param: str, value) -> ArgError:
    with pytest.raises(ArgError) as info:
        check_arg(OPS[op].params[param], value)
    return info.value


FLOAT_PARAMS = [(op.name, name) for op in OPS.values() for name, p in op.params.items() if p.type == "float"]


@pytest.mark.parametrize("op, param", FLOAT_PARAMS)
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf], ids=["nan", "inf", "-inf"])
def test_every_float_param_refuses_nan_and_infinities(op, param, value):
    """NaN passes every comparison with a bound (`p: .nan` was a dropout), and no setting means infinity."""
    err = refused(op, param, value)
    assert (err.expected, err.found) == ("a finite number", f"float {value!r}")


def test_every_op_has_float_params_to_check():
    assert {"dropout", "batchnorm", "leaky_relu"} <= {op for op, _ in FLOAT_PARAMS}


@pytest.mark.parametrize("value", [10**309, -10**309, 10**5000], ids=["1e309", "-1e309", "1e5000"])
def test_an_int_beyond_any_float_is_refused_not_an_overflow(value):
    err = refused("dropout", "p", value)
    assert err.expected == "a finite number"
    assert err.found.startswith("int <an int of about ") and err.found.endswith(" digits>")


def test_floats_and_ints_within_bounds_are_accepted_as_floats():
    assert check_arg(OPS["dropout"].params["p"], 0) == 0.0
    assert check_arg(OPS["batchnorm"].params["eps"], 1e-300) == 1e-300
    assert check_arg(OPS["leaky_relu"].params["slope"], -(10**300)) == -1e300
    assert refused("dropout", "p", 1).expected == "a value < 1"


def tower(levels: int) -> list:
    value = 0
    for _ in range(levels):
        value = [value, value]
    return value


@pytest.mark.parametrize("value, start", [
    (tower(60), "[" * 53 + repr(tower(7))),    # its repr would be 2**61 characters long
    ("x" * 10**6, repr("x" * 300)),
    (["y" * 10**6], repr(["y" * 300])),
    ([[[[[[[[0]]]]]]]] * 10**4, repr([[[[[[[[0]]]]]]]] * 20)),
    (list(range(10**5)), repr(list(range(100)))),
], ids=["tower", "long-str", "long-str-in-list", "nested", "long-list"])
def test_an_error_quotes_at_most_two_hundred_characters_of_a_value(value, start):
    with cpu_limit(1.0):
        err = refused("linear", "out", value)
    shown = err.found.split(" ", 1)[1]
    assert len(shown) == MAX_SHOWN and shown.endswith("…")
    assert shown[:-1] == start[:MAX_SHOWN - 1]


@pytest.mark.parametrize("value", [[1, "a", None], [(2,), (), [True, 1.5]], "text", 3.25, False])
def test_a_short_value_is_quoted_exactly_as_repr_writes_it(value):
    err = refused("conv", "kernel", value)
    assert err.found.split(" ", 1)[1] == repr(value)
