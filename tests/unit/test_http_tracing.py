"""Our HTTP spans: a traced request's server span continues the caller's trace, carries the names
and attributes the drills read, and its outgoing call is a child span whose id reaches the callee."""

from __future__ import annotations

from collections.abc import Iterator

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from opentelemetry import propagate
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from yarl import URL

from services.common.http_tracing import UNTRACED, http_tracer, outgoing_call
from services.common.telemetry import sampler_for
from services.common.web import traced_requests

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
SAMPLED = {"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"}


@pytest.fixture
def spans() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=sampler_for(True, 0.0))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


def _traced_app(provider: TracerProvider, callee: str | None = None) -> web.Application:
    async def item(request: web.Request) -> web.StreamResponse:
        if request.match_info["name"] == "broken":
            return web.json_response({"error": "x"}, status=503)
        if request.match_info["name"] == "missing":
            raise web.HTTPNotFound()
        if callee is not None:
            url = URL(callee)
            async with (
                outgoing_call(http_tracer(provider), "GET", url) as call,
                aiohttp.ClientSession() as session,
                session.get(url, headers=call.headers) as answer,
            ):
                call.answered(answer.status)
                return web.json_response(await answer.json())
        return web.json_response({"traceparent": request.headers.get("traceparent")})

    app = web.Application(middlewares=[traced_requests(provider, True, 0.0)])
    app.router.add_get("/items/{name}", item)
    return app


def _one(spans: tuple[ReadableSpan, ...], kind: SpanKind) -> ReadableSpan:
    (found,) = [span for span in spans if span.kind is kind]
    return found


async def test_a_sampled_request_gets_a_server_span_in_the_callers_trace(
    spans: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = spans
    async with (
        TestServer(_traced_app(provider)) as server,
        aiohttp.ClientSession() as session,
        session.get(server.make_url("/items/a?secret=1"), headers=SAMPLED) as answer,
    ):
        assert answer.status == 200
    span = _one(exporter.get_finished_spans(), SpanKind.SERVER)
    assert span.name == "GET /items/{name}"
    assert span.context is not None
    assert format(span.context.trace_id, "032x") == TRACE_ID
    assert span.parent is not None
    assert format(span.parent.span_id, "016x") == PARENT_ID
    assert dict(span.attributes or {}) | {"http.user_agent": "-"} == {
        "http.method": "GET",
        "http.route": "/items/{name}",
        "http.target": "/items/a",
        "http.flavor": "1.1",
        "http.user_agent": "-",
        "http.status_code": 200,
    }, "the query string (which may carry anything) is left out"
    assert span.status.status_code is StatusCode.UNSET


@pytest.mark.parametrize(("name", "status", "error"), [("broken", 503, True), ("missing", 404, False)])
async def test_server_span_status_follows_the_answer(
    spans: tuple[TracerProvider, InMemorySpanExporter], name: str, status: int, error: bool
) -> None:
    provider, exporter = spans
    async with (
        TestServer(_traced_app(provider)) as server,
        aiohttp.ClientSession() as session,
        session.get(server.make_url(f"/items/{name}"), headers=SAMPLED) as answer,
    ):
        assert answer.status == status
    span = _one(exporter.get_finished_spans(), SpanKind.SERVER)
    assert (span.attributes or {})["http.status_code"] == status
    assert (span.status.status_code is StatusCode.ERROR) is error


async def test_an_outgoing_call_is_a_child_span_and_its_id_reaches_the_callee(
    spans: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = spans
    async with TestServer(_traced_app(provider)) as callee:
        caller_app = _traced_app(provider, str(callee.make_url("/items/b")))
        async with (
            TestServer(caller_app) as caller,
            aiohttp.ClientSession() as session,
            session.get(caller.make_url("/items/a"), headers=SAMPLED) as answer,
        ):
            seen_by_callee = (await answer.json())["traceparent"]
    finished = exporter.get_finished_spans()
    client = _one(finished, SpanKind.CLIENT)
    caller_server, callee_server = sorted(
        (span for span in finished if span.kind is SpanKind.SERVER), key=lambda span: span.start_time or 0
    )
    assert client.name == "GET"
    assert (client.attributes or {})["http.status_code"] == 200
    assert client.parent is not None
    assert caller_server.context is not None
    assert client.parent.span_id == caller_server.context.span_id
    assert client.context is not None
    assert seen_by_callee == f"00-{TRACE_ID}-{client.context.span_id:016x}-01"
    assert callee_server.parent is not None
    assert callee_server.parent.span_id == client.context.span_id


async def test_an_untraced_request_makes_untraced_calls(spans: tuple[TracerProvider, InMemorySpanExporter]) -> None:
    provider, exporter = spans
    url = URL("http://127.0.0.1:1/")
    assert outgoing_call(http_tracer(provider), "GET", url) is UNTRACED, "no span is recording here"
    assert outgoing_call(None, "GET", url) is UNTRACED
    assert UNTRACED.headers is None
    assert exporter.get_finished_spans() == ()


async def test_a_failed_outgoing_call_ends_its_span_as_an_error(
    spans: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = spans
    tracer = http_tracer(provider)
    with (
        tracer.start_as_current_span("request", context=propagate.extract(SAMPLED), kind=SpanKind.SERVER),
        pytest.raises(aiohttp.ClientConnectionError),
    ):
        async with (
            outgoing_call(tracer, "GET", URL("http://127.0.0.1:1/")) as call,
            aiohttp.ClientSession() as session,
            session.get("http://127.0.0.1:1/", headers=call.headers),
        ):
            pass
    client = _one(exporter.get_finished_spans(), SpanKind.CLIENT)
    assert client.status.status_code is StatusCode.ERROR
    assert [event.name for event in client.events] == ["exception"]
