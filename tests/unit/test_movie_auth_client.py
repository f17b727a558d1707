"""The gateway's authenticator: local check first, auth's answer cached for a while, never past exp."""

from __future__ import annotations

import time
from typing import Any, cast

import pytest
from prometheus_client import CollectorRegistry

from services.common.auth_tokens import (
    InvalidToken,
    KeyRing,
    StaticKeySource,
    TokenIssuer,
    TokenSettings,
    TokenVerifier,
)
from services.common.errors import Unauthenticated
from services.movie.auth_client import RemoteAuthenticator
from services.movie.gateways import AuthGateway
from tests.unit.helpers import Clock

SETTINGS = TokenSettings(issuer="firedrill-auth", audience="firedrill-movie", ttl_s=600, leeway_s=0)


class FakeAuth:
    """auth's ValidateToken: knows the users in ``users``."""

    def __init__(self, users: set[str]) -> None:
        self.users = users
        self.asked: list[str] = []

    async def validate(self, token: str, timeout_s: float) -> tuple[str, int]:
        self.asked.append(token)
        identity = TokenVerifier(StaticKeySource(RING), SETTINGS).verify(token)
        if identity.username not in self.users:
            raise Unauthenticated("no such user")
        return identity.username, identity.expires_at


RING = KeyRing.generate()


def authenticator(auth: FakeAuth, clock: Clock, ttl_s: float = 30.0) -> RemoteAuthenticator:
    return RemoteAuthenticator(
        TokenVerifier(StaticKeySource(RING), SETTINGS),
        cast(AuthGateway, cast(Any, auth)),
        cache_ttl_s=ttl_s,
        metrics_registry=CollectorRegistry(),
        clock=clock,
    )


async def test_auth_is_asked_once_per_token_within_the_cache_ttl() -> None:
    clock = Clock(time.time())
    auth = FakeAuth({"ada"})
    gateway = authenticator(auth, clock)
    token, _ = TokenIssuer(StaticKeySource(RING), SETTINGS).issue("ada")
    assert (await gateway.authenticate(token)).username == "ada"
    clock.now += 29
    assert (await gateway.authenticate(token)).username == "ada"
    assert auth.asked == [token]
    clock.now += 1
    assert (await gateway.authenticate(token)).username == "ada"
    assert auth.asked == [token, token]


async def test_a_refusal_by_auth_is_not_remembered_as_a_success() -> None:
    clock = Clock(time.time())
    auth = FakeAuth(set())
    gateway = authenticator(auth, clock)
    token, _ = TokenIssuer(StaticKeySource(RING), SETTINGS).issue("gone")
    for _ in range(2):
        with pytest.raises(InvalidToken, match="no such user"):
            await gateway.authenticate(token)
    assert auth.asked == [token, token]


async def test_a_forged_token_never_reaches_auth() -> None:
    auth = FakeAuth({"ada"})
    gateway = authenticator(auth, Clock(time.time()))
    stranger = KeyRing.generate()
    kid = RING.signing_key()[0]
    forged, _ = TokenIssuer(StaticKeySource(KeyRing(kid, {kid: stranger.signing_key()[1]}, {})), SETTINGS).issue("ada")
    with pytest.raises(InvalidToken, match="bad token signature"):
        await gateway.authenticate(forged)
    assert auth.asked == []
