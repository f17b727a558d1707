"""An HTTP listener whose connections are bounded in time and number.

aiohttp has no option for how long a client may take to send a request's head. Its keep-alive
timer does that job: it starts when a connection is made (after the TLS handshake) and again
after each response, and closes the connection if the next request's head (request line and
headers) has not been parsed by then. So ``keepalive_timeout`` is set to ``head_timeout_s``,
which bounds both an idle kept-alive connection and a slow-loris client trickling its headers.
The body is bounded separately, by the body deadline of every application
(``services.common.web``). The TLS handshake before that is bounded by ``handshake_timeout_s``,
and how many connections a listener holds at once by ``max_connections``: past it, a new
connection is answered 503 and closed, so a flood of held sockets cannot exhaust the process's
file descriptors, which its upstream calls, SQLite and certificate reloads also need.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from services.common.logs import Throttle

log = logging.getLogger(__name__)

REFUSAL = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


@dataclass(frozen=True, slots=True)
class ListenerLimits:
    # Above the 15 s an aiohttp client pool keeps an idle connection, so callers' pooled
    # connections are not closed under them by this side first.
    head_timeout_s: float = 20.0
    handshake_timeout_s: float = 10.0
    max_connections: int = 512


LISTENER_LIMITS = ListenerLimits()


class _Refused(asyncio.Protocol):
    """A connection over the listener's cap: answered 503 and closed at once."""

    def __init__(self, site: str, throttle: Throttle) -> None:
        self._site = site
        self._throttle = throttle

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        held_back = self._throttle.admit()
        if held_back is not None:
            log.warning(
                "connection refused: the listener is at its cap", extra={"site": self._site, "held_back": held_back}
            )
        if isinstance(transport, asyncio.WriteTransport):
            transport.write(REFUSAL)
        transport.close()


def _capped(server: web.Server, cap: int, site: str) -> Callable[[], asyncio.BaseProtocol]:
    throttle = Throttle()

    def protocol() -> asyncio.BaseProtocol:
        if len(server.connections) >= cap:
            return _Refused(site, throttle)
        return server()

    return protocol


class LimitedTCPSite(web.BaseSite):
    __slots__ = ("_host", "_limits", "_port")

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str,
        port: int,
        limits: ListenerLimits,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        super().__init__(runner, ssl_context=ssl_context)
        self._host = host
        self._port = port
        self._limits = limits

    @property
    def name(self) -> str:
        scheme = "https" if self._ssl_context else "http"
        return f"{scheme}://{self._host}:{self._port}"

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None  # the runner was set up before the site was made
        self._server = await asyncio.get_running_loop().create_server(
            _capped(server, self._limits.max_connections, self.name),
            self._host,
            self._port,
            ssl=self._ssl_context,
            ssl_handshake_timeout=self._limits.handshake_timeout_s if self._ssl_context else None,
            backlog=self._backlog,
            reuse_address=True,
        )


def limited_runner(app: web.Application, limits: ListenerLimits, grace_s: float) -> web.AppRunner:
    return web.AppRunner(
        app,
        access_log=None,
        handle_signals=False,
        keepalive_timeout=limits.head_timeout_s,
        shutdown_timeout=grace_s,
    )
