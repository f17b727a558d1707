"""gRPC drill hook: delay every application call by a latency settable at runtime."""

from __future__ import annotations

import asyncio
from typing import Any

from services.common.grpc_handlers import ApplicationCallInterceptor, UnaryBehavior

MAX_FAULT_LATENCY_MS = 10_000


class LatencyFault:
    """Drill hook: delay every application call by ``latency_ms`` (0 = off, bounded)."""

    def __init__(self, latency_ms: int = 0) -> None:
        self.latency_ms = 0
        self.set(latency_ms)

    def set(self, latency_ms: int) -> None:
        if not 0 <= latency_ms <= MAX_FAULT_LATENCY_MS:
            raise ValueError(f"latency must be between 0 and {MAX_FAULT_LATENCY_MS} ms, got {latency_ms}")
        self.latency_ms = latency_ms


class LatencyFaultInterceptor(ApplicationCallInterceptor):
    def __init__(self, fault: LatencyFault) -> None:
        self._fault = fault

    def wrap_unary(self, behavior: UnaryBehavior) -> UnaryBehavior:
        fault = self._fault

        async def delayed(request: Any, context: Any) -> Any:
            if fault.latency_ms:
                await asyncio.sleep(fault.latency_ms / 1000)
            return await behavior(request, context)

        return delayed
