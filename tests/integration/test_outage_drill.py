"""The outage drill, for real, on the shared local platform (drill profile keeps it short)."""

from __future__ import annotations

import json

import pytest

from scripts.drills.__main__ import run_drill
from scripts.drills.recording import load as load_recording
from tests.integration.conftest import RunningPlatform

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_outage_drill_fires_one_incident_and_recovers(quiet_platform: RunningPlatform, tmp_path) -> None:
    result = run_drill("outage", "response", tmp_path, bring_up=False, platform=quiet_platform.platform)

    assert result.status == "completed"
    assert not result.deviated
    assert "ServiceDown{service=response}" in result.expected_alerts
    assert result.unexpected_alerts == []
    assert result.incidents_for_service == 1
    assert result.incident is not None
    assert result.time_to_alert_s is not None
    assert result.time_to_alert_s > 0
    assert result.time_to_incident_s is not None
    assert result.time_to_incident_s >= result.time_to_alert_s - 1
    assert result.time_to_recovery_s is not None
    assert result.requests_failed_during_outage > 0, "users must have seen the outage"
    assert result.passed

    out_dir = next(tmp_path.glob("*-outage-response"))
    journal = json.loads((out_dir / "journal.json").read_text())
    assert journal["status"] == "completed"
    saved = json.loads((out_dir / "result.json").read_text())
    assert saved["passed"] is True
    page = (out_dir / "report.html").read_text()
    assert page.count('class="chart"') == 3
    assert "response stopped" in page
    assert "stop → incident recorded" in page
    recording = load_recording(out_dir / "recording.json")
    assert recording.result.incident == result.incident
    assert all(series.points for series in recording.series), "every chart has data"

    incident = result.incident
    assert incident["status"] == "resolved"
    assert quiet_platform.platform.supervisor.process("response")["statename"] == "RUNNING"


def test_a_second_drill_measures_its_own_outage(quiet_platform: RunningPlatform, tmp_path) -> None:
    first = run_drill("outage", "response", tmp_path / "first", bring_up=False, platform=quiet_platform.platform)
    second = run_drill("outage", "response", tmp_path / "second", bring_up=False, platform=quiet_platform.platform)
    assert first.passed
    assert second.passed
    assert second.moments["stopped"] > first.moments["restarted"]
    assert second.incidents_for_service == 1
    assert second.incident is not None
    assert first.incident is not None
    assert second.incident["id"] != first.incident["id"]
