"""OpenTelemetry tracing: one TracerProvider per process, W3C propagation, opt-in exporters.

Spans are exported over OTLP only when OTEL_EXPORTER_OTLP_ENDPOINT is set, and to a JSON-lines
file when FIREDRILL_TRACE_FILE is set (the local platform uses it so traces can be inspected
and tested without Jaeger). The sampler follows OTEL_TRACES_SAMPLER; Firedrill's default is
parent-based with a 10 % ratio for new traces, so a caller that sends a sampled ``traceparent``
is always traced end to end.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, Sampler, TraceIdRatioBased

DEFAULT_SAMPLE_RATIO = 0.1

_provider: TracerProvider | None = None
_trace_files: list[IO[str]] = []


def _default_sampler() -> Sampler | None:
    if os.environ.get("OTEL_TRACES_SAMPLER"):
        return None  # the SDK reads OTEL_TRACES_SAMPLER / _ARG itself
    return ParentBased(TraceIdRatioBased(DEFAULT_SAMPLE_RATIO))


def _one_line(span: ReadableSpan) -> str:
    return str(span.to_json(indent=None)) + "\n"


def setup_tracing(service: str, otlp_endpoint: str | None, trace_file: Path | None) -> TracerProvider:
    """The process-wide TracerProvider, created on first call."""
    global _provider
    if _provider is not None:
        return _provider
    provider = TracerProvider(
        resource=Resource.create({"service.name": service, "service.namespace": "firedrill"}),
        sampler=_default_sampler(),
    )
    if otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=otlp_endpoint)))
    if trace_file is not None:
        trace_file.parent.mkdir(parents=True, exist_ok=True)
        out = trace_file.open("a", encoding="utf-8")
        _trace_files.append(out)
        provider.add_span_processor(
            BatchSpanProcessor(ConsoleSpanExporter(out=out, formatter=_one_line), schedule_delay_millis=500)
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
