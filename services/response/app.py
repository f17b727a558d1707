from __future__ import annotations

from aiohttp import web
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import REGISTRY, CollectorRegistry

from services.common.debug_endpoints import DEBUG_TOKEN_KEY
from services.common.web import create_base_app
from services.response import views
from services.response.config import ResponseConfig
from services.response.faults import FaultSwitch


def create_app(
    config: ResponseConfig,
    *,
    admin_token: str | None = None,
    tracer_provider: TracerProvider | None = None,
    metrics_registry: CollectorRegistry = REGISTRY,
) -> web.Application:
    app = create_base_app(config.service, tracer_provider=tracer_provider, registry=metrics_registry)
    faults = FaultSwitch(config.leak_cap_bytes, metrics_registry)
    faults.set(config.startup_fault)
    app[views.FAULTS_KEY] = faults
    if admin_token is not None:
        app[views.ADMIN_TOKEN_KEY] = admin_token
        # The same token guards the debugging endpoints of the ops port (services.common.lifecycle.ops_app).
        app[DEBUG_TOKEN_KEY] = admin_token
    app.router.add_get("/response", views.respond)
    app.router.add_get("/slow", views.slow)
    app.router.add_get("/leak", views.leak)
    app.router.add_get("/cpu", views.cpu)
    app.router.add_post("/log", views.emit_log)
    app.router.add_get("/admin/faults", views.get_faults)
    app.router.add_put("/admin/faults", views.put_faults)
    app.router.add_delete("/admin/faults", views.reset_faults)
    return app
