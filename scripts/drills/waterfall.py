"""A trace as a span waterfall: one row per span, indented under its parent, a bar for its time."""

from __future__ import annotations

from datetime import datetime, tzinfo
from html import escape

from scripts.drills.trace_findings import Finding, FindingGroup, analyse
from scripts.drills.traces import Span, Trace, jaeger_trace_url

REASONS = {
    "failing": "failed",
    "slowest": "slowest",
    "exemplar": "incident's exemplar",
    "hidden": "found with tracing",
}


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


def _badge(trace: Trace, finding: Finding | None) -> str:
    if trace.reason == "failing" and finding is not None:
        return "a call failed"  # the edge answered well: only the trace shows it
    return REASONS.get(trace.reason, trace.reason)


def render_trace(trace: Trace, jaeger_url: str | None, zone: tzinfo | None) -> str:
    start = trace.start_ns
    total = max(trace.duration_ms, 1e-3)
    root = trace.root
    when = datetime.fromtimestamp(start / 1e9, zone).strftime("%H:%M:%S.%f")[:-3]
    url = jaeger_trace_url(jaeger_url, trace.trace_id)
    finding = analyse(trace)  # None unless the edge answered well with a failing or dominating span inside
    culprit_id = finding.span_id if finding else None
    trace_ref = f'<a href="{escape(url, quote=True)}">{trace.trace_id}</a>' if url else f"<code>{trace.trace_id}</code>"
    rows = []
    for span, depth in _depths(trace):
        left = (span.start_ns - start) / 1e6 / total * 100
        width = max(span.duration_ms / total * 100, 0.4)
        outcome = span.outcome
        state = ("error" if outcome else "ok") + (" culprit" if span.span_id == culprit_id else "")
        rows.append(
            f'<div class="span-row {state}">'
            f'<div class="span-name" style="padding-left:{depth * 14}px"><b>{escape(span.service)}</b> '
            f"{escape(span.name)} <small>{escape(span.kind.lower())}</small></div>"
            f'<div class="span-track"><div class="span-bar" style="left:{left:.2f}%;width:{width:.2f}%"></div></div>'
            f'<div class="span-duration">{span.duration_ms:.1f} ms</div>'
            f'<div class="span-status">{escape(outcome or "ok")}</div></div>'
        )
    verdict = "failed" if trace.failed else "ok"
    if finding is not None:
        verdict = f"the edge answered {finding.root_outcome}, {finding.service} {finding.operation}" + (
            f" failed ({finding.outcome})" if finding.kind == "error" else f" took {finding.outcome}"
        )
    return (
        f'<article class="trace" id="trace-{trace.trace_id}">'
        f'<h3><span class="badge reason-{escape(trace.reason)}">{escape(_badge(trace, finding))}</span> '
        f"{escape(root.service)} {escape(root.name)} — {trace.duration_ms:.1f} ms, {verdict}, at {when}</h3>"
        f'<p class="trace-id">trace {trace_ref}</p>'
        '<div class="span-head"><div>service and operation</div><div>time</div><div>duration</div>'
        f"<div>status</div></div>{''.join(rows)}</article>"
    )


def render_findings(groups: list[dict[str, object]], expected: dict[str, str] | None, traces: list[Trace]) -> str:
    """What only the traces show: the culprits of requests the edge answered well, and the expectation."""
    if not groups and expected is None:
        return ""
    shown = {trace.trace_id for trace in traces}
    items = []
    for record in groups:
        group = FindingGroup.from_json(record)
        match = expected is not None and group.matches(expected)
        examples = ", ".join(
            f'<a href="#trace-{escape(t)}">{escape(t[:12])}…</a>' if t in shown else f"<code>{escape(t)}</code>"
            for t in group.example_trace_ids
        )
        items.append(
            f'<li class="finding{" expected" if match else ""}"><b>{escape(group.service)}</b> '
            f"{escape(group.operation)}: {escape(group.consequence())}"
            f"{' — the culprit this drill hid' if match else ''}. Traces: {examples}</li>"
        )
    body = "<ul>" + "".join(items) + "</ul>" if items else '<p class="missing">Nothing hidden was found.</p>'
    intro = (
        "<p>Requests whose edge answered well but whose trace holds a failing span (the deepest one is named, the "
        "furthest downstream) or one span that took most of the time. The edge's metrics cannot show these.</p>"
    )
    verdict = ""
    if expected is not None:
        met = any(FindingGroup.from_json(g).matches(expected) for g in groups)
        said = "named by the traces" if met else "NOT named by the traces"
        verdict = (
            f'<p class="expectation {"met" if met else "unmet"}">Expected culprit: '
            f"<b>{escape(expected['service'])}</b> {escape(expected['operation'])} — {said}.</p>"
        )
    return f'<section class="findings"><h2>Found with tracing</h2>{intro}{verdict}{body}</section>'


def render_traces(traces: list[Trace], jaeger_url: str | None, zone: tzinfo | None, notes: list[str]) -> str:
    intro = (
        "<p>The traces found with tracing (above) first, then failing traces of the drill window (spread over "
        "it), the slowest of those that succeeded, and the incident's exemplar trace, from the spans the "
        "services recorded. Each row is one span, indented under its caller; the bar shows when it ran within "
        "the trace; a framed row is the culprit of a trace whose edge answered well.</p>"
    )
    body = "".join(render_trace(trace, jaeger_url, zone) for trace in traces)
    if not traces:
        body = '<p class="missing">No trace to show.</p>'
    extra = "".join(f'<p class="note">{escape(note)}</p>' for note in notes)
    return f'<section class="traces"><h2>Traces</h2>{intro}{extra}{body}</section>'
