"""Reading the local platform's span files and picking the traces a drill report shows."""

from __future__ import annotations

from pathlib import Path

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from scripts.drills.traces import Span, Trace, pick_traces, read_spans
from scripts.drills.waterfall import render_trace
from services.common.telemetry import span_line

S = 1_000_000_000
T0 = 1_700_000_000 * S


def _request(
    tracer_provider: TracerProvider, at_ns: int, duration_ms: int, http_status: int, call_upstream: bool = True
) -> None:
    """A hello request as the services record it: a server span, and a client span to response."""
    tracer = tracer_provider.get_tracer("test")
    server = tracer.start_span("GET /hello", kind=SpanKind.SERVER, start_time=at_ns)
    server.set_attribute("http.status_code", http_status)
    if http_status >= 500:
        server.set_status(Status(StatusCode.ERROR))
    if call_upstream:
        with trace.use_span(server):
            client = tracer.start_span("GET", kind=SpanKind.CLIENT, start_time=at_ns + 1_000_000)
            client.end(end_time=at_ns + 2_000_000)
    server.end(end_time=at_ns + duration_ms * 1_000_000)


def _recorded(requests: list[tuple[int, int, int]]) -> list[ReadableSpan]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "hello"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    for at_s, duration_ms, status in requests:
        _request(provider, T0 + at_s * S, duration_ms, status)
    provider.shutdown()
    return list(exporter.get_finished_spans())


def _write(folder: Path, spans: list[ReadableSpan], tail: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "hello.jsonl").write_text("".join(span_line(span) for span in spans) + tail)
    return folder


def test_spans_written_by_the_services_read_back_inside_the_window(tmp_path: Path) -> None:
    half_written = '{"trace_id": "ab'
    folder = _write(tmp_path / "traces", _recorded([(1, 20, 200), (5, 30, 200), (50, 10, 200)]), tail=half_written)
    spans = list(read_spans(folder, T0 / S, T0 / S + 10))
    assert len(spans) == 4, "two requests of two spans each; the one at +50 s and the half-written line are left out"
    server = next(s for s in spans if s.kind == "SERVER")
    assert server.service == "hello"
    assert server.name == "GET /hello"
    assert server.attributes["http.status_code"] == 200
    assert not server.failed


def test_a_5xx_or_an_error_status_is_a_failure_with_its_reason() -> None:
    def span(**changes: object) -> Span:
        base: dict[str, object] = dict(
            trace_id="t", span_id="s", parent_id=None, service="hello", name="GET /hello", kind="SERVER"
        )
        base.update(start_ns=0, end_ns=1, status="UNSET", attributes={})
        base.update(changes)
        return Span.from_record(base)

    assert span(attributes={"http.status_code": 503}).outcome == "HTTP 503"
    assert span(attributes={"rpc.grpc.status_code": 14}).outcome == "gRPC code 14"
    assert span(status="ERROR").outcome == "error"
    assert span(attributes={"http.status_code": 404}).outcome == ""


def test_failing_traces_first_spread_over_time_then_the_slowest_successes(tmp_path: Path) -> None:
    requests = [(i, 2000, 503) for i in range(10, 18)] + [(i, 10 + i, 200) for i in range(0, 8)]
    folder = _write(tmp_path, _recorded(requests))
    picked = pick_traces(read_spans(folder, T0 / S, T0 / S + 60))

    failing = [t for t in picked if t.reason == "failing"]
    slowest = [t for t in picked if t.reason == "slowest"]
    assert [t.start_ns // S - T0 // S for t in failing] == [10, 14, 17], "first, middle and last failure"
    assert [round(t.duration_ms) for t in slowest] == [17, 16, 15], "the slowest requests that succeeded"
    assert all(t.failed for t in failing)
    assert not any(t.failed for t in slowest)
    assert all(t.root.kind == "SERVER" for t in picked)


def test_the_incident_exemplar_is_added_when_its_spans_are_there(tmp_path: Path) -> None:
    folder = _write(tmp_path, _recorded([(1, 40, 200), (2, 5, 200)]))
    spans = list(read_spans(folder, T0 / S, T0 / S + 10))
    fastest = min(pick_traces(spans, slowest=2), key=lambda t: t.duration_ms)

    picked = pick_traces(spans, slowest=1, also=fastest.trace_id)
    assert [(t.reason, round(t.duration_ms)) for t in picked] == [("slowest", 40), ("exemplar", 5)]
    assert len(pick_traces(spans, slowest=2, also=fastest.trace_id)) == 2, "never shown twice"
    assert len(pick_traces(spans, slowest=1, also="0" * 32)) == 1, "an exemplar without spans here is left out"


def test_a_trace_survives_the_recording_round_trip(tmp_path: Path) -> None:
    folder = _write(tmp_path, _recorded([(1, 40, 503)]))
    (trace,) = pick_traces(read_spans(folder, T0 / S, T0 / S + 10))
    assert Trace.from_json(trace.to_json()) == trace


def test_the_waterfall_nests_children_and_marks_the_failure(tmp_path: Path) -> None:
    folder = _write(tmp_path, _recorded([(1, 40, 503)]))
    (trace,) = pick_traces(read_spans(folder, T0 / S, T0 / S + 10))
    page = render_trace(trace, "http://jaeger.example:16686", None)

    assert f'href="http://jaeger.example:16686/trace/{trace.trace_id}"' in page
    server_row, client_row = page.split('<div class="span-row')[1:]
    assert "padding-left:0px" in server_row
    assert "HTTP 503" in server_row
    assert " error" in server_row.split(">")[0]
    assert "padding-left:14px" in client_row, "the client call is drawn under the request that made it"
    assert "40.0 ms" in server_row
