"""Run hello: ``python -m services.hello`` (configuration from FIREDRILL_* variables)."""

from __future__ import annotations

from opentelemetry.sdk.trace import TracerProvider

from services.common import tls
from services.common.discovery.base import Registry
from services.common.entrypoint import run_service
from services.common.lifecycle import serve_http
from services.common.metrics import build_info
from services.hello.app import create_app
from services.hello.config import HelloConfig


async def serve(config: HelloConfig, registry: Registry, provider: TracerProvider | None) -> None:
    # hello is the user-facing edge: its own listener is plain HTTP (on a cluster a load balancer
    # or ingress terminates users' TLS in front of it). With FIREDRILL_TLS_* set it calls response
    # over mTLS, pinning the name "response.service.consul" in response's certificate.
    async with tls.service_tls(config.service) as material:
        client_ssl = material.client_context(server_name=tls.service_dns_name("response")) if material else None
        app = create_app(config, registry, tracer_provider=provider, client_ssl=client_ssl)
        build_info("hello", config.service.version)
        await serve_http(app, config.service, registry)


def main() -> None:
    run_service(HelloConfig.from_env, lambda c: c.service, serve)


if __name__ == "__main__":
    main()
