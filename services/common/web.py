"""The aiohttp pieces every HTTP service shares: middlewares, /health, /metrics, app factory.

Middleware order, outermost first: tracing (the sampling gate, then a server span for sampled requests),
metrics (sees the final status, labels by route template), errors (turns domain errors and
aiohttp's HTTP exceptions into JSON bodies; unexpected exceptions become a logged 500), body
deadline (a request's body must have arrived within ``REQUEST_BODY_TIMEOUT_S`` of its head, or
reading it fails and the request is answered 408).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from opentelemetry import context as otel_context
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.aiohttp import make_aiohttp_handler

from services.common.config import ServiceConfig
from services.common.errors import DomainError
from services.common.http_errors import error_response
from services.common.http_tracing import http_tracer, serve_traced
from services.common.metrics import HttpServerMetrics
from services.common.telemetry import ROOT_SAMPLED_KEY, current_trace_id

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
HealthCheck = Callable[[], Awaitable[dict[str, Any]]]

MAX_BODY_BYTES = 1024 * 1024
# Enough for MAX_BODY_BYTES at a slow 50 KB/s; the head has its own bound (services.common.http_listener).
REQUEST_BODY_TIMEOUT_S = 30.0
UNMATCHED_PATH = "<unmatched>"
CLIENT_CLOSED_REQUEST = 499
_UNINSTRUMENTED = frozenset({"/metrics"})

REGISTRY_KEY = web.AppKey("metrics_registry", CollectorRegistry)
SERVICE_KEY = web.AppKey("service_name", str)
HEALTH_CHECKS_KEY = web.AppKey("health_checks", dict[str, HealthCheck])


def route_template(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else UNMATCHED_PATH


def json_error(status: int, code: str, message: str, **details: Any) -> web.Response:
    error: dict[str, Any] = {"code": code, "message": message}
    if details:
        error["details"] = details
    return web.json_response({"error": error}, status=status)


class BodyTimeout(TimeoutError):
    """The request body did not arrive in time. A TimeoutError, so that aiohttp, draining an
    unread body after the response, closes the connection instead of logging an error."""


def body_deadline(timeout_s: float) -> Any:
    """Fail every read of a request body that has not fully arrived ``timeout_s`` after its head."""

    async def bounded(request: web.Request, handler: Handler) -> web.StreamResponse:
        body = request.content

        def expire() -> None:
            if not body.is_eof():
                body.set_exception(BodyTimeout(f"request body not received within {timeout_s:g} s"))

        timer = asyncio.get_running_loop().call_later(timeout_s, expire)
        try:
            return await handler(request)
        finally:
            timer.cancel()

    @web.middleware
    def middleware(request: web.Request, handler: Handler) -> Awaitable[web.StreamResponse]:
        # Not a coroutine itself: a request whose body has all arrived (most have none) goes
        # straight to the handler, without one more coroutine on its path.
        if request.content.is_eof():
            return handler(request)
        return bounded(request, handler)

    return middleware


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except DomainError as exc:
        return error_response(exc)
    except BodyTimeout as exc:
        answer = json_error(408, "request_timeout", str(exc))
        answer.force_close()
        return answer
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        if exc.status == 413:
            return json_error(413, "payload_too_large", f"request body is over {MAX_BODY_BYTES} bytes")
        return json_error(exc.status, exc.reason.lower().replace(" ", "_"), exc.reason)
    except ConnectionResetError:
        # The caller went away while its request was read or served: nobody receives an answer, and
        # it is not the server's failure. Counted as 499 (nginx's "client closed request"), not as a
        # 500 that the error-ratio alerts would read.
        log.info("client closed the connection", extra={"path": request.path, "method": request.method})
        return web.Response(status=CLIENT_CLOSED_REQUEST, reason="Client Closed Request")
    except Exception:
        log.exception("unhandled error", extra={"path": request.path, "method": request.method})
        return json_error(500, "internal", "internal error; the logs carry the details")


def metrics_middleware(metrics: HttpServerMetrics) -> Any:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        path = route_template(request)
        if path in _UNINSTRUMENTED:
            return await handler(request)
        metrics.in_flight.inc()
        started = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            metrics.in_flight.dec()
            metrics.observe(request.method, path, status, time.perf_counter() - started, current_trace_id())

    return middleware


async def health_view(request: web.Request) -> web.Response:
    checks = request.app[HEALTH_CHECKS_KEY]
    results: dict[str, Any] = {}
    healthy = True
    for name, check in checks.items():
        try:
            results[name] = await check()
        except Exception as exc:  # a failing check is a health answer, not a server error
            healthy = False
            results[name] = {"ok": False, "error": str(exc)[:200]}
    body: dict[str, Any] = {"status": "healthy" if healthy else "unhealthy", "service": request.app[SERVICE_KEY]}
    if results:
        body["checks"] = results
    return web.json_response(body, status=200 if healthy else 503)


def traced_requests(tracer_provider: TracerProvider | None, starts_traces: bool, ratio: float) -> Any:
    """Tracing for sampled requests only (see services.common.telemetry for why).

    The sampling decision is made here, before any span work; only requests that will be traced
    get a server span (services.common.http_tracing). Unsampled requests have no recording span,
    so their outgoing calls (services.common.upstream) skip tracing too.
    """
    tracer = http_tracer(tracer_provider)

    @web.middleware
    async def gate(request: web.Request, handler: Handler) -> web.StreamResponse:
        traceparent = request.headers.get("traceparent")
        if traceparent is not None:
            sampled = traceparent_sampled(traceparent)
        else:
            sampled = starts_traces and random.random() < ratio
        if not sampled:
            return await handler(request)
        if traceparent is not None:
            return await serve_traced(tracer, request, handler)
        token = otel_context.attach(otel_context.set_value(ROOT_SAMPLED_KEY, True))
        try:
            return await serve_traced(tracer, request, handler)
        finally:
            otel_context.detach(token)

    return gate


def traceparent_sampled(header: str) -> bool:
    """The sampled flag of a W3C traceparent (version-traceid-spanid-flags); malformed means no."""
    parts = header.strip().split("-")
    if len(parts) < 4 or len(parts[3]) != 2:
        return False
    try:
        return bool(int(parts[3], 16) & 1)
    except ValueError:
        return False


def create_base_app(
    config: ServiceConfig,
    *,
    tracer_provider: TracerProvider | None,
    registry: CollectorRegistry = REGISTRY,
    client_max_size: int = MAX_BODY_BYTES,
    body_timeout_s: float = REQUEST_BODY_TIMEOUT_S,
) -> web.Application:
    """A service's application: the shared middlewares and /health; /metrics only when the service
    has no ops port (``metrics_port``), which serves it instead: never on a public edge listener."""
    middlewares: list[Any] = []
    metrics = HttpServerMetrics(config.name, registry) if config.instrumentation else None
    if metrics is not None:
        middlewares.append(traced_requests(tracer_provider, config.starts_traces, config.trace_ratio))
        middlewares.append(metrics_middleware(metrics))
    middlewares += [error_middleware, body_deadline(body_timeout_s)]
    app = _application(config.name, middlewares, registry, client_max_size, metrics=config.metrics_port is None)
    if metrics is not None:
        app.on_startup.append(_declare_error_series(metrics))
    return app


def _declare_error_series(metrics: HttpServerMetrics) -> Callable[[web.Application], Awaitable[None]]:
    async def declare(app: web.Application) -> None:
        for route in app.router.routes():
            path = route.resource.canonical if route.resource is not None else UNMATCHED_PATH
            if route.method not in ("HEAD", "*") and path not in _UNINSTRUMENTED:
                metrics.declare(route.method, path)

    return declare


def create_ops_app(service: str, registry: CollectorRegistry = REGISTRY) -> web.Application:
    """The plain /health and /metrics application of a metrics port: no tracing, no request metrics;
    and the admin-guarded debugging endpoints (``services.common.debug_endpoints``)."""
    from services.common.debug_endpoints import add_debug_endpoints

    middlewares = [error_middleware, body_deadline(REQUEST_BODY_TIMEOUT_S)]
    app = _application(service, middlewares, registry, MAX_BODY_BYTES, metrics=True)
    add_debug_endpoints(app)
    return app


def _application(
    service: str, middlewares: list[Any], registry: CollectorRegistry, client_max_size: int, *, metrics: bool
) -> web.Application:
    app = web.Application(middlewares=middlewares, client_max_size=client_max_size)
    app[REGISTRY_KEY] = registry
    app[SERVICE_KEY] = service
    app[HEALTH_CHECKS_KEY] = {}
    app.router.add_get("/health", health_view)
    if metrics:
        # Uncompressed, as /metrics always was: a drill scrapes every second.
        app.router.add_get("/metrics", make_aiohttp_handler(registry, disable_compression=True))
    return app


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object, or a 400 saying what is wrong with it."""
    from services.common.errors import BadRequest

    raw = await request.read()
    try:
        body = json.loads(raw, parse_constant=_reject_constant) if raw else None
    except RecursionError:
        raise BadRequest("body is not valid JSON: nested too deeply") from None
    except ValueError as exc:  # also UnicodeDecodeError, and an integer over Python's digit limit
        raise BadRequest(f"body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise BadRequest("body must be a JSON object")
    return body
