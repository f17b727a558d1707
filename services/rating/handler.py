"""gRPC handler: protobuf in and out, everything else in the controller."""

from __future__ import annotations

from typing import Any

from services.genproto import movie_pb2, movie_pb2_grpc
from services.rating.controller import RatingController
from services.rating.model import Rating


class RatingServicer(movie_pb2_grpc.RatingServiceServicer):
    def __init__(self, controller: RatingController) -> None:
        self._controller = controller

    async def GetAggregatedRating(
        self, request: movie_pb2.GetAggregatedRatingRequest, context: Any
    ) -> movie_pb2.GetAggregatedRatingResponse:
        aggregate = await self._controller.aggregate(int(request.record_type), request.record_id)
        response = movie_pb2.GetAggregatedRatingResponse(rating_count=aggregate.count)
        if aggregate.value is not None:
            response.rating_value = aggregate.value
        return response

    async def PutRating(self, request: movie_pb2.PutRatingRequest, context: Any) -> movie_pb2.PutRatingResponse:
        await self._controller.put(
            Rating(
                user_id=request.user_id,
                record_id=request.record_id,
                record_type=int(request.record_type),
                value=request.rating_value,
            )
        )
        return movie_pb2.PutRatingResponse()
