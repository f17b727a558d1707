"""The drill report: one self-contained HTML file (inline CSS and SVG, no script, nothing fetched).

python -m scripts.drills.page RECORDING.json -o report.html   # render a saved drill again
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from datetime import datetime, tzinfo
from html import escape
from pathlib import Path

from scripts.drills.charts import render_chart
from scripts.drills.events import drill_events, outage_span
from scripts.drills.incident_card import render_incident
from scripts.drills.recording import Recording, load
from scripts.drills.report import DrillResult
from scripts.drills.waterfall import render_findings, render_traces

STYLE = """
*{box-sizing:border-box}
body{font-family:system-ui,"DejaVu Sans",sans-serif;max-width:960px;margin:1.5em auto;padding:0 16px;color:#222;
line-height:1.4}
h1{font-size:1.5em;margin:.2em 0}h2{font-size:1.2em;margin:1.6em 0 .4em;border-bottom:1px solid #ddd}
h3{font-size:1em;margin:.3em 0}
a{color:#0050a0}code{overflow-wrap:anywhere}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:.85em;font-weight:600;color:#fff;
background:#666;vertical-align:middle}
.verdict-passed,.status-resolved{background:#1b7f4b}.verdict-failed,.status-firing,.reason-failing{background:#b03a10}
.reason-slowest{background:#7a5a00}.reason-exemplar{background:#5a3d8a}
.sub{color:#555;margin:0 0 1em}
.tiles{display:grid;grid-template-columns:repeat(auto-fit,minmax(170px,1fr));gap:10px;margin:1em 0}
.tile{border:1px solid #ddd;border-radius:6px;padding:8px 12px}.tile b{display:block;font-size:1.5em}
.tile span{color:#555;font-size:.9em}
figure{margin:0 0 1.2em}figcaption{font-weight:600;margin-bottom:2px}
.chart{display:block;max-width:100%;height:auto}
.chart-note,.q,.note{color:#555;font-size:.85em;margin:2px 0;overflow-wrap:anywhere}
.card{border:1px solid #ddd;border-left:5px solid #b03a10;border-radius:6px;padding:10px 14px}
.card-title{font-weight:600;margin:0 0 .5em}
dl{display:grid;grid-template-columns:max-content minmax(0,1fr);gap:4px 16px;margin:0}
dt{color:#555}dd{margin:0;overflow-wrap:anywhere}
.missing{color:#888}
details{margin:.8em 0}pre{background:#f6f6f6;padding:1em;white-space:pre-wrap;overflow-wrap:anywhere;font-size:12px}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:4px 10px;border-bottom:1px solid #eee;
vertical-align:top;overflow-wrap:anywhere}th{font-weight:500;color:#444;width:40%}
.trace{border:1px solid #ddd;border-radius:6px;padding:8px 12px;margin:0 0 12px}
.trace-id{margin:0 0 6px;font-size:.85em;color:#555}
.span-head,.span-row{display:grid;grid-template-columns:minmax(0,2fr) minmax(0,3fr) 80px 110px;gap:8px;
align-items:center;font-size:.88em}
.span-head{color:#666;border-bottom:1px solid #ddd;font-size:.8em}
.span-row{border-bottom:1px solid #f2f2f2;padding:2px 0}
.span-name{overflow-wrap:anywhere}.span-name small{color:#777}
.span-track{position:relative;height:12px;background:#f4f4f4;border-radius:2px}
.span-bar{position:absolute;top:0;height:12px;background:#4a78a8;border-radius:2px}
.span-row.error .span-bar{background:#b03a10}.span-row.error .span-status{color:#b03a10;font-weight:600}
.span-duration{text-align:right;font-variant-numeric:tabular-nums}
.reason-hidden{background:#8a3d6a}.span-row.culprit{background:#fdf0e8;outline:2px solid #b03a10}
.finding.expected{font-weight:600}.expectation.met{color:#1b7f4b}.expectation.unmet{color:#b03a10;font-weight:600}
"""


def _seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f} s"


def _tiles(result: DrillResult) -> str:
    broke, repaired = ("stop", "restart") if "stopped" in result.moments else ("fault on", "fault off")
    tiles = [
        (_seconds(result.time_to_alert_s), f"{broke} → alert firing"),
        (_seconds(result.time_to_incident_s), f"{broke} → incident recorded"),
        (_seconds(result.time_to_recovery_s), f"{repaired} → incident resolved"),
        (
            f"{result.requests_failed_during_outage} / {result.requests_sent}",
            "requests failed in the fault / sent",
        ),
    ]
    body = "".join(f'<div class="tile"><b>{escape(v)}</b><span>{escape(what)}</span></div>' for v, what in tiles)
    return f'<div class="tiles">{body}</div>'


def _details(result: DrillResult) -> str:
    rows = [
        ("Chaos Toolkit status", f"{result.status} (deviated: {result.deviated})"),
        ("requests sent / failed", f"{result.requests_sent} / {result.requests_failed}"),
        ("expected alerts", ", ".join(result.expected_alerts) or "none"),
        ("expected alerts that never fired", ", ".join(result.missing_alerts) or "none"),
        ("symptom alerts (tolerated downstream)", ", ".join(result.symptom_alerts) or "none"),
        ("alerts that should not have fired", ", ".join(result.unexpected_alerts) or "none"),
        ("incidents recorded for the service", str(result.incidents_for_service)),
    ]
    body = "".join(f"<tr><th>{escape(name)}</th><td>{escape(value)}</td></tr>" for name, value in rows)
    return f"<section><h2>Details</h2><table>{body}</table></section>"


def _reading_guide(recording: Recording, outage: tuple[float, float] | None) -> str:
    """What the shading and hatching mean, said once for all charts."""
    notes = []
    if outage is not None:
        notes.append(f"Shaded: the outage, from the stop to the restart ({outage[1] - outage[0]:.1f} s).")
    windows = sorted({s.query.rate_window_s for s in recording.series if s.query.rate_window_s})
    for window in windows:
        notes.append(
            f"Hatched: the {window:g} s after traffic starts, the stop and the restart. Each point is a rate over "
            f"the {window:g} s before it, so a curve shows a change up to {window:g} s after it happened."
        )
    return f'<p class="chart-note">{" ".join(notes)}</p>' if notes else ""


def _charts(recording: Recording, zone: tzinfo | None, prefix: str = "") -> str:
    result = recording.result
    events = drill_events(result.moments, result.service)
    outage = outage_span(result.moments)
    parts = []
    for index, series in enumerate(recording.series):
        svg = render_chart(series, recording.window, events, outage, zone, f"{prefix}chart-{index}")
        parts.append(
            f"<figure><figcaption>{escape(series.query.title)}</figcaption>{svg}"
            f'<p class="q">PromQL: <code>{escape(series.query.expr)}</code></p></figure>'
        )
    return "<section><h2>What users saw</h2>" + _reading_guide(recording, outage) + "".join(parts) + "</section>"


def render_section(recording: Recording, zone: tzinfo | None = None, prefix: str = "") -> str:
    """One drill's tiles, charts, incident, traces and details (``prefix`` keeps chart ids unique on a page)."""
    result = recording.result
    shown = {trace.trace_id for trace in recording.traces}
    return f"""{_tiles(result)}
{_charts(recording, zone, prefix)}
{render_incident(result.incident, recording.jaeger_url, shown, zone)}
{render_findings(result.trace_findings, result.expected_trace_finding, recording.traces)}
{render_traces(recording.traces, recording.jaeger_url, zone, recording.notes)}
{_details(result)}"""


def verdict_badge(passed: bool) -> str:
    verdict = "passed" if passed else "failed"
    return f'<span class="badge verdict-{verdict}">{verdict.upper()}</span>'


def render_page(recording: Recording, zone: tzinfo | None = None) -> str:
    result = recording.result
    started = datetime.fromtimestamp(recording.window[0], zone).astimezone(zone)
    title = f"Drill {result.experiment}: {result.service}"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Firedrill: {escape(title)}</title><style>{STYLE}</style></head>
<body><header><h1>{escape(title)} {verdict_badge(result.passed)}</h1>
<p class="sub">{started:%Y-%m-%d %H:%M:%S %Z} · {recording.window[1] - recording.window[0]:.0f} s window</p></header>
{render_section(recording, zone)}
</body></html>
"""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.drills.page", description=__doc__)
    parser.add_argument("recording", type=Path, help="recording.json written by a drill")
    parser.add_argument("-o", "--out", type=Path, default=None, help="HTML file to write (default: beside it)")
    args = parser.parse_args(argv)
    out = args.out or args.recording.with_name("report.html")
    out.write_text(render_page(load(args.recording)))
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
