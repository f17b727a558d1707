"""Slow clients against every live HTTP listener: the edge ones (hello, movie's JSON front) and the mTLS ones.

For each listener, a bounded crowd holds connections open the ways a slow or hostile client does:
connected but silent (on an mTLS listener: no TLS handshake either), headers sent halfway, a body
promised but trickled, and responses requested but never read. While they hold, ordinary clients
must still be served; once they leave, no request may stay counted as in flight (no handler left
waiting on a client that has gone).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp
import pytest

from services.common.metrics import scraped_value
from services.common.waiting import wait_until_async
from tests.conftest import RunningPlatform
from tests.hostile.platform_access import TIMEOUT_S

pytestmark = [pytest.mark.hostile, pytest.mark.integration]

PER_KIND = 16  # connections of each kind, per listener
ORDINARY_REQUESTS = 10
PIPELINED = 40  # unread /metrics answers per slow reader: more than the socket buffers hold


@dataclass(frozen=True)
class Listener:
    service: str
    body_route: str  # a route that reads a request body (or would, past its checks)
    body_read_by_handler: bool  # the trickled bodies keep handlers waiting (in flight) while held
    writer: str = "operator"  # an identity allowed to write there, so the body reaches the handler


LISTENERS = [
    Listener("hello", "POST /hello", body_read_by_handler=False),  # GET only: 405
    Listener("movie", "PUT /movies/tt1/ratings", body_read_by_handler=False),  # no token: 401 first
    Listener("response", "POST /log", body_read_by_handler=True),
    Listener("incidents", "POST /alerts", body_read_by_handler=True, writer="alertmanager"),
]


class Crowd:
    """Open connections that misbehave; closed all at once at the end."""

    def __init__(self, url: str, tls: ssl.SSLContext | None) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.tls = tls
        self.writers: list[asyncio.StreamWriter] = []

    async def _open(self, *, handshake: bool = True) -> asyncio.StreamWriter:
        tls = self.tls if handshake else None
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(self.host, self.port, ssl=tls, server_hostname=self.host if tls else None),
            TIMEOUT_S,
        )
        self.writers.append(writer)
        return writer

    async def _send(self, data: bytes) -> None:
        writer = await self._open()
        writer.write(data)
        await writer.drain()

    async def silent(self) -> None:
        await self._open(handshake=False)

    async def half_headers(self) -> None:
        await self._send(f"GET /health HTTP/1.1\r\nHost: {self.host}\r\nX-Slow: ".encode())

    async def trickled_body(self, route: str) -> None:
        method, path = route.split(" ", 1)
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
        await self._send(f"{head}Content-Length: 65536\r\n\r\n".encode() + b'{"status": "fir')

    async def unread_answers(self) -> None:
        request = f"GET /metrics HTTP/1.1\r\nHost: {self.host}\r\n\r\n".encode()
        await self._send(request * PIPELINED)

    async def close(self) -> None:
        for writer in self.writers:
            writer.transport.abort()
        self.writers.clear()


def client_tls(platform: RunningPlatform, url: str) -> ssl.SSLContext | None:
    if not url.startswith("https://"):
        return None
    context = platform.endpoints.client_ssl()
    assert context is not None
    return context


@contextlib.asynccontextmanager
async def crowd_on(platform: RunningPlatform, listener: Listener) -> AsyncIterator[Crowd]:
    url = platform.url(listener.service)
    crowd = Crowd(url, platform.identity_ssl(listener.writer) if url.startswith("https://") else None)
    try:
        for _ in range(PER_KIND):
            await crowd.silent()
            await crowd.half_headers()
            await crowd.trickled_body(listener.body_route)
            await crowd.unread_answers()
        yield crowd
    finally:
        await crowd.close()


async def in_flight(session: aiohttp.ClientSession, platform: RunningPlatform, service: str) -> float:
    async with session.get(platform.metrics_url(service), timeout=aiohttp.ClientTimeout(total=TIMEOUT_S)) as answer:
        return scraped_value(await answer.text(), "http_requests_in_flight") or 0.0


@pytest.mark.parametrize("listener", LISTENERS, ids=[listener.service for listener in LISTENERS])
async def test_slow_clients_do_not_starve_ordinary_ones(local_platform: RunningPlatform, listener: Listener) -> None:
    url = local_platform.url(listener.service, "/health")
    tls = client_tls(local_platform, url)
    async with aiohttp.ClientSession() as session:
        async with crowd_on(local_platform, listener) as crowd:
            assert len(crowd.writers) == 4 * PER_KIND
            if listener.body_read_by_handler:

                async def handlers_waiting() -> bool:
                    return await in_flight(session, local_platform, listener.service) >= PER_KIND

                await wait_until_async(handlers_waiting, timeout_s=15, what="the trickled bodies reached handlers")

            async def ordinary() -> int:
                async with session.get(url, ssl=tls or True, timeout=aiohttp.ClientTimeout(total=TIMEOUT_S)) as answer:
                    await answer.read()
                    return answer.status

            statuses = await asyncio.gather(*(ordinary() for _ in range(ORDINARY_REQUESTS)))
            assert statuses == [200] * ORDINARY_REQUESTS

        async def settled() -> bool:
            return await in_flight(session, local_platform, listener.service) == 0

        await wait_until_async(
            settled, timeout_s=30, what=f"{listener.service}: nothing in flight after the crowd left"
        )
