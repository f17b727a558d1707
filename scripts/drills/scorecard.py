"""The scorecard of ``simulate-all``: one row per drill in the terminal, one HTML page with a section each."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo
from html import escape

from scripts.drills.page import STYLE, render_section, verdict_badge
from scripts.drills.recording import Recording
from scripts.drills.report import DrillResult

# Short cells stay whole ("yes", "PASSED"); names break between words only.
SCORECARD_STYLE = """
.scorecard{font-size:.9em}.scorecard th{width:auto}
.scorecard td,.scorecard th{overflow-wrap:normal;padding:4px 6px}
.scorecard td:nth-child(n+3){white-space:nowrap}
"""

COLUMNS = (
    "drill",
    "expected alert",
    "fired?",
    "time to detect",
    "time to recover",
    "user requests failed",
    "false alerts",
    "verdict",
)


@dataclass(frozen=True, slots=True)
class Row:
    drill: str
    expected_alert: str
    fired: str
    time_to_detect: str
    time_to_recover: str
    user_requests_failed: str
    false_alerts: str
    verdict: str

    def cells(self) -> tuple[str, ...]:
        return (
            self.drill,
            self.expected_alert,
            self.fired,
            self.time_to_detect,
            self.time_to_recover,
            self.user_requests_failed,
            self.false_alerts,
            self.verdict,
        )


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def row(result: DrillResult) -> Row:
    expected = [*result.expected_alerts, *result.missing_alerts]
    if not expected:
        fired = "-"
    elif result.missing_alerts:
        fired = f"no ({len(result.expected_alerts)}/{len(expected)})"
    else:
        fired = "yes"
    allowed = "" if result.max_failed_requests is None else f" (max {result.max_failed_requests})"
    detect = result.time_to_alert_s
    expected_text = ", ".join(expected) or "none"  # breaks at ", " on the page
    if result.expected_rollout is not None:
        # Canary drills: the rollout's decision is what they expect, and its time the time to detect.
        expected_text = f"rollout {result.expected_rollout.replace('_', ' ')}"
        fired = (result.rollout_outcome or "none").replace("_", " ")
        detect = (result.notes.get("rollout") or {}).get("duration_s")
    return Row(
        drill=f"{result.experiment} ({result.service})",
        expected_alert=expected_text,
        fired=fired,
        time_to_detect=_seconds(detect),
        time_to_recover=_seconds(result.time_to_recovery_s),
        user_requests_failed=f"{result.requests_failed_during_outage}/{result.requests_sent}{allowed}",
        false_alerts=str(len(result.unexpected_alerts)),
        verdict="REFUSED" if result.refused else ("PASSED" if result.passed else "FAILED"),
    )


def render_table(results: list[DrillResult]) -> str:
    """A plain-text table that reads in a terminal and in CI logs."""
    rows = [COLUMNS, *(row(r).cells() for r in results)]
    widths = [max(len(cells[i]) for cells in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)) for cells in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    for result in results:
        lines += [f"  {result.experiment}: {reason}" for reason in result.failed_expectations()]
    return "\n".join(line.rstrip() for line in lines)


def render_scorecard_page(recordings: list[Recording], zone: tzinfo | None = None) -> str:
    """The scorecard on top, then one section per drill (the single-drill report's pieces)."""
    results = [r.result for r in recordings]
    head = "".join(f"<th>{escape(c)}</th>" for c in COLUMNS)
    body = "".join(
        "<tr>"
        + "".join(f"<td>{escape(c)}</td>" for c in row(r).cells()[:-1])
        + f"<td>{verdict_badge(r.passed)}</td></tr>"
        for r in results
    )
    sections = "".join(
        f'<section id="drill-{index}"><h2>{escape(r.result.experiment)}: {escape(r.result.service)} '
        f"{verdict_badge(r.result.passed)}</h2>{_reasons(r.result)}{render_section(r, zone, f'd{index}-')}</section>"
        for index, r in enumerate(recordings)
    )
    started = (
        datetime.fromtimestamp(recordings[0].window[0], zone).astimezone(zone).strftime("%Y-%m-%d %H:%M:%S %Z")
        if recordings
        else ""
    )
    passed = bool(results) and all(r.passed for r in results)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Firedrill: drill scorecard</title><style>{STYLE}{SCORECARD_STYLE}</style></head>
<body><header><h1>Drill scorecard {verdict_badge(passed)}</h1><p class="sub">{escape(started)}</p></header>
<section><table class="scorecard"><tr>{head}</tr>{body}</table></section>
{sections}
</body></html>
"""


def _reasons(result: DrillResult) -> str:
    reasons = result.failed_expectations()
    if not reasons:
        return ""
    return "<ul>" + "".join(f"<li>{escape(reason)}</li>" for reason in reasons) + "</ul>"
