"""What the gateway serves."""

from __future__ import annotations

from dataclasses import dataclass

from services.common.errors import InvalidArgument

MAX_ID_CHARS = 64


@dataclass(frozen=True, slots=True)
class MovieMetadata:
    id: str
    title: str
    description: str
    director: str


@dataclass(frozen=True, slots=True)
class Rating:
    value: float | None
    count: int


@dataclass(frozen=True, slots=True)
class MovieDetails:
    metadata: MovieMetadata
    # None when nobody rated the movie yet, or when rating did not answer (rating_available False).
    rating: float | None
    rating_count: int
    rating_available: bool

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.metadata.id,
            "title": self.metadata.title,
            "description": self.metadata.description,
            "director": self.metadata.director,
            "rating": self.rating,
            "rating_count": self.rating_count,
            "rating_available": self.rating_available,
        }


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is asking (from the token) and the token to pass on upstream."""

    username: str
    token: str


def validate_movie_id(movie_id: str) -> str:
    if not movie_id:
        raise InvalidArgument("movie_id must not be empty")
    if len(movie_id) > MAX_ID_CHARS:
        raise InvalidArgument(f"movie_id must be at most {MAX_ID_CHARS} characters")
    if not movie_id.isprintable() or movie_id != movie_id.strip():
        raise InvalidArgument("movie_id must be printable, without surrounding spaces")
    return movie_id
