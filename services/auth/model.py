"""Users and the rules for user names and passwords."""

from __future__ import annotations

import re
from dataclasses import dataclass

from services.common.errors import InvalidArgument

USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
# argon2 cost does not depend on the password length, but parsing a megabyte must not be free.
MAX_PASSWORD_CHARS = 1024


@dataclass(frozen=True, slots=True)
class User:
    username: str
    password_hash: str


def validate_username(username: str) -> str:
    if not USERNAME.fullmatch(username):
        raise InvalidArgument("username must be 1 to 64 characters of letters, digits and . _ @ -")
    return username


def validate_password(password: str) -> str:
    if not password:
        raise InvalidArgument("password must not be empty")
    if len(password) > MAX_PASSWORD_CHARS:
        raise InvalidArgument(f"password must be at most {MAX_PASSWORD_CHARS} characters")
    return password
