"""The shapes every rule is built from: recording rules, alerts and the scenarios that test them.

An alert carries its own test scenarios, so the promtool unit tests are generated from the same
definition as the rule itself and cannot drift from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from services.common.profiles import duration


class Severity(StrEnum):
    CRITICAL = "critical"
    WARNING = "warning"
    INFO = "info"


class SignalKind(StrEnum):
    GAUGE = "gauge"
    COUNTER = "counter"
    MISSING = "missing"  # no sample at all (a series that never existed or went stale)


@dataclass(frozen=True, slots=True)
class Signal:
    """How one input series behaves during a phase: a gauge value or a counter's rate per second."""

    kind: SignalKind
    value: float = 0.0


def gauge(value: float) -> Signal:
    return Signal(SignalKind.GAUGE, value)


def counter(per_second: float) -> Signal:
    return Signal(SignalKind.COUNTER, per_second)


def missing() -> Signal:
    return Signal(SignalKind.MISSING)


@dataclass(frozen=True, slots=True)
class Series:
    """One input series of a scenario: healthy, then faulty, then recovered (healthy by default)."""

    selector: str
    healthy: Signal
    faulty: Signal
    recovered: Signal | None = None

    def phase(self, index: int) -> Signal:
        if index == 0:
            return self.healthy
        if index == 1:
            return self.faulty
        return self.recovered or self.healthy


@dataclass(frozen=True, slots=True)
class Scenario:
    """Input series that make an alert's condition true while faulty.

    ``detect_s`` bounds the time from the fault's start until the expression is true, ``clear_s``
    the time from its end until the expression is false again; ``labels`` are the labels the
    expression yields (the alert adds its own on top).
    """

    name: str
    series: tuple[Series, ...]
    labels: dict[str, str]
    detect_s: int
    clear_s: int
    warmup_s: int = 0


@dataclass(frozen=True, slots=True)
class RecordingRule:
    record: str
    expr: str
    labels: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"record": self.record, "expr": self.expr}
        if self.labels:
            out["labels"] = dict(self.labels)
        return out


@dataclass(frozen=True, slots=True)
class Alert:
    """An alerting rule plus the scenarios its promtool tests are generated from.

    ``scenarios`` feed the raw metrics the services expose (end to end through the recording
    rules); ``blip`` feeds the series the expression reads directly, so a blip can be made exactly
    one evaluation shorter than ``for``.
    """

    name: str
    expr: str
    for_s: int
    severity: Severity
    summary: str
    description: str
    runbook_url: str
    dashboard_url: str
    scenarios: tuple[Scenario, ...]
    blip: Scenario
    # The label `service` must come from the expression or be set here.
    labels: dict[str, str] = field(default_factory=dict)

    def all_labels(self) -> dict[str, str]:
        return {"severity": self.severity.value, **self.labels}

    def annotations(self) -> dict[str, str]:
        return {
            "summary": self.summary,
            "description": self.description,
            "runbook_url": self.runbook_url,
            "dashboard_url": self.dashboard_url,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "alert": self.name,
            "expr": self.expr,
            "for": duration(self.for_s),
            "labels": self.all_labels(),
            "annotations": self.annotations(),
        }


@dataclass(frozen=True, slots=True)
class RuleGroup:
    name: str
    rules: tuple[RecordingRule | Alert, ...]
