from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from services.common.errors import InvalidArgument, NotFound, Unavailable
from services.common.waiting import wait_until_async
from services.movie.controller import MovieController
from services.movie.model import Caller, MovieMetadata, Rating
from services.movie.uploads import Chunk, UploadStore, safe_filename

CALLER = Caller("demo", "token")
MATRIX = MovieMetadata("tt1", "The Matrix", "", "W")


class FakeMetadata:
    def __init__(self, delay_s: float = 0.0, error: Exception | None = None) -> None:
        self.delay_s = delay_s
        self.error = error

    async def get(self, movie_id: str, token: str, deadline: float) -> MovieMetadata:
        await asyncio.sleep(self.delay_s)
        if self.error is not None:
            raise self.error
        if movie_id != "tt1":
            raise NotFound("no such movie")
        return MATRIX


class FakeRating:
    def __init__(self, delay_s: float = 0.0, error: Exception | None = None) -> None:
        self.delay_s = delay_s
        self.error = error
        self.cancelled = False
        self.puts: list[tuple[str, str, int]] = []

    async def get(self, movie_id: str, token: str, deadline: float) -> Rating:
        try:
            await asyncio.sleep(self.delay_s)
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        if self.error is not None:
            raise self.error
        return Rating(4.5, 2)

    async def put(self, movie_id: str, user_id: str, value: int, token: str, deadline: float) -> None:
        self.puts.append((movie_id, user_id, value))


def make(metadata: FakeMetadata, rating: FakeRating, tmp_path: Path, budget_s: float = 0.2) -> MovieController:
    return MovieController(
        metadata,  # type: ignore[arg-type]
        rating,  # type: ignore[arg-type]
        UploadStore(tmp_path / "uploads", 10),
        rating_budget_s=budget_s,
        metrics_registry=CollectorRegistry(),
    )


def deadline(seconds: float = 1.0) -> float:
    return asyncio.get_running_loop().time() + seconds


async def test_details_combine_metadata_and_rating(tmp_path: Path) -> None:
    details = await make(FakeMetadata(), FakeRating(), tmp_path).get_details("tt1", CALLER, deadline())
    assert details.metadata == MATRIX
    assert (details.rating, details.rating_count, details.rating_available) == (4.5, 2, True)


async def test_metadata_and_rating_are_called_concurrently(tmp_path: Path) -> None:
    metadata_called, rating_called = asyncio.Event(), asyncio.Event()

    # Each answers only once the other has been called: called one after the other, neither can.
    class MeetingMetadata(FakeMetadata):
        async def get(self, movie_id: str, token: str, deadline: float) -> MovieMetadata:
            metadata_called.set()
            await wait_until_async(rating_called.is_set, timeout_s=5, what="rating called while metadata runs")
            return await super().get(movie_id, token, deadline)

    class MeetingRating(FakeRating):
        async def get(self, movie_id: str, token: str, deadline: float) -> Rating:
            rating_called.set()
            await wait_until_async(metadata_called.is_set, timeout_s=5, what="metadata called while rating runs")
            return await super().get(movie_id, token, deadline)

    ctl = make(MeetingMetadata(), MeetingRating(), tmp_path, budget_s=10)
    details = await ctl.get_details("tt1", CALLER, deadline(30))
    assert details.metadata == MATRIX
    assert details.rating_available is True


async def test_rating_down_falls_back_to_details_without_rating(tmp_path: Path) -> None:
    ctl = make(FakeMetadata(), FakeRating(error=Unavailable("rating down")), tmp_path)
    details = await ctl.get_details("tt1", CALLER, deadline())
    assert details.rating is None
    assert details.rating_available is False
    assert details.metadata == MATRIX


async def test_slow_rating_is_dropped_after_its_budget(tmp_path: Path) -> None:
    rating = FakeRating(delay_s=5)
    ctl = make(FakeMetadata(), rating, tmp_path, budget_s=0.05)
    # The caller's deadline outlasts the slow rating: only the budget can drop it.
    details = await ctl.get_details("tt1", CALLER, deadline(30))
    assert details.rating_available is False
    assert rating.cancelled


async def test_metadata_not_found_propagates_and_cancels_rating(tmp_path: Path) -> None:
    rating = FakeRating(delay_s=5)
    with pytest.raises(NotFound):
        await make(FakeMetadata(), rating, tmp_path).get_details("nope", CALLER, deadline())
    assert rating.cancelled


async def test_metadata_unavailable_propagates(tmp_path: Path) -> None:
    with pytest.raises(Unavailable):
        await make(FakeMetadata(error=Unavailable("x")), FakeRating(), tmp_path).get_details("tt1", CALLER, deadline())


@pytest.mark.parametrize("movie_id", ["", "x" * 65, " a"])
async def test_bad_movie_ids_are_invalid(movie_id: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument):
        await make(FakeMetadata(), FakeRating(), tmp_path).get_details(movie_id, CALLER, deadline())


async def test_rate_checks_the_movie_and_rates_as_the_caller(tmp_path: Path) -> None:
    rating = FakeRating()
    ctl = make(FakeMetadata(), rating, tmp_path)
    await ctl.rate("tt1", 5, CALLER, deadline())
    assert rating.puts == [("tt1", "demo", 5)]
    with pytest.raises(NotFound):
        await ctl.rate("nope", 5, CALLER, deadline())
    with pytest.raises(InvalidArgument):
        await ctl.rate("tt1", 6, CALLER, deadline())


async def chunks(*items: tuple[str, bytes]) -> AsyncIterator[Chunk]:
    for name, data in items:
        yield Chunk(name, data)


async def test_upload_streams_to_disk(tmp_path: Path) -> None:
    store = UploadStore(tmp_path, 10)
    stored = await store.store(chunks(("poster.png", b"abc"), ("", b"def")))
    assert (stored.name, stored.size_bytes) == ("poster.png", 6)
    assert (tmp_path / "poster.png").read_bytes() == b"abcdef"


async def test_upload_over_the_limit_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    store = UploadStore(tmp_path, 5)
    with pytest.raises(InvalidArgument):
        await store.store(chunks(("big.bin", b"abc"), ("", b"def")))
    assert await asyncio.to_thread(lambda: list(tmp_path.iterdir())) == []


@pytest.mark.parametrize(
    "name", ["../etc/passwd", "/abs", "a/b", "..", ".hidden", "a\\b", "x" * 129, "", "a..b", "nul\x00"]
)
def test_unsafe_filenames_are_refused(name: str) -> None:
    with pytest.raises(InvalidArgument):
        safe_filename(name)


async def test_upload_needs_a_filename_first_and_a_stable_one(tmp_path: Path) -> None:
    store = UploadStore(tmp_path, 100)
    with pytest.raises(InvalidArgument):
        await store.store(chunks(("", b"abc")))
    with pytest.raises(InvalidArgument):
        await store.store(chunks(("a.txt", b"abc"), ("b.txt", b"d")))
    with pytest.raises(InvalidArgument):
        await store.store(chunks())
