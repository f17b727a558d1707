"""Run metadata: ``python -m services.metadata`` (configuration from FIREDRILL_* variables)."""

from __future__ import annotations

from opentelemetry.sdk.trace import TracerProvider

from services.common.discovery.base import Registry
from services.common.entrypoint import run_service
from services.common.grpc_server import metrics_app, serve_grpc
from services.common.metrics import build_info
from services.metadata.app import build
from services.metadata.config import MetadataConfig


async def serve(config: MetadataConfig, registry: Registry, provider: TracerProvider | None) -> None:
    app = await build(config, tracer_provider=provider)
    build_info("metadata", "0.1.0")
    http = metrics_app("metadata", app.server, checks={"storage": app.repository.health})
    await serve_grpc(app.server, config.service, registry, http_app=http, on_shutdown=app.close)


def main() -> None:
    run_service(MetadataConfig.from_env, lambda c: c.service, serve)


if __name__ == "__main__":
    main()
