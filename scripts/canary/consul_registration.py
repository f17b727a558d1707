"""A rollout's /metrics announced in Consul, for the cluster's Prometheus (its ``canary-rollout`` job).

On a cluster Prometheus finds its targets through Consul, so a rollout registers its endpoint as
the service ``canary-rollout`` on the Consul agent at ``CONSUL_HTTP_ADDR`` for as long as it runs,
with an HTTP check on that endpoint: a rollout killed with ``kill -9`` leaves a registration whose
check fails, and Consul removes it a minute later (``DeregisterCriticalServiceAfter``), where the
local platform's orphaned file targets wait for the next rollout. Prometheus and the agent must be
able to reach the address the rollout serves on (``--metrics-host``): the host running the
rollout must be routable from the cluster (a bastion, a CI runner in the cluster's network).
"""

from __future__ import annotations

import contextlib
import os
import socket
from typing import Any

import consul

from scripts.deploy_target.interface import PlatformError
from scripts.monitoring.prometheus_config import ROLLOUT_JOB
from services.common.discovery.consul import ConsulAddress, make_client

CHECK_INTERVAL = "10s"
CHECK_TIMEOUT = "2s"
DEREGISTER_AFTER = "1m"  # Consul's smallest


class ConsulRegistrationError(PlatformError):
    """Refuses the rollout before it changes anything: a cluster rollout without its metrics would
    leave the dashboard's deployment panels blind."""


def address_towards(consul_http_addr: str) -> str:
    """This host's address on the route to the Consul agent: where the cluster can reach it back."""
    parsed = ConsulAddress.parse(consul_http_addr)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect((parsed.host, parsed.port))  # UDP: picks the route, sends nothing
        return str(probe.getsockname()[0])


class ConsulRegistration:
    def __init__(self, client: consul.Consul, service: str) -> None:
        self._client = client
        self._service = service
        self.service_id = f"{ROLLOUT_JOB}-{service}-{socket.gethostname()}-{os.getpid()}"

    @classmethod
    def from_env(cls, service: str, env: dict[str, str] | None = None) -> ConsulRegistration:
        env = dict(os.environ if env is None else env)
        address = env.get("CONSUL_HTTP_ADDR")
        if not address:
            raise ConsulRegistrationError("CONSUL_HTTP_ADDR is not set: the rollout cannot announce its metrics")
        return cls(make_client(address, env.get("CONSUL_HTTP_TOKEN") or None), service)

    def announce(self, address: str) -> str:
        host, _, port = address.rpartition(":")
        check: dict[str, Any] = {
            "HTTP": f"http://{address}/metrics",
            "Interval": CHECK_INTERVAL,
            "Timeout": CHECK_TIMEOUT,
            "DeregisterCriticalServiceAfter": DEREGISTER_AFTER,
        }
        try:
            ok = self._client.agent.service.register(
                ROLLOUT_JOB,
                service_id=self.service_id,
                address=host,
                port=int(port),
                tags=["firedrill"],
                meta={"rollout_service": self._service},
                check=check,
            )
        except (consul.ConsulException, OSError) as exc:
            raise ConsulRegistrationError(f"registering {self.service_id} in Consul failed: {exc}") from exc
        if not ok:
            raise ConsulRegistrationError(f"Consul refused to register {self.service_id}")
        return f"announced in Consul as {ROLLOUT_JOB} {self.service_id}"

    def withdraw(self) -> None:
        # If Consul is away now, the check fails once the endpoint stops and Consul removes the
        # registration after DEREGISTER_AFTER.
        with contextlib.suppress(consul.ConsulException, OSError):
            self._client.agent.service.deregister(self.service_id)
