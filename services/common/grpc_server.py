"""A grpc.aio server with Firedrill's interceptors, health, reflection, /metrics and lifecycle.

Interceptor order, outermost first:

1. tracing — OpenTelemetry's official aio server interceptor (W3C context from metadata);
2. metrics — ``grpc_server_*`` (sees the final status code of every call);
3. peer identity (optional, with mTLS) — the caller's verified client certificate must name one
   of ``ServerOptions.allowed_peers``, PERMISSION_DENIED otherwise (UNAUTHENTICATED when there
   is no verified certificate at all); before rate limiting and JWT auth, so a refused peer
   costs neither a token nor a signature check;
4. errors — the ONE place where domain errors (``ServiceError``) become gRPC statuses, malformed
   request bytes become INVALID_ARGUMENT, and anything unexpected becomes a logged INTERNAL;
5. rate limit (optional) — a token bucket, RESOURCE_EXHAUSTED when empty;
6. auth (optional) — bearer JWT, UNAUTHENTICATED otherwise;
7. latency fault (optional) — the drill hook that delays every application call.

TLS: ``start(server_credentials=...)`` is the one hook; None listens in plaintext. With mTLS the
handshake already refuses plaintext, certificate-less, foreign-CA and expired clients on every
method (health and reflection included); the identity check then narrows *which* platform
identities are served. Health is exempt from that check (any platform certificate may ask whether
the server is up: it reveals nothing and must work for whatever checker the orchestrator uses);
reflection is not (it describes the API, so only the callers that may use the API get it; the
``operator`` identity is among them, so grpcurl with the operator certificate still works).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

import grpc
import grpc.aio
from aiohttp import web
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import REGISTRY, CollectorRegistry

from services.common import tls
from services.common.config import ServiceConfig
from services.common.discovery.base import Instance, Registry
from services.common.grpc_auth import Authenticator, AuthInterceptor
from services.common.grpc_errors import InvalidArgument, ResourceExhausted, ServiceError
from services.common.grpc_handlers import (
    Deserializer,
    MethodName,
    StreamBehavior,
    UnaryBehavior,
    is_application_call,
    wrap_handler,
)
from services.common.grpc_metrics import GrpcServerMetrics, ServerMetricsInterceptor
from services.common.lifecycle import instance_for, run_until_signalled, start_http_site
from services.common.ratelimit import TokenBucket
from services.common.web import HEALTH_CHECKS_KEY, create_ops_app

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 4 * 1024 * 1024
MAX_FAULT_LATENCY_MS = 10_000


class _Malformed:
    """What a request that failed to parse deserializes to; the error interceptor refuses it."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


def _tolerant(deserializer: Deserializer | None) -> Deserializer | None:
    if deserializer is None:
        return None

    def parse(data: bytes) -> Any:
        try:
            return deserializer(data)
        except Exception as exc:  # protobuf DecodeError and friends: the caller sent garbage
            return _Malformed(exc.__class__.__name__)

    return parse


async def _checked_stream(requests: Any) -> Any:
    async for item in requests:
        if isinstance(item, _Malformed):
            raise InvalidArgument(f"request message could not be parsed ({item.reason})")
        yield item


class ErrorInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    async def intercept_service(self, continuation: Any, details: Any) -> Any:
        handler = await continuation(details)
        name = MethodName.parse(details.method)
        if handler is None or name.is_system:
            return handler
        streaming_request = handler.stream_unary is not None or handler.stream_stream is not None

        def unary(behavior: UnaryBehavior) -> UnaryBehavior:
            async def translated(request: Any, context: Any) -> Any:
                try:
                    if isinstance(request, _Malformed):
                        raise InvalidArgument(f"request message could not be parsed ({request.reason})")
                    if streaming_request:
                        request = _checked_stream(request)
                    return await behavior(request, context)
                except ServiceError as exc:
                    await context.abort(exc.code, exc.message)
                except (grpc.aio.AbortError, asyncio.CancelledError):
                    raise
                except Exception:
                    log.exception("unhandled error", extra={"grpc_method": f"{name.service}/{name.method}"})
                    await context.abort(grpc.StatusCode.INTERNAL, "internal error; the logs carry the details")

            return translated

        return wrap_handler(handler, unary=unary, deserializer=_tolerant)


HEALTH_SERVICE = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
# How long a refused client-streaming call waits for the caller's first message (then refuses anyway).
REFUSAL_DRAIN_S = 1.0


class GrpcPeerIdentityInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Serve only peers whose verified client certificate names one of ``allowed``.

    The names are matched as ``tls.grpc_peer_allowed`` does (``movie`` or
    ``movie.service.consul``). A peer with a certificate that names no allowed caller gets
    PERMISSION_DENIED; a call without any verified certificate (a plaintext listener behind this
    interceptor by mistake) gets UNAUTHENTICATED: the check fails closed. Health is exempt (see
    the module docstring); every other method, reflection included, is checked.
    """

    def __init__(self, service: str, allowed: Iterable[str]) -> None:
        self.service = service
        self.allowed = tuple(allowed)
        if not self.allowed:
            raise ValueError("allowed peers must not be empty (that would refuse everyone)")
        bare = {name.removesuffix(tls.CONSUL_SUFFIX) for name in self.allowed}
        self._accepted = frozenset(bare | {tls.service_dns_name(name) for name in bare})

    def allows(self, context: Any) -> bool:
        # Fast path: the peer identities gRPC already extracted (the SANs), no auth-context copy
        # (about 1 us instead of 13 per call); certificates without SANs go the complete way.
        for identity in context.peer_identities() or ():
            name = identity.decode("utf-8", "replace") if isinstance(identity, bytes) else str(identity)
            if name in self._accepted:
                return True
        return tls.grpc_peer_allowed(context, self.allowed)

    async def _refuse_unless_allowed(self, context: Any, method: str, request: Any) -> None:
        if self.allows(context):
            return
        peer = tls.grpc_peer_identities(context)
        log.warning(
            "refused grpc peer",
            extra={"peer": ",".join(sorted(peer)) or "<none>", "grpc_method": method, "peer_address": context.peer()},
        )
        if hasattr(request, "__anext__"):
            # A client-streaming call: let the caller's first message arrive before the stream is
            # closed, or its send may fail and it sees INTERNAL instead of the status below.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(anext(request), REFUSAL_DRAIN_S)
        if not peer:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "a verified client certificate is required")
        await context.abort(grpc.StatusCode.PERMISSION_DENIED, f"this client's certificate may not call {self.service}")

    async def intercept_service(self, continuation: Any, details: Any) -> Any:
        handler = await continuation(details)
        name = MethodName.parse(details.method)
        if handler is None or name.service == HEALTH_SERVICE:
            return handler
        check = self._refuse_unless_allowed
        method = f"{name.service}/{name.method}"

        def unary(behavior: UnaryBehavior) -> UnaryBehavior:
            async def checked(request: Any, context: Any) -> Any:
                await check(context, method, request)
                return await behavior(request, context)

            return checked

        def stream(behavior: StreamBehavior) -> StreamBehavior:
            if not inspect.isasyncgenfunction(behavior):
                # A handler that writes through ``context.write`` and returns nothing.
                async def checked_writer(request: Any, context: Any) -> Any:
                    await check(context, method, request)
                    return await behavior(request, context)  # type: ignore[misc]

                return checked_writer  # type: ignore[return-value]

            async def checked_stream(request: Any, context: Any) -> AsyncIterator[Any]:
                await check(context, method, request)
                async for item in behavior(request, context):
                    yield item

            return checked_stream

        return wrap_handler(handler, unary=unary, stream=stream)


class RateLimitInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    def __init__(self, bucket: TokenBucket) -> None:
        self._bucket = bucket

    async def intercept_service(self, continuation: Any, details: Any) -> Any:
        handler = await continuation(details)
        if handler is None or not is_application_call(details):
            return handler
        bucket = self._bucket

        def unary(behavior: UnaryBehavior) -> UnaryBehavior:
            async def limited(request: Any, context: Any) -> Any:
                if not bucket.try_acquire():
                    raise ResourceExhausted(
                        f"rate limit of {bucket.rate:g} requests/s exceeded; retry in {bucket.retry_after_s():.3f}s"
                    )
                return await behavior(request, context)

            return limited

        return wrap_handler(handler, unary=unary)


class LatencyFault:
    """Drill hook: delay every application call by ``latency_ms`` (0 = off, bounded)."""

    def __init__(self, latency_ms: int = 0) -> None:
        self.latency_ms = 0
        self.set(latency_ms)

    def set(self, latency_ms: int) -> None:
        if not 0 <= latency_ms <= MAX_FAULT_LATENCY_MS:
            raise ValueError(f"latency must be between 0 and {MAX_FAULT_LATENCY_MS} ms, got {latency_ms}")
        self.latency_ms = latency_ms


class LatencyFaultInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    def __init__(self, fault: LatencyFault) -> None:
        self._fault = fault

    async def intercept_service(self, continuation: Any, details: Any) -> Any:
        handler = await continuation(details)
        if handler is None or not is_application_call(details):
            return handler
        fault = self._fault

        def unary(behavior: UnaryBehavior) -> UnaryBehavior:
            async def delayed(request: Any, context: Any) -> Any:
                if fault.latency_ms:
                    await asyncio.sleep(fault.latency_ms / 1000)
                return await behavior(request, context)

            return delayed

        return wrap_handler(handler, unary=unary)


@dataclass(frozen=True, slots=True)
class ServerOptions:
    instrumentation: bool = True
    tracer_provider: TracerProvider | None = None
    metrics_registry: CollectorRegistry = REGISTRY
    authenticator: Authenticator | None = None
    open_methods: frozenset[str] = frozenset()
    rate_limit: TokenBucket | None = None
    latency_fault: LatencyFault | None = None
    max_message_bytes: int = MAX_MESSAGE_BYTES
    # With mTLS: the identities served (``tls.allowed_callers(service)``); None = no identity check.
    allowed_peers: tuple[str, ...] | None = None


class GrpcServer:
    """Build with the shared interceptors; ``add`` services; ``start``; ``stop(grace)``."""

    def __init__(self, service: str, options: ServerOptions) -> None:
        self.service = service
        interceptors: list[Any] = []
        if options.instrumentation:
            from opentelemetry.instrumentation.grpc import aio_server_interceptor

            tracing = aio_server_interceptor(  # type: ignore[no-untyped-call]
                tracer_provider=options.tracer_provider, filter_=is_application_call
            )
            interceptors.append(tracing)
            interceptors.append(ServerMetricsInterceptor(GrpcServerMetrics(service, options.metrics_registry)))
        if options.allowed_peers is not None:
            interceptors.append(GrpcPeerIdentityInterceptor(service, options.allowed_peers))
        interceptors.append(ErrorInterceptor())
        if options.rate_limit is not None:
            interceptors.append(RateLimitInterceptor(options.rate_limit))
        if options.authenticator is not None:
            interceptors.append(AuthInterceptor(options.authenticator, open_methods=options.open_methods))
        if options.latency_fault is not None:
            interceptors.append(LatencyFaultInterceptor(options.latency_fault))
        self.server = grpc.aio.server(
            interceptors=interceptors,
            options=[
                ("grpc.max_receive_message_length", options.max_message_bytes),
                ("grpc.max_send_message_length", options.max_message_bytes),
                ("grpc.so_reuseport", 0),
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


def metrics_app(
    service: str,
    server: GrpcServer,
    *,
    registry: CollectorRegistry = REGISTRY,
    checks: dict[str, Any] | None = None,
) -> web.Application:
    """The small plain-HTTP app on the metrics port: /metrics and /health."""
    app = create_ops_app(service, registry)

    async def grpc_check() -> dict[str, Any]:
        if not server.serving:
            raise RuntimeError("gRPC server is not serving")
        return {"ok": True, "port": server.port}

    app[HEALTH_CHECKS_KEY]["grpc"] = grpc_check
    for name, check in (checks or {}).items():
        app[HEALTH_CHECKS_KEY][name] = check
    return app


async def serve_grpc(
    server: GrpcServer,
    config: ServiceConfig,
    registry: Registry,
    *,
    http_app: web.Application,
    extra_sites: list[tuple[web.Application, int]] | None = None,
    instance_meta: dict[str, str] | None = None,
    server_credentials: grpc.ServerCredentials | None = None,
    on_shutdown: Callable[[], Any] | None = None,
) -> None:
    """Start the gRPC server and the metrics site (plus ``extra_sites``), register, run until SIGTERM."""
    port = await server.start(config.bind_host, config.port, server_credentials)
    runners = []
    if config.metrics_port is not None:
        runners.append(await start_http_site(http_app, config.bind_host, config.metrics_port, config.shutdown_grace_s))
    for app, site_port in extra_sites or []:
        runners.append(await start_http_site(app, config.bind_host, site_port, config.shutdown_grace_s))
    instance: Instance = instance_for(replace(config, port=port), "grpc")
    if instance_meta:
        instance = replace(instance, meta={**instance.meta, **instance_meta})

    async def shutdown() -> None:
        await server.stop(config.shutdown_grace_s)
        for runner in runners:
            await runner.cleanup()
        if on_shutdown is not None:
            result = on_shutdown()
            if asyncio.iscoroutine(result):
                await result

    await run_until_signalled(config, registry, [instance], shutdown)
