"""Bounded, validated query and body parameters: bad input is a 400, never a crash.

Numbers are read strictly: ASCII digits with an optional leading ``-`` (and, for decimals, one
``.`` between digits), at most ``MAX_NUMBER_CHARS`` characters. Python's ``int()`` and
``float()`` would also take surrounding whitespace, ``1_000``, a ``+`` sign, non-ASCII digits
(``١٢``), exponents, ``inf`` and ``nan``; none of those is a number a client should send.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from services.common.errors import BadRequest

MAX_NUMBER_CHARS = 20
_INTEGER = re.compile(r"-?[0-9]+")
_DECIMAL = re.compile(r"-?[0-9]+(\.[0-9]+)?")
_ECHOED_CHARS = 64


def bounded_int(
    params: Mapping[str, str], name: str, *, default: int, minimum: int, maximum: int, unit: str = ""
) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    if len(raw) > MAX_NUMBER_CHARS or not _INTEGER.fullmatch(raw):
        raise BadRequest(
            f"{name} must be an integer: ASCII digits, optionally after a '-', at most {MAX_NUMBER_CHARS} characters",
            parameter=name,
            value=raw[:_ECHOED_CHARS],
        )
    value = int(raw)
    if not minimum <= value <= maximum:
        suffix = f" {unit}" if unit else ""
        raise BadRequest(
            f"{name} must be between {minimum} and {maximum}{suffix}",
            parameter=name,
            value=value,
            minimum=minimum,
            maximum=maximum,
        )
    return value


def bounded_float(params: Mapping[str, object], name: str, *, default: float, minimum: float, maximum: float) -> float:
    """A JSON number, or a string of digits with at most one decimal point, within the bounds."""
    raw = params.get(name)
    if raw is None:
        return default
    value: int | float
    if isinstance(raw, str) and len(raw) <= MAX_NUMBER_CHARS and _DECIMAL.fullmatch(raw):
        value = float(raw)
    elif isinstance(raw, int | float) and not isinstance(raw, bool):
        value = raw
    else:
        raise BadRequest(
            f"{name} must be a number: a JSON number, or ASCII digits with an optional '-' and decimal point",
            parameter=name,
        )
    # Compared before any conversion, so a huge JSON integer is out of range rather than an
    # OverflowError; NaN fails every comparison.
    if not minimum <= value <= maximum:
        raise BadRequest(
            f"{name} must be between {minimum} and {maximum}", parameter=name, minimum=minimum, maximum=maximum
        )
    return float(value)
