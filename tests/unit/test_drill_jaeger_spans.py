"""The traces of a drill window read from Jaeger's query API (a cluster), against a Jaeger-shaped server
on loopback that answers with the recorded tracing-bug spans in Jaeger's JSON."""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from scripts.drills.jaeger_spans import JaegerError, edge_services, jaeger_spans, to_spans
from scripts.drills.recording import collect
from scripts.drills.report import DrillResult
from scripts.drills.traces import Span
from scripts.promql import Prometheus

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "spans_tracing_bug.jsonl"
HIDDEN_ID = "aed9b797063e02a6bdea3d53ae5784e7"


def _recorded() -> list[Span]:
    return [Span.from_record(json.loads(line)) for line in FIXTURE.read_text().splitlines()]


def _as_jaeger(spans: list[Span]) -> dict[str, Any]:
    """The spans as Jaeger's /api/traces shows them (tags, references, microseconds, processes)."""
    traces: dict[str, dict[str, Any]] = {}
    for span in spans:
        trace = traces.setdefault(span.trace_id, {"traceID": span.trace_id, "spans": [], "processes": {}})
        process = f"p-{span.service}"
        trace["processes"][process] = {"serviceName": span.service, "tags": []}
        tags = [
            {"key": k, "type": "int64" if isinstance(v, int) else "string", "value": v}
            for k, v in span.attributes.items()
        ]
        tags.append({"key": "span.kind", "type": "string", "value": span.kind.lower()})
        if span.status != "UNSET":
            tags.append({"key": "otel.status_code", "type": "string", "value": span.status})
        if span.status == "ERROR":
            tags.append({"key": "error", "type": "bool", "value": True})
        references = (
            [{"refType": "CHILD_OF", "traceID": span.trace_id, "spanID": span.parent_id}] if span.parent_id else []
        )
        trace["spans"].append(
            {
                "traceID": span.trace_id,
                "spanID": span.span_id,
                "operationName": span.name,
                "references": references,
                "startTime": span.start_ns // 1000,
                "duration": (span.end_ns - span.start_ns) // 1000,
                "tags": tags,
                "logs": [],
                "processID": process,
            }
        )
    return {"data": list(traces.values()), "total": 0, "limit": 0, "offset": 0, "errors": None}


class FakeJaeger:
    def __init__(self, answer: dict[str, Any]) -> None:
        self.answer = answer
        self.queries: list[dict[str, str]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urllib.parse.urlsplit(self.path)
                if url.path != "/api/traces":
                    self.send_error(404)
                    return
                fake.queries.append(dict(urllib.parse.parse_qsl(url.query)))
                body = json.dumps(fake.answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def jaeger() -> Iterator[FakeJaeger]:
    fake = FakeJaeger(_as_jaeger(_recorded()))
    thread = threading.Thread(target=fake.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        fake.server.shutdown()
        fake.server.server_close()


def test_jaeger_spans_read_back_as_the_span_files_give_them(jaeger: FakeJaeger) -> None:
    spans = jaeger_spans(jaeger.url, 1_000.5, 2_000.25)

    by_id = {(s.trace_id, s.span_id): s for s in spans}
    expected = {(s.trace_id, s.span_id): s for s in _recorded()}
    assert set(by_id) == set(expected), "every span once, though every edge service was asked"
    for key, span in expected.items():
        got = by_id[key]
        assert (got.service, got.name, got.kind, got.parent_id) == (span.service, span.name, span.kind, span.parent_id)
        assert got.status == span.status
        assert got.outcome == span.outcome
        assert abs(got.start_ns - span.start_ns) < 1000
    assert [q["service"] for q in jaeger.queries] == edge_services()
    assert jaeger.queries[0]["start"] == "1000500000"
    assert jaeger.queries[0]["end"] == "2000250000"


def test_the_hidden_failure_is_found_from_jaeger_on_a_cluster(jaeger: FakeJaeger) -> None:
    result = DrillResult(
        experiment="tracing-bug",
        service="response",
        status="completed",
        deviated=False,
        moments={},
        time_to_alert_s=None,
        time_to_incident_s=None,
        time_to_recovery_s=None,
        requests_sent=0,
        requests_failed=0,
        requests_failed_during_outage=0,
        expected_alerts=[],
        symptom_alerts=[],
        unexpected_alerts=[],
        incidents_for_service=1,
        incident=None,
        expected_trace_finding={"service": "response", "operation": "GET /response"},
    )
    recording = collect(result, Prometheus(jaeger.url), (0, 4e9), None, jaeger.url)

    assert result.trace_finding_met
    assert result.trace_findings[0]["example_trace_ids"] == [HIDDEN_ID]
    assert recording.traces[0].trace_id == HIDDEN_ID
    assert recording.traces[0].reason == "hidden"


def test_a_jaeger_that_cannot_be_asked_is_a_clear_error() -> None:
    with pytest.raises(JaegerError, match="asking Jaeger for hello's traces failed"):
        jaeger_spans("http://127.0.0.1:9", 0, 1, services=["hello"], timeout_s=2)


def test_status_comes_from_the_otel_tag_or_the_error_flag() -> None:
    answer = {
        "data": [
            {
                "traceID": "t",
                "processes": {"p": {"serviceName": "rating"}},
                "spans": [
                    {"spanID": "a", "operationName": "x", "startTime": 1, "duration": 2, "processID": "p", "tags": []},
                    {
                        "spanID": "b",
                        "operationName": "y",
                        "startTime": 1,
                        "duration": 2,
                        "processID": "p",
                        "references": [{"refType": "FOLLOWS_FROM", "spanID": "a"}],
                        "tags": [{"key": "error", "type": "bool", "value": True}],
                    },
                ],
            }
        ]
    }
    first, second = to_spans(answer)
    assert (first.status, first.kind, first.trace_id, first.end_ns) == ("UNSET", "INTERNAL", "t", 3000)
    assert (second.status, second.parent_id) == ("ERROR", None), "only CHILD_OF names the parent"
