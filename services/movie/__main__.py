"""Run movie: ``python -m services.movie`` (configuration from FIREDRILL_* variables)."""

from __future__ import annotations

from opentelemetry.sdk.trace import TracerProvider

from services.common import tls
from services.common.discovery.base import Registry
from services.common.entrypoint import run_service
from services.common.grpc_credentials import server_credentials
from services.common.grpc_service import metrics_app, serve_grpc
from services.common.metrics import build_info
from services.movie.app import build
from services.movie.config import MovieConfig


async def serve(config: MovieConfig, registry: Registry, provider: TracerProvider | None) -> None:
    # With FIREDRILL_TLS_* set: the gRPC API is mTLS (the operator's tooling only), and the
    # channels to metadata, rating and auth are mTLS with movie's certificate, rebuilt on each
    # rotation. The HTTP/JSON front is the edge and stays plain HTTP, as does the ops port.
    async with tls.service_tls(config.service) as material:
        app = build(config, registry, tracer_provider=provider, tls_material=material)
        build_info("movie", config.service.version)
        await serve_grpc(
            app.server,
            config.service,
            registry,
            http_app=metrics_app("movie", app.server),
            extra_sites=[(app.http, config.http_port)],
            instance_meta={"http_port": str(config.http_port)},
            server_credentials=server_credentials(material) if material is not None else None,
            on_shutdown=app.close,
        )


def main() -> None:
    run_service(MovieConfig.from_env, lambda c: c.service, serve)


if __name__ == "__main__":
    main()
