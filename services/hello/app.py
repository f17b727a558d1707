from __future__ import annotations

import contextlib
import ssl
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import REGISTRY, CollectorRegistry

from services.common.discovery.base import Registry
from services.common.discovery.cache import InstanceCache
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
        async with contextlib.AsyncExitStack() as stack:
            plain = await stack.enter_async_context(aiohttp.ClientSession(connector=connector))
            traced = None
            if service.instrumentation:
                from opentelemetry.instrumentation.aiohttp_client import create_trace_config

                traced = await stack.enter_async_context(
                    aiohttp.ClientSession(
                        connector=connector,
                        connector_owner=False,
                        trace_configs=[create_trace_config(tracer_provider=tracer_provider)],
                    )
                )
            app[UPSTREAM_KEY] = UpstreamClient(
                "response",
                InstanceCache(registry, max_age_s=service.timing.heartbeat_interval_s),
                plain,
                traced_session=traced,
                deadline_s=config.upstream_deadline_s,
                attempts=config.upstream_attempts,
                metrics=client_metrics,
                scheme="https" if client_ssl is not None else "http",
            )
            yield

    app.cleanup_ctx.append(upstream_session)
    return app
