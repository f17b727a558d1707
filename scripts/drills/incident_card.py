"""The incident the drill caused, as a short card a person reads in seconds; the raw record folded."""

from __future__ import annotations

import json
from datetime import datetime, tzinfo
from html import escape
from typing import Any

from scripts.drills.traces import jaeger_trace_url


def _link(url: object, text: str) -> str:
    if not isinstance(url, str) or not url:
        return '<span class="missing">none</span>'
    return f'<a href="{escape(url, quote=True)}" rel="noopener">{escape(text)}</a>'


def _when(stamp: object, zone: tzinfo | None) -> str:
    """An ISO timestamp of the incidents API in the report's time zone, to the millisecond."""
    if not isinstance(stamp, str) or not stamp:
        return ""
    try:
        moment = datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone(zone)
    except ValueError:
        return stamp
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + moment.strftime(" %Z")


def _duration(seconds: object) -> str:
    if not isinstance(seconds, int | float):
        return "still open"
    minutes, rest = divmod(float(seconds), 60)
    return f"{int(minutes)} min {rest:.1f} s" if minutes else f"{rest:.1f} s"


def _trace_link(trace_id: object, jaeger_url: str | None, shown: set[str]) -> str:
    if not isinstance(trace_id, str) or not trace_id:
        return '<span class="missing">none</span>'
    url = jaeger_trace_url(jaeger_url, trace_id)
    if url:
        return _link(url, trace_id)
    if trace_id in shown:
        return f'<a href="#trace-{escape(trace_id)}"><code>{escape(trace_id)}</code></a> (waterfall below)'
    return f"<code>{escape(trace_id)}</code> (no span of it was recorded in the drill window)"


def render_incident(
    incident: dict[str, Any] | None, jaeger_url: str | None, shown_traces: set[str], zone: tzinfo | None = None
) -> str:
    if not incident:
        return '<section class="incident"><h2>Incident</h2><p class="missing">No incident was recorded.</p></section>'
    status = str(incident.get("status", "?"))
    annotations = incident.get("common_annotations") or {}
    enrichment = incident.get("enrichment") or {}
    rows = [
        ("started", escape(_when(incident.get("started_at"), zone) or "?")),
        ("ended", escape(_when(incident.get("resolved_at"), zone) or "not yet")),
        ("duration", escape(_duration(incident.get("duration_seconds")))),
        ("description", escape(str(annotations.get("description") or "none"))),
        ("runbook", _link(incident.get("runbook_url"), "runbook")),
        ("dashboard", _link(incident.get("dashboard_url"), "Grafana dashboard")),
        ("slowest trace", _trace_link(enrichment.get("exemplar_trace_id"), jaeger_url, shown_traces)),
    ]
    title = escape(str(incident.get("summary") or incident.get("alertname") or "incident"))
    raw = escape(json.dumps(incident, indent=2, default=str))
    body = "".join(f"<dt>{name}</dt><dd>{value}</dd>" for name, value in rows)
    return (
        '<section class="incident"><h2>Incident</h2>'
        f'<div class="card"><p class="card-title"><span class="badge status-{escape(status)}">{escape(status)}</span> '
        f"{title}</p><dl>{body}</dl></div>"
        f"<details><summary>Raw incident record (JSON)</summary><pre>{raw}</pre></details></section>"
    )
