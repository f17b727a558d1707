"""hello -> response on the real local platform, scraped by the real Prometheus."""

from __future__ import annotations

import asyncio
import json
import secrets
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from scripts.promql import Prometheus
from scripts.traffic import send_traffic
from services.common.metrics import scraped_value
from services.common.waiting import wait_until, wait_until_async
from tests.integration.conftest import RunningPlatform

pytestmark = pytest.mark.integration


async def test_traffic_flows_from_hello_to_response(local_platform: RunningPlatform) -> None:
    result = await send_traffic(local_platform.url("hello", "/hello"), requests=50, concurrency=5, max_duration_s=30)
    assert result.sent == 50
    assert result.failed == 0, result.statuses


def _is_one(prometheus: Prometheus, query: str) -> bool:
    return prometheus.value(query) == 1


def test_prometheus_scrapes_both_with_the_contract_labels(local_platform: RunningPlatform) -> None:
    prometheus = local_platform.prometheus
    for service in ("hello", "response"):
        up = f'up{{job="services",service="{service}"}}'
        wait_until(partial(_is_one, prometheus, up), timeout_s=20, what=f"{service} scraped and up")
    samples = wait_until(
        lambda: prometheus.query('http_requests_total{service="hello",path="/hello"}'),
        timeout_s=20,
        what="hello request counter scraped",
    )
    labels = samples[0].labels
    assert {"service", "method", "path", "status"} <= set(labels)
    assert labels["method"] == "GET"
    # response's histogram is its own scrape: it may land a scrape interval after hello's counter.
    buckets = wait_until(
        lambda: prometheus.query('http_request_duration_seconds_bucket{service="response",path="/response"}'),
        timeout_s=20,
        what="response latency histogram scraped",
    )
    assert {sample.labels["le"] for sample in buckets} >= {"0.005", "0.1", "10.0", "+Inf"}
    raw_paths = prometheus.query('http_requests_total{path=~".*\\\\?.*"}')
    assert raw_paths == [], "paths must be route templates, never raw URLs"


def _spans(trace_dir: Path, trace_id: str) -> list[dict[str, object]]:
    found = []
    for path in trace_dir.glob("*.jsonl"):
        for line in path.read_text().splitlines():
            if trace_id in line:
                found.append(json.loads(line))
    return found


async def test_one_trace_spans_both_services(local_platform: RunningPlatform) -> None:
    trace_id = secrets.token_hex(16)
    parent = secrets.token_hex(8)
    async with aiohttp.ClientSession() as session:
        headers = {"traceparent": f"00-{trace_id}-{parent}-01"}
        async with session.get(local_platform.url("hello", "/hello"), headers=headers) as answer:
            assert answer.status == 200

    def spans_of_both() -> list[dict[str, object]] | None:
        found = _spans(local_platform.state_dir / "traces", trace_id)
        return found if {span["service"] for span in found} >= {"hello", "response"} else None

    spans = await asyncio.to_thread(
        wait_until, spans_of_both, timeout_s=15, what="spans of both services in the trace files"
    )
    by_id = {span["span_id"]: span for span in spans}
    response_server = next(s for s in spans if s["service"] == "response" and s["kind"] == "SERVER")
    hello_client = by_id[response_server["parent_id"]]
    assert hello_client["service"] == "hello"
    assert hello_client["kind"] == "CLIENT"
    hello_server = by_id[hello_client["parent_id"]]
    assert hello_server["kind"] == "SERVER"
    assert hello_server["parent_id"] == parent


@pytest.mark.parametrize(
    "path", ["/slow?duration=-5", "/slow?duration=3600000", "/leak?size=104857600", "/cpu?duration=nope"]
)
async def test_bad_parameters_get_400(local_platform: RunningPlatform, path: str) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.get(local_platform.url("response", path), ssl=local_platform.operator_ssl()) as answer,
    ):
        assert answer.status == 400
        assert "error" in await answer.json()


async def test_sigterm_under_load_loses_no_in_flight_request(local_platform: RunningPlatform) -> None:
    platform = local_platform.platform
    url = local_platform.url("response", "/slow?duration=800")
    metrics_url = local_platform.metrics_url("response")
    operator_ssl = local_platform.operator_ssl()

    async def in_flight(session: aiohttp.ClientSession) -> float:
        async with session.get(metrics_url) as answer:
            return scraped_value(await answer.text(), "http_requests_in_flight") or 0.0

    async with aiohttp.ClientSession() as session:

        async def one() -> int:
            async with session.get(url, timeout=aiohttp.ClientTimeout(total=15), ssl=operator_ssl) as answer:
                await answer.read()
                return answer.status

        requests = [asyncio.create_task(one()) for _ in range(20)]

        async def all_in_flight() -> bool:
            return await in_flight(session) >= 20

        await wait_until_async(all_in_flight, timeout_s=5, interval_s=0.02, what="requests in flight")
        await asyncio.to_thread(platform.supervisor.signal, "response", "TERM")
        statuses = await asyncio.gather(*requests)
    assert statuses == [200] * 20

    def exited() -> dict[str, Any] | None:
        state = platform.supervisor.process("response")
        return state if state["statename"] in {"EXITED", "STOPPED"} else None

    stopped = await asyncio.to_thread(wait_until, exited, timeout_s=15, what="response exited after draining")
    assert stopped["exitstatus"] == 0, "a graceful stop exits 0"
    await asyncio.to_thread(platform.start, "response")
    await asyncio.to_thread(
        wait_until, lambda: platform.supervisor.process("response")["statename"] == "RUNNING", timeout_s=15
    )
    result = await send_traffic(local_platform.url("hello", "/hello"), requests=5, concurrency=1, max_duration_s=20)
    assert result.failed == 0
