"""Strict number parameters: only plain ASCII digits (an optional '-', one decimal point for decimals)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.common.errors import BadRequest
from services.common.params import MAX_NUMBER_CHARS, bounded_float, bounded_int

HOSTILE_NUMBERS = [
    "1_000",
    " 5",
    "5 ",
    "\t5",
    "5\n",
    "+5",
    "\u0661\u0662",  # Arabic-Indic one, two
    "\uff15",  # fullwidth digit five
    "\u00b2",  # superscript two
    "0x10",
    "1e3",
    "--1",
    "1-",
    "1.",
    ".5",
    "1..5",
    "inf",
    "nan",
    "Infinity",
    "1" * (MAX_NUMBER_CHARS + 1),
]


@pytest.mark.parametrize("raw", HOSTILE_NUMBERS)
def test_an_integer_parameter_is_ascii_digits_only(raw: str) -> None:
    with pytest.raises(BadRequest, match="must be an integer"):
        bounded_int({"n": raw}, "n", default=0, minimum=-(10**30), maximum=10**30)


@pytest.mark.parametrize("raw", [value for value in HOSTILE_NUMBERS if value not in {"1.", ".5", "1..5"}] + ["1.5.5"])
def test_a_decimal_string_is_ascii_digits_and_one_point_only(raw: str) -> None:
    with pytest.raises(BadRequest, match="must be a number"):
        bounded_float({"x": raw}, "x", default=0.0, minimum=-1e30, maximum=1e30)


@pytest.mark.parametrize("raw", [True, [1], {"a": 1}])
def test_a_decimal_of_another_json_type_is_refused(raw: object) -> None:
    with pytest.raises(BadRequest, match="must be a number"):
        bounded_float({"x": raw}, "x", default=0.0, minimum=0.0, maximum=1.0)


@pytest.mark.parametrize(
    "raw",
    [10**5000, float("inf"), float("-inf"), float("nan"), 2.0, -1],
    ids=["5000-digit-int", "inf", "-inf", "nan", "2.0", "-1"],
)
def test_json_numbers_out_of_range_are_refused_without_overflow(raw: float) -> None:
    with pytest.raises(BadRequest, match="between"):
        bounded_float({"x": raw}, "x", default=0.0, minimum=0.0, maximum=1.0)


@pytest.mark.parametrize(("raw", "expected"), [("0", 0), ("-7", -7), ("007", 7), ("30000", 30000), ("", 42)])
def test_plain_integers_are_read(raw: str, expected: int) -> None:
    assert bounded_int({"n": raw}, "n", default=42, minimum=-10, maximum=30000) == expected


@pytest.mark.parametrize(("raw", "expected"), [("0.25", 0.25), ("-1", -1.0), (1, 1.0), (0.5, 0.5)])
def test_plain_decimals_are_read(raw: object, expected: float) -> None:
    assert bounded_float({"x": raw}, "x", default=0.0, minimum=-1.0, maximum=1.0) == expected


@given(st.one_of(st.text(max_size=30), st.from_regex(r"-?[0-9]{1,25}", fullmatch=True)))
def test_any_text_is_a_plain_integer_or_a_400(raw: str) -> None:
    plain = raw == "" or (len(raw) <= MAX_NUMBER_CHARS and re.fullmatch(r"-?[0-9]+", raw) is not None)
    try:
        value = bounded_int({"n": raw}, "n", default=0, minimum=-(10**30), maximum=10**30)
    except BadRequest:
        assert not plain
    else:
        assert plain
        assert value == (int(raw) if raw else 0)
