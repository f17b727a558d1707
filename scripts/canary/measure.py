"""Reading a check's series from Prometheus: what to ask, and the numbers in the answer.

The answers are kept as Prometheus wrote them (the API's ``data``), so the same parsing runs on a
live answer and on one recorded into a test fixture (``python -m scripts.canary.capture``).
"""

from __future__ import annotations

from typing import Any, Protocol

from scripts.canary.judge import Measurement
from scripts.canary.templates import CheckTemplate, Kind
from scripts.promql import Prometheus


class PrometheusAnswers(Protocol):
    """The two Prometheus API calls the analysis makes, answering the API's ``data`` object."""

    def instant(self, expr: str, at: float) -> dict[str, Any]: ...

    def range(self, expr: str, start: float, end: float, step_s: float) -> dict[str, Any]: ...


class LivePrometheus:
    """A running Prometheus (scripts/promql.py)."""

    def __init__(self, prometheus: Prometheus) -> None:
        self._prometheus = prometheus

    def instant(self, expr: str, at: float) -> dict[str, Any]:
        return self._prometheus.query_data(expr, at)

    def range(self, expr: str, start: float, end: float, step_s: float) -> dict[str, Any]:
        return self._prometheus.range_data(expr, start, end, step_s)


def values_of(data: dict[str, Any]) -> tuple[float, ...]:
    """Every sample value in an instant (vector/scalar) or range (matrix) answer, in order.

    Prometheus writes values as strings, "NaN" and "+Inf" included; they are kept and dropped later
    by the judge (judge.finite), so a recording shows what Prometheus really said.
    """
    kind = data.get("resultType")
    result = data.get("result")
    if kind == "scalar":
        return (float(result[1]),) if isinstance(result, list) else ()
    if kind == "vector":
        return tuple(float(item["value"][1]) for item in result or [])
    if kind == "matrix":
        return tuple(float(value) for item in result or [] for _, value in item["values"])
    raise ValueError(f"Prometheus answered a {kind!r} result, not a vector, scalar or matrix")


def window_of(check: CheckTemplate, window_s: int, at: float) -> tuple[float, float, float]:
    """start, end and step of a zscore check's range query: the window up to ``at``, a point every interval."""
    return at - window_s, at, float(check.interval_s)


def ask(answers: PrometheusAnswers, check: CheckTemplate, expr: str, window_s: int, at: float) -> dict[str, Any]:
    if check.kind is Kind.ZSCORE:
        return answers.range(expr, *window_of(check, window_s, at))
    return answers.instant(expr, at)


def measure(
    answers: PrometheusAnswers,
    check: CheckTemplate,
    service: str,
    canary_version: str,
    stable_version: str,
    window_s: int,
    at: float,
) -> Measurement:
    canary = ask(answers, check, check.render(service, canary_version, window_s), window_s, at)
    stable = ask(answers, check, check.render(service, stable_version, window_s), window_s, at)
    return Measurement(values_of(canary), values_of(stable))
