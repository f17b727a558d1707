from __future__ import annotations

from pathlib import Path

import pytest

from services.common.errors import InvalidArgument, NotFound
from services.metadata.cache import TtlCache
from services.metadata.controller import MetadataController
from services.metadata.model import Metadata
from services.metadata.repository import MemoryMetadataRepository, SqliteMetadataRepository
from tests.unit.helpers import Clock

MATRIX = Metadata("tt1", "The Matrix", "red pill", "Wachowskis")


def controller(clock: Clock | None = None) -> tuple[MetadataController, MemoryMetadataRepository]:
    repo = MemoryMetadataRepository()
    cache: TtlCache[str, Metadata] = TtlCache(2, 10.0, clock or Clock())
    return MetadataController(repo, cache), repo


async def test_put_then_get() -> None:
    ctl, _ = controller()
    await ctl.put(MATRIX)
    assert await ctl.get("tt1") == MATRIX


async def test_unknown_movie_is_not_found() -> None:
    ctl, _ = controller()
    with pytest.raises(NotFound):
        await ctl.get("nope")


@pytest.mark.parametrize("movie_id", ["", "x" * 65, " padded", "tab\there"])
async def test_bad_ids_are_invalid_argument(movie_id: str) -> None:
    ctl, _ = controller()
    with pytest.raises(InvalidArgument):
        await ctl.get(movie_id)


@pytest.mark.parametrize(
    "record",
    [
        Metadata("", "t", "", ""),
        Metadata("id", "", "", ""),
        Metadata("id", "t" * 201, "", ""),
        Metadata("id", "t", "d" * 4001, ""),
        Metadata("id", "t", "", "nul\x00"),
    ],
)
async def test_invalid_records_are_refused(record: Metadata) -> None:
    ctl, repo = controller()
    with pytest.raises(InvalidArgument):
        await ctl.put(record)
    assert repo.records == {}


async def test_reads_are_cached_until_ttl() -> None:
    clock = Clock()
    ctl, repo = controller(clock)
    await ctl.put(MATRIX)
    await ctl.get("tt1")
    await ctl.get("tt1")
    assert repo.reads == 1
    clock.now = 11.0
    await ctl.get("tt1")
    assert repo.reads == 2


async def test_put_invalidates_the_cache() -> None:
    ctl, _ = controller()
    await ctl.put(MATRIX)
    await ctl.get("tt1")
    await ctl.put(Metadata("tt1", "The Matrix Reloaded", "", ""))
    assert (await ctl.get("tt1")).title == "The Matrix Reloaded"


def test_cache_is_bounded_lru() -> None:
    cache: TtlCache[str, int] = TtlCache(2, 10.0, Clock())
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # a is now the most recent
    cache.put("c", 3)
    assert len(cache) == 2
    assert cache.get("b") is None
    assert cache.get("a") == 1


async def test_sqlite_repository_uses_wal_and_upserts(tmp_path: Path) -> None:
    repo = await SqliteMetadataRepository.open(tmp_path / "m.sqlite3")
    try:
        await repo.put(MATRIX)
        await repo.put(Metadata("tt1", "Matrix", "", "W"))
        assert await repo.get("tt1") == Metadata("tt1", "Matrix", "", "W")
        assert await repo.get("missing") is None
        async with repo._db.execute("PRAGMA journal_mode") as cursor:
            row = await cursor.fetchone()
        assert row is not None
        assert row[0] == "wal"
        assert (await repo.health())["ok"] is True
    finally:
        await repo.close()
