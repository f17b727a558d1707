"""A trace as a span waterfall: one row per span, indented under its parent, a bar for its time."""

from __future__ import annotations

from datetime import datetime, tzinfo
from html import escape

from scripts.drills.traces import Span, Trace, jaeger_trace_url

REASONS = {"failing": "failed", "slowest": "slowest", "exemplar": "incident's exemplar"}


def _depths(trace: Trace) -> list[tuple[Span, int]]:
    """Spans in tree order (each parent before its children, siblings by start) with their depth."""
    children: dict[str | None, list[Span]] = {}
    ids = {span.span_id for span in trace.spans}
    for span in trace.spans:
        parent = span.parent_id if span.parent_id in ids else None
        children.setdefault(parent, []).append(span)
    ordered: list[tuple[Span, int]] = []
    stack = [(span, 0) for span in reversed(children.get(None, []))]
    while stack:
        span, depth = stack.pop()
        ordered.append((span, depth))
        stack.extend((child, depth + 1) for child in reversed(children.get(span.span_id, [])))
    return ordered


def render_trace(trace: Trace, jaeger_url: str | None, zone: tzinfo | None) -> str:
    start = trace.start_ns
    total = max(trace.duration_ms, 1e-3)
    root = trace.root
    when = datetime.fromtimestamp(start / 1e9, zone).strftime("%H:%M:%S.%f")[:-3]
    url = jaeger_trace_url(jaeger_url, trace.trace_id)
    trace_ref = f'<a href="{escape(url, quote=True)}">{trace.trace_id}</a>' if url else f"<code>{trace.trace_id}</code>"
    rows = []
    for span, depth in _depths(trace):
        left = (span.start_ns - start) / 1e6 / total * 100
        width = max(span.duration_ms / total * 100, 0.4)
        outcome = span.outcome
        state = "error" if outcome else "ok"
        rows.append(
            f'<div class="span-row {state}">'
            f'<div class="span-name" style="padding-left:{depth * 14}px"><b>{escape(span.service)}</b> '
            f"{escape(span.name)} <small>{escape(span.kind.lower())}</small></div>"
            f'<div class="span-track"><div class="span-bar" style="left:{left:.2f}%;width:{width:.2f}%"></div></div>'
            f'<div class="span-duration">{span.duration_ms:.1f} ms</div>'
            f'<div class="span-status">{escape(outcome or "ok")}</div></div>'
        )
    verdict = "failed" if trace.failed else "ok"
    return (
        f'<article class="trace" id="trace-{trace.trace_id}">'
        f'<h3><span class="badge reason-{escape(trace.reason)}">{REASONS.get(trace.reason, trace.reason)}</span> '
        f"{escape(root.service)} {escape(root.name)} — {trace.duration_ms:.1f} ms, {verdict}, at {when}</h3>"
        f'<p class="trace-id">trace {trace_ref}</p>'
        '<div class="span-head"><div>service and operation</div><div>time</div><div>duration</div>'
        f"<div>status</div></div>{''.join(rows)}</article>"
    )


def render_traces(traces: list[Trace], jaeger_url: str | None, zone: tzinfo | None, notes: list[str]) -> str:
    intro = (
        "<p>Failing traces of the drill window (spread over it), the slowest of those that succeeded, "
        "and the incident's exemplar trace, from the spans the services recorded. Each row is one span, "
        "indented under its caller; the bar shows when it ran within the trace.</p>"
    )
    body = "".join(render_trace(trace, jaeger_url, zone) for trace in traces)
    if not traces:
        body = '<p class="missing">No trace to show.</p>'
    extra = "".join(f'<p class="note">{escape(note)}</p>' for note in notes)
    return f'<section class="traces"><h2>Traces</h2>{intro}{extra}{body}</section>'
