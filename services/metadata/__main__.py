"""Run metadata: ``python -m services.metadata`` (configuration from FIREDRILL_* variables)."""

from __future__ import annotations

from opentelemetry.sdk.trace import TracerProvider

from services.common import tls
from services.common.discovery.base import Registry
from services.common.entrypoint import run_service
from services.common.grpc_server import metrics_app, serve_grpc
from services.common.metrics import build_info
from services.metadata.app import build
from services.metadata.config import MetadataConfig


async def serve(config: MetadataConfig, registry: Registry, provider: TracerProvider | None) -> None:
    # With FIREDRILL_TLS_* set: gRPC over mTLS (certificate rotations picked up without a restart),
    # serving only metadata's catalog dependents and the observers; the ops port stays plain HTTP.
    async with tls.service_tls(config.service) as material:
        app = await build(config, tracer_provider=provider, tls_material=material)
        build_info("metadata", "0.1.0")
        http = metrics_app("metadata", app.server, checks={"storage": app.repository.health})
        await serve_grpc(
            app.server,
            config.service,
            registry,
            http_app=http,
            on_shutdown=app.close,
            server_credentials=material.grpc_server_credentials() if material is not None else None,
        )


def main() -> None:
    run_service(MetadataConfig.from_env, lambda c: c.service, serve)


if __name__ == "__main__":
    main()
