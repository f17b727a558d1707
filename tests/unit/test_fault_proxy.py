"""The partition drill's fault proxy, with real sockets on loopback: an echo server behind it."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import pytest

from scripts.drills.fault_proxy import FaultProxy, Mode, ProxyThread
from services.common.waiting import wait_until, wait_until_async


@dataclass
class Echo:
    port: int = 0
    connections: int = 0
    received: bytearray = field(default_factory=bytearray)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while data := await reader.read(1024):
                self.received += data
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()


@pytest.fixture
async def echo() -> AsyncIterator[Echo]:
    server = Echo()
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    server.port = listener.sockets[0].getsockname()[1]
    try:
        yield server
    finally:
        listener.close()


async def _proxy(echo: Echo, mode: Mode, **kwargs: object) -> tuple[FaultProxy, int]:
    proxy = FaultProxy("127.0.0.1", echo.port, mode, **kwargs)  # type: ignore[arg-type]
    return proxy, await proxy.start()


async def _answer(reader: asyncio.StreamReader, size: int) -> bytes:
    return await asyncio.wait_for(reader.readexactly(size), timeout=10)


async def test_pass_relays_both_ways(echo: Echo) -> None:
    proxy, port = await _proxy(echo, Mode.PASS)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"hello")
    assert await _answer(reader, 5) == b"hello"
    writer.close()
    await proxy.close()
    assert echo.connections == 1
    assert proxy.stats["forwarded_bytes"] == 10  # there and back


async def test_blackhole_swallows_everything_and_cuts_its_connections_when_healed(echo: Echo) -> None:
    proxy, port = await _proxy(echo, Mode.BLACKHOLE)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)  # the handshake succeeds ...
    writer.write(b"anyone there?")
    await writer.drain()
    await wait_until_async(lambda: proxy.stats["swallowed_bytes"] == 13, timeout_s=10, what="the bytes swallowed")
    # ... and nothing comes back, nothing reaches the upstream.
    assert echo.connections == 0
    assert not reader.at_eof()
    assert len(reader._buffer) == 0  # type: ignore[attr-defined]
    proxy.set_mode(Mode.PASS)
    with pytest.raises((asyncio.IncompleteReadError, ConnectionError)):
        await _answer(reader, 1)  # cut: the caller gave up on it long ago
    # New connections flow again.
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"back")
    assert await _answer(reader, 4) == b"back"
    writer.close()
    await proxy.close()


async def test_drop_resets_new_and_live_connections(echo: Echo) -> None:
    proxy, port = await _proxy(echo, Mode.PASS)
    live_reader, live_writer = await asyncio.open_connection("127.0.0.1", port)
    live_writer.write(b"x")
    assert await _answer(live_reader, 1) == b"x"
    proxy.set_mode(Mode.DROP)
    with pytest.raises((asyncio.IncompleteReadError, ConnectionError)):
        await _answer(live_reader, 1)
    reader, _writer = await asyncio.open_connection("127.0.0.1", port)
    with pytest.raises((asyncio.IncompleteReadError, ConnectionError)):
        await _answer(reader, 1)
    assert proxy.stats["dropped"] == 1
    assert echo.connections == 1  # only the connection made before the drop reached the upstream
    await proxy.close()


async def test_delay_waits_before_every_chunk_each_way(echo: Echo) -> None:
    waits: list[float] = []

    async def recorded_sleep(seconds: float) -> None:
        waits.append(seconds)

    proxy, port = await _proxy(echo, Mode.DELAY, delay_s=0.25, sleep=recorded_sleep)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"slow")
    assert await _answer(reader, 4) == b"slow"
    assert waits == [0.25, 0.25]
    writer.close()
    await proxy.close()


async def test_a_live_connection_goes_silent_when_the_partition_starts(echo: Echo) -> None:
    proxy, port = await _proxy(echo, Mode.PASS)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"1")
    assert await _answer(reader, 1) == b"1"
    proxy.set_mode(Mode.BLACKHOLE)
    writer.write(b"2")
    await writer.drain()
    await wait_until_async(lambda: proxy.stats["swallowed_bytes"] == 1, timeout_s=10, what="the byte swallowed")
    assert bytes(echo.received) == b"1"
    writer.close()
    await proxy.close()


async def test_an_unreachable_upstream_closes_the_callers_connection() -> None:
    listener = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    free = listener.sockets[0].getsockname()[1]
    listener.close()
    await listener.wait_closed()
    proxy = FaultProxy("127.0.0.1", free, Mode.PASS)
    port = await proxy.start()
    reader, _writer = await asyncio.open_connection("127.0.0.1", port)
    with pytest.raises((asyncio.IncompleteReadError, ConnectionError)):
        await _answer(reader, 1)
    assert proxy.stats["upstream_unreachable"] == 1
    await proxy.close()


def test_the_threaded_proxy_serves_synchronous_callers(echo_thread: int) -> None:
    proxy = ProxyThread("127.0.0.1", echo_thread, Mode.BLACKHOLE)
    port = proxy.start()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"ping")
            wait_until(lambda: proxy.proxy.stats["swallowed_bytes"] == 4, timeout_s=10, what="the ping swallowed")
            proxy.set_mode(Mode.PASS)
            assert sock.recv(16) == b""  # cut when the partition healed
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"ping")
            assert sock.recv(16) == b"ping"
    finally:
        proxy.stop()


@pytest.fixture
def echo_thread() -> Iterator[int]:
    """An echo server on its own loop in a thread, for the synchronous test."""
    loop = asyncio.new_event_loop()
    server = Echo()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    listener = asyncio.run_coroutine_threadsafe(asyncio.start_server(server.handle, "127.0.0.1", 0), loop).result(10)
    try:
        yield listener.sockets[0].getsockname()[1]
    finally:
        loop.call_soon_threadsafe(listener.close)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
