"""The canary analysis decides on real Prometheus answers recorded from the local platform.

tests/unit/canary_series/*.json hold what Prometheus answered to every template query for a
canary and stable response (recorded by ``python -m tests.unit.canary_series.record``): a good
canary, one failing 30 % of its calls, one 250 ms slower, and a version no instance carries.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from pathlib import Path

import pytest

from scripts.canary.analysis import TemplateAnalysis
from scripts.canary.contract import CheckResult, Decision, StepContext, Verdict
from scripts.canary.judge import Measurement, decide, judge, next_failures, zscore
from scripts.canary.measure import LivePrometheus, values_of
from scripts.canary.recorded import NotRecorded, Recording
from scripts.canary.templates import CheckTemplate, Kind, load_templates
from scripts.ports import free_port
from scripts.promql import Prometheus

SERIES = Path(__file__).resolve().parent / "canary_series"
ERROR_CHECKS = {"error-ratio", "error-ratio-zscore"}
LATENCY_CHECKS = {"latency-p95", "latency-p95-zscore"}


def recording(name: str) -> Recording:
    return Recording.load(SERIES / f"{name}.json")


def context(rec: Recording, failures: dict[str, int] | None = None) -> StepContext:
    return StepContext(
        service=rec.service,
        stable_version=rec.stable_version,
        canary_version=rec.canary_version,
        strategy="canary",
        step=2,
        weight_percent=10,
        window_s=rec.window_s,
        failures_so_far=failures or {},
    )


def evaluate(name: str, failures: dict[str, int] | None = None, checks: tuple[CheckTemplate, ...] = ()) -> Verdict:
    rec = recording(name)
    analysis = TemplateAnalysis(rec.answers(), checks or load_templates(), clock=lambda: rec.at)
    return analysis.evaluate(context(rec, failures))


def by_check(verdict: Verdict) -> dict[str, CheckResult]:
    return {result.check: result for result in verdict.results}


def failed(verdict: Verdict) -> set[str]:
    return {r.check for r in verdict.results if r.passed is False}


def test_a_good_canary_is_promoted_with_every_check_passed():
    verdict = evaluate("good")
    assert verdict.decision is Decision.PROMOTE, verdict.reason
    assert {r.check for r in verdict.results} == {c.name for c in load_templates()}
    assert all(r.passed for r in verdict.results), [r.reason for r in verdict.results]
    assert verdict.reason == f"all {len(verdict.results)} checks passed"


def test_a_good_canary_stays_promoted_after_earlier_failures():
    """A pass resets the count: earlier failures of a check do not roll back a canary that now passes."""
    assert evaluate("good", {"error-ratio": 5, "latency-p95": 5}).decision is Decision.PROMOTE


@pytest.mark.parametrize(("name", "checks"), [("errors", ERROR_CHECKS), ("latency", LATENCY_CHECKS)])
def test_a_bad_canary_holds_at_its_first_failure_and_rolls_back_past_the_limit(name, checks):
    first = evaluate(name)
    assert failed(first) == checks, [r.reason for r in first.results]
    assert first.decision is Decision.HOLD  # failure_limit 1: one failure in a row is tolerated
    second = evaluate(name, next_failures(first, {}))
    assert second.decision is Decision.ROLLBACK, second.reason
    for check in checks:
        assert check in second.reason


def test_the_error_numbers_are_in_the_reasons():
    results = by_check(evaluate("errors"))
    ratio = results["error-ratio"]
    assert ratio.canary_value is not None
    assert ratio.canary_value > 0.2
    assert ratio.stable_value == 0.0
    assert ratio.threshold == 0.05
    assert f"{ratio.canary_value:.2%}" in ratio.reason
    assert "5.00%" in ratio.reason
    assert results["latency-p95"].passed
    assert results["memory-rss"].passed
    assert results["cpu"].passed


def test_the_latency_numbers_are_in_the_reasons():
    results = by_check(evaluate("latency"))
    p95 = results["latency-p95"]
    assert p95.canary_value is not None
    assert p95.stable_value is not None
    assert p95.canary_value > 0.25 > p95.stable_value  # the fault added 250 ms to every canary call
    assert p95.threshold == pytest.approx(1.5 * p95.stable_value + 0.05)
    assert f"{p95.canary_value * 1000:.0f} ms" in p95.reason
    assert results["error-ratio"].passed


def test_no_data_for_the_canary_holds_and_never_promotes_or_rolls_back():
    verdict = evaluate("absent", {"error-ratio": 9})
    assert verdict.decision is Decision.HOLD
    assert all(r.passed is None and r.canary_value is None for r in verdict.results)
    assert "no data yet" in verdict.reason
    # the stable side was there: the reasons say which side was missing
    assert "no data for canary" in by_check(verdict)["error-ratio"].reason
    assert next_failures(verdict, {"error-ratio": 1}) == {c.name: 0 for c in load_templates()} | {"error-ratio": 1}


@pytest.mark.parametrize("limit", [0, 2, 3])
def test_the_failure_limit_of_each_check_is_respected(limit):
    checks = tuple(
        dataclasses.replace(c, failure_limit=limit) if c.name in ERROR_CHECKS else c for c in load_templates()
    )
    failures: dict[str, int] = {}
    decisions = []
    for _ in range(limit + 1):
        verdict = evaluate("errors", failures, checks)
        decisions.append(verdict.decision)
        failures = next_failures(verdict, failures)
    assert decisions == [Decision.HOLD] * limit + [Decision.ROLLBACK]
    assert failures["error-ratio"] == limit + 1
    assert failures["cpu"] == 0


def test_the_zscore_is_stables_deviations_from_its_mean():
    rec = recording("latency")
    check = next(c for c in load_templates() if c.name == "latency-p95-zscore")
    assert check.kind is Kind.ZSCORE
    data = rec.document["checks"][check.name]
    canary, stable = values_of(data["canary"]["data"]), values_of(data["stable"]["data"])
    assert len(stable) >= check.threshold.min_points  # a range of points, not one value
    score = zscore(canary, stable, check.threshold.min_stdev)
    spread = max(statistics.pstdev(stable), check.threshold.min_stdev)
    assert score.z == pytest.approx((statistics.fmean(canary) - statistics.fmean(stable)) / spread)
    result = judge(check, Measurement(canary, stable))
    assert result.passed is False
    assert f"z {score.z:+.2f}" in result.reason
    # the same stable window against the good canary's series is well within the limit
    good = recording("good").document["checks"][check.name]
    assert judge(check, Measurement(values_of(good["canary"]["data"]), stable)).passed is True


def test_zscore_floor_and_flat_baselines():
    flat = (0.01, 0.01, 0.01)
    assert zscore((0.01, 0.01), flat, 0.0).z == 0.0
    assert zscore((0.02,), flat, 0.0).z == math.inf  # any move away from a perfectly flat baseline
    assert zscore((0.02,), flat, 0.005).z == pytest.approx(2.0)  # the template's floor bounds it
    assert zscore((0.0,), (1.0, 3.0), 0.0).z == pytest.approx(-2.0)


def test_nan_and_inf_answers_are_no_data():
    """A ratio with no request is 0/0 = NaN in Prometheus; the judge treats it as missing, not as 0."""
    check = next(c for c in load_templates() if c.name == "error-ratio")
    result = judge(check, Measurement((math.nan,), (0.0,)))
    assert result.passed is None
    assert decide((check,), (result,), {}).decision is Decision.HOLD


def test_a_recording_refuses_a_query_it_does_not_hold():
    rec = recording("good")
    other = dataclasses.replace(load_templates()[0], query='up{version="$version"}')
    with pytest.raises(NotRecorded, match="record again"):
        TemplateAnalysis(rec.answers(), (other,), clock=lambda: rec.at).evaluate(context(rec))


def test_prometheus_unreachable_holds_and_says_why():
    nowhere = LivePrometheus(Prometheus(f"http://127.0.0.1:{free_port()}", timeout_s=1))
    analysis = TemplateAnalysis(nowhere, load_templates())
    verdict = analysis.evaluate(context(recording("good")))
    assert verdict.decision is Decision.HOLD
    assert all(r.passed is None and "cannot reach Prometheus" in r.reason for r in verdict.results)
    assert analysis.interval_s == min(c.interval_s for c in load_templates())
