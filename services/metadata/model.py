"""The metadata record and its validation rules."""

from __future__ import annotations

from dataclasses import dataclass

from services.common.errors import InvalidArgument

MAX_ID_CHARS = 64
MAX_TITLE_CHARS = 200
MAX_DIRECTOR_CHARS = 200
MAX_DESCRIPTION_CHARS = 4000


@dataclass(frozen=True, slots=True)
class Metadata:
    id: str
    title: str
    description: str
    director: str


def validate_id(value: str, field: str = "movie_id") -> str:
    if not value:
        raise InvalidArgument(f"{field} must not be empty")
    if len(value) > MAX_ID_CHARS:
        raise InvalidArgument(f"{field} must be at most {MAX_ID_CHARS} characters")
    if not value.isprintable() or value != value.strip():
        raise InvalidArgument(f"{field} must be printable, without surrounding spaces")
    return value


def _bounded_text(value: str, field: str, limit: int, *, required: bool) -> None:
    if required and not value.strip():
        raise InvalidArgument(f"{field} must not be empty")
    if len(value) > limit:
        raise InvalidArgument(f"{field} must be at most {limit} characters")
    if "\x00" in value:
        raise InvalidArgument(f"{field} must not contain NUL characters")


def validate(metadata: Metadata) -> Metadata:
    validate_id(metadata.id, "metadata.id")
    _bounded_text(metadata.title, "metadata.title", MAX_TITLE_CHARS, required=True)
    _bounded_text(metadata.director, "metadata.director", MAX_DIRECTOR_CHARS, required=False)
    _bounded_text(metadata.description, "metadata.description", MAX_DESCRIPTION_CHARS, required=False)
    return metadata
