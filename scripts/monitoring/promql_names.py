"""The metric names a PromQL expression selects, for checking dashboards against known metrics.

Good enough for the expressions we write (no nested braces, no metric names only in
``{__name__=…}`` matchers): strings, label matchers, range and grouping clauses are removed, then
every identifier that is not a function call, an operator keyword or a number is a metric name.
"""

from __future__ import annotations

import re

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\[\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_IDENTIFIER = re.compile(r"(?<![\w.:$])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![\w:]|\s*\()")
_KEYWORDS = frozenset(
    {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left", "group_right"}
)
_LITERALS = frozenset({"inf", "nan"})


def metric_names(expr: str) -> frozenset[str]:
    text = _STRING.sub('""', expr)
    text = _MATCHERS.sub(" ", text)
    text = _RANGE.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    return frozenset(
        name
        for name in _IDENTIFIER.findall(text)
        if name not in _KEYWORDS and name.lower() not in _LITERALS and not re.fullmatch(r"\d+\w*", name)
    )
