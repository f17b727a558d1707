from __future__ import annotations

import ssl
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import REGISTRY, CollectorRegistry

from services.common.discovery.base import Registry
from services.common.discovery.cache import InstanceCache
from services.common.http_tracing import http_tracer
from services.common.metrics import HttpClientMetrics
from services.common.upstream import UpstreamClient
from services.common.web import create_base_app
from services.hello.config import HelloConfig
from services.hello.views import UPSTREAM_KEY, hello


def create_app(
    config: HelloConfig,
    registry: Registry,
    *,
    tracer_provider: TracerProvider | None = None,
    metrics_registry: CollectorRegistry = REGISTRY,
    client_ssl: ssl.SSLContext | None = None,
) -> web.Application:
    service = config.service
    app = create_base_app(service, tracer_provider=tracer_provider, registry=metrics_registry)
    app.router.add_get("/hello", hello)
    client_metrics = HttpClientMetrics("hello", metrics_registry) if service.instrumentation else None

    async def upstream_session(app: web.Application) -> AsyncIterator[None]:
        connector = aiohttp.TCPConnector(limit=200, ssl=client_ssl if client_ssl is not None else True)
        async with aiohttp.ClientSession(connector=connector) as session:
            app[UPSTREAM_KEY] = UpstreamClient(
                "response",
                InstanceCache(registry, max_age_s=service.timing.heartbeat_interval_s),
                session,
                tracer=http_tracer(tracer_provider) if service.instrumentation else None,
                deadline_s=config.upstream_deadline_s,
                attempts=config.upstream_attempts,
                metrics=client_metrics,
                scheme="https" if client_ssl is not None else "http",
            )
            yield

    app.cleanup_ctx.append(upstream_session)
    return app
