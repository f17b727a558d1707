"""The outage drill, for real, on the shared local platform (drill profile keeps it short)."""

from __future__ import annotations

import json

import pytest

from scripts.drills.__main__ import run_drill
from scripts.drills.recorder import RECORDER, Recorder
from tests.integration.conftest import RunningPlatform

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def fresh_recorder() -> None:
    """The drill's recorder is process-wide (Chaos Toolkit runs activities in-process)."""
    RECORDER.__dict__.update(Recorder().__dict__)


def test_outage_drill_fires_one_incident_and_recovers(
    local_platform: RunningPlatform, tmp_path, fresh_recorder
) -> None:
    result = run_drill("outage", "response", tmp_path, bring_up=False, platform=local_platform.platform)

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
    assert "<svg" in page
    assert "time to incident stored" in page

    incident = result.incident
    assert incident["status"] == "resolved"
    assert local_platform.platform.supervisor.process("response")["statename"] == "RUNNING"
