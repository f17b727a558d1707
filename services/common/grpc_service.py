"""Running a gRPC service process: the ops HTTP app, registration, signals, and the one ``main``.

``run_grpc_service`` is the whole ``__main__`` of a gRPC service backed by a store (auth,
metadata, rating): load the configuration, take the TLS material (gRPC over mTLS when
``FIREDRILL_TLS_*`` are set, certificate rotations picked up without a restart; the ops port
stays plain HTTP), build the app, serve until SIGTERM. ``serve_grpc`` is the part a service
with more listeners (the movie gateway) calls itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Generic, Protocol, TypeVar

import grpc
from aiohttp import web
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import REGISTRY, CollectorRegistry

from services.common import grpc_credentials
from services.common.admin_token import guard_debug_endpoints
from services.common.config import ServiceConfig
from services.common.discovery.base import Instance, Registry
from services.common.entrypoint import run_service
from services.common.grpc_latency_fault import LatencyFault
from services.common.grpc_server import GrpcServer
from services.common.lifecycle import instance_for, run_until_signalled, start_http_site
from services.common.metrics import build_info
from services.common.tls import TlsMaterial, service_tls
from services.common.web import HEALTH_CHECKS_KEY, create_ops_app


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
    """Start the gRPC server and the metrics site (plus ``extra_sites``), register, run until SIGTERM.

    The metrics site's debugging endpoints open with this service's own admin token."""
    await guard_debug_endpoints(http_app, config)
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


class Store(Protocol):
    async def health(self) -> dict[str, object]: ...

    async def close(self) -> None: ...


StoreT = TypeVar("StoreT", bound=Store)


@dataclass
class StoreBackedService(Generic[StoreT]):
    """A gRPC server in front of one store, with the drill latency fault (metadata, rating)."""

    server: GrpcServer
    repository: StoreT
    fault: LatencyFault

    async def close(self) -> None:
        await self.repository.close()


class StoredGrpcApp(Protocol):
    """What the ``build`` of a store-backed gRPC service returns."""

    @property
    def server(self) -> GrpcServer: ...

    @property
    def repository(self) -> Store: ...

    async def close(self) -> None: ...


class HasServiceConfig(Protocol):
    @property
    def service(self) -> ServiceConfig: ...


ConfigT = TypeVar("ConfigT", bound=HasServiceConfig)
ConfigT_contra = TypeVar("ConfigT_contra", bound=HasServiceConfig, contravariant=True)


class BuildApp(Protocol[ConfigT_contra]):
    def __call__(
        self, config: ConfigT_contra, *, tracer_provider: TracerProvider | None, tls_material: TlsMaterial | None
    ) -> Awaitable[StoredGrpcApp]: ...


def run_grpc_service(name: str, load_config: Callable[[Mapping[str, str]], ConfigT], build: BuildApp[ConfigT]) -> None:
    """``python -m services.<name>``: configuration from FIREDRILL_* variables, serve until SIGTERM."""

    async def serve(config: ConfigT, registry: Registry, provider: TracerProvider | None) -> None:
        async with service_tls(config.service) as material:
            app = await build(config, tracer_provider=provider, tls_material=material)
            build_info(name, config.service.version)
            await serve_grpc(
                app.server,
                config.service,
                registry,
                http_app=metrics_app(name, app.server, checks={"storage": app.repository.health}),
                on_shutdown=app.close,
                server_credentials=grpc_credentials.server_credentials(material) if material is not None else None,
            )

    run_service(load_config, lambda config: config.service, serve)
