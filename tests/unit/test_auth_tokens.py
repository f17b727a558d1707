"""The JWT attack list: each way to forge or misuse a token is refused, each in its own test."""

from __future__ import annotations

import base64
import json
import os
import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.common.auth_tokens import (
    MAX_TOKEN_CHARS,
    FileKeySource,
    InvalidToken,
    KeyFileError,
    KeyRing,
    StaticKeySource,
    TokenIssuer,
    TokenSettings,
    TokenVerifier,
    ensure_key_file,
)

SETTINGS = TokenSettings(issuer="firedrill-auth", audience="firedrill-movie", ttl_s=900, leeway_s=0)
RING = KeyRing.generate()
KID, KEY = RING.signing_key()
VERIFIER = TokenVerifier(StaticKeySource(KeyRing.parse(RING.to_json(include_private=False))), SETTINGS)


def claims(**overrides: object) -> dict[str, object]:
    now = int(time.time())
    base: dict[str, object] = {
        "iss": SETTINGS.issuer,
        "aud": SETTINGS.audience,
        "sub": "demo",
        "iat": now,
        "nbf": now,
        "exp": now + 60,
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def sign(payload: dict[str, object], key: object = KEY, alg: str = "EdDSA", kid: str | None = KID) -> str:
    headers = {"kid": kid} if kid is not None else {}
    return jwt.encode(payload, key, algorithm=alg, headers=headers)  # type: ignore[arg-type]


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def refused(token: object, reason: str | None = None) -> None:
    with pytest.raises(InvalidToken) as caught:
        VERIFIER.verify(token)
    if reason is not None:
        assert reason in caught.value.message


def test_a_valid_token_is_accepted() -> None:
    identity = VERIFIER.verify(sign(claims()))
    assert identity.username == "demo"


def test_issued_tokens_carry_exp_iat_iss_aud_and_kid() -> None:
    token, expires_at = TokenIssuer(StaticKeySource(RING), SETTINGS).issue("demo")
    header = jwt.get_unverified_header(token)
    body = jwt.decode(token, options={"verify_signature": False})
    assert header["kid"] == KID
    assert header["alg"] == "EdDSA"
    assert {"exp", "iat", "nbf", "iss", "aud", "sub"} <= set(body)
    assert body["exp"] == expires_at
    assert VERIFIER.verify(token).username == "demo"


def test_missing_token() -> None:
    refused("", "missing")
    refused(None, "missing")


def test_alg_none() -> None:
    header = b64(json.dumps({"alg": "none", "typ": "JWT", "kid": KID}).encode())
    refused(f"{header}.{b64(json.dumps(claims()).encode())}.", "algorithm")


def test_hs256_with_the_public_key_as_secret() -> None:
    public_pem = RING.verification_keys[KID].public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": KID}).encode())
    payload = b64(json.dumps(claims()).encode())
    import hashlib
    import hmac

    signature = b64(hmac.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest())
    refused(f"{header}.{payload}.{signature}", "algorithm")


def test_another_asymmetric_algorithm() -> None:
    refused(sign(claims(), ec.generate_private_key(ec.SECP256R1()), alg="ES256"), "algorithm")


def test_bad_signature_from_another_key() -> None:
    refused(sign(claims(), Ed25519PrivateKey.generate()), "signature")


def test_tampered_payload() -> None:
    header, _payload, signature = sign(claims()).split(".")
    forged = b64(json.dumps(claims(sub="admin")).encode())
    refused(f"{header}.{forged}.{signature}", "signature")


def test_expired() -> None:
    past = int(time.time()) - 3600
    refused(sign(claims(iat=past - 60, nbf=past - 60, exp=past)), "expired")


def test_not_yet_valid() -> None:
    future = int(time.time()) + 3600
    refused(sign(claims(nbf=future, exp=future + 60)), "not yet valid")


def test_issued_in_the_future() -> None:
    future = int(time.time()) + 3600
    refused(sign(claims(iat=future, exp=future + 60)))


def test_wrong_issuer() -> None:
    refused(sign(claims(iss="evil-auth")), "issuer")


def test_wrong_audience() -> None:
    refused(sign(claims(aud="another-app")), "audience")


def test_audience_list_is_not_accepted() -> None:
    refused(sign(claims(aud=[SETTINGS.audience, "other"])))


def test_missing_exp_claim() -> None:
    refused(sign(claims(exp=None)), "exp")


def test_missing_subject() -> None:
    refused(sign(claims(sub=None)), "sub")


def test_unknown_kid() -> None:
    refused(sign(claims(), kid="someone-else"), "unknown key")


def test_no_kid() -> None:
    refused(sign(claims(), kid=None), "key id")


@pytest.mark.parametrize("token", ["garbage", "a.b", "a.b.c.d", "é.é.é", "....", "eyJhbGciOi.x.y"])
def test_malformed(token: str) -> None:
    refused(token)


def test_oversized() -> None:
    huge = sign(claims(pad="x" * MAX_TOKEN_CHARS))
    refused(huge, "longer")


def test_key_ring_round_trip_keeps_private_keys_private() -> None:
    public = RING.to_json(include_private=False)
    assert "PRIVATE" not in public
    parsed = KeyRing.parse(public)
    assert parsed.active_kid is None
    assert KID in parsed.verification_keys
    with pytest.raises(KeyFileError):
        parsed.signing_key()


def test_bare_pem_private_key_is_a_ring() -> None:
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    ring = KeyRing.parse(pem)
    assert ring.signing_key()[1].public_key() == key.public_key()


def test_non_ed25519_keys_are_refused() -> None:
    pem = (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        .decode()
    )
    with pytest.raises(KeyFileError):
        KeyRing.parse(pem)


def test_generated_key_file_is_private(tmp_path: Path) -> None:
    path = tmp_path / "jwt" / "signing-keys.json"
    assert ensure_key_file(path) is True
    assert ensure_key_file(path) is False
    assert path.stat().st_mode & 0o777 == 0o600


def test_file_key_source_hot_reloads_a_rotation(tmp_path: Path) -> None:
    """Rotation: the new key signs, the old one keeps verifying until it is dropped."""
    path = tmp_path / "keys.json"
    old = KeyRing.generate()
    path.write_text(old.to_json(include_private=True))
    now = [0.0]
    source = FileKeySource(path, check_interval_s=1.0, clock=lambda: now[0])
    issuer = TokenIssuer(source, SETTINGS)
    verifier = TokenVerifier(source, SETTINGS)
    old_token, _ = issuer.issue("demo")

    new = KeyRing.generate()
    new_kid, new_key = new.signing_key()
    rotated = KeyRing(
        new_kid, {**old.signing_keys, new_kid: new_key}, {**old.verification_keys, **new.verification_keys}
    )
    path.write_text(rotated.to_json(include_private=True))
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 1_000_000))
    now[0] = 2.0
    new_token, _ = issuer.issue("demo")
    assert jwt.get_unverified_header(new_token)["kid"] == new_kid
    assert verifier.verify(old_token).username == "demo"
    assert verifier.verify(new_token).username == "demo"


def test_missing_key_file_refuses_tokens_without_crashing(tmp_path: Path) -> None:
    verifier = TokenVerifier(FileKeySource(tmp_path / "absent.json"), SETTINGS)
    with pytest.raises(InvalidToken):
        verifier.verify(sign(claims()))


def test_broken_key_file_keeps_previous_keys(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    path.write_text(RING.to_json(include_private=False))
    now = [0.0]
    source = FileKeySource(path, clock=lambda: now[0])
    path.write_text("{not json")
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 1_000_000))
    now[0] = 5.0
    assert KID in source.current().verification_keys
