"""The drill finds the incident its own fault caused, not one that was already firing for the service."""

from __future__ import annotations

from typing import Any

import pytest

from scripts.drills import probes
from scripts.drills.recorder import RECORDER


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
