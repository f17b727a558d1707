"""Opening SQLite for an asyncio service: aiosqlite, WAL journal, a busy timeout, a schema."""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

import aiosqlite

# A service's database is its own (auth's holds password hashes): readable by its owner only.
# SQLite creates the -wal, -shm and -journal files beside it with the database file's mode.
DATABASE_MODE = 0o600
SIDE_FILE_SUFFIXES = ("-wal", "-shm", "-journal")


def create_private(path: Path) -> None:
    """Create ``path`` 0600 before SQLite opens it; tighten it and its side files if an earlier run
    left them readable by others."""
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, DATABASE_MODE))
    for candidate in (path, *(path.with_name(path.name + suffix) for suffix in SIDE_FILE_SUFFIXES)):
        with contextlib.suppress(FileNotFoundError):
            if stat.S_IMODE(candidate.stat().st_mode) & ~DATABASE_MODE:
                os.chmod(candidate, DATABASE_MODE)


async def open_database(path: Path, schema: str) -> aiosqlite.Connection:
    """A connection to ``path`` (created 0600 with its folder if new) with ``schema`` applied (idempotent DDL)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    create_private(path)
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
