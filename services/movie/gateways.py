"""Calls from the gateway to metadata, rating and auth: discovery, deadline, retries, token."""

from __future__ import annotations

import asyncio
from typing import Any

from services.common.grpc_auth import bearer_metadata
from services.common.grpc_client import DiscoveredChannels, RetryPolicy, call_with_retry
from services.genproto import auth_pb2, movie_pb2
from services.movie.model import MovieMetadata, Rating

RECORD_TYPE_MOVIE = movie_pb2.RECORD_TYPE_MOVIE


class MetadataGateway:
    def __init__(self, channels: DiscoveredChannels, policy: RetryPolicy) -> None:
        self._channels = channels
        self._policy = policy

    async def get(self, movie_id: str, token: str, deadline: float) -> MovieMetadata:
        request = movie_pb2.GetMetadataRequest(movie_id=movie_id)

        async def attempt(stub: Any, budget_s: float) -> Any:
            return await stub.GetMetadata(request, timeout=budget_s, metadata=bearer_metadata(token))

        response = await call_with_retry(self._channels, attempt, deadline=deadline, policy=self._policy)
        m = response.metadata
        return MovieMetadata(m.id, m.title, m.description, m.director)


class RatingGateway:
    def __init__(self, channels: DiscoveredChannels, policy: RetryPolicy) -> None:
        self._channels = channels
        self._policy = policy

    async def get(self, movie_id: str, token: str, deadline: float) -> Rating:
        request = movie_pb2.GetAggregatedRatingRequest(record_id=movie_id, record_type=RECORD_TYPE_MOVIE)

        async def attempt(stub: Any, budget_s: float) -> Any:
            return await stub.GetAggregatedRating(request, timeout=budget_s, metadata=bearer_metadata(token))

        response = await call_with_retry(self._channels, attempt, deadline=deadline, policy=self._policy)
        value = response.rating_value if response.HasField("rating_value") else None
        return Rating(value, response.rating_count)

    async def put(self, movie_id: str, user_id: str, value: int, token: str, deadline: float) -> None:
        # PutRating is idempotent per (user, record), so it is safe to retry too.
        request = movie_pb2.PutRatingRequest(
            user_id=user_id, record_id=movie_id, record_type=RECORD_TYPE_MOVIE, rating_value=value
        )

        async def attempt(stub: Any, budget_s: float) -> Any:
            return await stub.PutRating(request, timeout=budget_s, metadata=bearer_metadata(token))

        await call_with_retry(self._channels, attempt, deadline=deadline, policy=self._policy)


class AuthGateway:
    def __init__(self, channels: DiscoveredChannels, policy: RetryPolicy) -> None:
        self._channels = channels
        self._policy = policy

    async def validate(self, token: str, timeout_s: float) -> tuple[str, int]:
        request = auth_pb2.ValidateTokenRequest(token=token)

        async def attempt(stub: Any, budget_s: float) -> Any:
            return await stub.ValidateToken(request, timeout=budget_s)

        deadline = asyncio.get_running_loop().time() + timeout_s
        response = await call_with_retry(self._channels, attempt, deadline=deadline, policy=self._policy)
        return response.username, response.expires_at
