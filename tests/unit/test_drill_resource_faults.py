"""The leak, cpu and log-storm drill actions against response's real API and ops apps on loopback.

The platform here is a small ``Platform`` whose ``admin_call`` is the local platform's own HTTP
call (``scripts.deploy_target.admin_http``) aimed at response's application and its ops app,
served in a background loop; Prometheus is unreachable, which the actions tolerate.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from scripts.deploy_target.admin_http import admin_request, check_port
from scripts.deploy_target.interface import AdminAnswer, Endpoints, PlatformError
from scripts.drills import resource_faults
from scripts.drills.debug_findings import debug_finding_lines, render_debug_findings
from scripts.drills.recorder import RECORDER
from services.common.lifecycle import ops_app
from services.response.app import create_app
from services.response.config import ResponseConfig
from tests.unit.helpers import Servers

TOKEN = "drill-test-token"


class LoopbackResponse:
    """response's API and ops apps on loopback ports, and the admin_call a platform makes to them."""

    name = "loopback"

    def __init__(self, tmp_path: Path, leak_cap_bytes: int) -> None:
        config = ResponseConfig.from_env({"FIREDRILL_STATE_DIR": str(tmp_path)})
        app = create_app(
            replace(config, leak_cap_bytes=leak_cap_bytes), admin_token=TOKEN, metrics_registry=CollectorRegistry()
        )
        self.servers = Servers()
        self.ports = {"api": self.servers.serve(app), "ops": self.servers.serve(ops_app(app))}

    def admin_call(
        self,
        service: str,
        method: str,
        path: str,
        *,
        port: str = "api",
        body: dict[str, Any] | None = None,
        timeout_s: float = 10.0,
    ) -> list[AdminAnswer]:
        check_port(port)
        base = f"http://127.0.0.1:{self.ports[port]}"
        return [admin_request(base, method, path, TOKEN, body=body, timeout_s=timeout_s)]

    def close(self) -> None:
        self.servers.close()


def attach(platform: LoopbackResponse) -> None:
    nowhere = "http://127.0.0.1:1"
    endpoints = Endpoints(services={}, prometheus=nowhere, alertmanager=nowhere, incidents=nowhere)
    RECORDER.reset(platform, endpoints)  # type: ignore[arg-type]  # the admin_call part of a Platform


@pytest.fixture
def response(tmp_path: Path) -> Iterator[LoopbackResponse]:
    platform = LoopbackResponse(tmp_path, leak_cap_bytes=8 * 2**20)
    attach(platform)
    try:
        yield platform
    finally:
        resource_faults._halt_loop("leak")
        resource_faults._halt_loop("cpu")
        resource_faults._halt_loop("log-storm")
        tracemalloc.stop()
        platform.close()


def finished(name: str) -> resource_faults.FaultLoop:
    loop = resource_faults._LOOPS[name]
    assert loop.threads
    assert loop.join(30)
    return loop


def test_leak_then_heap_snapshot_names_the_allocation_site(response: LoopbackResponse) -> None:
    resource_faults.start_heap_tracing("response")
    resource_faults.start_leak("response", kb_per_call=256, interval_s=0.0, max_mb=2)
    assert finished("leak").calls == 8
    leak = resource_faults.leak_held_below_the_cap("response")
    assert leak["leaked_mb_at_alert"] == 2.0
    site = resource_faults.heap_snapshot("response", top=3, expect_file="services/response/faults.py")
    assert site.startswith("services/response/faults.py:")
    assert "bytearray(size_bytes)" in site
    assert "failed_checks" not in RECORDER.notes
    [finding] = RECORDER.notes["findings"]
    assert finding["kind"] == "heap"
    assert finding["rows"][0]["size_mb"] >= 2.0
    assert "services/response/faults.py:" in render_debug_findings(RECORDER.notes)
    assert debug_finding_lines(RECORDER.notes)[0].strip().startswith("heap")
    assert resource_faults.free_leak("response") == {"freed_bytes": 2 * 2**20}
    assert RECORDER.notes["leak"]["freed_mb"] == 2.0
    assert "fault_off" in RECORDER.moments
    assert resource_faults.stop_heap_tracing("response")["stopped"]
    assert not tracemalloc.is_tracing()


def test_a_leak_that_reaches_the_cap_fails_the_check(response: LoopbackResponse) -> None:
    resource_faults.start_leak("response", kb_per_call=3 * 1024, interval_s=0.0, max_mb=30)
    loop = finished("leak")
    assert loop.calls == 3  # 3, 6, then 9 MB would pass the 8 MB cap: refused, and the loop ends
    assert "HTTP 409" in loop.refusals[0]
    resource_faults.leak_held_below_the_cap("response")
    assert "reached the cap" in RECORDER.notes["failed_checks"][0]


def test_a_snapshot_elsewhere_than_expected_fails_the_check(response: LoopbackResponse) -> None:
    resource_faults.start_heap_tracing("response")
    resource_faults.heap_snapshot("response", expect_file="services/response/nowhere.py")
    assert "not in services/response/nowhere.py" in RECORDER.notes["failed_checks"][0]


def test_heap_snapshot_without_tracing_is_refused(response: LoopbackResponse) -> None:
    with pytest.raises(PlatformError, match="POST /debug/heap/start first"):
        resource_faults.heap_snapshot("response")


def test_cpu_burn_is_what_the_profile_names(response: LoopbackResponse) -> None:
    resource_faults.start_cpu_burn("response", burn_ms=1000, max_seconds=4)
    leader = resource_faults.cpu_profile("response", seconds=1, top=5, expect_function="burn_cpu")
    assert "failed_checks" not in RECORDER.notes, leader
    assert leader.startswith("burn_cpu (services/response/faults.py:")
    assert RECORDER.notes["findings"][0]["kind"] == "cpu"
    assert resource_faults.stop_cpu_burn()["calls"] >= 1
    assert "cpu" not in resource_faults._LOOPS


def test_log_storm_posts_lines_until_stopped(response: LoopbackResponse) -> None:
    resource_faults.start_log_storm("response", level="error", rate_per_s=50, max_seconds=0.3)
    assert finished("log-storm").calls >= 1
    assert resource_faults.stop_log_storm()["lines"] >= 1
    assert "failed_checks" not in RECORDER.notes


def test_a_refused_log_storm_fails_the_check(response: LoopbackResponse) -> None:
    resource_faults.start_log_storm("response", level="loud", rate_per_s=50, max_seconds=5)
    assert 1 <= finished("log-storm").calls <= 4  # the first refusal ends it; calls already under way finish
    resource_faults.stop_log_storm()
    assert "HTTP 400: level must be one of" in RECORDER.notes["failed_checks"][0]
