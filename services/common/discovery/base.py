"""The service registry interface shared by the local registry and Consul."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


class DiscoveryError(Exception):
    """The registry could not be reached or answered nonsense."""


class NoHealthyInstance(DiscoveryError):
    def __init__(self, service: str) -> None:
        super().__init__(f"no healthy instance of {service!r}")
        self.service = service


@dataclass(frozen=True, slots=True)
class Instance:
    service: str
    instance_id: str
    host: str
    port: int
    # Free-form metadata: metrics_path, metrics_port, protocol, version.
    meta: dict[str, str] = field(default_factory=dict)

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


class Registry(Protocol):
    """Register, heartbeat, deregister, and find healthy instances of a service."""

    async def register(self, instance: Instance) -> None: ...

    async def deregister(self, instance: Instance) -> None: ...

    async def heartbeat(self, instance: Instance) -> None:
        """Report the instance alive; instances that stop heartbeating become unhealthy."""
        ...

    async def healthy_instances(self, service: str) -> list[Instance]: ...

    async def traffic_split(self, service: str) -> dict[str, float] | None:
        """The share of calls each version of ``service`` gets (None: spread evenly); see ``weights``."""
        ...

    async def close(self) -> None: ...


async def pick_instance(registry: Registry, service: str) -> Instance:
    """A random healthy instance, weighted by the service's traffic split when the registry has one."""
    from services.common.discovery.weights import choose

    instances = await registry.healthy_instances(service)
    return choose(service, instances, await registry.traffic_split(service) if instances else None)
