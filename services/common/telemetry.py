"""OpenTelemetry tracing: one TracerProvider per process, W3C propagation, opt-in exporters.

Spans are exported over OTLP only when OTEL_EXPORTER_OTLP_ENDPOINT is set, and to a JSON-lines
file when FIREDRILL_TRACE_FILE is set (the local platform uses it so traces can be inspected
and tested without Jaeger).

Sampling is decided once, at the head: edge services (catalog tier ``edge``) start a trace for
FIREDRILL_TRACE_RATIO of new requests (default 10 %); internal services only continue traces
their caller sampled. A caller that sends a sampled ``traceparent`` is always traced end to end.
The HTTP sampling gate (services.common.web) makes the decision before the instrumentation runs,
so that unsampled requests do no span work at all (services.common.http_tracing makes the spans of
the sampled ones).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import Link, SpanKind, TraceState
from opentelemetry.util.types import Attributes

DEFAULT_SAMPLE_RATIO = 0.1
# Set by the HTTP sampling gate when it chose to start a trace for a request.
ROOT_SAMPLED_KEY = otel_context.create_key("firedrill-root-sampled")

_provider: TracerProvider | None = None
_trace_files: list[IO[str]] = []


class EdgeRootSampler(Sampler):
    """Samples a new trace when the gate already chose to, else by trace-id ratio (gRPC edges).

    The gate's choice is read from the current context, not from ``parent_context``: a caller may
    pass the incoming headers extracted into a fresh ``Context()`` as the parent, where a flag set
    by the gate never appears, and the ratio would then be applied a second time (10 % of 10 %).
    """

    def __init__(self, ratio: float) -> None:
        self._ratio = TraceIdRatioBased(ratio)

    def should_sample(
        self,
        parent_context: otel_context.Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        if otel_context.get_value(ROOT_SAMPLED_KEY):
            return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes)
        return self._ratio.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)

    def get_description(self) -> str:
        return f"EdgeRootSampler({self._ratio.get_description()})"


def sampler_for(starts_traces: bool, ratio: float) -> Sampler:
    return ParentBased(root=EdgeRootSampler(ratio) if starts_traces else ALWAYS_OFF)


def span_line(span: ReadableSpan) -> str:
    """One compact JSON line per span: what a person or a test needs to rebuild the trace.

    ``ReadableSpan.to_json`` is several times slower, and the exporter thread holds the GIL
    while it runs, which showed up as request latency spikes under load.
    """
    context = span.context
    parent = span.parent
    record = {
        "service": span.resource.attributes.get("service.name"),
        "name": span.name,
        "kind": span.kind.name,
        "trace_id": format(context.trace_id, "032x") if context else None,
        "span_id": format(context.span_id, "016x") if context else None,
        "parent_id": format(parent.span_id, "016x") if parent else None,
        "start_ns": span.start_time,
        "end_ns": span.end_time,
        "status": span.status.status_code.name,
        "attributes": dict(span.attributes or {}),
    }
    return json.dumps(record, default=str, separators=(",", ":")) + "\n"


def setup_tracing(
    service: str,
    otlp_endpoint: str | None,
    trace_file: Path | None,
    *,
    starts_traces: bool,
    ratio: float = DEFAULT_SAMPLE_RATIO,
) -> TracerProvider:
    """The process-wide TracerProvider, created on first call."""
    global _provider
    if _provider is not None:
        return _provider
    provider = TracerProvider(
        resource=Resource.create({"service.name": service, "service.namespace": "firedrill"}),
        sampler=sampler_for(starts_traces, ratio),
    )
    if otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=otlp_endpoint)))
    if trace_file is not None:
        trace_file.parent.mkdir(parents=True, exist_ok=True)
        out = trace_file.open("a", encoding="utf-8")
        _trace_files.append(out)
        provider.add_span_processor(
            BatchSpanProcessor(ConsoleSpanExporter(out=out, formatter=span_line), schedule_delay_millis=200)
        )
    trace.set_tracer_provider(provider)
    _provider = provider
    return provider


def shutdown_tracing() -> None:
    global _provider
    if _provider is not None:
        _provider.shutdown()
        _provider = None
    while _trace_files:
        _trace_files.pop().close()


def current_trace_id() -> str | None:
    """The current trace id when the span is sampled (only sampled traces are worth linking to)."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid and context.trace_flags.sampled:
        return format(context.trace_id, "032x")
    return None
