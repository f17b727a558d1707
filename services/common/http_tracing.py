"""Server and client spans for the HTTP requests the sampling gate chose to trace.

Our own rather than OpenTelemetry's aiohttp instrumentations: those rebuild the URL, read their
environment settings, collect a dozen attributes and feed a meter on every traced request, which
made a traced request in hello cost about 2.3 untraced ones (BENCHMARKS §8, §16). The spans keep
the names and the attributes the drills, the incident view and Jaeger read, spelled as the
official instrumentations spell them by default (``GET /hello``, ``http.status_code``, ...).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from types import TracebackType

from aiohttp import web
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from yarl import URL

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_ERROR = Status(StatusCode.ERROR)


def http_tracer(tracer_provider: trace.TracerProvider | None) -> trace.Tracer:
    """The tracer of HTTP spans; the process-wide provider when none is given."""
    return trace.get_tracer(__name__, tracer_provider=tracer_provider)


def _route(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else ""


async def serve_traced(tracer: trace.Tracer, request: web.Request, handler: Handler) -> web.StreamResponse:
    """Run ``handler`` inside a SERVER span continuing the caller's ``traceparent``, if it sent one."""
    parent = propagate.extract(request.headers) if "traceparent" in request.headers else None
    route = _route(request)
    version = request.version
    attributes = {
        "http.method": request.method,
        "http.target": request.path,
        "http.flavor": f"{version.major}.{version.minor}",
    }
    if route:
        attributes["http.route"] = route
    user_agent = request.headers.get("User-Agent")
    if user_agent:
        attributes["http.user_agent"] = user_agent
    span = tracer.start_span(
        f"{request.method} {route}" if route else request.method,
        context=parent,
        kind=SpanKind.SERVER,
        attributes=attributes,
    )
    token = otel_context.attach(trace.set_span_in_context(span, parent))
    status: int | None = None
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    except Exception as exc:  # the error middleware answers first; this is a framework failure
        span.record_exception(exc)
        span.set_status(_ERROR)
        raise
    finally:
        otel_context.detach(token)
        if status is not None:
            span.set_attribute("http.status_code", status)
            if status >= 500:
                span.set_status(_ERROR)
        span.end()


class OutgoingCall:
    """A CLIENT span around one outgoing request, and the headers that carry it to the callee."""

    __slots__ = ("_span", "headers")

    def __init__(self, tracer: trace.Tracer, method: str, url: URL) -> None:
        self._span = tracer.start_span(
            method, kind=SpanKind.CLIENT, attributes={"http.method": method, "http.url": str(url)}
        )
        self.headers: dict[str, str] | None = {}
        propagate.inject(self.headers, context=trace.set_span_in_context(self._span))

    def answered(self, status: int) -> None:
        self._span.set_attribute("http.status_code", status)
        if status >= 400:
            self._span.set_status(_ERROR)

    async def __aenter__(self) -> OutgoingCall:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if isinstance(exc, Exception):
            self._span.record_exception(exc)
            self._span.set_status(_ERROR)
        self._span.end()


class UntracedCall:
    """What an outgoing request of an untraced request gets: nothing to add, nothing to record."""

    __slots__ = ()
    headers: dict[str, str] | None = None

    def answered(self, status: int) -> None:
        pass

    async def __aenter__(self) -> UntracedCall:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        pass


UNTRACED = UntracedCall()


def outgoing_call(tracer: trace.Tracer | None, method: str, url: URL) -> OutgoingCall | UntracedCall:
    """A traced call only when the request being served is traced (its span is recording)."""
    if tracer is not None and trace.get_current_span().is_recording():
        return OutgoingCall(tracer, method, url)
    return UNTRACED
