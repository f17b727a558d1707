"""The canary analysis: every template check, canary against stable, from Prometheus (contract.Analysis).

Measuring (measure.py) is apart from deciding (judge.py), so the decision is unit-tested on
recorded Prometheus answers. When Prometheus cannot be asked, a check has no data: the step holds,
it neither promotes nor rolls back on a monitoring outage (the driver's own time limit decides).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from scripts.canary.contract import CheckResult, StepContext, Verdict
from scripts.canary.judge import decide, judge
from scripts.canary.measure import LivePrometheus, PrometheusAnswers, measure
from scripts.canary.templates import TEMPLATES_DIR, CheckTemplate, load_templates
from scripts.promql import Prometheus, PrometheusError


class TemplateAnalysis:
    """``evaluate(context)`` measures each check for the canary and stable versions and decides."""

    def __init__(
        self,
        answers: PrometheusAnswers,
        checks: Sequence[CheckTemplate],
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not checks:
            raise ValueError("an analysis needs at least one check")
        self._answers = answers
        self.checks = tuple(checks)
        self._clock = clock

    @property
    def interval_s(self) -> int:
        """How often the checks want to be measured: the shortest interval of any of them."""
        return min(check.interval_s for check in self.checks)

    def _result(self, check: CheckTemplate, context: StepContext, at: float) -> CheckResult:
        try:
            measured = measure(
                self._answers,
                check,
                context.service,
                context.canary_version,
                context.stable_version,
                context.window_s,
                at,
            )
        except PrometheusError as exc:
            return CheckResult(check.name, None, None, None, math.nan, f"{check.name}: no data, {exc}")
        return judge(check, measured)

    def evaluate(self, context: StepContext) -> Verdict:
        at = self._clock()
        results = [self._result(check, context, at) for check in self.checks]
        return decide(self.checks, results, context.failures_so_far)


def prometheus_analysis(prometheus_url: str, templates_dir: Path = TEMPLATES_DIR) -> TemplateAnalysis:
    """The analysis of the templates in ``templates_dir`` (the shipped ones by default) against a Prometheus."""
    checks = load_templates(templates_dir)
    return TemplateAnalysis(LivePrometheus(Prometheus(prometheus_url)), checks)
