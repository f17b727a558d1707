"""The one source of truth for service names, ports, health and metrics endpoints, and callers.

Everything that needs to know where a service listens reads it from here: the services' own
configuration defaults, the local platform (supervisor programs, Prometheus file discovery),
the Nomad job parity tests, the Prometheus rule generator and the README's ports table.

The local platform can shift every port by ``FIREDRILL_PORT_OFFSET`` so that a test platform
can run beside a developer's own; ``port()`` applies it in one place. Services pass the
environment their configuration was loaded from; scripts may leave it to the process environment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum


class Protocol(StrEnum):
    HTTP = "http"
    GRPC = "grpc"


class Access(StrEnum):
    """The kinds of call an mTLS listener's allow-list tells apart.

    On an HTTP listener GET, HEAD and OPTIONS read and every other method writes. A gRPC listener
    does not tell them apart: its callers are the same for both (``Callers.same``).
    """

    READ = "read"
    WRITE = "write"


READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def http_access(method: str) -> Access:
    return Access.READ if method.upper() in READ_METHODS else Access.WRITE


@dataclass(frozen=True, slots=True)
class Callers:
    """Who may call a service's mTLS listener: the certificate identities served, by kind of access.

    An identity is a catalog service or a client-only identity (``tls.OBSERVERS``: prometheus,
    alertmanager, operator); each has its own PKI role. Everyone else with a certificate from the
    platform CA is refused (HTTP 403, gRPC PERMISSION_DENIED).
    """

    read: tuple[str, ...]
    write: tuple[str, ...]
    # Paths that change the server whatever their method: response's fault endpoints are GETs
    # (/slow, /leak, /cpu) but burn time, memory and CPU, so only writers may call them.
    write_paths: frozenset[str] = frozenset()

    @classmethod
    def same(cls, *identities: str) -> Callers:
        return cls(read=identities, write=identities)

    def allowed(self, access: Access) -> tuple[str, ...]:
        return self.read if access is Access.READ else self.write

    def access(self, method: str, path: str) -> Access:
        """What an HTTP request does: a write when its path is a write path, else by its method."""
        return Access.WRITE if path in self.write_paths else http_access(method)

    @property
    def anyone(self) -> tuple[str, ...]:
        """Every identity that may make some call, in declaration order."""
        return tuple(dict.fromkeys((*self.read, *self.write)))

    @property
    def uniform(self) -> bool:
        return set(self.read) == set(self.write)


@dataclass(frozen=True, slots=True)
class Listener:
    """One port a service listens on: mTLS with an allow-list, or plain (``callers`` None)."""

    service: str
    role: str  # "api" (the service's own port), "front" (movie's HTTP/JSON), "ops" (/metrics, /health)
    port: int
    protocol: Protocol
    callers: Callers | None

    @property
    def mtls(self) -> bool:
        return self.callers is not None


class Tier(StrEnum):
    """Who calls the service: users (SLOs apply) or other services."""

    EDGE = "edge"
    INTERNAL = "internal"


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    """A Firedrill application service."""

    name: str
    protocol: Protocol
    port: int
    module: str
    description: str
    tier: Tier = Tier.INTERNAL
    # /metrics and /health on a separate plain HTTP port bound to the service's host (loopback
    # locally): scrapes and health checks keep working when certificates or Vault do not.
    metrics_port: int | None = None
    # An extra plain HTTP/JSON front (the movie gateway has one for curl users).
    http_port: int | None = None
    depends_on: tuple[str, ...] = ()
    # Who may call the mTLS listener (``port``); None when that listener is plain (hello's edge).
    callers: Callers | None = None

    @property
    def serves_users_plain_http(self) -> bool:
        """An edge's HTTP listener (hello's, movie's JSON front) is plain: on a cluster an ingress
        terminates users' TLS in front of it. Every other listener requires mTLS when TLS is on."""
        return self.tier is Tier.EDGE and (self.protocol is Protocol.HTTP or self.http_port is not None)

    @property
    def listeners(self) -> tuple[Listener, ...]:
        """Every port the service listens on (base ports, before the offset), and who may call it."""
        found = [Listener(self.name, "api", self.port, self.protocol, self.callers)]
        if self.http_port is not None:
            found.append(Listener(self.name, "front", self.http_port, Protocol.HTTP, None))
        if self.metrics_port is not None:
            found.append(Listener(self.name, "ops", self.metrics_port, Protocol.HTTP, None))
        return tuple(found)

    @property
    def scrape_port(self) -> int:
        return self.metrics_port if self.metrics_port is not None else self.port

    @property
    def health_path(self) -> str:
        return "/health"

    @property
    def metrics_path(self) -> str:
        return "/metrics"


@dataclass(frozen=True, slots=True)
class InfraSpec:
    """A third-party component of the platform (monitoring, tracing, secrets)."""

    name: str
    port: int
    health_path: str
    description: str
    # Local platform only starts it when the binary is found.
    optional_locally: bool = False


SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec(
        name="hello",
        protocol=Protocol.HTTP,
        port=5050,
        metrics_port=9150,
        module="services.hello",
        description="user-facing greeting; calls response",
        tier=Tier.EDGE,
        depends_on=("response",),
    ),
    ServiceSpec(
        name="response",
        protocol=Protocol.HTTP,
        port=6060,
        metrics_port=9160,
        module="services.response",
        description="answers hello; hosts the SRE fault-injection endpoints",
        # hello reads /response; the operator's drills inject faults (/admin/faults, POST /log).
        callers=Callers(
            read=("hello", "operator"), write=("operator",), write_paths=frozenset({"/slow", "/leak", "/cpu"})
        ),
    ),
    ServiceSpec(
        name="incidents",
        protocol=Protocol.HTTP,
        port=5001,
        metrics_port=9101,
        module="services.incidents",
        description="Alertmanager webhook receiver and incident store",
        # Only Alertmanager posts notifications; only the operator's tooling reads incidents.
        callers=Callers(read=("operator",), write=("alertmanager",)),
    ),
    ServiceSpec(
        name="metadata",
        protocol=Protocol.GRPC,
        port=8081,
        metrics_port=9181,
        module="services.metadata",
        description="movie metadata (gRPC, SQLite)",
        callers=Callers.same("movie", "operator"),
    ),
    ServiceSpec(
        name="rating",
        protocol=Protocol.GRPC,
        port=8082,
        metrics_port=9182,
        module="services.rating",
        description="movie ratings and aggregates (gRPC, SQLite)",
        callers=Callers.same("movie", "operator"),
    ),
    ServiceSpec(
        name="movie",
        protocol=Protocol.GRPC,
        port=8083,
        metrics_port=9183,
        http_port=8084,
        module="services.movie",
        description="movie gateway: fans out to metadata and rating",
        tier=Tier.EDGE,
        depends_on=("metadata", "rating", "auth"),
        # The gRPC API; users reach the plain HTTP/JSON front (http_port) instead.
        callers=Callers.same("operator"),
    ),
    ServiceSpec(
        name="auth",
        protocol=Protocol.GRPC,
        port=8085,
        metrics_port=9185,
        module="services.auth",
        description="issues and validates JWTs",
        callers=Callers.same("movie", "operator"),
    ),
)

INFRA: tuple[InfraSpec, ...] = (
    InfraSpec("prometheus", 9090, "/-/ready", "metrics and alert evaluation"),
    InfraSpec("alertmanager", 9093, "/-/ready", "alert routing"),
    InfraSpec("openbao", 8200, "/v1/sys/health", "Vault-API secrets (plays Vault locally)"),
    InfraSpec("vault-agent", 8210, "/health", "renders certificates and keys to files (local platform)"),
    InfraSpec("restarter", 8211, "/metrics", "restarts failed programs, counts restarts (local platform)"),
    InfraSpec("grafana", 3000, "/api/health", "dashboards", optional_locally=True),
    InfraSpec("jaeger", 16686, "/", "trace UI", optional_locally=True),
    InfraSpec("otel-collector", 4317, "/", "OTLP receiver in front of Jaeger", optional_locally=True),
)

_BY_NAME = {s.name: s for s in SERVICES}
_INFRA_BY_NAME = {i.name: i for i in INFRA}


def service(name: str) -> ServiceSpec:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown service {name!r}; known: {', '.join(_BY_NAME)}") from None


def infra(name: str) -> InfraSpec:
    try:
        return _INFRA_BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown component {name!r}; known: {', '.join(_INFRA_BY_NAME)}") from None


def service_names() -> tuple[str, ...]:
    return tuple(_BY_NAME)


def base_ports() -> frozenset[int]:
    """Every port the catalog names, before the offset: what a platform binds on one host."""
    service_ports = {p for s in SERVICES for p in (s.port, s.metrics_port, s.http_port) if p is not None}
    return frozenset(service_ports | {i.port for i in INFRA})


def port_offset(environ: Mapping[str, str] = os.environ) -> int:
    raw = environ.get("FIREDRILL_PORT_OFFSET", "0")
    try:
        offset = int(raw)
    except ValueError:
        raise ValueError(f"FIREDRILL_PORT_OFFSET must be an integer, got {raw!r}") from None
    if not 0 <= offset <= 50000:
        raise ValueError(f"FIREDRILL_PORT_OFFSET must be between 0 and 50000, got {offset}")
    return offset


def port(base: int, environ: Mapping[str, str] = os.environ) -> int:
    """A catalog port shifted by the port offset that ``environ`` sets."""
    return base + port_offset(environ)
