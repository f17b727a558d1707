"""A short-lived cache in front of a registry, so callers do not ask it on every request."""

from __future__ import annotations

import time

from services.common.discovery.base import Instance, Registry
from services.common.discovery.weights import choose


class InstanceCache:
    def __init__(self, registry: Registry, max_age_s: float) -> None:
        self._registry = registry
        self._max_age_s = max_age_s
        self._entries: dict[str, tuple[float, list[Instance], dict[str, float] | None]] = {}

    async def _current(self, service: str) -> tuple[list[Instance], dict[str, float] | None]:
        cached = self._entries.get(service)
        now = time.monotonic()
        if cached is not None and now - cached[0] < self._max_age_s:
            return cached[1], cached[2]
        fresh = await self._registry.healthy_instances(service)
        split = await self._registry.traffic_split(service) if len(fresh) > 1 else None
        self._entries[service] = (now, fresh, split)
        return fresh, split

    async def instances(self, service: str) -> list[Instance]:
        return (await self._current(service))[0]

    async def pick(self, service: str, avoid: Instance | None = None) -> Instance:
        """A healthy instance, by the traffic split's weights; ``avoid`` only when another is there."""
        instances, split = await self._current(service)
        if avoid is not None and len(instances) > 1:
            instances = [i for i in instances if i != avoid]
        return choose(service, instances, split)

    def forget(self, service: str) -> None:
        """Drop what we know, e.g. after a connection to an instance was refused."""
        self._entries.pop(service, None)
