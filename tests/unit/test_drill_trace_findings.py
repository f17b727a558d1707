"""Finding, in recorded spans, what the edge hid: a failing or dominating span under a root that answered well.

``tests/fixtures/spans_tracing_bug.jsonl`` holds spans the local platform recorded: from the
tracing-bug drill, a request that hello answered 200 after its first call to response failed (500)
and the retry succeeded, a healthy request and the slowest healthy one; from the outage drill, a
request that failed at the edge (503). The deeper trees are recorded here the way the services
record theirs (OpenTelemetry SDK spans written with ``span_line``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from scripts.drills.catalogue import load
from scripts.drills.recording import with_hidden_examples
from scripts.drills.report import DrillResult
from scripts.drills.trace_findings import FindingGroup, analyse, find_hidden, summarise
from scripts.drills.traces import Span, Trace, group_traces, pick_traces, read_spans
from scripts.drills.waterfall import render_findings, render_trace
from services.common.telemetry import span_line

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "spans_tracing_bug.jsonl"
HIDDEN_ID = "aed9b797063e02a6bdea3d53ae5784e7"  # hello 200; response failed once, the retry succeeded
HEALTHY_ID = "6b44814762509fa28791d9bc8f533d52"
SLOWEST_HEALTHY_ID = "8f3e435d8fb2056ef309fd19439dd394"
EDGE_FAILED_ID = "2ece3fce18a1e03f3ae045ce3b90030a"  # hello answered 503 (outage drill)
MS = 1_000_000
T0 = 1_800_000_000 * 1_000_000_000


def _recorded_traces() -> dict[str, Trace]:
    spans = _fixture_spans()
    return {trace_id: Trace(trace_id, "hidden", tuple(members)) for trace_id, members in group_traces(spans).items()}


def _fixture_spans() -> list[Span]:
    return [Span.from_record(json.loads(line)) for line in FIXTURE.read_text().splitlines()]


class Recorder:
    """Spans of several services, exported as the services export them (one JSON line each)."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.providers: dict[str, TracerProvider] = {}

    def tracer(self, service: str) -> trace.Tracer:
        if service not in self.providers:
            provider = TracerProvider(resource=Resource.create({"service.name": service}))
            provider.add_span_processor(SimpleSpanProcessor(self.exporter))
            self.providers[service] = provider
        return self.providers[service].get_tracer("test")

    def span(
        self,
        service: str,
        name: str,
        kind: SpanKind,
        start_ms: int,
        end_ms: int,
        parent: trace.Span | None = None,
        *,
        grpc_code: int | None = None,
        http_status: int | None = None,
        error: bool = False,
    ) -> trace.Span:
        context = trace.set_span_in_context(parent) if parent is not None else None
        span = self.tracer(service).start_span(name, context=context, kind=kind, start_time=T0 + start_ms * MS)
        if grpc_code is not None:
            span.set_attribute("rpc.grpc.status_code", grpc_code)
        if http_status is not None:
            span.set_attribute("http.status_code", http_status)
        if error:
            span.set_status(Status(StatusCode.ERROR))
        span.end(end_time=T0 + end_ms * MS)
        return span

    def write(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        for span in self.exporter.get_finished_spans():
            service = str(span.resource.attributes["service.name"])
            with (folder / f"{service}.jsonl").open("a") as out:
                out.write(span_line(span))
        return folder


def _movie_request(recorder: Recorder, start_ms: int, *, rating_fails: bool, rating_ms: int = 5) -> None:
    """movie's HTTP front → metadata and rating (gRPC) → rating's repository; rating may fail deep down."""
    root = recorder.tracer("movie").start_span(
        "GET /movies/{movie_id}", kind=SpanKind.SERVER, start_time=T0 + start_ms * MS
    )
    root.set_attribute("http.status_code", 200)
    recorder.span("movie", "/movie.MetadataService/GetMetadata", SpanKind.CLIENT, start_ms + 1, start_ms + 4, root)
    client = recorder.tracer("movie").start_span(
        "/movie.RatingService/GetAggregatedRating",
        context=trace.set_span_in_context(root),
        kind=SpanKind.CLIENT,
        start_time=T0 + (start_ms + 1) * MS,
    )
    server = recorder.tracer("rating").start_span(
        "/movie.RatingService/GetAggregatedRating",
        context=trace.set_span_in_context(client),
        kind=SpanKind.SERVER,
        start_time=T0 + (start_ms + 2) * MS,
    )
    recorder.span(
        "rating",
        "SELECT ratings",
        SpanKind.INTERNAL,
        start_ms + 2,
        start_ms + 2 + rating_ms,
        server,
        error=rating_fails,
    )
    if rating_fails:
        server.set_attribute("rpc.grpc.status_code", 13)
        server.set_status(Status(StatusCode.ERROR))
        client.set_attribute("rpc.grpc.status_code", 13)
        client.set_status(Status(StatusCode.ERROR))
    server.end(end_time=T0 + (start_ms + 3 + rating_ms) * MS)
    client.end(end_time=T0 + (start_ms + 4 + rating_ms) * MS)
    root.end(end_time=T0 + (start_ms + 6 + rating_ms) * MS)


def test_a_failed_call_under_an_edge_that_answered_200_is_named_at_the_callee() -> None:
    finding = analyse(_recorded_traces()[HIDDEN_ID])

    assert finding is not None
    assert finding.kind == "error"
    assert (finding.service, finding.operation) == ("response", "GET /response"), "not hello's client span"
    assert finding.outcome == "HTTP 500"
    assert (finding.root, finding.root_outcome) == ("hello GET /hello", "HTTP 200")


@pytest.mark.parametrize(
    "trace_id", [HEALTHY_ID, SLOWEST_HEALTHY_ID, EDGE_FAILED_ID], ids=["healthy", "slowest", "edge-failed"]
)
def test_healthy_traces_and_failures_the_edge_showed_are_not_flagged(trace_id: str) -> None:
    assert analyse(_recorded_traces()[trace_id]) is None


def test_the_recorded_drill_window_names_one_culprit() -> None:
    groups = summarise(find_hidden(_recorded_traces().values()))

    assert [(g.kind, g.service, g.operation, g.traces) for g in groups] == [("error", "response", "GET /response", 1)]
    assert groups[0].example_trace_ids == (HIDDEN_ID,)
    assert groups[0].roots == ("hello GET /hello → HTTP 200",)
    assert groups[0].matches({"service": "response", "operation": "GET /response"})
    assert not groups[0].matches({"service": "hello", "operation": "GET"})
    assert not groups[0].matches({"service": "response", "operation": "GET /response", "kind": "slow"})


def test_an_error_deep_in_the_tree_is_named_where_it_happened(tmp_path: Path) -> None:
    recorder = Recorder()
    _movie_request(recorder, 0, rating_fails=True)
    _movie_request(recorder, 100, rating_fails=False)
    folder = recorder.write(tmp_path / "traces")

    spans = list(read_spans(folder, T0 / 1e9 - 1, T0 / 1e9 + 10))
    groups = summarise(find_hidden(Trace(t, "hidden", tuple(m)) for t, m in group_traces(spans).items()))

    assert len(group_traces(spans)) == 2
    assert [(g.service, g.operation, g.traces) for g in groups] == [("rating", "SELECT ratings", 1)]
    assert groups[0].roots == ("movie GET /movies/{movie_id} → HTTP 200",)


def test_a_span_that_takes_most_of_a_slow_request_is_named(tmp_path: Path) -> None:
    recorder = Recorder()
    _movie_request(recorder, 0, rating_fails=False, rating_ms=900)  # slow rating, nothing failed
    _movie_request(recorder, 2000, rating_fails=False, rating_ms=5)  # quick: under the slow threshold
    spans = list(read_spans(recorder.write(tmp_path / "traces"), T0 / 1e9 - 1, T0 / 1e9 + 10))

    findings = find_hidden(Trace(t, "hidden", tuple(m)) for t, m in group_traces(spans).items())

    assert [(f.kind, f.service, f.operation) for f in findings] == [("slow", "rating", "SELECT ratings")]
    assert findings[0].outcome == "900 ms of 906 ms"


def test_a_slow_request_names_the_span_the_time_went_to_or_nothing() -> None:
    # The slowest healthy hello request of the fixture: 55 ms, 53 ms of it in its call to response, of
    # which response itself took 19 ms: the time went to the call (connection, queue), named as such.
    slowest = analyse(_recorded_traces()[SLOWEST_HEALTHY_ID], slow_ms=50)
    assert slowest is not None
    assert (slowest.kind, slowest.service, slowest.operation) == ("slow", "hello", "GET")
    # hello waited for an instance (outage fixture): the root is long, no child takes the time.
    waited = Trace(
        "w",
        "slowest",
        (
            Span("w", "a", None, "hello", "GET /hello", "SERVER", 0, 1800 * MS, "UNSET", {"http.status_code": 200}),
            Span("w", "b", "a", "hello", "GET", "CLIENT", 1790 * MS, 1791 * MS, "UNSET", {}),
        ),
    )
    assert analyse(waited) is None


def test_the_example_trace_is_shown_first_once_and_its_culprit_row_is_framed() -> None:
    spans = _fixture_spans()
    groups = summarise(find_hidden(_recorded_traces().values()))
    shown = with_hidden_examples(spans, groups, pick_traces(spans))

    assert [t.trace_id for t in shown].count(HIDDEN_ID) == 1
    assert (shown[0].trace_id, shown[0].reason) == (HIDDEN_ID, "hidden")
    html = render_trace(shown[0], None, None)
    assert "the edge answered HTTP 200, response GET /response failed (HTTP 500)" in html
    framed = html.split('span-row error culprit"')
    assert len(framed) == 2, "exactly one row is the culprit"
    assert "<b>response</b> GET /response" in framed[1].split("</div>")[0]


def test_the_findings_section_says_whether_the_expected_culprit_was_named() -> None:
    groups = [g.to_json() for g in summarise(find_hidden(_recorded_traces().values()))]
    traces = [_recorded_traces()[HIDDEN_ID]]

    met = render_findings(groups, {"service": "response", "operation": "GET /response"}, traces)
    unmet = render_findings([], {"service": "response", "operation": "GET /response"}, traces)

    assert "named by the traces" in met
    assert f'href="#trace-{HIDDEN_ID}"' in met
    assert "NOT named by the traces" in unmet
    assert render_findings([], None, traces) == ""


def _result(**changes: object) -> DrillResult:
    base: dict[str, object] = {
        "experiment": "tracing-bug",
        "service": "response",
        "status": "completed",
        "deviated": False,
        "moments": {},
        "time_to_alert_s": 15.0,
        "time_to_incident_s": 16.0,
        "time_to_recovery_s": 12.0,
        "requests_sent": 600,
        "requests_failed": 1,
        "requests_failed_during_outage": 1,
        "expected_alerts": ["HighErrorRatio{service=response}"],
        "symptom_alerts": [],
        "unexpected_alerts": [],
        "incidents_for_service": 1,
        "incident": None,
        "max_failed_requests": 5,
        "expected_trace_finding": {"service": "response", "operation": "GET /response"},
    }
    return DrillResult(**{**base, **changes})  # type: ignore[arg-type]


def test_the_drill_passes_only_when_the_traces_name_the_expected_culprit() -> None:
    named = [g.to_json() for g in summarise(find_hidden(_recorded_traces().values()))]
    elsewhere = [FindingGroup("error", "rating", "x", "gRPC code 13", 2, ("movie GET → HTTP 200",), ("t",)).to_json()]

    assert _result(trace_findings=named).passed
    assert not _result(trace_findings=[]).passed
    assert _result(trace_findings=[]).failed_expectations() == [
        "the traces did not name response GET /response as the hidden culprit (they named: nothing)"
    ]
    (reason,) = _result(trace_findings=elsewhere).failed_expectations()
    assert "they named: rating x failed (gRPC code 13) in 2 traces" in reason
    assert _result(trace_findings=[], expected_trace_finding=None).passed, "drills that expect none are not judged"


def test_the_tracing_bug_drill_expects_response_as_the_culprit_and_no_edge_alert() -> None:
    spec = load("tracing-bug")

    assert spec.expected_trace_finding == {"service": "response", "operation": "GET /response"}
    assert spec.expected_for("response") == ["HighErrorRatio{service=response}"]
    assert not any("hello" in label for label in spec.tolerated_for("response"))
