"""Where an incident's links point: Prometheus graphs, traces, and only http(s) targets.

Alert fields come from whoever can post to Alertmanager, so a URL is linked only when it is
http(s); anything else (``javascript:``, ``data:``) is shown as text.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qs, quote, urlencode, urlsplit

from scripts.drills.traces import jaeger_trace_url
from services.incidents.models import NS_PER_S, parse_time

# Debian's Prometheus ships only the classic UI (``/graph`` redirects there, ``/alerts`` is a 404);
# the cluster's upstream Prometheus serves ``/graph``.
CLASSIC_GRAPH = "/classic/graph"
GRAPH = "/graph"
# The graph shows the incident with this much before its start and after its end.
MARGIN_S = 300


@dataclass(frozen=True, slots=True)
class LinkTargets:
    """Where the view sends a person: one set for the local platform, another for a cluster."""

    prometheus: str | None  # base URL; None: link the alert's generatorURL as it came
    graph_path: str = CLASSIC_GRAPH
    jaeger: str | None = None  # base URL; None: traces are shown by the view from the span files


def safe_url(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    parts = urlsplit(value.strip())
    return value.strip() if parts.scheme in ("http", "https") and parts.netloc else None


def expr_of(generator_url: object) -> str | None:
    """The ``g0.expr`` a Prometheus generatorURL carries, if any."""
    if not isinstance(generator_url, str):
        return None
    found = parse_qs(urlsplit(generator_url).query).get("g0.expr")
    return found[0] if found else None


def _window(started_at: object, resolved_at: object, now_s: float) -> tuple[str, str] | None:
    """``g0.range_input`` and ``g0.end_input`` (UTC, as both Prometheus UIs read them) around the incident."""
    try:
        start_ns = parse_time(started_at) if isinstance(started_at, str) else None
        end_ns = parse_time(resolved_at) if isinstance(resolved_at, str) else None
    except ValueError:
        return None
    if start_ns is None:
        return None
    start_s = start_ns / NS_PER_S - MARGIN_S
    end_s = (end_ns / NS_PER_S if end_ns is not None else now_s) + MARGIN_S
    span_s = max(int(end_s - start_s), 60)
    end = datetime.fromtimestamp(end_s, UTC)
    return f"{span_s}s", end.strftime("%Y-%m-%d %H:%M:%S")


def graph_url(
    targets: LinkTargets,
    generator_url: object,
    expr: object,
    started_at: object = None,
    resolved_at: object = None,
    now_s: float | None = None,
) -> str | None:
    """A Prometheus graph of the alert's expression over the incident's time, where this Prometheus serves it."""
    query = expr_of(generator_url) or (expr if isinstance(expr, str) and expr else None)
    if targets.prometheus is None or query is None:
        return safe_url(generator_url)
    params = {"g0.expr": query, "g0.tab": "0"}
    window = _window(started_at, resolved_at, now_s if now_s is not None else datetime.now(UTC).timestamp())
    if window is not None:
        params["g0.range_input"], params["g0.end_input"] = window
    return f"{targets.prometheus.rstrip('/')}{targets.graph_path}?{urlencode(params, quote_via=quote)}"


def trace_url(targets: LinkTargets, trace_id: str) -> str:
    """Jaeger's trace page on a cluster; the view's own waterfall of the local span files otherwise."""
    return jaeger_trace_url(targets.jaeger, trace_id) or f"/traces/{trace_id}"
