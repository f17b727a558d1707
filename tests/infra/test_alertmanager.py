"""Alertmanager config: amtool routing cases, and a real Alertmanager proving inhibition and grouping."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scripts.drills.inhibition import alertmanager_states
from scripts.monitoring.alertmanager_config import CHAT, INCIDENTS, PAGER
from scripts.monitoring.files import REPO
from scripts.ports import free_port
from services.common.profiles import PROFILES
from services.common.waiting import wait_until
from tests.alertmanager import Alertmanager
from tests.conftest import require_binary

pytestmark = pytest.mark.infra

GENERATED = REPO / "alertmanager" / "generated"


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_config_passes_amtool(profile: str) -> None:
    amtool = require_binary("amtool")
    done = subprocess.run(
        [amtool, "check-config", "alertmanager.yml"],
        cwd=GENERATED / profile,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


ROUTES = [
    ({"alertname": "ServiceDown", "service": "response", "severity": "critical"}, f"{INCIDENTS},{PAGER}"),
    ({"alertname": "ErrorBudgetBurnPage", "service": "hello", "severity": "critical"}, f"{INCIDENTS},{PAGER}"),
    ({"alertname": "HighErrorRatio", "service": "hello", "severity": "warning"}, f"{INCIDENTS},{CHAT}"),
    ({"alertname": "VaultUnreachable", "service": "auth", "severity": "warning"}, f"{INCIDENTS},{CHAT}"),
    ({"alertname": "Something", "service": "hello", "severity": "info"}, CHAT),
    ({"alertname": "NoSeverity", "service": "hello"}, INCIDENTS),  # the root's receiver: never lost
]


@pytest.mark.parametrize("profile", sorted(PROFILES))
@pytest.mark.parametrize(("labels", "receivers"), ROUTES, ids=[r[0]["alertname"] for r in ROUTES])
def test_routes(profile: str, labels: dict[str, str], receivers: str) -> None:
    amtool = require_binary("amtool")
    command = [
        amtool,
        "config",
        "routes",
        "test",
        "--config.file=alertmanager.yml",
        f"--verify.receivers={receivers}",
        *(f"{k}={v}" for k, v in labels.items()),
    ]
    done = subprocess.run(command, cwd=GENERATED / profile, capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"{labels} -> {done.stdout.strip()} (wanted {receivers}) {done.stderr}"


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[Alertmanager]:
    # The webhook points at a closed loopback port: delivery fails, which does not matter here.
    manager = Alertmanager(tmp_path, f"http://127.0.0.1:{free_port()}/alerts")
    manager.start()
    try:
        yield manager
    finally:
        manager.stop()


def _alert(name: str, service: str, severity: str, **extra: str) -> dict[str, Any]:
    return {
        "labels": {"alertname": name, "service": service, "severity": severity, **extra},
        "annotations": {"summary": f"{name} on {service}"},
    }


def _states(alertmanager: Alertmanager) -> dict[tuple[str, str, str], dict[str, Any]]:
    alerts = alertmanager.api("/api/v2/alerts?inhibited=true&silenced=true&active=true")
    return {
        (a["labels"]["alertname"], a["labels"]["service"], a["labels"].get("instance", "")): a["status"] for a in alerts
    }


def test_dependency_down_inhibits_dependent_symptoms(alertmanager: Alertmanager) -> None:
    alertmanager.api(
        "/api/v2/alerts",
        [
            _alert("ServiceDown", "response", "critical"),
            _alert("HighErrorRatio", "hello", "warning"),  # hello depends on response: inhibited
            _alert("ServiceDown", "hello", "critical"),  # hello's own outage is not a symptom: kept
            _alert("HighErrorRatio", "movie", "warning"),  # movie does not depend on response: kept
        ],
    )

    def settled() -> dict[tuple[str, str, str], dict[str, Any]] | None:
        states = _states(alertmanager)
        return states if len(states) == 4 and states[("HighErrorRatio", "hello", "")]["inhibitedBy"] else None

    states = wait_until(settled, timeout_s=15, what="HighErrorRatio{service=hello} inhibited")
    assert states[("HighErrorRatio", "hello", "")]["state"] == "suppressed"
    for kept in (("ServiceDown", "response", ""), ("ServiceDown", "hello", ""), ("HighErrorRatio", "movie", "")):
        assert states[kept]["state"] == "active", (kept, states[kept])
        assert not states[kept]["inhibitedBy"]


def test_no_inhibition_without_the_dependency_down(alertmanager: Alertmanager) -> None:
    alertmanager.api("/api/v2/alerts", [_alert("HighErrorRatio", "hello", "warning")])
    states = wait_until(lambda: _states(alertmanager) or None, timeout_s=15, what="alert visible")
    assert states[("HighErrorRatio", "hello", "")]["state"] == "active"


def test_alerts_are_grouped_by_alertname_and_service(alertmanager: Alertmanager) -> None:
    alertmanager.api(
        "/api/v2/alerts",
        [
            _alert("HighLatencyP95", "hello", "warning", instance="a"),
            _alert("HighLatencyP95", "hello", "warning", instance="b"),
            _alert("HighLatencyP95", "response", "warning", instance="a"),
        ],
    )

    def groups() -> list[dict[str, Any]] | None:
        found = [g for g in alertmanager.api("/api/v2/alerts/groups") if g["receiver"]["name"] == INCIDENTS]
        return found if sum(len(g["alerts"]) for g in found) == 3 else None

    found = wait_until(groups, timeout_s=15, what="three alerts grouped")
    by_labels = {tuple(sorted(g["labels"].items())): len(g["alerts"]) for g in found}
    assert by_labels == {
        (("alertname", "HighLatencyP95"), ("service", "hello")): 2,
        (("alertname", "HighLatencyP95"), ("service", "response")): 1,
    }


def _amtool_add(alertmanager: Alertmanager, name: str, service: str, severity: str) -> None:
    alertmanager.amtool("alert", "add", f"alertname={name}", f"service={service}", f"severity={severity}")


def _amtool_query(alertmanager: Alertmanager, *state_flags: str) -> set[tuple[str, str]]:
    listed = json.loads(alertmanager.amtool("alert", "query", "--output=json", *state_flags))
    return {(a["labels"]["alertname"], a["labels"]["service"]) for a in listed}


def test_a_dependency_symptom_inhibits_the_same_symptoms_of_its_callers_not_their_page(
    alertmanager: Alertmanager,
) -> None:
    """The errors drill's case: response fails, so hello fails too; hello's error-ratio alert is a
    symptom Alertmanager holds back, while hello's burn-rate page still pages."""
    for name, service, severity in (
        ("HighErrorRatio", "response", "warning"),  # the cause
        ("HighErrorRatio", "hello", "warning"),  # hello calls response: inhibited
        ("HighLatencyP95", "hello", "warning"),  # a slow or failing dependency makes it slow too: inhibited
        ("ErrorBudgetBurnPage", "hello", "critical"),  # the users' page: never muted by a warning
        ("HighErrorRatio", "movie", "warning"),  # movie does not call response: kept
    ):
        _amtool_add(alertmanager, name, service, severity)

    def inhibited() -> set[tuple[str, str]] | None:
        found = _amtool_query(alertmanager, "--inhibited")
        return found if len(found) == 2 else None

    assert wait_until(inhibited, timeout_s=15, what="two inhibited alerts") == {
        ("HighErrorRatio", "hello"),
        ("HighLatencyP95", "hello"),
    }
    assert _amtool_query(alertmanager, "--active") == {
        ("HighErrorRatio", "response"),
        ("ErrorBudgetBurnPage", "hello"),
        ("HighErrorRatio", "movie"),
    }
    # What a drill watches to tell an inhibited symptom from a notified one.
    states = alertmanager_states(alertmanager.url)
    assert states["HighErrorRatio{service=hello}"] == "suppressed"
    assert states["ErrorBudgetBurnPage{service=hello}"] == "active"


def test_a_callers_symptom_does_not_inhibit_its_dependency(alertmanager: Alertmanager) -> None:
    _amtool_add(alertmanager, "HighErrorRatio", "hello", "warning")
    _amtool_add(alertmanager, "HighErrorRatio", "response", "warning")
    found = wait_until(
        lambda: _amtool_query(alertmanager, "--active") or None, timeout_s=15, what="alerts visible to amtool"
    )
    assert found == {("HighErrorRatio", "response")}  # hello's is inhibited, response's never is
    assert _amtool_query(alertmanager, "--inhibited") == {("HighErrorRatio", "hello")}
