"""Run response: ``python -m services.response`` (configuration from FIREDRILL_* variables)."""

from __future__ import annotations

from opentelemetry.sdk.trace import TracerProvider

from services.common.discovery.base import Registry
from services.common.entrypoint import run_service
from services.common.lifecycle import serve_http
from services.response.app import create_app
from services.response.config import ResponseConfig


async def serve(config: ResponseConfig, registry: Registry, provider: TracerProvider | None) -> None:
    await serve_http(create_app(config, tracer_provider=provider), config.service, registry)


def main() -> None:
    run_service(ResponseConfig.from_env, lambda c: c.service, serve)


if __name__ == "__main__":
    main()
