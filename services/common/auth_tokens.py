"""JWT signing and verification keys, token issuing and strict token verification.

Algorithm: EdDSA (Ed25519). It is asymmetric, so the services that only *verify* tokens hold a
public key and cannot mint tokens (HS256 would hand every verifier the power to forge); its
signatures are deterministic (no per-signature nonce to get wrong, unlike ECDSA/ES256), keys and
signatures are small and verification is fast, and there are no curve or parameter choices left
to misconfigure.

Keys live in a ``KeyRing``: signing keys by ``kid`` with one ``active_kid`` (auth only) and
verification keys by ``kid`` (everyone). A ``KeySource`` hands out the current ring; the
file-backed one re-reads its file when it changes, which is how a Vault-rendered key set
(``template`` with ``change_mode``) rotates keys without a restart: a new active key signs, the
previous ones keep verifying until they are dropped from the set. Key file format (JSON)::

    {"active_kid": "k2", "keys": [{"kid": "k2", "private_key": "<PKCS8 PEM>"},
                                  {"kid": "k1", "public_key": "<SPKI PEM>"}]}

A bare PEM (private or public Ed25519 key) is accepted too; its kid is derived from the key.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from services.common.config import ConfigError, Env, state_dir
from services.common.errors import Unauthenticated
from services.common.token_digests import TokenDigestCache

log = logging.getLogger(__name__)

ALGORITHM = "EdDSA"
MAX_TOKEN_CHARS = 4096
MAX_SUBJECT_CHARS = 128
REQUIRED_CLAIMS = ("exp", "iat", "nbf", "iss", "aud", "sub")


class KeyFileError(ValueError):
    """A key file that cannot be used."""


class InvalidToken(Unauthenticated):
    """The token was refused; the message says why without echoing the token."""


def kid_for(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "ed25519-" + hashlib.sha256(raw).hexdigest()[:16]


def _public_pem(key: Ed25519PublicKey) -> str:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def _private_pem(key: Ed25519PrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def _load_private(pem: str) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError("private key is not an Ed25519 key (EdDSA is the configured algorithm)")
    return key


def _load_public(pem: str) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(pem.encode())
    if not isinstance(key, Ed25519PublicKey):
        raise KeyFileError("public key is not an Ed25519 key (EdDSA is the configured algorithm)")
    return key


@dataclass(frozen=True)
class KeyRing:
    active_kid: str | None = None
    signing_keys: Mapping[str, Ed25519PrivateKey] = field(default_factory=dict)
    verification_keys: Mapping[str, Ed25519PublicKey] = field(default_factory=dict)

    @classmethod
    def generate(cls) -> KeyRing:
        key = Ed25519PrivateKey.generate()
        kid = kid_for(key.public_key())
        return cls(kid, {kid: key}, {kid: key.public_key()})

    def signing_key(self) -> tuple[str, Ed25519PrivateKey]:
        if self.active_kid is None or self.active_kid not in self.signing_keys:
            raise KeyFileError("no active signing key in the key ring")
        return self.active_kid, self.signing_keys[self.active_kid]

    @classmethod
    def parse(cls, text: str) -> KeyRing:
        stripped = text.strip()
        try:
            if stripped.startswith("-----BEGIN"):
                if "PRIVATE KEY" in stripped.split("\n", 1)[0]:
                    private = _load_private(stripped)
                    kid = kid_for(private.public_key())
                    return cls(kid, {kid: private}, {kid: private.public_key()})
                public = _load_public(stripped)
                return cls(None, {}, {kid_for(public): public})
            data = json.loads(stripped)
        except (ValueError, TypeError) as exc:
            raise KeyFileError(f"unreadable key material: {exc.__class__.__name__}") from None
        if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
            raise KeyFileError('a key set is a JSON object with a "keys" list')
        signing: dict[str, Ed25519PrivateKey] = {}
        verifying: dict[str, Ed25519PublicKey] = {}
        for entry in data["keys"]:
            if not isinstance(entry, dict) or not isinstance(entry.get("kid"), str) or not entry["kid"]:
                raise KeyFileError('every key needs a non-empty "kid"')
            kid = entry["kid"]
            try:
                if isinstance(entry.get("private_key"), str):
                    private = _load_private(entry["private_key"])
                    signing[kid] = private
                    verifying[kid] = private.public_key()
                elif isinstance(entry.get("public_key"), str):
                    verifying[kid] = _load_public(entry["public_key"])
                else:
                    raise KeyFileError(f"key {kid!r} has neither private_key nor public_key")
            except ValueError as exc:
                raise KeyFileError(f"key {kid!r}: {exc}") from None
        active = data.get("active_kid")
        if active is not None and (not isinstance(active, str) or active not in signing):
            raise KeyFileError("active_kid must name a key that has a private_key")
        return cls(active, signing, verifying)

    def to_json(self, *, include_private: bool) -> str:
        keys: list[dict[str, str]] = []
        for kid, public in sorted(self.verification_keys.items()):
            if include_private and kid in self.signing_keys:
                keys.append({"kid": kid, "alg": ALGORITHM, "private_key": _private_pem(self.signing_keys[kid])})
            else:
                keys.append({"kid": kid, "alg": ALGORITHM, "public_key": _public_pem(public)})
        body: dict[str, Any] = {"keys": keys}
        if include_private and self.active_kid is not None:
            body["active_kid"] = self.active_kid
        return json.dumps(body, indent=2) + "\n"


def write_private_file(path: Path, content: str, mode: int = 0o600) -> None:
    """Write ``content`` atomically, readable only by its owner from the first byte."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(content)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def ensure_key_file(path: Path) -> bool:
    """Create a fresh signing key set at ``path`` unless one exists; True when created."""
    if path.exists():
        return False
    write_private_file(path, KeyRing.generate().to_json(include_private=True))
    return True


class KeySource(Protocol):
    def current(self) -> KeyRing:
        """The keys now: the same ``KeyRing`` object until they change (``TokenVerifier`` empties
        its cache of verified tokens whenever a different object comes back)."""
        ...


class StaticKeySource:
    def __init__(self, ring: KeyRing) -> None:
        self._ring = ring

    def current(self) -> KeyRing:
        return self._ring


class FileKeySource:
    """A key ring read from a file and re-read when the file changes (checked at most once a second).

    A missing file gives an empty ring (every token is refused, nothing crashes, and the wait is
    logged once): a verifier may start before its keys are rendered or published, and serves what
    needs no token meanwhile. A broken new file keeps the previous ring.
    """

    def __init__(
        self,
        path: Path,
        *,
        check_interval_s: float = 1.0,
        on_change: Callable[[KeyRing], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._path = path
        self._interval = check_interval_s
        self._on_change = on_change
        self._clock = clock
        self._lock = threading.Lock()
        self._ring = KeyRing()
        self._stamp: tuple[int, int] | None = None
        self._checked_at = float("-inf")
        self._missing_logged = False
        self.reload()

    @property
    def path(self) -> Path:
        return self._path

    def reload(self) -> KeyRing:
        with self._lock:
            self._checked_at = self._clock()
            try:
                stat = self._path.stat()
            except FileNotFoundError:
                if self._stamp is None and not self._missing_logged:
                    self._missing_logged = True
                    log.warning(
                        f"waiting for the key file {self._path}: tokens are refused until it appears",
                        extra={"path": str(self._path)},
                    )
                return self._ring
            stamp = (stat.st_mtime_ns, stat.st_size)
            if stamp == self._stamp:
                return self._ring
            try:
                ring = KeyRing.parse(self._path.read_text(encoding="utf-8"))
            except (OSError, KeyFileError) as exc:
                log.error(
                    "key file not loaded; keeping the previous keys", extra={"path": str(self._path), "error": str(exc)}
                )
                return self._ring
            self._ring, self._stamp = ring, stamp
            log.info("keys loaded", extra={"path": str(self._path), "kids": sorted(ring.verification_keys)})
        if self._on_change is not None:
            self._on_change(ring)
        return ring

    def current(self) -> KeyRing:
        if self._clock() - self._checked_at >= self._interval:
            return self.reload()
        return self._ring


@dataclass(frozen=True, slots=True)
class TokenSettings:
    issuer: str
    audience: str
    ttl_s: int = 900
    leeway_s: int = 5


@dataclass(frozen=True, slots=True)
class Identity:
    username: str
    expires_at: int


class TokenIssuer:
    def __init__(self, keys: KeySource, settings: TokenSettings, clock: Callable[[], float] = time.time) -> None:
        self._keys = keys
        self._settings = settings
        self._clock = clock

    def issue(self, username: str) -> tuple[str, int]:
        kid, key = self._keys.current().signing_key()
        now = int(self._clock())
        expires_at = now + self._settings.ttl_s
        claims = {
            "iss": self._settings.issuer,
            "aud": self._settings.audience,
            "sub": username,
            "iat": now,
            "nbf": now,
            "exp": expires_at,
            "jti": secrets.token_hex(8),
        }
        token = jwt.encode(claims, key, algorithm=ALGORITHM, headers={"kid": kid, "typ": "JWT"})
        return token, expires_at


class TokenVerifier:
    """Accepts only well-formed EdDSA tokens from our issuer, for our audience, in their validity window.

    Every service verifies the caller's token on every call, and the signature check is most of
    that cost, so a token that verified is remembered (``TokenDigestCache``, at most
    ``cache_entries``; 0 turns it off) and served from memory until its ``exp`` — never later,
    and never after the key ring changed: a reload may have dropped the token's key, so the
    cache is emptied and every token is checked against the new ring. Refused tokens are never
    remembered, so a forged one is checked in full every time.
    """

    def __init__(
        self,
        keys: KeySource,
        settings: TokenSettings,
        *,
        cache_entries: int = 10_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._keys = keys
        self._settings = settings
        self._verified: TokenDigestCache[Identity] | None = (
            TokenDigestCache(cache_entries, clock) if cache_entries > 0 else None
        )
        self._ring_of_verified: KeyRing | None = None

    def verify(self, token: object) -> Identity:
        ring = self._keys.current()
        if self._verified is None:
            return self._verify_signed(token, ring)
        if ring is not self._ring_of_verified:
            self._verified.clear()
            self._ring_of_verified = ring
        if isinstance(token, str) and len(token) <= MAX_TOKEN_CHARS:
            known = self._verified.get(token)
            if known is not None:
                return known
        identity = self._verify_signed(token, ring)
        if isinstance(token, str):
            self._verified.put(token, identity, identity.expires_at)
        return identity

    def _verify_signed(self, token: object, ring: KeyRing) -> Identity:
        if not isinstance(token, str) or not token:
            raise InvalidToken("missing token")
        if len(token) > MAX_TOKEN_CHARS:
            raise InvalidToken(f"token longer than {MAX_TOKEN_CHARS} characters")
        if not token.isascii() or token.count(".") != 2:
            raise InvalidToken("malformed token")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise InvalidToken("malformed token header") from None
        if header.get("alg") != ALGORITHM:
            raise InvalidToken(f"token algorithm not accepted (only {ALGORITHM})")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise InvalidToken("token has no key id")
        key = ring.verification_keys.get(kid)
        if key is None:
            raise InvalidToken("token signed with an unknown key")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=self._settings.audience,
                issuer=self._settings.issuer,
                leeway=self._settings.leeway_s,
                options={"require": list(REQUIRED_CLAIMS), "strict_aud": True},
            )
        except jwt.ExpiredSignatureError:
            raise InvalidToken("token expired") from None
        except jwt.ImmatureSignatureError:
            raise InvalidToken("token not yet valid") from None
        except jwt.InvalidAudienceError:
            raise InvalidToken("token is for another audience") from None
        except jwt.InvalidIssuerError:
            raise InvalidToken("token from another issuer") from None
        except jwt.InvalidSignatureError:
            raise InvalidToken("bad token signature") from None
        except jwt.MissingRequiredClaimError as exc:
            raise InvalidToken(f"token lacks the {exc.claim} claim") from None
        except jwt.InvalidTokenError:
            raise InvalidToken("invalid token") from None
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject or len(subject) > MAX_SUBJECT_CHARS:
            raise InvalidToken("token subject is not a user name")
        exp = claims["exp"]
        return Identity(subject, int(exp))


# ---- configuration shared by the issuer (auth) and every verifier ------------------------------

DEFAULT_ISSUER = "firedrill-auth"
DEFAULT_AUDIENCE = "firedrill-movie"


def token_settings_from_env(env: Env) -> TokenSettings:
    return TokenSettings(
        issuer=env.text("FIREDRILL_JWT_ISSUER", DEFAULT_ISSUER),
        audience=env.text("FIREDRILL_JWT_AUDIENCE", DEFAULT_AUDIENCE),
        ttl_s=env.integer("FIREDRILL_JWT_TTL_S", 900, minimum=30, maximum=86400),
        leeway_s=env.integer("FIREDRILL_JWT_LEEWAY_S", 5, minimum=0, maximum=120),
    )


def jwt_dir(environ: Mapping[str, str]) -> Path:
    """Where the drill keeps generated JWT keys: ``<state>/secrets/jwt``."""
    return state_dir(environ) / "secrets" / "jwt"


def public_keys_path(env: Env, profile_name: str, environ: Mapping[str, str]) -> Path:
    """The verification key set: FIREDRILL_JWT_PUBLIC_KEYS_FILE, or auth's drill default."""
    path = env.optional_path("FIREDRILL_JWT_PUBLIC_KEYS_FILE")
    if path is not None:
        return path
    if profile_name != "drill":
        raise ConfigError("FIREDRILL_JWT_PUBLIC_KEYS_FILE", "required outside the drill profile")
    return jwt_dir(environ) / "verification-keys.json"
