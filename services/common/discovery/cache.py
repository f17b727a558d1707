"""A short-lived cache in front of a registry, so callers do not ask it on every request."""

from __future__ import annotations

import random
import time

from services.common.discovery.base import Instance, NoHealthyInstance, Registry


class InstanceCache:
    def __init__(self, registry: Registry, max_age_s: float) -> None:
        self._registry = registry
        self._max_age_s = max_age_s
        self._entries: dict[str, tuple[float, list[Instance]]] = {}

    async def instances(self, service: str) -> list[Instance]:
        cached = self._entries.get(service)
        now = time.monotonic()
        if cached is not None and now - cached[0] < self._max_age_s:
            return cached[1]
        fresh = await self._registry.healthy_instances(service)
        self._entries[service] = (now, fresh)
        return fresh

    async def pick(self, service: str, avoid: Instance | None = None) -> Instance:
        instances = await self.instances(service)
        if avoid is not None and len(instances) > 1:
            instances = [i for i in instances if i != avoid]
        if not instances:
            raise NoHealthyInstance(service)
        return random.choice(instances)

    def forget(self, service: str) -> None:
        """Drop what we know, e.g. after a connection to an instance was refused."""
        self._entries.pop(service, None)
