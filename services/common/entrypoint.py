"""The thin ``main()`` every service shares: config, logging, tracing, registry, serve."""

from __future__ import annotations

import asyncio
import gc
import os
import sys
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, TypeVar

from opentelemetry.sdk.trace import TracerProvider

from services.common.config import ConfigError, ServiceConfig
from services.common.cpu_wait import count_cpu_wait
from services.common.discovery.base import Registry
from services.common.discovery.factory import make_registry
from services.common.discovery.observed import observed
from services.common.logs import configure_logging, count_log_records
from services.common.telemetry import setup_tracing

C = TypeVar("C")
Serve = Callable[[C, Registry, TracerProvider | None], Coroutine[Any, Any, None]]


def run_service(load: Callable[[Mapping[str, str]], C], common: Callable[[C], ServiceConfig], serve: Serve[C]) -> None:
    try:
        # The one place a service reads the process environment.
        config = load(os.environ)
        service = common(config)
        registry: Registry = observed(make_registry(service), service.name, settle_s=service.timing.heartbeat_ttl_s)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    configure_logging(service.name, service.log_level)
    count_log_records()
    count_cpu_wait()
    provider = (
        setup_tracing(
            service.name,
            service.otlp_endpoint,
            service.trace_file,
            starts_traces=service.starts_traces,
            ratio=service.trace_ratio,
        )
        if service.instrumentation
        else None
    )
    # Everything imported so far lives as long as the process: keep it out of the collector's
    # full passes, which otherwise scan tens of MB of module objects and stall requests.
    gc.collect()
    gc.freeze()
    asyncio.run(serve(config, registry, provider))
