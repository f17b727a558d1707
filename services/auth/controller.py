"""Auth business logic: tokens for correct passwords, throttled failures, token validation."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path

from services.auth.model import User, validate_password, validate_username
from services.auth.passwords import Passwords, generate_password
from services.auth.repository import UserRepository
from services.common.auth_tokens import Identity, InvalidToken, TokenIssuer, TokenVerifier, write_private_file
from services.common.errors import ResourceExhausted, Unauthenticated
from services.common.ratelimit import KeyedLimiter

log = logging.getLogger(__name__)

WRONG_CREDENTIALS = "invalid username or password"


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    expires_at: int


class AuthController:
    def __init__(
        self,
        users: UserRepository,
        passwords: Passwords,
        issuer: TokenIssuer,
        verifier: TokenVerifier,
        failures: KeyedLimiter,
    ) -> None:
        self._users = users
        self._passwords = passwords
        self._issuer = issuer
        self._verifier = verifier
        self._failures = failures

    async def get_token(self, username: str, password: str, peer: str = "") -> IssuedToken:
        # Malformed names and passwords get the same answer as wrong ones: nothing to probe.
        try:
            validate_username(username)
            validate_password(password)
        except Exception:
            raise Unauthenticated(WRONG_CREDENTIALS) from None
        keys = (f"user:{username.lower()}", f"peer:{peer}")
        for key in keys:
            if not self._failures.allowed(key):
                raise ResourceExhausted(f"too many failed attempts; retry in {self._failures.retry_after_s(key):.0f}s")
        user = await self._users.get(username)
        if not await self._passwords.verify(user.password_hash if user else None, password) or user is None:
            for key in keys:
                self._failures.spend(key)
            log.info("login refused", extra={"peer": peer})
            raise Unauthenticated(WRONG_CREDENTIALS)
        if self._passwords.needs_rehash(user.password_hash):
            await self._users.put(User(username, await self._passwords.hash(password)))
        token, expires_at = self._issuer.issue(username)
        return IssuedToken(token, expires_at)

    async def validate_token(self, token: str) -> Identity:
        identity = self._verifier.verify(token)
        if await self._users.get(identity.username) is None:
            raise InvalidToken("the token's user no longer exists")
        return identity

    async def set_password(self, username: str, password: str) -> None:
        validate_username(username)
        validate_password(password)
        await self._users.put(User(username, await self._passwords.hash(password)))


async def bootstrap_demo_user(
    controller: AuthController, users: UserRepository, username: str, password_file: Path
) -> bool:
    """Make sure the demo user exists with the password in ``password_file`` (0600); True when (re)set.

    A new password is generated when the user or the file is missing; an existing pair is kept,
    so restarts do not change the operator's password.
    """
    if await users.get(username) is not None and await asyncio.to_thread(password_file.is_file):
        return False
    password = generate_password()
    await asyncio.to_thread(write_private_file, password_file, password + "\n")
    await controller.set_password(username, password)
    log.warning("demo user password written", extra={"user": username, "password_file": str(password_file)})
    return True
