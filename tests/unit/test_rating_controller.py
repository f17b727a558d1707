from __future__ import annotations

from pathlib import Path

import pytest

from services.common.errors import InvalidArgument
from services.rating.controller import RatingController
from services.rating.model import RECORD_TYPE_MOVIE, Aggregate, Rating
from services.rating.repository import MemoryRatingRepository, RatingRepository, SqliteRatingRepository


@pytest.fixture(params=["memory", "sqlite"])
async def repo(request: pytest.FixtureRequest, tmp_path: Path):
    repository: RatingRepository
    if request.param == "memory":
        repository = MemoryRatingRepository()
    else:
        repository = await SqliteRatingRepository.open(tmp_path / "r.sqlite3")
    yield repository
    await repository.close()


async def test_no_rating_yet_is_representable(repo: RatingRepository) -> None:
    assert await RatingController(repo).aggregate(RECORD_TYPE_MOVIE, "tt1") == Aggregate(None, 0)


async def test_aggregate_is_the_mean(repo: RatingRepository) -> None:
    ctl = RatingController(repo)
    for user, value in (("a", 5), ("b", 4), ("c", 3)):
        await ctl.put(Rating(user, "tt1", RECORD_TYPE_MOVIE, value))
    assert await ctl.aggregate(RECORD_TYPE_MOVIE, "tt1") == Aggregate(4.0, 3)


async def test_same_user_replaces_never_double_counts(repo: RatingRepository) -> None:
    ctl = RatingController(repo)
    await ctl.put(Rating("a", "tt1", RECORD_TYPE_MOVIE, 1))
    await ctl.put(Rating("a", "tt1", RECORD_TYPE_MOVIE, 1))
    await ctl.put(Rating("a", "tt1", RECORD_TYPE_MOVIE, 5))
    assert await ctl.aggregate(RECORD_TYPE_MOVIE, "tt1") == Aggregate(5.0, 1)


@pytest.mark.parametrize("value", [0, 6, -1, 2**31 - 1])
async def test_rating_outside_1_to_5_is_invalid(value: int) -> None:
    with pytest.raises(InvalidArgument):
        await RatingController(MemoryRatingRepository()).put(Rating("a", "tt1", RECORD_TYPE_MOVIE, value))


@pytest.mark.parametrize("record_type", [0, 2, 99, -5])
async def test_unknown_record_type_is_invalid(record_type: int) -> None:
    ctl = RatingController(MemoryRatingRepository())
    with pytest.raises(InvalidArgument):
        await ctl.put(Rating("a", "tt1", record_type, 3))
    with pytest.raises(InvalidArgument):
        await ctl.aggregate(record_type, "tt1")


@pytest.mark.parametrize(("user", "record"), [("", "tt1"), ("a", ""), ("u" * 65, "tt1"), ("a", "r" * 65)])
async def test_empty_or_long_ids_are_invalid(user: str, record: str) -> None:
    with pytest.raises(InvalidArgument):
        await RatingController(MemoryRatingRepository()).put(Rating(user, record, RECORD_TYPE_MOVIE, 3))
