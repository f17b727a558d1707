"""Run hello: ``python -m services.hello`` (configuration from FIREDRILL_* variables)."""

from __future__ import annotations

from opentelemetry.sdk.trace import TracerProvider

from services.common.discovery.base import Registry
from services.common.entrypoint import run_service
from services.common.lifecycle import serve_http
from services.hello.app import create_app
from services.hello.config import HelloConfig


async def serve(config: HelloConfig, registry: Registry, provider: TracerProvider | None) -> None:
    await serve_http(create_app(config, registry, tracer_provider=provider), config.service, registry)


def main() -> None:
    run_service(HelloConfig.from_env, lambda c: c.service, serve)


if __name__ == "__main__":
    main()
