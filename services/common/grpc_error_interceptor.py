"""gRPC: the one place where failures become statuses.

Domain errors become their status (``grpc_status``), request bytes that do not parse become
INVALID_ARGUMENT, and anything unexpected becomes a logged INTERNAL.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import grpc
import grpc.aio

from services.common.errors import DomainError, InvalidArgument
from services.common.grpc_handlers import Deserializer, MethodName, UnaryBehavior, wrap_handler
from services.common.grpc_status import status_code

# The logger name this line had when it lived in services.common.grpc_server: log searches know it.
log = logging.getLogger("services.common.grpc_server")


class _Malformed:
    """What a request that failed to parse deserializes to; the error interceptor refuses it."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


def _tolerant(deserializer: Deserializer | None) -> Deserializer | None:
    if deserializer is None:
        return None

    def parse(data: bytes) -> Any:
        try:
            return deserializer(data)
        except Exception as exc:  # protobuf DecodeError and friends: the caller sent garbage
            return _Malformed(exc.__class__.__name__)

    return parse


async def _checked_stream(requests: Any) -> Any:
    async for item in requests:
        if isinstance(item, _Malformed):
            raise InvalidArgument(f"request message could not be parsed ({item.reason})")
        yield item


class ErrorInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    async def intercept_service(self, continuation: Any, details: Any) -> Any:
        handler = await continuation(details)
        name = MethodName.parse(details.method)
        if handler is None or name.is_system:
            return handler
        streaming_request = handler.stream_unary is not None or handler.stream_stream is not None

        def unary(behavior: UnaryBehavior) -> UnaryBehavior:
            async def translated(request: Any, context: Any) -> Any:
                try:
                    if isinstance(request, _Malformed):
                        raise InvalidArgument(f"request message could not be parsed ({request.reason})")
                    if streaming_request:
                        request = _checked_stream(request)
                    return await behavior(request, context)
                except DomainError as exc:
                    await context.abort(status_code(exc), exc.message)
                except (grpc.aio.AbortError, asyncio.CancelledError):
                    raise
                except Exception:
                    log.exception("unhandled error", extra={"grpc_method": f"{name.service}/{name.method}"})
                    await context.abort(grpc.StatusCode.INTERNAL, "internal error; the logs carry the details")

            return translated

        return wrap_handler(handler, unary=unary, deserializer=_tolerant)
