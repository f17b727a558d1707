from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry

from services.common.lifecycle import start_http_site
from services.common.logs import JsonFormatter, Throttle, configure_logging
from services.common.web import create_ops_app


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


def test_throttle_lets_one_event_through_per_interval_and_counts_the_rest() -> None:
    now = [100.0]
    throttle = Throttle(interval_s=10.0, clock=lambda: now[0])
    assert throttle.admit() == 0
    assert [throttle.admit() for _ in range(5)] == [None] * 5
    now[0] += 10.0
    assert throttle.admit() == 5
    assert throttle.admit() is None


MALFORMED_REQUESTS = [
    b"GET / HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: twelve\r\n\r\n",
    b"GET / HTTP/9.9\r\nHost: x\r\n\r\n",
    b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
]
ROUNDS = 10


@pytest.fixture
def json_logs() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """The service's logging (``configure_logging``) for one test, written to a buffer; its lines, parsed."""
    root, server_log = logging.getLogger(), logging.getLogger("aiohttp.server")
    saved = (root.handlers[:], root.level, server_log.filters[:])
    configure_logging("response")
    buffer = io.StringIO()
    handler = root.handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(buffer)

    def lines() -> list[dict[str, Any]]:
        return [json.loads(line) for line in buffer.getvalue().splitlines() if line]

    try:
        yield lines
    finally:
        root.handlers[:], server_log.filters[:] = saved[0], saved[2]
        root.setLevel(saved[1])


async def test_malformed_requests_are_one_warning_without_a_traceback(
    json_logs: Callable[[], list[dict[str, Any]]], tmp_path: Path
) -> None:
    app = create_ops_app("response", CollectorRegistry())
    runner = await start_http_site(app, "127.0.0.1", 0, grace_s=1.0)
    port = runner.addresses[0][1]
    try:
        for request in MALFORMED_REQUESTS * ROUNDS:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(request)
            answer = await asyncio.wait_for(reader.read(), timeout=10)
            writer.close()
            assert answer.split(b"\r\n", 1)[0].endswith(b" 400 Bad Request"), answer[:100]
    finally:
        await runner.cleanup()
    logged = [entry for entry in json_logs() if entry["logger"].startswith("aiohttp")]
    # One line per 10 s interval; the loop above takes well under a second, two allow for a boundary.
    assert 1 <= len(logged) <= 2, logged
    assert all(entry["level"] == "WARNING" and "exception" not in entry for entry in logged), logged
    assert logged[0]["message"].startswith("malformed HTTP request from 127.0.0.1: ")
