"""Metadata business logic: validation, cache in front of the repository, NOT_FOUND."""

from __future__ import annotations

from services.common.errors import NotFound
from services.metadata.cache import TtlCache
from services.metadata.model import Metadata, validate, validate_id
from services.metadata.repository import MetadataRepository


class MetadataController:
    def __init__(self, repository: MetadataRepository, cache: TtlCache[str, Metadata]) -> None:
        self._repository = repository
        self._cache = cache

    async def get(self, movie_id: str) -> Metadata:
        validate_id(movie_id)
        cached = self._cache.get(movie_id)
        if cached is not None:
            return cached
        found = await self._repository.get(movie_id)
        if found is None:
            raise NotFound(f"movie {movie_id!r} not found")
        self._cache.put(movie_id, found)
        return found

    async def put(self, metadata: Metadata) -> None:
        validate(metadata)
        await self._repository.put(metadata)
        self._cache.invalidate(metadata.id)
