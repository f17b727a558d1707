"""How each catalog service is deployed on Nomad: its job, instances, resources and Consul lookups.

Ports, module names and health paths come from ``services.common.catalog``, what each service asks
Vault for from ``scripts.vault.identity_requests`` (the local platform asks the same); this table
only adds what neither knows because it is about the cluster.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ConsulLookup:
    """An environment variable whose value is another service's address from Consul."""

    env: str
    service: str
    scheme: str = "http"


@dataclass(frozen=True, slots=True)
class ServiceDeployment:
    service: str
    job: str
    default_count: int
    cpu: int
    memory: int
    # SQLite under the allocation's data dir: one writer, kept across restarts and deployments.
    stateful: bool = False
    lookups: tuple[ConsulLookup, ...] = ()


OTLP_COLLECTOR = ConsulLookup(env="OTEL_EXPORTER_OTLP_ENDPOINT", service="otel-collector")

DEPLOYMENTS: tuple[ServiceDeployment, ...] = (
    ServiceDeployment("hello", "hello", default_count=2, cpu=200, memory=192),
    ServiceDeployment("response", "response", default_count=2, cpu=300, memory=384),
    ServiceDeployment(
        "incidents",
        "incidents",
        default_count=1,
        cpu=200,
        memory=256,
        stateful=True,
        lookups=(ConsulLookup(env="FIREDRILL_PROMETHEUS_URL", service="prometheus"),),
    ),
    ServiceDeployment("metadata", "movie", default_count=1, cpu=200, memory=256, stateful=True),
    ServiceDeployment("rating", "movie", default_count=1, cpu=200, memory=256, stateful=True),
    ServiceDeployment("movie", "movie", default_count=2, cpu=200, memory=256),
    ServiceDeployment("auth", "movie", default_count=2, cpu=200, memory=256),
)

JOB_DESCRIPTIONS: dict[str, str] = {
    "hello": "hello: the user-facing greeting; calls response through Consul.",
    "response": "response: answers hello and hosts the fault-injection endpoints (admin token from Vault).",
    "incidents": "incidents: Alertmanager webhook receiver and incident store (one writer: SQLite on a sticky disk).",
    "movie": "movie application: metadata, rating, the movie gateway and auth, one group each (gRPC).",
}


def service_jobs() -> dict[str, tuple[ServiceDeployment, ...]]:
    """Job name → its groups, in catalog order."""
    jobs: dict[str, list[ServiceDeployment]] = {}
    for item in DEPLOYMENTS:
        jobs.setdefault(item.job, []).append(item)
    return {name: tuple(groups) for name, groups in jobs.items()}
