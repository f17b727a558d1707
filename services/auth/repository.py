"""Where users are stored: the interface, an in-memory fake, and the SQLite implementation."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import aiosqlite

from services.auth.model import User
from services.common.sqlite_store import open_database, ping

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    username TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
"""


class UserRepository(Protocol):
    async def get(self, username: str) -> User | None: ...

    async def put(self, user: User) -> None:
        """Create or replace (idempotent)."""
        ...

    async def health(self) -> dict[str, object]: ...

    async def close(self) -> None: ...


class MemoryUserRepository:
    def __init__(self) -> None:
        self.users: dict[str, User] = {}

    async def get(self, username: str) -> User | None:
        return self.users.get(username)

    async def put(self, user: User) -> None:
        self.users[user.username] = user

    async def health(self) -> dict[str, object]:
        return {"ok": True}

    async def close(self) -> None:
        return None


class SqliteUserRepository:
    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db

    @classmethod
    async def open(cls, path: Path) -> SqliteUserRepository:
        return cls(await open_database(path, SCHEMA))

    async def get(self, username: str) -> User | None:
        async with self._db.execute(
            "SELECT username, password_hash FROM users WHERE username = ?", (username,)
        ) as cursor:
            row = await cursor.fetchone()
        return None if row is None else User(row[0], row[1])

    async def put(self, user: User) -> None:
        await self._db.execute(
            """
            INSERT INTO users (username, password_hash) VALUES (?, ?)
            ON CONFLICT(username) DO UPDATE SET
                password_hash = excluded.password_hash, updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
            """,
            (user.username, user.password_hash),
        )
        await self._db.commit()

    async def health(self) -> dict[str, object]:
        return await ping(self._db)

    async def close(self) -> None:
        await self._db.close()
