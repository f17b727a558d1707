"""JSON logs on stdout, one object per line, carrying the current trace and span ids.

What a client can trigger is logged at WARNING, without a traceback, and at most once per
``Throttle`` interval, so one hostile client cannot fill the logs.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace

CLIENT_ERROR_LOG_INTERVAL_S = 10.0
MAX_CLIENT_DETAIL_CHARS = 200

_RESERVED = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "service": self._service,
            "logger": record.name,
            "message": record.getMessage(),
            "source": f"{record.module}:{record.lineno}",
        }
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            entry["trace_id"] = format(context.trace_id, "032x")
            entry["span_id"] = format(context.span_id, "016x")
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class Throttle:
    """Lets one event through per interval and counts the ones it holds back in between."""

    def __init__(self, interval_s: float = CLIENT_ERROR_LOG_INTERVAL_S, clock: Callable[[], float] = time.monotonic):
        self._interval_s = interval_s
        self._clock = clock
        self._next_at: float | None = None
        self._held_back = 0

    def admit(self) -> int | None:
        """None if this event is held back; otherwise how many were held back since the last one let through."""
        now = self._clock()
        if self._next_at is not None and now < self._next_at:
            self._held_back += 1
            return None
        self._next_at = now + self._interval_s
        held_back, self._held_back = self._held_back, 0
        return held_back


class MalformedRequestFilter(logging.Filter):
    """aiohttp's server logs every request it cannot parse at ERROR, with a traceback
    (``RequestHandler.handle_error``). A malformed request is the client's fault: this turns the
    record into one WARNING line naming the client and the parse error, held back to one per
    interval (the next line says how many were held back). Other records pass unchanged."""

    def __init__(self, throttle: Throttle | None = None) -> None:
        super().__init__()
        self._throttle = throttle or Throttle()

    def filter(self, record: logging.LogRecord) -> bool:
        # Imported here: this module also formats the logs of programs that never load aiohttp
        # (the restarter, the Vault agent), and aiohttp costs them about 14 MB of memory. Records
        # of the "aiohttp.server" logger only exist once aiohttp is loaded, so this is a lookup.
        from aiohttp.http_exceptions import HttpProcessingError

        error = record.exc_info[1] if record.exc_info else None
        if record.levelno < logging.ERROR or not isinstance(error, HttpProcessingError):
            return True
        held_back = self._throttle.admit()
        if held_back is None:
            return False
        remote = record.args[0] if isinstance(record.args, tuple) and record.args else None
        record.levelno, record.levelname = logging.WARNING, logging.getLevelName(logging.WARNING)
        record.msg = "malformed HTTP request from %s: %s"
        record.args = (remote, error.message[:MAX_CLIENT_DETAIL_CHARS])
        record.exc_info, record.exc_text = None, None
        record.__dict__["held_back"] = held_back
        return True


def _filter_malformed_requests() -> None:
    server_log = logging.getLogger("aiohttp.server")
    for existing in [f for f in server_log.filters if isinstance(f, MalformedRequestFilter)]:
        server_log.removeFilter(existing)
    server_log.addFilter(MalformedRequestFilter())


LOG_RECORDS_METRIC = "log_records"
COUNTED_LEVELS = ("debug", "info", "warning", "error", "critical")


class LevelCounter(logging.Handler):
    """Counts every record the root logger emits, by level (``log_records_total{level}``), so a
    storm of error lines is an alert (ErrorLogStorm) without shipping the logs anywhere."""

    def __init__(self, registry: Any = None) -> None:
        super().__init__()
        # Imported here for the same reason as aiohttp above: programs that only format logs do
        # not pay for prometheus_client.
        from prometheus_client import REGISTRY, Counter

        self._counter = Counter(
            LOG_RECORDS_METRIC, "Log records emitted, by level.", ["level"], registry=registry or REGISTRY
        )
        self._by_level = {level: self._counter.labels(level=level) for level in COUNTED_LEVELS}

    def emit(self, record: logging.LogRecord) -> None:
        level = record.levelname.lower()
        child = self._by_level.get(level)
        if child is None:
            child = self._by_level.setdefault(level, self._counter.labels(level=level))
        child.inc()


def count_log_records(registry: Any = None) -> LevelCounter:
    """Add the level counter to the root logger (after ``configure_logging``, which resets its handlers)."""
    counter = LevelCounter(registry)
    logging.getLogger().addHandler(counter)
    return counter


def configure_logging(service: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # aiohttp's per-request access log would double the cost of a request; metrics cover it.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    _filter_malformed_requests()
