"""Real incidents behind the incidents view: a receiver fed with notifications, enriched from a fake Prometheus.

Shared by the view's in-process tests and its Chromium test.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer
from prometheus_client import CollectorRegistry

from scripts.incidents_view.links import LinkTargets
from scripts.incidents_view.server import ViewConfig, create_view_app
from services.common.waiting import wait_until_async
from services.incidents.app import create_app
from services.incidents.config import IncidentsConfig
from services.incidents.models import NS_PER_S
from services.incidents.payloads import AlertSpec, group_notification

T0 = 1_714_564_800 * NS_PER_S  # 2024-05-01T12:00:00Z
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PROMETHEUS = "http://127.0.0.1:9090"
LONG = "a description long enough to wrap: " + "the response service stopped answering its health check " * 6


async def _query(_: web.Request) -> web.Response:
    result = [{"metric": {"service": "response"}, "value": [1, "0"]}]
    return web.json_response({"status": "success", "data": {"resultType": "vector", "result": result}})


async def _exemplars(_: web.Request) -> web.Response:
    exemplars = [{"labels": {"trace_id": TRACE_ID}, "value": "0.9", "timestamp": 1}]
    return web.json_response({"status": "success", "data": [{"seriesLabels": {}, "exemplars": exemplars}]})


def _alert(name: str, service: str, instance: str, *, ends_after_s: int | None = None) -> AlertSpec:
    annotations = {
        "summary": f"{service} is down",
        "description": LONG,
        "runbook_url": "https://runbooks.example/service-down",
        "dashboard_url": "https://grafana.example/d/firedrill",
    }
    end = T0 + ends_after_s * NS_PER_S if ends_after_s is not None else None
    labels = {"alertname": name, "service": service, "severity": "critical", "instance": instance}
    return AlertSpec(labels, T0, end, annotations, expr=f'up{{service="{service}"}} == 0')


def write_spans(directory: Path) -> None:
    """Two spans of the exemplar trace (hello calling response) and one of another trace."""
    directory.mkdir(parents=True, exist_ok=True)
    base = T0 + 10 * NS_PER_S
    spans = [
        ("hello", "GET /hello", "SERVER", TRACE_ID, "a" * 16, None, 0, 900, {"http.status_code": 503}),
        ("response", "GET /response", "SERVER", TRACE_ID, "b" * 16, "a" * 16, 100, 850, {"http.status_code": 503}),
        ("hello", "GET /hello", "SERVER", "f" * 32, "c" * 16, None, 0, 5, {"http.status_code": 200}),
    ]
    with (directory / "hello.jsonl").open("w") as out:
        for service, name, kind, trace, span, parent, start_ms, end_ms, attributes in spans:
            record = {
                "service": service,
                "name": name,
                "kind": kind,
                "trace_id": trace,
                "span_id": span,
                "parent_id": parent,
                "start_ns": base + start_ms * 1_000_000,
                "end_ns": base + end_ms * 1_000_000,
                "status": "ERROR",
                "attributes": attributes,
            }
            out.write(json.dumps(record) + "\n")
        out.write('{"half a line')


@dataclass(frozen=True, slots=True)
class Stack:
    view: str  # the view's base URL
    api: str  # the receiver's
    resolved_id: int
    firing_id: int


@contextlib.asynccontextmanager
async def incidents_behind_a_view(tmp_path: Path, jaeger: str | None = None) -> AsyncIterator[Stack]:
    fake = web.Application()
    fake.router.add_get("/api/v1/query", _query)
    fake.router.add_get("/api/v1/query_exemplars", _exemplars)
    servers = [TestServer(fake, host="127.0.0.1")]
    await servers[0].start_server()
    try:
        config = IncidentsConfig.from_env(
            {"FIREDRILL_STATE_DIR": str(tmp_path), "FIREDRILL_PROMETHEUS_URL": str(servers[0].make_url(""))}
        )
        receiver = TestServer(create_app(config, metrics_registry=CollectorRegistry()), host="127.0.0.1")
        servers.append(receiver)
        await receiver.start_server()
        api = str(receiver.make_url("")).rstrip("/")
        traces = tmp_path / "traces"
        write_spans(traces)
        targets = LinkTargets(prometheus=PROMETHEUS, jaeger=jaeger)
        view = TestServer(create_view_app(ViewConfig(api, targets, traces)), host="127.0.0.1")
        servers.append(view)
        await view.start_server()
        async with aiohttp.ClientSession() as session:
            down = [_alert("ServiceDown", "response", f"10.0.0.{i}:6060", ends_after_s=95) for i in (1, 2)]
            for body in (
                group_notification([_alert("ServiceDown", "response", "10.0.0.1:6060")]),
                group_notification(down),
            ):
                async with session.post(f"{api}/alerts", json=body) as answer:
                    assert answer.status == 200, await answer.text()
            async with session.post(
                f"{api}/alerts", json=group_notification([_alert("HighLatency", "hello", "h:1")])
            ) as answer:
                assert answer.status == 200

            async def enriched() -> bool:
                async with session.get(f"{api}/incidents") as answer:
                    items = (await answer.json())["incidents"]
                return len(items) == 2 and all(i["enrichment"]["status"] == "done" for i in items)

            await wait_until_async(enriched, timeout_s=10, interval_s=0.05, what="both incidents enriched")
        yield Stack(str(view.make_url("")).rstrip("/"), api, resolved_id=1, firing_id=2)
    finally:
        for server in reversed(servers):
            await server.close()
