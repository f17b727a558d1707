"""Serve the incidents view on 127.0.0.1: HTML pages read from the receiver's API with the operator's certificate.

Why a local command and not a page on the receiver's ops port: the ops port is plain HTTP on the
service's host, which on a cluster is the Nomad-allocated address; a page there would show incidents
to anything that can reach it, while the API lets only the operator's certificate read them. This
server holds that certificate on the operator's own machine and answers only on loopback, so it
shows exactly what the operator may already read (docs/incidents.md, "In a browser").
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp import web

from scripts.incidents_view import pages
from scripts.incidents_view.links import LinkTargets
from scripts.incidents_view.spans import TRACE_ID, read_trace
from services.common.config import TlsFiles
from services.common.errors import BadRequest
from services.common.params import bounded_int
from services.common.tls import TlsMaterial
from services.common.tls.identity import service_dns_name

HOST = "127.0.0.1"
API_TIMEOUT_S = 5.0
MAX_SERVICE_CHARS = 256
MAX_ID_DIGITS = 19
# Host names a browser on this machine uses for the view; any other Host header is a page of
# another site that resolved its name to 127.0.0.1 (DNS rebinding), and is refused.
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost"})
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True, slots=True)
class ViewConfig:
    api_url: str  # the receiver's base URL (https: mutual TLS with ``operator_tls``)
    targets: LinkTargets
    traces_dir: Path | None  # the local platform's span files; None on a cluster (Jaeger has them)
    operator_tls: TlsFiles | None = None


class ApiAnswer(Exception):
    """The receiver did not give what was asked: its status (502 when unreachable) and why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class IncidentsApi:
    def __init__(self, base_url: str, tls: TlsMaterial | None) -> None:
        self.base_url = base_url.rstrip("/")
        self._tls = tls
        self._ssl: ssl.SSLContext | None = tls.client_context(service_dns_name("incidents")) if tls else None
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> IncidentsApi:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=API_TIMEOUT_S))
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._session is not None:
            await self._session.close()

    async def get(self, path: str) -> Any:
        if self._session is None:
            raise RuntimeError("IncidentsApi is used outside its context")
        if self._tls is not None:
            self._tls.reload_if_changed()  # the agent renews the certificate in place
        url = self.base_url + path
        try:
            async with self._session.get(url, ssl=self._ssl if self._ssl is not None else True) as answer:
                body = await answer.json(content_type=None)
                if answer.status != 200:
                    error = body.get("error", {}) if isinstance(body, dict) else {}
                    message = error.get("message") if isinstance(error, dict) else None
                    raise ApiAnswer(answer.status, f"the incident receiver answered {answer.status}: {message}")
                return body
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            why = str(exc) or type(exc).__name__
            raise ApiAnswer(502, f"cannot read the incident receiver at {self.base_url}: {why}") from None


API_KEY = web.AppKey("incidents_api", IncidentsApi)
CONFIG_KEY = web.AppKey("view_config", ViewConfig)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _html(text: str, status: int = 200) -> web.Response:
    return web.Response(text=text, status=status, content_type="text/html", charset="utf-8")


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Loopback host names only; every answer an HTML page with headers that keep it to itself."""
    name = (request.host or "").rsplit(":", 1)[0] if not (request.host or "").startswith("[") else ""
    if name not in LOOPBACK_NAMES:
        response: web.StreamResponse = _html(pages.error_page(421, "open the view as http://127.0.0.1:<port>/"), 421)
    else:
        try:
            response = await handler(request)
        except BadRequest as exc:
            response = _html(pages.error_page(400, str(exc)), 400)
        except ApiAnswer as exc:
            response = _html(pages.error_page(exc.status, str(exc)), exc.status)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            response = _html(pages.error_page(exc.status, exc.reason), exc.status)
            if isinstance(exc, web.HTTPMethodNotAllowed):
                response.headers["Allow"] = ", ".join(sorted(exc.allowed_methods))
    response.headers.update(HEADERS)
    return response


async def list_view(request: web.Request) -> web.Response:
    query = request.query
    status = query.get("status") or None
    if status not in (None, "firing", "resolved"):
        raise BadRequest('status must be "firing" or "resolved"', parameter="status")
    service = query.get("service") or None
    if service is not None and len(service) > MAX_SERVICE_CHARS:
        raise BadRequest(f"service must be at most {MAX_SERVICE_CHARS} characters", parameter="service")
    limit = bounded_int(query, "limit", default=pages.DEFAULT_LIMIT, minimum=1, maximum=500)
    offset = bounded_int(query, "offset", default=0, minimum=0, maximum=1_000_000)
    params = {"limit": str(limit), "offset": str(offset)}
    params.update({k: v for k, v in (("status", status), ("service", service)) if v})
    answer = await request.app[API_KEY].get(f"/incidents?{urlencode(params)}")
    return _html(pages.list_page(answer, status, service, datetime.now(UTC)))


async def incident_view(request: web.Request) -> web.Response:
    raw = request.match_info["incident_id"]
    if not raw.isascii() or not raw.isdigit() or len(raw) > MAX_ID_DIGITS or int(raw) < 1:
        raise BadRequest("an incident id is a positive integer", parameter="incident_id")
    incident = await request.app[API_KEY].get(f"/incidents/{int(raw)}")
    return _html(pages.incident_page(incident, request.app[CONFIG_KEY].targets, datetime.now(UTC)))


async def trace_view(request: web.Request) -> web.Response:
    trace_id = request.match_info["trace_id"].lower()
    if not TRACE_ID.match(trace_id):
        raise BadRequest("a trace id is 32 hex digits", parameter="trace_id")
    directory = request.app[CONFIG_KEY].traces_dir
    if directory is None:
        raise web.HTTPNotFound(reason="spans are not kept on this machine: open the trace in Jaeger")
    trace = await asyncio.to_thread(read_trace, directory, trace_id)
    if trace is None:
        raise web.HTTPNotFound(reason=f"no span of trace {trace_id} in {directory} (not sampled, or removed)")
    return _html(pages.trace_page(trace))


def create_view_app(config: ViewConfig) -> web.Application:
    app = web.Application(middlewares=[guard])
    app[CONFIG_KEY] = config
    mutual = config.operator_tls is not None and config.api_url.startswith("https://")
    tls = TlsMaterial(config.operator_tls, "operator") if mutual and config.operator_tls else None

    async def api(app: web.Application) -> AsyncIterator[None]:
        async with IncidentsApi(config.api_url, tls) as client:
            app[API_KEY] = client
            yield

    app.cleanup_ctx.append(api)
    app.router.add_get("/", list_view)
    app.router.add_get("/incidents/{incident_id}", incident_view)
    app.router.add_get("/traces/{trace_id}", trace_view)
    return app


def serve(config: ViewConfig, port: int) -> None:
    """Serve until interrupted (Ctrl-C), on loopback only."""
    app = create_view_app(config)
    print(f"incidents view: http://{HOST}:{port}/  (reading {config.api_url}; Ctrl-C stops it)", flush=True)
    web.run_app(app, host=HOST, port=port, print=None, access_log=None)
