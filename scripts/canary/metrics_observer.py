"""The rollout's state as Prometheus metrics (a contract.RolloutObserver), as Flagger and Argo Rollouts export it.

Series (all labelled ``service``):

- ``canary_info{strategy,stable_version,canary_version}`` 1 for the rollout running;
- ``canary_weight_percent`` and ``canary_step``: the canary's share of traffic and the step's index;
- ``canary_status{status}``: 1 for the current status, 0 for the others (progressing, holding,
  promoted, rolled_back, and any other outcome the driver reports);
- ``canary_decisions_total{decision}``: promote / hold / rollback verdicts;
- ``canary_analysis_checks_total{check,result}``: each check's result (pass, fail, no_data);
- ``canary_check_value{check,role}``: the last numbers a check judged (role canary, stable, limit);
- ``canary_rollouts_total{outcome}``: finished rollouts.

Counters' children exist at 0 from the first step, so ``increase()`` sees the first decision too
(the Grafana annotations read it). The registry is injected: tests pass a fresh CollectorRegistry.
"""

from __future__ import annotations

import contextlib
import math
import re

from prometheus_client import CollectorRegistry, Counter, Gauge

from scripts.canary.contract import CheckResult, Decision, StepContext, Verdict

PROGRESSING, HOLDING = "progressing", "holding"
STATUS_OF_DECISION = {Decision.PROMOTE: PROGRESSING, Decision.HOLD: HOLDING, Decision.ROLLBACK: "rolling_back"}
STATUSES = (PROGRESSING, HOLDING, "rolling_back", "promoted", "rolled_back")
RESULTS = ("pass", "fail", "no_data")
# Where the traffic is once a rollout ends this way; any other outcome keeps the last step's weight.
FINAL_WEIGHT = {"promoted": 100, "succeeded": 100, "rolled_back": 0, "aborted": 0, "failed": 0, "interrupted": 0}


def label_value(text: str) -> str:
    """An outcome as a short label value: lower case, words joined by '_'."""
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:40] or "unknown"


def result_label(result: CheckResult) -> str:
    return "no_data" if result.passed is None else ("pass" if result.passed else "fail")


class RolloutMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self._info = Gauge(
            "canary_info",
            "1 for the rollout in progress; labels say what replaces what, and how.",
            ["service", "strategy", "stable_version", "canary_version"],
            registry=registry,
        )
        self._weight = Gauge(
            "canary_weight_percent", "Share of traffic the canary receives, in percent.", ["service"], registry=registry
        )
        self._step = Gauge(
            "canary_step", "Index of the rollout's traffic step (0-based).", ["service"], registry=registry
        )
        self._status = Gauge(
            "canary_status",
            "1 for the rollout's current status, 0 for the others.",
            ["service", "status"],
            registry=registry,
        )
        self._decisions = Counter(
            "canary_decisions",
            "Analysis verdicts of the rollout's steps, by decision.",
            ["service", "decision"],
            registry=registry,
        )
        self._checks = Counter(
            "canary_analysis_checks",
            "Results of each analysis check (pass, fail, no_data).",
            ["service", "check", "result"],
            registry=registry,
        )
        self._values = Gauge(
            "canary_check_value",
            "Last values an analysis check judged: the canary's, stable's and the limit.",
            ["service", "check", "role"],
            registry=registry,
        )
        self._rollouts = Counter(
            "canary_rollouts", "Rollouts finished, by outcome.", ["service", "outcome"], registry=registry
        )
        self._statuses: set[str] = set(STATUSES)
        self._prepared: set[str] = set()
        self._checks_prepared: set[tuple[str, str]] = set()
        self._info_labels: tuple[str, str, str, str] | None = None

    def _prepare(self, context: StepContext) -> None:
        """Every status and counter child at 0 before anything happens, once per service."""
        service = context.service
        labels = (service, context.strategy, context.stable_version, context.canary_version)
        if labels != self._info_labels:
            if self._info_labels is not None:
                self._info.remove(*self._info_labels)
            self._info.labels(*labels).set(1)
            self._info_labels = labels
        if service in self._prepared:
            return
        self._prepared.add(service)
        for decision in Decision:
            self._decisions.labels(service, decision.value)
        for outcome in ("promoted", "rolled_back"):
            self._rollouts.labels(service, outcome)

    def _set_status(self, service: str, status: str) -> None:
        self._statuses.add(status)
        for known in self._statuses:
            self._status.labels(service, known).set(1 if known == status else 0)

    def step_started(self, context: StepContext) -> None:
        self._prepare(context)
        self._weight.labels(context.service).set(context.weight_percent)
        self._step.labels(context.service).set(context.step)
        self._set_status(context.service, PROGRESSING)

    def _record_check(self, service: str, result: CheckResult) -> None:
        if (service, result.check) not in self._checks_prepared:
            self._checks_prepared.add((service, result.check))
            for outcome in RESULTS:
                self._checks.labels(service, result.check, outcome)
        self._checks.labels(service, result.check, result_label(result)).inc()
        numbers = (("canary", result.canary_value), ("stable", result.stable_value), ("limit", result.threshold))
        for role, value in numbers:
            child = (service, result.check, role)
            if value is None or not math.isfinite(value):
                with contextlib.suppress(KeyError):  # never set: nothing to take away
                    self._values.remove(*child)
            else:
                self._values.labels(*child).set(value)

    def step_decided(self, context: StepContext, verdict: Verdict) -> None:
        self._prepare(context)
        service = context.service
        self._decisions.labels(service, verdict.decision.value).inc()
        for result in verdict.results:
            self._record_check(service, result)
        self._set_status(service, STATUS_OF_DECISION[verdict.decision])

    def finished(self, context: StepContext, outcome: str, reason: str) -> None:
        self._prepare(context)
        status = label_value(outcome)
        self._rollouts.labels(context.service, status).inc()
        self._weight.labels(context.service).set(FINAL_WEIGHT.get(status, context.weight_percent))
        self._step.labels(context.service).set(context.step)
        self._set_status(context.service, status)
