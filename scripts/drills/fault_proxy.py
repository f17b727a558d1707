"""A TCP proxy on loopback that passes, delays, drops or blackholes what goes through it.

The partition drill puts one between hello and response (``scripts.local.partition`` points
response's registration at it). It works on bytes, so mutual TLS passes through it untouched:
hello still verifies response's certificate and response still checks hello's.

- ``pass``: bytes flow both ways as they arrive;
- ``delay``: every chunk, either way, waits ``delay_s`` first (a slow link);
- ``drop``: new connections are reset as soon as they are accepted, live ones are cut (a refused path);
- ``blackhole``: connections are accepted and whatever arrives vanishes; nothing is answered and
  nothing reaches the upstream (a partition: the caller sees only its own timeouts).

The mode applies to live connections too, from their next chunk on. Leaving ``blackhole`` cuts the
connections it held: their callers gave up on them long ago.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import threading
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from enum import StrEnum

CHUNK = 64 * 1024


class Mode(StrEnum):
    PASS = "pass"  # noqa: S105 (a mode name, not a password)
    DELAY = "delay"
    DROP = "drop"
    BLACKHOLE = "blackhole"


class FaultProxy:
    """The proxy itself: one asyncio server, run in whatever loop starts it."""

    def __init__(
        self,
        upstream_host: str,
        upstream_port: int,
        mode: Mode = Mode.PASS,
        delay_s: float = 0.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.mode = mode
        self.delay_s = delay_s
        self._sleep = sleep
        self._server: asyncio.Server | None = None
        self._held: set[asyncio.StreamWriter] = set()  # client sides of blackholed connections
        self._open: set[asyncio.StreamWriter] = set()  # every side of every live connection
        # accepted, dropped, blackholed, forwarded_bytes, swallowed_bytes, delayed_chunks
        self.stats: Counter[str] = Counter()

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        self._server = await asyncio.start_server(self._handle, host, port)
        return int(self._server.sockets[0].getsockname()[1])

    def set_mode(self, mode: Mode, delay_s: float = 0.0) -> None:
        self.mode, self.delay_s = mode, delay_s
        if mode is Mode.DROP:
            for writer in list(self._open):
                _cut(writer)
        elif mode is not Mode.BLACKHOLE:
            for writer in list(self._held):
                _cut(writer)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._open):
            _cut(writer)
        if self._server is not None:
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.stats["accepted"] += 1
        self._open.add(writer)
        try:
            if self.mode is Mode.DROP:
                self.stats["dropped"] += 1
                _cut(writer)
            elif self.mode is Mode.BLACKHOLE:
                await self._swallow(reader, writer)
            else:
                await self._relay(reader, writer)
        finally:
            self._open.discard(writer)
            self._held.discard(writer)
            _cut(writer)

    async def _swallow(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.stats["blackholed"] += 1
        self._held.add(writer)
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(CHUNK):
                self.stats["swallowed_bytes"] += len(data)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            self.stats["upstream_unreachable"] += 1
            return
        self._open.add(up_writer)
        try:
            await asyncio.gather(self._pump(reader, up_writer), self._pump(up_reader, writer))
        finally:
            self._open.discard(up_writer)
            _cut(up_writer)

    async def _pump(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while data := await source.read(CHUNK):
                if self.mode is Mode.BLACKHOLE:
                    self.stats["swallowed_bytes"] += len(data)
                    continue
                if self.mode is Mode.DELAY and self.delay_s > 0:
                    self.stats["delayed_chunks"] += 1
                    await self._sleep(self.delay_s)
                sink.write(data)
                await sink.drain()
                self.stats["forwarded_bytes"] += len(data)
            if sink.can_write_eof():
                sink.write_eof()
        except (ConnectionError, RuntimeError):
            _cut(sink)


def _cut(writer: asyncio.StreamWriter) -> None:
    """Close a connection at once (a reset, not a polite FIN after queued data)."""
    transport = writer.transport
    if not transport.is_closing():
        transport.abort()


class ProxyThread:
    """A FaultProxy on its own event loop in a daemon thread, for synchronous callers (drills)."""

    def __init__(self, upstream_host: str, upstream_port: int, mode: Mode = Mode.PASS, delay_s: float = 0.0) -> None:
        self.proxy = FaultProxy(upstream_host, upstream_port, mode, delay_s)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fault-proxy", daemon=True)
        self.port = 0

    def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        self._thread.start()
        self.port = asyncio.run_coroutine_threadsafe(self.proxy.start(host, port), self._loop).result(10)
        return self.port

    def set_mode(self, mode: Mode, delay_s: float = 0.0) -> None:
        async def switch() -> None:
            self.proxy.set_mode(mode, delay_s)

        asyncio.run_coroutine_threadsafe(switch(), self._loop).result(10)

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        asyncio.run_coroutine_threadsafe(self.proxy.close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.drills.fault_proxy", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("upstream", help="HOST:PORT to forward to (loopback)")
    parser.add_argument("--listen", type=int, default=0, help="port on 127.0.0.1 (default: any free one)")
    parser.add_argument("--mode", choices=[m.value for m in Mode], default=Mode.PASS.value)
    parser.add_argument("--delay-ms", type=int, default=0, help="delay per chunk in delay mode")
    args = parser.parse_args(argv)
    host, _, port = args.upstream.rpartition(":")
    if host not in ("127.0.0.1", "localhost", "::1", "[::1]") or not port.isdigit():
        parser.error("the upstream must be a loopback HOST:PORT")

    async def serve() -> None:
        proxy = FaultProxy(host.strip("[]"), int(port), Mode(args.mode), args.delay_ms / 1000)
        listening = await proxy.start(port=args.listen)
        print(f"fault proxy on 127.0.0.1:{listening} -> {args.upstream} ({args.mode}); Ctrl-C stops it", flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await proxy.close()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
