"""A grpc.aio server with Firedrill's interceptors, health and reflection.

Interceptor order, outermost first (one module each):

1. tracing — OpenTelemetry's official aio server interceptor (W3C context from metadata);
2. metrics — ``grpc_server_*`` (``grpc_metrics``; sees the final status code of every call);
3. peer identity (optional, with mTLS; ``grpc_peer_identity``) — the caller's verified client
   certificate must name one of ``ServerOptions.allowed_peers``, PERMISSION_DENIED otherwise
   (UNAUTHENTICATED when there is no verified certificate at all); before rate limiting and JWT
   auth, so a refused peer costs neither a token nor a signature check;
4. errors (``grpc_error_interceptor``) — the ONE place where domain errors become gRPC statuses,
   malformed request bytes become INVALID_ARGUMENT, and anything unexpected becomes a logged INTERNAL;
5. address limit (with ``rate_limit``; ``grpc_rate_limit``) — before the signature check, a known
   token's caller over budget or an address with too many refused tokens is RESOURCE_EXHAUSTED;
6. auth (optional; ``grpc_auth``) — bearer JWT, UNAUTHENTICATED otherwise;
7. caller limit (with ``rate_limit``) — the authenticated caller's budget, then the shared one;
   unauthenticated calls never reach it, so they cannot spend what callers share;
8. latency fault (optional; ``grpc_latency_fault``) — the drill hook that delays every application call.

TLS: ``start(server_credentials=...)`` is the one hook; None listens in plaintext. With mTLS the
handshake already refuses plaintext, certificate-less, foreign-CA and expired clients on every
method (health and reflection included); the identity check then narrows *which* platform
identities are served (health excepted, see ``grpc_peer_identity``).

Connections are bounded (``ConnectionLimits``, gRPC core's channel arguments): the TLS and HTTP/2
handshake must finish within ``handshake_timeout_s``, a connection with no call open is closed
after ``idle_timeout_s``, every connection is asked to go away after ``max_age_s`` and then
cut after ``age_grace_s`` (which also bounds a call whose request never arrives: gRPC has no
per-call read timeout on the server), and a listener holds at most ``max_connections``
connections of at most ``max_concurrent_streams`` calls each.

Running one as a service process (ops port, registration, signals): ``grpc_service``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
import grpc.aio
from google.protobuf import descriptor_pool
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import REGISTRY, CollectorRegistry

from services.common.config import ServiceConfig
from services.common.grpc_auth import Authenticator, AuthInterceptor
from services.common.grpc_error_interceptor import ErrorInterceptor
from services.common.grpc_handlers import MethodName, is_application_call
from services.common.grpc_latency_fault import LatencyFault, LatencyFaultInterceptor
from services.common.grpc_metrics import GrpcServerMetrics, ServerMetricsInterceptor
from services.common.grpc_peer_identity import GrpcPeerIdentityInterceptor
from services.common.grpc_rate_limit import AddressLimitInterceptor, CallerLimitInterceptor
from services.common.ratelimit import CallerLimits
from services.common.tls import TlsMaterial, grpc_callers

MAX_MESSAGE_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    handshake_timeout_s: float = 10.0
    idle_timeout_s: float = 300.0
    max_age_s: float = 1800.0
    age_grace_s: float = 30.0
    max_connections: int = 512
    max_concurrent_streams: int = 100

    def channel_arguments(self) -> list[tuple[str, int]]:
        return [
            ("grpc.server_handshake_timeout_ms", round(self.handshake_timeout_s * 1000)),
            ("grpc.max_connection_idle_ms", round(self.idle_timeout_s * 1000)),
            ("grpc.max_connection_age_ms", round(self.max_age_s * 1000)),
            ("grpc.max_connection_age_grace_ms", round(self.age_grace_s * 1000)),
            ("grpc.max_allowed_incoming_connections", self.max_connections),
            ("grpc.max_concurrent_streams", self.max_concurrent_streams),
        ]


CONNECTION_LIMITS = ConnectionLimits()


@dataclass(frozen=True, slots=True)
class ServerOptions:
    instrumentation: bool = True
    tracer_provider: TracerProvider | None = None
    metrics_registry: CollectorRegistry = REGISTRY
    authenticator: Authenticator | None = None
    open_methods: frozenset[str] = frozenset()
    # Per authenticated caller and in total (``services.common.ratelimit``); needs ``authenticator``.
    rate_limit: CallerLimits | None = None
    latency_fault: LatencyFault | None = None
    max_message_bytes: int = MAX_MESSAGE_BYTES
    connection_limits: ConnectionLimits = CONNECTION_LIMITS
    # With mTLS: the identities served (``tls.grpc_callers(service)``); None = no identity check.
    allowed_peers: tuple[str, ...] | None = None


class GrpcServer:
    """Build with the shared interceptors; ``add`` services; ``start``; ``stop(grace)``."""

    def __init__(self, service: str, options: ServerOptions) -> None:
        self.service = service
        interceptors: list[Any] = []
        self._metrics: GrpcServerMetrics | None = None
        if options.instrumentation:
            from opentelemetry.instrumentation.grpc import aio_server_interceptor

            tracing = aio_server_interceptor(  # type: ignore[no-untyped-call]
                tracer_provider=options.tracer_provider, filter_=is_application_call
            )
            interceptors.append(tracing)
            self._metrics = GrpcServerMetrics(service, options.metrics_registry)
            interceptors.append(ServerMetricsInterceptor(self._metrics))
        if options.allowed_peers is not None:
            interceptors.append(GrpcPeerIdentityInterceptor(service, options.allowed_peers))
        if options.rate_limit is not None and (options.authenticator is None or options.open_methods):
            raise ValueError("rate_limit is per authenticated caller: it needs an authenticator and no open methods")
        interceptors.append(ErrorInterceptor())
        if options.rate_limit is not None:
            interceptors.append(AddressLimitInterceptor(options.rate_limit))
        if options.authenticator is not None:
            interceptors.append(AuthInterceptor(options.authenticator, open_methods=options.open_methods))
        if options.rate_limit is not None:
            interceptors.append(CallerLimitInterceptor(options.rate_limit))
        if options.latency_fault is not None:
            interceptors.append(LatencyFaultInterceptor(options.latency_fault))
        self.server = grpc.aio.server(
            interceptors=interceptors,
            options=[
                ("grpc.max_receive_message_length", options.max_message_bytes),
                ("grpc.max_send_message_length", options.max_message_bytes),
                ("grpc.so_reuseport", 0),
                *options.connection_limits.channel_arguments(),
            ],
        )
        self.health = HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        self._service_names: list[str] = []
        self.port: int | None = None
        self.serving = False

    def add(self, register: Callable[[Any, Any], None], servicer: Any, full_name: str) -> None:
        """``add(movie_pb2_grpc.add_XServicer_to_server, XServicer(...), "pkg.XService")``."""
        register(servicer, self.server)
        self._service_names.append(full_name)
        if self._metrics is not None:
            for method in descriptor_pool.Default().FindServiceByName(full_name).methods:
                self._metrics.declare(MethodName(full_name, method.name))

    async def start(self, host: str, port: int, server_credentials: grpc.ServerCredentials | None = None) -> int:
        names = (
            *self._service_names,
            reflection.SERVICE_NAME,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
        )
        reflection.enable_server_reflection(names, self.server)
        address = f"{host}:{port}" if ":" not in host else f"[{host}]:{port}"
        try:
            if server_credentials is None:
                bound = self.server.add_insecure_port(address)
            else:
                bound = self.server.add_secure_port(address, server_credentials)
        except RuntimeError as exc:
            raise SystemExit(f"cannot listen on {address}: {exc} (is the port already in use?)") from None
        await self.server.start()
        for name in (*self._service_names, ""):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        self.port = bound
        self.serving = True
        return int(bound)

    async def stop(self, grace_s: float) -> None:
        """Report NOT_SERVING, refuse new calls, let in-flight calls finish within ``grace_s``."""
        if not self.serving:
            return
        self.serving = False
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace_s)


def catalog_server(
    service: str,
    config: ServiceConfig,
    *,
    tracer_provider: TracerProvider | None,
    metrics_registry: CollectorRegistry,
    tls_material: TlsMaterial | None,
    authenticator: Authenticator | None = None,
    latency_fault: LatencyFault | None = None,
) -> GrpcServer:
    """The server of a catalog service: instrumented as configured; with mTLS, serving only the
    callers the catalog lists for it."""
    return GrpcServer(
        service,
        ServerOptions(
            instrumentation=config.instrumentation,
            tracer_provider=tracer_provider,
            metrics_registry=metrics_registry,
            allowed_peers=grpc_callers(service) if tls_material is not None else None,
            authenticator=authenticator,
            latency_fault=latency_fault,
        ),
    )
