"""gRPC handler: protobuf in and out, everything else in the controller."""

from __future__ import annotations

from typing import Any

from services.auth.controller import AuthController
from services.genproto import auth_pb2, auth_pb2_grpc


def peer_host(context: Any) -> str:
    """``ipv4:127.0.0.1:51234`` -> ``ipv4:127.0.0.1`` (the port changes per connection)."""
    peer = str(context.peer() or "")
    return peer.rsplit(":", 1)[0] if peer.count(":") >= 2 else peer


class AuthServicer(auth_pb2_grpc.AuthServiceServicer):
    def __init__(self, controller: AuthController) -> None:
        self._controller = controller

    async def GetToken(self, request: auth_pb2.GetTokenRequest, context: Any) -> auth_pb2.GetTokenResponse:
        issued = await self._controller.get_token(request.username, request.password, peer_host(context))
        return auth_pb2.GetTokenResponse(token=issued.token, expires_at=issued.expires_at)

    async def ValidateToken(
        self, request: auth_pb2.ValidateTokenRequest, context: Any
    ) -> auth_pb2.ValidateTokenResponse:
        identity = await self._controller.validate_token(request.token)
        return auth_pb2.ValidateTokenResponse(username=identity.username, expires_at=identity.expires_at)
