"""What the debugging endpoints showed during a drill (a heap snapshot, a CPU profile), for the report.

The resource drills (``scripts.drills.resource_faults``) put them in ``notes["findings"]``: a title, a
one-line summary and the table rows, shown in the HTML report and in the terminal summary.
"""

from __future__ import annotations

from html import escape
from typing import Any


def _findings(notes: dict[str, Any]) -> list[dict[str, Any]]:
    return [f for f in notes.get("findings", []) if isinstance(f, dict)]


def debug_finding_lines(notes: dict[str, Any]) -> list[str]:
    return [f"  {finding['kind']:<26} {finding['summary']}" for finding in _findings(notes)]


def _table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "<p>nothing to show</p>"
    columns = list(rows[0])
    head = "".join(f'<th style="white-space:nowrap">{escape(str(c))}</th>' for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td><code>{escape(str(row.get(c, '')))}</code></td>" for c in columns) + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def render_debug_findings(notes: dict[str, Any]) -> str:
    """A "What the debugging endpoints showed" section, or nothing when the drill took none."""
    findings = _findings(notes)
    if not findings:
        return ""
    parts = [
        f"<h3>{escape(str(f['title']))}</h3><p>{escape(str(f['summary']))}</p>{_table(list(f.get('rows', [])))}"
        for f in findings
    ]
    return "<section><h2>What the debugging endpoints showed</h2>" + "".join(parts) + "</section>"
