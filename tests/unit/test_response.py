from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from services.common.lifecycle import ops_app
from services.response.app import create_app
from services.response.config import ResponseConfig

TOKEN = "test-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[tuple[TestClient[web.Request, web.Application], CollectorRegistry]]:
    config = ResponseConfig.from_env({"FIREDRILL_STATE_DIR": str(tmp_path)})
    config = replace(config, leak_cap_bytes=4 * 1024 * 1024)
    registry = CollectorRegistry()
    app = create_app(config, admin_token=TOKEN, metrics_registry=registry)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client, registry


async def test_response_answers_and_is_counted_by_route_template(client) -> None:
    http, registry = client
    answer = await http.get("/response")
    assert answer.status == 200
    assert (await answer.json())["service"] == "response"
    labels = {"service": "response", "method": "GET", "path": "/response", "status": "200"}
    assert registry.get_sample_value("http_requests_total", labels) == 1
    hist = {"service": "response", "method": "GET", "path": "/response"}
    assert registry.get_sample_value("http_request_duration_seconds_count", hist) == 1


async def test_error_series_exist_at_zero_before_the_first_error(client) -> None:
    """rate() ignores a series' first sample: a 500 series born at 1 would hide a new process's
    first failure from the error-ratio alert and the canary analysis."""
    http, registry = client
    error = {"service": "response", "method": "GET", "path": "/response", "status": "500"}
    assert registry.get_sample_value("http_requests_total", error) == 0
    assert registry.get_sample_value("http_requests_total", {**error, "path": "/metrics"}) is None
    assert (await http.put("/admin/faults", json={"error_ratio": 1.0}, headers=AUTH)).status == 200
    assert (await http.get("/response")).status == 500
    assert registry.get_sample_value("http_requests_total", error) == 1


async def test_unknown_paths_share_one_label_value(client) -> None:
    http, registry = client
    for path in ("/a", "/b/c", "/%00"):
        assert (await http.get(path)).status == 404
    labels = {"service": "response", "method": "GET", "path": "<unmatched>", "status": "404"}
    assert registry.get_sample_value("http_requests_total", labels) == 3


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("/slow?duration=-1", "between 0 and 30000"),
        ("/slow?duration=abc", "integer"),
        ("/slow?duration=3600000", "between 0 and 30000"),
        ("/leak?size=104857600", "between 1 and 102400"),
        ("/leak?size=0", "between 1 and 102400"),
        ("/leak?size=1e9", "integer"),
        ("/cpu?duration=999999", "between 0 and 10000"),
    ],
)
async def test_bad_parameters_are_400_with_a_json_error(client, url: str, fragment: str) -> None:
    http, _ = client
    answer = await http.get(url)
    assert answer.status == 400
    body = await answer.json()
    assert fragment in body["error"]["message"]


async def test_slow_and_cpu_do_what_they_say(client) -> None:
    http, _ = client
    assert (await (await http.get("/slow?duration=20")).json()) == {"slept_ms": 20}
    cpu = await (await http.get("/cpu?duration=20")).json()
    assert cpu["burned_ms"] == 20
    assert cpu["iterations"] > 0


async def test_leak_is_capped_and_freed_by_reset(client) -> None:
    http, registry = client
    assert (await http.get("/leak?size=2048")).status == 200
    assert registry.get_sample_value("fault_leaked_bytes") == 2048 * 1024
    refused = await http.get("/leak?size=4096")
    assert refused.status == 409
    reset = await http.delete("/admin/faults", headers=AUTH)
    assert (await reset.json())["freed_bytes"] == 2048 * 1024
    assert registry.get_sample_value("fault_leaked_bytes") == 0


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[]", b'{"level": "loud", "message": "x"}', b'{"level": "info"}', b'{"message": 5}'],
)
async def test_log_rejects_bad_bodies(client, body: bytes) -> None:
    http, _ = client
    answer = await http.post("/log", data=body)
    assert answer.status == 400
    assert "error" in await answer.json()


async def test_log_accepts_a_message(client) -> None:
    http, _ = client
    answer = await http.post("/log", json={"level": "warn", "message": "custom warning"})
    assert answer.status == 202


async def test_oversized_body_is_413_json(client) -> None:
    http, _ = client
    answer = await http.post("/log", data=b"x" * (1024 * 1024 + 10))
    assert answer.status == 413
    assert (await answer.json())["error"]["code"] == "payload_too_large"


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"Authorization": TOKEN}, 401),  # not a bearer token
        ({"Authorization": "Bearer "}, 401),
        ({"Authorization": "Bearer wrong"}, 403),  # a token, but not response's
        ({"Authorization": f"Bearer {TOKEN}x"}, 403),
    ],
)
async def test_admin_requires_the_token(client, headers: dict[str, str], status: int) -> None:
    http, _ = client
    assert (await http.put("/admin/faults", json={"error_ratio": 1}, headers=headers)).status == status
    assert (await http.get("/response")).status == 200


@pytest.mark.parametrize(
    "body",
    [{"error_ratio": 1.5}, {"error_ratio": -0.1}, {"latency_ms": 999999}, {"latency_ms": "x"}, {"surprise": 1}],
)
async def test_fault_switch_validates(client, body: dict[str, object]) -> None:
    http, _ = client
    assert (await http.put("/admin/faults", json=body, headers=AUTH)).status == 400


async def test_fault_switch_injects_errors_and_resets(client) -> None:
    http, registry = client
    assert (await http.put("/admin/faults", json={"error_ratio": 1.0}, headers=AUTH)).status == 200
    assert registry.get_sample_value("fault_injected_error_ratio") == 1.0
    failed = await http.get("/response")
    assert failed.status == 500
    assert (await failed.json())["error"]["code"] == "injected_fault"
    await http.delete("/admin/faults", headers=AUTH)
    assert (await http.get("/response")).status == 200


async def test_admin_disabled_without_token_file(tmp_path: Path) -> None:
    config = ResponseConfig.from_env({"FIREDRILL_STATE_DIR": str(tmp_path)})
    app = create_app(config, metrics_registry=CollectorRegistry())
    async with TestClient(TestServer(app)) as http:
        answer = await http.get("/admin/faults")
        assert answer.status == 401
        assert "disabled" in (await answer.json())["error"]["message"]


async def test_health_and_metrics(client) -> None:
    http, _ = client
    health = await http.get("/health")
    assert health.status == 200
    assert (await health.json())["status"] == "healthy"
    # /metrics is on the ops port (``lifecycle.ops_app``), which shares the application's registry.
    assert (await http.get("/metrics")).status == 404
    async with TestClient(TestServer(ops_app(http.app))) as ops:
        metrics = await ops.get("/metrics")
        assert "http_requests_total" in await metrics.text()


@pytest.mark.parametrize(
    "duration",
    ["1_000", "%201000", "1000%20", "%2B1000", "%D9%A1%D9%A2", "%EF%BC%95", "1e3", "0x10", "1" * 21],
    ids=["underscore", "lead-space", "trail-space", "plus", "arabic-indic", "fullwidth", "exponent", "hex", "long"],
)
async def test_fault_durations_are_plain_ascii_integers(client, duration: str) -> None:
    http, _ = client
    answer = await http.get(f"/slow?duration={duration}")
    assert answer.status == 400
    assert "must be an integer" in (await answer.json())["error"]["message"]


@pytest.mark.parametrize(
    "body",
    [
        b'{"latency_ms": "1_000"}',
        b'{"latency_ms": " 100"}',
        b'{"error_ratio": "\\u0661"}',
        b'{"error_ratio": "1e-1"}',
        b'{"error_ratio": NaN}',
        b'{"latency_ms": Infinity}',
        b'{"latency_ms": ' + b"9" * 5000 + b"}",
        b"[" * 100_000,
    ],
    ids=["underscore", "space", "arabic-indic", "exponent", "nan", "infinity", "5000-digit-int", "deep-nesting"],
)
async def test_hostile_fault_bodies_are_400(client, body: bytes) -> None:
    http, _ = client
    answer = await http.put("/admin/faults", data=body, headers={**AUTH, "Content-Type": "application/json"})
    assert answer.status == 400
    assert "error" in await answer.json()


async def test_a_plain_decimal_string_still_sets_the_fault(client) -> None:
    http, registry = client
    assert (await http.put("/admin/faults", json={"error_ratio": "0.25"}, headers=AUTH)).status == 200
    assert registry.get_sample_value("fault_injected_error_ratio") == 0.25
