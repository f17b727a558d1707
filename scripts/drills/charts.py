"""One time-series chart of a drill as inline SVG: axes, ticks, grid, the outage, every event.

The drawing is in viewBox units (WIDTH wide) and scales with the page. Event labels sit in rows
above the plot (``label_layout``), each next to a dashed line through the plot at its instant.
"""

from __future__ import annotations

import itertools
import math
from datetime import tzinfo
from html import escape

from scripts.drills.axes import time_label, time_ticks, value_formatter, value_ticks, zone_name
from scripts.drills.events import Event
from scripts.drills.label_layout import place_labels, text_width
from scripts.drills.recording import Series

WIDTH = 900
LEFT, RIGHT = 64, 16  # room for y tick labels; a margin so the last x label stays inside
PLOT_HEIGHT = 150
FONT = 11
ROW_HEIGHT = 15
AXIS_ROOM = 38  # below the plot: tick labels and the axis caption
# Events after which a rate() curve still averages samples from before them.
LAGGING_AFTER = ("traffic_started", "stopped", "restarted")


def _segments(points: list[tuple[float, float]]) -> list[list[tuple[float, float]]]:
    """Runs of finite values; a missing sample or a gap longer than 2.5 steps breaks the line."""
    finite = [(t, v) for t, v in points if math.isfinite(v)]
    if not finite:
        return []
    steps = sorted(b - a for (a, _), (b, _) in itertools.pairwise(points))
    step = steps[len(steps) // 2] if steps else 1.0
    runs: list[list[tuple[float, float]]] = [[finite[0]]]
    previous = finite[0][0]
    for t, v in finite[1:]:
        if t - previous > 2.5 * step:
            runs.append([])
        runs[-1].append((t, v))
        previous = t
    return runs


def render_chart(
    series: Series,
    window: tuple[float, float],
    events: list[Event],
    outage: tuple[float, float] | None,
    zone: tzinfo | None,
    chart_id: str,
) -> str:
    start, end = window
    right = WIDTH - RIGHT
    span = max(end - start, 1.0)

    def x(t: float) -> float:
        return LEFT + (t - start) / span * (right - LEFT)

    visible = [e for e in events if start <= e.when <= end]
    labels = place_labels([(x(e.when), e.label) for e in visible], 2, WIDTH - 2, FONT)
    rows = max((p.row for p in labels), default=-1) + 1
    top = 6 + rows * ROW_HEIGHT + 6
    bottom = top + PLOT_HEIGHT
    height = bottom + AXIS_ROOM

    finite = [v for _, v in series.points if math.isfinite(v)]
    ticks = value_ticks(max(finite, default=0.0))
    y_max = ticks[-1] or 1.0
    fmt = value_formatter(series.query.unit, ticks[1] - ticks[0] if len(ticks) > 1 else 1.0)

    def y(v: float) -> float:
        return bottom - v / y_max * PLOT_HEIGHT

    out = [
        f'<svg class="chart" id="{chart_id}" viewBox="0 0 {WIDTH} {height}" width="100%" role="img" '
        f'aria-label="{escape(series.query.title)}" xmlns="http://www.w3.org/2000/svg" font-size="{FONT}">',
        f'<defs><pattern id="{chart_id}-hatch" width="6" height="6" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)"><line x1="0" y1="0" x2="0" y2="6" stroke="#888" stroke-width="1.5"/>'
        "</pattern></defs>",
    ]
    if outage is not None:
        x0, x1 = x(max(outage[0], start)), x(min(outage[1], end))
        out.append(
            f'<rect class="outage" x="{x0:.1f}" y="{top}" width="{max(x1 - x0, 1):.1f}" height="{PLOT_HEIGHT}" '
            f'fill="#D55E00" fill-opacity="0.10"><title>outage: {outage[1] - outage[0]:.1f} s</title></rect>'
        )
        # Named inside the band only where no event line crosses the words.
        caption = f"outage {outage[1] - outage[0]:.1f} s"
        blocked = [x(e.when) for e in visible if x0 + 1 < x(e.when) < x1]
        room = min(blocked, default=x1) - x0
        if room > text_width(caption, FONT) + 8:
            out.append(f'<text class="outage-label" x="{x0 + 4:.1f}" y="{top + 14}" fill="#A04000">{caption}</text>')
    window_s = series.query.rate_window_s
    if window_s:
        for event in visible:
            if event.key in LAGGING_AFTER:
                x0, x1 = x(event.when), x(min(event.when + window_s, end))
                out.append(
                    f'<rect class="rate-window" x="{x0:.1f}" y="{top}" width="{x1 - x0:.1f}" height="{PLOT_HEIGHT}" '
                    f'fill="url(#{chart_id}-hatch)" fill-opacity="0.35"><title>rate over {window_s:g} s: the curve '
                    "still averages samples from before this event</title></rect>"
                )
    for value in ticks:
        ty = y(value)
        out.append(f'<line class="grid" x1="{LEFT}" y1="{ty:.1f}" x2="{right}" y2="{ty:.1f}" stroke="#e3e3e3"/>')
        out.append(
            f'<text class="tick-label" x="{LEFT - 6}" y="{ty + 4:.1f}" text-anchor="end" fill="#444">'
            f"{escape(fmt(value))}</text>"
        )
    for t in time_ticks(start, end):
        tx = x(t)
        out.append(f'<line class="grid" x1="{tx:.1f}" y1="{top}" x2="{tx:.1f}" y2="{bottom}" stroke="#f0f0f0"/>')
        out.append(f'<line x1="{tx:.1f}" y1="{bottom}" x2="{tx:.1f}" y2="{bottom + 4}" stroke="#666"/>')
        anchor = "end" if tx > right - 30 else "start" if tx < LEFT + 30 else "middle"
        out.append(
            f'<text class="tick-label" x="{tx:.1f}" y="{bottom + 16}" text-anchor="{anchor}" fill="#444">'
            f"{time_label(t, zone)}</text>"
        )
    out.append(f'<line x1="{LEFT}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="#666"/>')
    out.append(f'<line x1="{LEFT}" y1="{top}" x2="{LEFT}" y2="{bottom}" stroke="#666"/>')
    out.append(
        f'<text class="axis-caption" x="{right}" y="{bottom + 32}" text-anchor="end" fill="#666">'
        f"wall-clock time ({escape(zone_name(start, zone))})</text>"
    )
    for run in _segments(series.points):
        points = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in run)
        shape = "polyline" if len(run) > 1 else "circle"
        if shape == "circle":
            cx, cy = points.split(",")
            out.append(f'<circle class="series" cx="{cx}" cy="{cy}" r="2" fill="#1f3a5f"/>')
        else:
            out.append(f'<polyline class="series" fill="none" stroke="#1f3a5f" stroke-width="2" points="{points}"/>')
    if not series.points:
        out.append(
            f'<text class="no-data" x="{(LEFT + right) / 2}" y="{top + PLOT_HEIGHT / 2}" text-anchor="middle" '
            f'fill="#999">{escape(series.error or "no data")}</text>'
        )
    for event, placed in zip(visible, labels, strict=True):
        label_y = 6 + (placed.row + 1) * ROW_HEIGHT - 3
        out.append(
            f'<line class="event-line" x1="{placed.x:.1f}" y1="{label_y - 9}" x2="{placed.x:.1f}" y2="{bottom}" '
            f'stroke="{event.colour}" stroke-width="1.5" stroke-dasharray="4 3"/>'
        )
        out.append(
            f'<text class="event-label" x="{placed.text_x:.1f}" y="{label_y}" fill="{event.colour}" '
            f'font-weight="600">{escape(event.label)}<title>{time_label(event.when, zone)}</title></text>'
        )
    out.append("</svg>")
    return "".join(out)
