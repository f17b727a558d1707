from __future__ import annotations

import json
import logging

from opentelemetry.sdk.trace import TracerProvider

from services.common.logs import JsonFormatter


def _format(record: logging.LogRecord) -> dict[str, object]:
    parsed: dict[str, object] = json.loads(JsonFormatter("hello").format(record))
    return parsed


def test_log_lines_are_json_with_extras() -> None:
    record = logging.LogRecord("x", logging.WARNING, __file__, 10, "disk %s", ("full",), None)
    record.__dict__["port"] = 5050
    entry = _format(record)
    assert entry["message"] == "disk full"
    assert entry["level"] == "WARNING"
    assert entry["service"] == "hello"
    assert entry["port"] == 5050
    assert "trace_id" not in entry


def test_log_lines_carry_the_current_trace() -> None:
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("work") as span:
        record = logging.LogRecord("x", logging.INFO, __file__, 1, "inside", (), None)
        entry = _format(record)
    context = span.get_span_context()
    assert entry["trace_id"] == format(context.trace_id, "032x")
    assert entry["span_id"] == format(context.span_id, "016x")
