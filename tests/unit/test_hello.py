from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from services.common.discovery import Instance
from services.common.discovery.memory import MemoryRegistry
from services.hello.app import create_app
from services.hello.config import HelloConfig


async def _start_upstream(handler) -> TestServer:
    app = web.Application()
    app.router.add_get("/response", handler)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server


@pytest.fixture
async def hello(tmp_path: Path) -> AsyncIterator[tuple[TestClient, MemoryRegistry, CollectorRegistry]]:
    config = HelloConfig.from_env({"FIREDRILL_STATE_DIR": str(tmp_path)})
    config = replace(config, upstream_deadline_s=0.5, upstream_attempts=3)
    registry = MemoryRegistry()
    metrics = CollectorRegistry()
    async with TestClient(TestServer(create_app(config, registry, metrics_registry=metrics))) as client:
        yield client, registry, metrics


async def _register(registry: MemoryRegistry, server: TestServer) -> Instance:
    instance = Instance("response", f"response-{server.port}", "127.0.0.1", int(server.port or 0))
    await registry.register(instance)
    return instance


async def test_hello_greets_through_response(hello) -> None:
    client, registry, metrics = hello

    async def ok(_: web.Request) -> web.Response:
        return web.json_response({"message": "hi from upstream"})

    upstream = await _start_upstream(ok)
    try:
        await _register(registry, upstream)
        answer = await client.get("/hello?name=ana")
        assert answer.status == 200
        body = await answer.json()
        assert body["message"] == "Hello, ana!"
        assert body["response"] == "hi from upstream"
        outcome = {"service": "hello", "upstream": "response", "outcome": "ok"}
        assert metrics.get_sample_value("http_client_requests_total", outcome) == 1
    finally:
        await upstream.close()


@pytest.mark.parametrize("name", ["", "x" * 65, "bad\nname"])
async def test_bad_names_are_400(hello, name: str) -> None:
    client, _, _ = hello
    answer = await client.get("/hello", params={"name": name})
    assert answer.status == 400


async def test_no_instance_is_503_within_the_deadline(hello) -> None:
    client, _, _ = hello
    started = time.monotonic()
    answer = await client.get("/hello")
    assert answer.status == 503
    assert (await answer.json())["error"]["code"] == "upstream_unavailable"
    assert time.monotonic() - started < 0.5 + 0.3


async def test_an_instance_that_comes_back_within_the_deadline_is_used(hello) -> None:
    client, registry, _ = hello

    async def ok(_: web.Request) -> web.Response:
        return web.json_response({"message": "back again"})

    upstream = await _start_upstream(ok)
    try:
        pending = asyncio.create_task(client.get("/hello"))
        await asyncio.sleep(0.15)  # the restart gap: no instance registered yet
        await _register(registry, upstream)
        answer = await pending
        assert answer.status == 200
        assert (await answer.json())["response"] == "back again"
    finally:
        await upstream.close()


async def test_refused_connection_is_503_within_the_deadline(hello, unused_tcp_port: int) -> None:
    client, registry, _ = hello
    await registry.register(Instance("response", "gone", "127.0.0.1", unused_tcp_port))
    started = time.monotonic()
    answer = await client.get("/hello")
    assert answer.status == 503
    assert time.monotonic() - started < 0.5 + 0.3


async def test_hanging_upstream_is_504_at_the_deadline(hello) -> None:
    client, registry, _ = hello

    async def hang(_: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.json_response({})

    upstream = await _start_upstream(hang)
    try:
        await _register(registry, upstream)
        started = time.monotonic()
        answer = await client.get("/hello")
        elapsed = time.monotonic() - started
        assert answer.status == 504
        assert 0.45 < elapsed < 0.5 + 0.3
    finally:
        await upstream.close()


async def test_server_errors_are_retried(hello) -> None:
    client, registry, metrics = hello
    calls = 0

    async def flaky(_: web.Request) -> web.Response:
        nonlocal calls
        calls += 1
        if calls < 3:
            return web.json_response({"error": "boom"}, status=500)
        return web.json_response({"message": "third time"})

    upstream = await _start_upstream(flaky)
    try:
        await _register(registry, upstream)
        answer = await client.get("/hello")
        assert answer.status == 200
        assert calls == 3
        retried = {"service": "hello", "upstream": "response", "outcome": "http_5xx"}
        assert metrics.get_sample_value("http_client_requests_total", retried) == 2
    finally:
        await upstream.close()


async def test_client_errors_are_not_retried(hello) -> None:
    client, registry, _ = hello
    calls = 0

    async def reject(_: web.Request) -> web.Response:
        nonlocal calls
        calls += 1
        return web.json_response({}, status=400)

    upstream = await _start_upstream(reject)
    try:
        await _register(registry, upstream)
        assert (await client.get("/hello")).status == 503
        assert calls == 1
    finally:
        await upstream.close()
