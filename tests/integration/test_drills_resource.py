"""The resource drills and the debugging endpoints, for real, on the shared local platform.

One drill end to end (log-storm: the fastest, its alert reads the services' own log counters and
does not depend on how much CPU this machine can spare), and the debugging endpoints of a running
service's ops port, with and without the admin identity.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from scripts.drills.__main__ import run_drill
from services.common import catalog
from tests.integration.conftest import RunningPlatform

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def ops_call(service: str, method: str, path: str, token: str | None) -> tuple[int, Any]:
    url = f"http://127.0.0.1:{catalog.port(catalog.service(service).scrape_port)}{path}"
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    request = urllib.request.Request(url, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


def test_log_storm_drill_raises_error_log_storm(quiet_platform: RunningPlatform, tmp_path: Path) -> None:
    result = run_drill("log-storm", None, tmp_path, bring_up=False, platform=quiet_platform.platform)

    assert result.failed_expectations() == []
    assert result.passed
    assert result.expected_alerts == ["ErrorLogStorm{service=response}"]
    assert result.time_to_alert_s is not None
    assert result.time_to_recovery_s is not None
    assert result.requests_failed_during_outage == 0
    assert result.notes["log_storm"]["lines"] > 0
    assert result.incident is not None
    assert result.incident["alertname"] == "ErrorLogStorm"
    assert result.incident["status"] == "resolved"
    errors = quiet_platform.prometheus.value('sum(log_records_total{job="services",service="response",level="error"})')
    assert errors is not None
    assert errors >= result.notes["log_storm"]["lines"]


def test_debug_endpoints_answer_the_admin_identity_only(local_platform: RunningPlatform) -> None:
    token = local_platform.platform.state.admin_token_file.read_text().strip()

    for path in ("/debug/tasks", "/debug/heap", "/debug/profile?seconds=1"):
        status, body = ops_call("response", "GET", path, None)
        assert (status, body["error"]["code"]) == (401, "unauthorized"), path
        status, body = ops_call("response", "GET", path, "not-the-admin-token")
        assert (status, body["error"]["code"]) == (403, "permission_denied"), path
    # Every service holds its own admin token: response's opens nothing on rating.
    assert ops_call("rating", "GET", "/debug/tasks", token)[0] == 403

    status, tasks = ops_call("response", "GET", "/debug/tasks", token)
    assert status == 200
    coroutines = {t["coroutine"] for t in tasks["tasks"]}
    assert any("serve" in c or "run_until_signalled" in c for c in coroutines), coroutines

    status, profile = ops_call("response", "GET", "/debug/profile?seconds=1&top=5", token)
    assert status == 200
    assert profile["seconds"] == 1
    assert profile["mode"] == "cpu"
    assert len(profile["top"]) <= 5

    answers = local_platform.platform.admin_call("response", "POST", "/debug/heap/start", port="ops")
    try:
        assert [a.status for a in answers] == [200]
        status, heap = ops_call("response", "GET", "/debug/heap?top=3", token)
        assert status == 200
        assert len(heap["top"]) <= 3
        assert heap["traced_bytes"] > 0
    finally:
        local_platform.platform.admin_call("response", "POST", "/debug/heap/stop", port="ops")
    assert ops_call("response", "GET", "/debug/heap", token)[0] == 400  # tracing is off again
    assert ops_call("response", "GET", "/debug/profile?seconds=31", token)[0] == 400
    # Prometheus still scrapes the same port without any token.
    status_metrics = urllib.request.urlopen(local_platform.metrics_url("response"), timeout=10).status  # noqa: S310
    assert status_metrics == 200
