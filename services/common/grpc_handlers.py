"""Wrapping gRPC method handlers: the one helper every server interceptor here builds on.

A grpc.aio server interceptor gets the next ``RpcMethodHandler`` and returns one of its own;
``wrap_handler`` rebuilds a handler of the same kind (unary/stream request, unary/stream
response) around a new behaviour, keeping its (de)serializers. System services (health,
reflection) are left alone by our interceptors: they are not application traffic, and health's
``Watch`` writes through the context rather than yielding, which a generic wrapper would break.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
import grpc.aio

UnaryBehavior = Callable[[Any, Any], Awaitable[Any]]
StreamBehavior = Callable[[Any, Any], AsyncIterator[Any]]
Deserializer = Callable[[bytes], Any]

SYSTEM_SERVICES = frozenset(
    {
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
        "grpc.reflection.v1.ServerReflection",
    }
)


@dataclass(frozen=True, slots=True)
class MethodName:
    service: str
    method: str

    @classmethod
    def parse(cls, full: str | bytes) -> MethodName:
        """``/firedrill.movie.v1.MovieService/GetMovieDetails`` -> service and method."""
        text = full.decode("utf-8", "replace") if isinstance(full, bytes) else full
        service, _, method = text.lstrip("/").rpartition("/")
        return cls(service or "unknown", method or "unknown")

    @property
    def is_system(self) -> bool:
        return self.service in SYSTEM_SERVICES


def is_application_call(details: Any) -> bool:
    """Filter for interceptors (ours and OpenTelemetry's): False for health and reflection."""
    return not MethodName.parse(details.method).is_system


def wrap_handler(
    handler: Any,
    *,
    unary: Callable[[UnaryBehavior], UnaryBehavior] | None = None,
    stream: Callable[[StreamBehavior], StreamBehavior] | None = None,
    deserializer: Callable[[Deserializer | None], Deserializer | None] | None = None,
) -> Any:
    """A handler like ``handler`` whose behaviour is wrapped (unary or streaming response)."""
    if handler is None:
        return None
    request_deserializer = handler.request_deserializer
    if deserializer is not None:
        request_deserializer = deserializer(request_deserializer)
    if handler.unary_unary is not None:
        behavior = unary(handler.unary_unary) if unary else handler.unary_unary
        return grpc.unary_unary_rpc_method_handler(
            behavior, request_deserializer=request_deserializer, response_serializer=handler.response_serializer
        )
    if handler.stream_unary is not None:
        behavior = unary(handler.stream_unary) if unary else handler.stream_unary
        return grpc.stream_unary_rpc_method_handler(
            behavior, request_deserializer=request_deserializer, response_serializer=handler.response_serializer
        )
    if handler.unary_stream is not None:
        behavior = stream(handler.unary_stream) if stream else handler.unary_stream
        return grpc.unary_stream_rpc_method_handler(
            behavior, request_deserializer=request_deserializer, response_serializer=handler.response_serializer
        )
    behavior = stream(handler.stream_stream) if stream else handler.stream_stream
    return grpc.stream_stream_rpc_method_handler(
        behavior, request_deserializer=request_deserializer, response_serializer=handler.response_serializer
    )


def metadata_value(context: Any, key: str) -> str | None:
    """The first value of an invocation metadata key (keys are lower-case on the wire)."""
    for item in context.invocation_metadata() or ():
        if item[0] == key:
            value = item[1]
            return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return None


class ApplicationCallInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Wraps the unary behaviour of the service's own calls; health checks and reflection pass untouched."""

    def wrap_unary(self, behavior: UnaryBehavior) -> UnaryBehavior:
        raise NotImplementedError

    async def intercept_service(self, continuation: Any, details: Any) -> Any:
        handler = await continuation(details)
        if handler is None or not is_application_call(details):
            return handler
        return wrap_handler(handler, unary=self.wrap_unary)
