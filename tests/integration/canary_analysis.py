"""A small analysis for the rollout tests, NOT the canary analysis (scripts/canary/analysis.py).

It asks the platform's real Prometheus for one thing: the new version's share of 5xx answers over
the step's window (series told apart by the ``version`` label). Too few calls: HOLD; above the
threshold: ROLLBACK; else PROMOTE. Enough to drive the rollout driver end to end on the local
platform; the real analysis (thresholds as data, p95, memory, CPU, z-scores) replaces it.
"""

from __future__ import annotations

from pathlib import Path

from scripts.canary.contract import CheckResult, Decision, StepContext, Verdict
from scripts.promql import Prometheus


class ErrorRatioOnly:
    def __init__(self, prometheus: Prometheus, *, threshold: float = 0.05, min_calls: float = 3) -> None:
        self._prometheus = prometheus
        self._threshold = threshold
        self._min_calls = min_calls

    def _calls(self, context: StepContext, extra: str = "") -> float:
        selector = f'service="{context.service}",version="{context.canary_version}",path!="/health"{extra}'
        value = self._prometheus.value(f"sum(increase(http_requests_total{{{selector}}}[{context.window_s}s]))")
        return value or 0.0

    def evaluate(self, context: StepContext) -> Verdict:
        calls = self._calls(context)
        if calls < self._min_calls:
            result = CheckResult("error-ratio", None, None, None, self._threshold, f"{calls:.1f} calls: too few")
            return Verdict(Decision.HOLD, (result,), f"only {calls:.1f} calls to {context.canary_version} so far")
        errors = self._calls(context, ',status=~"5.."')
        ratio = errors / calls
        passed = ratio <= self._threshold
        reason = f"{ratio:.3f} of {calls:.0f} calls failed (threshold {self._threshold})"
        result = CheckResult("error-ratio", passed, ratio, None, self._threshold, reason)
        return Verdict(Decision.PROMOTE if passed else Decision.ROLLBACK, (result,), reason)


def build(prometheus_url: str, _templates_dir: Path) -> ErrorRatioOnly:
    """``--analysis tests.integration.canary_analysis:build`` (and the drills' FIREDRILL_CANARY_ANALYSIS)."""
    return ErrorRatioOnly(Prometheus(prometheus_url))
