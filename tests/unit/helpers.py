"""Build services the way production does, with fresh registries and in-memory discovery."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from services.common.config import ServiceConfig
from services.common.discovery.base import Instance


class MemoryRegistry:
    """The Registry protocol over a dict: for tests that do not need files or Consul."""

    def __init__(self) -> None:
        self.instances: dict[str, dict[str, Instance]] = {}
        self.heartbeats = 0

    async def register(self, instance: Instance) -> None:
        self.instances.setdefault(instance.service, {})[instance.instance_id] = instance

    async def deregister(self, instance: Instance) -> None:
        self.instances.get(instance.service, {}).pop(instance.instance_id, None)

    async def heartbeat(self, instance: Instance) -> None:
        self.heartbeats += 1

    async def healthy_instances(self, service: str) -> list[Instance]:
        return list(self.instances.get(service, {}).values())

    async def close(self) -> None:
        return None


def service_config(name: str, tmp_path: Path, **overrides: object) -> ServiceConfig:
    base = ServiceConfig.from_env(name, {"FIREDRILL_STATE_DIR": str(tmp_path)})
    return replace(base, **overrides)  # type: ignore[arg-type]
