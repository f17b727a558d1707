"""Run response: ``python -m services.response`` (configuration from FIREDRILL_* variables)."""

from __future__ import annotations

from opentelemetry.sdk.trace import TracerProvider

from services.common import tls
from services.common.discovery.base import Registry
from services.common.entrypoint import run_service
from services.common.lifecycle import serve_http
from services.common.metrics import build_info
from services.common.secret_files import read_when_present
from services.common.web_peer_identity import peer_identity_middleware
from services.response.app import create_app
from services.response.config import ResponseConfig


async def serve(config: ResponseConfig, registry: Registry, provider: TracerProvider | None) -> None:
    admin_token = None
    if config.admin_token_file is not None:
        admin_token = await read_when_present(config.admin_token_file, what="the admin token")
    # With FIREDRILL_TLS_* set: serve mTLS and answer only the callers the catalog names (hello
    # and the operator read, only the operator writes); other certificates get 403.
    async with tls.service_tls(config.service) as material:
        app = create_app(config, admin_token=admin_token, tracer_provider=provider)
        build_info("response", config.service.version)
        if material is not None:
            app.middlewares.append(peer_identity_middleware(tls.callers("response")))
        await serve_http(app, config.service, registry, ssl_context=material.server_context() if material else None)


def main() -> None:
    run_service(ResponseConfig.from_env, lambda c: c.service, serve)


if __name__ == "__main__":
    main()
