"""Token buckets, keyed buckets bounded in memory, and the gateway's admission order (``CallerLimits``).

``TokenBucket`` is one budget; ``KeyedLimiter`` is one bucket per key, the least recently used
dropped beyond ``max_keys`` (auth's failed logins per user and address; the gateway's callers).

``CallerLimits`` is the order both of movie's fronts (gRPC and HTTP/JSON) admit a request in,
so that nobody can spend somebody else's budget:

1. before authentication, only a cheap look-up: a token that authenticated before is held to its
   caller's budget; any other token to its client address's budget of *failed* authentications
   (a forged-token flood is refused without a signature check once its address has failed too
   often — verifying costs more CPU than serving the refusal);
2. authentication (the caller's own code); a refused token spends its address's budget;
3. the caller's own budget (the token's subject), then the shared one: an authenticated caller
   over its budget, or an unauthenticated one, never spends the total that everybody shares.

Requests without any token are refused by authentication before step 1 and spend nothing: the
refusal costs no more than counting it would, and a cheap flood of them must not close the
address budget that other users behind the same address (NAT, proxy) need for a fresh login.
"""

from __future__ import annotations

import ipaddress
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from services.common.errors import ResourceExhausted
from services.common.token_digests import TokenDigestCache


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
        if max_keys < 1:
            raise ValueError(f"max_keys must be >= 1, got {max_keys}")
        self.rate = rate
        self._burst = burst
        self._max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def _bucket(self, key: str) -> TokenBucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = TokenBucket(self.rate, self._burst, self._clock)
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

    def try_acquire(self, key: str) -> bool:
        return self._bucket(key).try_acquire()

    def retry_after_s(self, key: str) -> float:
        return self._bucket(key).retry_after_s()

    def __len__(self) -> int:
        return len(self._buckets)


class KnownTokens(TokenDigestCache[str]):
    """Tokens that authenticated, with their subject, until they expire; LRU-bounded."""

    def subject(self, token: str) -> str | None:
        return self.get(token)

    def remember(self, token: str, subject: str, expires_at: float) -> None:
        self.put(token, subject, expires_at)


def address_key(address: str | None) -> str:
    """The key an address's budget is kept under: the IPv4 address, or the IPv6 /64 (one host's
    usual allotment, so one host cannot mint fresh budgets — or evict others' — by changing its low bits)."""
    if not address:
        return "unknown"
    try:
        ip = ipaddress.ip_address(address.strip("[]").split("%", 1)[0])
    except ValueError:
        return address[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


@dataclass(frozen=True, slots=True)
class Budget:
    """``rate`` requests per second, bursts up to ``burst``."""

    rate: float
    burst: int


class CallerLimits:
    """The shared budget, one per caller, and one of failed authentications per client address."""

    def __init__(
        self,
        total: Budget,
        per_caller: Budget,
        per_address: Budget,
        *,
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.total = TokenBucket(total.rate, total.burst, clock)
        self.callers = KeyedLimiter(per_caller.rate, per_caller.burst, max_keys=max_keys, clock=clock)
        self.addresses = KeyedLimiter(per_address.rate, per_address.burst, max_keys=max_keys, clock=clock)
        self.known = KnownTokens(max_keys, wall_clock)

    def before_authentication(self, token: str, address: str | None) -> None:
        """Refuse, without verifying the token, a known caller over its budget or an address that
        failed authentication too often."""
        subject = self.known.subject(token)
        if subject is not None:
            key = f"user:{subject}"
            if not self.callers.allowed(key):
                raise self._exhausted(f"rate limit of {self.callers.rate:g} requests/s per caller exceeded", key)
            return
        key = address_key(address)
        if not self.addresses.allowed(key):
            raise ResourceExhausted(
                f"too many unauthenticated requests from this address; retry in "
                f"{self.addresses.retry_after_s(key):.1f}s"
            )

    def authentication_failed(self, address: str | None) -> None:
        self.addresses.spend(address_key(address))

    def authenticated(self, token: str, subject: str, expires_at: float) -> None:
        """Spend the caller's budget, then the shared one (refusing when either is empty)."""
        self.known.remember(token, subject, expires_at)
        key = f"user:{subject}"
        if not self.callers.try_acquire(key):
            raise self._exhausted(f"rate limit of {self.callers.rate:g} requests/s per caller exceeded", key)
        if not self.total.try_acquire():
            raise ResourceExhausted(
                f"rate limit of {self.total.rate:g} requests/s exceeded; retry in {self.total.retry_after_s():.3f}s"
            )

    def _exhausted(self, message: str, key: str) -> ResourceExhausted:
        return ResourceExhausted(f"{message}; retry in {self.callers.retry_after_s(key):.3f}s")
