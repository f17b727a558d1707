"""The Consul registry: TTL health checks that each instance refreshes.

py-consul's client is blocking (requests); every call runs in a worker thread through
``asyncio.to_thread`` so an event loop that serves traffic never waits on Consul.

On Nomad the job's ``service`` block registers instances (``FIREDRILL_SELF_REGISTER=false``) and
services only *read* from this registry; on a host without Nomad the service registers itself
with a TTL check and heartbeats it, and Consul drops it from healthy answers when it stops.
"""

from __future__ import annotations

import asyncio
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import consul
import requests

from services.common.discovery.base import DiscoveryError, Instance

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ConsulAddress:
    host: str
    port: int
    scheme: str

    @classmethod
    def parse(cls, address: str) -> ConsulAddress:
        """Accept ``host:port``, ``http://host:port`` or ``https://host:port`` (CONSUL_HTTP_ADDR forms)."""
        raw = address.strip()
        if not raw:
            raise DiscoveryError("empty Consul address")
        parsed = urllib.parse.urlsplit(raw if "://" in raw else f"http://{raw}")
        if parsed.scheme not in {"http", "https"} or not parsed.hostname:
            raise DiscoveryError(f"Consul address {address!r} is not host:port or http(s)://host:port")
        try:
            port = parsed.port or (8501 if parsed.scheme == "https" else 8500)
        except ValueError:
            raise DiscoveryError(f"Consul address {address!r} has an invalid port") from None
        return cls(parsed.hostname, port, parsed.scheme)


def _duration(seconds: float) -> str:
    """Seconds as a Go duration string Consul accepts ("10s", "0.5s")."""
    return f"{seconds:g}s"


def check_id(instance: Instance) -> str:
    """The ID Consul gives the check embedded in a service registration."""
    return f"service:{instance.instance_id}"


def make_client(address: str, token: str | None = None, ca_file: Path | None = None) -> consul.Consul:
    """A py-consul client for ``address``; an https agent is verified against ``ca_file`` when given."""
    parsed = ConsulAddress.parse(address)
    verify: bool | str = True
    if parsed.scheme == "https" and ca_file is not None:
        verify = str(ca_file)
    return consul.Consul(host=parsed.host, port=parsed.port, scheme=parsed.scheme, token=token, verify=verify)


async def call(what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run one blocking client call in a thread; transport and API errors become DiscoveryError."""
    try:
        return await asyncio.to_thread(fn, *args, **kwargs)
    except (consul.ConsulException, requests.RequestException) as exc:
        raise DiscoveryError(f"consul {what} failed: {exc}") from exc


def instance_from_entry(entry: dict[str, Any]) -> Instance:
    """One element of ``/v1/health/service/<name>`` as an Instance."""
    svc = entry["Service"]
    host = svc.get("Address") or entry.get("Node", {}).get("Address", "")
    meta = {str(k): str(v) for k, v in (svc.get("Meta") or {}).items()}
    return Instance(service=svc["Service"], instance_id=svc["ID"], host=host, port=int(svc["Port"]), meta=meta)


class ConsulRegistry:
    """Registry protocol over a Consul agent's HTTP API."""

    def __init__(
        self,
        address: str,
        *,
        ttl_s: float = 10.0,
        token: str | None = None,
        deregister_after_s: float = 60.0,
        client: consul.Consul | None = None,
        ca_file: Path | None = None,
    ) -> None:
        if ttl_s <= 0:
            raise ValueError(f"ttl_s must be positive, got {ttl_s}")
        self._client = client or make_client(address, token, ca_file)
        self._ttl_s = ttl_s
        self._deregister_after_s = max(deregister_after_s, ttl_s)

    @property
    def client(self) -> consul.Consul:
        return self._client

    def _register_blocking(self, instance: Instance) -> None:
        check: dict[str, Any] = {
            "TTL": _duration(self._ttl_s),
            # A crashed instance that never deregisters is removed by Consul itself.
            "DeregisterCriticalServiceAfter": _duration(self._deregister_after_s),
        }
        tags = [instance.meta["protocol"]] if "protocol" in instance.meta else None
        ok = self._client.agent.service.register(
            instance.service,
            service_id=instance.instance_id,
            address=instance.host,
            port=instance.port,
            tags=tags,
            meta=dict(instance.meta) or None,
            check=check,
        )
        if not ok:
            raise DiscoveryError(f"consul refused to register {instance.instance_id}")
        # A TTL check starts critical; report passing at once so callers see the instance now.
        self._client.agent.check.ttl_pass(check_id(instance))

    def _heartbeat_blocking(self, instance: Instance) -> None:
        if self._client.agent.check.ttl_pass(check_id(instance)):
            return
        # Unknown check: the agent restarted or reaped us. Come back.
        self._register_blocking(instance)

    def _healthy_blocking(self, service: str) -> list[Instance]:
        _index, entries = self._client.health.service(service, passing=True)
        found = [instance_from_entry(entry) for entry in entries or []]
        return sorted(found, key=lambda i: i.instance_id)

    async def register(self, instance: Instance) -> None:
        await call("register", self._register_blocking, instance)

    async def deregister(self, instance: Instance) -> None:
        await call("deregister", self._client.agent.service.deregister, instance.instance_id)

    async def heartbeat(self, instance: Instance) -> None:
        await call("heartbeat", self._heartbeat_blocking, instance)

    async def healthy_instances(self, service: str) -> list[Instance]:
        return await call("health query", self._healthy_blocking, service)

    async def traffic_split(self, service: str) -> dict[str, float] | None:
        """None: on Nomad a canary's share of calls follows the canary count against the group's."""
        return None

    async def close(self) -> None:
        session = getattr(self._client.http, "session", None)
        if session is not None:
            await asyncio.to_thread(session.close)
