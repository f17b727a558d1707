"""A caller that goes away mid-request is not a server error: 499, not a 500 the error-ratio alerts read."""

from __future__ import annotations

import logging

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from services.common.metrics import HttpServerMetrics
from services.common.web import error_middleware, metrics_middleware


async def test_a_connection_lost_while_reading_is_499_and_no_error_log(caplog: pytest.LogCaptureFixture) -> None:
    registry = CollectorRegistry()

    async def upload(request: web.Request) -> web.Response:
        raise ConnectionResetError("Connection lost")  # what aiohttp raises when the body stops mid-way

    app = web.Application(middlewares=[metrics_middleware(HttpServerMetrics("incidents", registry)), error_middleware])
    app.router.add_post("/alerts", upload)
    with caplog.at_level(logging.INFO):
        async with TestClient(TestServer(app)) as client:
            answer = await client.post("/alerts", data=b"{}")
            assert answer.status == 499
    labels = {"service": "incidents", "method": "POST", "path": "/alerts"}
    assert registry.get_sample_value("http_requests_total", {**labels, "status": "499"}) == 1
    assert registry.get_sample_value("http_requests_total", {**labels, "status": "500"}) is None
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert any(r.getMessage() == "client closed the connection" for r in caplog.records)
