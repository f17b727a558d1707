"""What a service has seen of its registry: whether it answers, and whether it just came back.

``ObservedRegistry`` wraps the registry a service uses (the local file registry or Consul) and
records the outcome of every call it makes -- lookups, heartbeats, registrations:

- ``discovery_registry_reachable{service}``: 1 while the service's last registry call succeeded,
  0 after a failed one (RegistryUnreachable is written against it);
- ``discovery_registry_errors_total{service,operation}``: failed calls, by operation.

``RegistryHealth`` also says whether the registry failed within the last ``settle_s`` (a heartbeat
TTL): right after an outage the registry has missed every instance's heartbeats, so for one TTL an
empty answer says more about the outage than about the instances, and the instance cache keeps the
instances it knew instead (``services.common.discovery.cache``).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge

from services.common.discovery.base import DiscoveryError, Instance, NoHealthyInstance, Registry

T = TypeVar("T")

REACHABLE = "discovery_registry_reachable"
ERRORS = "discovery_registry_errors_total"


class RegistryHealth:
    """The outcome of a process's registry calls, and when the last one failed."""

    def __init__(self, settle_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._settle_s = settle_s
        self._clock = clock
        self._last_failed_at: float | None = None
        self.reachable = True  # nothing failed yet

    def succeeded(self) -> None:
        self.reachable = True

    def failed(self) -> None:
        self.reachable = False
        self._last_failed_at = self._clock()

    def settling(self) -> bool:
        """Unreachable now, or reachable again for less than ``settle_s``."""
        if not self.reachable:
            return True
        return self._last_failed_at is not None and self._clock() - self._last_failed_at < self._settle_s


class RegistryMetrics:
    def __init__(self, service: str, registry: CollectorRegistry = REGISTRY) -> None:
        self._service = service
        self.reachable = Gauge(
            REACHABLE,
            "1 while this service's last call to the service registry succeeded, else 0.",
            ["service"],
            registry=registry,
        )
        self.errors = Counter(
            ERRORS,
            "Calls to the service registry that failed, by operation.",
            ["service", "operation"],
            registry=registry,
        )

    def watch(self, health: RegistryHealth) -> None:
        self.reachable.labels(self._service).set_function(lambda: 1.0 if health.reachable else 0.0)

    def failed(self, operation: str) -> None:
        self.errors.labels(self._service, operation).inc()


class ObservedRegistry:
    """A Registry that records each call's outcome in ``health`` (and in ``metrics`` when given)."""

    def __init__(self, inner: Registry, health: RegistryHealth, metrics: RegistryMetrics | None = None) -> None:
        self.inner = inner
        self.health = health
        self._metrics = metrics
        if metrics is not None:
            metrics.watch(health)

    async def _observed(self, operation: str, call: Awaitable[T]) -> T:
        try:
            result = await call
        except NoHealthyInstance:
            self.health.succeeded()  # the registry answered: there is no instance
            raise
        except DiscoveryError:
            self.health.failed()
            if self._metrics is not None:
                self._metrics.failed(operation)
            raise
        self.health.succeeded()
        return result

    async def register(self, instance: Instance) -> None:
        await self._observed("register", self.inner.register(instance))

    async def deregister(self, instance: Instance) -> None:
        await self._observed("deregister", self.inner.deregister(instance))

    async def heartbeat(self, instance: Instance) -> None:
        await self._observed("heartbeat", self.inner.heartbeat(instance))

    async def healthy_instances(self, service: str) -> list[Instance]:
        return await self._observed("lookup", self.inner.healthy_instances(service))

    async def traffic_split(self, service: str) -> dict[str, float] | None:
        return await self._observed("lookup", self.inner.traffic_split(service))

    async def close(self) -> None:
        await self.inner.close()


def observed(
    inner: Registry, service: str, settle_s: float, registry: CollectorRegistry = REGISTRY
) -> ObservedRegistry:
    """``inner`` with its calls measured under ``service`` (once per process: the metrics register globally)."""
    return ObservedRegistry(inner, RegistryHealth(settle_s), RegistryMetrics(service, registry))
