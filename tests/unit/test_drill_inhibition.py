"""A symptom the drill expects inhibited passes only if Alertmanager never notified it."""

from __future__ import annotations

from typing import Any

from scripts.drills import catalogue
from scripts.drills.inhibition import remember, split_inhibited
from scripts.drills.report import build_result

HELLO = "HighErrorRatio{service=hello}"
FIRED = {
    "HighErrorRatio|response": 1.0,
    "ErrorBudgetBurnPage|hello": 2.0,
    "HighErrorRatio|hello": 3.0,
}


def _result(notes: dict[str, Any]) -> Any:
    return build_result(
        experiment="errors",
        service="response",
        journal={"status": "completed", "deviated": False},
        moments={"fault_on": 0.0, "fault_off": 10.0},
        notes={"alerts_seen": dict(FIRED), **notes},
        traffic=None,
        incidents=[{"id": 1}],
        spec=catalogue.load("errors"),
    )


def test_the_errors_drill_expects_hellos_error_ratio_inhibited_not_tolerated() -> None:
    spec = catalogue.load("errors")
    assert spec.inhibited_for("response") == [HELLO]
    assert HELLO not in spec.tolerated_for("response")


def test_fired_but_never_notified_counts_as_inhibited() -> None:
    notes: dict[str, Any] = {}
    remember(notes, {HELLO: "suppressed", "HighErrorRatio{service=response}": "active"}, 5.0)
    result = _result(notes)
    assert result.inhibited_alerts == [HELLO]
    assert result.unexpected_alerts == []
    assert result.passed


def test_an_expected_inhibition_that_notified_is_a_false_alert() -> None:
    notes: dict[str, Any] = {}
    remember(notes, {HELLO: "active"}, 4.0)  # Alertmanager held it as active: it was sent
    remember(notes, {HELLO: "suppressed"}, 5.0)
    result = _result(notes)
    assert result.inhibited_alerts == []
    assert result.unexpected_alerts == [HELLO]
    assert not result.passed


def test_split_keeps_what_the_drill_does_not_expect_inhibited() -> None:
    fired = {("HighErrorRatio", "hello"), ("HighErrorRatio", "movie")}
    kept, inhibited = split_inhibited(fired, ["*{service=hello}"], {})
    assert inhibited == [HELLO]
    assert kept == {("HighErrorRatio", "movie")}
