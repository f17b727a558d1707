"""A real Alertmanager (Firedrill's generated config, drill timings) delivering to a real receiver.

Needs no platform: the receiver runs as its own process on loopback (plain HTTP, a temporary data
directory) and Alertmanager's webhook points at it; alerts are posted with amtool or the API.
"""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bench.incidents_burst import ReceiverProcess
from services.common.waiting import wait_until
from services.incidents.validation import MAX_ALERTS
from tests.alertmanager import Alertmanager

pytestmark = pytest.mark.integration


@dataclass
class Delivery:
    receiver: ReceiverProcess
    alertmanager: Alertmanager

    def incidents(self) -> list[dict[str, Any]]:
        with urllib.request.urlopen(f"{self.receiver.url}/incidents", timeout=5) as answer:  # noqa: S310 (loopback)
            return list(json.load(answer)["incidents"])

    def wait_incident(self, done: str, accept: Any) -> dict[str, Any]:
        """Until an incident passes ``accept``; fails at once if Alertmanager gave up on a notification."""

        def probe() -> dict[str, Any] | None:
            failures = self.alertmanager.webhook_failures()
            assert failures == 0, f"Alertmanager gave up on {failures} notification(s):\n{self.alertmanager.log()}"
            return next((i for i in self.incidents() if accept(i)), None)

        return wait_until(probe, timeout_s=30, interval_s=0.25, what=done)


@pytest.fixture
def delivery(tmp_path: Path) -> Iterator[Delivery]:
    receiver = ReceiverProcess(tmp_path / "receiver")
    receiver.start()
    alertmanager = Alertmanager(tmp_path, f"{receiver.url}/alerts")
    try:
        alertmanager.start()
        yield Delivery(receiver, alertmanager)
    finally:
        alertmanager.stop()
        receiver.stop()


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def test_a_resolve_posted_with_millisecond_start_closes_the_incident(delivery: Delivery) -> None:
    labels = ["alertname=PrecisionDrill", "service=response", "severity=warning", "instance=a:1"]
    # No --start: Alertmanager stamps the alert with its clock, to the nanosecond.
    delivery.alertmanager.amtool("alert", "add", *labels, "--annotation=summary=precision drill")
    firing = delivery.wait_incident("the firing incident", lambda i: i["alertname"] == "PrecisionDrill")
    assert firing["status"] == "firing"
    # The API (and so amtool) shows startsAt in milliseconds; resolving the alert the way an operator
    # or a script does posts that start back with an end. Alertmanager merges the two into one alert,
    # keeping the earlier start: its resolved notification carries the millisecond start.
    (shown,) = json.loads(delivery.alertmanager.amtool("alert", "query", "-o", "json", "alertname=PrecisionDrill"))
    assert re.fullmatch(r"[0-9-]+T[0-9:]+\.[0-9]{3}Z", shown["startsAt"]), shown["startsAt"]
    assert shown["startsAt"] != firing["started_at"]  # the receiver was told the nanoseconds
    end = _rfc3339(datetime.now(UTC))
    delivery.alertmanager.amtool(
        "alert", "add", *labels, "--annotation=summary=precision drill", f"--start={shown['startsAt']}", f"--end={end}"
    )
    updated = delivery.wait_incident(
        "the resolve delivered", lambda i: i["id"] == firing["id"] and i["updates"] > firing["updates"]
    )
    assert updated["status"] == "resolved", updated
    assert updated["alerts_total"] == 1
    assert updated["resolved_at"] is not None


def test_a_mass_outage_group_is_recorded(delivery: Delivery) -> None:
    alerts = 1_500
    annotation = "x" * 1024
    delivery.alertmanager.api(
        "/api/v2/alerts",
        [
            {
                "labels": {
                    "alertname": "MassOutage",
                    "service": "response",
                    "severity": "critical",
                    "instance": f"host-{n:04d}:9100",
                },
                "annotations": {"summary": "response is down", "description": annotation},
            }
            for n in range(alerts)
        ],
    )
    incident = delivery.wait_incident("the mass-outage incident", lambda i: i["alertname"] == "MassOutage")
    stored = min(alerts, MAX_ALERTS)
    assert incident["alerts_total"] == stored
    assert incident["truncated_alerts"] == alerts - stored
    assert incident["status"] == "firing"
