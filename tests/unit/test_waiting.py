"""wait_until and wait_until_async return the first truthy probe result or raise TimedOut."""

from __future__ import annotations

import pytest

from services.common.waiting import TimedOut, wait_until, wait_until_async


def test_wait_until_returns_the_first_truthy_result() -> None:
    answers = iter([None, 0, "ready"])
    assert wait_until(lambda: next(answers), timeout_s=5, interval_s=0) == "ready"


def test_wait_until_names_what_it_waited_for() -> None:
    with pytest.raises(TimedOut, match=r"the moon not reached within 0\.0s \(last: None\)"):
        wait_until(lambda: None, timeout_s=0, interval_s=0, what="the moon")


async def test_wait_until_async_awaits_a_coroutine_probe() -> None:
    calls = []

    async def probe() -> int | None:
        calls.append(1)
        return len(calls) if len(calls) == 3 else None

    assert await wait_until_async(probe, timeout_s=5, interval_s=0) == 3


async def test_wait_until_async_takes_a_plain_probe_and_times_out() -> None:
    with pytest.raises(TimedOut, match="files not reached"):
        await wait_until_async(lambda: False, timeout_s=0, interval_s=0, what="files")
