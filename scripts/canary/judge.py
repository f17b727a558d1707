"""The decision, from numbers already measured: no Prometheus here, so it is tested on recorded series.

Per check: no data is no judgement (the step holds, it never promotes on silence); a failure counts
toward the check's failure limit — within the limit the step holds, one past it rolls back. The
step promotes only when every check passed.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from scripts.canary.contract import CheckResult, Decision, Verdict
from scripts.canary.templates import CheckTemplate, Comparison, Kind, format_value


@dataclass(frozen=True, slots=True)
class Measurement:
    """What was read for one check: the current values (threshold) or the window's points (zscore)."""

    canary: tuple[float, ...]
    stable: tuple[float, ...]


def finite(values: Sequence[float]) -> tuple[float, ...]:
    """Prometheus answers NaN for 0/0 (a ratio with no request) and ±Inf at histogram edges: no data."""
    return tuple(v for v in values if math.isfinite(v))


def _holds(comparison: Comparison, value: float, limit: float) -> bool:
    return value <= limit if comparison is Comparison.AT_MOST else value >= limit


def judge_threshold(check: CheckTemplate, measured: Measurement) -> CheckResult:
    canary = finite(measured.canary)
    stable = finite(measured.stable)
    # Queries aggregate to one series; if one returns several, the canary is held to its worst.
    worst = max if check.comparison is Comparison.AT_MOST else min
    canary_value = worst(canary) if canary else None
    stable_value = worst(stable) if stable else None
    limit = check.threshold.limit(check.comparison, stable_value)
    unit = check.unit
    if canary_value is None or limit is None:
        missing = "canary" if canary_value is None else "stable"
        return CheckResult(
            check.name,
            None,
            canary_value,
            stable_value,
            limit if limit is not None else math.nan,
            f"{check.name}: no data for {missing} (canary {format_value(canary_value, unit)}, "
            f"stable {format_value(stable_value, unit)})",
        )
    passed = _holds(check.comparison, canary_value, limit)
    verb = "within" if passed else "beyond"
    return CheckResult(
        check.name,
        passed,
        canary_value,
        stable_value,
        limit,
        f"{check.name}: canary {format_value(canary_value, unit)} {verb} limit {format_value(limit, unit)} "
        f"({check.threshold_text}; stable {format_value(stable_value, unit)})",
    )


@dataclass(frozen=True, slots=True)
class ZScore:
    z: float
    canary_mean: float
    stable_mean: float
    stable_stdev: float  # as measured, before the template's floor


def zscore(canary: Sequence[float], stable: Sequence[float], min_stdev: float) -> ZScore:
    """How many of stable's standard deviations the canary's mean lies from stable's mean."""
    canary_mean = statistics.fmean(canary)
    stable_mean = statistics.fmean(stable)
    stdev = statistics.pstdev(stable, stable_mean)
    spread = max(stdev, min_stdev)
    if spread == 0:
        z = 0.0 if canary_mean == stable_mean else math.copysign(math.inf, canary_mean - stable_mean)
    else:
        z = (canary_mean - stable_mean) / spread
    return ZScore(z, canary_mean, stable_mean, stdev)


def judge_zscore(check: CheckTemplate, measured: Measurement) -> CheckResult:
    t = check.threshold
    assert t.max_z is not None, "zscore checks carry max_z (templates.py)"
    canary = finite(measured.canary)
    stable = finite(measured.stable)
    unit = check.unit
    limit = t.max_z if check.comparison is Comparison.AT_MOST else -t.max_z
    if len(canary) < t.min_points or len(stable) < t.min_points:
        return CheckResult(
            check.name,
            None,
            statistics.fmean(canary) if canary else None,
            statistics.fmean(stable) if stable else None,
            limit,
            f"{check.name}: no data (canary {len(canary)}, stable {len(stable)} points; needs {t.min_points} each)",
        )
    score = zscore(canary, stable, t.min_stdev)
    passed = _holds(check.comparison, score.z, limit)
    verb = "within" if passed else "beyond"
    return CheckResult(
        check.name,
        passed,
        score.canary_mean,
        score.stable_mean,
        limit,
        f"{check.name}: z {score.z:+.2f} {verb} {limit:+g} (canary mean {format_value(score.canary_mean, unit)} "
        f"over {len(canary)} points; stable {format_value(score.stable_mean, unit)} "
        f"± {format_value(score.stable_stdev, unit)} over {len(stable)}, "
        f"deviation floor {format_value(t.min_stdev, unit)})",
    )


def judge(check: CheckTemplate, measured: Measurement) -> CheckResult:
    return judge_zscore(check, measured) if check.kind is Kind.ZSCORE else judge_threshold(check, measured)


def failures_after(result: CheckResult, failures_so_far: Mapping[str, int]) -> int:
    """Consecutive failures of the check including this evaluation (a pass resets; no data keeps)."""
    before = failures_so_far.get(result.check, 0)
    if result.passed is None:
        return before
    return before + 1 if result.passed is False else 0


def decide(
    checks: Sequence[CheckTemplate], results: Sequence[CheckResult], failures_so_far: Mapping[str, int]
) -> Verdict:
    """ROLLBACK when a check failed more times in a row than its limit allows; HOLD on a tolerated
    failure or missing data; PROMOTE when every check passed."""
    limits = {c.name: c.failure_limit for c in checks}
    over: list[str] = []
    under: list[str] = []
    silent: list[str] = []
    for result in results:
        if result.passed is None:
            silent.append(result.check)
            continue
        if result.passed:
            continue
        count = failures_after(result, failures_so_far)
        note = f"{result.check} ({count} failure{'s' if count != 1 else ''} in a row, limit {limits[result.check]})"
        (over if count > limits[result.check] else under).append(note)
    if over:
        return Verdict(Decision.ROLLBACK, tuple(results), "failed past the limit: " + ", ".join(over))
    if under or silent:
        parts = []
        if under:
            parts.append("failed within the limit: " + ", ".join(under))
        if silent:
            parts.append("no data yet: " + ", ".join(silent))
        return Verdict(Decision.HOLD, tuple(results), "; ".join(parts))
    if not results:
        return Verdict(Decision.HOLD, (), "no check to judge by")
    return Verdict(Decision.PROMOTE, tuple(results), f"all {len(results)} checks passed")


def next_failures(verdict: Verdict, failures_so_far: Mapping[str, int]) -> dict[str, int]:
    """The ``StepContext.failures_so_far`` for the next evaluation of the same rollout."""
    counts = dict(failures_so_far)
    for result in verdict.results:
        counts[result.check] = failures_after(result, failures_so_far)
    return counts
