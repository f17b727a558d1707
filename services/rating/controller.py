"""Rating business logic: validation, idempotent writes, the mean as aggregate."""

from __future__ import annotations

from services.rating.model import Aggregate, Rating, validate, validate_id, validate_record_type
from services.rating.repository import RatingRepository


class RatingController:
    def __init__(self, repository: RatingRepository) -> None:
        self._repository = repository

    async def aggregate(self, record_type: int, record_id: str) -> Aggregate:
        validate_id(record_id, "record_id")
        validate_record_type(record_type)
        return await self._repository.aggregate(record_type, record_id)

    async def put(self, rating: Rating) -> None:
        await self._repository.put(validate(rating))
