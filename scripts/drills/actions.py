"""Chaos Toolkit actions of the Firedrill extension (referenced by module and function name)."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from scripts.deploy_target.interface import PlatformError
from scripts.drills.recorder import RECORDER
from scripts.local.stack import LocalPlatform
from scripts.movie.client import default_password_file, open_channel
from services.genproto import auth_pb2, auth_pb2_grpc

log = logging.getLogger("chaostoolkit")
# Tokens by (user, auth address) with when they were issued and expire, kept in memory only.
# simulate-all runs longer than a token lives (15 minutes by default), and a drill's background
# traffic sends one token for minutes: a token is asked again once half its life has passed.
_TOKENS: dict[tuple[str, str], tuple[str, float, float]] = {}


def start_traffic(
    service: str = "hello",
    path: str = "/hello",
    rate_per_s: float = 20,
    max_seconds: float = 240,
    max_requests: int = 10_000,
    as_user: str | None = None,
) -> str:
    """Bounded background traffic through a service, for the whole drill (``as_user``: with that user's token)."""
    _, endpoints = RECORDER.require()
    url = endpoints.services[service] + path
    headers = {"Authorization": f"Bearer {user_token(as_user)}"} if as_user else None
    RECORDER.start_traffic(url, rate_per_s, max_seconds, max_requests, headers)
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
    RECORDER.notes["fault"] = {"service": service, "latency_ms": latency_ms, "error_ratio": error_ratio}
    RECORDER.mark("fault_on")
    platform.set_fault(service, latency_ms=latency_ms, error_ratio=error_ratio)
    log.info("fault on %s: latency %d ms, error ratio %.2f", service, latency_ms, error_ratio)
    return {"latency_ms": latency_ms, "error_ratio": error_ratio}


def clear_fault(service: str = "response") -> str:
    """Switch every runtime fault off; used by the method and, always, by the rollbacks."""
    platform, _ = RECORDER.require()
    platform.set_fault(service)
    if "fault_on" in RECORDER.moments:
        RECORDER.mark("fault_off")
    return service


def password_file(user: str) -> Path:
    """FIREDRILL_DRILL_PASSWORD_FILE, or the demo user's password file of the local platform."""
    configured = os.environ.get("FIREDRILL_DRILL_PASSWORD_FILE")
    if configured:
        return Path(configured)
    platform, _ = RECORDER.require()
    if isinstance(platform, LocalPlatform) and user == "demo":
        return default_password_file(platform.state.root)
    raise PlatformError(f"set FIREDRILL_DRILL_PASSWORD_FILE to the file holding {user}'s password")


def user_token(user: str, timeout_s: float = 10.0) -> str:
    """A token from auth, asked at the address the platform gives (never logged, never an argument)."""
    _, endpoints = RECORDER.require()
    address = endpoints.services["auth"].removeprefix("grpc://")

    async def fetch() -> tuple[str, float]:
        password = password_file(user).read_text(encoding="utf-8").strip()
        stub: Any = auth_pb2_grpc.AuthServiceStub
        async with open_channel(address, "auth", endpoints.operator_tls) as channel:
            answer = await stub(channel).GetToken(
                auth_pb2.GetTokenRequest(username=user, password=password), timeout=timeout_s
            )
        return str(answer.token), float(answer.expires_at)

    return cached_token((user, address), lambda: asyncio.run(fetch()), time.time())


def cached_token(key: tuple[str, str], fetch: Callable[[], tuple[str, float]], now: float) -> str:
    """The cached token for ``key`` while more than half its life is left, else a fresh one."""
    cached = _TOKENS.get(key)
    if cached is None or now >= (cached[1] + cached[2]) / 2:
        token, expires_at = fetch()
        cached = _TOKENS[key] = (token, now, expires_at)
    return cached[0]


def break_startup(service: str) -> str:
    """Make a service die at start-up (a configuration value it refuses) and restart it so: a crash loop."""
    platform, _ = RECORDER.require()
    RECORDER.notes["startup_broken"] = service
    RECORDER.mark("fault_on")
    platform.break_startup(service)
    log.info("%s now dies at start-up", service)
    return service


def restore_startup(service: str) -> str:
    """Give the service its own configuration back; used by the method and, always, by the rollbacks."""
    platform, _ = RECORDER.require()
    platform.restore_startup(service)
    if "fault_on" in RECORDER.moments:
        RECORDER.mark("fault_off")
    return service


def partition(caller: str = "hello", callee: str = "response") -> dict[str, str]:
    """Cut the caller off from the callee (a blackhole in the path), through the platform."""
    platform, _ = RECORDER.require()
    RECORDER.notes["partition"] = {"caller": caller, "callee": callee}
    RECORDER.mark("fault_on")
    platform.partition(caller, callee)
    log.info("partition: %s no longer reaches %s", caller, callee)
    return {"caller": caller, "callee": callee}


def heal_partition(caller: str = "hello", callee: str = "response") -> dict[str, str]:
    """Remove the partition; used by the method and, always, by the rollbacks."""
    platform, _ = RECORDER.require()
    platform.heal_partition(caller, callee)
    if "fault_on" in RECORDER.moments:
        RECORDER.mark("fault_off")
    return {"caller": caller, "callee": callee}
