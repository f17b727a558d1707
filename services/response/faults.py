"""Runtime faults: added latency, an error ratio, leaked memory and burned CPU."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass

from prometheus_client import REGISTRY, CollectorRegistry, Gauge

from services.common.errors import Aborted, Injected

MAX_LATENCY_MS = 10_000


class LeakCapReached(Aborted):
    code = "leak_cap_reached"


@dataclass(frozen=True, slots=True)
class FaultSettings:
    latency_ms: int = 0
    error_ratio: float = 0.0


class FaultSwitch:
    def __init__(self, leak_cap_bytes: int, registry: CollectorRegistry = REGISTRY) -> None:
        self.settings = FaultSettings()
        self._leak_cap_bytes = leak_cap_bytes
        self._leaked: list[bytearray] = []
        self.leaked_bytes = 0
        self._latency_gauge = Gauge(
            "fault_injected_latency_seconds", "Latency added to every /response call.", registry=registry
        )
        self._error_gauge = Gauge(
            "fault_injected_error_ratio", "Share of /response calls failed on purpose.", registry=registry
        )
        self._leak_gauge = Gauge("fault_leaked_bytes", "Memory held on purpose by /leak.", registry=registry)

    def set(self, settings: FaultSettings) -> None:
        self.settings = settings
        self._latency_gauge.set(settings.latency_ms / 1000)
        self._error_gauge.set(settings.error_ratio)

    async def apply(self) -> None:
        """Called on the business path: delay and maybe fail, as configured."""
        settings = self.settings
        if settings.latency_ms:
            await asyncio.sleep(settings.latency_ms / 1000)
        if settings.error_ratio and random.random() < settings.error_ratio:
            raise Injected("injected failure (fault switch is on)", error_ratio=settings.error_ratio)

    def leak(self, size_bytes: int) -> None:
        if self.leaked_bytes + size_bytes > self._leak_cap_bytes:
            raise LeakCapReached(
                "leaking this much would pass the leak cap; DELETE /admin/faults frees it",
                leaked_bytes=self.leaked_bytes,
                cap_bytes=self._leak_cap_bytes,
            )
        block = bytearray(size_bytes)
        # Touch every page so the memory is really resident, as a real leak would be.
        for offset in range(0, size_bytes, 4096):
            block[offset] = 1
        self._leaked.append(block)
        self.leaked_bytes += size_bytes
        self._leak_gauge.set(self.leaked_bytes)

    def free(self) -> int:
        freed = self.leaked_bytes
        self._leaked.clear()
        self.leaked_bytes = 0
        self._leak_gauge.set(0)
        return freed

    def reset(self) -> int:
        self.set(FaultSettings())
        return self.free()


def burn_cpu(seconds: float) -> int:
    """Spin for ``seconds`` of wall time; returns loop iterations (so the work is not optimised away)."""
    deadline = time.perf_counter() + seconds
    spins = 0
    while time.perf_counter() < deadline:
        spins += 1
    return spins
