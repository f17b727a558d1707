"""Head sampling: an edge starts a trace for FIREDRILL_TRACE_RATIO of new requests, once.

The HTTP gate (services.common.web.traced_requests) decides before any span work; the sampler must
honour that decision instead of applying the ratio again.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from opentelemetry import context as otel_context
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from services.common.telemetry import ROOT_SAMPLED_KEY, EdgeRootSampler, sampler_for
from services.common.web import traced_requests

RATIO = 0.1
REQUESTS = 2000
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"


def binomial_bounds(n: int, p: float, sigmas: float = 6.0) -> tuple[float, float]:
    """Counts a correct sampler falls outside of with probability about 1e-9."""
    spread = sigmas * math.sqrt(n * p * (1 - p))
    return n * p - spread, n * p + spread


@pytest.fixture
def spans() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=sampler_for(True, RATIO))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


async def ok(request: web.Request) -> web.StreamResponse:
    return web.Response(text="ok")


async def send(gate: object, headers: dict[str, str] | None = None) -> None:
    request = make_mocked_request("GET", "/hello", headers=headers or {})
    response = await gate(request, ok)  # type: ignore[operator]
    assert response.status == 200


async def test_edge_traces_the_configured_share_of_new_requests(
    spans: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = spans
    gate = traced_requests(provider, True, RATIO)
    for _ in range(REQUESTS):
        await send(gate)
    traced = exporter.get_finished_spans()
    low, high = binomial_bounds(REQUESTS, RATIO)
    assert low <= len(traced) <= high, f"{len(traced)} of {REQUESTS} requests traced at ratio {RATIO}"
    assert all(span.kind is SpanKind.SERVER and span.parent is None for span in traced)


async def test_sampled_traceparent_is_always_continued(spans: tuple[TracerProvider, InMemorySpanExporter]) -> None:
    provider, exporter = spans
    gate = traced_requests(provider, True, RATIO)
    for _ in range(50):
        await send(gate, {"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"})
    traced = exporter.get_finished_spans()
    assert len(traced) == 50
    for span in traced:
        assert span.context is not None
        assert format(span.context.trace_id, "032x") == TRACE_ID
        assert span.parent is not None
        assert format(span.parent.span_id, "016x") == PARENT_ID


async def test_unsampled_traceparent_is_never_traced(spans: tuple[TracerProvider, InMemorySpanExporter]) -> None:
    provider, exporter = spans
    gate = traced_requests(provider, True, 1.0)
    for _ in range(50):
        await send(gate, {"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-00"})
    assert exporter.get_finished_spans() == ()


def test_root_sampler_applies_the_ratio_once_without_the_gate() -> None:
    """gRPC edges have no gate: the sampler's own trace-id ratio is the only decision."""
    sampler = EdgeRootSampler(RATIO)
    ids = random.Random(20261202)
    decisions = [sampler.should_sample(None, ids.getrandbits(128), "root").decision for _ in range(REQUESTS)]
    sampled = sum(decision.is_sampled() for decision in decisions)
    low, high = binomial_bounds(REQUESTS, RATIO)
    assert low <= sampled <= high


def test_root_sampler_follows_the_gate_even_with_a_fresh_parent_context() -> None:
    """A parent extracted from headers is a new Context(): the gate's flag is not in it."""
    sampler = EdgeRootSampler(0.0)
    token = otel_context.attach(otel_context.set_value(ROOT_SAMPLED_KEY, True))
    try:
        assert sampler.should_sample(otel_context.Context(), 1, "root").decision.is_sampled()
    finally:
        otel_context.detach(token)
    assert not sampler.should_sample(otel_context.Context(), 1, "root").decision.is_sampled()
