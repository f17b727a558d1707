"""Wait for a condition with a timeout, instead of sleeping and hoping."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class TimedOut(Exception):
    pass


def wait_until(
    probe: Callable[[], T | None], *, timeout_s: float, interval_s: float = 0.2, what: str = "condition"
) -> T:
    """Call ``probe`` until it returns something truthy; return it, or raise TimedOut."""
    deadline = time.monotonic() + timeout_s
    last: T | None = None
    while True:
        last = probe()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise TimedOut(f"{what} not reached within {timeout_s:.1f}s (last: {last!r})")
        time.sleep(interval_s)
