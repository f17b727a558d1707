"""Wait for a condition with a timeout, instead of sleeping and hoping: one sync and one async form."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast, overload

T = TypeVar("T")


class TimedOut(Exception):
    pass


def _timed_out(what: str, timeout_s: float, last: object) -> TimedOut:
    return TimedOut(f"{what} not reached within {timeout_s:.1f}s (last: {last!r})")


def wait_until(
    probe: Callable[[], T | None], *, timeout_s: float, interval_s: float = 0.2, what: str = "condition"
) -> T:
    """Call ``probe`` until it returns something truthy; return it, or raise TimedOut."""
    deadline = time.monotonic() + timeout_s
    while True:
        last = probe()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise _timed_out(what, timeout_s, last)
        time.sleep(interval_s)


@overload
async def wait_until_async(
    probe: Callable[[], Awaitable[T | None]], *, timeout_s: float, interval_s: float = ..., what: str = ...
) -> T: ...


@overload
async def wait_until_async(
    probe: Callable[[], T | None], *, timeout_s: float, interval_s: float = ..., what: str = ...
) -> T: ...


async def wait_until_async(
    probe: Callable[[], Any],
    *,
    timeout_s: float,
    interval_s: float = 0.1,
    what: str = "condition",
) -> T:
    """The asyncio form of ``wait_until``: ``probe`` may be a plain function or a coroutine function."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        outcome = probe()
        last = await outcome if isinstance(outcome, Awaitable) else outcome
        if last:
            return cast(T, last)
        if loop.time() >= deadline:
            raise _timed_out(what, timeout_s, last)
        await asyncio.sleep(interval_s)
