"""Start, announce, heartbeat, and stop gracefully on SIGTERM.

Shutdown order matters: deregister first so callers stop choosing this instance, then stop
accepting connections, then let in-flight requests finish within the grace period.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import ssl
from collections.abc import Awaitable, Callable

from aiohttp import web

from services.common.admin_token import guard_debug_endpoints
from services.common.config import ServiceConfig
from services.common.debug_endpoints import DEBUG_TOKEN_KEY
from services.common.discovery.base import Instance, Registry
from services.common.http_listener import LISTENER_LIMITS, LimitedTCPSite, ListenerLimits, limited_runner
from services.common.telemetry import shutdown_tracing
from services.common.web import HEALTH_CHECKS_KEY, REGISTRY_KEY, SERVICE_KEY, create_ops_app

log = logging.getLogger(__name__)

Shutdown = Callable[[], Awaitable[None]]


def instance_for(config: ServiceConfig, protocol: str) -> Instance:
    meta = {"protocol": protocol, "metrics_path": "/metrics", "health_path": "/health", "version": config.version}
    if config.metrics_port is not None:
        meta["metrics_port"] = str(config.metrics_port)
    return Instance(
        service=config.name,
        instance_id=f"{config.name}-{config.advertise_host}-{config.port}",
        host=config.advertise_host,
        port=config.port,
        meta=meta,
    )


async def _heartbeat_forever(registry: Registry, instance: Instance, interval_s: float) -> None:
    failing = False
    while True:
        await asyncio.sleep(interval_s)
        try:
            await registry.heartbeat(instance)
        except Exception as exc:  # the registry being away must not take the service down
            if not failing:  # once per outage, not once a heartbeat
                log.warning(
                    "heartbeat failed; retrying every interval",
                    exc_info=True,
                    extra={"registry_instance": instance.instance_id, "reason": str(exc)[:200]},
                )
            failing = True
        else:
            if failing:
                log.info("heartbeat accepted again", extra={"registry_instance": instance.instance_id})
            failing = False


async def run_until_signalled(
    config: ServiceConfig, registry: Registry, instances: list[Instance], shutdown: Shutdown
) -> None:
    """Announce ``instances``, wait for SIGTERM/SIGINT, then withdraw them and call ``shutdown``."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    heartbeats: list[asyncio.Task[None]] = []
    try:
        if config.self_register:
            for instance in instances:
                await registry.register(instance)
                heartbeats.append(
                    asyncio.create_task(_heartbeat_forever(registry, instance, config.timing.heartbeat_interval_s))
                )
        log.info("serving", extra={"port": config.port, "metrics_port": config.metrics_port})
        await stop.wait()
        log.info("shutting down", extra={"grace_s": config.shutdown_grace_s})
    finally:
        for task in heartbeats:
            task.cancel()
        if config.self_register:
            for instance in instances:
                with contextlib.suppress(Exception):
                    await registry.deregister(instance)
        await shutdown()
        await registry.close()
        shutdown_tracing()
        log.info("stopped")


async def start_http_site(
    app: web.Application,
    host: str,
    port: int,
    grace_s: float,
    ssl_context: ssl.SSLContext | None = None,
    limits: ListenerLimits = LISTENER_LIMITS,
) -> web.AppRunner:
    """Serve ``app`` on ``host:port`` with the listener ``limits`` (``services.common.http_listener``)."""
    runner = limited_runner(app, limits, grace_s)
    await runner.setup()
    site = LimitedTCPSite(runner, host, port, limits, ssl_context)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise SystemExit(f"cannot listen on {host}:{port}: {exc.strerror} (is the port already in use?)") from None
    return runner


async def serve_http(
    app: web.Application,
    config: ServiceConfig,
    registry: Registry,
    ssl_context: ssl.SSLContext | None = None,
) -> None:
    """Run an aiohttp application as a registered, gracefully stopping service.

    With a metrics port configured, /metrics and /health are also served there in plain HTTP
    (same registry, same health checks) for Prometheus and the platform's health checks.
    """
    ops = ops_app(app)
    await guard_debug_endpoints(ops, config)  # before listening: the wait for the token is bounded
    runners = [await start_http_site(app, config.bind_host, config.port, config.shutdown_grace_s, ssl_context)]
    if config.metrics_port is not None:
        runners.append(await start_http_site(ops, config.bind_host, config.metrics_port, config.shutdown_grace_s))

    async def shutdown() -> None:
        for runner in runners:
            await runner.cleanup()

    await run_until_signalled(config, registry, [instance_for(config, "http")], shutdown)


def ops_app(app: web.Application) -> web.Application:
    """The plain /metrics + /health site of an application, sharing its registry and checks."""
    ops = create_ops_app(app[SERVICE_KEY], app[REGISTRY_KEY])
    ops[HEALTH_CHECKS_KEY] = app[HEALTH_CHECKS_KEY]
    if DEBUG_TOKEN_KEY in app:
        ops[DEBUG_TOKEN_KEY] = app[DEBUG_TOKEN_KEY]
    return ops
