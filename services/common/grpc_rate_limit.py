"""gRPC: a token bucket in front of every application call, RESOURCE_EXHAUSTED when it is empty."""

from __future__ import annotations

from typing import Any

import grpc.aio

from services.common.errors import ResourceExhausted
from services.common.grpc_handlers import UnaryBehavior, is_application_call, wrap_handler
from services.common.ratelimit import TokenBucket


class RateLimitInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    def __init__(self, bucket: TokenBucket) -> None:
        self._bucket = bucket

    async def intercept_service(self, continuation: Any, details: Any) -> Any:
        handler = await continuation(details)
        if handler is None or not is_application_call(details):
            return handler
        bucket = self._bucket

        def unary(behavior: UnaryBehavior) -> UnaryBehavior:
            async def limited(request: Any, context: Any) -> Any:
                if not bucket.try_acquire():
                    raise ResourceExhausted(
                        f"rate limit of {bucket.rate:g} requests/s exceeded; retry in {bucket.retry_after_s():.3f}s"
                    )
                return await behavior(request, context)

            return limited

        return wrap_handler(handler, unary=unary)
