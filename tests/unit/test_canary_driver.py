"""The rollout driver against a target kept in memory and a scripted analysis (not the real one).

The scripted analysis returns the verdicts a test lists, so each test fixes what the analysis says
and checks what the driver does with it: the steps, promotion, rollback, the record.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from scripts.canary.contract import CheckResult, Decision, StepContext, Verdict
from scripts.canary.driver import (
    PROMOTED,
    ROLLBACK_FAILED,
    ROLLED_BACK,
    Exposure,
    Refused,
    RolloutRequest,
    RolloutSettings,
    run_rollout,
)
from scripts.canary.judge import next_failures
from scripts.canary.record import RolloutRecord, read_record
from scripts.canary.strategies import Plan, Step, plan_for

FAST = RolloutSettings(interval_s=0.01, window_s=15, max_holds=3)


def _verdict(decision: Decision, *results: CheckResult) -> Verdict:
    return Verdict(decision, results, reason=f"scripted {decision.value}")


def _check(name: str, passed: bool | None) -> CheckResult:
    return CheckResult(name, passed, 0.5 if passed is False else 0.0, 0.0, 0.05, f"{name} scripted")


class ScriptedAnalysis:
    """Answers the listed verdicts in order (the last one again once the list is used up)."""

    def __init__(self, *verdicts: Verdict, on_call: Callable[[int], None] | None = None) -> None:
        self.verdicts = list(verdicts)
        self.contexts: list[StepContext] = []
        self._on_call = on_call

    def evaluate(self, context: StepContext) -> Verdict:
        self.contexts.append(context)
        if self._on_call is not None:
            self._on_call(len(self.contexts))
        return self.verdicts[min(len(self.contexts), len(self.verdicts)) - 1]


class ExplodingAnalysis:
    def evaluate(self, context: StepContext) -> Verdict:
        raise ConnectionError("prometheus is away")


@dataclass
class MemoryTarget:
    name: str = "memory"
    stable: str = "1"
    problem: str | None = None
    calls: list[tuple[str, object]] = field(default_factory=list)

    def stable_version(self, service: str) -> str:
        return self.stable

    def stable_problem(self, service: str) -> str | None:
        return self.problem

    def plan(self, service: str, strategy: str) -> Plan:
        return plan_for(strategy, stable_instances=1)

    def start_new(self, service: str, version: str, plan: Plan) -> None:
        self.calls.append(("start_new", version))

    def apply_step(self, service: str, stable: str, new: str, step: Step, index: int) -> None:
        self.calls.append(("weight", step.weight_percent))

    def promote(self, service: str, stable: str, new: str) -> None:
        self.calls.append(("promote", new))
        self.stable = new

    def rollback(self, service: str, stable: str, new: str) -> Exposure | None:
        self.calls.append(("rollback", stable))
        return Exposure(served=40, failed=19)


def _run(
    target: MemoryTarget,
    analysis: object,
    strategy: str = "canary",
    stop: threading.Event | None = None,
    record: RolloutRecord | None = None,
) -> tuple[object, list[str]]:
    lines: list[str] = []
    outcome = run_rollout(
        RolloutRequest("response", "2", strategy, FAST),
        target,
        analysis,  # type: ignore[arg-type]
        [record] if record is not None else [],
        stop or threading.Event(),
        lines.append,
    )
    return outcome, lines


def test_a_good_canary_walks_every_weight_and_becomes_stable(tmp_path: Path) -> None:
    target = MemoryTarget()
    analysis = ScriptedAnalysis(_verdict(Decision.PROMOTE, _check("error-ratio", True)))
    record = RolloutRecord(tmp_path, service="response", version="2", strategy="canary", target="memory", plan=[])
    outcome, lines = _run(target, analysis, record=record)
    assert outcome.result == PROMOTED  # type: ignore[attr-defined]
    assert target.calls == [
        ("start_new", "2"),
        *[("weight", w) for w in (1, 5, 10, 25, 50, 100)],
        ("promote", "2"),
    ]
    assert [c.weight_percent for c in analysis.contexts] == [1, 5, 10, 25, 50, 100]
    saved = read_record(record.path)
    assert saved["outcome"] == PROMOTED
    assert saved["stable_version"] == "1"
    decided = [e for e in saved["events"] if e["event"] == "step_decided"]
    assert [e["weight_percent"] for e in decided] == [1, 5, 10, 25, 50, 100]
    assert decided[0]["verdict"]["results"][0]["check"] == "error-ratio"
    assert any("verdict: promote" in line for line in lines)


def test_a_rollback_verdict_sends_every_call_back_to_stable_and_keeps_the_numbers(tmp_path: Path) -> None:
    target = MemoryTarget()
    bad = _verdict(Decision.ROLLBACK, _check("error-ratio", False))
    analysis = ScriptedAnalysis(_verdict(Decision.PROMOTE), bad)
    record = RolloutRecord(tmp_path, service="response", version="2", strategy="canary", target="memory", plan=[])
    outcome, lines = _run(target, analysis, record=record)
    assert outcome.result == ROLLED_BACK  # type: ignore[attr-defined]
    assert outcome.last_weight_percent == 5  # type: ignore[attr-defined]
    assert outcome.exposure == Exposure(40, 19)  # type: ignore[attr-defined]
    assert target.calls[-1] == ("rollback", "1")
    assert ("promote", "2") not in target.calls
    assert target.stable == "1"
    saved = json.loads(record.path.read_text())
    assert saved["outcome"] == ROLLED_BACK
    assert saved["reason"] == "scripted rollback"
    assert saved["events"][-2]["verdict"]["results"][0]["passed"] is False
    assert any("FAIL error-ratio" in line for line in lines)


def test_a_step_that_stays_undecided_rolls_back_after_its_holds() -> None:
    target = MemoryTarget()
    analysis = ScriptedAnalysis(_verdict(Decision.HOLD, _check("p95", None)))
    outcome, _ = _run(target, analysis)
    assert outcome.result == ROLLED_BACK  # type: ignore[attr-defined]
    assert "undecided after 3 holds" in outcome.reason  # type: ignore[attr-defined]
    assert len(analysis.contexts) == FAST.max_holds


def test_a_hold_then_a_promote_stays_in_the_step_then_moves_on() -> None:
    target = MemoryTarget()
    analysis = ScriptedAnalysis(_verdict(Decision.HOLD), *[_verdict(Decision.PROMOTE)] * 6)
    outcome, _ = _run(target, analysis)
    assert outcome.result == PROMOTED  # type: ignore[attr-defined]
    assert [c.weight_percent for c in analysis.contexts][:3] == [1, 1, 5]


def test_failures_in_a_row_are_counted_per_check_and_given_to_the_analysis() -> None:
    target = MemoryTarget()
    failing = _verdict(Decision.HOLD, _check("error-ratio", False), _check("p95", True))
    analysis = ScriptedAnalysis(failing, failing, _verdict(Decision.ROLLBACK))
    _run(target, analysis)
    assert [c.failures_so_far for c in analysis.contexts] == [
        {},
        {"error-ratio": 1, "p95": 0},
        {"error-ratio": 2, "p95": 0},
    ]


def test_consecutive_failures_reset_on_a_pass_and_keep_on_no_data() -> None:
    counts = next_failures(_verdict(Decision.HOLD, _check("a", False), _check("b", False)), {})
    counts = next_failures(_verdict(Decision.HOLD, _check("a", True), _check("b", None)), counts)
    assert counts == {"a": 0, "b": 1}


def test_stable_not_healthy_refuses_before_anything_starts() -> None:
    target = MemoryTarget(problem="its program is BACKOFF")
    with pytest.raises(Refused, match=r"not healthy.*BACKOFF"):
        _run(target, ScriptedAnalysis(_verdict(Decision.PROMOTE)))
    assert target.calls == []


def test_deploying_the_running_version_or_an_unknown_strategy_is_refused() -> None:
    with pytest.raises(Refused, match="already runs version 2"):
        _run(MemoryTarget(stable="2"), ScriptedAnalysis(_verdict(Decision.PROMOTE)))
    with pytest.raises(Refused, match="unknown strategy"):
        _run(MemoryTarget(), ScriptedAnalysis(_verdict(Decision.PROMOTE)), strategy="big-bang")


def test_an_interrupt_during_the_canary_rolls_back() -> None:
    stop = threading.Event()
    target = MemoryTarget()
    analysis = ScriptedAnalysis(_verdict(Decision.PROMOTE), on_call=lambda n: stop.set() if n == 2 else None)
    outcome, _ = _run(target, analysis, stop=stop)
    assert outcome.result == ROLLED_BACK  # type: ignore[attr-defined]
    assert "interrupted" in outcome.reason  # type: ignore[attr-defined]
    assert target.calls[-1] == ("rollback", "1")
    assert len(analysis.contexts) == 2


def test_an_analysis_that_fails_rolls_back_instead_of_promoting_blindly() -> None:
    target = MemoryTarget()
    outcome, _ = _run(target, ExplodingAnalysis())
    assert outcome.result == ROLLED_BACK  # type: ignore[attr-defined]
    assert "prometheus is away" in outcome.reason  # type: ignore[attr-defined]
    assert target.calls == [("start_new", "2"), ("weight", 1), ("rollback", "1")]


def test_blue_green_asks_the_analysis_only_once_every_call_is_on_green() -> None:
    target = MemoryTarget()
    analysis = ScriptedAnalysis(_verdict(Decision.PROMOTE))
    outcome, _ = _run(target, analysis, strategy="blue-green")
    assert outcome.result == PROMOTED  # type: ignore[attr-defined]
    assert [c.weight_percent for c in analysis.contexts] == [100]
    assert target.calls == [("start_new", "2"), ("weight", 0), ("weight", 100), ("promote", "2")]


def test_rolling_on_one_local_instance_is_half_then_all() -> None:
    target = MemoryTarget()
    analysis = ScriptedAnalysis(_verdict(Decision.PROMOTE))
    _run(target, analysis, strategy="rolling")
    assert [c.weight_percent for c in analysis.contexts] == [50, 100]
    assert all(c.strategy == "rolling" for c in analysis.contexts)


def test_the_analysis_never_looks_back_before_the_rollout_began() -> None:
    target = MemoryTarget()
    analysis = ScriptedAnalysis(_verdict(Decision.PROMOTE))
    _run(target, analysis)
    windows = [c.window_s for c in analysis.contexts]
    assert windows[0] == 2  # milliseconds into the rollout: the shortest window, not the settings' 15 s
    assert all(2 <= w <= FAST.window_s for w in windows)


def test_a_rollback_that_fails_is_said_and_recorded_not_reported_as_done(tmp_path: Path) -> None:
    class StuckTarget(MemoryTarget):
        def rollback(self, service: str, stable: str, new: str) -> Exposure | None:
            raise OSError("supervisord is not answering")

    record = RolloutRecord(tmp_path, service="response", version="2", strategy="canary", target="memory", plan=[])
    outcome, _ = _run(StuckTarget(), ScriptedAnalysis(_verdict(Decision.ROLLBACK)), record=record)
    assert outcome.result == ROLLBACK_FAILED  # type: ignore[attr-defined]
    assert "THE ROLLBACK FAILED: OSError: supervisord is not answering" in outcome.reason  # type: ignore[attr-defined]
    assert read_record(record.path)["outcome"] == ROLLBACK_FAILED
