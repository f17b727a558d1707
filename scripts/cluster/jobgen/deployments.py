"""How each catalog service is deployed on Nomad: its job, instances, resources, and the files Vault gives it.

Ports, module names and health paths come from ``services.common.catalog``; this table only adds
what the catalog does not know because it is about the cluster.
"""

from __future__ import annotations

from dataclasses import dataclass

from scripts.vault.vaultapi import ADMIN_TOKEN_PATH, JWT_KEYS_PATH, JWT_PUBLIC_PATH, KV_MOUNT


@dataclass(frozen=True, slots=True)
class KvFile:
    """A Vault KV v2 secret rendered into the task's secrets/ and named to the service by an env var."""

    env: str
    file: str
    kv_path: str
    # One field of the secret, or None for the whole data map as JSON.
    field: str | None
    comment: str

    @property
    def api_path(self) -> str:
        return f"{KV_MOUNT}/data/{self.kv_path}"


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
    kv_files: tuple[KvFile, ...] = ()
    lookups: tuple[ConsulLookup, ...] = ()


JWT_PUBLIC_KEYS = KvFile(
    env="FIREDRILL_JWT_PUBLIC_KEYS_FILE",
    file="jwt_public_keys.json",
    kv_path=JWT_PUBLIC_PATH,
    field=None,
    comment="Verification keys only (no private key): tokens issued by auth are checked locally.",
)
JWT_SIGNING_KEYS = KvFile(
    env="FIREDRILL_JWT_KEY_FILE",
    file="jwt_key.json",
    kv_path=JWT_KEYS_PATH,
    field=None,
    comment="The signing key ring (active kid + previous keys that still validate until their tokens expire).",
)
ADMIN_TOKEN = KvFile(
    env="FIREDRILL_ADMIN_TOKEN_FILE",
    file="admin_token",
    kv_path=ADMIN_TOKEN_PATH,
    field="token",
    comment="The admin token that guards the fault-injection endpoints.",
)
OTLP_COLLECTOR = ConsulLookup(env="OTEL_EXPORTER_OTLP_ENDPOINT", service="otel-collector")

DEPLOYMENTS: tuple[ServiceDeployment, ...] = (
    ServiceDeployment("hello", "hello", default_count=2, cpu=200, memory=192),
    ServiceDeployment("response", "response", default_count=2, cpu=300, memory=384, kv_files=(ADMIN_TOKEN,)),
    ServiceDeployment(
        "incidents",
        "incidents",
        default_count=1,
        cpu=200,
        memory=256,
        stateful=True,
        lookups=(ConsulLookup(env="FIREDRILL_PROMETHEUS_URL", service="prometheus"),),
    ),
    ServiceDeployment(
        "metadata", "movie", default_count=1, cpu=200, memory=256, stateful=True, kv_files=(JWT_PUBLIC_KEYS,)
    ),
    ServiceDeployment(
        "rating", "movie", default_count=1, cpu=200, memory=256, stateful=True, kv_files=(JWT_PUBLIC_KEYS,)
    ),
    ServiceDeployment("movie", "movie", default_count=2, cpu=200, memory=256, kv_files=(JWT_PUBLIC_KEYS,)),
    ServiceDeployment("auth", "movie", default_count=2, cpu=200, memory=256, kv_files=(JWT_SIGNING_KEYS,)),
)

JOB_DESCRIPTIONS: dict[str, str] = {
    "hello": "hello: the user-facing greeting; calls response through Consul.",
    "response": "response: answers hello and hosts the fault-injection endpoints (admin token from Vault).",
    "incidents": "incidents: Alertmanager webhook receiver and incident store (one writer: SQLite on a sticky disk).",
    "movie": "movie application: metadata, rating, the movie gateway and auth, one group each (gRPC).",
}


def deployment(service: str) -> ServiceDeployment:
    for item in DEPLOYMENTS:
        if item.service == service:
            return item
    raise KeyError(f"no deployment for service {service!r}")


def service_jobs() -> dict[str, tuple[ServiceDeployment, ...]]:
    """Job name → its groups, in catalog order."""
    jobs: dict[str, list[ServiceDeployment]] = {}
    for item in DEPLOYMENTS:
        jobs.setdefault(item.job, []).append(item)
    return {name: tuple(groups) for name, groups in jobs.items()}
