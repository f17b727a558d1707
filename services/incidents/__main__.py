"""Run the incident receiver: ``python -m services.incidents`` (configuration from FIREDRILL_* variables)."""

from __future__ import annotations

from opentelemetry.sdk.trace import TracerProvider

from services.common.discovery.base import Registry
from services.common.entrypoint import run_service
from services.common.lifecycle import serve_http
from services.common.metrics import build_info
from services.common.tls import service_tls
from services.incidents.app import create_app
from services.incidents.config import IncidentsConfig


async def serve(config: IncidentsConfig, registry: Registry, provider: TracerProvider | None) -> None:
    async with service_tls(config.service) as tls:
        app = create_app(config, tracer_provider=provider)
        build_info("incidents")
        await serve_http(app, config.service, registry, tls.server_context() if tls is not None else None)


def main() -> None:
    run_service(IncidentsConfig.from_env, lambda c: c.service, serve)


if __name__ == "__main__":
    main()
