"""The drill catalogue: experiments that Chaos Toolkit can run, expectations, verdicts and the scorecard."""

from __future__ import annotations

import importlib
import inspect
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from scripts.drills import catalogue, scorecard
from scripts.drills.__main__ import main, refusal
from scripts.drills.recording import Recording, load
from scripts.drills.report import classify_alerts

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "drill_recording.json"


@pytest.fixture
def recording() -> Recording:
    return load(FIXTURE)


def _activities(experiment: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        *experiment["steady-state-hypothesis"]["probes"],
        *experiment["method"],
        *experiment["rollbacks"],
    ]


@pytest.mark.parametrize("name", catalogue.names())
def test_every_activity_names_a_function_that_takes_its_arguments(name: str) -> None:
    spec = catalogue.load(name)
    for activity in _activities(spec.experiment):
        provider = activity["provider"]
        function = getattr(importlib.import_module(provider["module"]), provider["func"])
        inspect.signature(function).bind(**provider.get("arguments", {}))  # raises TypeError on a mismatch


# What breaks something -> what repairs it (resource faults: scripts.drills.resource_faults).
REPAIRS = {
    "stop_service": "start_service",
    "inject_fault": "clear_fault",
    "start_leak": "free_leak",
    "start_heap_tracing": "stop_heap_tracing",
    "start_cpu_burn": "stop_cpu_burn",
    "start_log_storm": "stop_log_storm",
    "break_startup": "restore_startup",
    "partition": "heal_partition",
    "deploy_version": "restore_version",
}


@pytest.mark.parametrize("name", catalogue.names())
def test_every_drill_repairs_what_it_breaks_in_its_rollbacks(name: str) -> None:
    experiment = catalogue.load(name).experiment
    assert experiment["runtime"]["rollbacks"]["strategy"] == "always"
    breaking = {a["provider"]["func"] for a in experiment["method"]} & set(REPAIRS)
    repairs = {a["provider"]["func"] for a in experiment["rollbacks"]}
    assert breaking
    assert {REPAIRS[func] for func in breaking} <= repairs
    assert "stop_traffic" in repairs
    assert experiment["steady-state-hypothesis"]["probes"]


def test_the_catalogue_runs_the_classic_outage_first() -> None:
    names = catalogue.names()
    assert names[0] == "outage"
    assert {"latency", "errors", "dependency-down"} <= set(names)


def test_alert_patterns_match_names_and_services() -> None:
    assert catalogue.matches("HighErrorRatio{service=hello}", "HighErrorRatio{service=hello}")
    assert catalogue.matches("HighErrorRatio{service=hello}", "*{service=hello}")
    assert catalogue.matches("ErrorBudgetBurnTicket{service=movie}", "ErrorBudgetBurnTicket{service=*}")
    assert not catalogue.matches("HighErrorRatio{service=hello}", "HighErrorRatio{service=response}")
    assert not catalogue.matches("ServiceDown{service=hello}", "HighErrorRatio{service=*}")


def test_outage_tolerates_the_callers_of_the_stopped_service() -> None:
    spec = catalogue.load("outage")
    assert spec.expected_for("response") == ["ServiceDown{service=response}"]
    assert "*{service=hello}" in spec.tolerated_for("response")
    assert "*{service=movie}" in spec.tolerated_for("rating")


def test_alerts_split_into_expected_symptoms_false_and_missing() -> None:
    fired = {("HighErrorRatio", "response"), ("HighErrorRatio", "hello"), ("CpuSaturation", "auth")}
    expected, symptoms, unexpected, missing = classify_alerts(
        fired,
        ["HighErrorRatio{service=response}", "ErrorBudgetBurnPage{service=hello}"],
        ["HighErrorRatio{service=hello}"],
    )
    assert expected == ["HighErrorRatio{service=response}"]
    assert symptoms == ["HighErrorRatio{service=hello}"]
    assert unexpected == ["CpuSaturation{service=auth}"]
    assert missing == ["ErrorBudgetBurnPage{service=hello}"]


def test_a_drill_that_let_too_many_requests_fail_fails(recording: Recording) -> None:
    result = replace(recording.result, max_failed_requests=0)
    assert result.requests_failed_during_outage > 0
    assert not result.passed
    assert any("user requests failed" in reason for reason in result.failed_expectations())


def test_a_missing_alert_fails_the_drill(recording: Recording) -> None:
    result = replace(recording.result, missing_alerts=["HighLatencyP95{service=response}"])
    assert not result.passed
    assert result.failed_expectations() == ["expected alert never fired: HighLatencyP95{service=response}"]


def test_refusal_names_the_probes_that_failed_before_the_method() -> None:
    journal = {
        "steady_states": {
            "before": {
                "steady_state_met": False,
                "probes": [
                    {"activity": {"name": "every-service-target-is-up"}, "tolerance_met": True, "output": True},
                    {"activity": {"name": "no-alert-is-firing"}, "tolerance_met": False, "output": 3},
                ],
            }
        }
    }
    assert refusal(journal) == "the steady state does not hold: no-alert-is-firing (got 3)"
    assert refusal({"steady_states": {"before": {"steady_state_met": True, "probes": []}}}) is None


def test_a_refused_drill_says_only_why(recording: Recording) -> None:
    notes = {**recording.result.notes, "refused_because": "the steady state does not hold: x (got 3)"}
    result = replace(recording.result, notes=notes, missing_alerts=["ServiceDown{service=response}"])
    assert not result.passed
    assert result.failed_expectations() == ["refused to start: the steady state does not hold: x (got 3)"]
    assert scorecard.row(result).verdict == "REFUSED"


def test_the_scorecard_has_a_row_per_drill_and_says_why_one_failed(recording: Recording) -> None:
    failed = replace(
        recording.result,
        experiment="latency",
        expected_alerts=[],
        missing_alerts=["HighLatencyP95{service=response}"],
    )
    table = scorecard.render_table([recording.result, failed])
    lines = table.splitlines()
    assert lines[0].split()[:2] == ["drill", "expected"]
    assert "outage (response)" in lines[2]
    assert lines[2].rstrip().endswith("PASSED")
    assert lines[3].rstrip().endswith("FAILED")
    assert "no (0/1)" in lines[3]
    assert "latency: expected alert never fired: HighLatencyP95{service=response}" in table


def test_the_scorecard_page_has_a_section_per_drill_with_unique_chart_ids(recording: Recording) -> None:
    second = replace(recording, result=replace(recording.result, experiment="latency"))
    page = scorecard.render_scorecard_page([recording, second])
    assert page.count('<section id="drill-') == 2
    ids = re.findall(r'<svg class="chart" id="([^"]+)"', page)
    assert len(ids) == 2 * len(recording.series)
    assert len(set(ids)) == len(ids)
    assert page.count("<tr><td>") == 2


def test_dry_run_prints_every_drill_and_touches_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["all", "--dry-run"]) == 0
    out = capsys.readouterr().out
    for name in catalogue.names():
        assert f"Drill {name} on " in out
    assert "rollbacks (always run" in out
    assert "${" not in out  # configuration is filled in, as Chaos Toolkit would
    assert "wait_for_alert(alertname=ServiceDown, service=response)" in out  # the wait comes from the profile


def test_service_applies_only_to_drills_that_take_one(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="always breaks rating"):
        main(["dependency-down", "--service", "hello", "--out", str(tmp_path), "--no-up"])
