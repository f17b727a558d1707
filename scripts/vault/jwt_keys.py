"""The JWT signing key set kept in Vault KV, in the file format of ``services.common.auth_tokens``.

    {"active_kid": "ed25519-…", "max_token_lifetime_s": 3600,
     "keys": [{"kid": "ed25519-…", "private_key": "<PKCS8 PEM>", "public_key": "<SPKI PEM>", "created_at": …},
              {"kid": "ed25519-…", "public_key": "<SPKI PEM>", "created_at": …, "retired_at": …}]}

Rotation makes a new key active; the previous active key loses its private half (nothing signs
with it any more) but keeps its public half, so tokens it signed keep validating, until
``retired_at + max_token_lifetime_s`` has passed: no token signed with it can still be valid
then, and the key is dropped. The public half of the set (``public_set``) is what verifiers get.
"""

from __future__ import annotations

import time
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.common.auth_tokens import kid_for

# The longest a token can live (auth's FIREDRILL_JWT_TTL_S default is 900 s) plus clock leeway,
# with room to spare. A previous key keeps verifying this long after it stopped signing.
DEFAULT_MAX_TOKEN_LIFETIME_S = 3600


def new_key() -> dict[str, Any]:
    private = Ed25519PrivateKey.generate()
    public = private.public_key()
    return {
        "kid": kid_for(public),
        "private_key": private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode(),
        "public_key": public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode(),
        "created_at": int(time.time()),
    }


def new_key_set(max_token_lifetime_s: int = DEFAULT_MAX_TOKEN_LIFETIME_S) -> dict[str, Any]:
    key = new_key()
    return {"active_kid": key["kid"], "max_token_lifetime_s": max_token_lifetime_s, "keys": [key]}


def rotate(
    key_set: dict[str, Any], *, now: float | None = None, max_token_lifetime_s: int | None = None
) -> tuple[dict[str, Any], list[str]]:
    """A new set with a fresh active key; returns it and the kids dropped as no longer needed."""
    moment = int(time.time() if now is None else now)
    lifetime = int(max_token_lifetime_s or key_set.get("max_token_lifetime_s") or DEFAULT_MAX_TOKEN_LIFETIME_S)
    fresh = new_key()
    kept: list[dict[str, Any]] = [fresh]
    dropped: list[str] = []
    for entry in key_set.get("keys", []):
        entry = dict(entry)
        if entry.get("kid") == key_set.get("active_kid"):
            entry.pop("private_key", None)
            entry["retired_at"] = moment
        retired = entry.get("retired_at")
        if retired is not None and int(retired) + lifetime < moment:
            dropped.append(str(entry.get("kid")))
            continue
        entry.pop("private_key", None)
        kept.append(entry)
    return {"active_kid": fresh["kid"], "max_token_lifetime_s": lifetime, "keys": kept}, dropped


def public_set(key_set: dict[str, Any]) -> dict[str, Any]:
    """The verification half: every kid's public key, no private key, no active kid."""
    return {
        "keys": [
            {"kid": entry["kid"], "public_key": entry["public_key"]}
            for entry in key_set.get("keys", [])
            if "public_key" in entry
        ]
    }
