"""The limits of every HTTP listener, held against slow and numerous clients on loopback.

Each test runs a real listener (``start_http_site``) with short limits, so the clients that
break them are cut within seconds; all loops are bounded in count and time.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
from aiohttp import web
from prometheus_client import CollectorRegistry

from scripts.vault.throwaway_pki import ThrowawayPki
from services.common import tls
from services.common.http_listener import ListenerLimits
from services.common.lifecycle import start_http_site
from services.common.waiting import wait_until_async
from services.common.web import create_base_app
from tests.unit.helpers import service_config

HOST = "127.0.0.1"
LIMITS = ListenerLimits(head_timeout_s=1.0, handshake_timeout_s=1.0, max_connections=64)
BODY_TIMEOUT_S = 1.0
SLOW_CLIENTS = 20
# How long past a limit a cut may take to be seen here: generous, for a loaded machine.
MARGIN_S = 5.0
TRICKLE_INTERVAL_S = 0.1
MAX_TRICKLED_BYTES = 200


async def echo(request: web.Request) -> web.Response:
    return web.json_response({"received": len(await request.read())})


@contextlib.asynccontextmanager
async def listening(
    tmp_path: Path, limits: ListenerLimits = LIMITS, ssl_context: ssl.SSLContext | None = None
) -> AsyncIterator[tuple[web.AppRunner, int]]:
    config = service_config("response", tmp_path, instrumentation=False)
    app = create_base_app(config, tracer_provider=None, registry=CollectorRegistry(), body_timeout_s=BODY_TIMEOUT_S)
    app.router.add_post("/echo", echo)
    runner = await start_http_site(app, HOST, 0, grace_s=1.0, ssl_context=ssl_context, limits=limits)
    try:
        yield runner, runner.addresses[0][1]
    finally:
        await runner.cleanup()


async def trickle(writer: asyncio.StreamWriter, start: bytes) -> None:
    """The slow-loris client: a request started, then one more byte at a time, never finished."""
    writer.write(start)
    for _ in range(MAX_TRICKLED_BYTES):
        if writer.is_closing():
            return
        await asyncio.sleep(TRICKLE_INTERVAL_S)
        try:
            writer.write(b"a")
            await writer.drain()
        except ConnectionError:
            return


async def closed_by_server(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sent before closing (a reset counts as closed)."""
    try:
        return await reader.read()
    except ConnectionError:
        return b""


async def health_status(port: int) -> int:
    async with aiohttp.ClientSession() as session, session.get(f"http://{HOST}:{port}/health") as answer:
        return answer.status


async def test_slow_loris_clients_are_cut_at_the_head_timeout_while_requests_keep_working(tmp_path: Path) -> None:
    async with listening(tmp_path) as (_, port):
        clients = [await asyncio.open_connection(HOST, port) for _ in range(SLOW_CLIENTS)]
        kept_alive_reader, kept_alive_writer = clients[0]
        kept_alive_writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await kept_alive_reader.readuntil(b"}")).startswith(b"HTTP/1.1 200")
        slow_head = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: "
        trickles = [asyncio.create_task(trickle(writer, slow_head)) for _, writer in clients]
        try:
            assert await health_status(port) == 200
            answers = await asyncio.wait_for(
                asyncio.gather(*(closed_by_server(reader) for reader, _ in clients)),
                timeout=LIMITS.head_timeout_s + MARGIN_S,
            )
        finally:
            for task in trickles:
                task.cancel()
            for _, writer in clients:
                writer.close()
        assert answers == [b""] * SLOW_CLIENTS
        assert await health_status(port) == 200


async def test_a_body_that_does_not_arrive_in_time_is_answered_408_and_the_connection_closed(tmp_path: Path) -> None:
    async with listening(tmp_path) as (_, port):
        reader, writer = await asyncio.open_connection(HOST, port)
        head = b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10000\r\n\r\n"
        slow_body = asyncio.create_task(trickle(writer, head))
        try:
            answer = await asyncio.wait_for(closed_by_server(reader), timeout=BODY_TIMEOUT_S + MARGIN_S)
        finally:
            slow_body.cancel()
            writer.close()
        assert answer.startswith(b"HTTP/1.1 408")
        assert b'"request_timeout"' in answer
        async with aiohttp.ClientSession() as session, session.post(f"http://{HOST}:{port}/echo", data=b"x" * 9) as ok:
            assert (await ok.json()) == {"received": 9}


async def test_connections_past_the_cap_are_answered_503_and_closed(tmp_path: Path) -> None:
    limits = ListenerLimits(head_timeout_s=30.0, max_connections=3)
    async with listening(tmp_path, limits) as (runner, port):
        assert runner.server is not None
        server = runner.server
        held = [await asyncio.open_connection(HOST, port) for _ in range(limits.max_connections)]
        try:
            await wait_until_async(lambda: len(server.connections) == 3, timeout_s=MARGIN_S, what="3 connections held")
            reader, writer = await asyncio.open_connection(HOST, port)
            refused = await asyncio.wait_for(closed_by_server(reader), timeout=MARGIN_S)
            writer.close()
            assert refused.startswith(b"HTTP/1.1 503")
            held.pop()[1].close()
            await wait_until_async(lambda: len(server.connections) == 2, timeout_s=MARGIN_S, what="one released")
            assert await health_status(port) == 200
        finally:
            for _, idle in held:
                idle.close()


async def test_a_tls_client_that_never_finishes_its_handshake_is_cut(tmp_path: Path) -> None:
    material = tls.TlsMaterial(ThrowawayPki().write(tmp_path / "response", "response"), "response")
    limits = ListenerLimits(head_timeout_s=30.0, handshake_timeout_s=1.0)
    async with listening(tmp_path, limits, material.server_context()) as (_, port):
        reader, writer = await asyncio.open_connection(HOST, port)
        try:
            await asyncio.wait_for(closed_by_server(reader), timeout=limits.handshake_timeout_s + MARGIN_S)
        finally:
            writer.close()
