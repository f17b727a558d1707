"""amtool as a real client of the platform's real Alertmanager, which delivers over mTLS to the real receiver.

The alert carries what an operator (or a hostile one) can type: a unicode label value and an
annotation far over the receiver's value limit. Alertmanager forwards both as they are; the
receiver must store the incident (a refusal would make Alertmanager drop the notification, since
it does not retry a 4xx), cut the long value, and then record the resolution amtool sends.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import subprocess
from typing import Any

import pytest
import requests

from services.common.waiting import wait_until
from services.incidents.validation import MAX_VALUE_CHARS, TRUNCATION_MARK
from tests.conftest import RunningPlatform, require_binary
from tests.hostile.platform_access import TIMEOUT_S

pytestmark = [pytest.mark.hostile, pytest.mark.integration]

ALERTNAME = "HostileAmtoolProbe"
RFC3339 = "%Y-%m-%dT%H:%M:%SZ"
UNICODE_VALUE = "ops ☃ 火事 مرحبا 🔥"


def amtool(platform: RunningPlatform, *args: str) -> str:
    done = subprocess.run(
        [require_binary("amtool"), f"--alertmanager.url={platform.endpoints.alertmanager}", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


class Incidents:
    """GET /incidents as the operator (the receiver requires mTLS)."""

    def __init__(self, platform: RunningPlatform) -> None:
        self.base = platform.endpoints.incidents
        tls = platform.endpoints.operator_tls
        assert tls is not None, "the local platform renders an operator certificate"
        self.cert = (str(tls.cert), str(tls.key))
        self.ca = str(tls.ca)

    def get(self, path: str, **params: str) -> Any:
        answer = requests.get(self.base + path, params=params, cert=self.cert, verify=self.ca, timeout=TIMEOUT_S)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def of_service(self, service: str) -> list[dict[str, Any]]:
        return list(self.get("/incidents", service=service)["incidents"])


def test_an_amtool_alert_becomes_an_incident_and_its_resolution_resolves_it(local_platform: RunningPlatform) -> None:
    service = f"amtool-{secrets.token_hex(3)}"
    labels = [f"alertname={ALERTNAME}", f"service={service}", "severity=warning", f"team={UNICODE_VALUE}"]
    started = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    labels.append(f"--start={started.strftime(RFC3339)}")
    annotations = ["--annotation=summary=hostile amtool probe", f"--annotation=description={'x' * 3 * MAX_VALUE_CHARS}"]
    incidents = Incidents(local_platform)
    try:
        amtool(local_platform, "alert", "add", *labels, *annotations)
        queried = json.loads(amtool(local_platform, "alert", "query", "-o", "json", f"service={service}"))
        assert [alert["labels"]["team"] for alert in queried] == [UNICODE_VALUE]

        (incident,) = wait_until(
            lambda: incidents.of_service(service) or None, timeout_s=30, what="the amtool alert stored as an incident"
        )
        assert (incident["alertname"], incident["status"]) == (ALERTNAME, "firing")
        (alert,) = incidents.get(f"/incidents/{incident['id']}")["alerts"]
        assert alert["labels"]["team"] == UNICODE_VALUE
        description = alert["annotations"]["description"]
        assert len(description) == MAX_VALUE_CHARS
        assert description.endswith(TRUNCATION_MARK)
    finally:
        ended = dt.datetime.now(dt.UTC).strftime(RFC3339)
        amtool(local_platform, "alert", "add", *labels, *annotations, f"--end={ended}")

    def resolved() -> dict[str, Any] | None:
        found = incidents.of_service(service)
        return found[0] if found and found[0]["status"] == "resolved" else None

    closed = wait_until(resolved, timeout_s=30, what="the resolution amtool sent reached the incident")
    assert closed["id"] == incident["id"]
