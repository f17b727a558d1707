"""The verifier's cache of verified tokens: served until exp, dropped on a key ring change, never
holding a refused token, bounded however many tokens arrive.

Time is one fake clock for everything: the issuer, the cache and PyJWT's own expiry check (its
``datetime.now``), so a token really expires in the test without waiting for it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

import jwt
import jwt.api_jwt
import pytest

from services.common.auth_tokens import (
    FileKeySource,
    InvalidToken,
    KeyRing,
    StaticKeySource,
    TokenIssuer,
    TokenSettings,
    TokenVerifier,
)
from services.common.token_digests import TokenDigestCache
from tests.unit.helpers import Clock

SETTINGS = TokenSettings(issuer="firedrill-auth", audience="firedrill-movie", ttl_s=60, leeway_s=0)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock(float(int(time.time())))

    class FakeNow(datetime):
        @classmethod
        def now(cls, tz: tzinfo | None = None) -> FakeNow:
            moment = datetime.fromtimestamp(fake.now, tz)
            return cls.fromtimestamp(moment.timestamp(), tz)

    monkeypatch.setattr(jwt.api_jwt, "datetime", FakeNow)
    return fake


@pytest.fixture
def signature_checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every token that reached the full signature check, in order."""
    checked: list[str] = []
    real_decode: Callable[..., Any] = jwt.decode

    def counting_decode(token: str, *args: Any, **kwargs: Any) -> Any:
        checked.append(token)
        return real_decode(token, *args, **kwargs)

    monkeypatch.setattr(jwt, "decode", counting_decode)
    return checked


def with_bad_signature(token: str) -> str:
    """The same header and claims with one signature character changed (not the last one, whose
    low bits are padding that base64 decoding ignores)."""
    head, _, signature = token.rpartition(".")
    middle = len(signature) // 2
    replacement = "A" if signature[middle] != "A" else "B"
    return f"{head}.{signature[:middle]}{replacement}{signature[middle + 1 :]}"


def test_a_verified_token_is_answered_from_the_cache(clock: Clock, signature_checks: list[str]) -> None:
    ring = KeyRing.generate()
    token, _ = TokenIssuer(StaticKeySource(ring), SETTINGS, clock).issue("ada")
    verifier = TokenVerifier(StaticKeySource(ring), SETTINGS, clock=clock)
    assert verifier.verify(token).username == "ada"
    assert verifier.verify(token).username == "ada"
    assert signature_checks == [token]


def test_the_cache_can_be_turned_off(clock: Clock, signature_checks: list[str]) -> None:
    ring = KeyRing.generate()
    token, _ = TokenIssuer(StaticKeySource(ring), SETTINGS, clock).issue("ada")
    verifier = TokenVerifier(StaticKeySource(ring), SETTINGS, cache_entries=0, clock=clock)
    verifier.verify(token)
    verifier.verify(token)
    assert signature_checks == [token, token]


def test_a_cached_token_is_refused_once_it_expires(clock: Clock, signature_checks: list[str]) -> None:
    ring = KeyRing.generate()
    token, expires_at = TokenIssuer(StaticKeySource(ring), SETTINGS, clock).issue("ada")
    verifier = TokenVerifier(StaticKeySource(ring), SETTINGS, clock=clock)
    verifier.verify(token)
    clock.now = expires_at - 1
    assert verifier.verify(token).username == "ada"
    assert len(signature_checks) == 1
    clock.now = expires_at
    with pytest.raises(InvalidToken, match="expired"):
        verifier.verify(token)
    assert len(signature_checks) == 2


def test_a_cached_token_is_refused_once_its_key_leaves_the_ring(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "verification-keys.json"
    old, new = KeyRing.generate(), KeyRing.generate()
    both = KeyRing(None, {}, {**old.verification_keys, **new.verification_keys})
    path.write_text(both.to_json(include_private=False))
    reload_clock = Clock(0.0)
    source = FileKeySource(path, check_interval_s=1.0, clock=reload_clock)
    verifier = TokenVerifier(source, SETTINGS, clock=clock)
    old_token, _ = TokenIssuer(StaticKeySource(old), SETTINGS, clock).issue("ada")
    new_token, _ = TokenIssuer(StaticKeySource(new), SETTINGS, clock).issue("ada")
    assert verifier.verify(old_token).username == "ada"
    assert verifier.verify(new_token).username == "ada"

    path.write_text(KeyRing(None, {}, dict(new.verification_keys)).to_json(include_private=False))
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 1_000_000))
    reload_clock.now = 2.0
    with pytest.raises(InvalidToken, match="unknown key"):
        verifier.verify(old_token)
    assert verifier.verify(new_token).username == "ada"


def test_forged_tokens_never_enter_the_cache(clock: Clock, signature_checks: list[str]) -> None:
    ring, stranger = KeyRing.generate(), KeyRing.generate()
    kid = ring.signing_key()[0]
    token, _ = TokenIssuer(StaticKeySource(ring), SETTINGS, clock).issue("ada")
    verifier = TokenVerifier(StaticKeySource(ring), SETTINGS, clock=clock)
    verifier.verify(token)
    # Signed by a key we do not hold, under our key id: the header and claims are all plausible.
    impostor_ring = KeyRing(kid, {kid: stranger.signing_key()[1]}, {})
    impostor, _ = TokenIssuer(StaticKeySource(impostor_ring), SETTINGS, clock).issue("ada")
    for forged in (with_bad_signature(token), impostor):
        for _ in range(2):
            with pytest.raises(InvalidToken, match="bad token signature"):
                verifier.verify(forged)
    assert signature_checks == [token] + [with_bad_signature(token)] * 2 + [impostor] * 2


def test_a_flood_of_forged_tokens_neither_grows_the_cache_nor_evicts_callers(
    clock: Clock, signature_checks: list[str]
) -> None:
    ring = KeyRing.generate()
    issuer = TokenIssuer(StaticKeySource(ring), SETTINGS, clock)
    verifier = TokenVerifier(StaticKeySource(ring), SETTINGS, cache_entries=3, clock=clock)
    callers = [issuer.issue(name)[0] for name in ("ada", "bob", "cy")]
    for token in callers:
        verifier.verify(token)
    for i in range(500):
        forged = with_bad_signature(issuer.issue(f"mallory-{i}")[0])
        with pytest.raises(InvalidToken):
            verifier.verify(forged)
    checks_before = len(signature_checks)
    assert [verifier.verify(token).username for token in callers] == ["ada", "bob", "cy"]
    assert len(signature_checks) == checks_before


def test_the_cache_holds_at_most_its_size_least_recently_used_first() -> None:
    cache: TokenDigestCache[str] = TokenDigestCache(3, Clock(0.0))
    for name in ("a", "b", "c"):
        cache.put(f"token-{name}", name, 10.0)
    assert cache.get("token-a") == "a"  # now the most recently used
    cache.put("token-d", "d", 10.0)
    assert len(cache) == 3
    assert cache.get("token-b") is None
    assert [cache.get(f"token-{name}") for name in ("a", "c", "d")] == ["a", "c", "d"]


def test_an_entry_answers_only_before_it_expires() -> None:
    clock = Clock(100.0)
    cache: TokenDigestCache[str] = TokenDigestCache(3, clock)
    cache.put("token", "ada", 200.0)
    clock.now = 199.9
    assert cache.get("token") == "ada"
    clock.now = 200.0
    assert cache.get("token") is None
    assert len(cache) == 0
