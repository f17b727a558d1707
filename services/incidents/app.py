from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import REGISTRY, CollectorRegistry

from services.common.web import HEALTH_CHECKS_KEY, create_base_app
from services.incidents import views
from services.incidents.config import IncidentsConfig
from services.incidents.metrics import IncidentMetrics
from services.incidents.receiver import Receiver
from services.incidents.validation import MAX_BODY_BYTES


def create_app(
    config: IncidentsConfig,
    *,
    tracer_provider: TracerProvider | None = None,
    metrics_registry: CollectorRegistry = REGISTRY,
) -> web.Application:
    app = create_base_app(
        config.service, tracer_provider=tracer_provider, registry=metrics_registry, client_max_size=MAX_BODY_BYTES
    )
    receiver = Receiver(config, IncidentMetrics(metrics_registry))
    app[views.RECEIVER_KEY] = receiver
    app[HEALTH_CHECKS_KEY]["database"] = receiver.health

    async def running(_: web.Application) -> AsyncIterator[None]:
        await receiver.start()
        try:
            yield
        finally:
            await receiver.stop()

    app.cleanup_ctx.append(running)
    app.router.add_post("/alerts", views.receive_alerts)
    app.router.add_get("/incidents", views.list_incidents)
    app.router.add_get("/incidents/{incident_id}", views.get_incident)
    return app
