"""The spans of a drill window from Jaeger, on a platform that has one (a cluster).

Jaeger's query service answers ``GET /api/traces?service=&start=&end=&limit=`` (times in
microseconds) with ``{"data": [{"traceID", "spans": [...], "processes": {...}}]}``: each span has
``spanID``, ``operationName``, ``references`` (``CHILD_OF`` its parent), ``startTime`` and
``duration`` in microseconds, ``tags`` (``[{"key", "type", "value"}]``, where OpenTelemetry's span
kind and status arrive as ``span.kind`` and ``otel.status_code``, and an error also as ``error``)
and the ``processID`` whose ``serviceName`` is the service. They are turned into the same
``Span`` the local span files give, so the analysis does not know where they came from.

Every trace of the window is asked for through the edge services (those that start traces).
"""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from typing import Any

from scripts.drills.traces import Span
from services.common import catalog

US_TO_NS = 1000
DEFAULT_LIMIT = 1000


class JaegerError(Exception):
    """Jaeger could not be asked, or answered something else than traces."""


def edge_services() -> list[str]:
    return [spec.name for spec in catalog.SERVICES if spec.tier is catalog.Tier.EDGE]


def _tags(span: Mapping[str, Any]) -> dict[str, Any]:
    return {str(tag["key"]): tag.get("value") for tag in span.get("tags") or () if "key" in tag}


def _status(tags: Mapping[str, Any]) -> str:
    code = tags.get("otel.status_code")
    if isinstance(code, str) and code.upper() in ("OK", "ERROR"):
        return code.upper()
    return "ERROR" if tags.get("error") in (True, "true") else "UNSET"


def to_spans(answer: Mapping[str, Any]) -> list[Span]:
    """The spans of every trace in an ``/api/traces`` answer."""
    spans = []
    for trace in answer.get("data") or ():
        processes = trace.get("processes") or {}
        for item in trace.get("spans") or ():
            tags = _tags(item)
            parent = next(
                (ref.get("spanID") for ref in item.get("references") or () if ref.get("refType") == "CHILD_OF"), None
            )
            start_us = int(item["startTime"])
            process = processes.get(item.get("processID")) or {}
            spans.append(
                Span(
                    trace_id=str(item.get("traceID") or trace["traceID"]),
                    span_id=str(item["spanID"]),
                    parent_id=str(parent) if parent else None,
                    service=str(process.get("serviceName") or "?"),
                    name=str(item.get("operationName") or "?"),
                    kind=str(tags.pop("span.kind", "internal")).upper(),
                    start_ns=start_us * US_TO_NS,
                    end_ns=(start_us + int(item.get("duration") or 0)) * US_TO_NS,
                    status=_status(tags),
                    attributes={k: v for k, v in tags.items() if k not in ("otel.status_code", "error")},
                )
            )
    return spans


def _ask(jaeger_url: str, service: str, start_s: float, end_s: float, limit: int, timeout_s: float) -> dict[str, Any]:
    query = urllib.parse.urlencode(
        {"service": service, "start": int(start_s * 1e6), "end": int(end_s * 1e6), "limit": limit}
    )
    url = f"{jaeger_url.rstrip('/')}/api/traces?{query}"
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as answer:  # noqa: S310 (the platform's Jaeger)
            body = json.load(answer)
    except (OSError, ValueError) as exc:
        raise JaegerError(f"asking Jaeger for {service}'s traces failed: {exc}") from exc
    if not isinstance(body, dict):
        raise JaegerError(f"Jaeger answered {type(body).__name__}, not an object with traces")
    return body


def jaeger_spans(
    jaeger_url: str,
    start_s: float,
    end_s: float,
    services: Iterable[str] | None = None,
    limit: int = DEFAULT_LIMIT,
    timeout_s: float = 10.0,
) -> list[Span]:
    """Spans of the traces that started in the window at the edge services, each span once."""
    seen: dict[tuple[str, str], Span] = {}
    for service in services if services is not None else edge_services():
        for span in to_spans(_ask(jaeger_url, service, start_s, end_s, limit, timeout_s)):
            seen.setdefault((span.trace_id, span.span_id), span)
    return sorted(seen.values(), key=lambda s: s.start_ns)
