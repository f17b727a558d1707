"""Alertmanager config: amtool routing cases, and a real Alertmanager proving inhibition and grouping."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scripts.monitoring.alertmanager_config import CHAT, INCIDENTS, PAGER, render_alertmanager_config
from scripts.monitoring.files import REPO, TEMPLATES_DIR
from scripts.monitoring.yamlio import dump
from scripts.ports import free_port
from scripts.processes import http_ok, spawn
from services.common.profiles import DRILL, PROFILES
from services.common.waiting import wait_until
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


def _api(base: str, path: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, headers={"Content-Type": "application/json"})  # noqa: S310
    with urllib.request.urlopen(request, timeout=5) as answer:  # noqa: S310 (loopback)
        raw = answer.read()
    return json.loads(raw) if raw else None


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[str]:
    binary = shutil.which("prometheus-alertmanager") or require_binary("alertmanager")
    shutil.copytree(TEMPLATES_DIR, tmp_path / "templates")
    # The webhook points at a closed loopback port: delivery fails, which does not matter here.
    config = render_alertmanager_config(
        DRILL, f"http://127.0.0.1:{free_port()}/alerts", templates_dir=str(tmp_path / "templates")
    )
    (tmp_path / "alertmanager.yml").write_text(dump(config))
    port = free_port()
    process = spawn(
        "alertmanager",
        [
            binary,
            f"--config.file={tmp_path / 'alertmanager.yml'}",
            f"--web.listen-address=127.0.0.1:{port}",
            f"--storage.path={tmp_path / 'data'}",
            "--cluster.listen-address=",
        ],
        tmp_path / "alertmanager.log",
    )
    base = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        if not process.running:
            raise AssertionError(process.log_file.read_text())
        return http_ok(base + "/-/ready")

    try:
        wait_until(ready, timeout_s=20, what="alertmanager ready")
        yield base
    finally:
        process.stop(timeout_s=10)


def _alert(name: str, service: str, severity: str, **extra: str) -> dict[str, Any]:
    return {
        "labels": {"alertname": name, "service": service, "severity": severity, **extra},
        "annotations": {"summary": f"{name} on {service}"},
    }


def _states(base: str) -> dict[tuple[str, str, str], dict[str, Any]]:
    alerts = _api(base, "/api/v2/alerts?inhibited=true&silenced=true&active=true")
    return {
        (a["labels"]["alertname"], a["labels"]["service"], a["labels"].get("instance", "")): a["status"] for a in alerts
    }


def test_dependency_down_inhibits_dependent_symptoms(alertmanager: str) -> None:
    _api(
        alertmanager,
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


def test_no_inhibition_without_the_dependency_down(alertmanager: str) -> None:
    _api(alertmanager, "/api/v2/alerts", [_alert("HighErrorRatio", "hello", "warning")])
    states = wait_until(lambda: _states(alertmanager) or None, timeout_s=15, what="alert visible")
    assert states[("HighErrorRatio", "hello", "")]["state"] == "active"


def test_alerts_are_grouped_by_alertname_and_service(alertmanager: str) -> None:
    _api(
        alertmanager,
        "/api/v2/alerts",
        [
            _alert("HighLatencyP95", "hello", "warning", instance="a"),
            _alert("HighLatencyP95", "hello", "warning", instance="b"),
            _alert("HighLatencyP95", "response", "warning", instance="a"),
        ],
    )

    def groups() -> list[dict[str, Any]] | None:
        found = [g for g in _api(alertmanager, "/api/v2/alerts/groups") if g["receiver"]["name"] == INCIDENTS]
        return found if sum(len(g["alerts"]) for g in found) == 3 else None

    found = wait_until(groups, timeout_s=15, what="three alerts grouped")
    by_labels = {tuple(sorted(g["labels"].items())): len(g["alerts"]) for g in found}
    assert by_labels == {
        (("alertname", "HighLatencyP95"), ("service", "hello")): 2,
        (("alertname", "HighLatencyP95"), ("service", "response")): 1,
    }
