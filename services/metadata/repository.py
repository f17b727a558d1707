"""Where metadata is stored: the interface, an in-memory fake, and the SQLite implementation."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import aiosqlite

from services.common.sqlite_store import open_database, ping
from services.metadata.model import Metadata

SCHEMA = """
CREATE TABLE IF NOT EXISTS metadata (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    description TEXT NOT NULL,
    director TEXT NOT NULL,
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
"""


class MetadataRepository(Protocol):
    async def get(self, movie_id: str) -> Metadata | None: ...

    async def put(self, metadata: Metadata) -> None:
        """Insert or replace (idempotent)."""
        ...

    async def health(self) -> dict[str, object]: ...

    async def close(self) -> None: ...


class MemoryMetadataRepository:
    def __init__(self) -> None:
        self.records: dict[str, Metadata] = {}
        self.reads = 0

    async def get(self, movie_id: str) -> Metadata | None:
        self.reads += 1
        return self.records.get(movie_id)

    async def put(self, metadata: Metadata) -> None:
        self.records[metadata.id] = metadata

    async def health(self) -> dict[str, object]:
        return {"ok": True, "records": len(self.records)}

    async def close(self) -> None:
        return None


class SqliteMetadataRepository:
    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db

    @classmethod
    async def open(cls, path: Path) -> SqliteMetadataRepository:
        return cls(await open_database(path, SCHEMA))

    async def get(self, movie_id: str) -> Metadata | None:
        async with self._db.execute(
            "SELECT id, title, description, director FROM metadata WHERE id = ?", (movie_id,)
        ) as cursor:
            row = await cursor.fetchone()
        return None if row is None else Metadata(*row)

    async def put(self, metadata: Metadata) -> None:
        await self._db.execute(
            """
            INSERT INTO metadata (id, title, description, director) VALUES (?, ?, ?, ?)
            ON CONFLICT(id) DO UPDATE SET
                title = excluded.title, description = excluded.description, director = excluded.director,
                updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
            """,
            (metadata.id, metadata.title, metadata.description, metadata.director),
        )
        await self._db.commit()

    async def health(self) -> dict[str, object]:
        return await ping(self._db)

    async def close(self) -> None:
        await self._db.close()
