"""Opening SQLite for an asyncio service: aiosqlite, WAL journal, a busy timeout, a schema."""

from __future__ import annotations

from pathlib import Path

import aiosqlite


async def open_database(path: Path, schema: str) -> aiosqlite.Connection:
    """A connection to ``path`` (created with its folder if new) with ``schema`` applied (idempotent DDL)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = await aiosqlite.connect(path)
    try:
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute("PRAGMA synchronous=NORMAL")
        await db.execute("PRAGMA busy_timeout=5000")
        await db.execute("PRAGMA foreign_keys=ON")
        await db.executescript(schema)
        await db.commit()
    except BaseException:
        await db.close()
        raise
    return db


async def ping(db: aiosqlite.Connection) -> dict[str, object]:
    """A health check: the database answers a trivial query."""
    async with db.execute("SELECT 1") as cursor:
        row = await cursor.fetchone()
    return {"ok": row is not None and row[0] == 1}
