"""Where ratings are stored: the interface, an in-memory fake, and the SQLite implementation.

One row per (record type, record, user): a user rating the same record again replaces their
rating, so retried or repeated writes never count twice.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import aiosqlite

from services.common.sqlite_store import open_database, ping
from services.rating.model import Aggregate, Rating

SCHEMA = """
CREATE TABLE IF NOT EXISTS ratings (
    record_type INTEGER NOT NULL,
    record_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    value INTEGER NOT NULL CHECK (value BETWEEN 1 AND 5),
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (record_type, record_id, user_id)
);
"""


class RatingRepository(Protocol):
    async def put(self, rating: Rating) -> None:
        """Insert, or replace the same user's rating of the same record."""
        ...

    async def aggregate(self, record_type: int, record_id: str) -> Aggregate: ...

    async def health(self) -> dict[str, object]: ...

    async def close(self) -> None: ...


class MemoryRatingRepository:
    def __init__(self) -> None:
        self.ratings: dict[tuple[int, str, str], int] = {}

    async def put(self, rating: Rating) -> None:
        self.ratings[(rating.record_type, rating.record_id, rating.user_id)] = rating.value

    async def aggregate(self, record_type: int, record_id: str) -> Aggregate:
        values = [v for (t, r, _u), v in self.ratings.items() if t == record_type and r == record_id]
        return Aggregate(sum(values) / len(values) if values else None, len(values))

    async def health(self) -> dict[str, object]:
        return {"ok": True, "ratings": len(self.ratings)}

    async def close(self) -> None:
        return None


class SqliteRatingRepository:
    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db

    @classmethod
    async def open(cls, path: Path) -> SqliteRatingRepository:
        return cls(await open_database(path, SCHEMA))

    async def put(self, rating: Rating) -> None:
        await self._db.execute(
            """
            INSERT INTO ratings (record_type, record_id, user_id, value) VALUES (?, ?, ?, ?)
            ON CONFLICT(record_type, record_id, user_id) DO UPDATE SET
                value = excluded.value, updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
            """,
            (rating.record_type, rating.record_id, rating.user_id, rating.value),
        )
        await self._db.commit()

    async def aggregate(self, record_type: int, record_id: str) -> Aggregate:
        # One trip to aiosqlite's thread (execute, fetch and close in one go), not three: this is
        # on the path of every GetMovieDetails.
        rows = await self._db.execute_fetchall(
            "SELECT AVG(value), COUNT(*) FROM ratings WHERE record_type = ? AND record_id = ?",
            (record_type, record_id),
        )
        row = next(iter(rows), None)
        if row is None or not row[1]:
            return Aggregate(None, 0)
        return Aggregate(float(row[0]), int(row[1]))

    async def health(self) -> dict[str, object]:
        return await ping(self._db)

    async def close(self) -> None:
        await self._db.close()
