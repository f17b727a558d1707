"""A short-lived cache in front of a registry, so callers do not ask it on every request.

When the registry cannot be reached, callers keep the instances it last named: the instances are
most likely still there, and calling them beats failing every request until the registry returns.
The same holds for an empty answer while the registry settles after an outage (it missed every
heartbeat meanwhile; ``services.common.discovery.observed``). A registry that answers "no
instance" when it is healthy is believed: that is a service that is down.
"""

from __future__ import annotations

import contextlib
import logging
import time

from services.common.discovery.base import DiscoveryError, Instance, NoHealthyInstance, Registry
from services.common.discovery.observed import ObservedRegistry, RegistryHealth
from services.common.discovery.weights import choose

log = logging.getLogger(__name__)


class RegistryUnreachable(NoHealthyInstance):
    """No instance is known: the registry cannot be asked and never named one."""

    def __init__(self, service: str, reason: str) -> None:
        super().__init__(service)
        self.args = (f"no known instance of {service!r}: the registry is unreachable ({reason})",)


class InstanceCache:
    def __init__(self, registry: Registry, max_age_s: float, health: RegistryHealth | None = None) -> None:
        self._registry = registry
        self._max_age_s = max_age_s
        if health is None and isinstance(registry, ObservedRegistry):
            health = registry.health
        self._health = health
        self._entries: dict[str, tuple[float, list[Instance]]] = {}
        # The registry's last non-empty answer per service, kept across forget().
        self._last_known: dict[str, list[Instance]] = {}
        self._on_fallback: set[str] = set()  # services served from _last_known since the registry failed
        # The traffic split between versions (scripts.canary) asked with the instances; the last one
        # read stays in force while the registry cannot be asked.
        self._splits: dict[str, dict[str, float] | None] = {}

    async def instances(self, service: str) -> list[Instance]:
        cached = self._entries.get(service)
        now = time.monotonic()
        if cached is not None and now - cached[0] < self._max_age_s:
            return cached[1]
        known = self._last_known.get(service, [])
        try:
            fresh = await self._registry.healthy_instances(service)
        except NoHealthyInstance:
            raise
        except DiscoveryError as exc:
            if not known:
                raise RegistryUnreachable(service, str(exc)) from exc
            if service not in self._on_fallback:
                self._on_fallback.add(service)
                log.warning(
                    "registry unreachable; calling the instances it last named",
                    extra={"upstream": service, "instances": len(known), "reason": str(exc)[:200]},
                )
            self._entries[service] = (now, known)
            return known
        if not fresh and known and self._health is not None and self._health.settling():
            # Not cached: ask again next time, the heartbeats are arriving.
            return known
        if service in self._on_fallback:
            self._on_fallback.discard(service)
            log.info("registry answers again", extra={"upstream": service, "instances": len(fresh)})
        if fresh:
            self._last_known[service] = fresh
        else:
            self._last_known.pop(service, None)
        await self._refresh_split(service, fresh)
        self._entries[service] = (now, fresh)
        return fresh

    async def _refresh_split(self, service: str, instances: list[Instance]) -> None:
        if len(instances) < 2:
            self._splits[service] = None
            return
        with contextlib.suppress(DiscoveryError):  # keep the split last read, as the instances are kept
            self._splits[service] = await self._registry.traffic_split(service)

    async def pick(self, service: str, avoid: Instance | None = None) -> Instance:
        """A healthy instance, by the traffic split's weights; ``avoid`` only when another is there."""
        instances = await self.instances(service)
        if avoid is not None and len(instances) > 1:
            instances = [i for i in instances if i != avoid]
        return choose(service, instances, self._splits.get(service))

    def forget(self, service: str) -> None:
        """Ask the registry again next time, e.g. after a connection to an instance was refused.

        The last known instances stay as the fallback for a registry that cannot be asked.
        """
        self._entries.pop(service, None)
