"""Gateway logic: metadata and rating concurrently, within the caller's deadline, rating optional."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from prometheus_client import REGISTRY, CollectorRegistry, Counter

from services.common.errors import DomainError, InvalidArgument
from services.movie.gateways import MetadataGateway, RatingGateway
from services.movie.model import Caller, MovieDetails, Rating, validate_movie_id
from services.movie.uploads import Chunk, Stored, UploadStore

log = logging.getLogger(__name__)

MIN_RATING, MAX_RATING = 1, 5


class MovieController:
    def __init__(
        self,
        metadata: MetadataGateway,
        rating: RatingGateway,
        uploads: UploadStore,
        *,
        rating_budget_s: float,
        metrics_registry: CollectorRegistry = REGISTRY,
    ) -> None:
        self._metadata = metadata
        self._rating = rating
        self._uploads = uploads
        self._rating_budget_s = rating_budget_s
        self._fallbacks = Counter(
            "movie_rating_fallbacks_total",
            "Movie details served without a rating because rating failed or was too slow.",
            ["reason"],
            registry=metrics_registry,
        )

    async def _rating_or_none(self, movie_id: str, caller: Caller, deadline: float) -> Rating | None:
        loop = asyncio.get_running_loop()
        budget_deadline = min(deadline, loop.time() + self._rating_budget_s)
        try:
            async with asyncio.timeout_at(budget_deadline):
                return await self._rating.get(movie_id, caller.token, budget_deadline)
        except TimeoutError:
            reason = "DEADLINE_EXCEEDED"
        except DomainError as exc:
            reason = exc.kind.name
        self._fallbacks.labels(reason).inc()
        log.warning("serving movie details without rating", extra={"movie_id": movie_id, "reason": reason})
        return None

    async def get_details(self, movie_id: str, caller: Caller, deadline: float) -> MovieDetails:
        """Both upstream calls start at once; a metadata failure fails the call, a rating failure does not."""
        validate_movie_id(movie_id)
        rating_task = asyncio.create_task(self._rating_or_none(movie_id, caller, deadline))
        try:
            metadata = await self._metadata.get(movie_id, caller.token, deadline)
        except BaseException:
            rating_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await rating_task
            raise
        rating = await rating_task
        if rating is None:
            return MovieDetails(metadata, None, 0, rating_available=False)
        return MovieDetails(metadata, rating.value, rating.count, rating_available=True)

    async def rate(self, movie_id: str, value: int, caller: Caller, deadline: float) -> None:
        """Rate an existing movie as the caller (unknown movie: NOT_FOUND)."""
        validate_movie_id(movie_id)
        if not MIN_RATING <= value <= MAX_RATING:
            raise InvalidArgument(f"rating_value must be between {MIN_RATING} and {MAX_RATING}, got {value}")
        await self._metadata.get(movie_id, caller.token, deadline)
        await self._rating.put(movie_id, caller.username, value, caller.token, deadline)

    async def upload(self, chunks: AsyncIterator[Chunk]) -> Stored:
        return await self._uploads.store(chunks)
