"""Run movie: ``python -m services.movie`` (configuration from FIREDRILL_* variables)."""

from __future__ import annotations

from opentelemetry.sdk.trace import TracerProvider

from services.common.discovery.base import Registry
from services.common.entrypoint import run_service
from services.common.grpc_server import metrics_app, serve_grpc
from services.common.metrics import build_info
from services.movie.app import build
from services.movie.config import MovieConfig


async def serve(config: MovieConfig, registry: Registry, provider: TracerProvider | None) -> None:
    app = build(config, registry, tracer_provider=provider)
    build_info("movie", "0.1.0")
    await serve_grpc(
        app.server,
        config.service,
        registry,
        http_app=metrics_app("movie", app.server),
        extra_sites=[(app.http, config.http_port)],
        instance_meta={"http_port": str(config.http_port)},
        on_shutdown=app.close,
    )


def main() -> None:
    run_service(MovieConfig.from_env, lambda c: c.service, serve)


if __name__ == "__main__":
    main()
