"""The Registry protocol over a dict, for one process (tests, in-process stacks).

No TTL: whoever registers an instance also removes it.
"""

from __future__ import annotations

from services.common.discovery.base import Instance


class MemoryRegistry:
    def __init__(self) -> None:
        self.instances: dict[str, dict[str, Instance]] = {}
        self.splits: dict[str, dict[str, float]] = {}

    async def register(self, instance: Instance) -> None:
        self.instances.setdefault(instance.service, {})[instance.instance_id] = instance

    async def deregister(self, instance: Instance) -> None:
        self.instances.get(instance.service, {}).pop(instance.instance_id, None)

    async def heartbeat(self, instance: Instance) -> None:
        return None

    async def healthy_instances(self, service: str) -> list[Instance]:
        return list(self.instances.get(service, {}).values())

    async def traffic_split(self, service: str) -> dict[str, float] | None:
        return self.splits.get(service)

    async def close(self) -> None:
        return None
