"""Run the incident receiver: ``python -m services.incidents`` (configuration from FIREDRILL_* variables)."""

from __future__ import annotations

from opentelemetry.sdk.trace import TracerProvider

from services.common.discovery.base import Registry
from services.common.entrypoint import run_service
from services.common.lifecycle import serve_http
from services.common.metrics import build_info
from services.common.tls import callers, service_tls
from services.common.web_peer_identity import peer_identity_middleware
from services.incidents.app import create_app
from services.incidents.config import IncidentsConfig


async def serve(config: IncidentsConfig, registry: Registry, provider: TracerProvider | None) -> None:
    # With FIREDRILL_TLS_* set: serve mTLS, take notifications only from Alertmanager and serve
    # reads only to the operator (the catalog's allow-list); other certificates get 403.
    async with service_tls(config.service) as tls:
        app = create_app(config, tracer_provider=provider)
        build_info("incidents", config.service.version)
        if tls is not None:
            app.middlewares.append(peer_identity_middleware(callers("incidents")))
        await serve_http(app, config.service, registry, tls.server_context() if tls is not None else None)


def main() -> None:
    run_service(IncidentsConfig.from_env, lambda c: c.service, serve)


if __name__ == "__main__":
    main()
