"""The drill finds the incident its own fault caused, not one that was already firing for the service."""

from __future__ import annotations

import re
from typing import Any

import pytest

from scripts.drills import probes
from scripts.drills.recorder import RECORDER
from services.common.waiting import TimedOut


def test_receiver_times_parse_with_any_fraction() -> None:
    assert probes._epoch_s("2026-12-02T10:22:13Z") == 1_796_206_933.0
    assert probes._epoch_s("2026-12-02T10:22:13.668123456Z") == pytest.approx(1_796_206_933.668123456)


def test_an_incident_firing_before_the_fault_is_not_the_drills(monkeypatch: pytest.MonkeyPatch) -> None:
    older = {"id": 21, "created_at": "2026-12-02T10:20:00.5Z", "status": "firing"}
    ours = {"id": 22, "created_at": "2026-12-02T10:22:13.7Z", "status": "firing"}
    listed: list[dict[str, Any]] = [ours, older]
    monkeypatch.setattr(probes, "incidents", lambda service=None, status=None: list(listed))
    monkeypatch.setitem(RECORDER.moments, "stopped", probes._epoch_s("2026-12-02T10:22:09Z"))
    assert probes._recorded_since_the_fault("response") == [ours]
    listed.remove(ours)
    assert probes._recorded_since_the_fault("response") == []


def test_after_a_missed_alert_the_incident_and_resolution_waits_end_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A failed drill does not sit out the incident's and the resolution's timeouts of an alert that never fired."""
    monkeypatch.setattr(RECORDER, "moments", {"fault_on": 1.0})
    monkeypatch.setattr(RECORDER, "notes", {})
    monkeypatch.setattr(probes, "firing_alerts", lambda: [])
    with pytest.raises(TimedOut):
        probes.wait_for_alert("CpuSaturation", "response", timeout_s=0.05)
    assert RECORDER.notes["missed_alerts"] == ["CpuSaturation{service=response}"]
    with pytest.raises(probes.NotWaited, match=re.escape("CpuSaturation{service=response} never fired")):
        probes.wait_for_incident("response", timeout_s=600)
    with pytest.raises(probes.NotWaited, match="nothing to resolve"):
        probes.wait_for_resolution("CpuSaturation", "response", timeout_s=600)


def test_an_alert_that_fired_is_waited_for_to_resolve(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(RECORDER, "moments", {"fault_on": 1.0})
    monkeypatch.setattr(RECORDER, "notes", {"missed_alerts": ["HighLatencyP95{service=hello}"]})
    firing = [{"alertname": "CpuSaturation", "service": "response"}]
    monkeypatch.setattr(probes, "firing_alerts", lambda: list(firing))
    monkeypatch.setattr(probes, "incidents", lambda service=None, status=None: [])
    probes.wait_for_alert("CpuSaturation", "response", timeout_s=1)
    firing.clear()
    with pytest.raises(TimedOut, match="incident None resolved"):
        probes.wait_for_resolution("CpuSaturation", "response", timeout_s=0.05)
