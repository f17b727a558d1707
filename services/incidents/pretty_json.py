"""Indented JSON for the incident files, byte for byte what
``json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True)`` writes, for less CPU.

On CPython before 3.14 ``json`` takes its pure-Python encoder whenever ``indent`` is set: a
generator per container and one ``yield`` per token. The exporter writes every incident's file
on each change, so that encoder was a large share of the receiver's CPU during a burst. Here one
recursive function appends whole lines to a list: strings still go through ``json``'s C escaper
and numbers through the same ``repr`` as ``json``; only the structure is built in Python. Anything
but plain ``dict`` (with ``str`` keys), ``list``, ``str``, ``int``, ``float``, ``bool`` and
``None`` (a subclass such as an enum, a tuple, another key type) makes it hand the whole value to
``json.dumps`` instead, so the output never differs (tests/unit/test_incidents_pretty_json.py).
"""

from __future__ import annotations

import json
from json.encoder import encode_basestring  # the C escaper when _json is built (always, on CPython)
from typing import Any

INDENT = "  "
_INFINITY = float("inf")


class _Unsupported(Exception):
    """A value this encoder does not render exactly as json.dumps would."""


def dumps(value: Any) -> str:
    """``json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True)``."""
    out: list[str] = []
    try:
        _value(value, "\n", out)
    except _Unsupported:
        return json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True)
    return "".join(out)


def _scalar(value: Any) -> str:
    kind = type(value)
    if kind is str:
        return encode_basestring(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if kind is int:
        return int.__repr__(value)
    if kind is float:
        if value != value:
            return "NaN"
        if value == _INFINITY:
            return "Infinity"
        if value == -_INFINITY:
            return "-Infinity"
        return float.__repr__(value)
    raise _Unsupported


def _value(value: Any, newline: str, out: list[str]) -> None:
    kind = type(value)
    if kind is dict:
        _object(value, newline, out)
    elif kind is list:
        _array(value, newline, out)
    else:
        out.append(_scalar(value))


def _object(value: dict[Any, Any], newline: str, out: list[str]) -> None:
    if not value:
        out.append("{}")
        return
    inner = newline + INDENT
    separator = "{" + inner
    for key in sorted(value):
        if type(key) is not str:
            raise _Unsupported
        item = value[key]
        kind = type(item)
        if kind is dict or kind is list:
            out.append(f"{separator}{encode_basestring(key)}: ")
            _value(item, inner, out)
        else:
            out.append(f"{separator}{encode_basestring(key)}: {_scalar(item)}")
        separator = "," + inner
    out.append(newline + "}")


def _array(value: list[Any], newline: str, out: list[str]) -> None:
    if not value:
        out.append("[]")
        return
    inner = newline + INDENT
    separator = "[" + inner
    for item in value:
        kind = type(item)
        if kind is dict or kind is list:
            out.append(separator)
            _value(item, inner, out)
        else:
            out.append(separator + _scalar(item))
        separator = "," + inner
    out.append(newline + "]")
