from __future__ import annotations

import asyncio
from typing import Any

import grpc
import grpc.aio
import pytest

from services.common.errors import DeadlineExceeded, InvalidArgument, NotFound, Unavailable
from services.common.grpc_client import RetryPolicy, call_with_retry
from services.common.ratelimit import KeyedLimiter, TokenBucket
from tests.unit.helpers import Clock


def rpc_error(code: grpc.StatusCode) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details=code.name)


class FakeChannels:
    service = "upstream"

    def __init__(self) -> None:
        self.forgotten = 0

    async def pick(self, avoid: Any = None) -> tuple[Any, Any]:
        return object(), object()

    def forget(self) -> None:
        self.forgotten += 1


class Script:
    """Answers attempts from a list of outcomes (an exception to raise, or a value)."""

    def __init__(self, *outcomes: Any) -> None:
        self.outcomes = list(outcomes)
        self.calls = 0
        self.budgets: list[float] = []

    async def __call__(self, stub: Any, budget_s: float) -> Any:
        self.calls += 1
        self.budgets.append(budget_s)
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


POLICY = RetryPolicy(attempts=3, base_backoff_s=0.001, max_backoff_s=0.002, attempt_timeout_s=0.5)


def deadline(seconds: float = 2.0) -> float:
    return asyncio.get_running_loop().time() + seconds


async def test_retries_unavailable_then_succeeds() -> None:
    script = Script(rpc_error(grpc.StatusCode.UNAVAILABLE), rpc_error(grpc.StatusCode.DEADLINE_EXCEEDED), "ok")
    channels = FakeChannels()
    assert await call_with_retry(channels, script, deadline=deadline(), policy=POLICY) == "ok"  # type: ignore[arg-type]
    assert script.calls == 3
    assert channels.forgotten == 1


async def test_at_most_three_attempts() -> None:
    script = Script(*[rpc_error(grpc.StatusCode.UNAVAILABLE)] * 5)
    with pytest.raises(Unavailable):
        await call_with_retry(FakeChannels(), script, deadline=deadline(), policy=POLICY)  # type: ignore[arg-type]
    assert script.calls == 3


@pytest.mark.parametrize(
    ("code", "error"),
    [(grpc.StatusCode.NOT_FOUND, NotFound), (grpc.StatusCode.INVALID_ARGUMENT, InvalidArgument)],
)
async def test_other_codes_are_not_retried(code: grpc.StatusCode, error: type[Exception]) -> None:
    script = Script(rpc_error(code), "ok")
    with pytest.raises(error):
        await call_with_retry(FakeChannels(), script, deadline=deadline(), policy=POLICY)  # type: ignore[arg-type]
    assert script.calls == 1


async def test_attempt_budget_never_exceeds_the_deadline() -> None:
    script = Script("ok")
    await call_with_retry(FakeChannels(), script, deadline=deadline(0.1), policy=POLICY)  # type: ignore[arg-type]
    assert script.budgets[0] <= 0.1


async def test_past_deadline_is_deadline_exceeded_without_calling() -> None:
    script = Script("ok")
    with pytest.raises(DeadlineExceeded):
        await call_with_retry(FakeChannels(), script, deadline=deadline(-1), policy=POLICY)  # type: ignore[arg-type]
    assert script.calls == 0


def test_backoff_has_full_jitter_and_a_cap() -> None:
    policy = RetryPolicy(base_backoff_s=0.1, max_backoff_s=0.3)
    samples = [policy.backoff_s(5) for _ in range(200)]
    assert all(0 <= s <= 0.3 for s in samples)
    assert len(set(samples)) > 100


def test_token_bucket_allows_the_burst_then_the_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(100, 100, clock)
    assert sum(bucket.try_acquire() for _ in range(150)) == 100
    clock.now = 0.5
    assert sum(bucket.try_acquire() for _ in range(100)) == 50


def test_keyed_limiter_is_bounded() -> None:
    limiter = KeyedLimiter(1, 1, max_keys=3, clock=Clock())
    for key in "abcdef":
        limiter.spend(key)
    assert len(limiter) == 3
    assert limiter.allowed("a")  # evicted, so it starts fresh
    assert not limiter.allowed("f")
