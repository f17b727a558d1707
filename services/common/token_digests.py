"""What is known about tokens that authenticated, by the token's SHA-256 digest, until each expires.

The one primitive behind the token verifier's cache of verified tokens (``auth_tokens``) and the
gateway's known callers (``ratelimit.KnownTokens``): keyed by a digest (memory per entry does not
grow with the token, and no token text is kept), an entry answers only before its ``expires_at``
(wall-clock seconds, the unit of a JWT's ``exp``), and beyond ``max_entries`` the least recently
used goes first. Callers put only tokens that authenticated: a look-up of an unknown token adds,
moves and evicts nothing, so a flood of forged tokens can neither grow it nor push real callers out.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

V = TypeVar("V")


class TokenDigestCache(Generic[V]):
    def __init__(self, max_entries: int, clock: Callable[[], float] = time.time) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be >= 1, got {max_entries}")
        self._max = max_entries
        self._clock = clock
        self._entries: OrderedDict[bytes, tuple[V, float]] = OrderedDict()

    @staticmethod
    def _digest(token: str) -> bytes:
        return hashlib.sha256(token.encode()).digest()

    def get(self, token: str) -> V | None:
        key = self._digest(token)
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[1] <= self._clock():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry[0]

    def put(self, token: str, value: V, expires_at: float) -> None:
        key = self._digest(token)
        self._entries[key] = (value, expires_at)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
