"""Token buckets: a global one for the gateway (100 req/s, burst 100 by default:
FIREDRILL_RATE_LIMIT_RPS / _BURST) and a keyed one for throttling repeated failures per key
(auth's wrong passwords), bounded in memory."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable


class TokenBucket:
    """``rate`` tokens per second up to ``burst``; ``try_acquire`` never waits."""

    def __init__(self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError(f"rate must be > 0 and burst >= 1, got rate={rate} burst={burst}")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = burst
        self._updated = clock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
        self._updated = now

    def try_acquire(self, tokens: float = 1.0) -> bool:
        self._refill()
        if self._tokens >= tokens:
            self._tokens -= tokens
            return True
        return False

    def available(self) -> float:
        self._refill()
        return self._tokens

    def retry_after_s(self, tokens: float = 1.0) -> float:
        """How long until ``tokens`` are available (0 when they are now)."""
        self._refill()
        return max(0.0, (tokens - self._tokens) / self.rate)


class KeyedLimiter:
    """One bucket per key, the least recently used dropped beyond ``max_keys`` (memory stays bounded)."""

    def __init__(
        self, rate: float, burst: float, *, max_keys: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._rate = rate
        self._burst = burst
        self._max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def _bucket(self, key: str) -> TokenBucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = TokenBucket(self._rate, self._burst, self._clock)
            self._buckets[key] = bucket
            while len(self._buckets) > self._max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
        return bucket

    def allowed(self, key: str) -> bool:
        """True while the key still has budget (does not spend any)."""
        return self._bucket(key).available() >= 1.0

    def spend(self, key: str) -> None:
        self._bucket(key).try_acquire()

    def retry_after_s(self, key: str) -> float:
        return self._bucket(key).retry_after_s()

    def __len__(self) -> int:
        return len(self._buckets)
