"""The view's HTML: the incident list, one incident, one trace, and errors. No script, nothing fetched.

Every value from an incident is escaped; URLs are linked only when they are http(s) (``links.safe_url``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from html import escape
from typing import Any
from urllib.parse import urlencode

from scripts.drills.page import STYLE as DRILL_STYLE
from scripts.drills.traces import Trace
from scripts.drills.waterfall import render_trace
from scripts.incidents_cli import duration
from scripts.incidents_view.links import LinkTargets, graph_url, safe_url, trace_url
from services.incidents.models import NS_PER_S, parse_time

STYLE = (
    DRILL_STYLE
    + """
body{max-width:1200px}
nav{font-size:.9em;margin-bottom:.6em}nav a{margin-right:1em}
table.incidents th{width:auto;font-weight:600}
table.incidents td,table.incidents th{overflow-wrap:break-word}
table.incidents tr:hover td{background:#fafafa}
.badge,time{white-space:nowrap}
.severity-critical{color:#b03a10;font-weight:600}.severity-warning{color:#7a5a00;font-weight:600}
.filters a{margin-right:.8em}.filters a.current{font-weight:700;text-decoration:none;color:#222}
.pager{margin:1em 0}.pager a{margin-right:1em}
table.timeline{width:auto}table.timeline td{border-bottom:1px solid #f2f2f2;padding:3px 10px 3px 0}
table.timeline td.offset{color:#777;text-align:right;white-space:nowrap}
.timeline time{font-variant-numeric:tabular-nums;color:#444}
.labels code{display:inline-block;background:#f4f4f4;border-radius:3px;padding:0 4px;margin:1px 2px 1px 0}
"""
)


def _text(value: object, empty: str = "none") -> str:
    if value is None or value == "":
        return f'<span class="missing">{escape(empty)}</span>'
    return escape(str(value))


def _link(url: object, text: str, *, empty: str = "none") -> str:
    target = safe_url(url)
    if target is None:
        return _text(url, empty)
    return f'<a href="{escape(target, quote=True)}" rel="noopener noreferrer">{escape(text)}</a>'


def _moment(stamp: object) -> datetime | None:
    if not isinstance(stamp, str):
        return None
    try:
        ns = parse_time(stamp)
    except ValueError:
        return None
    return None if ns is None else datetime.fromtimestamp(ns / NS_PER_S, UTC)


def _when(stamp: object) -> str:
    moment = _moment(stamp)
    if moment is None:
        return _text(stamp, "—")
    return f'<time datetime="{escape(str(stamp), quote=True)}">{moment:%Y-%m-%d %H:%M:%S} UTC</time>'


def _length(seconds: float) -> str:
    """Seconds to a tenth under a minute (drill incidents last seconds), else hours, minutes and seconds."""
    return f"{seconds:.1f} s" if seconds < 60 else duration(seconds)


def _duration(incident: Mapping[str, Any], now: datetime) -> str:
    if isinstance(incident.get("duration_seconds"), int | float):
        return escape(_length(float(incident["duration_seconds"])))
    started = _moment(incident.get("started_at"))
    if started is None:
        return _text(None, "—")
    return f"firing for {escape(_length(max((now - started).total_seconds(), 0.0)))}"


def _badge(status: object) -> str:
    text = str(status or "?")
    return f'<span class="badge status-{escape(text, quote=True)}">{escape(text)}</span>'


def _page(title: str, body: str) -> str:
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>{escape(title)} · Firedrill incidents</title><style>{STYLE}</style></head>
<body><nav><a href="/">All incidents</a><a href="/?status=firing">Firing</a>
<a href="/?status=resolved">Resolved</a></nav>
{body}
</body></html>
"""


# -- the list ----------------------------------------------------------------------------------


def _list_url(status: str | None, service: str | None, offset: int, limit: int) -> str:
    query = {k: v for k, v in (("status", status), ("service", service)) if v}
    if offset:
        query["offset"] = str(offset)
    if limit != DEFAULT_LIMIT:
        query["limit"] = str(limit)
    return "/" + ("?" + urlencode(query) if query else "")


DEFAULT_LIMIT = 50


def list_page(answer: Mapping[str, Any], status: str | None, service: str | None, now: datetime) -> str:
    incidents: list[dict[str, Any]] = list(answer.get("incidents") or [])
    total = int(answer.get("total", 0))
    limit, offset = int(answer.get("limit", DEFAULT_LIMIT)), int(answer.get("offset", 0))
    filters = []
    for choice, label in ((None, "all"), ("firing", "firing"), ("resolved", "resolved")):
        current = ' class="current"' if choice == status else ""
        filters.append(f'<a{current} href="{escape(_list_url(choice, service, 0, limit), quote=True)}">{label}</a>')
    scope = f" for service <code>{escape(service)}</code>" if service else ""
    rows = []
    for item in incidents:
        ident = int(item["id"])
        severity = str(item.get("severity") or "")
        service_name = str(item.get("service") or "")
        service_cell = (
            f'<a href="{escape(_list_url(status, service_name, 0, limit), quote=True)}">{escape(service_name)}</a>'
            if service_name
            else _text(None, "—")
        )
        rows.append(
            f'<tr><td><a href="/incidents/{ident}">#{ident}</a></td><td>{_badge(item.get("status"))}</td>'
            f'<td class="severity-{escape(severity, quote=True)}">{_text(severity, "—")}</td>'
            f"<td>{service_cell}</td><td>{_text(item.get('alertname'), '—')}</td>"
            f'<td><a href="/incidents/{ident}">{_text(item.get("summary") or item.get("alertname"), "—")}</a></td>'
            f"<td>{_when(item.get('started_at'))}</td><td>{_duration(item, now)}</td>"
            f"<td>{int(item.get('alerts_firing') or 0)} / {int(item.get('alerts_total') or 0)}</td></tr>"
        )
    table = (
        '<table class="incidents"><thead><tr><th>id</th><th>status</th><th>severity</th><th>service</th>'
        "<th>alert</th><th>summary</th><th>started</th><th>duration</th><th>alerts firing / all</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
        if rows
        else '<p class="missing">No incident matches.</p>'
    )
    pager = []
    if offset > 0:
        newer = _list_url(status, service, max(offset - limit, 0), limit)
        pager.append(f'<a href="{escape(newer, quote=True)}">← newer</a>')
    if offset + len(incidents) < total:
        older = _list_url(status, service, offset + limit, limit)
        pager.append(f'<a href="{escape(older, quote=True)}">older →</a>')
    shown = f"{offset + 1} to {offset + len(incidents)} of {total}" if incidents else f"0 of {total}"
    return _page(
        "Incidents",
        f'<header><h1>Incidents{scope}</h1><p class="sub">Newest first · {shown} · '
        f"times in UTC · {now:%Y-%m-%d %H:%M:%S} UTC now</p></header>"
        f'<p class="filters">Show: {"".join(filters)}</p>{table}<p class="pager">{"".join(pager)}</p>',
    )


# -- one incident ------------------------------------------------------------------------------


def _labels(labels: object, skip: frozenset[str] = frozenset()) -> str:
    if not isinstance(labels, dict) or not labels:
        return _text(None)
    shown = [f"<code>{escape(str(k))}={escape(str(v))}</code>" for k, v in sorted(labels.items()) if k not in skip]
    return f'<span class="labels">{"".join(shown)}</span>' if shown else _text(None)


def _trace(trace_id: object, targets: LinkTargets) -> str:
    if not isinstance(trace_id, str) or not trace_id:
        return _text(None, "none found")
    where = "Jaeger" if targets.jaeger else "span waterfall"
    url = escape(trace_url(targets, trace_id), quote=True)
    return f'<a href="{url}" rel="noopener noreferrer"><code>{escape(trace_id)}</code></a> ({where})'


def timeline(incident: Mapping[str, Any]) -> list[tuple[datetime, str]]:
    """What happened to the incident, in time order: alerts firing and resolving, recording, enrichment."""
    events: list[tuple[datetime, str]] = []

    def add(stamp: object, what: str) -> None:
        moment = _moment(stamp)
        if moment is not None:
            events.append((moment, what))

    for alert in incident.get("alerts") or []:
        labels = alert.get("labels") or {}
        extra = ", ".join(f"{k}={v}" for k, v in sorted(labels.items()) if k not in ("alertname", "severity"))
        name = f"{labels.get('alertname', 'alert')} ({extra})" if extra else str(labels.get("alertname", "alert"))
        add(alert.get("starts_at"), f"{name} fired")
        if alert.get("status") == "resolved":
            add(alert.get("ends_at"), f"{name} resolved")
    add(incident.get("created_at"), "incident recorded (first notification from Alertmanager)")
    enrichment = incident.get("enrichment") or {}
    if enrichment.get("enriched_at"):
        add(enrichment.get("enriched_at"), f"enrichment {enrichment.get('status')} (value and trace from Prometheus)")
    if incident.get("status") == "resolved":
        add(incident.get("resolved_at"), "incident resolved: every alert ended")
    events.sort(key=lambda event: event[0])
    return events


def _offset(seconds: float) -> str:
    return ("-" if seconds < 0 else "+") + _length(abs(seconds))


def _timeline(incident: Mapping[str, Any]) -> str:
    events = timeline(incident)
    if not events:
        return '<p class="missing">No times recorded.</p>'
    origin = _moment(incident.get("started_at")) or events[0][0]
    rows = []
    for moment, what in events:
        rows.append(
            f"<tr><td><time>{moment:%Y-%m-%d %H:%M:%S}.{moment.microsecond // 1000:03d}</time></td>"
            f'<td class="offset">{_offset((moment - origin).total_seconds())}</td><td>{escape(what)}</td></tr>'
        )
    return f'<table class="timeline"><tbody>{"".join(rows)}</tbody></table>'


def _enrichment(incident: Mapping[str, Any]) -> str:
    enrichment = incident.get("enrichment") or {}
    samples = enrichment.get("samples") or []
    rows = [
        ("status", _text(enrichment.get("status"))),
        ("expression", f"<code>{escape(str(enrichment['expr']))}</code>" if enrichment.get("expr") else _text(None)),
        ("value when enriched", _text(enrichment.get("value"))),
        ("enriched at", _when(enrichment.get("enriched_at"))),
        ("error", _text(enrichment.get("error"))),
    ]
    body = "".join(f"<dt>{name}</dt><dd>{value}</dd>" for name, value in rows)
    sample_rows = "".join(
        f"<tr><td>{_labels(s.get('labels'))}</td><td>{_text(s.get('value'))}</td></tr>"
        for s in samples
        if isinstance(s, dict)
    )
    table = (
        '<table class="incidents"><thead><tr><th>series</th><th>value</th></tr></thead>'
        f"<tbody>{sample_rows}</tbody></table>"
        if sample_rows
        else ""
    )
    return f"<section><h2>Enrichment</h2><dl>{body}</dl>{table}</section>"


def _alerts(incident: Mapping[str, Any], targets: LinkTargets, now_s: float) -> str:
    alerts = incident.get("alerts") or []
    rows = []
    for alert in alerts:
        graph = graph_url(
            targets, alert.get("generator_url"), None, alert.get("starts_at"), alert.get("ends_at"), now_s
        )
        annotations = alert.get("annotations") or {}
        rows.append(
            f"<tr><td>{_badge(alert.get('status'))}</td>"
            f"<td>{_labels(alert.get('labels'), frozenset({'alertname'}))}</td>"
            f"<td>{_when(alert.get('starts_at'))}</td><td>{_when(alert.get('ends_at'))}</td>"
            f"<td>{_text(annotations.get('summary') or annotations.get('description'))}</td>"
            f"<td>{_link(graph, 'graph', empty='—')}</td></tr>"
        )
    more = int(incident.get("alerts_total") or 0) - len(alerts)
    note = f'<p class="note">{more} more alert(s) not shown (the API returns the first 1,000).</p>' if more > 0 else ""
    return (
        f"<section><h2>Alerts ({len(alerts)})</h2>"
        '<table class="incidents"><thead><tr><th>status</th><th>labels</th><th>started</th><th>ended</th>'
        f"<th>summary</th><th>Prometheus</th></tr></thead><tbody>{''.join(rows)}</tbody></table>{note}</section>"
    )


def incident_page(incident: Mapping[str, Any], targets: LinkTargets, now: datetime) -> str:
    ident = int(incident["id"])
    enrichment = incident.get("enrichment") or {}
    first_alert = (incident.get("alerts") or [{}])[0]
    graph = graph_url(
        targets,
        first_alert.get("generator_url"),
        enrichment.get("expr"),
        incident.get("started_at"),
        incident.get("resolved_at"),
        now.timestamp(),
    )
    annotations = incident.get("common_annotations") or {}
    rows = [
        ("alert", _text(incident.get("alertname"))),
        ("service", _text(incident.get("service"))),
        ("severity", _text(incident.get("severity"))),
        ("started", _when(incident.get("started_at"))),
        ("resolved", _when(incident.get("resolved_at")) if incident.get("resolved_at") else _text(None, "not yet")),
        ("duration", _duration(incident, now)),
        ("description", _text(annotations.get("description"))),
        ("runbook", _link(incident.get("runbook_url"), "runbook")),
        ("dashboard", _link(incident.get("dashboard_url"), "Grafana dashboard")),
        ("Prometheus graph", _link(graph, "graph of the alert's expression")),
        ("trace", _trace(enrichment.get("exemplar_trace_id"), targets)),
        ("group", _labels(incident.get("group_labels"))),
        ("notifications", _text(incident.get("updates"))),
    ]
    if incident.get("truncated_alerts"):
        rows.append(("alerts left out by Alertmanager", _text(incident.get("truncated_alerts"))))
    facts = "".join(f"<dt>{escape(name)}</dt><dd>{value}</dd>" for name, value in rows)
    title = str(incident.get("summary") or incident.get("alertname") or f"incident {ident}")
    raw = escape(json.dumps(dict(incident), indent=2, ensure_ascii=False, default=str))
    return _page(
        f"#{ident} {title}",
        f"<header><h1>#{ident} {escape(title)} {_badge(incident.get('status'))}</h1>"
        '<p class="sub">Times in UTC.</p></header>'
        f'<div class="card"><dl>{facts}</dl></div>'
        f"<section><h2>Timeline</h2>{_timeline(incident)}</section>"
        f"{_alerts(incident, targets, now.timestamp())}{_enrichment(incident)}"
        f"<details><summary>Raw incident record (JSON, as the API returns it)</summary><pre>{raw}</pre></details>",
    )


# -- a trace and errors ------------------------------------------------------------------------


def trace_page(trace: Trace) -> str:
    return _page(
        f"trace {trace.trace_id}",
        f"<header><h1>Trace <code>{escape(trace.trace_id)}</code></h1>"
        '<p class="sub">From the span files of the local platform. Each row is one span, indented under its '
        "caller; the bar shows when it ran within the trace.</p></header>"
        f'<section class="traces">{render_trace(trace, None, UTC)}</section>',
    )


def error_page(status: int, message: str) -> str:
    return _page(f"{status}", f'<h1>{status}</h1><p>{escape(message)}</p><p><a href="/">Back to the incidents</a></p>')
