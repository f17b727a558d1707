"""Chaos Toolkit actions of the Firedrill extension (referenced by module and function name)."""

from __future__ import annotations

import logging

from scripts.drills.recorder import RECORDER

log = logging.getLogger("chaostoolkit")


def start_traffic(
    service: str = "hello",
    path: str = "/hello",
    rate_per_s: float = 20,
    max_seconds: float = 240,
    max_requests: int = 10_000,
) -> str:
    """Bounded background traffic through a service, for the whole drill."""
    _, endpoints = RECORDER.require()
    url = endpoints.services[service] + path
    RECORDER.start_traffic(url, rate_per_s, max_seconds, max_requests)
    RECORDER.mark("traffic_started")
    return url


def stop_traffic() -> dict[str, int]:
    result = RECORDER.stop_traffic()
    if result is None:
        return {}
    RECORDER.mark("traffic_stopped")
    return {"sent": result.sent, "failed": result.failed}


def stop_service(service: str) -> str:
    platform, _ = RECORDER.require()
    RECORDER.mark("stopped")
    platform.stop(service)
    log.info("stopped %s", service)
    return service


def start_service(service: str) -> str:
    """Start (or leave running) a service; used by the method and, always, by the rollbacks."""
    platform, _ = RECORDER.require()
    RECORDER.mark("restarted")
    platform.start(service)
    return service


def inject_fault(service: str = "response", latency_ms: int = 0, error_ratio: float = 0.0) -> dict[str, float]:
    """Switch on a runtime fault through the platform (the same call on the local platform and Nomad)."""
    platform, _ = RECORDER.require()
    RECORDER.mark("fault_on")
    platform.set_fault(service, latency_ms=latency_ms, error_ratio=error_ratio)
    RECORDER.notes["fault"] = {"service": service, "latency_ms": latency_ms, "error_ratio": error_ratio}
    log.info("fault on %s: latency %d ms, error ratio %.2f", service, latency_ms, error_ratio)
    return {"latency_ms": latency_ms, "error_ratio": error_ratio}


def clear_fault(service: str = "response") -> str:
    """Switch every runtime fault off; used by the method and, always, by the rollbacks."""
    platform, _ = RECORDER.require()
    platform.set_fault(service)
    if "fault_on" in RECORDER.moments:
        RECORDER.mark("fault_off")
    return service
