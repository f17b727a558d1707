"""gRPC handler: protobuf in and out, everything else in the controller."""

from __future__ import annotations

from typing import Any

from services.common.errors import InvalidArgument
from services.genproto import movie_pb2, movie_pb2_grpc
from services.metadata.controller import MetadataController
from services.metadata.model import Metadata


def to_proto(metadata: Metadata) -> movie_pb2.Metadata:
    return movie_pb2.Metadata(
        id=metadata.id, title=metadata.title, description=metadata.description, director=metadata.director
    )


def from_proto(message: movie_pb2.Metadata) -> Metadata:
    return Metadata(id=message.id, title=message.title, description=message.description, director=message.director)


class MetadataServicer(movie_pb2_grpc.MetadataServiceServicer):
    def __init__(self, controller: MetadataController) -> None:
        self._controller = controller

    async def GetMetadata(self, request: movie_pb2.GetMetadataRequest, context: Any) -> movie_pb2.GetMetadataResponse:
        found = await self._controller.get(request.movie_id)
        return movie_pb2.GetMetadataResponse(metadata=to_proto(found))

    async def PutMetadata(self, request: movie_pb2.PutMetadataRequest, context: Any) -> movie_pb2.PutMetadataResponse:
        if not request.HasField("metadata"):
            raise InvalidArgument("metadata is required")
        await self._controller.put(from_proto(request.metadata))
        return movie_pb2.PutMetadataResponse()
