"""gRPC handler: protobuf in and out, the caller's deadline and identity, then the controller."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from services.common.errors import Unauthenticated
from services.common.grpc_auth import current_identity, current_token
from services.genproto import movie_pb2, movie_pb2_grpc
from services.movie.controller import MovieController
from services.movie.model import Caller, MovieDetails
from services.movie.uploads import Chunk

MAX_DEADLINE_S = 30.0


def caller() -> Caller:
    identity, token = current_identity.get(), current_token.get()
    if identity is None or token is None:
        raise Unauthenticated("no authenticated caller")
    return Caller(identity.username, token)


def deadline_from(context: Any, default_s: float) -> float:
    """The caller's deadline (propagated), or ours when the caller set none; loop-time seconds."""
    remaining = context.time_remaining()
    budget = default_s if remaining is None else min(max(remaining, 0.0), MAX_DEADLINE_S)
    return asyncio.get_running_loop().time() + budget


def details_to_proto(details: MovieDetails) -> movie_pb2.MovieDetails:
    m = details.metadata
    message = movie_pb2.MovieDetails(
        metadata=movie_pb2.Metadata(id=m.id, title=m.title, description=m.description, director=m.director),
        rating_count=details.rating_count,
        rating_available=details.rating_available,
    )
    if details.rating is not None:
        message.rating = details.rating
    return message


class MovieServicer(movie_pb2_grpc.MovieServiceServicer):
    def __init__(self, controller: MovieController, default_deadline_s: float) -> None:
        self._controller = controller
        self._default_deadline_s = default_deadline_s

    async def GetMovieDetails(
        self, request: movie_pb2.GetMovieDetailsRequest, context: Any
    ) -> movie_pb2.GetMovieDetailsResponse:
        details = await self._controller.get_details(
            request.movie_id, caller(), deadline_from(context, self._default_deadline_s)
        )
        return movie_pb2.GetMovieDetailsResponse(movie_details=details_to_proto(details))

    async def RateMovie(self, request: movie_pb2.RateMovieRequest, context: Any) -> movie_pb2.RateMovieResponse:
        await self._controller.rate(
            request.movie_id, request.rating_value, caller(), deadline_from(context, self._default_deadline_s)
        )
        return movie_pb2.RateMovieResponse()

    async def UploadFile(self, request_iterator: Any, context: Any) -> movie_pb2.UploadResponse:
        async def chunks() -> AsyncIterator[Chunk]:
            async for message in request_iterator:
                yield Chunk(message.filename, message.chunk)

        stored = await self._controller.upload(chunks())
        return movie_pb2.UploadResponse(message=f"stored {stored.name}", size_bytes=stored.size_bytes)
