"""Run auth: ``python -m services.auth`` (configuration from FIREDRILL_* variables)."""

from __future__ import annotations

from opentelemetry.sdk.trace import TracerProvider

from services.auth.app import build
from services.auth.config import AuthConfig
from services.common.discovery.base import Registry
from services.common.entrypoint import run_service
from services.common.grpc_server import metrics_app, serve_grpc
from services.common.metrics import build_info


async def serve(config: AuthConfig, registry: Registry, provider: TracerProvider | None) -> None:
    app = await build(config, tracer_provider=provider)
    build_info("auth", "0.1.0")
    http = metrics_app("auth", app.server, checks={"storage": app.repository.health})
    await serve_grpc(app.server, config.service, registry, http_app=http, on_shutdown=app.close)


def main() -> None:
    run_service(AuthConfig.from_env, lambda c: c.service, serve)


if __name__ == "__main__":
    main()
