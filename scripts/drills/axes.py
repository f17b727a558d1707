"""Tick positions and labels for the report's charts: wall-clock time on x, round values on y."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime, tzinfo

# Seconds between time ticks, smallest first; the first that keeps the count under the limit wins.
TIME_STEPS_S = (1, 2, 5, 10, 15, 20, 30, 60, 120, 300, 600, 900, 1800, 3600)


def time_ticks(start: float, end: float, max_ticks: int = 10) -> list[float]:
    """Round wall-clock instants (multiples of a step) between start and end, inclusive."""
    if end <= start:
        return [start]
    span = end - start
    step = next((s for s in TIME_STEPS_S if span / s <= max_ticks), TIME_STEPS_S[-1])
    first = math.ceil(start / step) * step
    return [float(t) for t in range(int(first), int(end) + 1, step) if start <= t <= end]


def time_label(when: float, zone: tzinfo | None) -> str:
    return datetime.fromtimestamp(when, zone).strftime("%H:%M:%S")


def zone_name(when: float, zone: tzinfo | None) -> str:
    return datetime.fromtimestamp(when, zone).astimezone(zone).strftime("%Z") or "local time"


def nice_step(rough: float) -> float:
    """1, 2 or 5 times a power of ten, at least ``rough``."""
    if rough <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(rough))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= rough * (1 - 1e-9))


def value_ticks(top: float, max_ticks: int = 5) -> list[float]:
    """Ticks from 0 to a round value at or above ``top`` (the chart's y range)."""
    top = top if top > 0 and math.isfinite(top) else 1.0
    step = nice_step(top / max_ticks)
    count = math.ceil(top / step - 1e-9)
    return [round(i * step, 12) for i in range(count + 1)]


def value_formatter(unit: str, step: float) -> Callable[[float], str]:
    """How a y tick reads: a percentage for ratios, else as many decimals as the step needs.

    The unit is in the chart's title, not repeated on every tick.
    """
    decimals = max(0, -math.floor(math.log10(step))) if step > 0 else 0
    if unit == "ratio":
        pct_decimals = max(0, decimals - 2)
        return lambda v: f"{v * 100:.{pct_decimals}f} %"
    return lambda v: f"{v:.{decimals}f}"
