"""movie's HTTP/JSON front is an edge like hello: it starts traces for its share of new requests, and the
calls the gateway makes for a request are children of that request's span."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from aiohttp.test_utils import TestClient, TestServer
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from prometheus_client import CollectorRegistry

from services.common.auth_tokens import Identity
from services.common.ratelimit import Budget, CallerLimits
from services.common.telemetry import sampler_for
from services.movie.controller import MovieController
from services.movie.http import create_http_app
from services.movie.model import MovieDetails, MovieMetadata
from tests.unit.helpers import Clock, service_config


class OneUser:
    async def authenticate(self, token: str) -> Identity:
        return Identity("alice", 2_000_000_000)


class TracedController:
    """Stands in for the gateway's fan-out: one client span per upstream call, as the gRPC client makes."""

    def __init__(self, provider: TracerProvider) -> None:
        self._tracer = provider.get_tracer("test")

    async def get_details(self, movie_id: str, caller: Any, deadline: float) -> MovieDetails:
        for upstream in ("/movie.MetadataService/GetMetadata", "/movie.RatingService/GetAggregatedRating"):
            with self._tracer.start_as_current_span(upstream, kind=SpanKind.CLIENT):
                pass
        return MovieDetails(MovieMetadata(movie_id, "t", "d", "x"), None, 0, True)


async def test_the_movie_http_front_starts_traces_of_its_own(tmp_path: Path) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=sampler_for(True, 1.0))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    config = service_config("movie", tmp_path, instrumentation=True, trace_ratio=1.0)
    assert config.starts_traces, "movie is an edge service (catalog tier)"
    budgets = CallerLimits(Budget(1.0, 100), Budget(1.0, 100), Budget(1.0, 100), clock=Clock(), wall_clock=Clock(1e9))
    app = create_http_app(
        cast(MovieController, TracedController(provider)),
        OneUser(),
        budgets,
        service=config,
        default_deadline_s=1.0,
        tracer_provider=provider,
        registry=CollectorRegistry(),
    )
    async with TestClient(TestServer(app)) as client:
        answer = await client.get("/movies/tt0133093", headers={"Authorization": "Bearer t"})
        assert answer.status == 200

    spans = exporter.get_finished_spans()
    (root,) = [s for s in spans if s.kind is SpanKind.SERVER]
    assert root.parent is None, "a new trace, started by movie itself (no traceparent was sent)"
    assert root.attributes is not None
    assert root.attributes.get("http.status_code") == 200
    children = sorted(s.name for s in spans if s.kind is SpanKind.CLIENT)
    assert children == ["/movie.MetadataService/GetMetadata", "/movie.RatingService/GetAggregatedRating"]
    for child in (s for s in spans if s.kind is SpanKind.CLIENT):
        assert child.parent is not None
        assert root.context is not None
        assert child.parent.span_id == root.context.span_id
        assert child.context is not None
        assert child.context.trace_id == root.context.trace_id
    provider.shutdown()
    assert trace.get_current_span() is trace.INVALID_SPAN
