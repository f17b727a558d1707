"""Bounded, validated query and body parameters: bad input is a 400, never a crash."""

from __future__ import annotations

from collections.abc import Mapping

from services.common.errors import BadRequest


def bounded_int(
    params: Mapping[str, str], name: str, *, default: int, minimum: int, maximum: int, unit: str = ""
) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be an integer", parameter=name, value=raw[:64]) from None
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
    raw = params.get(name)
    if raw is None:
        return default
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise BadRequest(f"{name} must be a number", parameter=name)
    try:
        value = float(raw)
    except ValueError:
        raise BadRequest(f"{name} must be a number", parameter=name) from None
    if not minimum <= value <= maximum:  # also rejects NaN
        raise BadRequest(
            f"{name} must be between {minimum} and {maximum}", parameter=name, minimum=minimum, maximum=maximum
        )
    return value
