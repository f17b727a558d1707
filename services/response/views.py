from __future__ import annotations

import asyncio
import hmac
import logging

from aiohttp import web

from services.common.errors import BadRequest, PermissionDenied, Unauthorized
from services.common.params import bounded_float, bounded_int
from services.common.web import read_json_object
from services.response.faults import MAX_LATENCY_MS, FaultSettings, FaultSwitch, burn_cpu

FAULTS_KEY = web.AppKey("faults", FaultSwitch)
ADMIN_TOKEN_KEY = web.AppKey("admin_token", str)

MAX_SLOW_MS = 30_000
MAX_CPU_MS = 10_000
MAX_LEAK_KB = 100 * 1024
MAX_LOG_MESSAGE = 4096
LOG_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}

app_log = logging.getLogger("services.response.app")


async def respond(request: web.Request) -> web.Response:
    await request.app[FAULTS_KEY].apply()
    return web.json_response({"message": "Greetings from response", "service": "response"})


async def slow(request: web.Request) -> web.Response:
    duration_ms = bounded_int(request.query, "duration", default=1000, minimum=0, maximum=MAX_SLOW_MS, unit="ms")
    await asyncio.sleep(duration_ms / 1000)
    return web.json_response({"slept_ms": duration_ms})


async def leak(request: web.Request) -> web.Response:
    size_kb = bounded_int(request.query, "size", default=1024, minimum=1, maximum=MAX_LEAK_KB, unit="KB")
    faults = request.app[FAULTS_KEY]
    faults.leak(size_kb * 1024)
    return web.json_response({"leaked_kb": size_kb, "total_leaked_bytes": faults.leaked_bytes})


async def cpu(request: web.Request) -> web.Response:
    duration_ms = bounded_int(request.query, "duration", default=5000, minimum=0, maximum=MAX_CPU_MS, unit="ms")
    spins = await asyncio.to_thread(burn_cpu, duration_ms / 1000)
    return web.json_response({"burned_ms": duration_ms, "iterations": spins})


async def emit_log(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    level_name = body.get("level", "info")
    message = body.get("message")
    if not isinstance(level_name, str) or level_name.lower() not in LOG_LEVELS:
        raise BadRequest(f"level must be one of {', '.join(sorted(LOG_LEVELS))}", parameter="level")
    if not isinstance(message, str) or not message or len(message) > MAX_LOG_MESSAGE:
        raise BadRequest(f"message must be a string of 1 to {MAX_LOG_MESSAGE} characters", parameter="message")
    app_log.log(LOG_LEVELS[level_name.lower()], message, extra={"origin": "POST /log"})
    return web.json_response({"logged": True, "level": level_name.lower()}, status=202)


def _require_admin(request: web.Request) -> None:
    expected = request.app.get(ADMIN_TOKEN_KEY)
    if expected is None:
        raise Unauthorized("the admin API is disabled: set FIREDRILL_ADMIN_TOKEN_FILE")
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("the admin API needs the admin token: Authorization: Bearer <token>")
    # A token, but not response's (another service's own token included): known to be wrong, 403.
    if not hmac.compare_digest(token.encode(), expected.encode()):
        raise PermissionDenied("wrong admin token for response's admin API")


def _faults_body(faults: FaultSwitch) -> dict[str, object]:
    return {
        "latency_ms": faults.settings.latency_ms,
        "error_ratio": faults.settings.error_ratio,
        "leaked_bytes": faults.leaked_bytes,
    }


async def get_faults(request: web.Request) -> web.Response:
    _require_admin(request)
    return web.json_response(_faults_body(request.app[FAULTS_KEY]))


async def put_faults(request: web.Request) -> web.Response:
    _require_admin(request)
    body = await read_json_object(request)
    unknown = set(body) - {"latency_ms", "error_ratio"}
    if unknown:
        raise BadRequest(f"unknown fields: {', '.join(sorted(unknown))}")
    latency = bounded_float(body, "latency_ms", default=0, minimum=0, maximum=MAX_LATENCY_MS)
    ratio = bounded_float(body, "error_ratio", default=0.0, minimum=0.0, maximum=1.0)
    faults = request.app[FAULTS_KEY]
    faults.set(FaultSettings(latency_ms=int(latency), error_ratio=ratio))
    app_log.warning("fault switch changed", extra={"latency_ms": int(latency), "error_ratio": ratio})
    return web.json_response(_faults_body(faults))


async def reset_faults(request: web.Request) -> web.Response:
    _require_admin(request)
    faults = request.app[FAULTS_KEY]
    freed = faults.reset()
    app_log.warning("fault switch reset", extra={"freed_bytes": freed})
    return web.json_response({**_faults_body(faults), "freed_bytes": freed})
