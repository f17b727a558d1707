from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from services.common.discovery import Instance
from services.common.discovery.memory import MemoryRegistry
from services.common.waiting import wait_until_async
from services.hello.app import create_app
from services.hello.config import HelloConfig

DEADLINE_S = 0.5
ATTEMPTS = 3


class WatchedRegistry(MemoryRegistry):
    """A MemoryRegistry that counts the lookups that found no instance (hello is waiting for one)."""

    def __init__(self) -> None:
        super().__init__()
        self.empty_answers = 0

    async def healthy_instances(self, service: str) -> list[Instance]:
        found = await super().healthy_instances(service)
        if not found:
            self.empty_answers += 1
        return found


HelloClient = TestClient[web.Request, web.Application]


async def _start_upstream(handler, *, handler_cancellation: bool = False) -> TestServer:
    app = web.Application()
    app.router.add_get("/response", handler)
    server = TestServer(app, host="127.0.0.1", handler_cancellation=handler_cancellation)
    await server.start_server()
    return server


def _calls(metrics: CollectorRegistry, outcome: str) -> float:
    """hello's http_client_requests_total to response for one outcome (0 when never counted)."""
    labels = {"service": "hello", "upstream": "response", "outcome": outcome}
    return metrics.get_sample_value("http_client_requests_total", labels) or 0.0


@pytest.fixture
async def hello(
    tmp_path: Path,
) -> AsyncIterator[tuple[HelloClient, WatchedRegistry, CollectorRegistry]]:
    config = HelloConfig.from_env({"FIREDRILL_STATE_DIR": str(tmp_path)})
    config = replace(config, upstream_deadline_s=DEADLINE_S, upstream_attempts=ATTEMPTS)
    registry = WatchedRegistry()
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
    client, registry, metrics = hello
    answer = await client.get("/hello")
    assert answer.status == 503
    assert (await answer.json())["error"]["code"] == "upstream_unavailable"
    # The wait for an instance ended on the deadline path (counted once, only there), after asking
    # the registry again while time was left; no call was attempted.
    assert _calls(metrics, "no_instance") == 1
    assert registry.empty_answers >= 2
    assert _calls(metrics, "timeout") == _calls(metrics, "connection_error") == 0


async def test_an_instance_that_comes_back_within_the_deadline_is_used(hello) -> None:
    client, registry, _ = hello

    async def ok(_: web.Request) -> web.Response:
        return web.json_response({"message": "back again"})

    upstream = await _start_upstream(ok)
    try:
        pending = asyncio.create_task(client.get("/hello"))
        # The restart gap: hello has asked for an instance, found none, and is waiting for one.
        await wait_until_async(lambda: registry.empty_answers >= 1, timeout_s=5, what="hello to find no instance")
        assert not pending.done()
        await _register(registry, upstream)
        answer = await pending
        assert answer.status == 200
        assert (await answer.json())["response"] == "back again"
    finally:
        await upstream.close()


async def test_refused_connection_is_503_within_the_deadline(hello, unused_tcp_port: int) -> None:
    client, registry, metrics = hello
    await registry.register(Instance("response", "gone", "127.0.0.1", unused_tcp_port))
    answer = await client.get("/hello")
    # 503, not 504: hello gave up when its attempts ran out, before the deadline (the client
    # answers 504 only once the deadline has passed), and every attempt was refused.
    assert answer.status == 503
    assert (await answer.json())["error"]["code"] == "upstream_unavailable"
    assert _calls(metrics, "connection_error") == ATTEMPTS
    assert _calls(metrics, "timeout") == 0


async def test_hanging_upstream_is_504_at_the_deadline(hello) -> None:
    client, registry, metrics = hello
    calls = 0
    abandoned = asyncio.Event()

    async def hang(_: web.Request) -> web.Response:
        nonlocal calls
        calls += 1
        try:
            await asyncio.Event().wait()  # never answers
        except asyncio.CancelledError:
            abandoned.set()  # hello closed the connection: aiohttp cancels this handler
            raise
        return web.json_response({})

    upstream = await _start_upstream(hang, handler_cancellation=True)
    try:
        await _register(registry, upstream)
        answer = await client.get("/hello")
        # 504 is answered only once the deadline has passed; the one attempt used all of it (no
        # retry), and hello gave up on the hanging call rather than waiting for it.
        assert answer.status == 504
        error = (await answer.json())["error"]
        assert error["code"] == "upstream_timeout"
        assert f"within {DEADLINE_S:.2f}s" in error["message"]
        assert calls == 1
        assert _calls(metrics, "timeout") == 1
        await wait_until_async(abandoned.is_set, timeout_s=5, what="the hanging call to be abandoned")
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
