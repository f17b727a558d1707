"""Enrichment from a fake Prometheus: values, exemplars, failures recorded, never on the webhook path."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from services.common.waiting import wait_until_async
from services.incidents.app import create_app
from services.incidents.config import IncidentsConfig
from services.incidents.enrichment import expression_of, matching_value, promql_string, slowest_trace_id
from services.incidents.models import NS_PER_S
from services.incidents.payloads import AlertSpec, group_notification

T0 = 1_714_564_800 * NS_PER_S


class FakePrometheus:
    def __init__(self) -> None:
        self.queries: list[dict[str, str]] = []
        self.exemplar_queries: list[dict[str, str]] = []
        self.fail = False
        self.delay_s = 0.0
        self.hold: asyncio.Event | None = None  # when given, queries wait until it is set

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/api/v1/query", self.query)
        app.router.add_get("/api/v1/query_exemplars", self.exemplars)
        return app

    async def query(self, request: web.Request) -> web.Response:
        self.queries.append(dict(request.query))
        if self.hold is not None:
            await self.hold.wait()
        await asyncio.sleep(self.delay_s)
        if self.fail:
            return web.json_response({"status": "error", "error": "parse error"}, status=400)
        result = [
            {"metric": {"instance": "other:1"}, "value": [1, "7"]},
            {"metric": {"instance": "a:1", "job": "response"}, "value": [1, "0"]},
        ]
        return web.json_response({"status": "success", "data": {"resultType": "vector", "result": result}})

    async def exemplars(self, request: web.Request) -> web.Response:
        self.exemplar_queries.append(dict(request.query))
        data = [
            {
                "seriesLabels": {"service": "response", "le": "0.5"},
                "exemplars": [
                    {"labels": {"trace_id": "aaaa"}, "value": "0.2", "timestamp": 1},
                    {"labels": {"trace_id": "bbbb"}, "value": "0.9", "timestamp": 2},
                ],
            }
        ]
        return web.json_response({"status": "success", "data": data})


@contextlib.asynccontextmanager
async def running(
    tmp_path: Path, enrich_timeout_ms: int
) -> AsyncIterator[tuple[TestClient[web.Request, web.Application], FakePrometheus]]:
    fake = FakePrometheus()
    prometheus = TestServer(fake.app(), host="127.0.0.1")
    await prometheus.start_server()
    config = IncidentsConfig.from_env(
        {
            "FIREDRILL_STATE_DIR": str(tmp_path),
            "FIREDRILL_PROMETHEUS_URL": str(prometheus.make_url("")),
            "FIREDRILL_ENRICH_TIMEOUT_MS": str(enrich_timeout_ms),
        }
    )
    try:
        async with TestClient(TestServer(create_app(config, metrics_registry=CollectorRegistry()))) as client:
            yield client, fake
    finally:
        if fake.hold is not None:
            fake.hold.set()
        await prometheus.close()


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[tuple[TestClient[web.Request, web.Application], FakePrometheus]]:
    async with running(tmp_path, enrich_timeout_ms=300) as both:
        yield both


def notification(expr: str | None = "up{job='response'} == 0") -> dict[str, Any]:
    spec = AlertSpec(
        {"alertname": "ServiceDown", "service": "response", "instance": "a:1", "job": "response"},
        T0,
        expr=expr,
    )
    return group_notification([spec])


async def enriched(
    client: TestClient[web.Request, web.Application], incident_id: int = 1, timeout_s: float = 5.0
) -> dict[str, Any]:

    async def finished() -> dict[str, Any] | None:
        body: dict[str, Any] = await (await client.get(f"/incidents/{incident_id}")).json()
        return body if body["enrichment"]["status"] != "pending" else None

    return await wait_until_async(finished, timeout_s=timeout_s, interval_s=0.02, what="enrichment finished")


async def test_value_and_slowest_exemplar_are_stored(setup) -> None:
    client, fake = setup
    assert (await client.post("/alerts", json=notification())).status == 200
    incident = await enriched(client)
    enrichment = incident["enrichment"]
    assert enrichment["status"] == "done"
    assert enrichment["expr"] == "up{job='response'} == 0"
    assert enrichment["value"] == 0.0  # the series whose labels match the alert's
    assert len(enrichment["samples"]) == 2
    assert enrichment["exemplar_trace_id"] == "bbbb"
    assert fake.queries[0]["query"] == "up{job='response'} == 0"
    window = fake.exemplar_queries[0]
    assert window["query"] == 'http_request_duration_seconds_bucket{service="response"}'
    assert float(window["start"]) == T0 / NS_PER_S - 300


async def test_a_prometheus_error_is_recorded_not_fatal(setup) -> None:
    client, fake = setup
    fake.fail = True
    assert (await client.post("/alerts", json=notification())).status == 200
    enrichment = (await enriched(client))["enrichment"]
    assert enrichment["status"] == "failed"
    assert "parse error" in enrichment["error"]
    assert enrichment["exemplar_trace_id"] == "bbbb"  # what could be found is kept


async def test_a_slow_prometheus_never_delays_the_webhook(tmp_path: Path) -> None:
    # A timeout far beyond the test: enrichment can only end when the held query is released.
    async with running(tmp_path, enrich_timeout_ms=30_000) as (client, fake):
        fake.hold = asyncio.Event()
        assert (await client.post("/alerts", json=notification())).status == 200
        # The webhook has answered while Prometheus holds the query: enrichment is still pending.
        await wait_until_async(lambda: fake.queries, timeout_s=10, what="the enrichment query to reach Prometheus")
        incident = await (await client.get("/incidents/1")).json()
        assert incident["enrichment"]["status"] == "pending"
        fake.hold.set()
        assert (await enriched(client))["enrichment"]["status"] == "done"


async def test_a_prometheus_slower_than_the_timeout_fails_the_enrichment(setup) -> None:
    client, fake = setup
    fake.delay_s = 2.0
    assert (await client.post("/alerts", json=notification())).status == 200
    enrichment = (await enriched(client))["enrichment"]
    assert enrichment["status"] == "failed"
    assert "no answer within 0.3s" in enrichment["error"]


async def test_no_expression_is_done_without_a_value(setup) -> None:
    client, fake = setup
    assert (await client.post("/alerts", json=notification(expr=None))).status == 200
    enrichment = (await enriched(client))["enrichment"]
    assert enrichment["status"] == "done"
    assert enrichment["value"] is None
    assert "no g0.expr" in enrichment["error"]
    assert fake.queries == []


async def test_an_unreachable_prometheus_is_a_recorded_failure(tmp_path: Path) -> None:
    config = IncidentsConfig.from_env(
        {"FIREDRILL_STATE_DIR": str(tmp_path), "FIREDRILL_PROMETHEUS_URL": "http://127.0.0.1:9"}
    )
    async with TestClient(TestServer(create_app(config, metrics_registry=CollectorRegistry()))) as client:
        assert (await client.post("/alerts", json=notification())).status == 200
        enrichment = (await enriched(client))["enrichment"]
        assert enrichment["status"] == "failed"
        assert "ClientConnectorError" in enrichment["error"] or "connect" in enrichment["error"].lower()


def test_expression_comes_from_g0_expr() -> None:
    url = "http://prometheus:9090/graph?g0.expr=rate%28x%5B5m%5D%29+%3E+1&g0.tab=1"
    assert expression_of(url) == "rate(x[5m]) > 1"
    assert expression_of("http://prometheus:9090/graph") is None
    assert expression_of(None) is None


def test_matching_value_prefers_the_alerts_series() -> None:
    samples = [{"labels": {"instance": "x"}, "value": 1.0}, {"labels": {"instance": "y"}, "value": 2.0}]
    assert matching_value(samples, {"instance": "y"}) == 2.0
    assert matching_value(samples, {"instance": "z"}) == 1.0
    assert matching_value([], {}) is None


def test_slowest_trace_id_ignores_exemplars_without_one() -> None:
    series = [{"exemplars": [{"labels": {}, "value": "9"}, {"labels": {"traceID": "t1"}, "value": "1"}]}]
    assert slowest_trace_id(series) == "t1"
    assert slowest_trace_id([]) is None


def test_label_values_are_escaped_in_promql() -> None:
    assert promql_string('a"b\\c') == '"a\\"b\\\\c"'
