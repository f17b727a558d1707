"""How the gateway authenticates callers: local signature check, then auth's word, cached.

Internal services (metadata, rating) verify tokens locally with the published public keys: no
network hop per call and no dependency on auth being up. The gateway is the edge, so it also
asks auth's ValidateToken, which knows whether the user still exists (the revocation hook): a
token is checked locally first (garbage never costs a network call), then by auth, and auth's
answer is cached for at most ``cache_ttl_s`` and never past the token's expiry. When auth is
unavailable, the local verification stands and the degradation is logged and counted.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from prometheus_client import REGISTRY, CollectorRegistry, Counter

from services.common.auth_tokens import Identity, InvalidToken, TokenVerifier
from services.common.errors import DeadlineExceeded, Unauthenticated, Unavailable
from services.common.token_digests import TokenDigestCache
from services.movie.gateways import AuthGateway

log = logging.getLogger(__name__)


class RemoteAuthenticator:
    def __init__(
        self,
        local: TokenVerifier,
        auth: AuthGateway,
        *,
        cache_ttl_s: float = 30.0,
        max_entries: int = 10_000,
        timeout_s: float = 0.5,
        metrics_registry: CollectorRegistry = REGISTRY,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._local = local
        self._auth = auth
        self._ttl = cache_ttl_s
        self._timeout = timeout_s
        self._clock = clock
        self._confirmed: TokenDigestCache[Identity] = TokenDigestCache(max_entries, clock)
        outcomes = Counter(
            "movie_token_validations_total",
            "Token validations by the gateway, by where the answer came from.",
            ["outcome"],
            registry=metrics_registry,
        )
        self._cached = outcomes.labels("cache")
        self._remote = outcomes.labels("auth")
        self._fallback = outcomes.labels("local_fallback")

    async def authenticate(self, token: str) -> Identity:
        identity = self._local.verify(token)
        cached = self._confirmed.get(token)
        if cached is not None:
            self._cached.inc()
            return cached
        try:
            username, expires_at = await self._auth.validate(token, self._timeout)
        except Unauthenticated as exc:
            raise InvalidToken(exc.message) from None
        except (Unavailable, DeadlineExceeded) as exc:
            self._fallback.inc()
            log.warning("auth unavailable; token verified locally only", extra={"error": exc.message})
            return identity
        self._remote.inc()
        confirmed = Identity(username, expires_at)
        self._confirmed.put(token, confirmed, min(self._clock() + self._ttl, float(expires_at)))
        return confirmed
