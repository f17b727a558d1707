"""The traces of a drill window: the spans the local platform records, grouped and picked.

Each service of the local platform appends its sampled spans to ``<state>/traces/<service>.jsonl``
(one JSON object a line, see ``services.common.telemetry.span_line``). The report shows the
failing traces of the window and the slowest of those that succeeded, because those are the ones
that explain what users saw. On a cluster spans go to Jaeger instead; the report then links trace ids
(the incident's exemplar) to Jaeger's trace view.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

NS_PER_S = 1_000_000_000


@dataclass(frozen=True, slots=True)
class Span:
    trace_id: str
    span_id: str
    parent_id: str | None
    service: str
    name: str
    kind: str
    start_ns: int
    end_ns: int
    status: str  # OpenTelemetry status code: UNSET, OK, ERROR
    attributes: dict[str, Any] = field(default_factory=dict)

    @property
    def duration_ms(self) -> float:
        return (self.end_ns - self.start_ns) / 1e6

    @property
    def outcome(self) -> str:
        """What went wrong, in the words a person would look for ('' when nothing did)."""
        http_status = self.attributes.get("http.status_code")
        grpc_code = self.attributes.get("rpc.grpc.status_code")
        if isinstance(http_status, int) and http_status >= 500:
            return f"HTTP {http_status}"
        if isinstance(grpc_code, int) and grpc_code != 0:
            return f"gRPC code {grpc_code}"
        if self.status == "ERROR":
            return str(self.attributes.get("error.type") or self.attributes.get("exception.type") or "error")
        return ""

    @property
    def failed(self) -> bool:
        return bool(self.outcome)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Span:
        return cls(
            trace_id=str(record["trace_id"]),
            span_id=str(record["span_id"]),
            parent_id=record.get("parent_id"),
            service=str(record.get("service") or "?"),
            name=str(record.get("name") or "?"),
            kind=str(record.get("kind") or "INTERNAL"),
            start_ns=int(record["start_ns"]),
            end_ns=int(record["end_ns"]),
            status=str(record.get("status") or "UNSET"),
            attributes=dict(record.get("attributes") or {}),
        )


@dataclass(frozen=True, slots=True)
class Trace:
    trace_id: str
    reason: str  # why the report shows it: "failing" or "slowest"
    spans: tuple[Span, ...]  # by start time

    @property
    def root(self) -> Span:
        """The first span whose parent is not in the trace (a caller outside it, or none)."""
        ids = {span.span_id for span in self.spans}
        return next((s for s in self.spans if s.parent_id not in ids), self.spans[0])

    @property
    def start_ns(self) -> int:
        return min(span.start_ns for span in self.spans)

    @property
    def duration_ms(self) -> float:
        return (max(span.end_ns for span in self.spans) - self.start_ns) / 1e6

    @property
    def failed(self) -> bool:
        return any(span.failed for span in self.spans)

    def to_json(self) -> dict[str, Any]:
        return {"trace_id": self.trace_id, "reason": self.reason, "spans": [asdict(span) for span in self.spans]}

    @classmethod
    def from_json(cls, record: dict[str, Any]) -> Trace:
        spans = tuple(Span.from_record(item) for item in record["spans"])
        return cls(str(record["trace_id"]), str(record["reason"]), spans)


def read_spans(directory: Path, start_s: float, end_s: float) -> Iterator[Span]:
    """Spans that started inside the window, from every ``*.jsonl`` file of the directory.

    A line still being written (or otherwise unreadable) is skipped: the report must not fail
    because a service was mid-write.
    """
    low, high = int(start_s * NS_PER_S), int(end_s * NS_PER_S)
    for path in sorted(directory.glob("*.jsonl")):
        with path.open(encoding="utf-8", errors="replace") as lines:
            for line in lines:
                try:
                    span = Span.from_record(json.loads(line))
                except (ValueError, KeyError, TypeError):
                    continue
                if low <= span.start_ns <= high:
                    yield span


def group_traces(spans: Iterable[Span]) -> dict[str, list[Span]]:
    grouped: dict[str, list[Span]] = defaultdict(list)
    for span in spans:
        grouped[span.trace_id].append(span)
    for members in grouped.values():
        members.sort(key=lambda s: (s.start_ns, s.end_ns))
    return dict(grouped)


def _spread(items: list[Trace], count: int) -> list[Trace]:
    """``count`` items evenly spread over the list (first, …, last), so one burst does not fill it."""
    if len(items) <= count:
        return items
    if count == 1:
        return [items[0]]
    return [items[round(i * (len(items) - 1) / (count - 1))] for i in range(count)]


def pick_traces(spans: Iterable[Span], failing: int = 3, slowest: int = 3, also: str | None = None) -> list[Trace]:
    """Failing traces spread over the window (in time order), then the slowest that did not fail.

    ``also`` names one more trace to show when its spans are there (the incident's exemplar).
    """
    grouped = group_traces(spans)
    failed, succeeded = [], []
    for trace_id, members in grouped.items():
        if any(span.failed for span in members):
            failed.append(Trace(trace_id, "failing", tuple(members)))
        else:
            succeeded.append(Trace(trace_id, "slowest", tuple(members)))
    failed.sort(key=lambda t: t.start_ns)
    succeeded.sort(key=lambda t: t.duration_ms, reverse=True)
    chosen = _spread(failed, failing) + succeeded[:slowest]
    if also in grouped and all(trace.trace_id != also for trace in chosen):
        chosen.append(Trace(also, "exemplar", tuple(grouped[also])))
    return chosen


def jaeger_trace_url(jaeger: str | None, trace_id: str) -> str | None:
    return f"{jaeger.rstrip('/')}/trace/{trace_id}" if jaeger else None
