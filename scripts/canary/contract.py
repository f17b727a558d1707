"""What the rollout driver and the canary analysis agree on.

Prometheus series of a service carry a ``version`` label (from the instance's discovery metadata),
so the analysis can compare the canary version against the stable one over the same window.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol


class Decision(Enum):
    PROMOTE = "promote"  # the step's checks held: move on to the next traffic weight
    HOLD = "hold"  # not enough data yet, or a failure still under the check's failure limit
    ROLLBACK = "rollback"  # a check failed beyond its limit: send all traffic back to stable


@dataclass(frozen=True, slots=True)
class CheckResult:
    check: str  # the check's name in its analysis template
    passed: bool | None  # None: no data to judge
    canary_value: float | None
    stable_value: float | None
    threshold: float
    reason: str  # one line a person reads: what was measured against what


@dataclass(frozen=True, slots=True)
class Verdict:
    decision: Decision
    results: tuple[CheckResult, ...] = ()
    reason: str = ""


@dataclass(frozen=True, slots=True)
class StepContext:
    service: str
    stable_version: str
    canary_version: str
    strategy: str  # rolling | canary | blue-green
    step: int  # 0-based index of the traffic step
    weight_percent: int  # share of traffic the canary gets in this step
    window_s: int  # how far back the analysis looks
    failures_so_far: dict[str, int] = field(default_factory=dict)  # check name -> consecutive failures


class Analysis(Protocol):
    def evaluate(self, context: StepContext) -> Verdict: ...


class RolloutObserver(Protocol):
    """Told of every step and decision (metrics, annotations, the JSON record, the log)."""

    def step_started(self, context: StepContext) -> None: ...

    def step_decided(self, context: StepContext, verdict: Verdict) -> None: ...

    def finished(self, context: StepContext, outcome: str, reason: str) -> None: ...
