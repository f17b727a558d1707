"""The fault drills of the catalogue, for real, on the shared local platform (drill profile: alerts in seconds)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
from pathlib import Path

import pytest

from scripts.drills import catalogue
from scripts.drills.__main__ import run_all, run_drill
from scripts.processes import python_module, spawn
from services.common.waiting import wait_until
from tests.integration.conftest import RunningPlatform

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_latency_drill_detects_slow_responses_without_a_page(quiet_platform: RunningPlatform, tmp_path) -> None:
    result = run_drill("latency", None, tmp_path, bring_up=False, platform=quiet_platform.platform)

    assert result.failed_expectations() == []
    assert result.passed
    assert result.expected_alerts == ["HighLatencyP95{service=response}"]
    assert not any(
        label.startswith("ErrorBudgetBurnPage") for label in result.symptom_alerts + result.unexpected_alerts
    )
    assert result.time_to_alert_s is not None
    assert result.time_to_alert_s > 0
    assert result.time_to_recovery_s is not None
    assert result.time_to_recovery_s > 0
    assert result.requests_sent > 0
    assert result.requests_failed_during_outage == 0, "800 ms is inside hello's deadline: nobody saw a failure"
    assert result.incident is not None
    assert result.incident["alertname"] == "HighLatencyP95"
    assert result.incident["status"] == "resolved"
    page = (next(tmp_path.glob("*-latency-response")) / "report.html").read_text()
    assert "response fault on" in page
    assert "fault on → alert firing" in page


def test_errors_drill_pages_through_the_burn_rate(quiet_platform: RunningPlatform, tmp_path) -> None:
    result = run_drill("errors", None, tmp_path, bring_up=False, platform=quiet_platform.platform)

    assert result.failed_expectations() == []
    assert result.passed
    assert sorted(result.expected_alerts) == ["ErrorBudgetBurnPage{service=hello}", "HighErrorRatio{service=response}"]
    assert set(result.notes["detected_s"]) == set(result.expected_alerts)
    # hello's own error ratio is a symptom: Alertmanager held it back (it fires in Prometheus only).
    assert "HighErrorRatio{service=hello}" not in result.symptom_alerts + result.unexpected_alerts
    assert set(result.inhibited_alerts) <= {"HighErrorRatio{service=hello}"}
    assert result.notes.get("alertmanager_active"), "the drill watched Alertmanager's own view of the alerts"
    assert result.requests_failed_during_outage > 0, "half of response's answers failed: users saw it"
    assert result.incident is not None
    assert result.incident["alertname"] == "HighErrorRatio"
    assert result.incident["status"] == "resolved"
    saved = json.loads((next(tmp_path.glob("*-errors-response")) / "result.json").read_text())
    assert saved["passed"] is True


def test_dependency_down_drill_degrades_movie_without_a_page(quiet_platform: RunningPlatform, tmp_path) -> None:
    result = run_drill("dependency-down", None, tmp_path, bring_up=False, platform=quiet_platform.platform)

    assert result.failed_expectations() == []
    assert result.passed
    assert result.service == "rating"
    assert result.expected_alerts == ["ServiceDown{service=rating}"]
    assert not [label for label in result.symptom_alerts + result.unexpected_alerts if "service=movie" in label]
    assert result.requests_sent > 0
    assert result.requests_failed_during_outage == 0, "movie answered every user while rating was down"
    assert result.moments["stopped"] < result.moments["movie_degraded"] < result.moments["restarted"]
    assert result.moments["movie_whole"] > result.moments["restarted"]
    assert result.incident is not None
    assert result.incident["status"] == "resolved"
    assert quiet_platform.platform.supervisor.process("rating")["statename"] == "RUNNING"


def test_simulate_all_scores_every_drill_and_fails_when_one_does(
    quiet_platform: RunningPlatform, tmp_path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    experiments = tmp_path / "experiments"
    experiments.mkdir()
    shutil.copy(catalogue.EXPERIMENTS / "dependency-down.json", experiments)
    # The latency drill, expecting a page that a slow but error-free service must never cause.
    latency = json.loads((catalogue.EXPERIMENTS / "latency.json").read_text())
    latency["extensions"][0]["expected_alerts"].append("ErrorBudgetBurnPage{service=hello}")
    (experiments / "latency-expecting-a-page.json").write_text(json.dumps(latency))
    monkeypatch.setattr(catalogue, "EXPERIMENTS", experiments)

    code = run_all(catalogue.names(), tmp_path / "out", bring_up=False, platform=quiet_platform.platform)

    assert code == 1
    out = capsys.readouterr().out
    table = out[out.index("Scorecard") :]
    assert re.search(r"latency-expecting-a-page \(response\) .* no \(1/2\) .* FAILED", table)
    assert re.search(r"dependency-down \(rating\) .* yes .* 0/\d+ \(max 0\) +0 +PASSED", table)
    assert "latency-expecting-a-page: expected alert never fired: ErrorBudgetBurnPage{service=hello}" in table
    (page,) = (tmp_path / "out").glob("*-scorecard.html")
    html = page.read_text()
    assert html.count('<section id="drill-') == 2
    assert "expected alert never fired: ErrorBudgetBurnPage{service=hello}" in html


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_or_sigterm_in_the_middle_of_a_drill_runs_its_rollbacks(
    quiet_platform: RunningPlatform, tmp_path: Path, signum: signal.Signals
) -> None:
    """SIGTERM (a `timeout`, a CI runner) stops a drill as Ctrl-C does, not only the probe it interrupts."""
    log = tmp_path / "drill.log"
    env = {**os.environ, "FIREDRILL_STATE_DIR": str(quiet_platform.state_dir)}
    command = python_module("scripts.drills", "latency", "--no-up", "--out", str(tmp_path / "out"))
    drill = spawn("drill", command, log, env=env)
    try:
        wait_until(lambda: "fault on response" in log.read_text(), timeout_s=60, what="the fault switched on")
        os.killpg(drill.pid, signum)  # SIGINT: what Ctrl-C sends to the terminal's foreground group
        wait_until(lambda: not drill.running, timeout_s=90, what="the drill to finish its rollbacks")
    finally:
        drill.stop()

    out = log.read_text()
    assert drill.process.returncode == 1
    assert "Rollback: always-switch-the-fault-off" in out
    assert "(Chaos Toolkit: interrupted" in out
    prometheus = quiet_platform.prometheus
    wait_until(
        lambda: prometheus.value('max(fault_injected_latency_seconds{service="response"})') == 0,
        timeout_s=30,
        what="response scraped with its fault switched off",
    )
