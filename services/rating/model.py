"""Ratings, their aggregate, and the validation rules."""

from __future__ import annotations

from dataclasses import dataclass

from services.common.errors import InvalidArgument

MAX_ID_CHARS = 64
MIN_RATING = 1
MAX_RATING = 5
# Record types this service knows (the values of the RecordType enum in movie.proto).
RECORD_TYPE_MOVIE = 1
KNOWN_RECORD_TYPES = frozenset({RECORD_TYPE_MOVIE})


@dataclass(frozen=True, slots=True)
class Rating:
    user_id: str
    record_id: str
    record_type: int
    value: int


@dataclass(frozen=True, slots=True)
class Aggregate:
    # None: nobody rated the record yet.
    value: float | None
    count: int


def validate_id(value: str, field: str) -> str:
    if not value:
        raise InvalidArgument(f"{field} must not be empty")
    if len(value) > MAX_ID_CHARS:
        raise InvalidArgument(f"{field} must be at most {MAX_ID_CHARS} characters")
    if not value.isprintable() or value != value.strip():
        raise InvalidArgument(f"{field} must be printable, without surrounding spaces")
    return value


def validate_record_type(record_type: int) -> int:
    if record_type not in KNOWN_RECORD_TYPES:
        raise InvalidArgument(f"unknown record_type {record_type}; known: RECORD_TYPE_MOVIE ({RECORD_TYPE_MOVIE})")
    return record_type


def validate(rating: Rating) -> Rating:
    validate_id(rating.user_id, "user_id")
    validate_id(rating.record_id, "record_id")
    validate_record_type(rating.record_type)
    if not MIN_RATING <= rating.value <= MAX_RATING:
        raise InvalidArgument(f"rating_value must be between {MIN_RATING} and {MAX_RATING}, got {rating.value}")
    return rating
