"""The `$` expression language (netspec.passes.expr): values, interpolation, `in`, the whitelist and the bounds."""

import warnings

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cpu_time import cpu_limit
from netspec.passes.expr import (MAX_EXPR_LENGTH, MAX_MESSAGE, MAX_SEQUENCE, ExprError, InputShape, evaluate,
                                 is_expression, names_used)

ENV = {"num_classes": 10, "c2": [16, 32], "i": 2, "width": 64, "ratio": 0.5, "name": "conv", "flag": True,
       "nothing": None, "pair": (3, 5)}
IMAGE = InputShape((3, 32, 28))


def ev(text, env=ENV, shape=IMAGE):
    return evaluate(text, env, (lambda: shape) if shape is not None else None)


def error(text, env=ENV, shape=IMAGE) -> ExprError:
    with pytest.raises(ExprError) as info:
        ev(text, env, shape)
    return info.value


# ---------------------------------------------------------------------------------------------- values

@pytest.mark.parametrize("text, expected", [
    ("$num_classes", 10),
    ("$c2[1]", 32),
    ("$c2[-1]", 32),
    ("$c2", [16, 32]),
    ("$pair[0]", 3),
    ("$in.channels", 3),
    ("${c2[1] * 2}", 64),
    ("${in.channels // 2}", 1),
    ("${ width / 4 }", 16.0),
    ("${width // 3}", 21),
    ("${-7 % 3}", 2),
    ("${2 ** 10}", 1024),
    ("${2 ** -1}", 0.5),
    ("${ratio * 4}", 2.0),
    ("${-i + +3}", 1),
    ("${[i, i + 1]}", [2, 3]),
    ("${(i, 1)}", (2, 1)),
    ("${c2[::-1]}", [32, 16]),
    ("${c2[1:]}", [32]),
    ("${name + '_x'}", "conv_x"),
    ("${name * 2}", "convconv"),
    ("${[0] * 3}", [0, 0, 0]),
    ("${1 < i <= 2}", True),
    ("${1 < i < 2}", False),
    ("${c2 == [16, 32]}", True),
    ("${i != 2 or flag}", True),
    ("${i > 5 and flag}", False),
    ("${not flag}", False),
    ("${'big' if width > 32 else 'small'}", "big"),
    ("${nothing}", None),
    ("${true}", True),
    ("${false or null}", None),
    ("${True and not False}", True),
    ("${None}", None),
    ("${min(c2)}", 16),
    ("${sum(c2[:1]) + sum([]) + sum([0.5, 1])}", 17.5),
    ("${max(i, 3, 1)}", 3),
    ("${int(ratio * 9)}", 4),
    ("${float(i)}", 2.0),
    ("${round(ratio * 3)}", 2),
    ("${round(3.14159, 2)}", 3.14),
    ("${len(c2)}", 2),
    ("${abs(-i)}", 2),
    ("${bool(0)}", False),
    ("${in.shape}", [3, 32, 28]),
    ("${in.features}", 3 * 32 * 28),
    ("${in.height * in.width}", 32 * 28),
    ("${in.shape[-1]}", 28),
    ("${'}' + name}", "}conv"),
])
def test_expressions_evaluate_to_their_python_value(text, expected):
    result = ev(text)
    assert result == expected
    assert type(result) is type(expected)


def test_integer_valued_floats_stay_floats_and_true_division_gives_a_float():
    assert type(ev("${ratio * 2}")) is float
    assert type(ev("${4 / 2}")) is float
    assert type(ev("${7 // 2}")) is int


def test_a_string_without_a_dollar_is_returned_unchanged():
    assert ev("plain text {i}") == "plain text {i}"
    assert ev("") == ""


def test_non_string_values_are_returned_unchanged():
    assert evaluate(5, ENV) == 5
    assert evaluate([1], ENV) == [1]


def test_an_expression_string_is_a_string_with_an_unescaped_dollar():
    assert is_expression("$x") and is_expression("a${x}") and is_expression("$$$x")
    assert not is_expression("$$") and not is_expression("cost $$5") and not is_expression("plain")
    assert not is_expression(3) and not is_expression(None)


# ------------------------------------------------------------------------------------------ interpolation

@pytest.mark.parametrize("text, expected", [
    ("layer${i+1}", "layer3"),
    ("b${i}_x", "b2_x"),
    ("${i}_${name}", "2_conv"),
    ("${i}${i}", "22"),
    ("${ratio}x", "0.5x"),
    ("${c2}!", "[16, 32]!"),
    ("cost $$${i}", "cost $2"),
    ("$$5", "$5"),
    ("$${i}", "${i}"),
    ("a${'{' + '}'}b", "a{}b"),
    ("c${in.channels}", "c3"),
])
def test_interpolation_formats_each_part_with_str(text, expected):
    assert ev(text) == expected


def test_a_dollar_in_text_that_is_not_a_braced_expression_is_an_error():
    err = error("price $5")
    assert "${...}" in err.message and err.offset == 6
    assert "$$" in err.hint


def test_an_unclosed_brace_is_an_error_pointing_at_it():
    err = error("ab${i + 1")
    assert "never closed" in err.message and err.offset == 2


def test_a_bare_expression_followed_by_text_is_an_error_that_suggests_braces():
    err = error("$i ${i}")
    assert "invalid expression" in err.message
    assert "${...}" in err.hint


@pytest.mark.parametrize("text", ["$", "${}", "${   }", "a${}b"])
def test_an_empty_expression_is_an_error(text):
    assert "empty expression" in error(text).message


# ------------------------------------------------------------------------------------------------ `in`

def test_in_is_fetched_from_lazy_in_once_and_only_when_used():
    calls = []

    def lazy():
        calls.append(1)
        return IMAGE

    assert evaluate("${i + 1}", ENV, lazy) == 3
    assert calls == []
    assert evaluate("${in.height}x${in.width}", ENV, lazy) == "32x28"
    assert calls == [1]


def test_in_in_an_untaken_branch_is_not_fetched():
    def lazy():
        raise AssertionError("must not be called")

    assert evaluate("${0 if i > 1 else in.channels}", ENV, lazy) == 0


def test_whatever_lazy_in_raises_propagates_unchanged():
    class Unknown(Exception):
        pass

    def lazy():
        raise Unknown("shape not inferred yet")

    with pytest.raises(Unknown, match="not inferred"):
        evaluate("$in.channels", ENV, lazy)
    with pytest.raises(ValueError, match="bad shape"):  # not turned into an ExprError by the safety nets
        evaluate("${in.width + 1}", ENV, lambda: (_ for _ in ()).throw(ValueError("bad shape")))


def test_in_without_lazy_in_is_not_available():
    err = error("${1 + in.channels}", shape=None)
    assert err.message == "`in` is not available here"
    assert err.offset == 6


def test_height_of_a_flat_input_is_not_defined():
    err = error("${in.height}", shape=InputShape((784,)))
    assert err.message == "in.height is not defined: the input is 1-D (shape [784])"
    assert ev("${in.features}", shape=InputShape((784,))) == 784


def test_input_shape_defines_channels_height_width_only_for_three_dims():
    assert (IMAGE.channels, IMAGE.height, IMAGE.width, IMAGE.features) == (3, 32, 28, 2688)
    flat = InputShape((10, 4))
    assert (flat.channels, flat.height, flat.width, flat.features) == (None, None, None, 40)


def test_unknown_attribute_of_in_suggests_the_closest():
    err = error("${in.chanels}")
    assert "no attribute `chanels`" in err.message
    assert "`channels`" in err.hint


def test_in_keeps_its_operator_meaning_elsewhere_and_in_strings():
    assert ev("${'in.x' + name}") == "in.xconv"
    assert "operator `in`" in error("${i in c2}").message


def test_bare_in_is_a_syntax_error_with_a_hint():
    err = error("$in")
    assert "invalid expression" in err.message and "in.channels" in err.hint


# -------------------------------------------------------------------------------------------- names

def test_unknown_name_suggests_the_closest_param():
    err = error("${num_clases + 1}")
    assert err.message == "unknown name `num_clases`"
    assert err.hint == "did you mean `num_classes`?"
    assert err.offset == 2


def test_names_used_lists_free_names_including_in_but_not_functions_or_constants():
    assert names_used("layer${i+1}_${min(c2, width)}${true}") == {"i", "c2", "width"}
    assert names_used("$in.channels") == {"in"}
    assert names_used("plain") == frozenset()
    assert names_used("$$5") == frozenset()


def test_names_used_reports_syntax_errors():
    with pytest.raises(ExprError):
        names_used("${i +}")


# ------------------------------------------------------------------------------------- forbidden things

@pytest.mark.parametrize("text, fragment", [
    ("$__import__('os')", "calling `__import__` is not allowed; allowed functions: abs, bool, float, int, len, "
                          "max, min, round"),
    ("${open('x')}", "calling `open` is not allowed"),
    ("${eval('1')}", "calling `eval` is not allowed"),
    ("${name.upper()}", "calling `name.upper` is not allowed"),
    ("${().__class__}", "attribute access is not allowed: only in.channels, in.height, in.width, in.features, "
                        "in.shape"),
    ("${name.__class__.__mro__}", "attribute access is not allowed"),
    ("${__builtins__}", "names starting with `__` are not allowed"),
    ("${lambda: 1}", "lambda functions are not allowed"),
    ("${(lambda: 1)()}", "calling `lambda: 1` is not allowed"),
    ("${[x for x in c2]}", "comprehensions are not allowed"),
    ("${{x for x in c2}}", "comprehensions are not allowed"),
    ("${sum(x for x in c2)}", "comprehensions are not allowed"),
    ("${sorted(c2)}", "calling `sorted` is not allowed"),
    ("${sum(c2, [])}", "sum() takes one list of numbers"),
    ("${sum([[1], [2]])}", "sum() takes one list of numbers"),
    ("${f'{i}'}", "f-strings are not allowed"),
    ("${(j := 1)}", "`:=` is not allowed"),
    ("${min(*c2)}", "starred arguments"),
    ("${min(c2, key=abs)}", "keyword arguments are not allowed"),
    ("${{'a': 1}}", "dicts are not allowed"),
    ("${{1, 2}}", "set literals are not allowed"),
    ("${b'x'}", "bytes literals are not allowed"),
    ("${1j}", "complex literals are not allowed"),
    ("${...}", "ellipsis literals are not allowed"),
    ("${i @ i}", "operator `@` is not allowed"),
    ("${1 << 64}", "operator `<<` is not allowed"),
    ("${~i}", "operator `~` is not allowed"),
    ("${i is None}", "operator `is` is not allowed"),
    ("${'%s' % i}", "cannot use `%` on str and int"),
    ("${(yield)}", "not allowed"),
    ("${0 if i else open('x')}", "calling `open` is not allowed"),  # even in a branch never taken
])
def test_forbidden_constructs_are_expr_errors_with_a_clear_message(text, fragment):
    assert fragment in error(text).message


def test_a_forbidden_call_is_rejected_before_anything_is_evaluated():
    def lazy():
        raise AssertionError("must not be called")

    with pytest.raises(ExprError, match="calling `open`"):
        evaluate("${in.channels + open('x')}", ENV, lazy)


# ------------------------------------------------------------------------------------- runtime errors

@pytest.mark.parametrize("text, message", [
    ("${width / 0}", "division by zero in `width / 0`"),
    ("${width // (i - 2)}", "division by zero in `width // (i - 2)`"),
    ("${width % 0}", "division by zero in `width % 0`"),
    ("${0 ** -1}", "division by zero in `0 ** -1`"),
    ("${1 + 'a'}", "cannot add int and str in `1 + 'a'`"),
    ("${c2 - 1}", "cannot use `-` on list and int in `c2 - 1`"),
    ("${c2[5]}", "index 5 is out of range for a list of length 2 in `c2[5]`"),
    ("${c2[-3]}", "index -3 is out of range for a list of length 2 in `c2[-3]`"),
])
def test_runtime_mistakes_have_exact_messages(text, message):
    assert error(text).message == message


@pytest.mark.parametrize("text", [
    "${c2['a']}", "${c2[1.5]}", "${i[0]}", "${c2[::0]}", "${len(i)}", "${len(c2, c2)}", "${min([])}",
    "${min(1, 'a')}", "${int('abc')}", "${float('x')}", "${c2 < 1}", "${-name}", "${round(name)}",
    "${float('inf')}", "${float('nan')}", "${(-8) ** 0.5}", "${int(1e300)}", "${abs()}",
])
def test_runtime_type_and_value_errors_are_expr_errors(text):
    assert error(text).message


def test_a_runtime_error_points_at_the_failing_subexpression():
    err = error("${i + c2[9]}")
    assert err.offset == len("${i + ")
    assert "`c2[9]`" in err.message


def test_a_syntax_error_points_into_the_original_string():
    err = error("x${i + )}")
    assert err.message.startswith("invalid expression")
    assert err.offset == len("x${i + ")


def test_syntax_python_only_warns_about_is_refused_without_printing_a_warning():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert "invalid expression" in error("${1if flag else 2}").message
        assert "invalid expression" in error("${'a\\d'}").message
    assert caught == []


def test_offsets_skip_the_spaces_users_put_inside_braces():
    assert error("${  nope}").offset == 4
    assert error("$ nope").offset == 2


def test_offsets_count_characters_not_bytes():
    err = error("é${'é' + 1}")
    assert err.offset == 3


# ---------------------------------------------------------------------------------------------- bounds

def fails_fast(text, fragment, env=ENV):
    with cpu_limit(1.0):  # each takes milliseconds; building what is refused would take seconds or forever
        err = error(text, env)
    assert fragment in err.message
    return err


def test_a_too_long_string_is_refused_at_offset_zero():
    err = fails_fast("$" + "x" * (2**20 - 1), "expression is 1,048,576 characters long; the limit is 1000")
    assert err.offset == 0
    assert ev("${" + " " * (MAX_EXPR_LENGTH - 4) + "1}") == 1


def test_huge_powers_are_refused_before_they_run():
    fails_fast("${2**10**10}", "exponent 10000000000 is too large")
    fails_fast("${9**99}", "exponent 99 is too large")
    fails_fast("${10**19}", "too large")
    fails_fast("${(10**18) ** 64}", "too large")
    fails_fast("${10.0 ** 64 * 1e300}", "too large")
    assert ev("${2 ** 59}") == 2**59


def test_numbers_are_limited_to_ten_to_the_eighteen():
    fails_fast("${10**18 + 1}", "numbers are limited to 10**18")
    fails_fast("${int('9' * 900)}", "numbers are limited to 10**18")
    fails_fast("${round(1, -10**18)}", "digits")
    assert ev("${10**18}") == 10**18


def test_huge_repetition_is_refused_without_building_it():
    fails_fast("${'a' * 10**9}", "would have 1,000,000,000 elements; the limit is 10,000")
    fails_fast("${[0] * 10**9}", "would have 1,000,000,000 elements")
    fails_fast("${10**9 * [0]}", "would have 1,000,000,000 elements")
    fails_fast("x${[[0] * 10000] * 10000}", "the limit is 10,000")  # nested elements count too
    fails_fast("${name * 3000 + name * 3000}", "the limit is 10,000")
    assert len(ev("${'a' * 10000}")) == 10000


def test_too_many_nodes_or_too_deep_nesting_is_refused():
    fails_fast("${" + "+".join(["1"] * 150) + "}", "too complex")
    fails_fast("$" + "-" * 900 + "1", "too complex")
    fails_fast("${" + "(" * 400 + "1" + ")" * 400 + "}", "nested")
    fails_fast("${" + "[" * 300 + "]" * 300 + "}", "")
    assert ev("$" + "-" * 190 + "1") == 1


def test_a_huge_int_from_the_environment_is_an_expr_error_when_used():
    fails_fast("${big + 1}", "too large", env={"big": 10**5000})
    fails_fast("x${big}", "", env={"big": [10**5000]})


def tower(levels: int) -> list:
    """A list holding the same list twice, `levels` deep: 2**(levels + 1) - 2 elements in `levels` objects."""
    value = 0
    for _ in range(levels):
        value = [value, value]
    return value


def first_refused_step(first: object, step: str, most: int) -> tuple[int, ExprError]:
    """Evaluates `step` (`{0}` is the previous name, `{1}` this one's) for v1, v2, … from v0 = `first`: the
    number of the step that is refused, and its error."""
    env = {"v0": first}
    with cpu_limit(2.0):
        for level in range(1, most + 1):
            try:
                env[f"v{level}"] = evaluate(step.format(f"v{level - 1}"), env)
            except ExprError as err:
                return level, err
    raise AssertionError(f"{most} steps of {step!r} were all allowed")


def test_values_built_from_shared_lists_are_bounded_at_each_step():
    """Params with defaults `[a0, a0]`, `[a1, a1]`, …: each doubles the last, and comparing two of them walks
    every element.  The size counts nested elements each time they occur, so the step past 10,000 is refused."""
    level, refused = first_refused_step(1, "${{[{0}, {0}]}}", 40)
    assert level == 13  # v12 holds 2**13 - 2 = 8,190 elements, v13 would hold 16,382
    assert refused.message == (f"`[v12, v12]` holds more than {MAX_SEQUENCE:,} characters and list elements; "
                               f"the limit is {MAX_SEQUENCE:,}")
    assert "doubles at each step" in refused.hint


def test_a_large_shared_value_from_the_env_is_refused_when_read_not_walked_in_full():
    """Template arguments `x: ["$x", "$x"]` build the tower outside expressions; reading it is refused, and
    neither comparing nor printing 2**60 elements is ever started."""
    env = {"a": tower(60), "b": tower(60)}
    fails_fast("${a == b}", "`a` holds more than 10,000", env)
    fails_fast("x${a}", "`a` holds more than 10,000", env)
    fails_fast("${len(b)}", "`b` holds more than 10,000", env)
    assert ev("${a == b}", {"a": tower(12), "b": tower(12)}) is True


def test_reading_a_large_list_many_times_walks_it_once():
    """The size of each large list is remembered: 20,000 reads of a 9,000-element list would walk 1.8 * 10**8
    elements (a minute) if each read measured it anew."""
    env = {"big": [[i] for i in range(4_500)]}
    with cpu_limit(5.0):  # about 0.1 s
        assert all(evaluate("$big", env) is env["big"] for _ in range(20_000))


def test_repeated_interpolation_is_bounded_before_the_text_is_built():
    level, refused = first_refused_step("x" * 16, "${{{0}}}${{{0}}}", 20)
    assert level == 10  # v9 is 8,192 characters
    assert refused.message == f"the text would have more than {MAX_SEQUENCE:,} characters; the limit is {MAX_SEQUENCE:,}"
    assert len(ev("${name}" * 100)) == 400


def test_list_literals_and_text_at_the_limit_are_allowed():
    half = ["x" * 4_998]
    assert ev("${[h, h]}", {"h": half}) == [half, half]  # 2 + 2 * (1 + 4,998) = 10,000
    fails_fast("${[h, h, h]}", "holds more than 10,000", env={"h": half})
    assert ev("${h}${h}", {"h": "x" * 5_000}) == "x" * 10_000
    fails_fast("${h}${h}x", "the text would have more than 10,000 characters", env={"h": "x" * 5_000})


def test_an_error_message_is_cut_at_its_limit():
    err = ExprError("x" * 10_000)
    assert len(err.message) == MAX_MESSAGE and err.message.endswith("…")
    assert ExprError("short").message == "short"


# -------------------------------------------------------------------------------------------- fuzzing

ALPHABET = st.sampled_from(list("abcxyz0123456789_+-*/%<>=!()[]{}.,:;'\"\\ $#@~^&|\n\t") +
                           ["in", "in.", "i", "c2", "**", "//", "if", "else", "not", "and", "or", "lambda",
                            "__", "min(", "len(", "10**", "e9", "é", "True", "null"])
EXPR_TEXT = st.lists(ALPHABET, max_size=40).map("".join)


@settings(max_examples=400, deadline=None)
@given(EXPR_TEXT, st.sampled_from(["$", "${", "x${", "$$"]), st.sampled_from(["", "}", "}y", "}${i}"]))
def test_random_text_only_ever_raises_expr_error(body, prefix, suffix):
    try:
        evaluate(prefix + body + suffix, ENV, lambda: IMAGE)
        names_used(prefix + body + suffix)
    except ExprError as err:
        assert isinstance(err.message, str) and "\n" not in err.message
        assert 0 <= err.offset <= len(prefix + body + suffix)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_arbitrary_unicode_after_a_dollar_only_ever_raises_expr_error(body):
    for text in ("$" + body, "${" + body + "}"):
        try:
            evaluate(text, ENV, None)
        except ExprError as err:
            assert 0 <= err.offset <= len(text)
