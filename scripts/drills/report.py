"""Turn what a drill recorded into numbers, a JSON result and an HTML report with charts."""

from __future__ import annotations

import html
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from scripts.promql import Prometheus, PrometheusError
from scripts.traffic import TrafficResult
from services.common import catalog

MARKS = (
    ("stopped", "service stopped", "#c0392b"),
    ("alert_firing", "alert firing", "#e67e22"),
    ("incident_recorded", "incident recorded", "#8e44ad"),
    ("restarted", "service restarted", "#27ae60"),
    ("incident_resolved", "incident resolved", "#2980b9"),
)


@dataclass
class DrillResult:
    experiment: str
    service: str
    status: str  # completed, failed, interrupted, aborted
    deviated: bool
    moments: dict[str, float]
    time_to_alert_s: float | None
    time_to_incident_s: float | None
    time_to_recovery_s: float | None
    requests_sent: int
    requests_failed: int
    requests_failed_during_outage: int
    expected_alerts: list[str]
    symptom_alerts: list[str]
    unexpected_alerts: list[str]
    incidents_for_service: int
    incident: dict[str, Any] | None
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return (
            self.status == "completed"
            and not self.deviated
            and not self.unexpected_alerts
            and self.incidents_for_service == 1
        )


def _between(moments: dict[str, float], start: str, end: str) -> float | None:
    if start in moments and end in moments:
        return round(moments[end] - moments[start], 2)
    return None


def failed_during(traffic: TrafficResult | None, start: float | None, end: float | None) -> int:
    if traffic is None or start is None:
        return 0
    stop = end if end is not None else float("inf")
    return sum(1 for when, ok in traffic.timeline if not ok and start <= when <= stop)


def classify_alerts(fired: set[tuple[str, str]], service: str) -> tuple[list[str], list[str], list[str]]:
    """Split alerts that fired into expected, symptoms of the outage downstream, and unexpected."""
    dependents = {spec.name for spec in catalog.SERVICES if service in spec.depends_on}
    expected, symptoms, unexpected = [], [], []
    for alertname, alert_service in sorted(fired):
        label = f"{alertname}{{service={alert_service}}}"
        if alertname == "ServiceDown" and alert_service == service:
            expected.append(label)
        elif alert_service in dependents:
            symptoms.append(label)  # inhibited by Alertmanager while the dependency is down
        else:
            unexpected.append(label)
    return expected, symptoms, unexpected


def alerts_seen(notes: dict[str, Any]) -> set[tuple[str, str]]:
    """Alerts the drill saw firing live (not ALERTS history, which a restarted Prometheus leaves stale)."""
    pairs = (key.split("|", 1) for key in notes.get("alerts_seen", {}))
    return {(name, service) for name, service in pairs}


def build_result(
    *,
    experiment: str,
    service: str,
    journal: dict[str, Any],
    moments: dict[str, float],
    notes: dict[str, Any],
    traffic: TrafficResult | None,
    prometheus: Prometheus,
    incidents: list[dict[str, Any]],
    window: tuple[float, float],
) -> DrillResult:
    expected, symptoms, unexpected = classify_alerts(alerts_seen(notes), service)
    in_window = [i for i in incidents if i.get("id") == notes.get("incident_id")] or incidents
    return DrillResult(
        experiment=experiment,
        service=service,
        status=str(journal.get("status", "unknown")),
        deviated=bool(journal.get("deviated", False)),
        moments=moments,
        time_to_alert_s=_between(moments, "stopped", "alert_firing"),
        time_to_incident_s=_between(moments, "stopped", "incident_recorded"),
        time_to_recovery_s=_between(moments, "restarted", "incident_resolved"),
        requests_sent=traffic.sent if traffic else 0,
        requests_failed=traffic.failed if traffic else 0,
        requests_failed_during_outage=failed_during(traffic, moments.get("stopped"), moments.get("steady_again")),
        expected_alerts=expected,
        symptom_alerts=symptoms,
        unexpected_alerts=unexpected,
        incidents_for_service=len(incidents),
        incident=in_window[0] if in_window else None,
        notes=notes,
    )


# -- HTML -------------------------------------------------------------------------------------

CHARTS = (
    ("Request rate through hello (req/s)", 'sum(rate(http_requests_total{service="hello"}[5s]))', "{:.0f}"),
    (
        "Error ratio at hello",
        '(sum(rate(http_requests_total{service="hello",status=~"5.."}[5s])) or vector(0))'
        ' / sum(rate(http_requests_total{service="hello"}[5s]))',
        "{:.0%}",
    ),
    (
        "p95 latency at hello (ms)",
        "1000 * histogram_quantile(0.95, sum by (le) "
        '(rate(http_request_duration_seconds_bucket{service="hello"}[5s])))',
        "{:.0f}",
    ),
)


def _svg_chart(points: list[tuple[float, float]], start: float, end: float, moments: dict[str, float], fmt: str) -> str:
    width, height, pad = 860, 190, 40
    span = max(end - start, 1.0)
    finite = [v for _, v in points if v == v and abs(v) != float("inf")]
    top = max(finite) if finite else 1.0
    top = top if top > 0 else 1.0

    def x(t: float) -> float:
        return pad + (t - start) / span * (width - 2 * pad)

    def y(v: float) -> float:
        return height - pad / 2 - v / top * (height - pad)

    line = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in points if v == v and abs(v) != float("inf"))
    parts = [
        f'<svg viewBox="0 0 {width} {height}" width="100%" role="img" xmlns="http://www.w3.org/2000/svg">',
        f'<line x1="{pad}" y1="{height - pad / 2}" x2="{width - pad}" y2="{height - pad / 2}" stroke="#999"/>',
        f'<text x="4" y="{y(top) + 4:.0f}" font-size="11">{html.escape(fmt.format(top))}</text>',
        f'<text x="4" y="{height - pad / 2:.0f}" font-size="11">0</text>',
        f'<polyline fill="none" stroke="#2c3e50" stroke-width="2" points="{line}"/>',
    ]
    for key, label, colour in MARKS:
        if key in moments and start <= moments[key] <= end:
            mx = x(moments[key])
            parts.append(
                f'<line x1="{mx:.1f}" y1="8" x2="{mx:.1f}" y2="{height - pad / 2}" stroke="{colour}" '
                'stroke-dasharray="4 3"><title>' + html.escape(label) + "</title></line>"
            )
    parts.append(f'<text x="{pad}" y="{height - 4}" font-size="11">t = 0 s</text>')
    parts.append(f'<text x="{width - pad - 60}" y="{height - 4}" font-size="11">t = {span:.0f} s</text>')
    parts.append("</svg>")
    return "".join(parts)


def _row(label: str, value: object) -> str:
    return f"<tr><th>{html.escape(label)}</th><td>{html.escape(str(value))}</td></tr>"


def render_html(result: DrillResult, prometheus: Prometheus, window: tuple[float, float]) -> str:
    start, end = window
    charts = []
    for title, expr, fmt in CHARTS:
        try:
            series = prometheus.range(expr, start, end, 1)
            points = series[0][1] if series else []
            body = _svg_chart(points, start, end, result.moments, fmt) if points else "<p>no data</p>"
        except PrometheusError as exc:
            body = f"<p>query failed: {html.escape(str(exc))}</p>"
        charts.append(f"<h2>{html.escape(title)}</h2>{body}<p class=q><code>{html.escape(expr)}</code></p>")
    legend = " ".join(
        f'<span style="border-bottom:3px dashed {colour}">{html.escape(label)}</span>' for _, label, colour in MARKS
    )
    seconds = "{} s".format
    rows = [
        _row("verdict", "PASSED" if result.passed else "FAILED"),
        _row("Chaos Toolkit status", f"{result.status} (deviated: {result.deviated})"),
        _row("time to alert firing", seconds(result.time_to_alert_s)),
        _row("time to incident stored", seconds(result.time_to_incident_s)),
        _row("time to recovery (restart → incident resolved)", seconds(result.time_to_recovery_s)),
        _row("requests sent / failed", f"{result.requests_sent} / {result.requests_failed}"),
        _row("requests failed during the outage", result.requests_failed_during_outage),
        _row("expected alerts", ", ".join(result.expected_alerts) or "none"),
        _row("symptom alerts (inhibited downstream)", ", ".join(result.symptom_alerts) or "none"),
        _row("alerts that should not have fired", ", ".join(result.unexpected_alerts) or "none"),
        _row("incidents recorded for the service", result.incidents_for_service),
    ]
    incident = html.escape(json.dumps(result.incident, indent=2, default=str)) if result.incident else "none"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Firedrill: {html.escape(result.experiment)}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:920px;margin:2em auto;color:#222}}
table{{border-collapse:collapse}}th,td{{text-align:left;padding:4px 12px;border-bottom:1px solid #ddd}}
.q{{color:#666;font-size:12px}}pre{{background:#f6f6f6;padding:1em;overflow:auto}}</style></head>
<body><h1>Drill: {html.escape(result.experiment)} — {html.escape(result.service)}</h1>
<table>{"".join(rows)}</table>
<p>Marks: {legend}</p>
{"".join(charts)}
<h2>Incident record</h2><pre>{incident}</pre>
</body></html>
"""


def write_outputs(out_dir: Path, result: DrillResult, journal: dict[str, Any], page: str) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "journal": out_dir / "journal.json",
        "result": out_dir / "result.json",
        "report": out_dir / "report.html",
    }
    paths["journal"].write_text(json.dumps(journal, indent=2, default=str))
    paths["result"].write_text(json.dumps({**asdict(result), "passed": result.passed}, indent=2, default=str))
    paths["report"].write_text(page)
    return paths


def terminal_summary(result: DrillResult, paths: dict[str, Path]) -> str:
    def fmt(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f} s"

    lines = [
        "",
        f"Drill {result.experiment} on {result.service}: {'PASSED' if result.passed else 'FAILED'}"
        f" (Chaos Toolkit: {result.status}, deviated: {result.deviated})",
        f"  time to alert firing       {fmt(result.time_to_alert_s)}",
        f"  time to incident stored    {fmt(result.time_to_incident_s)}",
        f"  time to recovery           {fmt(result.time_to_recovery_s)}  (restart -> incident resolved)",
        f"  requests sent / failed     {result.requests_sent} / {result.requests_failed}"
        f"  ({result.requests_failed_during_outage} failed during the outage)",
        f"  expected alerts            {', '.join(result.expected_alerts) or 'none'}",
        f"  symptom alerts             {', '.join(result.symptom_alerts) or 'none'} (inhibited downstream)",
        f"  unexpected alerts          {', '.join(result.unexpected_alerts) or 'none'}",
        f"  incidents for the service  {result.incidents_for_service}",
        f"  report  {paths['report']}",
        f"  result  {paths['result']}",
        f"  journal {paths['journal']}",
    ]
    return "\n".join(lines)
